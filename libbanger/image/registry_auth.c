/* Registry authentication inputs: the WWW-Authenticate challenge and the
 * user's Docker credentials (~/.docker/config.json "auths"). */
#include "image.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

void bg_auth_challenge_free(bg_auth_challenge *c)
{
	if (!c)
		return;
	bg_free(c->realm);
	bg_free(c->service);
	bg_free(c->scope);
	bg_free(c->error);
	memset(c, 0, sizeof(*c));
}

static bool tchar(char c)
{
	return c && (isalnum((unsigned char)c) || strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* One challenge: scheme and its params.  Returns where parsing stopped
 * (at the next challenge's scheme, or the end), NULL on a syntax error. */
static const char *parse_one(const char *p, bg_auth_challenge *c, bool keep)
{
	p = skip_ws(p);
	const char *s = p;
	while (tchar(*p))
		p++;
	size_t n = (size_t)(p - s);
	if (n == 0 || n >= sizeof(c->scheme))
		return NULL;
	if (keep) {
		for (size_t i = 0; i < n; i++)
			c->scheme[i] = (char)tolower((unsigned char)s[i]);
		c->scheme[n] = '\0';
	}
	for (;;) {
		p = skip_ws(p);
		while (*p == ',')
			p = skip_ws(p + 1);
		if (!*p)
			return p;
		const char *k = p;
		while (tchar(*p))
			p++;
		size_t klen = (size_t)(p - k);
		const char *q = skip_ws(p);
		if (klen == 0)
			return NULL;
		if (*q != '=')
			return k; /* a token without '=': the next challenge */
		p = skip_ws(q + 1);
		bg_buf v = BG_BUF_INIT;
		if (*p == '"') {
			p++;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1])
					p++;
				bg_buf_put(&v, p, 1);
				p++;
			}
			if (*p != '"') {
				bg_buf_free(&v);
				return NULL;
			}
			p++;
		} else {
			const char *vs = p;
			while (tchar(*p) || *p == '/' || *p == ':')
				p++;
			bg_buf_put(&v, vs, (size_t)(p - vs));
		}
		if (v.oom) {
			bg_buf_free(&v);
			return NULL;
		}
		char **dst = NULL;
		if (klen == 5 && strncasecmp(k, "realm", 5) == 0)
			dst = &c->realm;
		else if (klen == 7 && strncasecmp(k, "service", 7) == 0)
			dst = &c->service;
		else if (klen == 5 && strncasecmp(k, "scope", 5) == 0)
			dst = &c->scope;
		else if (klen == 5 && strncasecmp(k, "error", 5) == 0)
			dst = &c->error;
		if (keep && dst) {
			bg_free(*dst);
			*dst = bg_buf_detach(&v);
		}
		bg_buf_free(&v);
	}
}

int bg_auth_challenge_parse(bg_auth_challenge *out, const char *header)
{
	memset(out, 0, sizeof(*out));
	if (!header || strlen(header) > 8192)
		return bg_error(BANGER_ENETWORK, "registry sent no usable WWW-Authenticate challenge");
	const char *p = header;
	bool have = false;
	while (p && *skip_ws(p)) {
		bg_auth_challenge c = { 0 };
		const char *next = parse_one(p, &c, true);
		if (!next) {
			bg_auth_challenge_free(&c);
			break;
		}
		/* Prefer Bearer; otherwise keep the first we understand. */
		bool known = strcmp(c.scheme, "bearer") == 0 || strcmp(c.scheme, "basic") == 0;
		if (known && (!have || (strcmp(c.scheme, "bearer") == 0 && strcmp(out->scheme, "bearer") != 0))) {
			bg_auth_challenge_free(out);
			*out = c;
			have = true;
		} else {
			bg_auth_challenge_free(&c);
		}
		p = next;
	}
	if (!have)
		return bg_error(BANGER_EUNSUPPORTED, "registry asks for an authentication scheme banger "
				"does not support: %.200s", header);
	if (strcmp(out->scheme, "bearer") == 0 && (!out->realm || !*out->realm)) {
		bg_auth_challenge_free(out);
		return bg_error(BANGER_ENETWORK, "registry's Bearer challenge has no realm: %.200s", header);
	}
	return 0;
}

/* "https://index.docker.io/v1/" -> "index.docker.io" */
static void auth_key_host(const char *key, char *out, size_t cap)
{
	if (strncmp(key, "https://", 8) == 0)
		key += 8;
	else if (strncmp(key, "http://", 7) == 0)
		key += 7;
	size_t n = strcspn(key, "/");
	if (n >= cap)
		n = cap - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)key[i]);
	out[n] = '\0';
}

static bool is_docker_hub(const char *h)
{
	return strcmp(h, "docker.io") == 0 || strcmp(h, "index.docker.io") == 0 ||
	       strcmp(h, "registry-1.docker.io") == 0;
}

int bg_docker_config_auth(char **out, const char *domain)
{
	*out = NULL;
	const char *dir = getenv("DOCKER_CONFIG");
	char *path;
	if (dir && *dir) {
		path = bg_path_join(dir, "config.json");
	} else {
		const char *home = getenv("HOME");
		if (!home || !*home)
			return 0;
		path = bg_sprintf("%s/.docker/config.json", home);
	}
	if (!path)
		return bg_error_oom();
	if (!bg_path_exists(path)) {
		bg_free(path);
		return 0;
	}
	char *text = NULL;
	size_t len = 0;
	int rc = bg_read_file(&text, &len, path, 1u << 20);
	if (rc) {
		bg_error_prefix("Docker credentials");
		bg_free(path);
		return rc;
	}
	json_error_t e;
	json_t *root = json_loadb(text, len, 0, &e);
	bg_free(text);
	if (!root) {
		rc = bg_error(BANGER_EINVALID, "%s is not valid JSON: %s (line %d)", path, e.text, e.line);
		bg_free(path);
		return rc;
	}
	char want[256];
	auth_key_host(domain, want, sizeof(want));
	json_t *auths = json_object_get(root, "auths");
	const char *key;
	json_t *val;
	json_object_foreach(auths, key, val) {
		char host[256];
		auth_key_host(key, host, sizeof(host));
		bool match = strcmp(host, want) == 0 || (is_docker_hub(host) && is_docker_hub(want));
		if (!match || !json_is_object(val))
			continue;
		const char *a = json_string_value(json_object_get(val, "auth"));
		const char *u = json_string_value(json_object_get(val, "username"));
		const char *pw = json_string_value(json_object_get(val, "password"));
		if (a && *a) {
			/* it goes into an Authorization header as is: base64 only
			 * (a CR or LF would start a header of the file's choosing) */
			if (strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != strlen(a))
				rc = bg_error(BANGER_EINVALID, "%s: the \"auth\" of %s is not base64", path, key);
			else if (!(*out = bg_strdup(a)))
				rc = bg_error_oom();
		} else if (u && pw) {
			char *up = bg_sprintf("%s:%s", u, pw);
			*out = up ? bg_base64_encode(up, strlen(up), true) : NULL;
			if (up) {
				memset(up, 0, strlen(up));
				bg_free(up);
			}
			if (!*out)
				rc = bg_error_oom();
		}
		break;
	}
	json_decref(root);
	bg_free(path);
	return rc;
}
