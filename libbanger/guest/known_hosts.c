/* banger's own known_hosts parser, matcher and writer.
 *
 * The verdicts follow OpenSSH 9.2 (hostfile.c hostkeys_foreach_file,
 * check_hostkeys_by_key_or_type, check_markers; match.c
 * match_pattern_list; sshconnect.c check_host_key) on the documented
 * format (sshd(8), SSH_KNOWN_HOSTS FILE FORMAT):
 *
 *   [@marker] patterns keytype base64 [comment]
 *
 * Lines are split on '\n' only ('\r' stays in the line and is skipped as
 * whitespace inside the base64 field, as b64_pton does), are of any
 * length, and a line that cannot be parsed is skipped, never fatal.
 * Rewrites keep every untouched line byte for byte. */
#include "guest.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

enum { MRK_NONE = 0, MRK_CA = 1, MRK_REVOKE = 2 };

#define HASH_MAGIC "|1|"
#define SHA1_LEN 20
/* known_hosts larger than this is refused rather than read into memory. */
#define KH_MAX_SIZE (256u << 20)

typedef struct {
	const char *raw;  /* start of the line in the text */
	size_t raw_len;   /* including its '\n' when present */
	size_t len;       /* content: up to '\n' or the first NUL */
	uint32_t lineno;
	bool entry;       /* a valid entry */
	int marker;
	size_t host_off, host_len;
	bool hashed;
	unsigned char salt[SHA1_LEN];
	bg_sshkey key;
	/* rewrite state */
	bool drop;
	char *new_hosts; /* replacement host field, or NULL */
} kh_line;

typedef struct {
	kh_line *v;
	size_t n, cap;
} kh_file;

static void kh_file_free(kh_file *f)
{
	for (size_t i = 0; i < f->n; i++) {
		bg_sshkey_free(&f->v[i].key);
		bg_free(f->v[i].new_hosts);
	}
	bg_free(f->v);
	memset(f, 0, sizeof(*f));
}

/* check_markers(): at most one marker, terminated by the first space in
 * the rest of the line, else by the first tab (OpenSSH's own order). */
static bool parse_marker(const char *s, size_t n, size_t *i, int *marker)
{
	*marker = MRK_NONE;
	while (*i < n && s[*i] == '@') {
		if (*marker != MRK_NONE)
			return false;
		const char *rest = s + *i;
		size_t left = n - *i;
		const char *sp = memchr(rest, ' ', left);
		if (!sp)
			sp = memchr(rest, '\t', left);
		if (!sp)
			return false;
		size_t mlen = (size_t)(sp - rest);
		if (mlen <= 1 || mlen >= 32)
			return false;
		if (mlen == 15 && memcmp(rest, "@cert-authority", 15) == 0)
			*marker = MRK_CA;
		else if (mlen == 8 && memcmp(rest, "@revoked", 8) == 0)
			*marker = MRK_REVOKE;
		else
			return false;
		*i += mlen;
		while (*i < n && (s[*i] == ' ' || s[*i] == '\t'))
			(*i)++;
	}
	return true;
}

/* "|1|base64(salt)|base64(hmac)": the salt must decode to 20 bytes.
 * 0, BANGER_EINVALID, or BANGER_ENOMEM. */
static int parse_hashed(const char *h, size_t n, unsigned char salt[SHA1_LEN])
{
	if (n < 3 || memcmp(h, HASH_MAGIC, 3) != 0)
		return BANGER_EINVALID;
	const char *s = h + 3;
	const char *bar = memchr(s, '|', n - 3);
	if (!bar)
		return BANGER_EINVALID;
	size_t slen = (size_t)(bar - s);
	if (slen == 0 || slen > 1024)
		return BANGER_EINVALID;
	unsigned char *raw;
	size_t rawlen;
	int rc = bg_base64_decode(&raw, &rawlen, s, slen);
	if (rc)
		return rc;
	rc = rawlen == SHA1_LEN ? 0 : BANGER_EINVALID;
	if (rc == 0)
		memcpy(salt, raw, SHA1_LEN);
	bg_free(raw);
	return rc;
}

/* Parse one line; an unparseable line is simply not an entry.  Only
 * allocation failure is an error: a pin must never be skipped for lack
 * of memory. */
