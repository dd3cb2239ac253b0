/* From blobs in the cache to a recorded rootfs: the part pull and import
 * share.
 *
 *  1. size a sparse ext4 image from the layers' uncompressed sizes (gzip
 *     trailer, zstd frame header, or the blob size; for blobs still to be
 *     downloaded, a generous multiple of their size: the image is resized
 *     at the end anyway) and make it;
 *  2. decompress and parse every layer in parallel threads, each starting
 *     as soon as its blob is in the cache (downloads and unpacking
 *     overlap), file data going straight into the image's free blocks,
 *     digests of the blob and of the uncompressed stream (diff_id)
 *     computed on the way;
 *  3. check both digests of every layer;
 *  4. apply the layers in order to the in-memory tree, patch it;
 *  5. write the tree's metadata, resize to tree + headroom, add the
 *     journal, sync, rename into place and record it.
 * If the estimate was too small (a layer lying about its size, several
 * gzip members, or more entries than the bytes suggest: many small files,
 * empty directories or symlinks need inodes and metadata blocks the byte
 * count does not show), steps 1-4 run once more, sized from what the
 * first round counted: the data blocks and the tree's inodes and
 * metadata blocks. */
#include "image.h"
#include "../env/env.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
	const bg_build_opts *o;
	bg_sink *sink;
	bg_layer *layers;
	int *fds;
	size_t *order;          /* layer indexes, largest first */
	bool *ready;            /* per layer: its blob is open in fds[] */
	size_t taken;           /* layers handed to a thread */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	atomic_uint_fast64_t total_bytes;
	atomic_uint_fast64_t *progress; /* per layer */
	atomic_int cancel;
	int *state;             /* per layer: 0 queued, 1 running, 2 done, 3 failed */
	bg_error_saved *errs;   /* per layer */
	size_t finished;
	long first_failed;      /* the layer that failed first, -1 if none */
	bg_limits limits;
} pool;

/* Take the largest layer whose blob is ready; NULL-like -1 when none is
 * left (or the build was cancelled).  Caller holds the lock. */
static long take_layer(pool *p)
{
	for (;;) {
		if (atomic_load(&p->cancel) || p->taken >= p->o->nlayers)
			return -1;
		for (size_t k = 0; k < p->o->nlayers; k++) {
			size_t i = p->order[k];
			if (p->ready[i] && p->state[i] == 0) {
				p->state[i] = 1;
				p->taken++;
				return (long)i;
			}
		}
		pthread_cond_wait(&p->cond, &p->lock);
	}
}

static void *worker(void *arg)
{
	pool *p = arg;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		long li = take_layer(p);
		pthread_mutex_unlock(&p->lock);
		if (li < 0)
			return NULL;
		size_t i = (size_t)li;
		bg_layer_read_opts ro = {
			.limits = &p->limits,
			.total_bytes = &p->total_bytes,
			.progress = &p->progress[i],
			.cancel = &p->cancel,
			.sink = p->sink,
			.index = (uint32_t)i,
		};
		int rc = bg_layer_read(&p->layers[i], p->fds[i], p->o->layers[i].size, &ro);
		pthread_mutex_lock(&p->lock);
		if (rc) {
			bg_error_save(&p->errs[i]);
			if (!p->errs[i].code)
				p->errs[i].code = rc;
			if (p->first_failed < 0 && !atomic_load(&p->cancel))
				p->first_failed = (long)i;
			atomic_store(&p->cancel, 1);
		}
		p->state[i] = rc ? 3 : 2;
		p->finished++;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
	}
}

/* Open layer i's cached blob; *missing when it is not there (yet). */
static int open_blob(pool *p, size_t i, bool *missing)
{
	bg_env *env = p->o->env;
	*missing = false;
	char *path = bg_blob_path(env->layout.blobs_dir, p->o->layers[i].digest);
	if (!path)
		return bg_error_oom();
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		int err = errno;
		int rc = err == ENOENT ? 0 : bg_error_os(bg_code_from_errno(err), err, "open cached layer %s", path);
		*missing = err == ENOENT;
		bg_free(path);
		return rc;
	}
	bg_free(path);
	struct stat st;
	if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != p->o->layers[i].size) {
		close(fd);
		bg_blob_evict(env->layout.blobs_dir, p->o->layers[i].digest);
		return bg_error(BANGER_EVERIFY, "cached layer %s has the wrong size", p->o->layers[i].digest);
	}
	p->fds[i] = fd;
	return 0;
}

