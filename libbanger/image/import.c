/* banger_image_import: from an OCI image layout directory ("DIR" or
 * "DIR:TAG"), an OCI layout archive, or a `docker save` tarball (old
 * manifest.json format, or the OCI format of Docker 25 and later).  Only
 * the blobs the chosen image needs are copied into the cache (the chain
 * index -> this platform's manifest -> config + layers, or what
 * manifest.json names), held to their declared sizes and to the budget
 * (import_archive.c); from there on it is the same build as a pull. */
#include "image.h"
#include "../env/env.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SMALL_MAX (4u << 20)
#define REF_NAME "org.opencontainers.image.ref.name"
#define CONTAINERD_NAME "io.containerd.image.name"
#define NO_SIZE UINT64_MAX

/* ---- picking from index.json and manifest.json ---- */

int bg_oci_index_pick(const char *text, size_t len, const char *tag, char digest[BG_DIGEST_SIZE],
		      char *mt, size_t mtlen, char **ref_name)
{
	*ref_name = NULL;
	json_error_t e;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
	if (!root)
		return bg_error(BANGER_EINVALID, "index.json is not valid JSON: %s (line %d)", e.text, e.line);
	json_t *ms = json_object_get(root, "manifests");
	int rc = 0;
	json_t *found = NULL;
	size_t i, n = json_array_size(ms);
	json_t *m;
	bg_buf tags = BG_BUF_INIT;
	json_array_foreach(ms, i, m) {
		const char *t = json_string_value(json_object_get(json_object_get(m, "annotations"), REF_NAME));
		if (t && tags.len < 4096)
			bg_buf_printf(&tags, "%s%.200s", tags.len ? ", " : "", t);
		if (tag ? (t && strcmp(t, tag) == 0) : n == 1)
			found = m;
	}
	if (!json_is_array(ms) || n == 0) {
		rc = bg_error(BANGER_EINVALID, "index.json lists no images");
	} else if (!found) {
		rc = tag ? bg_error(BANGER_ENOTFOUND, "no image tagged '%.200s' in the layout (it has: %s)", tag,
				    tags.len ? tags.data : "no tags")
			 : bg_error(BANGER_EINVALID, "the layout holds %zu images; name one as PATH:TAG (tags: %s)",
				    n, tags.len ? tags.data : "none");
	} else {
		const char *d = json_string_value(json_object_get(found, "digest"));
		const char *t = json_string_value(json_object_get(found, "mediaType"));
		if ((rc = bg_digest_check(d, "index.json entry")) == 0) {
			memcpy(digest, d, BG_DIGEST_SIZE);
			snprintf(mt, mtlen, "%s", t ? t : "");
			json_t *ann = json_object_get(found, "annotations");
			const char *full = json_string_value(json_object_get(ann, CONTAINERD_NAME));
			const char *rn = json_string_value(json_object_get(ann, REF_NAME));
			if (full)
				*ref_name = bg_strdup(full);
			else if (rn && strchr(rn, '/'))
				*ref_name = bg_strdup(rn);
		}
	}
	bg_buf_free(&tags);
	json_decref(root);
	return rc;
}

void bg_docker_save_pick_free(bg_docker_save_pick *p)
{
	if (!p)
		return;
	bg_free(p->config);
	for (size_t i = 0; i < p->nlayers; i++)
		bg_free(p->layers[i]);
	bg_free(p->layers);
	bg_free(p->repo_tag);
	memset(p, 0, sizeof(*p));
}

