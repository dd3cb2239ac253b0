/* Digests: strict parsing ("sha256:" + 64 lowercase hex, nothing else
 * goes near a path or URL) and streaming SHA-256 through libcrypto. */
#include "image.h"

#include <openssl/evp.h>
#include <string.h>

struct bg_sha256 {
	EVP_MD_CTX *md;
};

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

int bg_sha256_new(bg_sha256 **out)
{
	*out = NULL;
	bg_sha256 *h = bg_calloc(1, sizeof(*h));
	if (!h)
		return bg_error_oom();
	h->md = EVP_MD_CTX_new();
	if (!h->md || EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(h->md);
		bg_free(h);
		return bg_error_lib(BANGER_ENOMEM, "openssl", 0, "cannot set up SHA-256");
	}
	*out = h;
	return 0;
}

void bg_sha256_update(bg_sha256 *h, const void *data, size_t len)
{
	if (len)
		EVP_DigestUpdate(h->md, data, len);
}

void bg_sha256_final(bg_sha256 *h, char out[BG_DIGEST_SIZE])
{
	unsigned char md[32];
	unsigned int n = 0;
	EVP_DigestFinal_ex(h->md, md, &n);
	memcpy(out, "sha256:", 7);
	bg_hex(out + 7, md, 32);
}

void bg_sha256_reset(bg_sha256 *h)
{
	EVP_DigestInit_ex(h->md, EVP_sha256(), NULL);
}

void bg_sha256_free(bg_sha256 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->md);
	bg_free(h);
}

int bg_sha256_digest(char out[BG_DIGEST_SIZE], const void *data, size_t len)
{
	bg_sha256 *h;
	int rc = bg_sha256_new(&h);
	if (rc)
		return rc;
	bg_sha256_update(h, data, len);
	bg_sha256_final(h, out);
	bg_sha256_free(h);
	return 0;
}