/* A blob landed in the cache: every layer with that digest can start. */
static int layer_ready(void *payload, size_t index)
{
	pool *p = payload;
	int rc = 0;
	for (size_t i = 0; i < p->o->nlayers && !rc; i++) {
		if (p->ready[i] || strcmp(p->o->layers[i].digest, p->o->layers[index].digest) != 0)
			continue;
		bool missing;
		if ((rc = open_blob(p, i, &missing)) == 0 && missing)
			rc = bg_error(BANGER_ENOTFOUND, "layer %s is not in the cache", p->o->layers[i].digest);
		if (rc == 0) {
			pthread_mutex_lock(&p->lock);
			p->ready[i] = true;
			pthread_cond_broadcast(&p->cond);
			pthread_mutex_unlock(&p->lock);
		}
	}
	return rc;
}

/* Uncompressed size of a layer blob, as well as the blob tells it. */
static uint64_t estimate(int fd, uint64_t size)
{
	unsigned char head[18];
	if (size < 18 || pread(fd, head, sizeof(head), 0) != (ssize_t)sizeof(head))
		return size;
	if (head[0] == 0x1f && head[1] == 0x8b) {
		unsigned char t[4];
		if (pread(fd, t, 4, (off_t)(size - 4)) != 4)
			return size * 4;
		uint64_t isize = (uint64_t)t[0] | (uint64_t)t[1] << 8 | (uint64_t)t[2] << 16 | (uint64_t)t[3] << 24;
		while (isize < size)
			isize += 1ull << 32; /* ISIZE is modulo 2^32 */
		return isize;
	}
	if (head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd) {
		unsigned fhd = head[4];
		unsigned fcs_flag = fhd >> 6, single = (fhd >> 5) & 1, did = fhd & 3;
		size_t pos = 5 + (single ? 0 : 1) + (did == 0 ? 0 : did == 1 ? 1 : did == 2 ? 2 : 4);
		size_t fcs = fcs_flag == 0 ? (single ? 1 : 0) : fcs_flag == 1 ? 2 : fcs_flag == 2 ? 4 : 8;
		if (fcs == 0 || pos + fcs > sizeof(head))
			return size * 8;
		uint64_t v = 0;
		for (size_t k = 0; k < fcs; k++)
			v |= (uint64_t)head[pos + k] << (8 * k);
		if (fcs == 2)
			v += 256;
		return v > size ? v : size;
	}
	return size;
}

static int report(const bg_build_opts *o, int event, uint32_t layer, uint64_t done, uint64_t total,
		  const char *detail)
{
	/* its answer is an error code, with the error set (a cancellation) */
	return o->progress ? o->progress(event, layer, done, total, detail, o->payload) : 0;
}

static int start_threads(pool *p, pthread_t *th, uint32_t nthreads, uint32_t *started)
{
	*started = 0;
	for (; *started < nthreads; (*started)++) {
		int err = pthread_create(&th[*started], NULL, worker, p);
		if (err) {
			if (*started == 0)
				return bg_error_os(BANGER_EIO, err, "start a layer thread");
			break;
		}
	}
	return 0;
}

/* Wait for the layer threads, reporting progress from this (the caller's)
 * thread; returns with every thread joined. */
