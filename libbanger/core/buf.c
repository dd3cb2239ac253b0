/* Growable NUL-terminated byte buffer with a sticky out-of-memory flag,
 * so a sequence of appends can be checked once at the end. */
#include "core.h"

#include <stdio.h>
#include <string.h>

int bg_buf_grow(bg_buf *b, size_t extra)
{
	if (b->oom)
		return BANGER_ENOMEM;
	if (b->len + extra + 1 <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + extra + 1) {
		if (cap > SIZE_MAX / 2) {
			b->oom = true;
			return bg_error_oom();
		}
		cap *= 2;
	}
	char *p = bg_realloc(b->data, cap);
	if (!p) {
		b->oom = true;
		return bg_error_oom();
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

int bg_buf_put(bg_buf *b, const void *data, size_t len)
{
	int rc = bg_buf_grow(b, len);
	if (rc)
		return rc;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int bg_buf_puts(bg_buf *b, const char *s)
{
	return bg_buf_put(b, s, strlen(s));
}

int bg_buf_printf(bg_buf *b, const char *fmt, ...)
{
	va_list ap, cp;
	va_start(ap, fmt);
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	int rc = n < 0 ? bg_error(BANGER_EINVALID, "bad format") : bg_buf_grow(b, (size_t)n);
	if (rc == 0) {
		vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
		b->len += (size_t)n;
	}
	va_end(ap);
	return rc;
}

char *bg_buf_detach(bg_buf *b)
{
	if (b->oom) {
		bg_buf_free(b);
		return NULL;
	}
	if (!b->data) {
		if (bg_buf_grow(b, 0))
			return NULL;
		/* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): grow(b, 0) set data */
		b->data[0] = '\0'; /* an empty buffer is "" too */
	}
	char *r = b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return r;
}

void bg_buf_free(bg_buf *b)
{
	bg_free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->oom = false;
}
