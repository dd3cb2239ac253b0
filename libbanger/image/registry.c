/* The registry client (distribution API v2 over libcurl).
 *
 * HTTPS unless the registry is loopback or listed as insecure.  Auth:
 * GET /v2/ tells whether and how (Bearer token service or Basic); Bearer
 * tokens are cached per scope.  Redirects are followed by hand so that
 * Authorization never reaches another origin (blob downloads redirect to
 * CDNs).  Blobs are downloaded in parallel with curl multi, each streamed
 * through SHA-256 into a temporary file in the cache and renamed to its
 * digest only when size and digest match. */
#include "image.h"
#include "../env/env.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_REDIRECTS 5
#define CONNECT_TIMEOUT_MS 30000L
#define SMALL_TIMEOUT_MS 120000L  /* whole request, manifests/tokens/configs */
#define STALL_SECONDS 60L         /* abort a transfer below 1 byte/s for this long */
#define TOKEN_MAX (64u << 10)
#define ERRBODY_MAX 4096
#define MAX_TOKENS 8
#define MAX_ATTEMPTS 3

enum { AUTH_UNKNOWN = 0, AUTH_NONE, AUTH_BEARER, AUTH_BASIC };

typedef struct {
	char *scope;
	char *token;
	int64_t expires_ms;
} token_entry;

struct bg_registry {
	bg_env *env;
	char scheme[8];      /* "https" or "http" */
	char *host;          /* API host[:port] */
	char *origin;        /* scheme://host */
	char *path;          /* repository */
	char *domain;        /* reference domain (credential lookup) */
	char *insecure_list;
	char *basic;         /* base64 user:pass from the Docker config, or NULL */
	bool creds_loaded;
	int auth;
	bg_auth_challenge chal;
	token_entry tokens[MAX_TOKENS];
};

/* ---- small helpers ---- */

static char *origin_of(const char *url)
{
	CURLU *u = curl_url();
	if (!u)
		return NULL;
	char *scheme = NULL, *host = NULL, *port = NULL, *out = NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
		for (char *p = host; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		out = bg_sprintf("%s://%s:%s", scheme, host, port);
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return out;
}

/* May a request (possibly carrying credentials) go to url?  HTTPS always;
 * plain HTTP only to loopback or registries listed as insecure. */
static int check_url_allowed(bg_registry *r, const char *url, const char *what)
{
	if (strncmp(url, "https://", 8) == 0)
		return 0;
	if (strncmp(url, "http://", 7) != 0)
		return bg_error(BANGER_ENETWORK, "%s: refusing URL scheme of '%.200s'", what, url);
	char *hp = bg_url_hostport(url);
	if (!hp)
		return bg_error(BANGER_ENETWORK, "%s: malformed URL '%.200s'", what, url);
	bool ok = bg_registry_insecure(hp, r->insecure_list) ||
		  (strcmp(r->scheme, "http") == 0 && strcmp(hp, r->host) == 0);
	int rc = ok ? 0 : bg_error(BANGER_ENETWORK, "%s: refusing plain HTTP to %s (not loopback and "
				   "not in insecure_registries)", what, hp);
	bg_free(hp);
	return rc;
}

/* The message of a registry error body, if it has one. */
static void registry_message(const char *body, size_t len, char *out, size_t cap)
{
	out[0] = '\0';
	if (!body || !len)
		return;
	json_t *j = json_loadb(body, len, 0, NULL);
	json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
	const char *code = json_string_value(json_object_get(e0, "code"));
	const char *msg = json_string_value(json_object_get(e0, "message"));
	if (code || msg)
		snprintf(out, cap, ": %s%s%s", code ? code : "", code && msg ? " " : "", msg ? msg : "");
	json_decref(j);
}

static int http_status_error(long code, const char *what, const char *body, size_t len)
{
	char msg[300];
	registry_message(body, len, msg, sizeof(msg));
	int bc = code == 404 ? BANGER_ENOTFOUND
		: (code == 401 || code == 403) ? BANGER_EPERM
		: BANGER_ENETWORK;
	if (code == 401)
		return bg_error(bc, "%s: authentication required (HTTP 401)%s; check the credentials in "
				"~/.docker/config.json", what, msg);
	if (code == 403)
		return bg_error(bc, "%s: access denied (HTTP 403)%s", what, msg);
	return bg_error_lib(bc, "http", (int)code, "%s: HTTP %ld%s", what, code, msg);
}

/* ---- one HTTP exchange ---- */

typedef struct {
	CURL *h;
	struct curl_slist *headers;
	char *url;
	long code;
	bg_buf body;          /* small responses (and error bodies) */
	size_t max;
	bool too_big;
	bool oom;             /* a callback could not allocate: the transfer was aborted */
	char *content_type, *docker_digest, *www_auth;
	/* blob downloads */
	int fd;
	bg_sha256 *sha;
	uint64_t got, expect;
	bool to_file;
} xfer;

static size_t header_cb(char *buf, size_t size, size_t n, void *ud)
{
	xfer *x = ud;
	size_t len = size * n;
	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		/* a new response (after 100-continue or similar) */
		bg_free(x->content_type);
		bg_free(x->docker_digest);
		bg_free(x->www_auth);
		x->content_type = x->docker_digest = x->www_auth = NULL;
		return len;
	}
	const char *colon = memchr(buf, ':', len);
	if (!colon)
		return len;
	size_t klen = (size_t)(colon - buf);
	const char *v = colon + 1;
	size_t vlen = len - klen - 1;
	while (vlen && (*v == ' ' || *v == '\t'))
		v++, vlen--;
	while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
		vlen--;
	char **dst = NULL;
	if (klen == 12 && strncasecmp(buf, "Content-Type", 12) == 0)
		dst = &x->content_type;
	else if (klen == 21 && strncasecmp(buf, "Docker-Content-Digest", 21) == 0)
		dst = &x->docker_digest;
	else if (klen == 16 && strncasecmp(buf, "WWW-Authenticate", 16) == 0)
		dst = &x->www_auth;
	if (dst && vlen < 8192) {
		bg_free(*dst);
		if (!(*dst = bg_strndup(v, vlen))) {
			x->oom = true;
			return 0; /* abort: a lost header must not read as an absent one */
		}
	}
	return len;
}