static int wait_threads(const bg_build_opts *o, pool *p, pthread_t *th, uint32_t started, int rc)
{
	size_t n = o->nlayers;
	bool *announced = bg_calloc(n, sizeof(bool));
	int *st = bg_calloc(n, sizeof(int));
	if (!announced || !st) {
		rc = rc ? rc : bg_error_oom();
		atomic_store(&p->cancel, 1);
	}
	if (rc)
		atomic_store(&p->cancel, 1);
	pthread_mutex_lock(&p->lock);
	pthread_cond_broadcast(&p->cond); /* wake threads waiting for blobs */
	while (started > 0 && !rc) {
		size_t running = 0;
		for (size_t i = 0; i < n; i++)
			running += p->state[i] == 1;
		if (running == 0 && (p->taken >= n || atomic_load(&p->cancel)))
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->cond, &p->lock, &ts);
		memcpy(st, p->state, n * sizeof(int));
		pthread_mutex_unlock(&p->lock);
		for (size_t i = 0; i < n && !rc && !atomic_load(&p->cancel); i++) {
			if (st[i] == 1)
				rc = report(o, BANGER_PROGRESS_UNPACK, (uint32_t)i, atomic_load(&p->progress[i]),
					    o->layers[i].size, NULL);
			else if (st[i] == 2 && !announced[i]) {
				announced[i] = true;
				rc = report(o, BANGER_PROGRESS_UNPACKED, (uint32_t)i, o->layers[i].size,
					    o->layers[i].size, NULL);
			}
		}
		pthread_mutex_lock(&p->lock);
		if (rc) {
			atomic_store(&p->cancel, 1);
			pthread_cond_broadcast(&p->cond);
		}
	}
	pthread_mutex_unlock(&p->lock);
	for (uint32_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (size_t i = 0; i < n && !rc && announced; i++)
		if (p->state[i] == 2 && !announced[i])
			rc = report(o, BANGER_PROGRESS_UNPACKED, (uint32_t)i, o->layers[i].size,
				    o->layers[i].size, NULL);
	bg_free(announced);
	bg_free(st);
	if (rc)
		return rc;
	/* the failure that stopped the others, else the first in layer order */
	if (p->first_failed >= 0 && p->state[p->first_failed] == 3) {
		size_t i = (size_t)p->first_failed;
		int code = p->errs[i].code;
		bg_error_restore(&p->errs[i]);
		memset(&p->errs[i], 0, sizeof(p->errs[i]));
		return code;
	}
	for (size_t i = 0; i < n; i++) {
		if (p->state[i] == 3) {
			int code = p->errs[i].code;
			bg_error_restore(&p->errs[i]);
			memset(&p->errs[i], 0, sizeof(p->errs[i]));
			return code;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (p->state[i] != 2)
			return bg_error(BANGER_ERROR, "layer %zu was not read", i + 1);
	return 0;
}

/* Fetch what is missing (when asked to) while the threads unpack what is
 * there; then wait for them. */
static int read_layers(const bg_build_opts *o, pool *p, uint32_t nthreads, bool fetch)
{
	pthread_t *th = bg_calloc(nthreads, sizeof(*th));
	if (!th)
		return bg_error_oom();
	uint32_t started = 0;
	int rc = start_threads(p, th, nthreads, &started);
	if (rc == 0 && fetch) {
		rc = o->fetch(o->fetch_payload, layer_ready, p);
		for (size_t i = 0; i < o->nlayers && !rc; i++)
			if (!p->ready[i] && (rc = layer_ready(p, i)) == 0 && !p->ready[i])
				rc = bg_error(BANGER_ENOTFOUND, "layer %zu was not fetched", i + 1);
	}
	rc = wait_threads(o, p, th, started, rc);
	bg_free(th);
	return rc;
}

static void free_errs(pool *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(p->errs[i].message); /* strdup'ed by bg_error_save */
		memset(&p->errs[i], 0, sizeof(p->errs[i]));
	}
}

static char *rand_hex(void)
{
	unsigned char r[4];
	char *h = bg_malloc(9);
	if (!h || bg_random_bytes(r, sizeof(r))) {
		bg_free(h);
		return NULL;
	}
	bg_hex(h, r, sizeof(r));
	return h;
}

static int record_copy(bg_image_record *dst, const bg_image_record *src)
{
	memset(dst, 0, sizeof(*dst));
	char **d[] = { &dst->name, &dst->ref, &dst->manifest_digest, &dst->platform, &dst->config_json,
		       &dst->kernel_name, &dst->rootfs_path };
	const char *s[] = { src->name, src->ref, src->manifest_digest, src->platform, src->config_json,
			    src->kernel_name, src->rootfs_path };
	for (size_t i = 0; i < BG_ARRAY_SIZE(d); i++) {
		if (s[i] && !(*d[i] = bg_strdup(s[i]))) {
			bg_image_record_clear(dst);
			return bg_error_oom();
		}
	}
	dst->rootfs_bytes = src->rootfs_bytes;
	dst->has_initrd = src->has_initrd;
	dst->prepared = src->prepared;
	dst->created_at = src->created_at;
	return 0;
}

/* Both digests of every layer: the blob's and the uncompressed stream's. */
static int check_digests(const bg_build_opts *o, pool *p)
{
	bg_env *env = o->env;
	for (size_t i = 0; i < o->nlayers; i++) {
		if (strcmp(p->layers[i].digest, o->layers[i].digest) != 0) {
			bg_blob_evict(env->layout.blobs_dir, o->layers[i].digest);
			return bg_error(BANGER_EVERIFY, "layer %zu: cached blob %s hashes to %s (corrupt cache "
					"entry removed; pull again)", i + 1, o->layers[i].digest, p->layers[i].digest);
		}
		if (o->diff_ids && strcmp(p->layers[i].diff_id, o->diff_ids[i]) != 0)
			return bg_error(BANGER_EVERIFY, "layer %zu: uncompressed content has digest %s, the image "
					"config says %s", i + 1, p->layers[i].diff_id, o->diff_ids[i]);
	}
	return 0;
}

/* One build: its options, the layer pool, the paths of the image's
 * directory and of its temporary and final rootfs, and what is made on
 * the way. */
typedef struct {
	const bg_build_opts *o;
	bg_env *env;
	pool p;
	char *dir, *rnd, *tmp, *final;
	bg_ext4 *e4;
	bg_tree *tree;
	uint64_t size;        /* of the next filesystem made */
	uint64_t want_inodes; /* 0: what the size gives */
	uint32_t threads;
} build;

/* Names and per-layer arrays; on failure what was made is still freed
 * by build_free(). */
static int build_init(build *b, const bg_build_opts *o)
{
	bg_env *env = o->env;
	size_t n = o->nlayers;
	memset(b, 0, sizeof(*b));
	b->o = o;
	b->env = env;
	pool *p = &b->p;
	p->o = o;
	bg_limits_default(&p->limits);
	if (o->max_bytes)
		p->limits.max_bytes = o->max_bytes;
	b->dir = bg_path_join(env->layout.images_dir, o->name);
	b->rnd = rand_hex();
	b->tmp = b->dir && b->rnd ? bg_sprintf("%s/.rootfs.tmp-%s", b->dir, b->rnd) : NULL;
	b->final = b->dir && b->rnd ? bg_sprintf("%s/rootfs-%.12s-%s.ext4", b->dir,
						 o->manifest_digest ? o->manifest_digest + 7 : "local", b->rnd)
				    : NULL;
	p->layers = bg_calloc(n ? n : 1, sizeof(*p->layers));
	p->fds = bg_calloc(n ? n : 1, sizeof(int));
	p->order = bg_calloc(n ? n : 1, sizeof(size_t));
	p->ready = bg_calloc(n ? n : 1, sizeof(bool));
	p->state = bg_calloc(n ? n : 1, sizeof(int));
	p->errs = bg_calloc(n ? n : 1, sizeof(*p->errs));
	p->progress = bg_calloc(n ? n : 1, sizeof(*p->progress));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	for (size_t i = 0; p->fds && i < n; i++)
		p->fds[i] = -1;
	if (!b->tmp || !b->final || !p->layers || !p->fds || !p->order || !p->ready || !p->state || !p->errs ||
	    !p->progress)
		return bg_error_oom();
	return 0;
}

/* Everything a build holds; after a failure (rc), the image's directory
 * too when that leaves it empty. */
static void build_free(build *b, int rc)
{
	pool *p = &b->p;
	size_t n = b->o->nlayers;
	if (b->e4)
		bg_ext4_discard(b->e4);
	if (rc && b->dir)
		rmdir(b->dir); /* a first pull of this name that failed: no empty directory left */
	bg_tree_free(b->tree);
	for (size_t i = 0; p->layers && i < n; i++)
		bg_layer_free(&p->layers[i]);
	for (size_t i = 0; p->fds && i < n; i++)
		if (p->fds[i] >= 0)
			close(p->fds[i]);
	if (p->errs)
		free_errs(p, n);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	bg_free(p->layers);
	bg_free(p->fds);
	bg_free(p->order);
	bg_free(p->ready);
	bg_free(p->state);
	bg_free(p->errs);
	bg_free((void *)p->progress);
	bg_free(b->dir);
	bg_free(b->rnd);
	bg_free(b->tmp);
	bg_free(b->final);
}

/* At least one layer, and a diff_id for each when there are any. */
static int check_layers(const bg_build_opts *o)
{
	size_t n = o->nlayers;
	if (n == 0)
		return bg_error(BANGER_EINVALID, "the image has no layers");
	if (o->diff_ids && n > 0) {
		for (size_t i = 0; i < n; i++)
			if (!o->diff_ids[i])
				return bg_error(BANGER_EINVALID, "layer %zu has no diff_id", i + 1);
	}
	return 0;
}

/* Step 1: open the cached blobs, order the layers largest first, and
 * size the first filesystem and the thread count.  Blobs still to come
 * are counted at 8 times their size (the final resize trims the excess). */
static int open_and_size(build *b)
{
	const bg_build_opts *o = b->o;
	pool *p = &b->p;
	size_t n = o->nlayers;
	uint64_t est = 0;
	for (size_t i = 0; i < n; i++) {
		bool missing;
		int rc = open_blob(p, i, &missing);
		if (rc)
			return rc;
		if (missing && !o->fetch)
			return bg_error(BANGER_ENOTFOUND, "layer %s is not in the cache", o->layers[i].digest);
		p->ready[i] = !missing;
		est += missing ? (o->layers[i].compression == BG_COMP_NONE ? o->layers[i].size
									 : o->layers[i].size * 8)
			       : estimate(p->fds[i], o->layers[i].size);
		p->order[i] = i;
	}
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k > 0 && o->layers[p->order[k]].size > o->layers[p->order[k - 1]].size; k--) {
			size_t t = p->order[k];
			p->order[k] = p->order[k - 1];
			p->order[k - 1] = t;
		}
	if (est > p->limits.max_bytes)
		est = p->limits.max_bytes;
	b->size = est + est / 8 + (64u << 20);
	if (o->size_bytes > b->size)
		b->size = o->size_bytes;

	b->threads = o->parallel ? o->parallel : 8;
	if (b->threads > n)
		b->threads = (uint32_t)n;
	if (b->threads > 32)
		b->threads = 32;
	return 0;
}

