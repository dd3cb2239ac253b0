/* Image references, normalized as Docker does: "debian" is
 * docker.io/library/debian:latest, the first component is a registry only
 * when it has a '.' or ':', is "localhost" or has capitals; digests are
 * parsed strictly.  Also platforms and which registries get plain HTTP. */
#include "image.h"
#include "../host/host.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_DOMAIN "docker.io"
#define LEGACY_DOMAIN "index.docker.io"
#define DOCKER_API_HOST "registry-1.docker.io"
#define NAME_MAX_TOTAL 255

void bg_image_ref_free(bg_image_ref *r)
{
	if (!r)
		return;
	bg_free(r->domain);
	bg_free(r->path);
	bg_free(r->tag);
	bg_free(r->digest);
	memset(r, 0, sizeof(*r));
}

static bool lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool alnum(char c)
{
	return isalnum((unsigned char)c) != 0;
}

/* [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static bool valid_component(const char *s, size_t n)
{
	size_t i = 0;
	if (n == 0 || !lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
		return false;
	while (i < n) {
		if (lower_alnum(s[i])) {
			i++;
			continue;
		}
		/* a separator run: ".", "_", "__" or "-"+ */
		size_t j = i;
		if (s[i] == '.') {
			j = i + 1;
		} else if (s[i] == '_') {
			j = i + 1;
			if (j < n && s[j] == '_')
				j++;
		} else if (s[i] == '-') {
			while (j < n && s[j] == '-')
				j++;
		} else {
			return false;
		}
		if (j >= n || !lower_alnum(s[j]))
			return false;
		i = j;
	}
	return true;
}

/* domain-component(.domain-component)*[:port] or [ipv6][:port] */
static bool valid_domain(const char *s, size_t n)
{
	size_t i = 0;
	if (n == 0)
		return false;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close || close == s + 1)
			return false;
		for (const char *p = s + 1; p < close; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':')
				return false;
		i = (size_t)(close - s) + 1;
	} else {
		size_t start = 0;
		for (;;) {
			size_t j = start;
			while (j < n && (alnum(s[j]) || s[j] == '-'))
				j++;
			if (j == start || !alnum(s[start]) || !alnum(s[j - 1]))
				return false;
			i = j;
			if (j < n && s[j] == '.') {
				start = j + 1;
				continue;
			}
			break;
		}
	}
	if (i == n)
		return true;
	if (s[i] != ':' || i + 1 == n)
		return false;
	size_t digits = 0;
	for (size_t j = i + 1; j < n; j++, digits++)
		if (!isdigit((unsigned char)s[j]))
			return false;
	return digits > 0 && digits <= 5;
}

/* [\w][\w.-]{0,127} */
static bool valid_tag(const char *s, size_t n)
{
	if (n == 0 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool word = alnum(c) || c == '_';
		if (!(word || (i > 0 && (c == '.' || c == '-'))))
			return false;
	}
	return true;
}

/* A reference cut into its pieces, each pointing into the text. */
typedef struct {
	const char *at;    /* the '@' before a digest, or NULL */
	const char *tag;   /* after the ':', or NULL */
	size_t tag_len;
	size_t name_len;   /* the name before any tag or digest */
	const char *dom, *path;
	size_t dom_len, path_len;
} ref_parts;

/* Not empty, not too long, printable ASCII without spaces. */
static int check_text(const char *s)
{
	if (!s || !*s)
		return bg_error(BANGER_EINVALID, "empty image reference");
	size_t total = strlen(s);
	if (total > 1024)
		return bg_error(BANGER_EINVALID, "image reference is too long (%zu bytes)", total);
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return bg_error(BANGER_EINVALID, "image reference '%.200s' contains a space or "
					"control/non-ASCII character", s);
	return 0;
}

/* The digest after '@' and the tag, which follows the last ':' when no
 * '/' comes after it; what is left is the name, and a name alone that
 * is 64 hex digits is an image ID. */