static size_t write_cb(char *buf, size_t size, size_t n, void *ud)
{
	xfer *x = ud;
	size_t len = size * n;
	long code = 0;
	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
	if (x->to_file && code == 200) {
		if (x->got + len > x->expect) {
			x->too_big = true;
			return 0;
		}
		bg_sha256_update(x->sha, buf, len);
		const char *p = buf;
		size_t left = len;
		while (left) {
			ssize_t w = write(x->fd, p, left);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				return 0;
			}
			p += w;
			left -= (size_t)w;
		}
		x->got += len;
		return len;
	}
	size_t cap = (x->to_file || code != 200) ? ERRBODY_MAX : x->max;
	if (x->body.len + len > cap) {
		if (x->to_file || code != 200) {
			/* keep the start of an error body, drop the rest */
			size_t room = cap > x->body.len ? cap - x->body.len : 0;
			if (room)
				bg_buf_put(&x->body, buf, room);
			return len;
		}
		x->too_big = true;
		return 0;
	}
	bg_buf_put(&x->body, buf, len);
	if (x->body.oom)
		x->oom = true;
	return x->body.oom ? 0 : len;
}

static void xfer_reset_response(xfer *x)
{
	bg_buf_free(&x->body);
	bg_free(x->content_type);
	bg_free(x->docker_digest);
	bg_free(x->www_auth);
	x->content_type = x->docker_digest = x->www_auth = NULL;
	x->code = 0;
	x->too_big = false;
	x->oom = false;
}

static void xfer_free(xfer *x)
{
	if (x->h)
		curl_easy_cleanup(x->h);
	curl_slist_free_all(x->headers);
	xfer_reset_response(x);
	bg_free(x->url);
	bg_sha256_free(x->sha);
	memset(x, 0, sizeof(*x));
	x->fd = -1;
}

/* Set up (or re-set) the handle for x->url with the given headers. */
static int xfer_setup(bg_registry *r, xfer *x, const char *accept, const char *authz, bool small)
{
	if (!x->h && !(x->h = curl_easy_init()))
		return bg_error(BANGER_ENOMEM, "cannot create a curl handle");
	curl_easy_reset(x->h);
	curl_slist_free_all(x->headers);
	x->headers = NULL;
	char *h1 = accept ? bg_sprintf("Accept: %s", accept) : NULL;
	if (accept && !h1)
		return bg_error_oom();
	struct curl_slist *l = NULL, *t;
	if (h1) {
		t = curl_slist_append(l, h1);
		bg_free(h1);
		if (!t)
			return bg_error_oom();
		l = t;
	}
	if (authz) {
		t = curl_slist_append(l, authz);
		if (!t) {
			curl_slist_free_all(l);
			return bg_error_oom();
		}
		l = t;
	}
	x->headers = l;
	CURL *h = x->h;
	curl_easy_setopt(h, CURLOPT_URL, x->url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_USERAGENT, "banger/" BANGER_VERSION);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, STALL_SECONDS);
	if (small)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, SMALL_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_PRIVATE, x);
	return bg_http_proxy_apply(h, r->env ? bg_config_get(&r->env->config, "proxy") : NULL);
}

