/* banger_image_pull: reference -> registry -> manifest for this platform
 * -> config -> layers in the cache -> build.  Also the parts import
 * shares: resolving an index to a platform's manifest and config, and
 * finishing (lock, up-to-date check, downloads, build, record). */
#include "image.h"
#include "../env/env.h"

#include <stdio.h>
#include <string.h>

BANGER_EXTERN(int) banger_image_pull_options_init(banger_image_pull_options *opts, unsigned int version)
{
	static const banger_image_pull_options def = BANGER_IMAGE_PULL_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_image_pull_options", version, BANGER_IMAGE_PULL_OPTIONS_VERSION,
			       BANGER_IMAGE_PULL_OPTIONS_VERSION);
}

int bg_image_opts(banger_image_pull_options *o, const banger_image_pull_options *in)
{
	banger_image_pull_options def = BANGER_IMAGE_PULL_OPTIONS_INIT;
	int rc = BG_OPTIONS_CHECK(in, &def, banger_image_pull_options, BANGER_IMAGE_PULL_OPTIONS_VERSION,
				  BANGER_IMAGE_PULL_OPTIONS_VERSION);
	if (rc)
		return rc;
	*o = *in;
	if (o->flags & ~(uint32_t)(BANGER_IMAGE_INSECURE | BANGER_IMAGE_FORCE | BANGER_IMAGE_NO_PATCH))
		return bg_error(BANGER_EINVALID, "unknown image flags 0x%x", o->flags);
	if (o->name && !bg_image_name_valid(o->name))
		return bg_error(BANGER_EINVALID, "invalid image name '%.100s' (want [a-z0-9][a-z0-9._-]*, "
				"at most 64 characters)", o->name);
	if (o->max_parallel > 64)
		return bg_error(BANGER_EINVALID, "max_parallel %u is more than 64", o->max_parallel);
	return 0;
}

void bg_resolved_free(bg_resolved *r)
{
	if (!r)
		return;
	bg_manifest_free(&r->manifest);
	bg_image_config_free(&r->config);
	memset(r, 0, sizeof(*r));
}

/* A manifest by digest: the cache, else the registry (then cached). */
static int manifest_by_digest(bg_registry *reg, const char *blobs, const char *digest, char **body,
			      size_t *len, char **ct)
{
	*ct = NULL;
	int rc = bg_blob_read(blobs, digest, BG_MANIFEST_MAX, body, len);
	if (rc == 0)
		return 0;
	if (rc != BANGER_ENOTFOUND || !reg)
		return rc;
	char got[BG_DIGEST_SIZE];
	if ((rc = bg_registry_manifest(reg, digest, body, len, ct, got)))
		return rc;
	bg_blob_put(blobs, digest, *body, *len); /* best effort */
	return 0;
}

int bg_image_resolve(bg_resolved *out, bg_registry *reg, const char *blobs, const char *body, size_t len,
		     const char *content_type, const char *top_digest, const bg_platform *want,
		     bool explicit_platform)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->top_digest, sizeof(out->top_digest), "%s", top_digest);
	bg_manifest m;
	int rc = bg_manifest_parse(&m, body, len, content_type);
	if (rc)
		return rc;
	char *child = NULL, *child_ct = NULL;
	bg_descriptor *pick = NULL;
	if (m.kind == BG_MANIFEST_INDEX) {
		size_t i;
		if ((rc = bg_manifest_select(&m, want, &i)))
			goto out;
		pick = &m.layers[i];
		size_t clen = 0;
		if ((rc = manifest_by_digest(reg, blobs, pick->digest, &child, &clen, &child_ct)))
			goto out;
		const char *hint = child_ct ? child_ct : (pick->media_type[0] ? pick->media_type : NULL);
		if ((rc = bg_manifest_parse(&out->manifest, child, clen, hint)))
			goto out;
		if (out->manifest.kind != BG_MANIFEST_IMAGE) {
			rc = bg_error(BANGER_EUNSUPPORTED, "nested image indexes are not supported");
			goto out;
		}
	} else {
		out->manifest = m;
		memset(&m, 0, sizeof(m));
	}
	/* the config */
	char *cfg = NULL;
	size_t cfglen = 0;
	const char *cd = out->manifest.config.digest;
	rc = bg_blob_read(blobs, cd, BG_CONFIG_MAX, &cfg, &cfglen);
	if (rc == BANGER_ENOTFOUND && reg) {
		banger_error_clear();
		if ((rc = bg_registry_blob_mem(reg, cd, BG_CONFIG_MAX, &cfg, &cfglen)) == 0)
			bg_blob_put(blobs, cd, cfg, cfglen);
	}
	if (rc)
		goto out;
	if (cfglen != out->manifest.config.size) {
		bg_free(cfg);
		rc = bg_error(BANGER_EVERIFY, "image config %s is %zu bytes, the manifest says %llu", cd, cfglen,
			      (unsigned long long)out->manifest.config.size);
		goto out;
	}
	rc = bg_image_config_parse(&out->config, cfg, cfglen);
	bg_free(cfg);
	if (rc)
		goto out;
	if (out->config.ndiff != out->manifest.count) {
		rc = bg_error(BANGER_EINVALID, "the manifest has %zu layers but the config lists %zu diff_ids",
			      out->manifest.count, out->config.ndiff);
		goto out;
	}
	/* the platform: the config's, checked against what we want */
	const bg_platform *have = out->config.platform.os[0] ? &out->config.platform
				: pick && pick->has_platform ? &pick->platform : NULL;
	rc = bg_platform_check(out->platform, sizeof(out->platform), have, want, explicit_platform,
			       reg ? "pull" : "import");