/* [{"Config": "<hex>.json", "RepoTags": [..], "Layers": ["<id>/layer.tar", ..]}] */
int bg_docker_save_pick_parse(bg_docker_save_pick *out, const char *text, size_t len, const char *tag)
{
	memset(out, 0, sizeof(*out));
	json_error_t e;
	json_t *root = json_loadb(text, len, 0, &e);
	if (!root)
		return bg_error(BANGER_EINVALID, "manifest.json is not valid JSON: %s", e.text);
	int rc = 0;
	json_t *pick = NULL, *m;
	size_t i;
	json_array_foreach(root, i, m) {
		json_t *tags = json_object_get(m, "RepoTags");
		size_t k;
		json_t *t;
		bool match = false;
		json_array_foreach(tags, k, t) {
			const char *ts = json_string_value(t);
			const char *colon = ts ? strrchr(ts, ':') : NULL;
			if (tag && ts && (strcmp(ts, tag) == 0 || (colon && strcmp(colon + 1, tag) == 0)))
				match = true;
		}
		if (tag ? match : json_array_size(root) == 1)
			pick = m;
	}
	if (!pick) {
		rc = bg_error(BANGER_EINVALID, "manifest.json: %s", tag ? "no image with that tag"
			      : "several images (or none); name one as PATH:TAG");
		goto out;
	}
	const char *t0 = json_string_value(json_array_get(json_object_get(pick, "RepoTags"), 0));
	const char *cfg = json_string_value(json_object_get(pick, "Config"));
	json_t *layers = json_object_get(pick, "Layers");
	size_t n = json_array_size(layers);
	if (!cfg || !json_is_array(layers) || n == 0 || n > 4096) {
		rc = bg_error(BANGER_EINVALID, "manifest.json names no config or no layers (or more than 4096)");
		goto out;
	}
	if ((t0 && !(out->repo_tag = bg_strdup(t0))) || !(out->config = bg_strdup(cfg)) ||
	    !(out->layers = bg_calloc(n, sizeof(char *)))) {
		rc = bg_error_oom();
		goto out;
	}
	for (i = 0; i < n; i++) {
		const char *l = json_string_value(json_array_get(layers, i));
		if (!l) {
			rc = bg_error(BANGER_EINVALID, "manifest.json: layer %zu is not a string", i + 1);
			goto out;
		}
		if (!(out->layers[i] = bg_strdup(l))) {
			rc = bg_error_oom();
			goto out;
		}
		out->nlayers = i + 1;
	}
out:
	json_decref(root);
	if (rc)
		bg_docker_save_pick_free(out);
	return rc;
}

/* ---- where the blobs come from ---- */

typedef struct {
	const char *path;            /* the layout directory or the archive */
	bool is_dir;
	const bg_archive_listing *scan; /* archives */
	const char *blobs;
	uint64_t budget;             /* the whole budget (also bounds expansion) */
	uint64_t left;               /* what may still be written */
	/* New cache files whose digest nothing vouched for (docker save
	 * members, digests computed): removed if the import fails. */
	char (*unverified)[BG_DIGEST_SIZE];
	size_t nunverified;
} source;

/* One blob an import needs. */
typedef struct {
	char digest[BG_DIGEST_SIZE]; /* expected, or "" (docker save: filled in) */
	const char *member;          /* docker save member name; NULL: blobs/sha256/<hex> */
	uint64_t declared;           /* the size a manifest gives it, or NO_SIZE */
	uint64_t max;                /* at most this many bytes */
	const char *what;            /* "config", "layer", ... */
	uint64_t size;               /* found */
} need;

static void source_free(source *src)
{
	bg_free(src->unverified);
	src->unverified = NULL;
	src->nunverified = 0;
}

/* After a failed import: nothing unverified stays in the cache. */
static void source_discard_unverified(source *src)
{
	for (size_t i = 0; i < src->nunverified; i++)
		bg_blob_evict(src->blobs, src->unverified[i]);
}

static int check_size(const need *nd, const char *where, uint64_t size)
{
	if (nd->declared != NO_SIZE && size != nd->declared)
		return bg_error(BANGER_EVERIFY, "%s %s is %llu bytes, the manifest declares %llu", nd->what, where,
				(unsigned long long)size, (unsigned long long)nd->declared);
	if (size > nd->max)
		return bg_error(BANGER_EINVALID, "%s %s is %llu bytes, more than the %llu allowed", nd->what, where,
				(unsigned long long)size, (unsigned long long)nd->max);
	return 0;
}

static int copy_layout_blob(source *src, need *nd, const char *file)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bg_error_os(bg_code_from_errno(errno), errno, "open %s", file);
	char *buf = bg_malloc(1u << 20);
	bg_blob_writer w;
	int rc = buf ? bg_blob_writer_open(&w, src->blobs, nd->size, file) : bg_error_oom();
	while (rc == 0) {
		ssize_t n = read(fd, buf, 1u << 20);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = bg_error_os(BANGER_EIO, errno, "read %s", file);
			break;
		}
		if (n == 0)
			break;
		rc = bg_blob_writer_put(&w, buf, (size_t)n);
	}
	char got[BG_DIGEST_SIZE];
	bool created;
	if (rc == 0)
		rc = bg_blob_writer_commit(&w, src->blobs, nd->digest, got, &created);
	if (rc == 0)
		src->left -= w.size;
	if (buf)
		bg_blob_writer_free(&w);
	bg_free(buf);
	close(fd);
	return rc;
}