/* After a 3xx: move x to the Location.  *same_origin tells whether the
 * Authorization header may be kept. */
static int xfer_redirect(bg_registry *r, xfer *x, bool *same_origin, const char *what)
{
	char *loc = NULL;
	curl_easy_getinfo(x->h, CURLINFO_REDIRECT_URL, &loc);
	if (!loc || !*loc)
		return bg_error(BANGER_ENETWORK, "%s: HTTP %ld redirect without a Location", what, x->code);
	int rc = check_url_allowed(r, loc, what);
	if (rc)
		return rc;
	char *next = bg_strdup(loc);
	char *o1 = origin_of(r->origin), *o2 = origin_of(loc);
	if (!next || !o1 || !o2) {
		bg_free(next);
		bg_free(o1);
		bg_free(o2);
		return bg_error_oom();
	}
	*same_origin = strcmp(o1, o2) == 0;
	bg_debug(r->env, "%s: redirected to %s%s", what, o2, *same_origin ? "" : " (without credentials)");
	bg_free(o1);
	bg_free(o2);
	bg_free(x->url);
	x->url = next;
	return 0;
}

/* ---- auth ---- */

static int load_creds(bg_registry *r)
{
	if (r->creds_loaded)
		return 0;
	int rc = bg_docker_config_auth(&r->basic, r->domain);
	if (rc == 0)
		r->creds_loaded = true;
	return rc;
}

static bool is_redirect(long code)
{
	return code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
}

/* A small GET with redirects handled (credentials only to the same origin). */
static int small_get(bg_registry *r, xfer *x, const char *url, const char *accept, const char *authz,
		     size_t max, const char *what)
{
	int rc = 0;
	bool keep_auth = true;
	if (!(x->url = bg_strdup(url)))
		return bg_error_oom();
	x->max = max;
	for (int hop = 0;; hop++) {
		xfer_reset_response(x);
		if ((rc = xfer_setup(r, x, accept, keep_auth ? authz : NULL, true)))
			return rc;
		CURLcode cc = curl_easy_perform(x->h);
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->code);
		if (x->too_big)
			return bg_error(BANGER_EINVALID, "%s: response larger than %zu bytes", what, max);
		/* before cc: an allocation failure in a callback shows as a write error */
		if (x->oom || x->body.oom)
			return bg_error_oom();
		if (cc != CURLE_OK)
			return bg_error_lib(BANGER_ENETWORK, "curl", (int)cc, "%s: %s", what,
					    curl_easy_strerror(cc));
		if (!is_redirect(x->code))
			return 0;
		if (hop >= MAX_REDIRECTS)
			return bg_error(BANGER_ENETWORK, "%s: too many redirects", what);
		bool same = false;
		if ((rc = xfer_redirect(r, x, &same, what)))
			return rc;
		keep_auth = keep_auth && same;
	}
}

/* Ask the registry at /v2/ whether and how it wants auth. */
static int ping(bg_registry *r)
{
	if (r->auth != AUTH_UNKNOWN)
		return 0;
	char *url = bg_sprintf("%s/v2/", r->origin);
	if (!url)
		return bg_error_oom();
	xfer x = { .fd = -1 };
	int rc = small_get(r, &x, url, NULL, NULL, 64 << 10, r->host);
	if (rc == 0) {
		if (x.code == 200) {
			r->auth = AUTH_NONE;
		} else if (x.code == 401) {
			bg_auth_challenge_free(&r->chal);
			if ((rc = bg_auth_challenge_parse(&r->chal, x.www_auth)) == 0)
				r->auth = strcmp(r->chal.scheme, "bearer") == 0 ? AUTH_BEARER : AUTH_BASIC;
			else
				bg_error_prefix("registry %s", r->host);
		} else if (x.code == 404) {
			rc = bg_error(BANGER_ENETWORK, "%s does not serve the registry API (GET /v2/ is 404)",
				      r->host);
		} else {
			rc = http_status_error(x.code, r->host, x.body.data, x.body.len);
		}
	} else {
		bg_error_prefix("cannot reach registry %s", r->host);
	}
	xfer_free(&x);
	bg_free(url);
	return rc;
}