static int parse_line(kh_line *l)
{
	const char *s = l->raw;
	size_t n = l->len, i = 0;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i >= n || s[i] == '#')
		return 0; /* blank or comment */
	if (!parse_marker(s, n, &i, &l->marker))
		return 0;
	size_t h0 = i;
	while (i < n && s[i] != ' ' && s[i] != '\t')
		i++;
	if (i == h0)
		return 0;
	l->host_off = h0;
	l->host_len = i - h0;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i >= n || s[i] == '#')
		return 0; /* truncated before the key type */
	int rc;
	if (s[h0] == '|') {
		if ((rc = parse_hashed(s + h0, l->host_len, l->salt)))
			return rc == BANGER_ENOMEM ? bg_error_oom() : 0;
		l->hashed = true;
	}
	if ((rc = bg_sshkey_parse_fields(&l->key, s + i, n - i, NULL)))
		return rc == BANGER_ENOMEM ? bg_error_oom() : 0;
	l->entry = true;
	return 0;
}

static int kh_parse(kh_file *f, const char *text, size_t len)
{
	memset(f, 0, sizeof(*f));
	size_t off = 0;
	uint32_t lineno = 0;
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t raw_len = nl ? (size_t)(nl - (text + off)) + 1 : len - off;
		size_t content = nl ? raw_len - 1 : raw_len;
		const char *nul = memchr(text + off, '\0', content);
		if (f->n == f->cap) {
			size_t cap = f->cap ? f->cap * 2 : 32;
			kh_line *v = bg_realloc(f->v, cap * sizeof(*v));
			if (!v) {
				kh_file_free(f);
				return bg_error_oom();
			}
			f->v = v;
			f->cap = cap;
		}
		kh_line *l = &f->v[f->n++];
		memset(l, 0, sizeof(*l));
		l->raw = text + off;
		l->raw_len = raw_len;
		l->len = nul ? (size_t)(nul - (text + off)) : content;
		l->lineno = ++lineno;
		int rc = parse_line(l);
		if (rc) {
			kh_file_free(f);
			return rc;
		}
		off += raw_len;
	}
	return 0;
}

/* ---- name matching ---- */

/* '*' and '?' glob (match.c match_pattern) without recursion. */
static bool glob_match(const char *s, size_t sn, const char *p, size_t pn)
{
	size_t si = 0, pi = 0, star_p = (size_t)-1, star_s = 0;
	while (si < sn) {
		if (pi < pn && p[pi] == '*') {
			star_p = ++pi;
			star_s = si;
		} else if (pi < pn && (p[pi] == '?' || p[pi] == s[si])) {
			pi++;
			si++;
		} else if (star_p != (size_t)-1) {
			pi = star_p;
			si = ++star_s;
		} else {
			return false;
		}
	}
	while (pi < pn && p[pi] == '*')
		pi++;
	return pi == pn;
}

int bg_kh_match_list(const char *name, const char *pat, size_t len)
{
	char sub[1024];
	size_t sn = strlen(name);
	bool positive = false;
	for (size_t i = 0; i < len;) {
		bool negated = pat[i] == '!';
		if (negated)
			i++;
		size_t subi = 0;
		for (; i < len && subi < sizeof(sub) - 1 && pat[i] != ','; subi++, i++)
			sub[subi] = (char)tolower((unsigned char)pat[i]);
		if (subi >= sizeof(sub) - 1)
			return 0; /* over-long subpattern: no match at all, as OpenSSH */
		if (i < len && pat[i] == ',')
			i++;
		if (glob_match(name, sn, sub, subi)) {
			if (negated)
				return -1;
			positive = true;
		}
	}
	return positive ? 1 : 0;
}

static int hash_with_salt(char **out, const char *name, const unsigned char salt[SHA1_LEN])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	*out = NULL;
	if (!HMAC(EVP_sha1(), salt, SHA1_LEN, (const unsigned char *)name, strlen(name), mac, &maclen) ||
	    maclen != SHA1_LEN)
		return bg_error_lib(BANGER_ERROR, "openssl", 0, "HMAC-SHA1 failed");
	char *s64 = bg_base64_encode(salt, SHA1_LEN, true);
	char *m64 = bg_base64_encode(mac, SHA1_LEN, true);
	if (s64 && m64)
		*out = bg_sprintf(HASH_MAGIC "%s|%s", s64, m64);
	bg_free(s64);
	bg_free(m64);
	return *out ? 0 : bg_error_oom();
}

