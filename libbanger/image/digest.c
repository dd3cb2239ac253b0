/* Digests: strict parsing ("sha256:" + 64 lowercase hex, nothing else
 * goes near a path or URL) and the "sha256:<hex>" form of core's SHA-256. */
#include "image.h"

#include <string.h>

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool bg_digest_valid(const char *s)
{
	if (!s || strncmp(s, "sha256:", 7) != 0)
		return false;
	for (int i = 0; i < 64; i++)
		if (!is_lower_hex(s[7 + i]))
			return false;
	return s[71] == '\0';
}

int bg_digest_check(const char *s, const char *what)
{
	if (bg_digest_valid(s))
		return 0;
	if (!s)
		return bg_error(BANGER_EINVALID, "%s: missing digest", what);
	/* A well-formed digest of another algorithm is unsupported, anything
	 * else is invalid.  The offending text is not echoed in full. */
	const char *colon = strchr(s, ':');
	if (colon && colon > s && colon - s < 32 && colon[1]) {
		bool alg_ok = true;
		for (const char *p = s; p < colon; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '+' ||
			      *p == '.' || *p == '_' || *p == '-'))
				alg_ok = false;
		if (alg_ok && strncmp(s, "sha256:", 7) != 0)
			return bg_error(BANGER_EUNSUPPORTED, "%s: digest algorithm '%.*s' is not supported "
					"(only sha256)", what, (int)(colon - s), s);
	}
	return bg_error(BANGER_EINVALID, "%s: malformed digest '%.80s' (want sha256: and 64 lowercase "
			"hex digits)", what, s);
}

int bg_digest_final(bg_sha256 *h, char out[BG_DIGEST_SIZE])
{
	memcpy(out, "sha256:", 7);
	return bg_sha256_final_hex(h, out + 7);
}

int bg_digest_of(char out[BG_DIGEST_SIZE], const void *data, size_t len)
{
	memcpy(out, "sha256:", 7);
	return bg_sha256_of_hex(out + 7, data, len);
}
