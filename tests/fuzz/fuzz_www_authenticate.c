/* WWW-Authenticate challenges from registries (RFC 7235 syntax, Docker
 * token auth: Bearer realm=..., service=..., scope=...).
 *
 * Checked: a parsed challenge has a lowercase scheme of token characters;
 * parameters are NUL-free strings; a Bearer challenge that parses has a
 * realm.  The input also goes through the base64 codec Basic credentials
 * use, and must come back unchanged. */
#include "fuzz.h"
#include "../../libbanger/image/image.h"

#include <ctype.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *h = fuzz_cstr(data, size);
	bg_auth_challenge c;
	memset(&c, 0, sizeof(c));
	int rc = bg_auth_challenge_parse(&c, h);
	if (rc == 0) {
		FUZZ_CHECK(memchr(c.scheme, '\0', sizeof(c.scheme)) && c.scheme[0]);
		for (const char *p = c.scheme; *p; p++)
			FUZZ_CHECK(!isupper((unsigned char)*p) && (unsigned char)*p > 0x20);
		if (strcmp(c.scheme, "bearer") == 0)
			FUZZ_CHECK(c.realm && *c.realm);
	} else {
		/* ENETWORK: the registry sent a challenge banger cannot follow */
		FUZZ_CHECK(rc == BANGER_EINVALID || rc == BANGER_EUNSUPPORTED || rc == BANGER_ENETWORK ||
			   rc == BANGER_ENOMEM);
	}
	bg_auth_challenge_free(&c);
	/* the codec Basic credentials go through: it round-trips */
	char *b = bg_base64_encode(data, size, true);
	if (b) {
		unsigned char *back = NULL;
		size_t blen = 0;
		int drc = bg_base64_decode(&back, &blen, b, strlen(b));
		FUZZ_CHECK(drc == 0 || drc == BANGER_ENOMEM);
		if (drc == 0)
			FUZZ_CHECK(blen == size && (size == 0 || memcmp(back, data, size) == 0));
		bg_free(back);
	}
	bg_free(b);
	free(h);
	return 0;
}
