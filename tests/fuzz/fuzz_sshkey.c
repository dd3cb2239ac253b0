/* SSH public keys: .pub lines, wire-format blobs, base64, and the
 * OpenSSH private key format banger reads back for its own keys.
 *
 * The input is tried as a key line, as a blob, as base64 and as a private
 * key file.  Checked: a parsed key prints as a line that parses to the
 * same key; a blob that parses re-encodes to its canonical form, which
 * parses again to an equal key; base64 decoding is stable under
 * re-encoding; fingerprints have their fixed shape. */
#include "fuzz.h"
#include "../../libbanger/guest/guest.h"

static void check_key(const bg_sshkey *k)
{
	FUZZ_CHECK(k->type && k->blob && k->len > 0);
	char *line = NULL;
	int rc = bg_sshkey_to_line(&line, k);
	if (rc) {
		FUZZ_CHECK(rc == BANGER_ENOMEM);
		return;
	}
	bg_sshkey k2;
	rc = bg_sshkey_from_line(&k2, line);
	FUZZ_CHECK(rc == 0 || rc == BANGER_ENOMEM);
	if (rc == 0) {
		FUZZ_CHECK(bg_sshkey_equal(k, &k2));
		FUZZ_CHECK(strcmp(k->type, k2.type) == 0 && k->klass == k2.klass && k->cert == k2.cert &&
			   k->curve_nid == k2.curve_nid);
		bg_sshkey_free(&k2);
	}
	bg_sshkey k3;
	rc = bg_sshkey_from_blob(&k3, k->blob, k->len);
	FUZZ_CHECK(rc == 0 || rc == BANGER_ENOMEM);
	if (rc == 0) {
		FUZZ_CHECK(bg_sshkey_equal(k, &k3));
		bg_sshkey_free(&k3);
	}
	char *fp = NULL;
	if (bg_sshkey_fingerprint(&fp, k) == 0) {
		/* "SHA256:" + 43 characters of unpadded base64 */
		FUZZ_CHECK(strncmp(fp, "SHA256:", 7) == 0 && strlen(fp) == 7 + 43);
		bg_free(fp);
	}
	bg_free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	bg_sshkey k;

	/* a .pub line */
	if (bg_sshkey_from_line(&k, s) == 0) {
		check_key(&k);
		bg_sshkey_free(&k);
	}
	/* the fields as known_hosts reads them */
	size_t consumed = 0;
	if (bg_sshkey_parse_fields(&k, s, size, &consumed) == 0) {
		FUZZ_CHECK(consumed > 0 && consumed <= size);
		check_key(&k);
		bg_sshkey_free(&k);
	}
	/* a wire-format blob */
	if (bg_sshkey_from_blob(&k, data, size) == 0) {
		if (!k.cert)
			FUZZ_CHECK(k.len <= size);
		else
			FUZZ_CHECK(k.len == size && memcmp(k.blob, data, size) == 0);
		check_key(&k);
		bg_sshkey_free(&k);
	}
	/* base64 */
	unsigned char *raw = NULL;
	size_t raw_len = 0;
	if (bg_base64_decode(&raw, &raw_len, s, size) == 0) {
		char *enc = bg_base64_encode(raw, raw_len, true);
		if (enc) {
			unsigned char *raw2 = NULL;
			size_t raw2_len = 0;
			FUZZ_CHECK(bg_base64_decode(&raw2, &raw2_len, enc, strlen(enc)) == 0);
			FUZZ_CHECK(raw2_len == raw_len && (raw_len == 0 || memcmp(raw, raw2, raw_len) == 0));
			bg_free(raw2);
			bg_free(enc);
		}
		bg_free(raw);
	}
	/* an OpenSSH private key file */
	if (bg_sshkey_from_private_openssh(&k, s) == 0) {
		check_key(&k);
		bg_sshkey_free(&k);
	}
	free(s);
	return 0;
}
