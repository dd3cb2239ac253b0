/* SSH public keys (wire format, fingerprints, .pub lines) and banger's
 * own ed25519 keys in OpenSSH's private key format. */
#include "guest.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

/* ---- wire format ---- */

typedef struct {
	const unsigned char *p;
	size_t left;
} rd;

static bool rd_u32(rd *r, uint32_t *v)
{
	if (r->left < 4)
		return false;
	*v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
	r->p += 4;
	r->left -= 4;
	return true;
}

static bool rd_u64(rd *r)
{
	if (r->left < 8)
		return false;
	r->p += 8;
	r->left -= 8;
	return true;
}

static bool rd_str(rd *r, const unsigned char **s, size_t *n)
{
	uint32_t len;
	if (!rd_u32(r, &len) || len > r->left)
		return false;
	*s = r->p;
	*n = len;
	r->p += len;
	r->left -= len;
	return true;
}

static bool rd_streq(rd *r, const char *want)
{
	const unsigned char *s;
	size_t n;
	return rd_str(r, &s, &n) && n == strlen(want) && memcmp(s, want, n) == 0;
}

static void put_u32(bg_buf *b, uint32_t v)
{
	unsigned char x[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
			       (unsigned char)v };
	bg_buf_put(b, x, 4);
}

static void put_str(bg_buf *b, const void *s, size_t n)
{
	put_u32(b, (uint32_t)n);
	bg_buf_put(b, s, n);
}

/* An mpint: non-negative; leading zero bytes are accepted and dropped
 * (as sshbuf_get_bignum2_bytes_direct does); re-encoded canonically. */
static bool rd_mpint(rd *r, bg_buf *canon, size_t *bits)
{
	const unsigned char *s;
	size_t n;
	if (!rd_str(r, &s, &n))
		return false;
	if (n > 0 && (s[0] & 0x80))
		return false; /* negative */
	if (n > 16384 / 8 + 1 || (n == 16384 / 8 + 1 && s[0] != 0))
		return false; /* larger than SSHBUF_MAX_BIGNUM */
	while (n > 0 && s[0] == 0) {
		s++;
		n--;
	}
	if (bits) {
		size_t b = n * 8;
		if (n) {
			unsigned char top = s[0];
			while (!(top & 0x80)) {
				top <<= 1;
				b--;
			}
		}
		*bits = b;
	}
	bool pad = n > 0 && (s[0] & 0x80);
	put_u32(canon, (uint32_t)(n + pad));
	if (pad)
		bg_buf_put(canon, "", 1);
	bg_buf_put(canon, s, n);
	return true;
}

typedef struct {
	const char *name;
	int klass;
	int nid;   /* ECDSA curve; 0 for others */
	bool cert;
	bool sigonly_alias; /* "rsa-sha2-*": names only, blobs never carry them */
} key_type;

static const key_type key_types[] = {
	{ "ssh-ed25519", BG_KEY_ED25519, 0, false, false },
	{ "ssh-ed25519-cert-v01@openssh.com", BG_KEY_ED25519, 0, true, false },
	{ "sk-ssh-ed25519@openssh.com", BG_KEY_ED25519_SK, 0, false, false },
	{ "sk-ssh-ed25519-cert-v01@openssh.com", BG_KEY_ED25519_SK, 0, true, false },
	{ "ecdsa-sha2-nistp256", BG_KEY_ECDSA, 256, false, false },
	{ "ecdsa-sha2-nistp384", BG_KEY_ECDSA, 384, false, false },
	{ "ecdsa-sha2-nistp521", BG_KEY_ECDSA, 521, false, false },
	{ "ecdsa-sha2-nistp256-cert-v01@openssh.com", BG_KEY_ECDSA, 256, true, false },
	{ "ecdsa-sha2-nistp384-cert-v01@openssh.com", BG_KEY_ECDSA, 384, true, false },
	{ "ecdsa-sha2-nistp521-cert-v01@openssh.com", BG_KEY_ECDSA, 521, true, false },
	{ "sk-ecdsa-sha2-nistp256@openssh.com", BG_KEY_ECDSA_SK, 256, false, false },
	{ "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com", BG_KEY_ECDSA_SK, 256, true, false },
	{ "ssh-rsa", BG_KEY_RSA, 0, false, false },
	{ "rsa-sha2-256", BG_KEY_RSA, 0, false, true },
	{ "rsa-sha2-512", BG_KEY_RSA, 0, false, true },
	{ "ssh-rsa-cert-v01@openssh.com", BG_KEY_RSA, 0, true, false },
	{ "rsa-sha2-256-cert-v01@openssh.com", BG_KEY_RSA, 0, true, true },
	{ "rsa-sha2-512-cert-v01@openssh.com", BG_KEY_RSA, 0, true, true },
	{ "ssh-dss", BG_KEY_DSA, 0, false, false },
	{ "ssh-dss-cert-v01@openssh.com", BG_KEY_DSA, 0, true, false },
};

