/*
 * Private declarations of the image module: references and digests,
 * the registry client, manifests, the blob cache, the in-memory tree that
 * layers are applied to, the ext4 writer and the patch step.
 *
 * Data flow of a pull (pull.c -> build.c):
 *   reference -> registry (auth, manifest, platform) -> blobs into the
 *   cache (parallel, verified) -> layers decompressed and parsed in
 *   parallel (file data written straight into the ext4 image's free
 *   blocks) -> entries applied in layer order to the tree (whiteouts) ->
 *   patch -> ext4 metadata from the tree -> resize, journal -> record.
 */
#ifndef BG_IMAGE_H
#define BG_IMAGE_H

#include "../core/core.h"
#include "../store/store.h"

typedef struct bg_env bg_env; /* env/env.h */

#include <stdatomic.h>

struct banger_ctx;

/* The public image object (image_api.c): a snapshot of a record that the
 * caller owns, not the store's row, so either can change alone. */
struct banger_image {
	bg_image_record rec;
};

/* ---- digests (digest.c) ---- */

/* "sha256:" + 64 lowercase hex + NUL */
#define BG_DIGEST_LEN 71
#define BG_DIGEST_SIZE (BG_DIGEST_LEN + 1)

/* Strict: "sha256:" followed by exactly 64 lowercase hex digits. */
bool bg_digest_valid(const char *s);
/* Same, as an error naming what was checked (BANGER_EINVALID, or
 * BANGER_EUNSUPPORTED for another well-formed algorithm). */
int bg_digest_check(const char *s, const char *what);

/* "sha256:<hex>" of core's SHA-256 (bg_sha256_*, core.h): of what a
 * streaming context has seen (reset it before reuse), or of data. */
int bg_digest_final(bg_sha256 *h, char out[BG_DIGEST_SIZE]);
int bg_digest_of(char out[BG_DIGEST_SIZE], const void *data, size_t len);

/* ---- references (reference.c) ---- */

typedef struct {
	char *domain;  /* "docker.io", "localhost:5000", "[::1]:5000" */
	char *path;    /* "library/debian" */
	char *tag;     /* "latest" when neither tag nor digest was given; else NULL if none */
	char *digest;  /* "sha256:<hex>" or NULL */
} bg_image_ref;

/* Parse and normalize as Docker does.  BANGER_EINVALID naming the problem. */
int bg_image_ref_parse(bg_image_ref *out, const char *s);
void bg_image_ref_free(bg_image_ref *r);
/* "docker.io/library/debian:bookworm[@sha256:...]" */
char *bg_image_ref_string(const bg_image_ref *r);
/* Host (and port) the API is reached at: docker.io -> registry-1.docker.io */
const char *bg_image_ref_api_host(const bg_image_ref *r);
/* Tag or digest to ask the registry for (the digest when both are given). */
const char *bg_image_ref_object(const bg_image_ref *r);
/* Default image name: last path component plus tag ("debian-bookworm"),
 * or plus 12 digest digits.  Sanitized to a valid image name. */
char *bg_image_ref_default_name(const bg_image_ref *r);
/* Image names: [a-z0-9][a-z0-9._-]{0,63}, no "..". */
bool bg_image_name_valid(const char *name);

/* bg_host_is_loopback, bg_registry_insecure (the plain-HTTP rule): core.h */

/* ---- platforms ---- */

typedef struct {
	char os[32];
	char arch[32];
	char variant[32]; /* "" when none */
} bg_platform;

/* "os/arch[/variant]" */
int bg_platform_parse(bg_platform *out, const char *s);
/* linux/<GOARCH of this machine>[/variant], from the host module's one
 * detection (bg_host_machine: uname, or the architecture the library was
 * built for should uname fail).  bg_platform_of_machine: the same for a
 * machine name as uname gives it ("x86_64" -> amd64, "armv7l" -> arm/v7,
 * "i686" -> 386; any other name as it is). */
