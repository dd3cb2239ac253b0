/* Manifests: OCI index and image manifest, Docker manifest list and
 * schema 2; image configs.  Parsed strictly (duplicate keys refused,
 * digests checked before anything uses them) within size caps. */
#include "image.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int json_fail(const json_error_t *e, const char *what)
{
	return bg_error_lib(BANGER_EINVALID, "jansson", 0, "%s is not valid JSON: %s (line %d, column %d)",
			    what, e->text, e->line, e->column);
}

/* media type without parameters ("; charset=utf-8"), lowercase */
static void media_type_base(char *out, size_t cap, const char *ct)
{
	size_t n = 0;
	if (ct) {
		while (*ct == ' ' || *ct == '\t')
			ct++;
		while (ct[n] && ct[n] != ';' && ct[n] != ' ' && n + 1 < cap) {
			char c = ct[n];
			out[n] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
			n++;
		}
	}
	out[n] = '\0';
}

static const char *opt_string(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int layer_compression(const char *mt, int *out)
{
	static const struct {
		const char *type;
		int comp;
	} known[] = {
		{ "application/vnd.oci.image.layer.v1.tar", BG_COMP_NONE },
		{ "application/vnd.oci.image.layer.v1.tar+gzip", BG_COMP_GZIP },
		{ "application/vnd.oci.image.layer.v1.tar+zstd", BG_COMP_ZSTD },
		{ "application/vnd.docker.image.rootfs.diff.tar.gzip", BG_COMP_GZIP },
		{ "application/vnd.docker.image.rootfs.diff.tar", BG_COMP_NONE },
		{ "application/vnd.docker.image.rootfs.diff.tar.zstd", BG_COMP_ZSTD },
	};
	for (size_t i = 0; i < BG_ARRAY_SIZE(known); i++) {
		if (strcmp(mt, known[i].type) == 0) {
			*out = known[i].comp;
			return 0;
		}
	}
	if (strstr(mt, "foreign") || strstr(mt, "nondistributable"))
		return bg_error(BANGER_EUNSUPPORTED, "layer media type %.200s (foreign/non-distributable "
				"layers are not fetched)", mt);
	return bg_error(BANGER_EUNSUPPORTED, "unsupported layer media type %.200s", mt);
}

static int parse_descriptor(bg_descriptor *d, json_t *o, const char *what)
{
	memset(d, 0, sizeof(*d));
	if (!json_is_object(o))
		return bg_error(BANGER_EINVALID, "%s is not an object", what);
	const char *digest = opt_string(o, "digest");
	int rc = bg_digest_check(digest, what);
	if (rc)
		return rc;
	memcpy(d->digest, digest, BG_DIGEST_SIZE);
	json_t *size = json_object_get(o, "size");
	if (!json_is_integer(size) || json_integer_value(size) < 0)
		return bg_error(BANGER_EINVALID, "%s: missing or negative size", what);
	d->size = (uint64_t)json_integer_value(size);
	return 0;
}

static int parse_entry_platform(bg_descriptor *d, json_t *o)
{
	json_t *p = json_object_get(o, "platform");
	if (!json_is_object(p))
		return 0;
	const char *os = opt_string(p, "os"), *arch = opt_string(p, "architecture");
	const char *variant = opt_string(p, "variant");
	if (!os || !arch)
		return 0;
	char buf[128];
	snprintf(buf, sizeof(buf), "%s/%s%s%s", os, arch, variant && *variant ? "/" : "",
		 variant && *variant ? variant : "");
	/* An entry whose platform we cannot even parse is kept without one:
	 * it never matches. */
	if (bg_platform_parse(&d->platform, buf) == 0)
		d->has_platform = true;
	return 0;
}

void bg_manifest_free(bg_manifest *m)
{
	if (!m)
		return;
	bg_free(m->media_type);
	bg_free(m->layers);
	memset(m, 0, sizeof(*m));
}

/* schemaVersion 2 only; schema 1 gets its own message. */
static int check_schema(json_t *root)
{
	json_t *sv = json_object_get(root, "schemaVersion");
	if (json_is_integer(sv) && json_integer_value(sv) == 1)
		return bg_error(BANGER_EUNSUPPORTED, "Docker schema 1 manifests are not supported "
				"(re-push the image with a current client)");
	if (!json_is_integer(sv) || json_integer_value(sv) != 2)
		return bg_error(BANGER_EINVALID, "manifest has no schemaVersion 2");
	return 0;
}

/* The document's media type (into mt) and whether it is an index.  The
 * document's mediaType wins; a registry's generic Content-Type
 * (application/json, octet-stream) is ignored; with no usable type at
 * all, the shape decides (OCI allows omitting it). */
static int classify(json_t *root, const char *content_type, char mt_out[128], bool *is_index_out)
{
	char ct[128], doc_mt[128];
	media_type_base(ct, sizeof(ct), content_type);
	media_type_base(doc_mt, sizeof(doc_mt), opt_string(root, "mediaType"));
	const char *mt = doc_mt[0] ? doc_mt : ct;
	bool ct_specific = strncmp(ct, "application/vnd.", 16) == 0;
	if (doc_mt[0] && ct_specific && strcmp(doc_mt, ct) != 0)
		return bg_error(BANGER_EINVALID, "manifest says mediaType %s but was served as %s", doc_mt, ct);
	json_t *manifests = json_object_get(root, "manifests");
	json_t *layers = json_object_get(root, "layers");
	if (strcmp(mt, BG_MT_DOCKER_V1) == 0 || strcmp(mt, BG_MT_DOCKER_V1_SIGNED) == 0)
		return bg_error(BANGER_EUNSUPPORTED, "Docker schema 1 manifests are not supported");
	bool is_index = strcmp(mt, BG_MT_OCI_INDEX) == 0 || strcmp(mt, BG_MT_DOCKER_LIST) == 0;
	bool is_image = strcmp(mt, BG_MT_OCI_MANIFEST) == 0 || strcmp(mt, BG_MT_DOCKER_V2) == 0;
	if (!is_index && !is_image) {
		if (ct_specific || doc_mt[0])
			return bg_error(BANGER_EUNSUPPORTED, "unsupported manifest media type %s", mt);
		is_index = json_is_array(manifests) && !layers;
		is_image = json_is_array(layers) && !manifests;
		mt = is_index ? BG_MT_OCI_INDEX : BG_MT_OCI_MANIFEST;
		if (!is_index && !is_image)
			return bg_error(BANGER_EINVALID, "document is neither an image manifest nor an index");
	}
	snprintf(mt_out, 128, "%s", mt);
	*is_index_out = is_index;
	return 0;
}

/* The descriptors of an index's manifests or of an image's layers. */
static int parse_entries(bg_manifest *out, json_t *arr, bool is_index)
{
	int rc = 0;
	for (size_t i = 0; i < out->count && !rc; i++) {
		json_t *d = json_array_get(arr, i);
		char what[64];
		snprintf(what, sizeof(what), "%s %zu", is_index ? "index entry" : "layer", i + 1);
		if ((rc = parse_descriptor(&out->layers[i], d, what)))
			break;
		const char *dmt = opt_string(d, "mediaType");
		if (is_index) {
			parse_entry_platform(&out->layers[i], d);
			if (dmt)
				snprintf(out->layers[i].media_type, sizeof(out->layers[i].media_type), "%s", dmt);
		} else {
			if (!dmt) {
				rc = bg_error(BANGER_EINVALID, "%s has no mediaType", what);
				break;
			}
			rc = layer_compression(dmt, &out->layers[i].compression);
		}
	}
	return rc;
}

/* An image's config descriptor: a container image config, within the
 * size limit. */
static int parse_config(bg_manifest *out, json_t *root)
{
	json_t *cfg = json_object_get(root, "config");
	int rc;
	if ((rc = parse_descriptor(&out->config, cfg, "config descriptor")))
		return rc;
	const char *cmt = opt_string(cfg, "mediaType");
	if (!cmt || (strcmp(cmt, BG_MT_OCI_CONFIG) != 0 && strcmp(cmt, BG_MT_DOCKER_CONFIG) != 0))
		return bg_error(BANGER_EUNSUPPORTED, "config media type %s: not a container image",
				cmt ? cmt : "(none)");
	if (out->config.size > BG_CONFIG_MAX)
		return bg_error(BANGER_EINVALID, "image config is %llu bytes, over the %u byte limit",
				(unsigned long long)out->config.size, BG_CONFIG_MAX);
	return 0;
}

/* The document once its type is known. */
static int parse_document(bg_manifest *out, json_t *root, const char *mt, bool is_index)
{
	if (!(out->media_type = bg_strdup(mt)))
		return bg_error_oom();
	json_t *arr = json_object_get(root, is_index ? "manifests" : "layers");
	if (!json_is_array(arr))
		return bg_error(BANGER_EINVALID, "%s has no '%s' array", is_index ? "index" : "manifest",
				is_index ? "manifests" : "layers");
	size_t n = json_array_size(arr);
	if (n > 4096)
		return bg_error(BANGER_EINVALID, "manifest lists %zu entries (limit 4096)", n);
	out->kind = is_index ? BG_MANIFEST_INDEX : BG_MANIFEST_IMAGE;
	out->count = n;
	out->layers = bg_calloc(n ? n : 1, sizeof(*out->layers));
	if (!out->layers)
		return bg_error_oom();
	int rc = parse_entries(out, arr, is_index);
	if (!rc && !is_index)
		rc = parse_config(out, root);
	return rc;
}

int bg_manifest_parse(bg_manifest *out, const char *body, size_t len, const char *content_type)
{
	memset(out, 0, sizeof(*out));
	if (len > BG_MANIFEST_MAX)
		return bg_error(BANGER_EINVALID, "manifest is %zu bytes, over the %u byte limit", len,
				BG_MANIFEST_MAX);
	json_error_t e;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
	if (!root)
		return json_fail(&e, "manifest");
	int rc;
	char mt[128];
	bool is_index = false;
	if (!json_is_object(root))
		rc = bg_error(BANGER_EINVALID, "manifest is not a JSON object");
	else if ((rc = check_schema(root)) == 0 && (rc = classify(root, content_type, mt, &is_index)) == 0)
		rc = parse_document(out, root, mt, is_index);
	json_decref(root);
	if (rc)
		bg_manifest_free(out);
	return rc;
}

static bool platform_unknown(const bg_descriptor *d)
{
	return !d->has_platform || strcmp(d->platform.os, "unknown") == 0 ||
	       strcmp(d->platform.arch, "unknown") == 0;
}

int bg_manifest_select(const bg_manifest *index, const bg_platform *want, size_t *out)
{
	size_t best = SIZE_MAX;
	int best_score = -1;
	for (size_t i = 0; i < index->count; i++) {
		const bg_descriptor *d = &index->layers[i];
		if (platform_unknown(d))
			continue;
		if (strcmp(d->platform.os, want->os) != 0 || strcmp(d->platform.arch, want->arch) != 0)
			continue;
		int score;
		if (strcmp(d->platform.variant, want->variant) == 0)
			score = 2;
		else if (!want->variant[0] || !d->platform.variant[0])
			score = 1; /* no variant asked for, or none declared */
		else
			continue;
		if (score > best_score) {
			best_score = score;
			best = i;
		}
	}
	if (best != SIZE_MAX) {
		*out = best;
		return 0;
	}
	char offers[512] = "", w[100];
	size_t used = 0;
	for (size_t i = 0; i < index->count && used + 40 < sizeof(offers); i++) {
		if (platform_unknown(&index->layers[i]))
			continue;
		char p[100];
		bg_platform_format(&index->layers[i].platform, p, sizeof(p));
		used += (size_t)snprintf(offers + used, sizeof(offers) - used, "%s%s", used ? ", " : "", p);
	}
	bg_platform_format(want, w, sizeof(w));
	return bg_error(BANGER_ENOTFOUND, "the image has no %s variant (it offers: %s); use --platform",
			w, used ? offers : "nothing usable");
}

void bg_image_config_free(bg_image_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->ndiff; i++)
		bg_free(c->diff_ids[i]);
	bg_free(c->diff_ids);
	bg_free(c->summary_json);
	memset(c, 0, sizeof(*c));
}