static void drop_token(bg_registry *r, const char *scope)
{
	for (int i = 0; i < MAX_TOKENS; i++) {
		if (r->tokens[i].scope && strcmp(r->tokens[i].scope, scope) == 0) {
			bg_free(r->tokens[i].scope);
			if (r->tokens[i].token) {
				memset(r->tokens[i].token, 0, strlen(r->tokens[i].token));
				bg_free(r->tokens[i].token);
			}
			memset(&r->tokens[i], 0, sizeof(r->tokens[i]));
		}
	}
}

static int fetch_token(bg_registry *r, const char *scope, const char **out)
{
	*out = NULL;
	int64_t now = bg_now_ms();
	for (int i = 0; i < MAX_TOKENS; i++)
		if (r->tokens[i].scope && strcmp(r->tokens[i].scope, scope) == 0 &&
		    r->tokens[i].expires_ms > now) {
			*out = r->tokens[i].token;
			return 0;
		}
	drop_token(r, scope);
	int rc = load_creds(r);
	if (rc)
		return rc;
	if ((rc = check_url_allowed(r, r->chal.realm, "token service")))
		return rc;
	CURL *esc = curl_easy_init();
	if (!esc)
		return bg_error_oom();
	char *svc = r->chal.service ? curl_easy_escape(esc, r->chal.service, 0) : NULL;
	char *scp = curl_easy_escape(esc, scope, 0);
	char *url = scp ? bg_sprintf("%s%sscope=%s%s%s", r->chal.realm, strchr(r->chal.realm, '?') ? "&" : "?",
				     scp, svc ? "&service=" : "", svc ? svc : "") : NULL;
	curl_free(svc);
	curl_free(scp);
	curl_easy_cleanup(esc);
	char *authz = r->basic ? bg_sprintf("Authorization: Basic %s", r->basic) : NULL;
	if (!url || (r->basic && !authz)) {
		bg_free(url);
		bg_free(authz);
		return bg_error_oom();
	}
	xfer x = { .fd = -1 };
	rc = small_get(r, &x, url, "application/json", authz, TOKEN_MAX, "token service");
	if (authz) {
		memset(authz, 0, strlen(authz));
		bg_free(authz);
	}
	bg_free(url);
	if (rc == 0 && x.code != 200) {
		rc = http_status_error(x.code, "token service", x.body.data, x.body.len);
		if (x.code == 401 || x.code == 403)
			bg_error_prefix("registry %s refused %s credentials", r->host,
					r->basic ? "the Docker config's" : "anonymous");
	}
	if (rc == 0) {
		json_t *j = json_loadb(x.body.data ? x.body.data : "", x.body.len, 0, NULL);
		const char *tok = json_string_value(json_object_get(j, "token"));
		if (!tok || !*tok)
			tok = json_string_value(json_object_get(j, "access_token"));
		json_t *exp = json_object_get(j, "expires_in");
		int64_t secs = json_is_integer(exp) ? (int64_t)json_integer_value(exp) : 60;
		if (secs < 10)
			secs = 60;
		if (secs > 86400)
			secs = 86400;
		bool bad = !tok || !*tok;
		for (const char *p = tok; !bad && *p; p++)
			if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
				bad = true;
		if (bad) {
			rc = bg_error(BANGER_ENETWORK, "token service for %s answered without a usable token",
				      r->host);
		} else {
			int slot = 0;
			for (int i = 0; i < MAX_TOKENS; i++)
				if (!r->tokens[i].scope) {
					slot = i;
					break;
				}
			drop_token(r, r->tokens[slot].scope ? r->tokens[slot].scope : "");
			r->tokens[slot].scope = bg_strdup(scope);
			r->tokens[slot].token = bg_strdup(tok);
			/* renew a little early */
			r->tokens[slot].expires_ms = now + secs * 1000 - 5000;
			if (!r->tokens[slot].scope || !r->tokens[slot].token)
				rc = bg_error_oom();
			else
				*out = r->tokens[slot].token;
		}
		json_decref(j);
	}
	xfer_free(&x);
	return rc;
}

/* "Authorization: ..." for a pull of our repository, or NULL when the
 * registry wants none.  Freed by the caller. */
