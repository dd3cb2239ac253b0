/*
 * libbanger — images: OCI/Docker images turned into bootable ext4 root
 * filesystems.
 *
 * banger_image_pull() resolves a reference such as "debian:bookworm"
 * (normalized as Docker does: docker.io/library/debian:bookworm), fetches
 * the manifest for this host's platform, downloads the layers into a
 * content-addressed cache, applies them in memory (nothing from the image
 * is ever written to the host's filesystem as a file) and writes an ext4
 * image from the result.  banger_image_import() does the same from an OCI
 * layout directory or an OCI/`docker save` archive.
 *
 * Every digest is verified (manifests pulled by digest, every blob, and
 * each layer's uncompressed diff_id).  A failed pull or import records
 * nothing and leaves in the cache only blobs whose digest was verified
 * (a retry reuses them), never a partial or unverified file.
 *
 * The cache is bounded: every pull and import has a byte budget
 * (max_bytes below), blobs no recorded image references are removed by
 * banger_image_prune(), and after each pull or import unreferenced blobs
 * are evicted, oldest first, while the cache is larger than the config
 * key blob_cache_max (default 20G).
 *
 * Progress (progress.h): a pull or import reports RESOLVED, then per
 * layer (item) DOWNLOAD / DOWNLOADED or CACHED and UNPACK / UNPACKED,
 * STEP for each step of writing the filesystem (stage "build"), and DONE
 * or UP_TO_DATE.  Cancelling records nothing.
 */
#ifndef BANGER_IMAGE_H
#define BANGER_IMAGE_H

#include "common.h"
#include "context.h"
#include "progress.h"

BANGER_BEGIN_DECL

/* A snapshot of one image record.  Opaque; read with accessors.
 * Strings returned by accessors live as long as the object. */
typedef struct banger_image banger_image;
/* A list of image records. */
typedef struct banger_image_list banger_image_list;

/* ---- pull and import ---- */

/* Use plain HTTP for this registry (loopback registries always are). */
#define BANGER_IMAGE_INSECURE (1u << 0)
/* Rebuild even when the image is recorded with the same manifest. */
#define BANGER_IMAGE_FORCE (1u << 1)
/* Do not patch the tree (first-boot init, fstab, resolv.conf, agent,
 * host keys); the record then says prepared = 0. */
#define BANGER_IMAGE_NO_PATCH (1u << 2)

/* Version 2: progress is a banger_progress_cb (progress.h); it was a
 * callback of images' own. */
#define BANGER_IMAGE_PULL_OPTIONS_VERSION 2

typedef struct {
	unsigned int version;      /* BANGER_IMAGE_PULL_OPTIONS_VERSION */
	const char *name;          /* NULL: derived from the reference ("debian-bookworm") */
	const char *kernel_ref;    /* kernel recorded with the image; NULL: none */
	const char *platform;      /* "os/arch[/variant]"; NULL: this host (linux/<arch>) */
	uint64_t size_bytes;       /* rootfs size; 0: the tree plus headroom */
	uint64_t headroom_bytes;   /* free space added; BANGER_IMAGE_HEADROOM_DEFAULT:
				    * config "image_headroom" */
	uint64_t max_bytes;        /* byte budget of this pull or import: bounds the
				    * bytes written into the blob cache (downloads
				    * or archive members), the layers' uncompressed
				    * bytes, and how far a compressed import archive
				    * may expand; 0: config image_max_bytes (64G) */
	uint32_t max_parallel;     /* concurrent downloads and unpackers; 0: automatic */
	uint32_t flags;            /* BANGER_IMAGE_* */
	banger_progress_cb progress; /* NULL: no reports; may cancel (progress.h) */
	void *progress_payload;
} banger_image_pull_options;

/* headroom_bytes taken from the configuration */
#define BANGER_IMAGE_HEADROOM_DEFAULT UINT64_MAX

#define BANGER_IMAGE_PULL_OPTIONS_INIT \
	{ BANGER_IMAGE_PULL_OPTIONS_VERSION, NULL, NULL, NULL, 0, BANGER_IMAGE_HEADROOM_DEFAULT, 0, 0, 0, \
	  NULL, NULL }

/* Initialise options to defaults for the given version. */
BANGER_EXTERN(int) banger_image_pull_options_init(banger_image_pull_options *opts, unsigned int version);

/* Pull ref from its registry and record the image.  *out (may be NULL)
 * receives the record.  opts may be NULL.  The layers' declared sizes are
 * checked against the budget before anything is downloaded, and no blob
 * may be longer than its declared size.  Errors: BANGER_EINVALID (bad
 * reference or name, over the budget), BANGER_ENOTFOUND (no such image or platform),
 * BANGER_EPERM (registry refused the credentials), BANGER_ENETWORK,
 * BANGER_EVERIFY (digest mismatch), BANGER_EBUSY (a VM uses the image of
 * that name, which would be replaced), BANGER_EUNSUPPORTED (media type). */
BANGER_EXTERN(int) banger_image_pull(banger_image **out, banger_ctx *ctx, const char *ref,
				     const banger_image_pull_options *opts);