/* Short names OpenSSH accepts (case-insensitively) for plain types. */
static const struct { const char *name; int klass; } short_names[] = {
	{ "RSA", BG_KEY_RSA }, { "DSA", BG_KEY_DSA }, { "ECDSA", BG_KEY_ECDSA },
	{ "ED25519", BG_KEY_ED25519 }, { "ECDSA-SK", BG_KEY_ECDSA_SK }, { "ED25519-SK", BG_KEY_ED25519_SK },
};

static const key_type *type_by_blob_name(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < BG_ARRAY_SIZE(key_types); i++)
		if (!key_types[i].sigonly_alias && strlen(key_types[i].name) == n &&
		    memcmp(key_types[i].name, s, n) == 0)
			return &key_types[i];
	return NULL;
}

/* A key type name as written in a file: returns the class, and the curve
 * and cert flag the name implies (nid -1 when the name does not say). */
static int type_from_file_name(const char *s, size_t n, int *nid, bool *cert)
{
	for (size_t i = 0; i < BG_ARRAY_SIZE(key_types); i++)
		if (strlen(key_types[i].name) == n && memcmp(key_types[i].name, s, n) == 0) {
			*nid = key_types[i].klass == BG_KEY_ECDSA ? key_types[i].nid : -1;
			*cert = key_types[i].cert;
			return key_types[i].klass;
		}
	for (size_t i = 0; i < BG_ARRAY_SIZE(short_names); i++)
		if (strlen(short_names[i].name) == n && strncasecmp(short_names[i].name, s, n) == 0) {
			*nid = -1;
			*cert = false;
			return short_names[i].klass;
		}
	return BG_KEY_UNKNOWN;
}

static bool parse_ec_point(rd *r, bg_buf *canon, int nid)
{
	const unsigned char *q;
	size_t n;
	size_t coord = nid == 256 ? 32 : nid == 384 ? 48 : 66;
	if (!rd_str(r, &q, &n) || n != 1 + 2 * coord || q[0] != 0x04)
		return false;
	put_str(canon, q, n);
	return true;
}

/* Parse the public parts of a plain key of type t (after the type name). */
static bool parse_plain_parts(rd *r, bg_buf *canon, const key_type *t)
{
	const unsigned char *s;
	size_t n, bits;
	switch (t->klass) {
	case BG_KEY_ED25519:
	case BG_KEY_ED25519_SK:
		if (!rd_str(r, &s, &n) || n != 32)
			return false;
		put_str(canon, s, n);
		if (t->klass == BG_KEY_ED25519_SK) {
			if (!rd_str(r, &s, &n))
				return false;
			put_str(canon, s, n);
		}
		return true;
	case BG_KEY_ECDSA:
	case BG_KEY_ECDSA_SK: {
		char curve[16];
		snprintf(curve, sizeof(curve), "nistp%d", t->nid);
		if (!rd_streq(r, curve))
			return false;
		put_str(canon, curve, strlen(curve));
		if (!parse_ec_point(r, canon, t->nid))
			return false;
		if (t->klass == BG_KEY_ECDSA_SK) {
			if (!rd_str(r, &s, &n))
				return false;
			put_str(canon, s, n);
		}
		return true;
	}
	case BG_KEY_RSA:
		if (!rd_mpint(r, canon, NULL) || !rd_mpint(r, canon, &bits))
			return false;
		return bits >= 1024; /* SSH_RSA_MINIMUM_MODULUS_SIZE */
	case BG_KEY_DSA:
		for (int i = 0; i < 4; i++)
			if (!rd_mpint(r, canon, NULL))
				return false;
		return true;
	default:
		return false;
	}
}

