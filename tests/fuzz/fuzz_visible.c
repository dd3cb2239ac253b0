/* Untrusted text made visible (bg_buf_put_visible, banger_text_visible).
 *
 * The input is any bytes: a member name, a registry body, console output.
 * Checked: the visible form holds no C0 control, DEL or invalid UTF-8 (in
 * lines mode only \n, \t and CR LF), making it visible again changes
 * nothing, and feeding the input in two chunks with BANGER_TEXT_PARTIAL
 * gives the same text as feeding it whole. */
#include "fuzz.h"
#include "../../libbanger/core/core.h"

static void check_clean(const char *s, size_t len, bool lines)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == 0x7f)
			FUZZ_CHECK(!"DEL in visible text");
		if (p[i] < 0x20) {
			bool ok = lines && (p[i] == '\n' || p[i] == '\t' ||
					    (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n'));
			FUZZ_CHECK(ok);
		}
	}
}

static char *run(const char *data, size_t len, uint32_t flags)
{
	char *out = NULL;
	size_t olen = 0, used = 0;
	int rc = banger_text_visible(&out, &olen, &used, data, len, flags);
	if (rc) {
		FUZZ_CHECK(rc == BANGER_ENOMEM);
		return NULL;
	}
	FUZZ_CHECK(used == len);
	FUZZ_CHECK(strlen(out) == olen);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	for (uint32_t flags = 0; flags <= BANGER_TEXT_LINES; flags++) {
		char *v = run(in, size, flags);
		if (!v)
			continue;
		check_clean(v, strlen(v), flags & BANGER_TEXT_LINES);
		char *again = run(v, strlen(v), flags);
		if (again)
			FUZZ_CHECK(strcmp(v, again) == 0);
		banger_free(again);
		/* two chunks, the cut anywhere, give the same text */
		size_t cut = size ? data[0] % (size + 1) : 0;
		char *a = NULL, *b = NULL;
		size_t used = 0;
		if (banger_text_visible(&a, NULL, &used, in, cut, flags | BANGER_TEXT_PARTIAL) == 0) {
			FUZZ_CHECK(used <= cut && cut - used <= 3);
			if (banger_text_visible(&b, NULL, NULL, in + used, size - used, flags) == 0) {
				size_t la = strlen(a), lb = strlen(b);
				FUZZ_CHECK(la + lb == strlen(v));
				FUZZ_CHECK(memcmp(v, a, la) == 0 && memcmp(v + la, b, lb) == 0);
			}
		}
		banger_free(a);
		banger_free(b);
		banger_free(v);
	}
	/* JSON: nothing below 0x20, no DEL, quotes and backslashes escaped */
	char *j = run(in, size, BANGER_TEXT_JSON);
	if (j) {
		for (const unsigned char *p = (const unsigned char *)j; *p; p++) {
			FUZZ_CHECK(*p >= 0x20 && *p != 0x7f);
			if (*p == '\\') {
				p++;
				FUZZ_CHECK(*p && strchr("\"\\nrtu", *p));
			} else
				FUZZ_CHECK(*p != '"');
		}
	}
	banger_free(j);
	return 0;
}