/* Make the sparse filesystem the layers' data goes into. */
static int make_filesystem(build *b)
{
	const bg_build_opts *o = b->o;
	bg_env *env = b->env;
	uint64_t size = b->size;
	int rc;
	if ((rc = report(o, BANGER_PROGRESS_STEP, 0, 0, size, "creating the filesystem")))
		return rc;
	int64_t tm = bg_now_ms();
	if ((rc = bg_ext4_create(&b->e4, b->tmp, size, b->want_inodes)))
		return rc;
	bg_debug(env, "image %s: %llu byte filesystem made in %lld ms", o->name,
		 (unsigned long long)size, (long long)(bg_now_ms() - tm));
	return 0;
}

/* Steps 2 and 3: read every layer in the threads (fetching what is
 * missing on the first attempt, when asked to), then check the digests.
 * *over: the data blocks that did not fit. */
static int unpack_layers(build *b, int attempt, uint64_t *over)
{
	const bg_build_opts *o = b->o;
	bg_env *env = b->env;
	pool *p = &b->p;
	size_t n = o->nlayers;
	int rc;
	if ((rc = report(o, BANGER_PROGRESS_STEP, 0, 0, 0,
			 attempt == 0 && o->fetch ? "downloading and unpacking layers" : "unpacking layers")))
		return rc;
	p->sink = bg_ext4_sink(b->e4);
	p->taken = 0;
	p->finished = 0;
	p->first_failed = -1;
	atomic_store(&p->total_bytes, 0);
	atomic_store(&p->cancel, 0);
	for (size_t i = 0; i < n; i++) {
		p->state[i] = 0;
		atomic_store(&p->progress[i], 0);
	}
	int64_t t0 = bg_now_ms();
	rc = read_layers(o, p, b->threads, attempt == 0 && o->fetch);
	bg_debug(env, "image %s: %zu layers read in %lld ms (%u threads, %llu bytes uncompressed)",
		 o->name, n, (long long)(bg_now_ms() - t0), b->threads,
		 (unsigned long long)atomic_load(&p->total_bytes));
	if (rc)
		return rc;
	*over = bg_ext4_overflow_blocks(b->e4);
	return check_digests(o, p);
}

