/* banger_image_import: from an OCI image layout directory ("DIR" or
 * "DIR:TAG"), an OCI layout archive, or a `docker save` tarball (old
 * manifest.json format, or the OCI format of Docker 25 and later).  Blobs
 * are copied into the cache with their digests verified; from there on it
 * is the same build as a pull. */
#include "image.h"
#include "../ctx/ctx.h"

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

/* ---- copying blobs into the cache ---- */

typedef struct {
	int fd;
	char *tmp;
	bg_sha256 *sha;
	uint64_t size;
} blob_writer;

static int writer_open(blob_writer *w, const char *blobs)
{
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	int rc = bg_blob_tmp_open(blobs, &w->fd, &w->tmp);
	if (rc == 0)
		rc = bg_sha256_new(&w->sha);
	return rc;
}

static int writer_put(blob_writer *w, const void *buf, size_t len)
{
	bg_sha256_update(w->sha, buf, len);
	w->size += len;
	const char *p = buf;
	while (len) {
		ssize_t n = write(w->fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return bg_error_os(BANGER_EIO, errno, "write %s", w->tmp);
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Commit under digest (expected may be NULL: then the computed digest). */
static int writer_commit(blob_writer *w, const char *blobs, const char *expected, char got[BG_DIGEST_SIZE],
			 const char *what)
{
	bg_sha256_final(w->sha, got);
	if (expected && strcmp(expected, got) != 0)
		return bg_error(BANGER_EVERIFY, "%s: content has digest %s, not %s", what, got, expected);
	close(w->fd);
	w->fd = -1;
	int rc = bg_blob_commit(blobs, w->tmp, got);
	if (rc == 0) {
		bg_free(w->tmp);
		w->tmp = NULL;
	}
	return rc;
}

static void writer_free(blob_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp)
		unlink(w->tmp);
	bg_free(w->tmp);
	bg_sha256_free(w->sha);
	memset(w, 0, sizeof(*w));
	w->fd = -1;
}

/* Copy <layout>/blobs/sha256/<hex> into the cache (unless it is there). */
static int import_layout_blob(const char *layout, const char *blobs, const char *digest)
{
	int rc = bg_digest_check(digest, "layout blob");
	if (rc)
		return rc;
	if (bg_blob_cached(blobs, digest))
		return 0;
	char *src = bg_sprintf("%s/blobs/sha256/%s", layout, digest + 7);
	if (!src)
		return bg_error_oom();
	int fd = open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = bg_error_os(bg_code_from_errno(errno), errno, "open %s", src);
		bg_free(src);
		return rc;
	}
	blob_writer w;
	char *buf = bg_malloc(1u << 20);
	if (!buf)
		rc = bg_error_oom();
	else
		rc = writer_open(&w, blobs);
	while (rc == 0) {
		ssize_t n = read(fd, buf, 1u << 20);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = bg_error_os(BANGER_EIO, errno, "read %s", src);
			break;
		}
		if (n == 0)
			break;
		rc = writer_put(&w, buf, (size_t)n);
	}
	char got[BG_DIGEST_SIZE];
	if (rc == 0)
		rc = writer_commit(&w, blobs, digest, got, src);
	if (buf)
		writer_free(&w);
	bg_free(buf);
	bg_free(src);
	close(fd);
	return rc;
}

/* ---- picking from index.json ---- */

/* The index.json entry for tag (or the only one): digest and media type,
 * and the image's name when the index records one. */
