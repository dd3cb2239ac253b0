/* The kernel catalog: a JSON document at a URL (docs/kernel-catalog.md).
 * Parsing is strict: a catalog that breaks a rule is refused as a whole,
 * with the entry and field named, rather than half used. */
#include "kernel.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CATALOG_TIMEOUT_MS (60 * 1000)

void bg_catalog_clear(bg_catalog *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->count; i++) {
		bg_catalog_entry *e = &c->entries[i];
		char **s[] = { &e->name, &e->version, &e->arch, &e->url, &e->sha256,
			       &e->description, &e->format, &e->vmms };
		for (size_t j = 0; j < BG_ARRAY_SIZE(s); j++)
			bg_free(*s[j]);
	}
	bg_free(c->entries);
	bg_free(c->url);
	memset(c, 0, sizeof(*c));
}

const bg_catalog_entry *bg_catalog_find(const bg_catalog *c, const char *name)
{
	for (size_t i = 0; c && name && i < c->count; i++)
		if (strcmp(c->entries[i].name, name) == 0)
			return &c->entries[i];
	return NULL;
}

/* ---- URLs ---- */

static bool scheme_allowed(const char *scheme)
{
	return scheme && (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0 ||
			  strcmp(scheme, "file") == 0);
}

static int curlu_error(CURLUcode uc, const char *what, const char *url)
{
	int code = uc == CURLUE_OUT_OF_MEMORY ? BANGER_ENOMEM : BANGER_EINVALID;
	return bg_error_lib(code, "curl", (int)uc, "%s '%s': %s", what, url, curl_url_strerror(uc));
}

/* Parse (optionally relative to base) and hand back the normalised URL
 * when its scheme is one banger fetches. */
static int url_finish(char **out, const char *base, const char *ref)
{
	*out = NULL;
	CURLU *u = curl_url();
	if (!u)
		return bg_error_oom();
	int rc = 0;
	CURLUcode uc;
	char *full = NULL, *scheme = NULL;
	if (base && (uc = curl_url_set(u, CURLUPART_URL, base, 0)) != CURLUE_OK) {
		rc = curlu_error(uc, "invalid URL", base);
		goto out;
	}
	if ((uc = curl_url_set(u, CURLUPART_URL, ref, 0)) != CURLUE_OK) {
		rc = curlu_error(uc, base ? "invalid URL reference" : "invalid URL", ref);
		goto out;
	}
	if ((uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0)) != CURLUE_OK) {
		rc = curlu_error(uc, "URL without a scheme", ref);
		goto out;
	}
	if (!scheme_allowed(scheme)) {
		rc = bg_error(BANGER_EUNSUPPORTED, "URL '%s': scheme '%s' is not supported "
			      "(use http, https or file)", ref, scheme);
		goto out;
	}
	if ((uc = curl_url_get(u, CURLUPART_URL, &full, 0)) != CURLUE_OK) {
		rc = curlu_error(uc, "invalid URL", ref);
		goto out;
	}
	/* libcurl 7.88 prints some URLs it accepted as ones it refuses
	 * ("file:///" comes back as "file://(nil)"): hand out only a URL that
	 * parses again to itself. */
	CURLU *again = curl_url();
	char *full2 = NULL;
	if (!again) {
		rc = bg_error_oom();
		goto out;
	}
	uc = curl_url_set(again, CURLUPART_URL, full, 0);
	if (uc == CURLUE_OK)
		uc = curl_url_get(again, CURLUPART_URL, &full2, 0);
	curl_url_cleanup(again);
	bool same = uc == CURLUE_OK && strcmp(full, full2) == 0;
	curl_free(full2);
	if (!same) {
		rc = uc == CURLUE_OUT_OF_MEMORY ? bg_error_oom()
			: bg_error(BANGER_EINVALID, "URL '%s' cannot be used (libcurl cannot parse '%s' back)",
				   ref, full);
		goto out;
	}
	*out = bg_strdup(full);
	if (!*out)
		rc = bg_error_oom();
out:
	curl_free(full);
	curl_free(scheme);
	curl_url_cleanup(u);
	return rc;
}

