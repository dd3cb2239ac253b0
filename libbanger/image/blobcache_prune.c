/* Keeping the blob cache bounded: which blobs the recorded images still
 * reference, removing the others (banger_image_prune, `banger gc`), and the
 * size cap enforced after every pull and import.
 *
 * References are not stored anywhere of their own: they are re-derived
 * from each image record's manifest digest through the manifests and
 * configs in the cache (index -> manifests -> config + layers; a `docker
 * save` import records its config, whose diff_ids are its uncompressed
 * layers' digests).  So nothing can drift out of step with the records,
 * and a store rebuilt from the image directories needs nothing more.
 *
 * The race this has to win: a pull downloads blobs for an image it will
 * record only minutes later.  Pulls and imports hold the cache lock
 * (<cache>/blobs/.lock) shared from before their first look at the cache until
 * their record is committed; pruning holds it exclusive.  A prune
 * therefore sees either no pull at all or only finished ones, and every
 * .tmp-* it finds is a leftover of a killed process. */
#include "image.h"
#include "../env/env.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_PREFIX ".tmp-"
/* A pull waits this long for a prune to finish with the cache. */
#define ENTER_TIMEOUT_MS (600 * 1000)
#define DEFAULT_CACHE_MAX "20G"
#define DEFAULT_IMAGE_MAX "64G"

/* Beside the blobs, not among them: <cache>/blobs/.lock for the blobs in
 * <cache>/blobs/sha256. */
static char *lock_path(const char *blobs_dir)
{
	const char *slash = strrchr(blobs_dir, '/');
	if (!slash || slash == blobs_dir)
		return bg_path_join(blobs_dir, ".lock");
	return bg_sprintf("%.*s/.lock", (int)(slash - blobs_dir), blobs_dir);
}

/* Remove every .tmp-* in the cache: only safe while holding the lock
 * exclusively (no pull or import is writing one). */
static uint64_t sweep_temporaries(const char *blobs_dir, bool dry_run)
{
	DIR *d = opendir(blobs_dir);
	if (!d)
		return 0;
	uint64_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0)
			continue;
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
		    (dry_run || unlinkat(dirfd(d), de->d_name, 0) == 0))
			n++;
	}
	closedir(d);
	return n;
}

int bg_blob_cache_enter(bg_env *env, bg_lock *lock, const bg_progress *progress)
{
	const char *blobs = env->layout.blobs_dir;
	char *path = lock_path(blobs);
	if (!path)
		return bg_error_oom();
	int rc = bg_mkdir_p(blobs, 0700);
	/* Alone with the cache: what killed pulls left can go now rather
	 * than a day later. */
	if (rc == 0 && bg_lock_acquire(lock, path, 0) == 0) {
		sweep_temporaries(blobs, false);
		bg_lock_release(lock);
	}
	banger_error_clear();
	/* a prune holds it exclusive: the caller hears about the wait and
	 * may stop it */
	if (rc == 0 && (rc = bg_lock_acquire_shared_reporting(lock, path, ENTER_TIMEOUT_MS, progress,
								"the blob cache lock")) &&
	    rc != BANGER_ECANCELLED)
		bg_error_prefix("the blob cache is being pruned");
	bg_free(path);
	return rc;
}

static int config_size(bg_env *env, const char *key, const char *def, uint64_t *out)
{
	const char *v = bg_config_get(&env->config, key);
	int rc = bg_parse_size(out, v && *v ? v : def);
	if (rc)
		bg_error_prefix("config %s", key);
	return rc;
}

int bg_image_budget(bg_env *env, uint64_t requested, uint64_t *out)
{
	if (requested) {
		*out = requested;
		return 0;
	}
	int rc = config_size(env, "image_max_bytes", DEFAULT_IMAGE_MAX, out);
	if (rc == 0 && *out == 0)
		rc = bg_error(BANGER_EINVALID, "config image_max_bytes: must be more than 0");
	return rc;
}

/* ---- the set of referenced digests ---- */

typedef struct {
	char (*hex)[65];
	size_t n, cap;
} digest_set;

static int set_add(digest_set *s, const char *digest)
{
	if (!bg_digest_valid(digest))
		return 0;
	for (size_t i = 0; i < s->n; i++)
		if (memcmp(s->hex[i], digest + 7, 64) == 0)
			return 0;
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 64;
		char (*nh)[65] = bg_realloc(s->hex, nc * sizeof(*nh));
		if (!nh)
			return bg_error_oom();
		s->hex = nh;
		s->cap = nc;
	}
	memcpy(s->hex[s->n], digest + 7, 64);
	s->hex[s->n][64] = '\0';
	s->n++;
	return 0;
}

static bool set_has(const digest_set *s, const char *hex)
{
	for (size_t i = 0; i < s->n; i++)
		if (memcmp(s->hex[i], hex, 64) == 0)
			return true;
	return false;
}