static int split_tail(const char *s, ref_parts *p)
{
	p->at = strchr(s, '@');
	p->name_len = p->at ? (size_t)(p->at - s) : strlen(s);
	int rc;
	if (p->at) {
		if (strchr(p->at + 1, '@'))
			return bg_error(BANGER_EINVALID, "image reference '%.200s' has more than one '@'", s);
		if ((rc = bg_digest_check(p->at + 1, "image reference")))
			return rc;
	}
	for (size_t i = p->name_len; i > 0; i--) {
		if (s[i - 1] == '/')
			break;
		if (s[i - 1] == ':') {
			p->tag = s + i;
			p->tag_len = p->name_len - i;
			p->name_len = i - 1;
			break;
		}
	}
	if (p->tag && !valid_tag(p->tag, p->tag_len))
		return bg_error(BANGER_EINVALID, "image reference '%.200s': invalid tag '%.*s'", s,
				(int)p->tag_len, p->tag);
	if (p->name_len == 0)
		return bg_error(BANGER_EINVALID, "image reference '%.200s' has no repository name", s);
	if (p->name_len == 64 && !p->at && !p->tag) {
		bool hex = true;
		for (size_t i = 0; i < 64; i++)
			hex = hex && isxdigit((unsigned char)s[i]);
		if (hex)
			return bg_error(BANGER_EINVALID, "'%s' looks like an image ID, not a reference "
					"(cannot pull by 64-digit hexadecimal string)", s);
	}
	return 0;
}

/* Domain: the first component when it looks like one (a dot, a colon,
 * upper case, or localhost), else Docker Hub, the legacy name of which
 * is normalized. */
static int split_domain(const char *s, ref_parts *p)
{
	const char *slash = memchr(s, '/', p->name_len);
	p->dom = DEFAULT_DOMAIN;
	p->dom_len = strlen(DEFAULT_DOMAIN);
	p->path = s;
	p->path_len = p->name_len;
	if (slash) {
		size_t first = (size_t)(slash - s);
		bool has_dot_colon = memchr(s, '.', first) || memchr(s, ':', first);
		bool is_localhost = first == 9 && memcmp(s, "localhost", 9) == 0;
		bool has_upper = false;
		for (size_t i = 0; i < first; i++)
			has_upper = has_upper || isupper((unsigned char)s[i]);
		if (has_dot_colon || is_localhost || has_upper) {
			p->dom = s;
			p->dom_len = first;
			p->path = slash + 1;
			p->path_len = p->name_len - first - 1;
		}
	}
	if (p->dom_len == strlen(LEGACY_DOMAIN) && memcmp(p->dom, LEGACY_DOMAIN, p->dom_len) == 0) {
		p->dom = DEFAULT_DOMAIN;
		p->dom_len = strlen(DEFAULT_DOMAIN);
	}
	if (!valid_domain(p->dom, p->dom_len))
		return bg_error(BANGER_EINVALID, "image reference '%.200s': invalid registry '%.*s'", s,
				(int)p->dom_len, p->dom);
	return 0;
}

/* Path components: lower case, each a valid component, no trailing '/'. */
static int check_path(const char *s, const ref_parts *p)
{
	const char *path = p->path;
	size_t path_len = p->path_len;
	if (path_len == 0)
		return bg_error(BANGER_EINVALID, "image reference '%.200s' has no repository name", s);
	for (size_t i = 0; i < path_len;) {
		const char *end = memchr(path + i, '/', path_len - i);
		size_t n = end ? (size_t)(end - (path + i)) : path_len - i;
		bool upper = false;
		for (size_t k = 0; k < n; k++)
			upper = upper || isupper((unsigned char)path[i + k]);
		if (upper)
			return bg_error(BANGER_EINVALID, "image reference '%.200s': repository name must be "
					"lowercase", s);
		if (!valid_component(path + i, n))
			return bg_error(BANGER_EINVALID, "image reference '%.200s': invalid repository name "
					"component '%.*s'", s, (int)n, path + i);
		i += n + (end ? 1 : 0);
		if (end && i == path_len)
			return bg_error(BANGER_EINVALID, "image reference '%.200s' ends with '/'", s);
	}
	return 0;
}