int bg_url_resolve(char **out, const char *base, const char *ref)
{
	*out = NULL;
	if (!ref || !*ref)
		return bg_error(BANGER_EINVALID, "empty URL");
	for (const char *p = ref; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return bg_error(BANGER_EINVALID, "URL '%s' contains whitespace or control characters", ref);
	return url_finish(out, base, ref);
}

/* file:// URL for an absolute path, percent-encoding what is not plain. */
static int path_to_url(char **out, const char *path)
{
	bg_buf b = BG_BUF_INIT;
	bg_buf_puts(&b, "file://");
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if (isalnum(*p) || strchr("/-._~+", *p))
			bg_buf_put(&b, p, 1);
		else
			bg_buf_printf(&b, "%%%02X", *p);
	}
	if (b.oom) {
		bg_buf_free(&b);
		return bg_error_oom();
	}
	*out = bg_buf_detach(&b);
	return *out ? 0 : bg_error_oom();
}

int bg_catalog_url_normalize(char **out, const char *s)
{
	*out = NULL;
	if (!s || !*s)
		return bg_error(BANGER_EINVALID, "empty catalog URL");
	if (s[0] == '/' || !strstr(s, "://")) {
		/* A path: absolute, or relative to the working directory. */
		char *abs = NULL;
		if (s[0] == '/') {
			abs = bg_strdup(s);
		} else {
			char cwd[PATH_MAX];
			if (!getcwd(cwd, sizeof(cwd)))
				return bg_error(BANGER_EINVALID, "catalog '%s' is neither a URL nor a path", s);
			abs = bg_path_join(cwd, s);
		}
		if (!abs)
			return bg_error_oom();
		char *url = NULL;
		int rc = path_to_url(&url, abs);
		bg_free(abs);
		if (rc)
			return rc;
		rc = bg_url_resolve(out, NULL, url);
		bg_free(url);
		return rc;
	}
	return bg_url_resolve(out, NULL, s);
}

int bg_catalog_url_for(char **out, bg_env *env, const char *override)
{
	*out = NULL;
	const char *url = override && *override ? override : bg_config_get(&env->config, "kernel_catalog");
	if (!url || !*url)
		return bg_error(BANGER_EINVALID,
				"no kernel catalog is configured: set kernel_catalog in %s or pass a catalog URL "
				"(banger publishes no default catalog)", env->layout.config_path);
	return bg_catalog_url_normalize(out, url);
}

/* ---- parsing ---- */

typedef struct {
	const char *url;
	size_t index;
	const char *name; /* NULL until known */
} where;

BG_PRINTF(2, 3)
static int bad(const where *w, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (w->name)
		return bg_error(BANGER_EINVALID, "malformed catalog %s: kernels[%zu] (\"%s\"): %s", w->url,
				w->index, w->name, msg);
	return bg_error(BANGER_EINVALID, "malformed catalog %s: kernels[%zu]: %s", w->url, w->index, msg);
}

/* A required (or optional) string member, copied. */
static int get_string(char **out, json_t *obj, const char *key, bool required, bool nonempty, const where *w)
{
	*out = NULL;
	json_t *v = json_object_get(obj, key);
	if (!v) {
		if (required)
			return bad(w, "missing required field \"%s\"", key);
		return 0;
	}
	if (!json_is_string(v))
		return bad(w, "field \"%s\" must be a string", key);
	const char *s = json_string_value(v);
	if (nonempty && !*s)
		return bad(w, "field \"%s\" must not be empty", key);
	if (strlen(s) != json_string_length(v))
		return bad(w, "field \"%s\" contains a NUL character", key);
	*out = bg_strdup(s);
	return *out ? 0 : bg_error_oom();
}

static bool arch_valid(const char *a)
{
	if (!a || !*a || strlen(a) > 32)
		return false;
	for (; *a; a++)
		if (!islower((unsigned char)*a) && !isdigit((unsigned char)*a) && *a != '_')
			return false;
	return true;
}