static int authorization(bg_registry *r, char **out)
{
	*out = NULL;
	int rc = ping(r);
	if (rc)
		return rc;
	if (r->auth == AUTH_NONE)
		return 0;
	if (r->auth == AUTH_BASIC) {
		if ((rc = load_creds(r)))
			return rc;
		if (!r->basic)
			return bg_error(BANGER_EPERM, "registry %s wants a user name and password: add them "
					"to ~/.docker/config.json (docker login %s)", r->host, r->domain);
		*out = bg_sprintf("Authorization: Basic %s", r->basic);
		return *out ? 0 : bg_error_oom();
	}
	char *scope = bg_sprintf("repository:%s:pull", r->path);
	if (!scope)
		return bg_error_oom();
	const char *tok = NULL;
	rc = fetch_token(r, scope, &tok);
	bg_free(scope);
	if (rc)
		return rc;
	*out = bg_sprintf("Authorization: Bearer %s", tok);
	return *out ? 0 : bg_error_oom();
}

/* After a 401 on a resource: forget the token so the next try fetches a
 * fresh one (expired, or the scope changed). */
static void auth_failed(bg_registry *r, const char *www_auth)
{
	if (r->auth == AUTH_BEARER) {
		char *scope = bg_sprintf("repository:%s:pull", r->path);
		if (scope)
			drop_token(r, scope);
		bg_free(scope);
	}
	if (www_auth && r->auth == AUTH_NONE) {
		/* the registry started asking (or asks per repository) */
		bg_auth_challenge c;
		if (bg_auth_challenge_parse(&c, www_auth) == 0) {
			bg_auth_challenge_free(&r->chal);
			r->chal = c;
			r->auth = strcmp(c.scheme, "bearer") == 0 ? AUTH_BEARER : AUTH_BASIC;
		}
	}
}

/* GET a resource of our repository with auth, retrying once after a 401. */
static int repo_get(bg_registry *r, xfer *x, const char *url, const char *accept, size_t max,
		    const char *what)
{
	for (int attempt = 0;; attempt++) {
		char *authz = NULL;
		int rc = authorization(r, &authz);
		if (rc)
			return rc;
		xfer_free(x);
		rc = small_get(r, x, url, accept, authz, max, what);
		if (authz) {
			memset(authz, 0, strlen(authz));
			bg_free(authz);
		}
		if (rc)
			return rc;
		if (x->code == 401 && attempt == 0) {
			auth_failed(r, x->www_auth);
			continue;
		}
		return 0;
	}
}

/* ---- public (internal) API ---- */

int bg_registry_open(bg_registry **out, const bg_registry_opts *o)
{
	*out = NULL;
	int rc = bg_global_init();
	if (rc)
		return rc;
	bg_registry *r = bg_calloc(1, sizeof(*r));
	if (!r)
		return bg_error_oom();
	r->env = o->env;
	const char *api = bg_image_ref_api_host(o->ref);
	bool plain = o->insecure || bg_registry_insecure(o->ref->domain, o->insecure_list);
	snprintf(r->scheme, sizeof(r->scheme), "%s", plain ? "http" : "https");
	r->host = bg_strdup(api);
	r->path = bg_strdup(o->ref->path);
	r->domain = bg_strdup(o->ref->domain);
	r->insecure_list = bg_strdup(o->insecure_list ? o->insecure_list : "");
	r->origin = bg_sprintf("%s://%s", r->scheme, api);
	if (!r->host || !r->path || !r->domain || !r->insecure_list || !r->origin) {
		bg_registry_close(r);
		return bg_error_oom();
	}
	if (o->insecure) {
		/* --insecure: this registry is trusted over plain HTTP, including
		 * its token service on the same host. */
		char *l = bg_sprintf("%s,%s", r->insecure_list, api);
		if (!l) {
			bg_registry_close(r);
			return bg_error_oom();
		}
		bg_free(r->insecure_list);
		r->insecure_list = l;
	}
	bg_debug(r->env, "registry %s for %s", r->origin, r->path);
	*out = r;
	return 0;
}

const char *bg_registry_origin(const bg_registry *r)
{
	return r->origin;
}

void bg_registry_close(bg_registry *r)
{
	if (!r)
		return;
	for (int i = 0; i < MAX_TOKENS; i++)
		if (r->tokens[i].scope)
			drop_token(r, r->tokens[i].scope);
	bg_auth_challenge_free(&r->chal);
	if (r->basic) {
		memset(r->basic, 0, strlen(r->basic));
		bg_free(r->basic);
	}
	bg_free(r->host);
	bg_free(r->origin);
	bg_free(r->path);
	bg_free(r->domain);
	bg_free(r->insecure_list);
	bg_free(r);
}