void bg_platform_host(bg_platform *out);
void bg_platform_of_machine(bg_platform *out, const char *machine);
void bg_platform_format(const bg_platform *p, char *buf, size_t len);
/* The one rule for an image's own platform, on pull and on import: have
 * (the image config's, else what its index entry declared; NULL when
 * neither says) must have want's os and arch, and want's variant too
 * when the user named the platform (a variant missing on either side
 * passes: registries often omit it).  BANGER_EUNSUPPORTED otherwise, the
 * hint naming verb ("pull", "import").  recorded gets the platform the
 * image record keeps: have's, or want's when the image does not say. */
int bg_platform_check(char *recorded, size_t len, const bg_platform *have, const bg_platform *want,
		      bool explicit_platform, const char *verb);

/* ---- manifests and configs (manifest.c) ---- */

#define BG_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define BG_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define BG_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define BG_MT_DOCKER_V2 "application/vnd.docker.distribution.manifest.v2+json"
#define BG_MT_DOCKER_V1 "application/vnd.docker.distribution.manifest.v1+json"
#define BG_MT_DOCKER_V1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"
#define BG_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define BG_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
/* What we send in Accept when asking for a manifest. */
#define BG_MANIFEST_ACCEPT \
	BG_MT_OCI_INDEX ", " BG_MT_OCI_MANIFEST ", " BG_MT_DOCKER_LIST ", " BG_MT_DOCKER_V2

/* Size caps: manifests (and indexes) and image configs. */
#define BG_MANIFEST_MAX (4u << 20)
#define BG_CONFIG_MAX (8u << 20)

typedef enum { BG_COMP_NONE = 0, BG_COMP_GZIP = 1, BG_COMP_ZSTD = 2 } bg_compression;

typedef struct {
	char digest[BG_DIGEST_SIZE];
	char media_type[128]; /* index entries: the child's type, or "" */
	uint64_t size;
	int compression;   /* layers: a bg_compression */
	bg_platform platform; /* index entries */
	bool has_platform;
} bg_descriptor;

typedef enum { BG_MANIFEST_INDEX = 1, BG_MANIFEST_IMAGE = 2 } bg_manifest_kind;

typedef struct {
	int kind;             /* bg_manifest_kind */
	char *media_type;     /* from the document, else from Content-Type */
	bg_descriptor config; /* images */
	bg_descriptor *layers;/* images: layers; indexes: manifests */
	size_t count;
} bg_manifest;

/* Parse a manifest or index.  content_type (may be NULL) is used when the
 * document has no mediaType; where both exist they must agree. */
int bg_manifest_parse(bg_manifest *out, const char *body, size_t len, const char *content_type);
void bg_manifest_free(bg_manifest *m);
/* Pick the entry of an index for want; BANGER_ENOTFOUND listing what the
 * index offers.  unknown/unknown (attestation) entries are skipped. */
int bg_manifest_select(const bg_manifest *index, const bg_platform *want, size_t *out);

typedef struct {
	bg_platform platform;
	char **diff_ids;
	size_t ndiff;
	char *summary_json; /* {"entrypoint":..,"cmd":..,"env":..,"user":..,"workdir":..} */
} bg_image_config;

int bg_image_config_parse(bg_image_config *out, const char *body, size_t len);
void bg_image_config_free(bg_image_config *c);

/* ---- registry auth (registry_auth.c) ---- */

typedef struct {
	char scheme[16]; /* "bearer" or "basic" (lowercase) */
	char *realm, *service, *scope, *error;
} bg_auth_challenge;

/* Parse one WWW-Authenticate header value (the first challenge when
 * several are given, preferring Bearer). */
int bg_auth_challenge_parse(bg_auth_challenge *out, const char *header);
void bg_auth_challenge_free(bg_auth_challenge *c);
/* base64("user:password") for registry from the Docker config
 * ($DOCKER_CONFIG/config.json, else ~/.docker/config.json); *out NULL when
 * none.  A malformed file is an error naming it. */