void bg_sshkey_free(bg_sshkey *k)
{
	if (!k)
		return;
	bg_free(k->type);
	bg_free(k->blob);
	memset(k, 0, sizeof(*k));
}

int bg_sshkey_from_blob(bg_sshkey *out, const void *blob, size_t len)
{
	memset(out, 0, sizeof(*out));
	rd r = { blob, len };
	const unsigned char *tn;
	size_t tlen;
	if (!blob || !rd_str(&r, &tn, &tlen))
		return bg_error(BANGER_EINVALID, "invalid public key: truncated");
	const key_type *t = type_by_blob_name(tn, tlen);
	if (!t)
		return bg_error(BANGER_EINVALID, "unsupported public key type '%.*s'",
				(int)(tlen > 64 ? 64 : tlen), (const char *)tn);
	bg_buf canon = BG_BUF_INIT;
	put_str(&canon, tn, tlen);
	bool ok;
	if (t->cert) {
		/* nonce, the plain key's parts, serial, type, key id, principals,
		 * validity, critical options, extensions, reserved, CA key,
		 * signature.  Certificates are compared byte for byte. */
		const unsigned char *s;
		size_t n;
		uint32_t u;
		bg_buf scratch = BG_BUF_INIT;
		ok = rd_str(&r, &s, &n) && parse_plain_parts(&r, &scratch, t) && rd_u64(&r) && rd_u32(&r, &u) &&
		     rd_str(&r, &s, &n) && rd_str(&r, &s, &n) && rd_u64(&r) && rd_u64(&r) && rd_str(&r, &s, &n) &&
		     rd_str(&r, &s, &n) && rd_str(&r, &s, &n) && rd_str(&r, &s, &n) && rd_str(&r, &s, &n);
		bg_buf_free(&scratch);
		bg_buf_free(&canon);
		if (ok && r.left == 0)
			ok = bg_buf_put(&canon, blob, len) == 0;
	} else {
		ok = parse_plain_parts(&r, &canon, t);
	}
	if (!ok || r.left != 0) {
		bg_buf_free(&canon);
		return bg_error(BANGER_EINVALID, "invalid %s public key", t->name);
	}
	if (canon.oom) {
		bg_buf_free(&canon);
		return bg_error_oom();
	}
	out->type = bg_strdup(t->name);
	out->len = canon.len;
	out->blob = (unsigned char *)bg_buf_detach(&canon);
	out->klass = t->klass;
	out->curve_nid = t->klass == BG_KEY_ECDSA || t->klass == BG_KEY_ECDSA_SK ? t->nid : 0;
	out->cert = t->cert;
	if (!out->type || !out->blob) {
		bg_sshkey_free(out);
		return bg_error_oom();
	}
	return 0;
}

/* Shared by .pub lines and known_hosts: "type<ws>base64[<ws>comment]"
 * starting at s (leading blanks skipped).  Returns 0, or EINVALID
 * without a message. */