int bg_registry_manifest(bg_registry *r, const char *object, char **body, size_t *len,
			 char **content_type, char digest[BG_DIGEST_SIZE])
{
	*body = NULL;
	*len = 0;
	*content_type = NULL;
	digest[0] = '\0';
	bool by_digest = strncmp(object, "sha256:", 7) == 0;
	int rc = by_digest ? bg_digest_check(object, "manifest") : 0;
	if (rc)
		return rc;
	char *url = bg_sprintf("%s/v2/%s/manifests/%s", r->origin, r->path, object);
	char *what = bg_sprintf("manifest %s:%s", r->path, object);
	if (!url || !what) {
		bg_free(url);
		bg_free(what);
		return bg_error_oom();
	}
	xfer x = { .fd = -1 };
	rc = repo_get(r, &x, url, BG_MANIFEST_ACCEPT, BG_MANIFEST_MAX, what);
	if (rc == 0 && x.code != 200) {
		rc = http_status_error(x.code, what, x.body.data, x.body.len);
		if (x.code == 404)
			bg_error_prefix("%s/%s", r->host, r->path);
	}
	if (rc == 0 && (rc = bg_digest_of(digest, x.body.data ? x.body.data : "", x.body.len)) == 0) {
		if (by_digest && strcmp(digest, object) != 0)
			rc = bg_error(BANGER_EVERIFY, "%s: the registry sent a manifest with digest %s",
				      what, digest);
		else if (x.docker_digest && strncmp(x.docker_digest, "sha256:", 7) == 0 &&
			 strcmp(x.docker_digest, digest) != 0)
			rc = bg_error(BANGER_EVERIFY, "%s: Docker-Content-Digest says %.80s but the body "
				      "hashes to %s", what, x.docker_digest, digest);
	}
	if (rc == 0) {
		*len = x.body.len;
		*body = bg_buf_detach(&x.body);
		*content_type = x.content_type;
		x.content_type = NULL;
		if (!*body)
			rc = bg_error_oom();
	}
	if (rc)
		digest[0] = '\0';
	xfer_free(&x);
	bg_free(url);
	bg_free(what);
	return rc;
}

int bg_registry_blob_mem(bg_registry *r, const char *digest, size_t max, char **body, size_t *len)
{
	*body = NULL;
	*len = 0;
	int rc = bg_digest_check(digest, "blob");
	if (rc)
		return rc;
	char *url = bg_sprintf("%s/v2/%s/blobs/%s", r->origin, r->path, digest);
	char *what = bg_sprintf("blob %s", digest);
	if (!url || !what) {
		bg_free(url);
		bg_free(what);
		return bg_error_oom();
	}
	xfer x = { .fd = -1 };
	rc = repo_get(r, &x, url, NULL, max, what);
	if (rc == 0 && x.code != 200)
		rc = http_status_error(x.code, what, x.body.data, x.body.len);
	char got[BG_DIGEST_SIZE];
	if (rc == 0 && (rc = bg_digest_of(got, x.body.data ? x.body.data : "", x.body.len)) == 0 &&
	    strcmp(got, digest) != 0)
		rc = bg_error(BANGER_EVERIFY, "%s: the registry sent content with digest %s", what, got);
	if (rc == 0) {
		*len = x.body.len;
		*body = bg_buf_detach(&x.body);
		if (!*body)
			rc = bg_error_oom();
	}
	xfer_free(&x);
	bg_free(url);
	bg_free(what);
	return rc;
}

/* ---- parallel blob downloads ---- */

typedef struct {
	xfer x;
	size_t index;
	char *tmp;
	bool active, done, same_origin;
	int hops, attempts, auth_retries;
	int64_t last_report;
} job;

static int job_start(bg_registry *r, job *j, const bg_descriptor *d, CURLM *m)
{
	int rc;
	char *authz = NULL;
	if (j->same_origin && (rc = authorization(r, &authz)))
		return rc;
	if (ftruncate(j->x.fd, 0) != 0 || lseek(j->x.fd, 0, SEEK_SET) != 0) {
		bg_free(authz);
		return bg_error_os(BANGER_EIO, errno, "truncate %s", j->tmp);
	}
	if ((rc = bg_sha256_reset(j->x.sha))) {
		bg_free(authz);
		return rc;
	}
	j->x.got = 0;
	j->x.expect = d->size;
	j->x.to_file = true;
	xfer_reset_response(&j->x);
	rc = xfer_setup(r, &j->x, NULL, authz, false);
	if (authz) {
		memset(authz, 0, strlen(authz));
		bg_free(authz);
	}
	if (rc)
		return rc;
	if (curl_multi_add_handle(m, j->x.h) != CURLM_OK)
		return bg_error(BANGER_ENETWORK, "cannot start the download of %s", d->digest);
	j->active = true;
	return 0;
}