int bg_docker_config_auth(char **out, const char *registry_domain);

/* ---- registry client (registry.c) ---- */

typedef struct bg_registry bg_registry;

typedef struct {
	const bg_image_ref *ref;
	bool insecure;             /* caller asked for plain HTTP */
	const char *insecure_list; /* config insecure_registries */
	bg_env *env;    /* logging */
} bg_registry_opts;

int bg_registry_open(bg_registry **out, const bg_registry_opts *o);
/* "https://registry-1.docker.io", "http://127.0.0.1:5000" */
const char *bg_registry_origin(const bg_registry *r);
void bg_registry_close(bg_registry *r);
/* GET a manifest by tag or digest.  *digest is the sha256 of the body;
 * when object is a digest it must match, and so must the registry's
 * Docker-Content-Digest header. */
int bg_registry_manifest(bg_registry *r, const char *object, char **body, size_t *len,
			 char **content_type, char digest[BG_DIGEST_SIZE]);
/* GET a small blob (config) into memory, verified, at most max bytes. */
int bg_registry_blob_mem(bg_registry *r, const char *digest, size_t max, char **body, size_t *len);

/* Progress of parallel downloads (banger_progress_event), reported from
 * the calling thread; non-zero stops the downloads (BANGER_ECANCELLED). */
typedef int (*bg_fetch_progress)(size_t index, int event, uint64_t done, uint64_t total, void *payload);
/* Download blobs (digest, size) into the cache, at most parallel at a
 * time, each verified before it is renamed into place.  Blobs already in
 * the cache are skipped (event BANGER_PROGRESS_CACHED). */
int bg_registry_fetch_blobs(bg_registry *r, const char *blobs_dir, const bg_descriptor *d,
			    size_t n, uint32_t parallel, bg_fetch_progress cb, void *payload);

/* ---- blob cache (blobcache.c) ---- */

/* <blobs>/<hex>; NULL on a bad digest or no memory. */
char *bg_blob_path(const char *blobs_dir, const char *digest);
bool bg_blob_cached(const char *blobs_dir, const char *digest);
/* A temporary file in the cache directory (O_CLOEXEC, 0644). */
int bg_blob_tmp_open(const char *blobs_dir, int *fd, char **tmp_path);
/* Rename a completed, verified temporary file to its final name. */
int bg_blob_commit(const char *blobs_dir, const char *tmp_path, const char *digest);
/* Store data under its digest (verified first); temp + rename. */
int bg_blob_put(const char *blobs_dir, const char *digest, const void *data, size_t len);
/* Read a cached blob of at most max bytes, verifying its digest (a corrupt
 * entry is removed and reported as BANGER_ENOTFOUND). */
int bg_blob_read(const char *blobs_dir, const char *digest, size_t max, char **out, size_t *len);
/* Remove a cached blob (bad on re-verification). */
void bg_blob_evict(const char *blobs_dir, const char *digest);
/* Remove regular files named prefix* in dir older than the given age:
 * what a killed pull left (a running one keeps its files fresh). */
void bg_sweep_stale(const char *dir, const char *prefix, int64_t older_than_s);

/* ---- imports: blobs from layouts and archives (import_archive.c) ---- */

/* A copy into the cache through SHA-256, at most max bytes, renamed to
 * its digest only when it matches (or, with no expected digest, to the
 * digest computed). */
typedef struct {
	int fd;
	char *tmp;
	bg_sha256 *sha;
	uint64_t size, max;
	const char *what; /* for messages */
} bg_blob_writer;

int bg_blob_writer_open(bg_blob_writer *w, const char *blobs_dir, uint64_t max, const char *what);
int bg_blob_writer_put(bg_blob_writer *w, const void *buf, size_t len);
/* got receives the digest; *created says whether a new cache file was
 * made (false when the blob was cached already). */
