/* The configuration file: flat "key = value" lines over defaults. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a value must look like.  Every value is checked when the file is
 * loaded, so a typo fails at once with file:line, not later inside the
 * command that happens to read the key. */
typedef enum {
	T_ENUM,    /* one of the words in choices */
	T_UINT,    /* decimal integer in [min, max] */
	T_SIZE,    /* "512M", "8G" (bg_parse_size) in [min, max] bytes */
	T_PROGRAM, /* a name looked up on PATH, or an absolute path */
	T_SUBNET,  /* IPv4 CIDR for guest addresses (bg_subnet_cidr_parse) */
	T_CATALOG, /* "", an http(s):// or file:// URL, or a path */
	T_NAME,    /* "" or a name: letters, digits, . _ - (not leading -) */
	T_HOSTS,   /* comma list of host or host:port */
	T_PROXY,   /* "", "none", or an http(s):// or socks URL */
	T_USER,    /* a login name */
} value_type;

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)
#define TIB (1024ull * GIB)

static const struct {
	const char *key, *value, *doc;
	value_type type;
	uint64_t min, max;
	const char *choices;
} defaults[] = {
	{ "vmm", "auto", "auto, firecracker or qemu", T_ENUM, 0, 0, "auto firecracker qemu" },
	{ "firecracker_bin", "firecracker", "Firecracker binary (name on PATH or absolute path)", T_PROGRAM, 0, 0, NULL },
	{ "qemu_bin", "qemu-system-x86_64", "QEMU binary", T_PROGRAM, 0, 0, NULL },
	{ "subnet", "172.30.0.0/16", "guest addresses: one /30 per VM carved from this", T_SUBNET, 0, 0, NULL },
	{ "vcpus", "2", "default vCPUs per VM", T_UINT, 1, 255, NULL },
	{ "memory_mib", "1024", "default memory per VM", T_UINT, 16, 4u << 20, NULL },
	{ "disk_size", "8G", "default work disk size", T_SIZE, MIB, 16 * TIB, NULL },
	{ "ready_timeout", "180", "seconds vm create waits for SSH", T_UINT, 1, 86400, NULL },
	{ "console_log_max", "4M", "console.log size at which it rotates to console.log.1 (min 64K)", T_SIZE,
	  64 * KIB, TIB, NULL },
	{ "kernel_catalog", "", "URL of the kernel catalog (JSON)", T_CATALOG, 0, 0, NULL },
	{ "default_kernel", "", "kernel used when an image names none", T_NAME, 0, 0, NULL },
	{ "insecure_registries", "", "comma list of registries and kernel catalog hosts reached over plain HTTP",
	  T_HOSTS, 0, 0, NULL },
	{ "proxy", "", "HTTP(S) proxy for registries and catalogs: empty = http_proxy/https_proxy, "
		       "none = direct, else its URL (loopback and NO_PROXY always direct)", T_PROXY, 0, 0, NULL },
	{ "image_headroom", "512M", "free space added to a pulled image's rootfs", T_SIZE, 0, TIB, NULL },
	{ "image_max_bytes", "64G", "byte budget of one image pull or import", T_SIZE, MIB, 1024 * TIB, NULL },
	{ "blob_cache_max", "20G", "blob cache size above which unused blobs are evicted", T_SIZE, 0,
	  1024 * TIB, NULL },
	{ "ssh_user", "root", "user banger logs into guests as", T_USER, 0, 0, NULL },
};

static int key_index(const char *key)
{
	for (size_t i = 0; i < BG_ARRAY_SIZE(defaults); i++)
		if (strcmp(defaults[i].key, key) == 0)
			return (int)i;
	return -1;
}

bool bg_config_known_key(const char *key)
{
	return key_index(key) >= 0;
}

static bool word_in(const char *w, const char *list)
{
	size_t n = strlen(w);
	for (const char *p = list; *p;) {
		size_t m = strcspn(p, " ");
		if (m == n && n && strncmp(p, w, n) == 0)
			return true;
		p += m;
		while (*p == ' ')
			p++;
	}
	return false;
}

static bool only_chars(const char *s, const char *extra)
{
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(extra, *p))
			return false;
	return true;
}