/* What one fetch does, need by need: the file or member it reads
 * (names[i]), what the archive pass is told (w[i]), and whether an
 * earlier need is the same blob (same[i] = 1 + its index). */
typedef struct {
	size_t n;
	char **names;
	bg_archive_want *w;
	size_t *same;
	uint64_t total; /* bytes to write, over every need not cached or repeated */
	size_t todo;    /* needs to copy */
} fetch_plan;

static int plan_init(fetch_plan *fp, size_t n)
{
	memset(fp, 0, sizeof(*fp));
	fp->n = n;
	fp->names = bg_calloc(n ? n : 1, sizeof(char *));
	fp->w = bg_calloc(n ? n : 1, sizeof(*fp->w));
	fp->same = bg_calloc(n ? n : 1, sizeof(size_t));
	return fp->names && fp->w && fp->same ? 0 : bg_error_oom();
}

static void plan_free(fetch_plan *fp)
{
	for (size_t i = 0; fp->names && i < fp->n; i++)
		bg_free(fp->names[i]);
	bg_free(fp->names);
	bg_free(fp->w);
	bg_free(fp->same);
	memset(fp, 0, sizeof(*fp));
}

/* Name need i's file (a layout) or member (an archive) and learn its
 * size, held to what was declared and allowed. */
static int locate(source *src, need *nd, fetch_plan *fp, size_t i)
{
	if (nd->member)
		fp->names[i] = bg_strdup(nd->member);
	else if (!src->is_dir)
		fp->names[i] = bg_sprintf("blobs/sha256/%s", nd->digest + 7);
	else
		fp->names[i] = bg_sprintf("%s/blobs/sha256/%s", src->path, nd->digest + 7);
	const char *name = fp->names[i];
	if (!name)
		return bg_error_oom();
	if (src->is_dir) {
		struct stat st;
		if (stat(name, &st) != 0)
			return bg_error_os(bg_code_from_errno(errno), errno, "%s %s", nd->what, name);
		if (!S_ISREG(st.st_mode))
			return bg_error(BANGER_EINVALID, "%s %s is not a regular file", nd->what, name);
		nd->size = (uint64_t)st.st_size;
	} else {
		const bg_archive_member *m = bg_archive_member_find(src->scan, name);
		if (!m)
			return bg_error(BANGER_EINVALID, "the archive lacks %s %s", nd->what, name);
		nd->size = m->size;
		fp->w[i].member = m->name;
	}
	return check_size(nd, name, nd->size);
}

/* The same blob twice (two identical layers) is copied once: the first
 * need of that file or member, or 0. */
static size_t same_as(const fetch_plan *fp, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (fp->names[j] && !fp->same[j] && strcmp(fp->names[j], fp->names[i]) == 0)
			return j + 1;
	for (size_t j = 0; j < i && fp->w[i].member; j++)
		if (!fp->same[j] && fp->w[j].member == fp->w[i].member)
			return j + 1;
	return 0;
}

/* Every need located and sized, repeats and cached blobs marked done,
 * and what is left held to the budget before anything is written. */
static int plan_needs(source *src, need *nd, fetch_plan *fp)
{
	for (size_t i = 0; i < fp->n; i++) {
		fp->w[i].done = nd[i].digest[0] && bg_blob_cached(src->blobs, nd[i].digest);
		if (fp->w[i].done)
			continue;
		int rc = locate(src, &nd[i], fp, i);
		if (rc)
			return rc;
		if ((fp->same[i] = same_as(fp, i))) {
			fp->w[i].done = true;
			continue;
		}
		fp->total = nd[i].size > UINT64_MAX - fp->total ? UINT64_MAX : fp->total + nd[i].size;
		fp->todo++;
	}
	if (fp->total > src->left)
		return bg_error(BANGER_EINVALID, "the image needs %llu more bytes in the blob cache, over the "
				"budget of %llu bytes (--max-bytes, config image_max_bytes); none of it was copied",
				(unsigned long long)fp->total, (unsigned long long)src->budget);
	return 0;
}

