/* Logging through the host program's callback; never to stdio.  A log
 * line is made visible (one line, no escape sequences) like an error
 * message: it may quote a guest's or an image's text. */
#include "core.h"
#include "logger.h"

#include <stdio.h>

void bg_log(const void *owner, int level, const char *fmt, ...)
{
	const bg_logger *lg = owner;
	if (!lg || !lg->cb || level > lg->level)
		return;
	char raw[2048], msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	bg_visible_into(msg, sizeof(msg), raw, 0);
	lg->cb(level, msg, lg->payload);
}