/* Add digest and everything it leads to in the cache.  A blob that is
 * missing or not a manifest ends the walk there: it references nothing
 * more that we could know of. */
static int walk(digest_set *s, const char *blobs, const char *digest, int depth)
{
	int rc = set_add(s, digest);
	if (rc || depth > 2)
		return rc;
	char *body = NULL;
	size_t len = 0;
	rc = bg_blob_read(blobs, digest, BG_CONFIG_MAX, &body, &len);
	if (rc) {
		if (rc == BANGER_ENOMEM)
			return rc;
		banger_error_clear();
		return 0;
	}
	bg_manifest m;
	if (bg_manifest_parse(&m, body, len, NULL) == 0) {
		if (m.kind == BG_MANIFEST_INDEX) {
			for (size_t i = 0; i < m.count && !rc; i++)
				rc = walk(s, blobs, m.layers[i].digest, depth + 1);
		} else {
			rc = set_add(s, m.config.digest);
			for (size_t i = 0; i < m.count && !rc; i++)
				rc = set_add(s, m.layers[i].digest);
		}
		bg_manifest_free(&m);
	} else {
		/* a `docker save` import records its config: its layers are
		 * the uncompressed tars, whose digests are the diff_ids */
		bg_image_config c;
		if (bg_image_config_parse(&c, body, len) == 0) {
			for (size_t i = 0; i < c.ndiff && !rc; i++)
				rc = set_add(s, c.diff_ids[i]);
			bg_image_config_free(&c);
		}
	}
	if (rc == 0)
		banger_error_clear();
	bg_free(body);
	return rc;
}

static int collect_references(bg_env *env, digest_set *s)
{
	bg_image_record *imgs = NULL;
	size_t n = 0;
	int rc = bg_store_image_list(&env->store, &imgs, &n);
	for (size_t i = 0; i < n && !rc; i++)
		if (imgs[i].manifest_digest)
			rc = walk(s, env->layout.blobs_dir, imgs[i].manifest_digest, 0);
	bg_image_records_free(imgs, n);
	return rc;
}

/* ---- what is in the cache ---- */

typedef struct {
	char hex[65];
	uint64_t size;
	int64_t mtime_ns;
	bool referenced;
} cached_blob;

static bool is_hex64(const char *s)
{
	size_t i = 0;
	for (; s[i]; i++)
		if (i >= 64 || !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == 64;
}

static int list_blobs(const char *blobs, cached_blob **out, size_t *count)
{
	*out = NULL;
	*count = 0;
	DIR *d = opendir(blobs);
	if (!d)
		return errno == ENOENT ? 0 : bg_error_os(BANGER_EIO, errno, "open %s", blobs);
	cached_blob *v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *de;
	while (!rc && (de = readdir(d))) {
		struct stat st;
		if (!is_hex64(de->d_name) || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			cached_blob *nv = bg_realloc(v, nc * sizeof(*nv));
			if (!nv) {
				rc = bg_error_oom();
				break;
			}
			v = nv;
			cap = nc;
		}
		memcpy(v[n].hex, de->d_name, 65);
		v[n].size = (uint64_t)st.st_size;
		v[n].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		v[n].referenced = false;
		n++;
	}
	closedir(d);
	if (rc) {
		bg_free(v);
		return rc;
	}
	*out = v;
	*count = n;
	return 0;
}

static int oldest_first(const void *a, const void *b)
{
	const cached_blob *x = a, *y = b;
	if (x->mtime_ns != y->mtime_ns)
		return x->mtime_ns < y->mtime_ns ? -1 : 1;
	return strcmp(x->hex, y->hex);
}

/* The prune itself; the caller holds the cache lock exclusively. */
static int prune_locked(bg_env *env, const banger_image_prune_options *o,
			banger_image_prune_report *r)
{
	const char *blobs = env->layout.blobs_dir;
	bool dry = (o->flags & BANGER_IMAGE_PRUNE_DRY_RUN) != 0;
	digest_set refs = { 0 };
	cached_blob *v = NULL;
	size_t n = 0;
	/* Know every reference before removing anything: a failure here
	 * (the store unreadable) removes nothing. */
	int rc = collect_references(env, &refs);
	if (rc == 0)
		rc = list_blobs(blobs, &v, &n);
	if (rc)
		goto out;
	r->temp_removed = sweep_temporaries(blobs, dry);
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		v[i].referenced = set_has(&refs, v[i].hex);
		total += v[i].size;
		if (v[i].referenced) {
			r->blobs_referenced++;
			r->bytes_referenced += v[i].size;
		}
	}
	if (n)
		qsort(v, n, sizeof(*v), oldest_first);
	for (size_t i = 0; i < n; i++) {
		if (v[i].referenced || (o->keep_bytes && total <= o->keep_bytes))
			continue;
		char *p = bg_path_join(blobs, v[i].hex);
		if (!p) {
			rc = bg_error_oom();
			goto out;
		}
		int err = dry || unlink(p) == 0 ? 0 : errno;
		if (err && err != ENOENT)
			bg_warn(env, "blob cache: removing %s: %s", p, strerror(err));
		bg_free(p);
		if (err && err != ENOENT)
			continue;
		total -= v[i].size;
		r->blobs_removed++;
		r->bytes_removed += v[i].size;
	}
	r->blobs_kept = n - r->blobs_removed;
	r->bytes_kept = total;
	if (!dry && r->blobs_removed)
		bg_fsync_dir(blobs);
out:
	bg_free(refs.hex);
	bg_free(v);
	return rc;
}