static int from_layout(source *src, need *nd, const fetch_plan *fp)
{
	int rc = 0;
	for (size_t i = 0; i < fp->n && !rc; i++)
		if (!fp->w[i].done && !fp->same[i])
			rc = copy_layout_blob(src, &nd[i], fp->names[i]);
	return rc;
}

/* Remember a new cache file no digest vouched for, to remove it should
 * the import fail; one that cannot be remembered is removed at once. */
static int track_unverified(source *src, const char digest[BG_DIGEST_SIZE])
{
	char (*nu)[BG_DIGEST_SIZE] = bg_realloc(src->unverified, (src->nunverified + 1) * BG_DIGEST_SIZE);
	if (!nu) {
		bg_blob_evict(src->blobs, digest);
		return bg_error_oom();
	}
	src->unverified = nu;
	memcpy(src->unverified[src->nunverified++], digest, BG_DIGEST_SIZE);
	return 0;
}

/* One pass over the archive for every member not done; a need without a
 * digest (docker save) gets the one computed while copying. */
static int from_archive(source *src, need *nd, fetch_plan *fp)
{
	for (size_t i = 0; i < fp->n; i++) {
		memcpy(fp->w[i].digest, nd[i].digest, BG_DIGEST_SIZE);
		fp->w[i].size = nd[i].size;
	}
	int rc = bg_archive_extract(src->path, src->blobs, fp->w, fp->n, src->budget, &src->left);
	for (size_t i = 0; i < fp->n && !rc; i++)
		if (fp->w[i].created && !nd[i].digest[0])
			rc = track_unverified(src, fp->w[i].digest);
	for (size_t i = 0; i < fp->n && !rc; i++)
		if (!nd[i].digest[0] && !fp->same[i])
			memcpy(nd[i].digest, fp->w[i].digest, BG_DIGEST_SIZE);
	return rc;
}

/* Bring the needed blobs into the cache: sizes checked against what was
 * declared and against the budget before anything is written; then one
 * pass over an archive, or a copy of each file of a layout. */
static int fetch(source *src, need *nd, size_t n)
{
	fetch_plan fp;
	int rc = plan_init(&fp, n);
	if (rc == 0)
		rc = plan_needs(src, nd, &fp);
	if (rc == 0 && fp.todo)
		rc = src->is_dir ? from_layout(src, nd, &fp) : from_archive(src, nd, &fp);
	for (size_t i = 0; i < n && !rc; i++)
		if (fp.same[i])
			memcpy(nd[i].digest, nd[fp.same[i] - 1].digest, BG_DIGEST_SIZE);
	if (rc && fp.w && !src->is_dir) {
		/* what this pass made without a digest to check it by goes too */
		for (size_t i = 0; i < n; i++)
			if (fp.w[i].created && !nd[i].digest[0])
				bg_blob_evict(src->blobs, fp.w[i].digest);
	}
	plan_free(&fp);
	return rc;
}

/* ---- OCI: index.json -> manifest (-> platform's manifest) -> config, layers ---- */

static int fetch_one(source *src, const char *digest, uint64_t declared, uint64_t max, const char *what)
{
	need nd = { .declared = declared, .max = max, .what = what };
	int rc = bg_digest_check(digest, what);
	if (rc == 0) {
		memcpy(nd.digest, digest, BG_DIGEST_SIZE);
		rc = fetch(src, &nd, 1);
	}
	return rc;
}