/* Step 4: the layers in order onto a new tree, then the patch. */
static int apply_layers(build *b, uint64_t over)
{
	const bg_build_opts *o = b->o;
	int rc;
	if ((rc = report(o, BANGER_PROGRESS_STEP, 0, 0, 0, "applying layers")))
		return rc;
	if ((rc = bg_tree_new(&b->tree)))
		return rc;
	for (size_t i = 0; i < o->nlayers; i++)
		if ((rc = bg_layer_apply(b->tree, &b->p.layers[i], (uint32_t)i)))
			return rc;
	/* (file data that did not fit was not kept: the patch, which
	 * reads some files, waits for the rebuild) */
	if (!over && !(o->flags & BANGER_IMAGE_NO_PATCH)) {
		bg_patch_inputs in;
		if ((rc = bg_patch_inputs_default(&in)))
			return rc;
		in.env = b->env;
		if ((rc = bg_image_patch(b->tree, b->p.sink, &in)))
			return rc;
	}
	return 0;
}

/* The estimate was too small: drop this round's filesystem, tree and
 * layers, and size the next from what it counted. */
static void plan_rebuild(build *b, uint64_t over, uint64_t inodes, uint64_t short_blocks)
{
	bg_info(b->env, "image %s: the layers need more room than estimated (%llu more data blocks, "
		"%llu more metadata blocks, %llu inodes); rebuilding", b->o->name,
		(unsigned long long)over, (unsigned long long)short_blocks, (unsigned long long)inodes);
	bg_tree_free(b->tree);
	b->tree = NULL;
	for (size_t i = 0; i < b->o->nlayers; i++)
		bg_layer_free(&b->p.layers[i]);
	bg_ext4_discard(b->e4);
	b->e4 = NULL;
	uint64_t more = over + short_blocks;
	b->size = b->size + more * 4096 + more * 512 + (64u << 20);
	if (b->size > b->p.limits.max_bytes + (1ull << 30))
		b->size = b->p.limits.max_bytes + (1ull << 30);
	/* the patch's few files and a reserve on top */
	b->want_inodes = inodes + inodes / 8 + 1024;
}