int bg_kh_hash_name(char **out, const char *name)
{
	unsigned char salt[SHA1_LEN];
	int rc = bg_random_bytes(salt, sizeof(salt));
	return rc ? rc : hash_with_salt(out, name, salt);
}

/* Does the line's host field match the (lowercased) name?  1 yes, 0 no,
 * negative on an internal error. */
static int line_matches(const kh_line *l, const char *name)
{
	if (l->hashed) {
		char *h;
		int rc = hash_with_salt(&h, name, l->salt);
		if (rc)
			return rc;
		bool eq = strlen(h) == l->host_len && memcmp(h, l->raw + l->host_off, l->host_len) == 0;
		bg_free(h);
		return eq;
	}
	return bg_kh_match_list(name, l->raw + l->host_off, l->host_len) == 1;
}

static char *lower_dup(const char *s)
{
	char *d = bg_strdup(s);
	if (d)
		for (char *p = d; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	return d;
}

char *bg_kh_lookup_name(const char *host, uint16_t port)
{
	char *n = port == 0 || port == 22 ? bg_strdup(host) : bg_sprintf("[%s]:%u", host, (unsigned)port);
	if (n)
		for (char *p = n; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	return n;
}

/* check_hostkeys_by_key_or_type() for a plain key under one name. */
static int verdict_for(const kh_file *f, const char *name, const bg_sshkey *key, const kh_line **deciding)
{
	int v = BANGER_HOSTKEY_NOT_FOUND;
	*deciding = NULL;
	for (size_t i = 0; i < f->n; i++) {
		const kh_line *l = &f->v[i];
		if (!l->entry || l->marker != MRK_NONE)
			continue;
		int m = line_matches(l, name);
		if (m < 0)
			return m;
		if (!m)
			continue;
		if (bg_sshkey_equal(&l->key, key)) {
			v = BANGER_HOSTKEY_MATCH;
			*deciding = l;
			break;
		}
		v = BANGER_HOSTKEY_MISMATCH;
		*deciding = l;
	}
	for (size_t i = 0; i < f->n; i++) {
		const kh_line *l = &f->v[i];
		if (!l->entry || l->marker != MRK_REVOKE || !bg_sshkey_equal(&l->key, key))
			continue;
		int m = line_matches(l, name);
		if (m < 0)
			return m;
		if (m) {
			*deciding = l;
			return BANGER_HOSTKEY_REVOKED;
		}
	}
	return v;
}

void bg_kh_result_free(bg_kh_result *r)
{
	if (!r)
		return;
	bg_free(r->lookup_name);
	bg_free(r->pinned_fp);
	bg_free(r->pinned_type);
	memset(r, 0, sizeof(*r));
}

static int check_parsed(bg_kh_result *out, const kh_file *f, const char *host, uint16_t port,
			const bg_sshkey *key)
{
	const kh_line *dec = NULL;
	char *name = bg_kh_lookup_name(host, port);
	if (!name)
		return bg_error_oom();
	int v = verdict_for(f, name, key, &dec);
	if (v == BANGER_HOSTKEY_NOT_FOUND && port != 0 && port != 22) {
		/* sshconnect.c: retry without the port; only an exact match
		 * counts there, anything else stays "not found". */
		char *bare = lower_dup(host);
		if (!bare) {
			bg_free(name);
			return bg_error_oom();
		}
		const kh_line *d2 = NULL;
		int v2 = verdict_for(f, bare, key, &d2);
		if (v2 < 0) {
			v = v2;
			bg_free(bare);
		} else if (v2 == BANGER_HOSTKEY_MATCH) {
			v = v2;
			dec = d2;
			bg_free(name);
			name = bare;
		} else {
			bg_free(bare);
		}
	}
	if (v < 0) {
		bg_free(name);
		return v;
	}
	out->verdict = v;
	out->lookup_name = name;
	out->line = dec ? dec->lineno : 0;
	if (v == BANGER_HOSTKEY_MISMATCH && dec) {
		int rc = bg_sshkey_fingerprint(&out->pinned_fp, &dec->key);
		out->pinned_type = bg_strdup(dec->key.type);
		if (rc || !out->pinned_type) {
			bg_kh_result_free(out);
			return rc ? rc : bg_error_oom();
		}
	}
	return 0;
}

int bg_known_hosts_check_text(bg_kh_result *out, const char *text, size_t len, const char *host,
			      uint16_t port, const bg_sshkey *key)
{
	memset(out, 0, sizeof(*out));
	if (!host || !*host || !key)
		return bg_error(BANGER_EINVALID, "host and key are required");
	if (key->cert)
		return bg_error(BANGER_EUNSUPPORTED, "host certificates are not verified by banger");
	kh_file f;
	int rc = kh_parse(&f, text, len);
	if (rc)
		return rc;
	rc = check_parsed(out, &f, host, port, key);
	kh_file_free(&f);
	return rc;
}

static int read_kh(char **text, size_t *len, const char *path)
{
	*text = NULL;
	*len = 0;
	int rc = bg_read_file(text, len, path, KH_MAX_SIZE);
	if (rc == BANGER_ENOTFOUND) {
		*text = bg_strdup("");
		return *text ? 0 : bg_error_oom();
	}
	return rc;
}

int bg_known_hosts_check(bg_kh_result *out, const char *path, const char *host, uint16_t port,
			 const bg_sshkey *key)
{
	memset(out, 0, sizeof(*out));
	if (!path)
		return bg_error(BANGER_EINVALID, "known_hosts path is required");
	char *text;
	size_t len;
	int rc = read_kh(&text, &len, path);
	if (rc)
		return rc;
	rc = bg_known_hosts_check_text(out, text, len, host, port, key);
	bg_free(text);
	return rc;
}

/* ---- rewriting ---- */

/* Emit the file: kept lines verbatim, edited lines with their new host
 * field, and a newline after the last line. */
static int emit(bg_buf *b, const kh_file *f)
{
	for (size_t i = 0; i < f->n; i++) {
		const kh_line *l = &f->v[i];
		if (l->drop)
			continue;
		if (l->new_hosts) {
			bg_buf_put(b, l->raw, l->host_off);
			bg_buf_puts(b, l->new_hosts);
			size_t after = l->host_off + l->host_len;
			bg_buf_put(b, l->raw + after, l->raw_len - after);
		} else {
			bg_buf_put(b, l->raw, l->raw_len);
		}
		if (b->len && b->data[b->len - 1] != '\n')
			bg_buf_puts(b, "\n");
	}
	return b->oom ? bg_error_oom() : 0;
}

/* Is this subpattern (lowercased already) a spelling of name?  With
 * any_port, "[name]:PORT" counts for every PORT. */
static bool spelling_of(const char *sub, size_t n, const char *name, bool any_port)
{
	size_t nl = strlen(name);
	if (n == nl && memcmp(sub, name, n) == 0)
		return true;
	if (!any_port || n < nl + 4 || sub[0] != '[' || memcmp(sub + 1, name, nl) != 0 ||
	    sub[nl + 1] != ']' || sub[nl + 2] != ':')
		return false;
	for (size_t i = nl + 3; i < n; i++)
		if (!isdigit((unsigned char)sub[i]))
			return false;
	return true;
}

/* Take the spellings of names out of one plain line's host list.
 * Returns the number removed (and sets drop/new_hosts), or < 0. */
static int strip_names(kh_line *l, char *const *names, const bool *any_port, size_t count)
{
	if (l->hashed) {
		for (size_t k = 0; k < count; k++) {
			int m = line_matches(l, names[k]);
			if (m < 0)
				return m;
			if (m) {
				l->drop = true;
				return 1;
			}
		}
		return 0;
	}
	const char *h = l->raw + l->host_off;
	size_t hn = l->host_len;
	bg_buf kept = BG_BUF_INIT;
	int removed = 0;
	size_t nkept = 0;
	char sub[1024];
	for (size_t i = 0; i <= hn;) {
		const char *comma = memchr(h + i, ',', hn - i);
		size_t end = comma ? (size_t)(comma - h) : hn;
		size_t sl = end - i;
		bool gone = false;
		if (sl > 0 && sl < sizeof(sub) && h[i] != '!' && !memchr(h + i, '*', sl) && !memchr(h + i, '?', sl)) {
			for (size_t j = 0; j < sl; j++)
				sub[j] = (char)tolower((unsigned char)h[i + j]);
			for (size_t k = 0; k < count && !gone; k++)
				gone = spelling_of(sub, sl, names[k], any_port[k]);
		}
		if (gone) {
			removed++;
		} else {
			if (nkept++)
				bg_buf_puts(&kept, ",");
			bg_buf_put(&kept, h + i, sl);
		}
		if (!comma)
			break;
		i = end + 1;
	}
	if (kept.oom) {
		bg_buf_free(&kept);
		return bg_error_oom();
	}
	if (removed) {
		if (kept.len == 0 || strspn(kept.data, ",") == kept.len) {
			l->drop = true;
		} else {
			bg_free(l->new_hosts);
			l->new_hosts = bg_buf_detach(&kept);
			if (!l->new_hosts)
				return bg_error_oom();
		}
	}
	bg_buf_free(&kept);
	return removed;
}

static int lower_names(char ***out, bool **any_port, const char *const *names, size_t count, uint16_t port,
		       bool spell_port)
{
	*out = bg_calloc(count ? count : 1, sizeof(char *));
	*any_port = bg_calloc(count ? count : 1, sizeof(bool));
	if (!*out || !*any_port)
		return bg_error_oom();
	for (size_t i = 0; i < count; i++) {
		if (!names[i] || !*names[i] || strpbrk(names[i], " \t\r\n,*?!#|@") ||
		    (names[i][0] == '[' && !strchr(names[i], ']')))
			return bg_error(BANGER_EINVALID, "invalid host name '%s' for known_hosts",
					names[i] ? names[i] : "");
		/* "[host]:port" is taken as written; other names get the port. */
		(*out)[i] = spell_port && names[i][0] != '[' ? bg_kh_lookup_name(names[i], port) : lower_dup(names[i]);
		if (!(*out)[i])
			return bg_error_oom();
		(*any_port)[i] = !spell_port && names[i][0] != '[';
	}
	return 0;
}

static void free_names(char **names, bool *any_port, size_t count)
{
	if (names)
		for (size_t i = 0; i < count; i++)
			bg_free(names[i]);
	bg_free(names);
	bg_free(any_port);
}

int bg_known_hosts_remove_text(char **out, size_t *out_len, const char *text, size_t len,
			       const char *const *names, size_t count, size_t *removed)
{
	*out = NULL;
	*out_len = 0;
	if (removed)
		*removed = 0;
	char **ln = NULL;
	bool *anyp = NULL;
	kh_file f = { 0 };
	bg_buf b = BG_BUF_INIT;
	size_t total = 0;
	int rc = lower_names(&ln, &anyp, names, count, 0, false);
	if (rc || (rc = kh_parse(&f, text, len)))
		goto out;
	for (size_t i = 0; i < f.n; i++) {
		kh_line *l = &f.v[i];
		if (!l->entry || l->marker != MRK_NONE)
			continue;
		int r = strip_names(l, ln, anyp, count);
		if (r < 0) {
			rc = r;
			goto out;
		}
		total += (size_t)r;
	}
	if (total && (rc = emit(&b, &f)) == 0) {
		*out_len = b.len;
		*out = bg_buf_detach(&b);
		if (!*out)
			rc = bg_error_oom();
	}
	if (removed)
		*removed = total;
out:
	bg_buf_free(&b);
	kh_file_free(&f);
	free_names(ln, anyp, count);
	return rc;
}

int bg_known_hosts_pin_text(char **out, size_t *out_len, const char *text, size_t len,
			    const char *const *names, size_t count, uint16_t port,
			    const bg_sshkey *key, unsigned flags, bool *changed)
{
	*out = NULL;
	*out_len = 0;
	*changed = false;
	if (!key || key->cert)
		return bg_error(BANGER_EINVALID, "only plain host keys can be pinned");
	if (count == 0)
		return bg_error(BANGER_EINVALID, "no host names to pin under");
	char **ln = NULL;
	bool *anyp = NULL;
	bool *append = NULL;
	char *keyline = NULL;
	kh_file f = { 0 };
	bg_buf b = BG_BUF_INIT;
	int rc = lower_names(&ln, &anyp, names, count, port, true);
	if (rc || (rc = kh_parse(&f, text, len)))
		goto out;
	if (!(append = bg_calloc(count, sizeof(bool)))) {
		rc = bg_error_oom();
		goto out;
	}
	bool edit = false;
	for (size_t k = 0; k < count; k++) {
		const kh_line *dec;
		int v = verdict_for(&f, ln[k], key, &dec);
		if (v < 0) {
			rc = v;
			goto out;
		}
		if (v == BANGER_HOSTKEY_REVOKED) {
			rc = bg_error(BANGER_EREVOKED, "the key for %s is marked @revoked (line %u); refusing to pin it",
				      ln[k], dec ? dec->lineno : 0);
			goto out;
		}
		if (v == BANGER_HOSTKEY_MISMATCH && (flags & BG_KH_PIN_IF_NEW)) {
			char *fp = NULL;
			bg_sshkey_fingerprint(&fp, &dec->key);
			rc = bg_error(BANGER_ETRUST, "%s was pinned with another key (%s, line %u) meanwhile: "
				      "possible MITM; not pinning", ln[k], fp ? fp : "?", dec->lineno);
			bg_free(fp);
			goto out;
		}
		if (v == BANGER_HOSTKEY_MISMATCH) {
			/* Explicit re-pin: drop this exact spelling where it holds
			 * another key. */
			bool one[1] = { false };
			char *nm[1] = { ln[k] };
			for (size_t i = 0; i < f.n; i++) {
				kh_line *l = &f.v[i];
				if (!l->entry || l->marker != MRK_NONE || l->drop || bg_sshkey_equal(&l->key, key))
					continue;
				int r = strip_names(l, nm, one, 1);
				if (r < 0) {
					rc = r;
					goto out;
				}
				edit |= r > 0;
			}
		}
		append[k] = v != BANGER_HOSTKEY_MATCH;
		for (size_t j = 0; j < k; j++)
			if (strcmp(ln[j], ln[k]) == 0)
				append[k] = false;
	}
	bool any = false;
	for (size_t k = 0; k < count; k++)
		any |= append[k];
	if (!edit && !any)
		goto out;
	if ((rc = bg_sshkey_to_line(&keyline, key)))
		goto out;
	if ((rc = emit(&b, &f)))
		goto out;
	for (size_t k = 0; k < count; k++)
		if (append[k])
			bg_buf_printf(&b, "%s %s\n", ln[k], keyline);
	if (b.oom) {
		rc = bg_error_oom();
		goto out;
	}
	*out_len = b.len;
	*out = bg_buf_detach(&b);
	if (!*out)
		rc = bg_error_oom();
	else
		*changed = true;
out:
	bg_buf_free(&b);
	bg_free(keyline);
	bg_free(append);
	kh_file_free(&f);
	free_names(ln, anyp, count);
	return rc;
}

/* ---- locked read-modify-write of the file ---- */

static pthread_mutex_t kh_mutex = PTHREAD_MUTEX_INITIALIZER;

typedef int (*kh_edit_fn)(char **out, size_t *out_len, const char *text, size_t len, void *arg,
			  bool *changed);

/* The file to rewrite: path itself, or where its symlinks lead.  A
 * user's --file may be a link into a dotfiles repository; replacing the
 * link with a regular file would cut it off from there. */
static int kh_target(char **out, const char *path)
{
	struct stat st;
	*out = NULL;
	if (lstat(path, &st) != 0 || !S_ISLNK(st.st_mode)) {
		*out = bg_strdup(path);
		return *out ? 0 : bg_error_oom();
	}
	char *real = realpath(path, NULL);
	if (!real)
		return bg_error_os(bg_code_from_errno(errno), errno,
				   "%s is a symlink to a file that cannot be resolved", path);
	*out = bg_strdup(real);
	free(real);
	return *out ? 0 : bg_error_oom();
}

/* Read, edit, write back under the process mutex and an flock.  The
 * flock is on the directory that holds the file, not on a "<file>.lock"
 * beside it: the file is replaced by rename (so it cannot carry its own
 * lock), and a lock file would be left behind in the user's directory.
 * The rewrite keeps the file's mode and owner; a new file is 0600. */
static int kh_modify(const char *path, kh_edit_fn fn, void *arg)
{
	if (!path || !*path)
		return bg_error(BANGER_EINVALID, "known_hosts path is required");
	char *target = NULL, *dir = NULL;
	int rc = kh_target(&target, path);
	if (rc == 0 && !target)
		rc = bg_error_oom();
	if (rc == 0) {
		const char *slash = strrchr(target, '/');
		dir = !slash ? bg_strdup(".") : slash == target ? bg_strdup("/")
			: bg_strndup(target, (size_t)(slash - target));
		if (!dir)
			rc = bg_error_oom();
	}
	if (rc) {
		bg_free(target);
		return rc;
	}
	pthread_mutex_lock(&kh_mutex);
	bg_lock lock = BG_LOCK_INIT;
	char *text = NULL, *out = NULL;
	size_t len = 0, out_len = 0;
	bool changed = false;
	rc = bg_lock_acquire_dir(&lock, dir, 30000);
	if (rc == 0 && (rc = read_kh(&text, &len, target)) == 0 &&
	    (rc = fn(&out, &out_len, text, len, arg, &changed)) == 0 && changed) {
		struct stat st;
		if (stat(target, &st) == 0)
			rc = bg_write_file_atomic_owned(target, out, out_len, st.st_mode & 0777, st.st_uid,
							st.st_gid);
		else
			rc = bg_write_file_atomic(target, out, out_len, 0600);
	}
	if (rc)
		bg_error_prefix("%s", path);
	bg_lock_release(&lock);
	pthread_mutex_unlock(&kh_mutex);
	bg_free(text);
	bg_free(out);
	bg_free(target);
	bg_free(dir);
	return rc;
}

typedef struct {
	const char *const *names;
	size_t count;
	uint16_t port;
	const bg_sshkey *key;
	unsigned flags;
	size_t removed;
} kh_args;

static int pin_fn(char **out, size_t *out_len, const char *text, size_t len, void *arg, bool *changed)
{
	kh_args *a = arg;
	return bg_known_hosts_pin_text(out, out_len, text, len, a->names, a->count, a->port, a->key, a->flags,
				       changed);
}

static int remove_fn(char **out, size_t *out_len, const char *text, size_t len, void *arg, bool *changed)
{
	kh_args *a = arg;
	int rc = bg_known_hosts_remove_text(out, out_len, text, len, a->names, a->count, &a->removed);
	*changed = rc == 0 && a->removed > 0;
	return rc;
}

int bg_known_hosts_pin(const char *path, const char *const *names, size_t count, uint16_t port,
		       const bg_sshkey *key, unsigned flags)
{
	kh_args a = { names, count, port, key, flags, 0 };
	return kh_modify(path, pin_fn, &a);
}

int bg_known_hosts_remove(const char *path, const char *const *names, size_t count, size_t *removed)
{
	kh_args a = { names, count, 0, NULL, 0, 0 };
	if (removed)
		*removed = 0;
	int rc = kh_modify(path, remove_fn, &a);
	if (rc == 0 && removed)
		*removed = a.removed;
	return rc;
}

/* ---- public API ---- */

struct banger_known_host {
	char *hosts;
	char *key_type;
	char *fingerprint;
	const char *marker;
	int hashed;
	uint32_t line;
};

struct banger_known_hosts_list {
	banger_known_host *v;
	size_t n;
};

BANGER_EXTERN(int) banger_known_hosts_check(int *out, const char *path, const char *host, uint16_t port,
					    const void *key_blob, size_t key_len)
{
	if (!out)
		return bg_error(BANGER_EINVALID, "out must not be NULL");
	*out = BANGER_HOSTKEY_NOT_FOUND;
	bg_sshkey key;
	int rc = bg_sshkey_from_blob(&key, key_blob, key_len);
	if (rc)
		return rc;
	bg_kh_result r;
	rc = bg_known_hosts_check(&r, path, host, port, &key);
	if (rc == 0)
		*out = r.verdict;
	bg_kh_result_free(&r);
	bg_sshkey_free(&key);
	return rc;
}

BANGER_EXTERN(int) banger_known_hosts_check_line(int *out, const char *path, const char *host, uint16_t port,
						 const char *pubkey_line)
{
	if (!out)
		return bg_error(BANGER_EINVALID, "out must not be NULL");
	*out = BANGER_HOSTKEY_NOT_FOUND;
	bg_sshkey key;
	int rc = bg_sshkey_from_line(&key, pubkey_line);
	if (rc)
		return rc;
	bg_kh_result r;
	rc = bg_known_hosts_check(&r, path, host, port, &key);
	if (rc == 0)
		*out = r.verdict;
	bg_kh_result_free(&r);
	bg_sshkey_free(&key);
	return rc;
}

BANGER_EXTERN(int) banger_known_hosts_pin(const char *path, const char *const *names, size_t count,
					  uint16_t port, const char *pubkey_line)
{
	if (!names)
		return bg_error(BANGER_EINVALID, "names must not be NULL");
	bg_sshkey key;
	int rc = bg_sshkey_from_line(&key, pubkey_line);
	if (rc)
		return rc;
	rc = bg_known_hosts_pin(path, names, count, port, &key, 0);
	bg_sshkey_free(&key);
	return rc;
}

BANGER_EXTERN(int) banger_known_hosts_remove(uint32_t *out, const char *path, const char *const *names,
					     size_t count)
{
	if (out)
		*out = 0;
	if (!names && count)
		return bg_error(BANGER_EINVALID, "names must not be NULL");
	size_t removed = 0;
	int rc = bg_known_hosts_remove(path, names, count, &removed);
	if (rc == 0 && out)
		*out = removed > UINT32_MAX ? UINT32_MAX : (uint32_t)removed;
	return rc;
}

BANGER_EXTERN(void) banger_known_hosts_list_free(banger_known_hosts_list *list)
{
	if (!list)
		return;
	for (size_t i = 0; i < list->n; i++) {
		/* n > 0 only once v is allocated */
		bg_free(list->v[i].hosts); // NOLINT(clang-analyzer-core.NullDereference)
		bg_free(list->v[i].key_type);
		bg_free(list->v[i].fingerprint);
	}
	bg_free(list->v);
	bg_free(list);
}

BANGER_EXTERN(int) banger_known_hosts_list_load(banger_known_hosts_list **out, const char *path)
{
	if (!out)
		return bg_error(BANGER_EINVALID, "out must not be NULL");
	*out = NULL;
	if (!path)
		return bg_error(BANGER_EINVALID, "known_hosts path is required");
	char *text;
	size_t len;
	int rc = read_kh(&text, &len, path);
	if (rc)
		return rc;
	kh_file f;
	banger_known_hosts_list *l = NULL;
	if ((rc = kh_parse(&f, text, len))) {
		bg_free(text);
		return rc;
	}
	l = bg_calloc(1, sizeof(*l));
	if (!l || !(l->v = bg_calloc(f.n ? f.n : 1, sizeof(*l->v)))) {
		rc = bg_error_oom();
		goto out;
	}
	for (size_t i = 0; i < f.n; i++) {
		const kh_line *kl = &f.v[i];
		if (!kl->entry)
			continue;
		banger_known_host *e = &l->v[l->n++];
		e->hosts = bg_strndup(kl->raw + kl->host_off, kl->host_len);
		e->key_type = bg_strdup(kl->key.type);
		e->marker = kl->marker == MRK_CA ? "@cert-authority" : kl->marker == MRK_REVOKE ? "@revoked" : "";
		e->hashed = kl->hashed;
		e->line = kl->lineno;
		if ((rc = bg_sshkey_fingerprint(&e->fingerprint, &kl->key)) || !e->hosts || !e->key_type) {
			rc = rc ? rc : bg_error_oom();
			goto out;
		}
	}
	*out = l;
	l = NULL;
out:
	banger_known_hosts_list_free(l);
	kh_file_free(&f);
	bg_free(text);
	return rc;
}

BANGER_EXTERN(size_t) banger_known_hosts_list_count(const banger_known_hosts_list *list)
{
	return list ? list->n : 0;
}

BANGER_EXTERN(const banger_known_host *) banger_known_hosts_list_get(const banger_known_hosts_list *list, size_t i)
{
	return list && i < list->n ? &list->v[i] : NULL;
}

BANGER_EXTERN(const char *) banger_known_host_hosts(const banger_known_host *e)
{
	return e ? e->hosts : NULL;
}

BANGER_EXTERN(const char *) banger_known_host_key_type(const banger_known_host *e)
{
	return e ? e->key_type : NULL;
}

BANGER_EXTERN(const char *) banger_known_host_fingerprint(const banger_known_host *e)
{
	return e ? e->fingerprint : NULL;
}

BANGER_EXTERN(const char *) banger_known_host_marker(const banger_known_host *e)
{
	return e ? e->marker : NULL;
}

BANGER_EXTERN(int) banger_known_host_hashed(const banger_known_host *e)
{
	return e ? e->hashed : 0;
}

BANGER_EXTERN(uint32_t) banger_known_host_line(const banger_known_host *e)
{
	return e ? e->line : 0;
}