int bg_blob_writer_commit(bg_blob_writer *w, const char *blobs_dir, const char *expected,
			  char got[BG_DIGEST_SIZE], bool *created);
void bg_blob_writer_free(bg_blob_writer *w);

#define BG_ARCHIVE_MAX_MEMBERS 100000u

typedef struct {
	char *name;    /* normalized */
	uint64_t size; /* from its header */
} bg_archive_member;

typedef struct {
	char *index_json, *manifest_json; /* NULL when absent */
	size_t index_len, manifest_len;
	bool oci_layout;
	bg_archive_member *members;       /* regular files, first of each name */
	size_t count, cap;
} bg_archive_listing;

/* The first pass over an import archive (tar; gzip or zstd): the regular
 * members' names and sizes, index.json and manifest.json (4 MiB each at
 * most); nothing is written.  A compressed archive may expand to at most
 * budget bytes. */
int bg_archive_scan(bg_archive_listing *out, const char *path, uint64_t budget);
void bg_archive_listing_free(bg_archive_listing *s);
/* The member of that (normalized) name, or NULL. */
const bg_archive_member *bg_archive_member_find(const bg_archive_listing *s, const char *name);

typedef struct {
	const char *member;          /* normalized member name */
	char digest[BG_DIGEST_SIZE]; /* expected, or "" to take the computed one (filled in) */
	uint64_t size;               /* its size, as the scan found it */
	bool done;                   /* in the cache (set by the caller when cached already) */
	bool created;                /* a new cache file was made for it */
	uint64_t written;
} bg_archive_want;

/* One more pass: copy the members of w[] not done into the cache, each
 * exactly its size, all together at most *budget_left (decreased by what
 * was written).  A member missing from the archive is an error. */
int bg_archive_extract(const char *path, const char *blobs_dir, bg_archive_want *w, size_t n,
		       uint64_t expand_budget, uint64_t *budget_left);

/* ---- imports: what to take (import.c) ---- */

/* index.json of an OCI layout: the entry tagged tag (or the only one):
 * its digest and media type, and the image's full name when the index
 * records one (*ref_name, freed by the caller; may stay NULL). */
int bg_oci_index_pick(const char *text, size_t len, const char *tag, char digest[BG_DIGEST_SIZE],
		      char *media_type, size_t mtlen, char **ref_name);

/* manifest.json of `docker save`: the image tagged tag (or the only one). */
typedef struct {
	char *config;   /* member names as written in manifest.json */
	char **layers;
	size_t nlayers;
	char *repo_tag; /* its first RepoTags entry, or NULL */
} bg_docker_save_pick;

int bg_docker_save_pick_parse(bg_docker_save_pick *out, const char *text, size_t len, const char *tag);
void bg_docker_save_pick_free(bg_docker_save_pick *p);

/* ---- keeping the cache bounded (blobcache_prune.c) ---- */

/* Take the cache lock (<cache>/blobs/.lock) shared, as every pull and import
 * does from before its first look at the cache until its record is
 * committed: a prune (exclusive) then never removes a blob the pull
 * counts on.  When no one else holds it, leftovers of killed processes
 * (.tmp-*) are removed first.  A wait for a prune is reported to progress
 * (may be NULL), which may cancel it.  Release with bg_lock_release. */
int bg_image_prune(banger_image_prune_report *out, bg_env *env, const banger_image_prune_options *opts);
int bg_blob_cache_enter(bg_env *env, bg_lock *lock, const bg_progress *progress);
/* After a pull or import, with the cache lock released: evict
 * unreferenced blobs, oldest first, while the cache is larger than the
 * config key blob_cache_max.  Never fails the caller (problems are
 * logged); skipped while another pull or import runs. */
void bg_blob_cache_enforce_cap(bg_env *env);
/* The byte budget of a pull or import: requested, else the config key
 * image_max_bytes (default 64G). */
int bg_image_budget(bg_env *env, uint64_t requested, uint64_t *out);

/* ---- arena: many small allocations freed at once ---- */