/* Steps 1 to 4, and once more when the filesystem turns out too small. */
static int fill_filesystem(build *b)
{
	for (int attempt = 0;; attempt++) {
		uint64_t over = 0;
		int rc;
		if ((rc = make_filesystem(b)) || (rc = unpack_layers(b, attempt, &over)) ||
		    (rc = apply_layers(b, over)))
			return rc;
		/* The estimate counts bytes; inodes and directory blocks come
		 * from the entries, known only now. */
		uint64_t inodes = 0, short_blocks = 0;
		bool fits = bg_ext4_fits(b->e4, b->tree, &inodes, &short_blocks);
		if (!over && fits)
			return 0;
		/* too small: start over, once, with what we learned */
		if (attempt > 0)
			return bg_error(BANGER_EIO, "the layers need more room than their sizes tell");
		plan_rebuild(b, over, inodes, short_blocks);
	}
}

/* The room left free in the image: the caller's, or the configuration's. */
static int headroom_of(const bg_build_opts *o, uint64_t *headroom)
{
	*headroom = o->headroom_bytes;
	if (*headroom == BANGER_IMAGE_HEADROOM_DEFAULT) {
		*headroom = 0;
		const char *h = bg_config_get(&o->env->config, "image_headroom");
		int rc;
		if (h && *h && (rc = bg_parse_size(headroom, h))) {
			bg_error_prefix("config image_headroom");
			return rc;
		}
	}
	return 0;
}

/* Step 5: the tree's metadata, the final size and journal, then the
 * rootfs renamed into place.  *bytes: its size. */
static int write_filesystem(build *b, uint64_t *bytes)
{
	const bg_build_opts *o = b->o;
	bg_env *env = b->env;
	int rc;
	if ((rc = report(o, BANGER_PROGRESS_STEP, 0, 0, 0, "writing the filesystem")))
		return rc;
	int64_t t1 = bg_now_ms();
	if ((rc = bg_ext4_write_tree(b->e4, b->tree)))
		return rc;
	bg_debug(env, "image %s: metadata written in %lld ms", o->name, (long long)(bg_now_ms() - t1));
	t1 = bg_now_ms();
	uint64_t headroom;
	if ((rc = headroom_of(o, &headroom)))
		return rc;
	if ((rc = report(o, BANGER_PROGRESS_STEP, 0, 0, 0, "sizing the filesystem")) ||
	    (rc = bg_ext4_finish(b->e4, o->size_bytes, headroom, bytes)))
		return rc;
	bg_debug(env, "image %s: resized, journal added, synced in %lld ms", o->name,
		 (long long)(bg_now_ms() - t1));
	if (rename(b->tmp, b->final) != 0)
		return bg_error_os(BANGER_EIO, errno, "rename %s", b->tmp);
	bg_ext4_free(b->e4);
	b->e4 = NULL;
	bg_fsync_dir(b->dir);
	return 0;
}