out:
	bg_manifest_free(&m);
	bg_free(child);
	bg_free(child_ct);
	if (rc)
		bg_resolved_free(out);
	return rc;
}

/* ---- progress adapters ---- */

typedef struct {
	bg_progress rep;
	const bg_resolved *res;
	/* pipelining: tell the build when a blob is in the cache */
	int (*ready)(void *rp, size_t index);
	void *rp;
	int ready_rc;               /* ready() failed: its error, saved */
	bg_error_saved ready_err;
} prog;

static const char *stage_of(int event)
{
	switch (event) {
	case BANGER_PROGRESS_RESOLVED: return "resolve";
	case BANGER_PROGRESS_DOWNLOAD:
	case BANGER_PROGRESS_DOWNLOADED:
	case BANGER_PROGRESS_CACHED: return "download";
	case BANGER_PROGRESS_UNPACK:
	case BANGER_PROGRESS_UNPACKED: return "unpack";
	case BANGER_PROGRESS_STEP: return "build";
	default: return "done";
	}
}

/* 0, or BANGER_ECANCELLED with the error set. */
static int emit(const prog *p, int event, uint32_t layer, const char *digest, uint64_t done,
		uint64_t total, const char *detail)
{
	banger_progress ev = {
		.event = event,
		.stage = stage_of(event),
		.item = layer,
		.items = (uint32_t)p->res->manifest.count,
		.digest = digest,
		.done = done,
		.total = total,
		.detail = detail,
	};
	return bg_progress_report(&p->rep, &ev);
}

static int fetch_cb(size_t index, int event, uint64_t done, uint64_t total, void *payload)
{
	prog *p = payload;
	/* The fetch reports "cancelled" when this says stop; the error kept
	 * here (the caller's cancellation, or ready's failure) is the real
	 * one and replaces it (fetch_now). */
	if ((p->ready_rc = emit(p, event, (uint32_t)index, p->res->manifest.layers[index].digest, done, total,
				NULL)) != 0 ||
	    (p->ready && (event == BANGER_PROGRESS_DOWNLOADED || event == BANGER_PROGRESS_CACHED) &&
	     (p->ready_rc = p->ready(p->rp, index)) != 0)) {
		bg_error_save(&p->ready_err);
		return 1;
	}
	return 0;
}

typedef struct {
	bg_registry *reg;
	bg_env *env;
	prog *pg;
	uint32_t parallel;
	const char *name;
} fetch_job;

/* Called by the build with its layer threads already running. */
static int fetch_now(void *payload, int (*ready)(void *rp, size_t index), void *rp)
{
	fetch_job *f = payload;
	const bg_resolved *res = f->pg->res;
	f->pg->ready = ready;
	f->pg->rp = rp;
	int64_t t0 = bg_now_ms();
	int rc = bg_registry_fetch_blobs(f->reg, f->env->layout.blobs_dir, res->manifest.layers,
					 res->manifest.count, f->parallel, fetch_cb, f->pg);
	f->pg->ready = NULL;
	if (rc && f->pg->ready_rc) {
		rc = f->pg->ready_rc;
		bg_error_restore(&f->pg->ready_err);
		f->pg->ready_rc = 0;
	}
	if (rc == 0)
		bg_debug(f->env, "image %s: blobs fetched in %lld ms", f->name, (long long)(bg_now_ms() - t0));
	return rc;
}

static int build_cb(int event, uint32_t layer, uint64_t done, uint64_t total, const char *detail,
		    void *payload)
{
	prog *p = payload;
	const char *digest = event == BANGER_PROGRESS_STEP ? NULL : p->res->manifest.layers[layer].digest;
	return emit(p, event, layer, digest, done, total, detail);
}

/* What a pull is about to download must fit the budget: refused before
 * the first byte rather than after the last (each blob is then held to
 * its declared size while it downloads). */