/* A string array copied into a new JSON value, or null. */
static json_t *string_array(json_t *v)
{
	if (!json_is_array(v))
		return json_null();
	size_t i;
	json_t *x;
	json_array_foreach(v, i, x)
		if (!json_is_string(x))
			return json_null();
	return json_deep_copy(v);
}

static json_t *string_or_null(json_t *v)
{
	return json_is_string(v) && json_string_length(v) ? json_deep_copy(v) : json_null();
}

int bg_image_config_parse(bg_image_config *out, const char *body, size_t len)
{
	memset(out, 0, sizeof(*out));
	if (len > BG_CONFIG_MAX)
		return bg_error(BANGER_EINVALID, "image config is %zu bytes, over the %u byte limit", len,
				BG_CONFIG_MAX);
	json_error_t e;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
	if (!root)
		return json_fail(&e, "image config");
	int rc = 0;
	json_t *summary = NULL;
	if (!json_is_object(root)) {
		rc = bg_error(BANGER_EINVALID, "image config is not a JSON object");
		goto out;
	}
	const char *os = opt_string(root, "os"), *arch = opt_string(root, "architecture");
	const char *variant = opt_string(root, "variant");
	if (os && arch) {
		char buf[128];
		snprintf(buf, sizeof(buf), "%s/%s%s%s", os, arch, variant && *variant ? "/" : "",
			 variant && *variant ? variant : "");
		if (bg_platform_parse(&out->platform, buf))
			memset(&out->platform, 0, sizeof(out->platform));
	}
	json_t *rootfs = json_object_get(root, "rootfs");
	json_t *ids = json_object_get(rootfs, "diff_ids");
	const char *type = opt_string(rootfs, "type");
	if (!json_is_object(rootfs) || !type || strcmp(type, "layers") != 0 || !json_is_array(ids)) {
		rc = bg_error(BANGER_EINVALID, "image config has no rootfs of type 'layers' with diff_ids");
		goto out;
	}
	size_t n = json_array_size(ids);
	out->diff_ids = bg_calloc(n ? n : 1, sizeof(char *));
	if (!out->diff_ids) {
		rc = bg_error_oom();
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const char *d = json_string_value(json_array_get(ids, i));
		char what[64];
		snprintf(what, sizeof(what), "image config diff_id %zu", i + 1);
		if ((rc = bg_digest_check(d, what)))
			goto out;
		if (!(out->diff_ids[i] = bg_strdup(d))) {
			rc = bg_error_oom();
			goto out;
		}
		out->ndiff = i + 1;
	}
	json_t *cfg = json_object_get(root, "config");
	summary = json_object();
	if (!summary) {
		rc = bg_error_oom();
		goto out;
	}
	json_object_set_new(summary, "entrypoint", string_array(json_object_get(cfg, "Entrypoint")));
	json_object_set_new(summary, "cmd", string_array(json_object_get(cfg, "Cmd")));
	json_object_set_new(summary, "env", string_array(json_object_get(cfg, "Env")));
	json_object_set_new(summary, "user", string_or_null(json_object_get(cfg, "User")));
	json_object_set_new(summary, "workdir", string_or_null(json_object_get(cfg, "WorkingDir")));
	/* ASCII only: C1 controls and bidi overrides of a hostile config come
	 * out as \uNNNN escapes, never raw, wherever the summary is printed */
	char *text = json_dumps(summary, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	if (!text) {
		rc = bg_error_oom();
		goto out;
	}
	out->summary_json = bg_strdup(text);
	free(text);
	if (!out->summary_json)
		rc = bg_error_oom();
out:
	json_decref(summary);
	json_decref(root);
	if (rc)
		bg_image_config_free(out);
	return rc;
}