typedef struct bg_arena_chunk bg_arena_chunk;
typedef struct {
	bg_arena_chunk *head;
	size_t bytes;
} bg_arena;
void *bg_arena_alloc(bg_arena *a, size_t n);        /* zeroed, 8-aligned */
char *bg_arena_strndup(bg_arena *a, const char *s, size_t n);
void bg_arena_free(bg_arena *a);

/* ---- file data and where it lives ---- */

typedef struct {
	uint64_t start; /* first block */
	uint32_t len;   /* blocks */
} bg_extent;

/* The content of one regular file: blocks already written into the ext4
 * image (ext), or bytes held in memory (mem: patch files, unit tests). */
typedef struct bg_fdata {
	uint64_t size;
	bg_extent *ext;
	uint32_t next;
	unsigned char *mem;
} bg_fdata;

/* Where layer readers put file data.  Called from several threads at once. */
typedef struct bg_sink bg_sink;
struct bg_sink {
	/* Reserve room for size bytes; *out lives until the sink is gone. */
	int (*begin)(bg_sink *s, bg_arena *arena, uint64_t size, bg_fdata **out);
	/* Write len bytes at offset off of the file. */
	int (*write)(bg_sink *s, bg_fdata *d, uint64_t off, const void *buf, size_t len);
	/* Read the file back (at most max bytes). */
	int (*read)(bg_sink *s, const bg_fdata *d, size_t max, char **out, size_t *len);
};
/* A sink that keeps everything in memory (tests, tiny trees). */
bg_sink *bg_mem_sink(void);

/* ---- budgets enforced while streaming ---- */

typedef struct {
	uint64_t max_bytes;       /* uncompressed bytes over all layers (and file sizes) */
	uint64_t max_entries;     /* entries per layer */
	uint32_t max_path;        /* bytes of a path */
	uint32_t max_component;   /* bytes of one component (ext4: 255) */
	uint32_t max_symlink;     /* bytes of a symlink target */
	uint32_t max_header;      /* PAX/GNU header bytes before one entry */
	uint32_t max_xattr_value; /* bytes of one xattr value */
	uint32_t max_xattrs;      /* bytes of all xattrs of one entry */
	uint32_t max_sparse;      /* sparse map entries per file */
} bg_limits;

void bg_limits_default(bg_limits *l);

/* ---- the tree (tree.c) ---- */

typedef struct bg_tree bg_tree;
typedef struct bg_inode bg_inode;
typedef struct bg_dentry bg_dentry;

typedef struct {
	char *name;
	unsigned char *value;
	uint32_t len;
} bg_xattr;

struct bg_inode {
	uint32_t mode; /* S_IFMT bits and permissions incl. setuid/setgid/sticky */
	uint32_t uid, gid;
	int64_t mtime;
	uint32_t mtime_ns;
	uint32_t nlink;    /* dentries pointing here */
	uint32_t ino;      /* ext4 inode number, assigned when written */
	bool implicit;     /* a directory created for a missing parent */
	bool written;      /* ext4 writer: inode already written */
	bg_xattr *xattrs;
	uint32_t nxattrs;
	union {
		struct {
			bg_dentry *first, *last, *self; /* self: our dentry (NULL for root) */
			uint32_t count, nsubdirs;
			uint32_t depth; /* levels below the root (root: 0) */
		} dir;
		bg_fdata *file;
		struct {
			const char *target;
			uint32_t len;
		} link;
		struct {
			uint32_t major, minor;
		} dev;
	} u;
};

struct bg_dentry {
	bg_dentry *hnext;        /* hash chain */
	bg_dentry *next, *prev;  /* siblings */
	bg_inode *parent;
	bg_inode *inode;
	const char *name;
	uint32_t namelen;
	uint32_t hash;
	uint32_t layer;          /* layer that created (or last replaced) it */
};