static bool name_chars(const char *s, const char *extra)
{
	return *s != '-' && only_chars(s, extra);
}

/* Why value is not valid for key i, or NULL.  why has room for 160. */
static const char *check_value(size_t i, const char *v, char *why, size_t wl)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return "contains a control character";
	uint64_t n = 0;
	char *end;
	switch (defaults[i].type) {
	case T_ENUM:
		if (word_in(v, defaults[i].choices))
			return NULL;
		snprintf(why, wl, "must be one of: %s", defaults[i].choices);
		return why;
	case T_UINT:
		errno = 0;
		if (!isdigit((unsigned char)*v) || (n = strtoull(v, &end, 10), errno || *end) ||
		    n < defaults[i].min || n > defaults[i].max) {
			snprintf(why, wl, "must be a whole number from %llu to %llu",
				 (unsigned long long)defaults[i].min, (unsigned long long)defaults[i].max);
			return why;
		}
		return NULL;
	case T_SIZE:
		if (bg_parse_size(&n, v) || n < defaults[i].min || n > defaults[i].max) {
			snprintf(why, wl, "must be a size from %lluM to %lluG (e.g. 512M, 8G)",
				 (unsigned long long)(defaults[i].min / MIB),
				 (unsigned long long)(defaults[i].max / GIB));
			return why;
		}
		return NULL;
	case T_PROGRAM:
		if (*v == '/')
			return NULL;
		return !*v || strpbrk(v, "/ ") ? "must be a name on PATH or an absolute path" : NULL;
	case T_SUBNET: {
		uint32_t base;
		int prefix;
		if (bg_subnet_cidr_parse(&base, &prefix, v))
			return "must be an IPv4 range a.b.c.d/len with len 8..28";
		return NULL;
	}
	case T_CATALOG:
		if (!*v || !strstr(v, "://"))
			return NULL; /* unset, or a path */
		if (bg_startswith(v, "https://") || bg_startswith(v, "http://") || bg_startswith(v, "file://"))
			return NULL;
		return "must be an https://, http:// or file:// URL, or a path";
	case T_NAME:
		return name_chars(v, "._-") ? NULL : "must be a name (letters, digits, '.', '_', '-')";
	case T_HOSTS:
		/* items as bg_plain_http_allowed reads them: host, host:port,
		 * [v6]:port, optionally with http(s):// and a trailing / */
		return only_chars(v, "._-:[], /") ? NULL : "must be a comma list of host or host:port";
	case T_USER:
		return *v && name_chars(v, "._-") ? NULL : "must be a user name";
	case T_PROXY:
		if (!*v || strcmp(v, "none") == 0 || bg_startswith(v, "http://") || bg_startswith(v, "https://") ||
		    bg_startswith(v, "socks5://") || bg_startswith(v, "socks5h://") || bg_startswith(v, "socks4://"))
			return NULL;
		return "must be empty, none, or a proxy URL (http://, https://, socks5://)";
	}
	return NULL;
}

static int set(bg_config *c, const char *key, size_t klen, const char *val, size_t vlen)
{
	for (size_t i = 0; i < c->count; i++) {
		if (strlen(c->entries[i].key) == klen && memcmp(c->entries[i].key, key, klen) == 0) {
			char *v = bg_strndup(val, vlen);
			if (!v)
				return bg_error_oom();
			bg_free(c->entries[i].value);
			c->entries[i].value = v;
			return 0;
		}
	}
	bg_config_entry *e = bg_realloc(c->entries, (c->count + 1) * sizeof(*e));
	if (!e)
		return bg_error_oom();
	c->entries = e;
	e[c->count].key = bg_strndup(key, klen);
	e[c->count].value = bg_strndup(val, vlen);
	if (!e[c->count].key || !e[c->count].value) {
		bg_free(e[c->count].key);
		bg_free(e[c->count].value);
		return bg_error_oom();
	}
	c->count++;
	return 0;
}

static void trim(const char **s, const char **e)
{
	while (*s < *e && isspace((unsigned char)**s))
		(*s)++;
	while (*e > *s && isspace((unsigned char)(*e)[-1]))
		(*e)--;
}