BANGER_EXTERN(int) banger_image_prune_options_init(banger_image_prune_options *opts, unsigned int version)
{
	static const banger_image_prune_options def = BANGER_IMAGE_PRUNE_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_image_prune_options", version, BANGER_IMAGE_PRUNE_OPTIONS_VERSION,
			       BANGER_IMAGE_PRUNE_OPTIONS_VERSION);
}

BANGER_EXTERN(int) banger_image_prune(banger_image_prune_report *out, banger_ctx *ctx,
				      const banger_image_prune_options *opts)
{
	return bg_image_prune(out, bg_env_of(ctx), opts);
}

int bg_image_prune(banger_image_prune_report *out, bg_env *env, const banger_image_prune_options *opts)
{
	banger_image_prune_options def = BANGER_IMAGE_PRUNE_OPTIONS_INIT;
	const banger_image_prune_options *o = opts;
	if (out)
		memset(out, 0, sizeof(*out));
	if (!env)
		return bg_error(BANGER_EINVALID, "invalid argument");
	int vrc = BG_OPTIONS_CHECK(o, &def, banger_image_prune_options, BANGER_IMAGE_PRUNE_OPTIONS_VERSION,
				   BANGER_IMAGE_PRUNE_OPTIONS_VERSION);
	if (vrc)
		return vrc;
	if (o->flags & ~(uint32_t)BANGER_IMAGE_PRUNE_DRY_RUN)
		return bg_error(BANGER_EINVALID, "unknown prune flags 0x%x", o->flags);
	char *path = lock_path(env->layout.blobs_dir);
	if (!path)
		return bg_error_oom();
	bg_lock lock = BG_LOCK_INIT;
	banger_image_prune_report r;
	memset(&r, 0, sizeof(r));
	int timeout = o->timeout_ms > INT32_MAX ? INT32_MAX : (int)o->timeout_ms;
	int rc = bg_mkdir_p(env->layout.blobs_dir, 0700);
	if (rc == 0 && (rc = bg_lock_acquire(&lock, path, timeout)) == BANGER_EBUSY)
		rc = bg_error(BANGER_EBUSY, "the blob cache is in use by a pull or import in another process; "
			      "prune again when it has finished");
	if (rc == 0)
		rc = prune_locked(env, o, &r);
	bg_lock_release(&lock);
	bg_free(path);
	if (rc == 0) {
		bg_info(env, "blob cache: removed %llu blobs (%llu bytes), kept %llu (%llu bytes)",
			(unsigned long long)r.blobs_removed, (unsigned long long)r.bytes_removed,
			(unsigned long long)r.blobs_kept, (unsigned long long)r.bytes_kept);
		if (out)
			*out = r;
	}
	return rc;
}

void bg_blob_cache_enforce_cap(bg_env *env)
{
	uint64_t cap = 0;
	if (config_size(env, "blob_cache_max", DEFAULT_CACHE_MAX, &cap)) {
		bg_warn(env, "blob cache cap not enforced: %s", banger_error_last()->message);
		banger_error_clear();
		return;
	}
	/* Cheap first look without the lock: most pulls end under the cap. */
	cached_blob *v = NULL;
	size_t n = 0;
	uint64_t total = 0;
	if (list_blobs(env->layout.blobs_dir, &v, &n) == 0)
		for (size_t i = 0; i < n; i++)
			total += v[i].size;
	bg_free(v);
	banger_error_clear();
	if (total <= cap && cap)
		return;
	/* Over it: evict, unless another pull or import is running (the last
	 * one to finish does it). */
	banger_image_prune_options o = BANGER_IMAGE_PRUNE_OPTIONS_INIT;
	o.keep_bytes = cap;
	banger_image_prune_report r;
	int rc = bg_image_prune(&r, env, &o);
	if (rc == BANGER_EBUSY)
		bg_debug(env, "blob cache over blob_cache_max; left to the pull still running");
	else if (rc)
		bg_warn(env, "blob cache cap: %s", banger_error_last()->message);
	else if (r.bytes_kept > cap && cap)
		bg_warn(env, "blob cache holds %llu bytes of blobs recorded images use, over blob_cache_max "
			"(%llu bytes)", (unsigned long long)r.bytes_kept, (unsigned long long)cap);
	banger_error_clear();
}