int bg_tree_new(bg_tree **out);
void bg_tree_free(bg_tree *t);
bg_inode *bg_tree_root(bg_tree *t);
bg_arena *bg_tree_arena(bg_tree *t);
bg_dentry *bg_tree_lookup(bg_tree *t, bg_inode *dir, const char *name, size_t len);
/* Look a path up without following any symlink (NULL if absent or if a
 * parent is not a directory). */
bg_dentry *bg_tree_lookup_path(bg_tree *t, const char *path);
/* Remove a dentry (and a directory's whole subtree, iteratively). */
void bg_tree_remove(bg_tree *t, bg_dentry *d);
/* How deep directories may nest: the deepest directory whose absolute path
 * still fits in Linux's PATH_MAX (4096 bytes with its NUL, a "/" and a
 * one-byte name per level), which is also as deep as one layer member's
 * path (at most 4096 bytes) can name.  Deeper trees only come from chains
 * of symlinks (a 232 KB layer reached 80,000 levels); nothing in a guest
 * could name such paths, so they are refused as bad images. */
#define BG_TREE_MAX_DEPTH 2048u
/* Add name under dir pointing at inode (nlink is incremented).  A
 * directory deeper than BG_TREE_MAX_DEPTH is refused (BANGER_EINVALID). */
int bg_tree_add(bg_tree *t, bg_inode *dir, const char *name, size_t len, bg_inode *inode,
		uint32_t layer, bg_dentry **out);
bg_inode *bg_tree_new_inode(bg_tree *t, uint32_t mode);
/* The dentry after d in a depth-first, parents-first walk of top's
 * subtree (NULL at the end); with descend false, d's own children are
 * skipped.  Every walk of the tree goes through this: it keeps no stack,
 * so no tree, however deep, can exhaust the caller's. */
bg_dentry *bg_tree_next(const bg_inode *top, bg_dentry *d, bool descend);
/* Number of inodes reachable and total apparent bytes of file data,
 * symlink targets and directories (for sizing). */
void bg_tree_stats(bg_tree *t, uint64_t *inodes, uint64_t *bytes);
/* Extents of data dropped from the tree (overwritten or deleted files). */
typedef void (*bg_tree_release_cb)(const bg_fdata *d, void *payload);
void bg_tree_on_release(bg_tree *t, bg_tree_release_cb cb, void *payload);

/* Resolve the directory that contains path's last component, following
 * symlinks inside the tree (confined: ".." stops at the root, absolute
 * targets start at the root; 40 hops at most).  With create, missing
 * directories are created (implicit, layer) with mtime.  *last gets the
 * last component (pointer into path). */
#define BG_RESOLVE_CREATE 1
int bg_tree_resolve_parent(bg_tree *t, const char *path, int flags, uint32_t layer,
			   int64_t mtime, bg_inode **dir, const char **last);

/* ---- layers (layer_apply.c) ---- */

typedef enum {
	BG_ENT_FILE = 1, BG_ENT_DIR, BG_ENT_SYMLINK, BG_ENT_HARDLINK, BG_ENT_CHR, BG_ENT_BLK,
	BG_ENT_FIFO, BG_ENT_SOCK, BG_ENT_WHITEOUT, BG_ENT_OPAQUE
} bg_entry_kind;

typedef struct {
	uint8_t kind;          /* bg_entry_kind */
	uint32_t mode, uid, gid;
	int64_t mtime;
	uint32_t mtime_ns;
	const char *path;      /* normalized: no leading '/', no '.', '..' or empty parts; "" = root */
	const char *target;    /* symlink target (raw), hardlink target (normalized) */
	uint32_t target_len;
	uint32_t major, minor;
	bg_fdata *data;        /* regular files */
	bg_xattr *xattrs;
	uint32_t nxattrs;
} bg_entry;

/* The parsed content of one layer: entries in archive order. */
typedef struct {
	bg_arena arena;
	bg_entry *entries;
	size_t count, cap;
	uint64_t bytes;        /* uncompressed stream bytes */
	char diff_id[BG_DIGEST_SIZE];
	char digest[BG_DIGEST_SIZE]; /* of the compressed blob */
} bg_layer;