/* Handle a finished transfer: verify and commit, or set up the next try. */
static int job_finish(bg_registry *r, job *j, const bg_descriptor *d, CURLcode cc, const char *blobs,
		      bool *restart)
{
	*restart = false;
	curl_easy_getinfo(j->x.h, CURLINFO_RESPONSE_CODE, &j->x.code);
	char what[100];
	snprintf(what, sizeof(what), "blob %s", d->digest);
	if (j->x.too_big)
		return bg_error(BANGER_EVERIFY, "%s: the registry sent more than the %llu bytes the "
				"manifest declares", what, (unsigned long long)d->size);
	if (j->x.oom || j->x.body.oom)
		return bg_error_oom();
	if (cc != CURLE_OK) {
		if (++j->attempts < MAX_ATTEMPTS && cc != CURLE_WRITE_ERROR) {
			bg_warn(r->env, "%s: %s; retrying", what, curl_easy_strerror(cc));
			*restart = true;
			return 0;
		}
		return bg_error_lib(BANGER_ENETWORK, "curl", (int)cc, "%s: %s", what, curl_easy_strerror(cc));
	}
	if (is_redirect(j->x.code)) {
		if (++j->hops > MAX_REDIRECTS)
			return bg_error(BANGER_ENETWORK, "%s: too many redirects", what);
		bool same = false;
		int rc = xfer_redirect(r, &j->x, &same, what);
		if (rc)
			return rc;
		j->same_origin = j->same_origin && same;
		*restart = true;
		return 0;
	}
	if (j->x.code == 401 && j->same_origin && j->auth_retries++ == 0) {
		auth_failed(r, j->x.www_auth);
		*restart = true;
		return 0;
	}
	if (j->x.code != 200)
		return http_status_error(j->x.code, what, j->x.body.data, j->x.body.len);
	if (j->x.got != d->size)
		return bg_error(BANGER_EVERIFY, "%s: got %llu bytes, the manifest declares %llu", what,
				(unsigned long long)j->x.got, (unsigned long long)d->size);
	char got[BG_DIGEST_SIZE];
	int frc = bg_digest_final(j->x.sha, got);
	if (frc)
		return frc;
	if (strcmp(got, d->digest) != 0)
		return bg_error(BANGER_EVERIFY, "%s from %s: content has digest %s (corrupt or tampered "
				"blob; nothing was kept)", what, r->host, got);
	close(j->x.fd);
	j->x.fd = -1;
	int rc = bg_blob_commit(blobs, j->tmp, d->digest);
	if (rc)
		return rc;
	bg_free(j->tmp);
	j->tmp = NULL;
	j->done = true;
	return 0;
}

/* A set of blob downloads: what to fetch and where, the jobs (one per
 * descriptor), the curl multi handle, the next job to start and how many
 * run. */
typedef struct {
	bg_registry *r;
	const char *blobs;
	const bg_descriptor *d;
	size_t n;
	uint32_t parallel;
	bg_fetch_progress cb;
	void *payload;
	job *jobs;
	CURLM *m;
	size_t next, running;
} fetch_set;

/* Blobs already cached cost nothing; the same digest twice is fetched once. */
static int skip_cached(fetch_set *f)
{
	const bg_descriptor *d = f->d;
	bg_fetch_progress cb = f->cb;
	void *payload = f->payload;
	int rc = 0;
	for (size_t i = 0; i < f->n && !rc; i++) {
		bool dup = false;
		for (size_t k = 0; k < i; k++)
			dup = dup || strcmp(d[k].digest, d[i].digest) == 0;
		if ((rc = bg_digest_check(d[i].digest, "layer")))
			break;
		if (dup || bg_blob_cached(f->blobs, d[i].digest)) {
			f->jobs[i].done = true;
			if (cb && cb(i, BANGER_PROGRESS_CACHED, d[i].size, d[i].size, payload))
				rc = bg_progress_cancelled("download");
		}
	}
	return rc;
}