static int check_download_budget(const char *blobs, const bg_manifest *m, uint64_t budget)
{
	uint64_t total = 0;
	for (size_t i = 0; i < m->count; i++) {
		bool seen = bg_blob_cached(blobs, m->layers[i].digest);
		for (size_t k = 0; k < i && !seen; k++)
			seen = strcmp(m->layers[k].digest, m->layers[i].digest) == 0;
		if (!seen)
			total = m->layers[i].size > UINT64_MAX - total ? UINT64_MAX : total + m->layers[i].size;
	}
	if (total > budget)
		return bg_error(BANGER_EINVALID, "the layers to download are %llu bytes, over the budget of "
				"%llu bytes (--max-bytes, config image_max_bytes); nothing was downloaded",
				(unsigned long long)total, (unsigned long long)budget);
	return 0;
}

/* Only the kernel of an up-to-date image changes: recorded, no rebuild. */
static int set_kernel(bg_env *env, banger_image *img, const char *kernel)
{
	int rc;
	bg_free(img->rec.kernel_name);
	if (!(img->rec.kernel_name = bg_strdup(kernel)))
		return bg_error_oom();
	if ((rc = bg_store_begin(&env->store)) == 0 &&
	    ((rc = bg_store_image_upsert(&env->store, &img->rec)) || (rc = bg_store_commit(&env->store))))
		bg_store_rollback(&env->store);
	return rc;
}

/* Without a registry every layer must be cached; with one, what is to be
 * downloaded must fit the budget. */
static int check_layers_available(bg_env *env, const bg_resolved *res, const bg_registry *reg, uint64_t max_bytes)
{
	if (!reg) {
		for (size_t i = 0; i < res->manifest.count; i++) {
			if (!bg_blob_cached(env->layout.blobs_dir, res->manifest.layers[i].digest))
				return bg_error(BANGER_ENOTFOUND, "layer %s is missing",
						res->manifest.layers[i].digest);
		}
		return 0;
	}
	return check_download_budget(env->layout.blobs_dir, &res->manifest, max_bytes);
}

int bg_image_finish(banger_image **out, bg_env *env, bg_resolved *res, const char *name,
		    const char *ref, bg_registry *reg, const banger_image_pull_options *o, int operation)
{
	char *lock_path = bg_layout_image_lock(&env->layout, name);
	char **diff = NULL;
	banger_image *img = NULL;
	bg_lock lock = BG_LOCK_INIT;
	prog pg = { { o->progress, o->progress_payload, operation, name }, res, NULL, NULL, 0, { 0 } };
	int rc = 0;
	if (!lock_path) {
		rc = bg_error_oom();
		goto out;
	}
	if ((rc = bg_mkdir_p(env->layout.images_dir, 0700)))
		goto out;
	/* one pull per image name at a time (another process may be at it);
	 * the caller hears about a wait and may stop it */
	char what[300];
	snprintf(what, sizeof(what), "the lock of image %s", name);
	if ((rc = bg_lock_acquire_reporting(&lock, lock_path, 3600 * 1000, &pg.rep, what))) {
		if (rc != BANGER_ECANCELLED)
			bg_error_prefix("image %s is being pulled by another process", name);
		goto out;
	}
	bool up_to_date = false;
	if ((rc = bg_image_check_target(env, name, res->top_digest, res->platform, o->flags, &up_to_date)))
		goto out;
	uint64_t total = 0;
	for (size_t i = 0; i < res->manifest.count; i++)
		total += res->manifest.layers[i].size;
	if ((rc = emit(&pg, BANGER_PROGRESS_RESOLVED, 0, res->top_digest, 0, total, res->platform)))
		goto out;
	img = bg_calloc(1, sizeof(*img));
	if (!img) {
		rc = bg_error_oom();
		goto out;
	}
	if (up_to_date) {
		if ((rc = bg_store_image_get(&env->store, &img->rec, name)))
			goto out;
		if (o->kernel_ref && !bg_streq(img->rec.kernel_name, o->kernel_ref) &&
		    (rc = set_kernel(env, img, o->kernel_ref)))
			goto out;
		/* settled: the callback's answer is not asked for */
		emit(&pg, BANGER_PROGRESS_UP_TO_DATE, 0, res->top_digest, img->rec.rootfs_bytes,
		     img->rec.rootfs_bytes, name);
		goto out;
	}
	uint32_t parallel = o->max_parallel ? o->max_parallel : 4;
	fetch_job fj = { reg, env, &pg, parallel, name };
	if ((rc = check_layers_available(env, res, reg, o->max_bytes)))
		goto out;
	/* the kernel is looked up again here: it may have gone meanwhile */
	bg_build_opts bo = {
		.env = env,
		.name = name,
		.ref = ref,
		.manifest_digest = res->top_digest,
		.platform = res->platform,
		.config_json = res->config.summary_json,
		.kernel_name = o->kernel_ref,
		.layers = res->manifest.layers,
		.diff_ids = (const char *const *)res->config.diff_ids,
		.nlayers = res->manifest.count,
		.size_bytes = o->size_bytes,
		.headroom_bytes = o->headroom_bytes,
		.max_bytes = o->max_bytes,
		.parallel = o->max_parallel,
		.flags = o->flags,
		.progress = build_cb,
		.payload = &pg,
		.fetch = reg ? fetch_now : NULL,
		.fetch_payload = &fj,
	};
	if ((rc = bg_image_build(&bo, &img->rec)))
		goto out;
	/* recorded: the callback's answer is not asked for */
	emit(&pg, BANGER_PROGRESS_DONE, 0, res->top_digest, img->rec.rootfs_bytes, img->rec.rootfs_bytes,
	     name);
out:
	bg_lock_release(&lock);
	bg_free(lock_path);
	bg_free(diff);
	if (rc == 0 && out) {
		*out = img;
		img = NULL;
	}
	banger_image_free(img);
	return rc;
}