/* The string fields; url is returned as written, to be resolved. */
static int parse_strings(bg_catalog_entry *e, json_t *obj, char **url, where *w)
{
	int rc;
	if ((rc = get_string(&e->name, obj, "name", true, true, w)))
		return rc;
	if (!bg_kernel_name_valid(e->name))
		return bad(w, "name \"%s\" is not valid (letters, digits, '.', '_', '-', at most %d, "
			   "starting with a letter or digit)", e->name, BG_KERNEL_NAME_MAX);
	w->name = e->name;
	if ((rc = get_string(&e->version, obj, "version", true, true, w)) ||
	    (rc = get_string(&e->arch, obj, "arch", true, true, w)) ||
	    (rc = get_string(url, obj, "url", true, true, w)) ||
	    (rc = get_string(&e->sha256, obj, "sha256", true, true, w)) ||
	    (rc = get_string(&e->description, obj, "description", true, false, w)) ||
	    (rc = get_string(&e->format, obj, "format", false, true, w)))
		return rc;
	if (!arch_valid(e->arch))
		return bad(w, "arch \"%s\" is not an architecture name such as \"x86_64\"", e->arch);
	if (e->format && strcmp(e->format, "elf") != 0 && strcmp(e->format, "bzimage") != 0)
		return bad(w, "format \"%s\" is not \"elf\" or \"bzimage\"", e->format);
	return 0;
}

/* sha256: 64 hex digits, stored lowercase */
static int check_sha256(bg_catalog_entry *e, const where *w)
{
	size_t hl = e->sha256 ? strlen(e->sha256) : 0; /* required: parse_fields set it */
	bool hex_ok = hl == 64;
	for (size_t i = 0; hex_ok && i < hl; i++) {
		if (!isxdigit((unsigned char)e->sha256[i]))
			hex_ok = false;
		e->sha256[i] = (char)tolower((unsigned char)e->sha256[i]);
	}
	if (!hex_ok)
		return bad(w, "sha256 must be 64 hexadecimal digits");
	return 0;
}

/* size: a positive integer within bounds */
static int parse_size(bg_catalog_entry *e, json_t *obj, const where *w)
{
	json_t *sz = json_object_get(obj, "size");
	if (!sz)
		return bad(w, "missing required field \"size\"");
	if (!json_is_integer(sz) || json_integer_value(sz) <= 0)
		return bad(w, "size must be a positive integer (bytes)");
	if ((uint64_t)json_integer_value(sz) > BG_ARTIFACT_MAX_BYTES)
		return bad(w, "size %lld is larger than banger accepts (%llu bytes)",
			   (long long)json_integer_value(sz), (unsigned long long)BG_ARTIFACT_MAX_BYTES);
	e->size = (uint64_t)json_integer_value(sz);
	return 0;
}

/* vmms: a non-empty array of names, stored comma-separated */
static int parse_vmms(bg_catalog_entry *e, json_t *obj, const where *w)
{
	json_t *vm = json_object_get(obj, "vmms");
	if (!vm)
		return bad(w, "missing required field \"vmms\"");
	if (!json_is_array(vm) || json_array_size(vm) == 0)
		return bad(w, "vmms must be a non-empty array of VMM names");
	bg_buf vb = BG_BUF_INIT;
	for (size_t i = 0; i < json_array_size(vm); i++) {
		json_t *v = json_array_get(vm, i);
		const char *s = json_is_string(v) ? json_string_value(v) : NULL;
		bool ok = s && *s && strlen(s) <= 32;
		for (const char *p = s; ok && *p; p++)
			ok = islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-';
		if (!ok) {
			bg_buf_free(&vb);
			return bad(w, "vmms[%zu] must be a VMM name such as \"firecracker\" or \"qemu\"", i);
		}
		if (i)
			bg_buf_puts(&vb, ",");
		bg_buf_puts(&vb, s);
	}
	if (vb.oom) {
		bg_buf_free(&vb);
		return bg_error_oom();
	}
	e->vmms = bg_buf_detach(&vb);
	return e->vmms ? 0 : bg_error_oom();
}

/* url: absolute, or relative to the catalog's URL */
static int resolve_url(bg_catalog_entry *e, const char *base_url, const char *url, const where *w)
{
	int rc;
	if ((rc = bg_url_resolve(&e->url, base_url, url))) {
		bg_error_prefix("malformed catalog %s: kernels[%zu] (\"%s\"): url", w->url, w->index, w->name);
		return rc != BANGER_ENOMEM ? BANGER_EINVALID : rc;
	}
	/* A catalog from the network never makes banger read local files. */
	if (base_url && !bg_startswith(base_url, "file:") && bg_startswith(e->url, "file:"))
		return bad(w, "url %s: a catalog fetched over the network may not point at a local file", e->url);
	return 0;
}

