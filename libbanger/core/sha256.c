/* SHA-256, the one implementation every module uses: libcrypto's EVP
 * (linked anyway for TLS), streaming or one-shot, raw or as hex.
 *
 * EVP can fail in principle (an engine, a FIPS provider refusing); an
 * update that fails is remembered and reported by the final call, so a
 * streaming caller (a curl callback, a layer reader) checks once, at the
 * end, and never publishes a digest of data that was not all hashed. */
#include "core.h"

#include <openssl/evp.h>

struct bg_sha256 {
	EVP_MD_CTX *md;
	bool failed; /* an update failed since the last init */
};

static int sha_failed(void)
{
	return bg_error_lib(BANGER_ERROR, "openssl", 0, "SHA-256 failed");
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

int bg_sha256_update(bg_sha256 *h, const void *data, size_t len)
{
	if (len && !h->failed && EVP_DigestUpdate(h->md, data, len) != 1)
		h->failed = true;
	return h->failed ? sha_failed() : 0;
}

int bg_sha256_final(bg_sha256 *h, unsigned char md[BG_SHA256_LEN])
{
	unsigned int n = 0;
	if (h->failed || EVP_DigestFinal_ex(h->md, md, &n) != 1 || n != BG_SHA256_LEN)
		return sha_failed();
	return 0;
}

int bg_sha256_final_hex(bg_sha256 *h, char hex[BG_SHA256_HEX_SIZE])
{
	unsigned char md[BG_SHA256_LEN];
	int rc = bg_sha256_final(h, md);
	if (rc == 0)
		bg_hex(hex, md, sizeof(md));
	return rc;
}

int bg_sha256_reset(bg_sha256 *h)
{
	h->failed = EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1;
	return h->failed ? sha_failed() : 0;
}

void bg_sha256_free(bg_sha256 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->md);
	bg_free(h);
}

int bg_sha256_of(unsigned char md[BG_SHA256_LEN], const void *data, size_t len)
{
	unsigned int n = 0;
	if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != BG_SHA256_LEN)
		return sha_failed();
	return 0;
}

int bg_sha256_of_hex(char hex[BG_SHA256_HEX_SIZE], const void *data, size_t len)
{
	unsigned char md[BG_SHA256_LEN];
	int rc = bg_sha256_of(md, data, len);
	if (rc == 0)
		bg_hex(hex, md, sizeof(md));
	return rc;
}
