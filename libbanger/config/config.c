/* The configuration file: flat "key = value" lines over defaults. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *key, *value, *doc;
} defaults[] = {
	{ "vmm", "auto", "auto, firecracker or qemu" },
	{ "firecracker_bin", "firecracker", "Firecracker binary (name on PATH or absolute path)" },
	{ "qemu_bin", "qemu-system-x86_64", "QEMU binary" },
	{ "subnet", "172.30.0.0/16", "guest addresses: one /30 per VM carved from this" },
	{ "vcpus", "2", "default vCPUs per VM" },
	{ "memory_mib", "1024", "default memory per VM" },
	{ "disk_size", "8G", "default work disk size" },
	{ "ready_timeout", "180", "seconds vm create waits for SSH" },
	{ "kernel_catalog", "", "URL of the kernel catalog (JSON)" },
	{ "default_kernel", "", "kernel used when an image names none" },
	{ "insecure_registries", "", "comma list of registries reached over plain HTTP" },
	{ "proxy", "", "HTTP(S) proxy for registries and catalogs: empty = http_proxy/https_proxy, "
		       "none = direct, else its URL (loopback and NO_PROXY always direct)" },
	{ "image_headroom", "512M", "free space added to a pulled image's rootfs" },
	{ "ssh_user", "root", "user banger logs into guests as" },
};

bool bg_config_known_key(const char *key)
{
	for (size_t i = 0; i < BG_ARRAY_SIZE(defaults); i++)
		if (strcmp(defaults[i].key, key) == 0)
			return true;
	return false;
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
			if (!bg_config_known_key(key))
				return bg_error(BANGER_EINVALID, "%s:%d: unknown key '%s'", origin, line, key);
			int rc = set(c, ks, (size_t)(ke - ks), vs, (size_t)(ve - vs));
			if (rc)
				return rc;
		}
		p = eol ? eol + 1 : end;
	}
	return 0;
}

int bg_config_load(bg_config *c, const char *path)
{
	memset(c, 0, sizeof(*c));
	int rc = 0;
	for (size_t i = 0; i < BG_ARRAY_SIZE(defaults) && !rc; i++)
		rc = set(c, defaults[i].key, strlen(defaults[i].key), defaults[i].value,
			 strlen(defaults[i].value));
	if (rc == 0 && path && bg_path_exists(path)) {
		char *text = NULL;
		rc = bg_read_file(&text, NULL, path, 1 << 20);
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