int bg_sshkey_parse_fields(bg_sshkey *out, const char *s, size_t len, size_t *consumed)
{
	memset(out, 0, sizeof(*out));
	size_t i = 0;
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i >= len || s[i] == '#')
		return BANGER_EINVALID;
	size_t t0 = i;
	while (i < len && s[i] != ' ' && s[i] != '\t')
		i++;
	size_t tlen = i - t0;
	if (i >= len)
		return BANGER_EINVALID; /* no key data */
	int nid;
	bool cert;
	int klass = type_from_file_name(s + t0, tlen, &nid, &cert);
	if (klass == BG_KEY_UNKNOWN)
		return BANGER_EINVALID;
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i >= len || s[i] == '#')
		return BANGER_EINVALID;
	size_t b0 = i;
	while (i < len && s[i] != ' ' && s[i] != '\t')
		i++;
	unsigned char *blob;
	size_t blen;
	int rc = bg_base64_decode(&blob, &blen, s + b0, i - b0);
	if (rc)
		return rc;
	bg_error_saved saved;
	bg_error_save(&saved);
	rc = bg_sshkey_from_blob(out, blob, blen);
	bg_error_restore(&saved);
	bg_free(blob);
	if (rc)
		return rc == BANGER_ENOMEM ? rc : BANGER_EINVALID;
	/* The name must agree with the blob (class, certificate-ness, and
	 * for ECDSA the curve when the name gives one). */
	if (out->klass != klass || out->cert != cert ||
	    (klass == BG_KEY_ECDSA && nid != out->curve_nid)) {
		bg_sshkey_free(out);
		return BANGER_EINVALID;
	}
	if (consumed)
		*consumed = i;
	return 0;
}

int bg_sshkey_from_line(bg_sshkey *out, const char *line)
{
	if (!line)
		return bg_error(BANGER_EINVALID, "public key line must not be NULL");
	size_t len = strcspn(line, "\n");
	int rc = bg_sshkey_parse_fields(out, line, len, NULL);
	if (rc == BANGER_EINVALID)
		return bg_error(BANGER_EINVALID, "not a valid public key line (expected \"type base64 [comment]\")");
	return rc ? bg_error_oom() : 0;
}

bool bg_sshkey_equal(const bg_sshkey *a, const bg_sshkey *b)
{
	return a && b && a->len == b->len && memcmp(a->blob, b->blob, a->len) == 0;
}

int bg_sshkey_fingerprint(char **out, const bg_sshkey *k)
{
	unsigned char md[BG_SHA256_LEN];
	*out = NULL;
	int rc = bg_sha256_of(md, k->blob, k->len);
	if (rc)
		return rc;
	char *b64 = bg_base64_encode(md, sizeof(md), false);
	if (!b64)
		return bg_error_oom();
	*out = bg_sprintf("SHA256:%s", b64);
	bg_free(b64);
	return *out ? 0 : bg_error_oom();
}

int bg_sshkey_to_line(char **out, const bg_sshkey *k)
{
	char *b64 = bg_base64_encode(k->blob, k->len, true);
	*out = b64 ? bg_sprintf("%s %s", k->type, b64) : NULL;
	bg_free(b64);
	return *out ? 0 : bg_error_oom();
}

void bg_free_secret(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		bg_free(s);
	}
}

/* ---- ed25519 key generation, OpenSSH private key format ---- */

#define OPENSSH_BEGIN "-----BEGIN OPENSSH PRIVATE KEY-----\n"
#define OPENSSH_END "-----END OPENSSH PRIVATE KEY-----\n"
#define OPENSSH_MAGIC "openssh-key-v1"