/* Record the image; the previous rootfs of that name goes afterwards. */
static int record_image(build *b, uint64_t bytes, bg_image_record *out)
{
	const bg_build_opts *o = b->o;
	bg_env *env = b->env;
	bg_image_record old = { 0 };
	bool had_old = bg_store_image_get(&env->store, &old, o->name) == 0;
	bg_image_record r = {
		.name = (char *)o->name,
		.ref = (char *)o->ref,
		.manifest_digest = (char *)o->manifest_digest,
		.platform = (char *)o->platform,
		.config_json = (char *)o->config_json,
		.kernel_name = (char *)o->kernel_name,
		.rootfs_path = b->final,
		.rootfs_bytes = bytes,
		.has_initrd = 0,
		.prepared = (o->flags & BANGER_IMAGE_NO_PATCH) ? 0 : 1,
		.created_at = bg_wall_seconds(),
	};
	/* The caller's copy is made before the record is committed: once it
	 * is, nothing may fail (an error would say "not pulled" about an
	 * image that is recorded). */
	int rc;
	if ((rc = record_copy(out, &r)) == 0 && (rc = bg_store_begin(&env->store)) == 0) {
		if ((rc = bg_store_image_upsert(&env->store, &r)) || (rc = bg_store_commit(&env->store)))
			bg_store_rollback(&env->store);
	}
	if (rc) {
		bg_image_record_clear(out);
		unlink(b->final);
		bg_image_record_clear(&old);
		return rc;
	}
	if (had_old && old.rootfs_path && strcmp(old.rootfs_path, b->final) != 0 &&
	    bg_startswith(old.rootfs_path, b->dir))
		unlink(old.rootfs_path);
	bg_image_record_clear(&old);
	return 0;
}

int bg_image_build(const bg_build_opts *o, bg_image_record *out)
{
	memset(out, 0, sizeof(*out));
	build b;
	int rc = build_init(&b, o);
	if (rc == 0)
		rc = check_layers(o);
	if (rc == 0 && (rc = bg_mkdir_p(b.dir, 0700)) == 0) {
		/* we hold the image lock: any temporary image here is a dead pull's */
		bg_sweep_stale(b.dir, ".rootfs.tmp-", 0);
	}
	uint64_t bytes = 0;
	if (rc == 0 && (rc = open_and_size(&b)) == 0 && (rc = fill_filesystem(&b)) == 0 &&
	    (rc = write_filesystem(&b, &bytes)) == 0)
		rc = record_image(&b, bytes, out);
	build_free(&b, rc);
	return rc;
}

int bg_image_check_target(bg_env *env, const char *name, const char *digest,
			  const char *platform, uint32_t flags, bool *up_to_date)
{
	*up_to_date = false;
	bg_image_record r;
	int rc = bg_store_image_get(&env->store, &r, name);
	if (rc == BANGER_ENOTFOUND) {
		banger_error_clear();
		return 0;
	}
	if (rc)
		return rc;
	bool want_prepared = !(flags & BANGER_IMAGE_NO_PATCH);
	if (digest && bg_streq(r.manifest_digest, digest) && bg_streq(r.platform, platform) &&
	    !(flags & BANGER_IMAGE_FORCE) && (r.prepared != 0) == want_prepared &&
	    r.rootfs_path && bg_path_exists(r.rootfs_path)) {
		*up_to_date = true;
		bg_image_record_clear(&r);
		return 0;
	}
	bg_image_record_clear(&r);
	char *vm = NULL;
	if ((rc = bg_store_image_user(&env->store, name, &vm)))
		return rc;
	if (vm) {
		rc = bg_error(BANGER_EBUSY, "image '%s' is used by VM '%s' and cannot be replaced; pull "
			      "under another --name", name, vm);
		bg_free(vm);
		return rc;
	}
	return 0;
}