static int resolve_oci(bg_resolved *res, source *src, const char *index_text, size_t index_len, const char *tag,
		       const bg_platform *want, bool explicit_platform, char **ref_name)
{
	char top[BG_DIGEST_SIZE], mt[128];
	char *body = NULL, *child = NULL;
	size_t len = 0, clen = 0;
	bg_manifest m = { 0 }, cm = { 0 };
	int rc = bg_oci_index_pick(index_text, index_len, tag, top, mt, sizeof(mt), ref_name);
	if (rc || (rc = fetch_one(src, top, NO_SIZE, BG_MANIFEST_MAX, "manifest")) ||
	    (rc = bg_blob_read(src->blobs, top, BG_MANIFEST_MAX, &body, &len)) ||
	    (rc = bg_manifest_parse(&m, body, len, mt[0] ? mt : NULL)))
		goto out;
	const bg_manifest *img = &m;
	if (m.kind == BG_MANIFEST_INDEX) {
		/* only this platform's manifest is taken from the index */
		size_t i;
		if ((rc = bg_manifest_select(&m, want, &i)) ||
		    (rc = fetch_one(src, m.layers[i].digest, m.layers[i].size, BG_MANIFEST_MAX, "manifest")) ||
		    (rc = bg_blob_read(src->blobs, m.layers[i].digest, BG_MANIFEST_MAX, &child, &clen)) ||
		    (rc = bg_manifest_parse(&cm, child, clen, m.layers[i].media_type[0] ? m.layers[i].media_type
									       : NULL)))
			goto out;
		if (cm.kind != BG_MANIFEST_IMAGE) {
			rc = bg_error(BANGER_EUNSUPPORTED, "nested image indexes are not supported");
			goto out;
		}
		img = &cm;
	}
	need *nd = bg_calloc(img->count + 1, sizeof(*nd));
	if (!nd) {
		rc = bg_error_oom();
		goto out;
	}
	memcpy(nd[0].digest, img->config.digest, BG_DIGEST_SIZE);
	nd[0].declared = img->config.size;
	nd[0].max = BG_CONFIG_MAX;
	nd[0].what = "config";
	for (size_t i = 0; i < img->count; i++) {
		memcpy(nd[i + 1].digest, img->layers[i].digest, BG_DIGEST_SIZE);
		nd[i + 1].declared = nd[i + 1].max = img->layers[i].size;
		nd[i + 1].what = "layer";
	}
	rc = fetch(src, nd, img->count + 1);
	bg_free(nd);
	if (rc == 0)
		rc = bg_image_resolve(res, NULL, src->blobs, body, len, mt[0] ? mt : NULL, top, want,
				      explicit_platform);
out:
	bg_manifest_free(&m);
	bg_manifest_free(&cm);
	bg_free(body);
	bg_free(child);
	return rc;
}

/* ---- docker save (the format before Docker 25, also skopeo's docker-archive) ---- */

static int resolve_legacy(bg_resolved *res, source *src, const char *tag, const bg_platform *want,
			  bool explicit_platform, char **repo_tag)
{
	memset(res, 0, sizeof(*res));
	*repo_tag = NULL;
	bg_docker_save_pick pick;
	int rc = bg_docker_save_pick_parse(&pick, src->scan->manifest_json, src->scan->manifest_len, tag);
	if (rc)
		return rc;
	size_t n = pick.nlayers;
	need *nd = bg_calloc(n + 1, sizeof(*nd));
	char *body = NULL;
	size_t len = 0;
	if (!nd) {
		rc = bg_error_oom();
		goto out;
	}
	/* digests are computed: nothing declares them */
	nd[0] = (need){ .member = pick.config, .declared = NO_SIZE, .max = BG_CONFIG_MAX, .what = "config" };
	for (size_t i = 0; i < n; i++)
		nd[i + 1] = (need){ .member = pick.layers[i], .declared = NO_SIZE, .max = UINT64_MAX,
				    .what = "layer" };
	if ((rc = fetch(src, nd, n + 1)))
		goto out;
	res->manifest.kind = BG_MANIFEST_IMAGE;
	res->manifest.count = n;
	if (!(res->manifest.layers = bg_calloc(n, sizeof(bg_descriptor)))) {
		rc = bg_error_oom();
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		memcpy(res->manifest.layers[i].digest, nd[i + 1].digest, BG_DIGEST_SIZE);
		res->manifest.layers[i].size = nd[i + 1].size;
	}
	const char *cfg = nd[0].digest;
	memcpy(res->manifest.config.digest, cfg, BG_DIGEST_SIZE);
	/* the Docker image ID (config digest) stands for the manifest digest */
	memcpy(res->top_digest, cfg, BG_DIGEST_SIZE);
	if ((rc = bg_blob_read(src->blobs, cfg, BG_CONFIG_MAX, &body, &len)) ||
	    (rc = bg_image_config_parse(&res->config, body, len)))
		goto out;
	if (res->config.ndiff != n) {
		rc = bg_error(BANGER_EINVALID, "the archive has %zu layers but the config lists %zu diff_ids", n,
			      res->config.ndiff);
		goto out;
	}
	const bg_platform *have = res->config.platform.os[0] ? &res->config.platform : NULL;
	if ((rc = bg_platform_check(res->platform, sizeof(res->platform), have, want, explicit_platform, "import")))
		goto out;
	if (pick.repo_tag) {
		*repo_tag = pick.repo_tag;
		pick.repo_tag = NULL;
	}
out:
	bg_free(nd);
	bg_free(body);
	bg_docker_save_pick_free(&pick);
	if (rc)
		bg_resolved_free(res);
	return rc;
}