static int pick_entry(const char *text, size_t len, const char *tag, char digest[BG_DIGEST_SIZE],
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
		if (t)
			bg_buf_printf(&tags, "%s%s", tags.len ? ", " : "", t);
		if (tag ? (t && strcmp(t, tag) == 0) : n == 1)
			found = m;
	}
	if (!json_is_array(ms) || n == 0) {
		rc = bg_error(BANGER_EINVALID, "index.json lists no images");
	} else if (!found) {
		rc = tag ? bg_error(BANGER_ENOTFOUND, "no image tagged '%s' in the layout (it has: %s)", tag,
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

/* Import the manifests an index may choose from, and their configs. */
static int import_candidates(const char *layout, const char *blobs, const char *digest, const char *mt,
			     int depth)
{
	int rc = layout ? import_layout_blob(layout, blobs, digest) : 0;
	if (rc)
		return rc;
	char *body = NULL;
	size_t len = 0;
	if ((rc = bg_blob_read(blobs, digest, BG_MANIFEST_MAX, &body, &len)))
		return rc;
	bg_manifest m;
	rc = bg_manifest_parse(&m, body, len, mt && *mt ? mt : NULL);
	bg_free(body);
	if (rc)
		return rc;
	if (m.kind == BG_MANIFEST_INDEX) {
		for (size_t i = 0; i < m.count && !rc && depth < 2; i++) {
			/* entries for other platforms may be absent from a layout */
			if (layout) {
				char *p = bg_sprintf("%s/blobs/sha256/%s", layout, m.layers[i].digest + 7);
				bool there = p && bg_path_exists(p);
				bg_free(p);
				if (!there)
					continue;
			} else if (!bg_blob_cached(blobs, m.layers[i].digest)) {
				continue;
			}
			rc = import_candidates(layout, blobs, m.layers[i].digest, m.layers[i].media_type, depth + 1);
		}
	} else if (layout) {
		rc = import_layout_blob(layout, blobs, m.config.digest);
	}
	bg_manifest_free(&m);
	return rc;
}

/* ---- archives ---- */

typedef struct {
	char *index_json, *manifest_json;
	size_t index_len, manifest_len;
	bool oci_layout;
	/* legacy docker save: member name -> digest */
	char **names, **digests;
	uint64_t *sizes;
	size_t count, cap;
} archive_scan;

static void scan_free(archive_scan *s)
{
	bg_free(s->index_json);
	bg_free(s->manifest_json);
	for (size_t i = 0; i < s->count; i++) {
		bg_free(s->names[i]);
		bg_free(s->digests[i]);
	}
	bg_free(s->names);
	bg_free(s->digests);
	bg_free(s->sizes);
	memset(s, 0, sizeof(*s));
}

static int read_small(struct archive *a, char **out, size_t *len, const char *name)
{
	bg_buf b = BG_BUF_INIT;
	char chunk[65536];
	for (;;) {
		la_ssize_t n = archive_read_data(a, chunk, sizeof(chunk));
		if (n < 0) {
			bg_buf_free(&b);
			return bg_error(BANGER_EINVALID, "archive member %s: %s", name, archive_error_string(a));
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > SMALL_MAX) {
			bg_buf_free(&b);
			return bg_error(BANGER_EINVALID, "archive member %s is larger than %u bytes", name, SMALL_MAX);
		}
		bg_buf_put(&b, chunk, (size_t)n);
	}
	if (b.oom) {
		bg_buf_free(&b);
		return bg_error_oom();
	}
	*len = b.len;
	*out = bg_buf_detach(&b);
	return *out ? 0 : bg_error_oom();
}

static int stream_member(struct archive *a, const char *blobs, const char *expected, char got[BG_DIGEST_SIZE],
			 uint64_t *size, const char *name)
{
	blob_writer w;
	int rc = writer_open(&w, blobs);
	while (rc == 0) {
		const void *buf;
		size_t len;
		la_int64_t off;
		int r = archive_read_data_block(a, &buf, &len, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			rc = bg_error(BANGER_EINVALID, "archive member %s: %s", name, archive_error_string(a));
			break;
		}
		if ((uint64_t)off != w.size) {
			rc = bg_error(BANGER_EINVALID, "archive member %s is sparse", name);
			break;
		}
		rc = writer_put(&w, buf, len);
	}
	if (rc == 0) {
		*size = w.size;
		rc = writer_commit(&w, blobs, expected, got, name);
	}
	writer_free(&w);
	return rc;
}

static bool is_hex64(const char *s, size_t n)
{
	if (n != 64)
		return false;
	for (size_t i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static int scan_archive(archive_scan *s, const char *path, const char *blobs)
{
	memset(s, 0, sizeof(*s));
	struct archive *a = archive_read_new();
	if (!a)
		return bg_error_oom();
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	int rc = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		archive_read_free(a);
		return bg_error_os(bg_code_from_errno(errno), errno, "open %s", path);
	}
	if (archive_read_open_fd(a, fd, 1 << 20) != ARCHIVE_OK) {
		rc = bg_error(BANGER_EINVALID, "%s: not a tar archive: %s", path, archive_error_string(a));
		goto out;
	}
	struct archive_entry *ae;
	char name[512];
	for (;;) {
		int r = archive_read_next_header(a, &ae);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			rc = bg_error(BANGER_EINVALID, "%s: %s", path, archive_error_string(a));
			goto out;
		}
		const char *raw = archive_entry_pathname(ae);
		if (!raw || archive_entry_filetype(ae) != AE_IFREG || strlen(raw) >= sizeof(name))
			continue;
		bg_limits lim;
		bg_limits_default(&lim);
		if (bg_layer_normalize(name, raw, &lim)) {
			banger_error_clear();
			continue;
		}
		size_t nl = strlen(name);
		if (strcmp(name, "index.json") == 0) {
			bg_free(s->index_json);
			s->index_json = NULL;
			if ((rc = read_small(a, &s->index_json, &s->index_len, name)))
				goto out;
		} else if (strcmp(name, "manifest.json") == 0) {
			bg_free(s->manifest_json);
			s->manifest_json = NULL;
			if ((rc = read_small(a, &s->manifest_json, &s->manifest_len, name)))
				goto out;
		} else if (strcmp(name, "oci-layout") == 0) {
			s->oci_layout = true;
		} else if (nl == 13 + 64 && strncmp(name, "blobs/sha256/", 13) == 0 && is_hex64(name + 13, 64)) {
			char d[BG_DIGEST_SIZE], got[BG_DIGEST_SIZE];
			snprintf(d, sizeof(d), "sha256:%.64s", name + 13);
			uint64_t size;
			if (!bg_blob_cached(blobs, d) && (rc = stream_member(a, blobs, d, got, &size, name)))
				goto out;
		} else if (strcmp(name, "repositories") != 0 && !bg_startswith(name, "blobs/")) {
			/* docker save (the format before Docker 25, also skopeo's
			 * docker-archive): layers and configs under any name that
			 * manifest.json may list; digests are computed */
			char got[BG_DIGEST_SIZE];
			uint64_t size = 0;
			if ((rc = stream_member(a, blobs, NULL, got, &size, name)))
				goto out;
			if (s->count == s->cap) {
				size_t nc = s->cap ? s->cap * 2 : 16;
				char **nn = bg_realloc(s->names, nc * sizeof(char *));
				if (nn)
					s->names = nn;
				char **nd = nn ? bg_realloc(s->digests, nc * sizeof(char *)) : NULL;
				if (nd)
					s->digests = nd;
				uint64_t *ns = nd ? bg_realloc(s->sizes, nc * sizeof(uint64_t)) : NULL;
				if (!ns) {
					rc = bg_error_oom();
					goto out;
				}
				s->sizes = ns;
				s->cap = nc;
			}
			s->names[s->count] = bg_strdup(name);
			s->digests[s->count] = bg_strdup(got);
			s->sizes[s->count] = size;
			s->count++;
			if (!s->names[s->count - 1] || !s->digests[s->count - 1]) {
				rc = bg_error_oom();
				goto out;
			}
		}
	}
out:
	archive_read_free(a);
	close(fd);
	if (rc)
		scan_free(s);
	return rc;
}

static const char *scan_lookup(const archive_scan *s, const char *name, uint64_t *size)
{
	char norm[512];
	bg_limits lim;
	bg_limits_default(&lim);
	if (!name || strlen(name) >= sizeof(norm) || bg_layer_normalize(norm, name, &lim))
		return NULL;
	for (size_t i = 0; i < s->count; i++)
		if (strcmp(s->names[i], norm) == 0) {
			if (size)
				*size = s->sizes[i];
			return s->digests[i];
		}
	return NULL;
}

/* docker save's manifest.json: [{"Config": "<hex>.json", "RepoTags": [..],
 * "Layers": ["<id>/layer.tar", ..]}] */
static int resolve_legacy(bg_resolved *res, const archive_scan *s, const char *blobs, const char *tag,
			  const bg_platform *want, bool explicit_platform, char **repo_tag)
{
	memset(res, 0, sizeof(*res));
	*repo_tag = NULL;
	json_error_t e;
	json_t *root = json_loadb(s->manifest_json, s->manifest_len, 0, &e);
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
			      : "several images; name one as PATH:TAG");
		goto out;
	}
	const char *t0 = json_string_value(json_array_get(json_object_get(pick, "RepoTags"), 0));
	if (t0)
		*repo_tag = bg_strdup(t0);
	const char *cfg = scan_lookup(s, json_string_value(json_object_get(pick, "Config")), NULL);
	json_t *layers = json_object_get(pick, "Layers");
	size_t n = json_array_size(layers);
	if (!cfg || !json_is_array(layers) || n == 0 || n > 4096) {
		rc = bg_error(BANGER_EINVALID, "manifest.json names a config or layers the archive lacks");
		goto out;
	}
	res->manifest.kind = BG_MANIFEST_IMAGE;
	res->manifest.count = n;
	res->manifest.layers = bg_calloc(n, sizeof(bg_descriptor));
	if (!res->manifest.layers) {
		rc = bg_error_oom();
		goto out;
	}
	for (i = 0; i < n; i++) {
		uint64_t size = 0;
		const char *d = scan_lookup(s, json_string_value(json_array_get(layers, i)), &size);
		if (!d) {
			rc = bg_error(BANGER_EINVALID, "manifest.json names layer %zu, which the archive lacks", i + 1);
			goto out;
		}
		memcpy(res->manifest.layers[i].digest, d, BG_DIGEST_SIZE);
		res->manifest.layers[i].size = size;
	}
	memcpy(res->manifest.config.digest, cfg, BG_DIGEST_SIZE);
	/* the Docker image ID (config digest) stands for the manifest digest */
	memcpy(res->top_digest, cfg, BG_DIGEST_SIZE);
	char *body = NULL;
	size_t len = 0;
	if ((rc = bg_blob_read(blobs, cfg, BG_CONFIG_MAX, &body, &len)))
		goto out;
	rc = bg_image_config_parse(&res->config, body, len);
	bg_free(body);
	if (rc)
		goto out;
	if (res->config.ndiff != n) {
		rc = bg_error(BANGER_EINVALID, "the archive has %zu layers but the config lists %zu diff_ids", n,
			      res->config.ndiff);
		goto out;
	}
	const bg_platform *have = res->config.platform.os[0] ? &res->config.platform : NULL;
	if (have && (strcmp(have->os, want->os) != 0 || strcmp(have->arch, want->arch) != 0)) {
		char h[100], w[100];
		bg_platform_format(have, h, sizeof(h));
		bg_platform_format(want, w, sizeof(w));
		rc = bg_error(BANGER_EUNSUPPORTED, "the image is for %s, not %s%s", h, w,
			      explicit_platform ? "" : " (use --platform to import it anyway)");
		goto out;
	}
	bg_platform_format(have ? have : want, res->platform, sizeof(res->platform));
out:
	json_decref(root);
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

BANGER_EXTERN(int) banger_image_import(banger_image **out, banger_ctx *ctx, const char *path,
				       const banger_image_pull_options *opts)
{
	if (out)
		*out = NULL;
	if (!ctx || !path || !*path)
		return bg_error(BANGER_EINVALID, "invalid argument");
	banger_image_pull_options o;
	int rc = bg_image_opts(&o, opts);
	if (rc)
		return rc;
	bg_platform want;
	if (o.platform) {
		if ((rc = bg_platform_parse(&want, o.platform)))
			return rc;
	} else {
		bg_platform_host(&want);
	}
	const char *blobs = ctx->layout.blobs_dir;
	char *src = NULL, *tag = NULL, *ref = NULL, *name = NULL, *ref_name = NULL, *body = NULL;
	archive_scan scan = { 0 };
	bg_resolved res = { 0 };
	struct stat st;
	/* "PATH:TAG" when PATH itself is not there */
	if (stat(path, &st) != 0) {
		const char *colon = strrchr(path, ':');
		if (colon && colon != path && colon[1] && !strchr(colon, '/')) {
			src = bg_strndup(path, (size_t)(colon - path));
			tag = bg_strdup(colon + 1);
			if (!src || !tag || stat(src, &st) != 0) {
				rc = src && tag ? bg_error_os(BANGER_ENOTFOUND, errno, "%s", src) : bg_error_oom();
				goto out;
			}
		} else {
			rc = bg_error_os(BANGER_ENOTFOUND, errno, "%s", path);
			goto out;
		}
	} else if (!(src = bg_strdup(path))) {
		rc = bg_error_oom();
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		char *lp = bg_path_join(src, "oci-layout"), *ip = bg_path_join(src, "index.json");
		char *text = NULL;
		size_t len = 0;
		if (!lp || !ip) {
			rc = bg_error_oom();
		} else if (!bg_path_exists(lp)) {
			rc = bg_error(BANGER_EINVALID, "%s is not an OCI image layout (no oci-layout file)", src);
		} else {
			rc = bg_read_file(&text, &len, ip, SMALL_MAX);
		}
		bg_free(lp);
		bg_free(ip);
		char top[BG_DIGEST_SIZE], mt[128];
		if (rc == 0)
			rc = pick_entry(text, len, tag, top, mt, sizeof(mt), &ref_name);
		bg_free(text);
		if (rc || (rc = import_candidates(src, blobs, top, mt, 0)))
			goto out;
		if ((rc = bg_blob_read(blobs, top, BG_MANIFEST_MAX, &body, &len)) ||
		    (rc = bg_image_resolve(&res, NULL, blobs, body, len, mt[0] ? mt : NULL, top, &want,
					   o.platform != NULL)))
			goto out;
		for (size_t i = 0; i < res.manifest.count; i++)
			if ((rc = import_layout_blob(src, blobs, res.manifest.layers[i].digest)))
				goto out;
		ref = bg_sprintf("oci:%s%s%s", src, tag ? ":" : "", tag ? tag : "");
	} else if (S_ISREG(st.st_mode)) {
		if ((rc = scan_archive(&scan, src, blobs)))
			goto out;
		if (scan.index_json) {
			char top[BG_DIGEST_SIZE], mt[128];
			size_t len = 0;
			if ((rc = pick_entry(scan.index_json, scan.index_len, tag, top, mt, sizeof(mt), &ref_name)) ||
			    (rc = import_candidates(NULL, blobs, top, mt, 0)) ||
			    (rc = bg_blob_read(blobs, top, BG_MANIFEST_MAX, &body, &len)) ||
			    (rc = bg_image_resolve(&res, NULL, blobs, body, len, mt[0] ? mt : NULL, top, &want,
						   o.platform != NULL)))
				goto out;
			ref = bg_sprintf("%s:%s%s%s", scan.oci_layout && !scan.manifest_json ? "oci-archive"
						       : "docker-archive", src, tag ? ":" : "", tag ? tag : "");
		} else if (scan.manifest_json) {
			if ((rc = resolve_legacy(&res, &scan, blobs, tag, &want, o.platform != NULL, &ref_name)))
				goto out;
			ref = bg_sprintf("docker-archive:%s%s%s", src, tag ? ":" : "", tag ? tag : "");
		} else {
			rc = bg_error(BANGER_EINVALID, "%s is neither an OCI archive nor a docker save archive", src);
			goto out;
		}
	} else {
		rc = bg_error(BANGER_EINVALID, "%s is not a directory or a file", src);
		goto out;
	}
	name = o.name ? bg_strdup(o.name) : name_from(ref_name, src, tag);
	if (!ref || !name) {
		rc = bg_error_oom();
		goto out;
	}
	if (o.kernel_ref) {
		bg_kernel_record k;
		if ((rc = bg_store_kernel_get(&ctx->store, &k, o.kernel_ref))) {
			if (rc == BANGER_ENOTFOUND)
				rc = bg_error(BANGER_ENOTFOUND, "no kernel named '%s' is installed", o.kernel_ref);
			goto out;
		}
		bg_kernel_record_clear(&k);
	}
	rc = bg_image_finish(out, ctx, &res, name, ref, NULL, &o);
out:
	if (rc)
		bg_error_prefix("import %.200s", path);
	scan_free(&scan);
	bg_resolved_free(&res);
	bg_free(src);
	bg_free(tag);
	bg_free(ref);
	bg_free(name);
	bg_free(ref_name);
	bg_free(body);
	return rc;
}