/* The normalized reference: official images under library/, "latest"
 * when there is neither tag nor digest. */
static int fill_ref(bg_image_ref *out, const char *s, const ref_parts *p)
{
	bool official = p->dom_len == strlen(DEFAULT_DOMAIN) && memcmp(p->dom, DEFAULT_DOMAIN, p->dom_len) == 0 &&
			!memchr(p->path, '/', p->path_len);
	out->domain = bg_strndup(p->dom, p->dom_len);
	out->path = official ? bg_sprintf("library/%.*s", (int)p->path_len, p->path)
			     : bg_strndup(p->path, p->path_len);
	if (p->tag)
		out->tag = bg_strndup(p->tag, p->tag_len);
	else if (!p->at)
		out->tag = bg_strdup("latest");
	if (p->at)
		out->digest = bg_strdup(p->at + 1);
	if (!out->domain || !out->path || ((p->tag || !p->at) && !out->tag) || (p->at && !out->digest)) {
		bg_image_ref_free(out);
		return bg_error_oom();
	}
	if (strlen(out->domain) + 1 + strlen(out->path) > NAME_MAX_TOTAL) {
		bg_image_ref_free(out);
		return bg_error(BANGER_EINVALID, "image reference '%.200s': repository name longer than %d "
				"characters", s, NAME_MAX_TOTAL);
	}
	return 0;
}

int bg_image_ref_parse(bg_image_ref *out, const char *s)
{
	memset(out, 0, sizeof(*out));
	ref_parts p;
	memset(&p, 0, sizeof(p));
	int rc;
	if ((rc = check_text(s)) || (rc = split_tail(s, &p)) || (rc = split_domain(s, &p)) ||
	    (rc = check_path(s, &p)))
		return rc;
	return fill_ref(out, s, &p);
}

char *bg_image_ref_string(const bg_image_ref *r)
{
	return bg_sprintf("%s/%s%s%s%s%s", r->domain, r->path, r->tag ? ":" : "", r->tag ? r->tag : "",
			  r->digest ? "@" : "", r->digest ? r->digest : "");
}

const char *bg_image_ref_api_host(const bg_image_ref *r)
{
	return strcmp(r->domain, DEFAULT_DOMAIN) == 0 ? DOCKER_API_HOST : r->domain;
}

const char *bg_image_ref_object(const bg_image_ref *r)
{
	return r->digest ? r->digest : r->tag;
}

