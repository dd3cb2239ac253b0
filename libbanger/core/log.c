/* Logging through the host program's callback; never to stdio. */
#include "core.h"
#include "logger.h"

#include <stdio.h>

void bg_log(struct banger_ctx *ctx, int level, const char *fmt, ...)
{
	const bg_logger *lg = (const bg_logger *)ctx;
	if (!lg || !lg->cb || level > lg->level)
		return;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	lg->cb(level, msg, lg->payload);
}