int bg_config_parse(bg_config *c, const char *text, const char *origin)
{
	int line = 0;
	const char *p = text;
	while (*p) {
		line++;
		const char *eol = strchr(p, '\n');
		const char *end = eol ? eol : p + strlen(p);
		const char *s = p, *e = end;
		trim(&s, &e);
		if (s < e && *s != '#') {
			const char *eq = memchr(s, '=', (size_t)(e - s));
			if (!eq)
				return bg_error(BANGER_EINVALID, "%s:%d: expected 'key = value'", origin, line);
			const char *ks = s, *ke = eq, *vs = eq + 1, *ve = e;
			trim(&ks, &ke);
			trim(&vs, &ve);
			if (ve - vs >= 2 && *vs == '"' && ve[-1] == '"') {
				vs++;
				ve--;
			}
			char key[64];
			if (ke == ks || (size_t)(ke - ks) >= sizeof(key))
				return bg_error(BANGER_EINVALID, "%s:%d: invalid key", origin, line);
			memcpy(key, ks, (size_t)(ke - ks));
			key[ke - ks] = '\0';
			int k = key_index(key);
			if (k < 0)
				return bg_error(BANGER_EINVALID, "%s:%d: unknown key '%s' (configs/config.example "
						"lists every key)", origin, line, key);
			char *v = bg_strndup(vs, (size_t)(ve - vs));
			if (!v)
				return bg_error_oom();
			char why[160];
			const char *bad = check_value((size_t)k, v, why, sizeof(why));
			int rc = bad ? bg_error(BANGER_EINVALID, "%s:%d: %s = '%.200s': %s", origin, line, key, v, bad)
				: set(c, ks, (size_t)(ke - ks), vs, (size_t)(ve - vs));
			bg_free(v);
			if (rc)
				return rc;
		}
		p = eol ? eol + 1 : end;
	}
	return 0;
}

/* A NUL byte would end the text early and drop the rest of the file
 * without a word: refuse it, naming its line. */
static int check_nul(const char *text, size_t len, const char *origin)
{
	const char *nul = memchr(text, '\0', len);
	if (!nul)
		return 0;
	int line = 1;
	for (const char *p = text; p < nul; p++)
		line += *p == '\n';
	return bg_error(BANGER_EINVALID, "%s:%d: NUL byte in the configuration file", origin, line);
}

int bg_config_load(bg_config *c, const char *path, bool required)
{
	memset(c, 0, sizeof(*c));
	int rc = 0;
	for (size_t i = 0; i < BG_ARRAY_SIZE(defaults) && !rc; i++)
		rc = set(c, defaults[i].key, strlen(defaults[i].key), defaults[i].value,
			 strlen(defaults[i].value));
	if (rc == 0 && path && (required || bg_path_exists(path))) {
		char *text = NULL;
		size_t len = 0;
		rc = bg_read_file(&text, &len, path, 1 << 20);
		if (rc == BANGER_ENOTFOUND)
			rc = bg_error(BANGER_ENOTFOUND, "configuration file %s does not exist", path);
		if (rc == 0)
			rc = check_nul(text, len, path);
		if (rc == 0)
			rc = bg_config_parse(c, text, path);
		bg_free(text);
	}
	if (rc)
		bg_config_free(c);
	return rc;
}

const char *bg_config_get(const bg_config *c, const char *key)
{
	for (size_t i = 0; i < c->count; i++)
		if (strcmp(c->entries[i].key, key) == 0)
			return c->entries[i].value;
	return NULL;
}

int bg_config_get_u32(const bg_config *c, const char *key, uint32_t *out)
{
	const char *v = bg_config_get(c, key);
	if (!v || !*v)
		return bg_error(BANGER_EINVALID, "config key '%s' is not set", key);
	char *end;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (errno || *end || n > UINT32_MAX)
		return bg_error(BANGER_EINVALID, "config key '%s': '%s' is not a number", key, v);
	*out = (uint32_t)n;
	return 0;
}

bool bg_config_get_bool(const bg_config *c, const char *key)
{
	const char *v = bg_config_get(c, key);
	return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

void bg_config_free(bg_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->count; i++) {
		bg_free(c->entries[i].key);
		bg_free(c->entries[i].value);
	}
	bg_free(c->entries);
	c->entries = NULL;
	c->count = 0;
}