int bg_sshkey_generate_ed25519(char **private_openssh, char **public_line, const char *comment)
{
	*private_openssh = NULL;
	*public_line = NULL;
	if (!comment)
		comment = "";
	unsigned char seed[32], pk[32], sk[64];
	size_t seedlen = sizeof(seed), pklen = sizeof(pk);
	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!pkey)
		return bg_error_lib(BANGER_ERROR, "openssl", 0, "ed25519 key generation failed");
	int ok = EVP_PKEY_get_raw_private_key(pkey, seed, &seedlen) == 1 &&
		 EVP_PKEY_get_raw_public_key(pkey, pk, &pklen) == 1 && seedlen == 32 && pklen == 32;
	EVP_PKEY_free(pkey);
	if (!ok) {
		OPENSSL_cleanse(seed, sizeof(seed));
		return bg_error_lib(BANGER_ERROR, "openssl", 0, "cannot read the ed25519 key");
	}
	memcpy(sk, seed, 32);
	memcpy(sk + 32, pk, 32);
	OPENSSL_cleanse(seed, sizeof(seed));

	bg_buf pub = BG_BUF_INIT, priv = BG_BUF_INIT, file = BG_BUF_INIT, out = BG_BUF_INIT;
	put_str(&pub, "ssh-ed25519", 11);
	put_str(&pub, pk, 32);

	uint32_t check;
	int rc = bg_random_bytes(&check, sizeof(check));
	if (rc)
		goto done;
	put_u32(&priv, check);
	put_u32(&priv, check);
	put_str(&priv, "ssh-ed25519", 11);
	put_str(&priv, pk, 32);
	put_str(&priv, sk, 64);
	put_str(&priv, comment, strlen(comment));
	/* cipher "none": block size 8.  Stop on a failed append too: the
	 * length would never reach a multiple of 8. */
	for (unsigned char pad = 1; priv.len % 8 && !priv.oom; pad++)
		bg_buf_put(&priv, &pad, 1);

	bg_buf_put(&file, OPENSSH_MAGIC, sizeof(OPENSSH_MAGIC)); /* with its NUL */
	put_str(&file, "none", 4); /* cipher */
	put_str(&file, "none", 4); /* kdf */
	put_str(&file, "", 0);     /* kdf options */
	put_u32(&file, 1);         /* one key */
	put_str(&file, pub.data, pub.len);
	put_str(&file, priv.data, priv.len);
	if (pub.oom || priv.oom || file.oom) {
		rc = bg_error_oom();
		goto done;
	}
	char *b64 = bg_base64_encode((unsigned char *)file.data, file.len, true);
	if (!b64) {
		rc = bg_error_oom();
		goto done;
	}
	bg_buf_puts(&out, OPENSSH_BEGIN);
	for (size_t i = 0, n = strlen(b64); i < n; i += 70) {
		bg_buf_put(&out, b64 + i, n - i < 70 ? n - i : 70);
		bg_buf_puts(&out, "\n");
	}
	bg_buf_puts(&out, OPENSSH_END);
	bg_free_secret(b64);
	char *pub64 = bg_base64_encode((unsigned char *)pub.data, pub.len, true);
	*public_line = pub64 ? bg_sprintf("ssh-ed25519 %s%s%s\n", pub64, *comment ? " " : "", comment) : NULL;
	bg_free(pub64);
	if (out.oom || !*public_line) {
		bg_free(*public_line);
		*public_line = NULL;
		rc = bg_error_oom();
		goto done;
	}
	*private_openssh = bg_buf_detach(&out);
done:
	OPENSSL_cleanse(sk, sizeof(sk));
	if (priv.data)
		OPENSSL_cleanse(priv.data, priv.len);
	if (file.data)
		OPENSSL_cleanse(file.data, file.len);
	if (out.data)
		OPENSSL_cleanse(out.data, out.len);
	bg_buf_free(&pub);
	bg_buf_free(&priv);
	bg_buf_free(&file);
	bg_buf_free(&out);
	return rc;
}

int bg_sshkey_from_private_openssh(bg_sshkey *out, const char *pem)
{
	memset(out, 0, sizeof(*out));
	const char *b = strstr(pem, OPENSSH_BEGIN);
	const char *e = b ? strstr(b, OPENSSH_END) : NULL;
	if (!b || !e)
		return bg_error(BANGER_EINVALID, "not an OpenSSH private key");
	b += strlen(OPENSSH_BEGIN);
	unsigned char *raw;
	size_t rawlen;
	int rc = bg_base64_decode(&raw, &rawlen, b, (size_t)(e - b));
	if (rc)
		return rc == BANGER_ENOMEM ? rc : bg_error(BANGER_EINVALID, "corrupt OpenSSH private key");
	rd r = { raw, rawlen };
	const unsigned char *s;
	size_t n;
	uint32_t nkeys;
	rc = BANGER_EINVALID;
	if (rawlen >= sizeof(OPENSSH_MAGIC) && memcmp(raw, OPENSSH_MAGIC, sizeof(OPENSSH_MAGIC)) == 0) {
		r.p += sizeof(OPENSSH_MAGIC);
		r.left -= sizeof(OPENSSH_MAGIC);
		/* cipher, kdf, kdf options: three reads in turn, not one repeated */
		if (rd_str(&r, &s, &n) && rd_str(&r, &s, &n) && rd_str(&r, &s, &n) && // NOLINT(misc-redundant-expression)
		    rd_u32(&r, &nkeys) &&
		    nkeys >= 1 && rd_str(&r, &s, &n))
			rc = bg_sshkey_from_blob(out, s, n);
	}
	OPENSSL_cleanse(raw, rawlen);
	bg_free(raw);
	if (rc == BANGER_EINVALID)
		return bg_error(BANGER_EINVALID, "corrupt OpenSSH private key");
	return rc;
}