/* Import from an OCI image layout directory ("DIR" or "DIR:TAG"), an
 * OCI layout archive or a `docker save` tarball.  opts as for pull
 * (name defaults to the tag's name, else the file name).  Only the members
 * the chosen image needs are copied into the cache, each bounded by its
 * declared size and all of them by the budget; an archive that is over
 * the budget, or names what it lacks, is refused (BANGER_EINVALID). */
BANGER_EXTERN(int) banger_image_import(banger_image **out, banger_ctx *ctx, const char *path,
				       const banger_image_pull_options *opts);

/* Normalize a reference as Docker does ("debian" ->
 * "docker.io/library/debian:latest").  *out is freed with banger_free(). */
BANGER_EXTERN(int) banger_image_ref_normalize(char **out, const char *ref);

/* ---- records ---- */

/* Every recorded image, ordered by name. */
BANGER_EXTERN(int) banger_image_list_all(banger_image_list **out, banger_ctx *ctx);
BANGER_EXTERN(size_t) banger_image_list_count(const banger_image_list *list);
/* Borrowed pointer, valid until the list is freed; NULL past the end. */
BANGER_EXTERN(const banger_image *) banger_image_list_get(const banger_image_list *list, size_t i);
BANGER_EXTERN(void) banger_image_list_free(banger_image_list *list);

/* Look an image up by name: BANGER_ENOTFOUND when absent. */
BANGER_EXTERN(int) banger_image_lookup(banger_image **out, banger_ctx *ctx, const char *name);
BANGER_EXTERN(void) banger_image_free(banger_image *image);

/* Delete the record and the rootfs file.  BANGER_EBUSY while a VM uses
 * the image; BANGER_ENOTFOUND when there is no such image. */
BANGER_EXTERN(int) banger_image_remove(banger_ctx *ctx, const char *name);

/* ---- the blob cache ---- */

/* Report what would be removed, remove nothing. */
#define BANGER_IMAGE_PRUNE_DRY_RUN (1u << 0)

#define BANGER_IMAGE_PRUNE_OPTIONS_VERSION 1

typedef struct {
	unsigned int version; /* BANGER_IMAGE_PRUNE_OPTIONS_VERSION */
	/* 0: remove every blob no recorded image references.  Otherwise
	 * remove such blobs oldest first only until the whole cache is at
	 * most keep_bytes (what the blob_cache_max cap does). */
	uint64_t keep_bytes;
	/* How long to wait for pulls and imports of other processes to
	 * finish with the cache; 0: do not wait (BANGER_EBUSY). */
	uint32_t timeout_ms;
	uint32_t flags;       /* BANGER_IMAGE_PRUNE_* */
} banger_image_prune_options;

#define BANGER_IMAGE_PRUNE_OPTIONS_INIT { BANGER_IMAGE_PRUNE_OPTIONS_VERSION, 0, 0, 0 }

BANGER_EXTERN(int) banger_image_prune_options_init(banger_image_prune_options *opts, unsigned int version);

/* What a prune did (or, with BANGER_IMAGE_PRUNE_DRY_RUN, would do). */
typedef struct {
	uint64_t blobs_removed, bytes_removed;
	uint64_t blobs_kept, bytes_kept;             /* what is left */
	uint64_t blobs_referenced, bytes_referenced; /* of it, what images use */
	uint64_t temp_removed; /* partial files of killed pulls and imports */
} banger_image_prune_report;

/* Remove the cached blobs that no recorded image references (manifests,
 * configs, layers) and what killed pulls left.  A blob that a pull or
 * import in another process is using for an image it has not recorded yet
 * is never removed: pulls and imports hold the cache lock shared, a prune
 * holds it exclusive.  *out (may be NULL) gets the report; opts may be
 * NULL.  Errors: BANGER_EBUSY (a pull or import is running and the
 * timeout passed), BANGER_EINVALID (options), BANGER_EIO. */
BANGER_EXTERN(int) banger_image_prune(banger_image_prune_report *out, banger_ctx *ctx,
				      const banger_image_prune_options *opts);

BANGER_EXTERN(const char *) banger_image_name(const banger_image *image);
/* The normalized reference pulled ("docker.io/library/debian:bookworm"),
 * or the import source. */
BANGER_EXTERN(const char *) banger_image_ref(const banger_image *image);
/* "sha256:<hex>" of the image manifest. */
BANGER_EXTERN(const char *) banger_image_digest(const banger_image *image);
/* "linux/amd64" */
BANGER_EXTERN(const char *) banger_image_platform(const banger_image *image);
/* JSON object with entrypoint, cmd, env, user, workdir (each may be null). */
BANGER_EXTERN(const char *) banger_image_config_json(const banger_image *image);
/* Kernel recorded with the image, or NULL. */
BANGER_EXTERN(const char *) banger_image_kernel(const banger_image *image);
BANGER_EXTERN(const char *) banger_image_rootfs_path(const banger_image *image);
BANGER_EXTERN(uint64_t) banger_image_rootfs_bytes(const banger_image *image);
BANGER_EXTERN(int) banger_image_has_initrd(const banger_image *image);
/* 1 when banger patched the tree (first-boot init etc.). */
BANGER_EXTERN(int) banger_image_prepared(const banger_image *image);
BANGER_EXTERN(int64_t) banger_image_created_at(const banger_image *image); /* unix seconds */

BANGER_END_DECL

#endif