int bg_image_check_kernel(bg_env *env, const char *kernel)
{
	if (!kernel)
		return 0;
	bg_kernel_record k;
	int rc = bg_store_kernel_get(&env->store, &k, kernel);
	if (rc == BANGER_ENOTFOUND)
		return bg_error(BANGER_ENOTFOUND, "no kernel named '%s' is installed (banger kernel pull %s)",
				kernel, kernel);
	if (rc == 0)
		bg_kernel_record_clear(&k);
	return rc;
}

BANGER_EXTERN(int) banger_image_pull(banger_image **out, banger_ctx *ctx, const char *refstr,
				     const banger_image_pull_options *opts)
{
	bg_env *env = bg_env_of(ctx);
	if (out)
		*out = NULL;
	if (!env || !refstr)
		return bg_error(BANGER_EINVALID, "invalid argument");
	banger_image_pull_options o;
	int rc = bg_image_opts(&o, opts);
	if (rc)
		return rc;
	bg_image_ref ref = { 0 };
	bg_registry *reg = NULL;
	bg_resolved res = { 0 };
	char *name = NULL, *full = NULL, *body = NULL, *ct = NULL;
	size_t len = 0;
	char digest[BG_DIGEST_SIZE];
	bg_platform want;
	bg_lock cache_lock = BG_LOCK_INIT;
	if ((rc = bg_image_ref_parse(&ref, refstr)))
		goto out;
	if (o.platform) {
		if ((rc = bg_platform_parse(&want, o.platform)))
			goto out;
	} else {
		bg_platform_host(&want);
	}
	name = o.name ? bg_strdup(o.name) : bg_image_ref_default_name(&ref);
	full = bg_image_ref_string(&ref);
	if (!name || !full) {
		rc = bg_error_oom();
		goto out;
	}
	if (!bg_image_name_valid(name)) {
		rc = bg_error(BANGER_EINVALID, "cannot derive an image name from '%s'; give one with --name",
			      refstr);
		goto out;
	}
	if ((rc = bg_image_check_kernel(env, o.kernel_ref)) || (rc = bg_image_budget(env, o.max_bytes, &o.max_bytes)))
		goto out;
	/* held until the image is recorded: see blobcache_prune.c */
	const bg_progress rep = { o.progress, o.progress_payload, BANGER_PROGRESS_OP_IMAGE_PULL, name };
	if ((rc = bg_blob_cache_enter(env, &cache_lock, &rep)))
		goto out;
	bg_registry_opts ro = {
		.ref = &ref,
		.insecure = (o.flags & BANGER_IMAGE_INSECURE) != 0,
		.insecure_list = bg_config_get(&env->config, "insecure_registries"),
		.env = env,
	};
	if ((rc = bg_registry_open(&reg, &ro)))
		goto out;
	/* the one request a re-pull of an unchanged image costs */
	if ((rc = bg_registry_manifest(reg, bg_image_ref_object(&ref), &body, &len, &ct, digest)))
		goto out;
	bg_blob_put(env->layout.blobs_dir, digest, body, len); /* best effort */
	if ((rc = bg_image_resolve(&res, reg, env->layout.blobs_dir, body, len, ct, digest, &want,
				   o.platform != NULL)))
		goto out;
	rc = bg_image_finish(out, env, &res, name, full, reg, &o, BANGER_PROGRESS_OP_IMAGE_PULL);
out:
	if (cache_lock.fd >= 0) {
		bg_lock_release(&cache_lock);
		bg_error_saved saved;
		bg_error_save(&saved);
		bg_blob_cache_enforce_cap(env);
		bg_error_restore(&saved);
	}
	if (rc)
		bg_error_prefix("pull %.200s", refstr);
	bg_resolved_free(&res);
	bg_registry_close(reg);
	bg_image_ref_free(&ref);
	bg_free(name);
	bg_free(full);
	bg_free(body);
	bg_free(ct);
	return rc;
}