/* ---- names ---- */

static char *name_from(const char *ref_name, const char *path, const char *tag)
{
	if (ref_name) {
		bg_image_ref r;
		if (bg_image_ref_parse(&r, ref_name) == 0) {
			char *n = bg_image_ref_default_name(&r);
			bg_image_ref_free(&r);
			if (n && bg_image_name_valid(n))
				return n;
			bg_free(n);
		} else {
			banger_error_clear();
		}
	}
	const char *base = strrchr(path, '/');
	base = base && base[1] ? base + 1 : path;
	char *n = bg_sprintf("%s%s%s", base, tag ? "-" : "", tag ? tag : "");
	if (!n)
		return NULL;
	size_t k = 0;
	for (char *p = n; *p && k < 64; p++) {
		char c = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		if (k == 0 && !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			continue;
		n[k++] = ok ? c : '-';
	}
	n[k] = '\0';
	for (char *p = n; (p = strstr(p, ".tar")) != NULL;)
		*p = '\0';
	if (!bg_image_name_valid(n)) {
		bg_free(n);
		return bg_strdup("imported");
	}
	return n;
}

/* ---- the entry point ---- */

/* The platform an import takes: the one asked for, else this host's. */
static int wanted_platform(bg_platform *want, const banger_image_pull_options *o)
{
	if (o->platform)
		return bg_platform_parse(want, o->platform);
	bg_platform_host(want);
	return 0;
}

/* What path names: itself, or "PATH:TAG" when PATH itself is not there
 * (*tag NULL when there is no tag); *st says what *src is, a directory
 * or a file. */
static int split_path(char **src, char **tag, struct stat *st, const char *path)
{
	if (stat(path, st) != 0) {
		const char *colon = strrchr(path, ':');
		if (!colon || colon == path || !colon[1] || strchr(colon, '/'))
			return bg_error_os(BANGER_ENOTFOUND, errno, "%s", path);
		*src = bg_strndup(path, (size_t)(colon - path));
		*tag = bg_strdup(colon + 1);
		if (!*src || !*tag)
			return bg_error_oom();
		if (stat(*src, st) != 0)
			return bg_error_os(BANGER_ENOTFOUND, errno, "%s", *src);
	} else if (!(*src = bg_strdup(path))) {
		return bg_error_oom();
	}
	if (!S_ISDIR(st->st_mode) && !S_ISREG(st->st_mode))
		return bg_error(BANGER_EINVALID, "%s is not a directory or a file", *src);
	return 0;
}

/* What an import resolves: the image, the name its source records (may
 * stay NULL) and the reference it is recorded under. */
typedef struct {
	const char *tag;
	const bg_platform *want;
	bool explicit_platform;
	bg_resolved res;
	char *ref_name;
	char *ref;
} import_target;

/* An OCI image layout directory: oci-layout, index.json, blobs/. */
static int resolve_layout_dir(import_target *t, source *from)
{
	char *lp = bg_path_join(from->path, "oci-layout"), *ip = bg_path_join(from->path, "index.json");
	char *text = NULL;
	size_t len = 0;
	int rc;
	if (!lp || !ip)
		rc = bg_error_oom();
	else if (!bg_path_exists(lp))
		rc = bg_error(BANGER_EINVALID, "%s is not an OCI image layout (no oci-layout file)", from->path);
	else
		rc = bg_read_file(&text, &len, ip, SMALL_MAX);
	bg_free(lp);
	bg_free(ip);
	if (rc == 0)
		rc = resolve_oci(&t->res, from, text, len, t->tag, t->want, t->explicit_platform, &t->ref_name);
	bg_free(text);
	if (rc == 0)
		t->ref = bg_sprintf("oci:%s%s%s", from->path, t->tag ? ":" : "", t->tag ? t->tag : "");
	return rc;
}

/* An archive: an OCI layout (index.json; Docker 25 and later write one
 * with manifest.json beside it), else the older docker save. */
static int resolve_archive(import_target *t, source *from, bg_archive_listing *scan, uint64_t max_bytes)
{
	const char *tag = t->tag, *sep = tag ? ":" : "", *tg = tag ? tag : "";
	from->scan = scan;
	int rc = bg_archive_scan(scan, from->path, max_bytes);
	if (rc)
		return rc;
	if (scan->index_json) {
		if ((rc = resolve_oci(&t->res, from, scan->index_json, scan->index_len, tag, t->want,
				      t->explicit_platform, &t->ref_name)))
			return rc;
		const char *kind = scan->oci_layout && !scan->manifest_json ? "oci-archive" : "docker-archive";
		t->ref = bg_sprintf("%s:%s%s%s", kind, from->path, sep, tg);
	} else if (scan->manifest_json) {
		if ((rc = resolve_legacy(&t->res, from, tag, t->want, t->explicit_platform, &t->ref_name)))
			return rc;
		t->ref = bg_sprintf("docker-archive:%s%s%s", from->path, sep, tg);
	} else {
		return bg_error(BANGER_EINVALID, "%s is neither an OCI archive nor a docker save archive "
			      "(no index.json or manifest.json)", from->path);
	}
	return 0;
}

/* After the import, failed or not: the cache lock goes and the cache is
 * held to its cap, without touching the import's error. */
static void leave_cache(bg_env *env, bg_lock *cache_lock)
{
	if (cache_lock->fd < 0)
		return;
	bg_lock_release(cache_lock);
	bg_error_saved saved;
	bg_error_save(&saved);
	bg_blob_cache_enforce_cap(env);
	bg_error_restore(&saved);
}

BANGER_EXTERN(int) banger_image_import(banger_image **out, banger_ctx *ctx, const char *path,
				       const banger_image_pull_options *opts)
{
	bg_env *env = bg_env_of(ctx);
	if (out)
		*out = NULL;
	if (!env || !path || !*path)
		return bg_error(BANGER_EINVALID, "invalid argument");
	banger_image_pull_options o;
	bg_platform want;
	int rc = bg_image_opts(&o, opts);
	if (rc || (rc = wanted_platform(&want, &o)))
		return rc;
	char *src = NULL, *tag = NULL, *name = NULL;
	bg_archive_listing scan = { 0 };
	import_target t = { .want = &want, .explicit_platform = o.platform != NULL };
	bg_lock cache_lock = BG_LOCK_INIT;
	source from = { .blobs = env->layout.blobs_dir };
	struct stat st;
	if ((rc = bg_image_budget(env, o.max_bytes, &o.max_bytes)))
		goto out;
	from.budget = from.left = o.max_bytes;
	if ((rc = bg_image_check_kernel(env, o.kernel_ref)) || (rc = split_path(&src, &tag, &st, path)))
		goto out;
	from.path = src;
	t.tag = tag;
	from.is_dir = S_ISDIR(st.st_mode);
	/* held until the image is recorded: see blobcache_prune.c (the
	 * image's name is not known yet unless given) */
	const bg_progress rep = { o.progress, o.progress_payload, BANGER_PROGRESS_OP_IMAGE_IMPORT, o.name };
	if ((rc = bg_blob_cache_enter(env, &cache_lock, &rep)) ||
	    (rc = from.is_dir ? resolve_layout_dir(&t, &from) : resolve_archive(&t, &from, &scan, o.max_bytes)))
		goto out;
	name = o.name ? bg_strdup(o.name) : name_from(t.ref_name, src, tag);
	rc = t.ref && name ? bg_image_finish(out, env, &t.res, name, t.ref, NULL, &o, BANGER_PROGRESS_OP_IMAGE_IMPORT)
			   : bg_error_oom();
out:
	if (rc)
		source_discard_unverified(&from);
	leave_cache(env, &cache_lock);
	if (rc)
		bg_error_prefix("import %.200s", path);
	source_free(&from);
	bg_archive_listing_free(&scan);
	bg_resolved_free(&t.res);
	bg_free(src);
	bg_free(tag);
	bg_free(t.ref);
	bg_free(name);
	bg_free(t.ref_name);
	return rc;
}