/* Start what the limit allows. */
static int start_jobs(fetch_set *f)
{
	bg_registry *r = f->r;
	const bg_descriptor *d = f->d;
	int rc = 0;
	while (!rc && f->running < f->parallel && f->next < f->n) {
		job *j = &f->jobs[f->next];
		if (!j->done) {
			j->index = f->next;
			j->same_origin = true;
			if (!(j->x.url = bg_sprintf("%s/v2/%s/blobs/%s", r->origin, r->path, d[f->next].digest)))
				rc = bg_error_oom();
			else if ((rc = bg_blob_tmp_open(f->blobs, &j->x.fd, &j->tmp)) == 0 &&
				 (rc = bg_sha256_new(&j->x.sha)) == 0 &&
				 (rc = job_start(r, j, &d[f->next], f->m)) == 0)
				f->running++;
		}
		f->next++;
	}
	return rc;
}

/* Finish the transfers curl reports done: verified and committed, or
 * started again (a redirect, a new token). */
static int collect_done(fetch_set *f)
{
	const bg_descriptor *d = f->d;
	bg_fetch_progress cb = f->cb;
	void *payload = f->payload;
	int rc = 0;
	CURLMsg *msg;
	int left;
	while (!rc && (msg = curl_multi_info_read(f->m, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		job *j = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
		CURLcode cc = msg->data.result;
		curl_multi_remove_handle(f->m, msg->easy_handle);
		j->active = false;
		f->running--;
		/* the job pointer comes from our own xfer; find its index */
		size_t idx = (size_t)((job *)(void *)j - f->jobs);
		bool restart = false;
		rc = job_finish(f->r, &f->jobs[idx], &d[idx], cc, f->blobs, &restart);
		if (!rc && restart) {
			if ((rc = job_start(f->r, &f->jobs[idx], &d[idx], f->m)) == 0)
				f->running++;
		} else if (!rc && cb &&
			   cb(idx, BANGER_PROGRESS_DOWNLOADED, d[idx].size, d[idx].size, payload)) {
			rc = bg_progress_cancelled("download");
		}
	}
	return rc;
}

/* One turn of the transfers: move the bytes, finish what is done, and
 * report progress (throttled). */
static int transfer(fetch_set *f)
{
	const bg_descriptor *d = f->d;
	bg_fetch_progress cb = f->cb;
	void *payload = f->payload;
	int still = 0;
	CURLMcode mc = curl_multi_perform(f->m, &still);
	if (mc == CURLM_OK)
		mc = curl_multi_poll(f->m, NULL, 0, 200, NULL);
	if (mc != CURLM_OK)
		return bg_error_lib(BANGER_ENETWORK, "curl", (int)mc, "downloads: %s", curl_multi_strerror(mc));
	int rc = collect_done(f);
	/* throttled progress */
	int64_t now = bg_now_ms();
	for (size_t i = 0; i < f->n && !rc && cb; i++) {
		job *j = &f->jobs[i];
		if (j->active && now - j->last_report >= 100) {
			j->last_report = now;
			if (cb(i, BANGER_PROGRESS_DOWNLOAD, j->x.got, d[i].size, payload))
				rc = bg_progress_cancelled("download");
		}
	}
	return rc;
}

/* Abort what still runs, drop temporaries; the error stays what it was. */
static void fetch_set_free(fetch_set *f)
{
	bg_error_saved saved;
	bg_error_save(&saved);
	for (size_t i = 0; i < f->n; i++) {
		job *j = &f->jobs[i];
		if (j->active && f->m)
			curl_multi_remove_handle(f->m, j->x.h);
		if (j->x.fd >= 0)
			close(j->x.fd);
		j->x.fd = -1;
		if (j->tmp)
			unlink(j->tmp);
		bg_free(j->tmp);
		xfer_free(&j->x);
	}
	bg_error_restore(&saved);
	if (f->m)
		curl_multi_cleanup(f->m);
	bg_free(f->jobs);
}

int bg_registry_fetch_blobs(bg_registry *r, const char *blobs, const bg_descriptor *d, size_t n,
			    uint32_t parallel, bg_fetch_progress cb, void *payload)
{
	if (parallel == 0)
		parallel = 4;
	fetch_set f = { r, blobs, d, n, parallel, cb, payload, NULL, NULL, 0, 0 };
	f.jobs = bg_calloc(n ? n : 1, sizeof(*f.jobs));
	if (!f.jobs)
		return bg_error_oom();
	for (size_t i = 0; i < n; i++)
		f.jobs[i].x.fd = -1;
	f.m = curl_multi_init();
	int rc = f.m ? 0 : bg_error(BANGER_ENOMEM, "cannot create a curl multi handle");
	if (!rc)
		rc = skip_cached(&f);
	while (!rc) {
		rc = start_jobs(&f);
		if (rc || (f.running == 0 && f.next >= n))
			break;
		rc = transfer(&f);
	}
	fetch_set_free(&f);
	return rc;
}