/* ---- banger's client identity ---- */

int bg_client_key_ensure(const char *key_path, char **public_line)
{
	if (public_line)
		*public_line = NULL;
	char *lock_path = bg_sprintf("%s.lock", key_path);
	char *pub_path = bg_sprintf("%s.pub", key_path);
	char *priv = NULL, *pub = NULL;
	bg_lock lock = BG_LOCK_INIT;
	bg_sshkey key = { 0 };
	int rc;
	if (!lock_path || !pub_path) {
		rc = bg_error_oom();
		goto out;
	}
	if ((rc = bg_lock_acquire(&lock, lock_path, 10000)))
		goto out;
	if (!bg_path_exists(key_path)) {
		char host[256] = "localhost";
		gethostname(host, sizeof(host) - 1);
		host[sizeof(host) - 1] = '\0';
		char *comment = bg_sprintf("banger@%s", host);
		if (!comment) {
			rc = bg_error_oom();
			goto out;
		}
		rc = bg_sshkey_generate_ed25519(&priv, &pub, comment);
		bg_free(comment);
		if (rc)
			goto out;
		/* Public first: a crash in between leaves no private key and
		 * the next call starts over. */
		if ((rc = bg_write_file_atomic(pub_path, pub, strlen(pub), 0644)) ||
		    (rc = bg_write_file_atomic(key_path, priv, strlen(priv), 0600)))
			goto out;
	} else {
		struct stat st;
		if (stat(key_path, &st) != 0) {
			rc = bg_error_os(BANGER_EIO, errno, "stat %s", key_path);
			goto out;
		}
		if (st.st_mode & 077) {
			rc = bg_error(BANGER_EPERM, "%s is accessible by group or others (mode %03o); "
				      "fix with: chmod 600 %s", key_path, (unsigned)(st.st_mode & 0777), key_path);
			goto out;
		}
		if (!public_line)
			goto out;
		if ((rc = bg_read_file(&priv, NULL, key_path, 1 << 20)))
			goto out;
		if ((rc = bg_sshkey_from_private_openssh(&key, priv))) {
			bg_error_prefix("%s", key_path);
			goto out;
		}
		char *line;
		if ((rc = bg_sshkey_to_line(&line, &key)))
			goto out;
		pub = bg_sprintf("%s banger\n", line);
		bg_free(line);
		if (!pub) {
			rc = bg_error_oom();
			goto out;
		}
		/* Prefer the .pub file's comment when it holds the same key. */
		char *file_pub = NULL;
		bg_sshkey fk = { 0 };
		if (bg_read_file(&file_pub, NULL, pub_path, 1 << 16) == 0 &&
		    bg_sshkey_from_line(&fk, file_pub) == 0 && bg_sshkey_equal(&fk, &key)) {
			bg_free(pub);
			pub = file_pub;
			file_pub = NULL;
		}
		bg_sshkey_free(&fk);
		bg_free(file_pub);
	}
	if (public_line) {
		pub[strcspn(pub, "\r\n")] = '\0';
		*public_line = pub;
		pub = NULL;
	}
out:
	bg_lock_release(&lock);
	bg_sshkey_free(&key);
	bg_free_secret(priv);
	bg_free(pub);
	bg_free(lock_path);
	bg_free(pub_path);
	return rc;
}
