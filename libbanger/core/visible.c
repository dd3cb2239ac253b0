/*
 * Text from an image, a registry or a guest made harmless for a terminal.
 *
 * A member name, a registry error body or a console line can carry escape
 * sequences that clear the screen, set the window title or fake coloured
 * output when they reach a terminal.  Everything of that kind goes through
 * here before it is put into an error message, a log line or CLI output:
 * printable UTF-8 stays as it is (so a name in Cyrillic reads as Cyrillic),
 * and what a terminal would act on is spelled out instead:
 *   - C0 controls and DEL as \xNN (\n, \r and \t as themselves escaped),
 *   - C1 controls (U+0080..U+009F) and the invisible characters that
 *     reorder or break lines (bidi overrides and isolates, U+2028/2029)
 *     as \uNNNN,
 *   - bytes that are not valid UTF-8 (overlong forms, surrogates, stray
 *     continuation bytes, raw 0x9b CSI) as \xNN, one byte at a time.
 * The backslash itself is left alone: the result is for reading, not for
 * decoding, and leaving it makes the function idempotent, so text made
 * visible twice (at its source and again in bg_error) reads the same.
 *
 * The output never splits an escape or a character: a fixed buffer that is
 * too small ends before the unit that does not fit.
 */
#include "core.h"

#include <stdio.h>
#include <string.h>

/* Length (2..4) of the valid UTF-8 sequence starting at p, with its code
 * point; 0 when the bytes there are not one.  *incomplete: they are a
 * valid start that the end of the input cut off. */
static size_t utf8_seq(const unsigned char *p, size_t n, uint32_t *cp, bool *incomplete)
{
	unsigned char c = p[0];
	size_t need;
	uint32_t v, min;
	*incomplete = false;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 2, v = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3, v = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4, v = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < need; i++) {
		if (i >= n) {
			*incomplete = true;
			return 0;
		}
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return need;
}

/* Characters above ASCII that a terminal acts on or that hide text. */
static bool hidden_cp(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) ||              /* C1 controls */
	       cp == 0x200e || cp == 0x200f ||              /* LRM, RLM */
	       (cp >= 0x202a && cp <= 0x202e) ||            /* bidi embeddings, overrides */
	       (cp >= 0x2066 && cp <= 0x2069) ||            /* bidi isolates */
	       cp == 0x2028 || cp == 0x2029;                /* line, paragraph separator */
}

/* The visible form of one unit of input at p (n > 0 bytes left) into out
 * (room for 8).  Returns the bytes consumed, 0 only when BG_VIS_PARTIAL
 * asks to keep an unfinished tail for the next chunk. */
static size_t unit(const unsigned char *p, size_t n, unsigned flags, char *out, size_t *olen)
{
	bool json = flags & BG_VIS_JSON, lines = (flags & BG_VIS_LINES) && !json;
	unsigned char c = p[0];
	if (c >= 0x20 && c < 0x7f) {
		if (json && (c == '"' || c == '\\')) {
			out[0] = '\\', out[1] = (char)c, *olen = 2;
			return 1;
		}
		out[0] = (char)c, *olen = 1;
		return 1;
	}
	if (c < 0x80) { /* C0 control or DEL */
		if (lines && (c == '\n' || c == '\t')) {
			out[0] = (char)c, *olen = 1;
			return 1;
		}
		if (lines && c == '\r') {
			if (n == 1 && (flags & BG_VIS_PARTIAL))
				return 0; /* CR LF may be split between chunks */
			if (n > 1 && p[1] == '\n') {
				out[0] = '\r', out[1] = '\n', *olen = 2;
				return 2;
			}
		}
		const char *named = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
		if (named)
			*olen = (size_t)snprintf(out, 8, "%s", named);
		else
			*olen = (size_t)snprintf(out, 8, json ? "\\u%04x" : "\\x%02x", c);
		return 1;
	}
	uint32_t cp = 0;
	bool incomplete;
	size_t len = utf8_seq(p, n, &cp, &incomplete);
	if (!len && incomplete && (flags & BG_VIS_PARTIAL))
		return 0;
	if (!len) { /* one byte that is not UTF-8 */
		*olen = (size_t)snprintf(out, 8, json ? "\\ufffd" : "\\x%02x", c);
		return 1;
	}
	if (hidden_cp(cp)) {
		*olen = (size_t)snprintf(out, 8, "\\u%04x", (unsigned)cp);
		return len;
	}
	memcpy(out, p, len);
	*olen = len;
	return len;
}

size_t bg_visible_into(char *dst, size_t cap, const char *src, unsigned flags)
{
	if (!cap)
		return 0;
	size_t w = 0;
	const unsigned char *p = (const unsigned char *)(src ? src : "");
	size_t n = strlen((const char *)p);
	flags &= ~(unsigned)BG_VIS_PARTIAL;
	while (n > 0) {
		char u[8];
		size_t ulen, used = unit(p, n, flags, u, &ulen);
		if (w + ulen >= cap)
			break;
		memcpy(dst + w, u, ulen);
		w += ulen;
		p += used;
		n -= used;
	}
	dst[w] = '\0';
	return w;
}

int bg_buf_put_visible(bg_buf *b, const void *data, size_t len, unsigned flags, size_t *consumed)
{
	const unsigned char *p = data;
	size_t left = len;
	int rc = bg_buf_grow(b, len); /* the common case: nothing to escape */
	if (rc == 0)
		b->data[b->len] = '\0'; /* "" when nothing is appended */
	while (rc == 0 && left > 0) {
		char u[8];
		size_t ulen, used = unit(p, left, flags, u, &ulen);
		if (!used)
			break;
		rc = bg_buf_put(b, u, ulen);
		p += used;
		left -= used;
	}
	if (consumed)
		*consumed = len - left;
	return rc;
}

char *bg_str_visible(const char *s)
{
	bg_buf b = BG_BUF_INIT;
	if (!s)
		s = "";
	if (bg_buf_put_visible(&b, s, strlen(s), 0, NULL))
		return NULL;
	return bg_buf_detach(&b);
}

/* ---- public API ---- */

BANGER_EXTERN(int) banger_text_visible(char **out, size_t *out_len, size_t *consumed, const char *data,
				       size_t len, uint32_t flags)
{
	if (!out)
		return bg_error(BANGER_EINVALID, "banger_text_visible: out is required");
	*out = NULL;
	if (out_len)
		*out_len = 0;
	if (consumed)
		*consumed = 0;
	if (!data && len)
		return bg_error(BANGER_EINVALID, "banger_text_visible: no data");
	if (flags & ~(uint32_t)(BANGER_TEXT_LINES | BANGER_TEXT_JSON | BANGER_TEXT_PARTIAL))
		return bg_error(BANGER_EINVALID, "banger_text_visible: unknown flags 0x%x", (unsigned)flags);
	unsigned f = ((flags & BANGER_TEXT_LINES) ? BG_VIS_LINES : 0) |
		     ((flags & BANGER_TEXT_JSON) ? BG_VIS_JSON : 0) |
		     ((flags & BANGER_TEXT_PARTIAL) ? BG_VIS_PARTIAL : 0);
	bg_buf b = BG_BUF_INIT;
	size_t used = 0;
	int rc = bg_buf_put_visible(&b, data ? data : "", len, f, &used);
	if (rc == 0 && !(*out = bg_buf_detach(&b)))
		rc = bg_error_oom();
	if (rc) {
		bg_buf_free(&b);
		return rc;
	}
	if (out_len)
		*out_len = strlen(*out);
	if (consumed)
		*consumed = used;
	return 0;
}