static int parse_entry(bg_catalog_entry *e, json_t *obj, const char *base_url, where *w)
{
	int rc;
	char *url = NULL;
	if (!json_is_object(obj))
		return bad(w, "an entry must be a JSON object");
	if ((rc = parse_strings(e, obj, &url, w)) == 0 && (rc = check_sha256(e, w)) == 0 &&
	    (rc = parse_size(e, obj, w)) == 0 && (rc = parse_vmms(e, obj, w)) == 0)
		rc = resolve_url(e, base_url, url, w);
	bg_free(url);
	return rc;
}

int bg_catalog_parse(bg_catalog *out, const char *text, size_t len, const char *base_url)
{
	memset(out, 0, sizeof(*out));
	const char *name = base_url ? base_url : "(catalog)";
	json_error_t jerr;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return bg_error_lib(BANGER_EINVALID, "jansson", json_error_code(&jerr),
				    "malformed catalog %s: line %d, column %d: %s", name, jerr.line,
				    jerr.column, jerr.text);
	int rc = 0;
	if (!json_is_object(root)) {
		rc = bg_error(BANGER_EINVALID, "malformed catalog %s: the document must be a JSON object", name);
		goto out;
	}
	json_t *ver = json_object_get(root, "schema_version");
	if (!ver) {
		rc = bg_error(BANGER_EINVALID, "malformed catalog %s: missing \"schema_version\"", name);
		goto out;
	}
	if (!json_is_integer(ver) || json_integer_value(ver) < 1) {
		rc = bg_error(BANGER_EINVALID, "malformed catalog %s: \"schema_version\" must be a positive integer",
			      name);
		goto out;
	}
	if (json_integer_value(ver) != BG_CATALOG_SCHEMA_VERSION) {
		rc = bg_error(BANGER_EUNSUPPORTED, "catalog %s has schema_version %lld; this banger reads "
			      "version %d: upgrade banger", name, (long long)json_integer_value(ver),
			      BG_CATALOG_SCHEMA_VERSION);
		goto out;
	}
	json_t *arr = json_object_get(root, "kernels");
	if (!arr || !json_is_array(arr)) {
		rc = bg_error(BANGER_EINVALID, "malformed catalog %s: \"kernels\" must be an array", name);
		goto out;
	}
	size_t n = json_array_size(arr);
	if (n) {
		out->entries = bg_calloc(n, sizeof(*out->entries));
		if (!out->entries) {
			rc = bg_error_oom();
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		where w = { name, i, NULL };
		out->count = i + 1; /* so a failure frees what this entry got */
		if ((rc = parse_entry(&out->entries[i], json_array_get(arr, i), base_url, &w)))
			goto out;
		for (size_t j = 0; j < i; j++)
			/* every parsed entry has a name (parse_entry fails otherwise) */
			if (strcmp(out->entries[j].name, out->entries[i].name) == 0) { // NOLINT(clang-analyzer-core.NonNullParamChecker)
				rc = bad(&w, "name \"%s\" is listed twice (also kernels[%zu])",
					 out->entries[i].name, j);
				goto out;
			}
	}
	if (base_url && !(out->url = bg_strdup(base_url)))
		rc = bg_error_oom();
out:
	json_decref(root);
	if (rc)
		bg_catalog_clear(out);
	return rc;
}

int bg_catalog_fetch(bg_catalog *out, bg_env *env, const char *url)
{
	memset(out, 0, sizeof(*out));
	bg_buf body = BG_BUF_INIT;
	bg_download_req d = {
		.fd = -1,
		.buf = &body,
		.max_size = BG_CATALOG_MAX_BYTES,
		.timeout_ms = CATALOG_TIMEOUT_MS,
		/* the catalog's sha256 are the kernels' only integrity */
		.transport_integrity = true,
		.insecure_list = bg_config_get(&env->config, "insecure_registries"),
	};
	int rc = bg_download(env, url, &d);
	if (rc) {
		bg_error_prefix("fetch kernel catalog");
		bg_buf_free(&body);
		return rc;
	}
	rc = bg_catalog_parse(out, body.data ? body.data : "", body.len, url);
	bg_buf_free(&body);
	if (rc == 0)
		bg_debug(env, "catalog %s: %zu kernels", url, out->count);
	return rc;
}