bool bg_image_name_valid(const char *name)
{
	if (!name || !lower_alnum(name[0]))
		return false;
	size_t n = strlen(name);
	if (n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!lower_alnum(name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
			return false;
	return true;
}

char *bg_image_ref_default_name(const bg_image_ref *r)
{
	const char *base = strrchr(r->path, '/');
	base = base ? base + 1 : r->path;
	char *name;
	if (r->tag)
		name = bg_sprintf("%s-%s", base, r->tag);
	else
		name = bg_sprintf("%s-%.12s", base, r->digest + 7);
	if (!name)
		return NULL;
	/* Tags may hold capitals; names may not.  Trim to 64. */
	size_t n = 0;
	for (char *p = name; *p; p++) {
		char c = (char)tolower((unsigned char)*p);
		name[n++] = (lower_alnum(c) || c == '.' || c == '_' || c == '-') ? c : '-';
	}
	name[n > 64 ? 64 : n] = '\0';
	return name;
}

/* ---- platforms ---- */

static int copy_part(char *dst, size_t cap, const char *s, size_t n)
{
	if (n == 0 || n >= cap)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!lower_alnum(s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return -1;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

int bg_platform_parse(bg_platform *out, const char *s)
{
	memset(out, 0, sizeof(*out));
	const char *parts[3] = { 0 };
	size_t lens[3] = { 0 };
	int n = 0;
	const char *p = s ? s : "";
	while (n < 3) {
		const char *slash = strchr(p, '/');
		parts[n] = p;
		lens[n] = slash ? (size_t)(slash - p) : strlen(p);
		n++;
		if (!slash)
			break;
		p = slash + 1;
		if (n == 3)
			return bg_error(BANGER_EINVALID, "platform '%.100s': want os/arch[/variant]", s);
	}
	char tmp[32];
	if (n < 2 || copy_part(out->os, sizeof(out->os), parts[0], lens[0]) ||
	    copy_part(tmp, sizeof(tmp), parts[1], lens[1]) ||
	    (n == 3 && copy_part(out->variant, sizeof(out->variant), parts[2], lens[2])))
		return bg_error(BANGER_EINVALID, "platform '%.100s': want os/arch[/variant] in lowercase",
				s ? s : "");
	/* Normalize as containerd does: x86_64 -> amd64, aarch64 -> arm64. */
	if (strcmp(tmp, "x86_64") == 0 || strcmp(tmp, "x86-64") == 0)
		strcpy(tmp, "amd64");
	else if (strcmp(tmp, "aarch64") == 0)
		strcpy(tmp, "arm64");
	memcpy(out->arch, tmp, sizeof(out->arch));
	if (strcmp(out->arch, "arm64") == 0 && strcmp(out->variant, "v8") == 0)
		out->variant[0] = '\0';
	return 0;
}

void bg_platform_host(bg_platform *out)
{
	bg_platform_of_machine(out, bg_host_machine());
}

void bg_platform_of_machine(bg_platform *out, const char *m)
{
	memset(out, 0, sizeof(*out));
	strcpy(out->os, "linux");
	if (strcmp(m, "x86_64") == 0)
		strcpy(out->arch, "amd64");
	else if (strcmp(m, "aarch64") == 0 || strcmp(m, "arm64") == 0)
		strcpy(out->arch, "arm64");
	else if (strncmp(m, "armv7", 5) == 0) {
		strcpy(out->arch, "arm");
		strcpy(out->variant, "v7");
	} else if (strncmp(m, "armv6", 5) == 0) {
		strcpy(out->arch, "arm");
		strcpy(out->variant, "v6");
	} else if (strcmp(m, "i686") == 0 || strcmp(m, "i386") == 0)
		strcpy(out->arch, "386");
	else
		snprintf(out->arch, sizeof(out->arch), "%.31s", m);
}

void bg_platform_format(const bg_platform *p, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s%s%s", p->os, p->arch, p->variant[0] ? "/" : "", p->variant);
}

int bg_platform_check(char *recorded, size_t len, const bg_platform *have, const bg_platform *want,
		      bool explicit_platform, const char *verb)
{
	if (!have) {
		bg_platform_format(want, recorded, len);
		return 0;
	}
	bool arch_ok = strcmp(have->os, want->os) == 0 && strcmp(have->arch, want->arch) == 0;
	bool var_ok = !want->variant[0] || !have->variant[0] || strcmp(have->variant, want->variant) == 0;
	if (!arch_ok || (explicit_platform && !var_ok)) {
		char h[100], w[100];
		bg_platform_format(have, h, sizeof(h));
		bg_platform_format(want, w, sizeof(w));
		if (explicit_platform)
			return bg_error(BANGER_EUNSUPPORTED, "the image is for %s, not %s", h, w);
		return bg_error(BANGER_EUNSUPPORTED, "the image is for %s, not %s (use --platform to %s it anyway)",
				h, w, verb);
	}
	bg_platform_format(have, recorded, len);
	return 0;
}

BANGER_EXTERN(int) banger_image_ref_normalize(char **out, const char *ref)
{
	if (!out)
		return bg_error(BANGER_EINVALID, "out must not be NULL");
	*out = NULL;
	bg_image_ref r;
	int rc = bg_image_ref_parse(&r, ref);
	if (rc)
		return rc;
	*out = bg_image_ref_string(&r);
	bg_image_ref_free(&r);
	return *out ? 0 : bg_error_oom();
}