/* Normalize a member name (strip leading "/" and "./", collapse "//" and
 * "."); ".." components are refused.  out must hold strlen(in)+1. */
int bg_layer_normalize(char *out, const char *in, const bg_limits *lim);

typedef struct {
	const bg_limits *limits;
	atomic_uint_fast64_t *total_bytes; /* shared over the layers of one build */
	atomic_uint_fast64_t *progress;    /* compressed bytes consumed, or NULL */
	atomic_int *cancel;                /* set non-zero to stop */
	bg_sink *sink;
	uint32_t index;                    /* layer number, for messages */
} bg_layer_read_opts;

/* Read one layer blob (gzip, zstd or plain tar, detected) from fd of
 * size bytes: entries into *layer, file data into the sink, digests of
 * the blob and of the uncompressed stream into layer->digest/diff_id. */
int bg_layer_read(bg_layer *layer, int fd, uint64_t size, const bg_layer_read_opts *o);
void bg_layer_free(bg_layer *layer);
/* Apply a layer's entries to the tree (OCI whiteout semantics). */
int bg_layer_apply(bg_tree *t, const bg_layer *layer, uint32_t index);

/* ---- ext4 (ext4_write.c) ---- */

typedef struct bg_ext4 bg_ext4;

/* Create path (must not exist) as a sparse file of size bytes (more when
 * inodes, if not 0, needs more block groups) with mkfs.ext4, open it and
 * offer its free blocks to the sink. */
int bg_ext4_create(bg_ext4 **out, const char *path, uint64_t size, uint64_t inodes);
bg_sink *bg_ext4_sink(bg_ext4 *e);
/* Blocks the data needed when the sink ran out of room (0 if it did not). */
uint64_t bg_ext4_overflow_blocks(bg_ext4 *e);
/* Punch a hole where dropped file data was written. */
void bg_ext4_release(bg_ext4 *e, const bg_fdata *d);
/* Whether t fits in the image: *need_inodes gets the inodes it takes,
 * *short_blocks the blocks for metadata the image lacks (directories,
 * long symlinks, files held in memory, extent and xattr blocks).
 * Entry-heavy images (many small files, empty directories, symlink farms)
 * need more than their bytes tell. */
bool bg_ext4_fits(bg_ext4 *e, bg_tree *t, uint64_t *need_inodes, uint64_t *short_blocks);
/* Write the tree (inodes, directories, symlinks, xattrs) into the image. */
int bg_ext4_write_tree(bg_ext4 *e, bg_tree *t);
/* Close, resize to the final size (fixed_size, else used + headroom),
 * add the journal and sync.  *bytes gets the final size. */
int bg_ext4_finish(bg_ext4 *e, uint64_t fixed_size, uint64_t headroom, uint64_t *bytes);
/* Close and unlink (after a failure).  Accepts NULL. */
void bg_ext4_discard(bg_ext4 *e);
/* Release after a successful finish (the file stays).  Accepts NULL. */
void bg_ext4_free(bg_ext4 *e);

/* ---- patch step (patch.c) ---- */

typedef struct {
	const char *first_boot;      /* script installed at /usr/local/libexec/banger-first-boot */
	const char *first_boot_unit; /* banger-first-boot.service, or NULL */
	const char *agent;           /* vsock agent binary, or NULL */
	const char *agent_unit;      /* banger-vsock-agent.service, or NULL */
	const char *session_helper;  /* banger-session (guest sessions), or NULL */
	const char *resolv_conf;     /* host's resolv.conf (default /etc/resolv.conf) */
	bg_env *env;      /* logging */
	char buf[5][4096];           /* storage for the defaults */
} bg_patch_inputs;

/* Fill in the default input paths: the guest files found by the one
 * rule of bg_guest_files (layout.h); the agent and its unit from one
 * place; a file found nowhere stays NULL.  0, or BANGER_ENOMEM. */
int bg_patch_inputs_default(bg_patch_inputs *in);
/* Patch the tree in place; never follows the image's symlinks. */
int bg_image_patch(bg_tree *t, bg_sink *sink, const bg_patch_inputs *in);
/* resolv.conf text from the host's, loopback nameservers dropped. */
char *bg_resolv_conf_filter(const char *host_text);
/* fstab text with the /dev/vdb line for /root (old /root lines dropped). */
char *bg_fstab_patch(const char *old_text);

/* ---- build (build.c): blobs in the cache -> rootfs -> record ---- */

/* A report (a banger_progress_event) from the calling thread; returns 0,
 * or an error code with the error set (a cancellation) that stops the
 * build. */
typedef int (*bg_build_progress)(int event, uint32_t layer, uint64_t done, uint64_t total,
				 const char *detail, void *payload);

typedef struct {
	bg_env *env;
	const char *name;
	const char *ref;              /* recorded */
	const char *manifest_digest;
	const char *platform;         /* recorded */
	const char *config_json;      /* recorded */
	const char *kernel_name;
	const bg_descriptor *layers;  /* in the cache */
	const char *const *diff_ids;
	size_t nlayers;
	uint64_t size_bytes, max_bytes;
	uint64_t headroom_bytes;      /* BANGER_IMAGE_HEADROOM_DEFAULT: from the config */
	uint32_t parallel;
	uint32_t flags;               /* BANGER_IMAGE_* */
	bg_build_progress progress;
	void *payload;
	/* Pipelining (pulls): when set, blobs missing from the cache are
	 * fetched by calling fetch from the calling thread while the layer
	 * threads run; it must call ready(rp, index) as each layer's blob lands
	 * in the cache and return when all did (or on the first error). */
	int (*fetch)(void *fetch_payload, int (*ready)(void *rp, size_t index), void *rp);
	void *fetch_payload;
} bg_build_opts;

/* Everything after the blobs are cached: returns with the record stored. */
int bg_image_build(const bg_build_opts *o, bg_image_record *out);

/* Shared by pull and import: is the image recorded with this manifest
 * and platform already (and its file there)?  BANGER_EBUSY when a VM uses
 * the image that would be replaced. */
int bg_image_check_target(bg_env *env, const char *name, const char *digest,
			  const char *platform, uint32_t flags, bool *up_to_date);

/* ---- pull.c: resolving a manifest and finishing a pull or import ---- */

typedef struct {
	char top_digest[BG_DIGEST_SIZE];  /* what the tag (or ref) named: index or manifest */
	bg_manifest manifest;             /* the image manifest for the platform */
	bg_image_config config;
	char platform[100];
} bg_resolved;

/* From the top-level manifest document to the platform's image manifest
 * and config.  Manifests and configs come from the cache, else from reg
 * (NULL for imports, whose blobs are all in the cache); both are cached. */
int bg_image_resolve(bg_resolved *out, bg_registry *reg, const char *blobs_dir, const char *body,
		     size_t len, const char *content_type, const char *top_digest,
		     const bg_platform *want, bool explicit_platform);
void bg_resolved_free(bg_resolved *r);
/* Take the image lock, check the target, fetch missing layers (reg may be
 * NULL when they are cached), build and record. */
int bg_image_finish(banger_image **out, bg_env *env, bg_resolved *res, const char *name,
		    const char *ref, bg_registry *reg, const banger_image_pull_options *opts, int operation);
/* Validate options (NULL: defaults) into *o. */
int bg_image_opts(banger_image_pull_options *o, const banger_image_pull_options *in);
/* The kernel an image is to boot with (opts->kernel_ref; NULL: none)
 * must be installed: a pull or import says so before its first byte
 * rather than after. */
int bg_image_check_kernel(bg_env *env, const char *kernel);

#endif
