/*
 * Private declarations of the kernel module: catalog fetch and parse,
 * downloads, artifact unpacking and installation, bzImage → vmlinux
 * extraction, import, and the checks the VM code runs before it creates
 * anything.  Format detection is ../kformat (shared with the VMM
 * drivers).
 *
 * On disk an installed kernel is <kernels_dir>/<name>/ holding some of
 *   vmlinux   ELF kernel (shipped, imported, or extracted from bzImage)
 *   bzImage   x86 boot-protocol kernel
 *   config    the kernel's .config
 *   initrd*   one initial ramdisk
 * The record's kernel_path is <dir>/vmlinux when format is "elf" and
 * <dir>/bzImage when it is "bzimage"; the other file, when present, is
 * the alternative a VMM may boot instead (bg_kernel_boot_path).
 */
#ifndef BG_KERNEL_H
#define BG_KERNEL_H

#include "../env/env.h"
#include "../kformat/kformat.h"

#define BG_KERNEL_NAME_MAX 64
/* The catalog schema this banger reads. */
#define BG_CATALOG_SCHEMA_VERSION 1
/* Bounds on what we download or unpack. */
#define BG_CATALOG_MAX_BYTES (4u << 20)
#define BG_ARTIFACT_MAX_BYTES (4ull << 30)
#define BG_MEMBER_MAX_BYTES (2ull << 30)

/* [A-Za-z0-9][A-Za-z0-9._-]*, at most BG_KERNEL_NAME_MAX: used as a
 * directory name, so never "..", never a slash. */
bool bg_kernel_name_valid(const char *name);

/* ---- catalog.c ---- */
typedef struct banger_kernel_catalog_entry {
	char *name, *version, *arch;
	char *url;         /* resolved against the catalog URL */
	char *sha256;      /* 64 lowercase hex digits */
	char *description;
	char *format;      /* "elf", "bzimage", or NULL when not stated */
	char *vmms;        /* comma separated */
	uint64_t size;
} bg_catalog_entry;

typedef struct banger_kernel_catalog {
	char *url;
	bg_catalog_entry *entries;
	size_t count;
} bg_catalog;

/* Parse and validate a catalog document; relative entry URLs are resolved
 * against base_url.  Errors are BANGER_EINVALID naming entry and field
 * (BANGER_EUNSUPPORTED for a newer schema_version). */
int bg_catalog_parse(bg_catalog *out, const char *text, size_t len, const char *base_url);
/* Fetch (http, https, file) then parse. */
int bg_catalog_fetch(bg_catalog *out, bg_env *env, const char *url);
void bg_catalog_clear(bg_catalog *c);
const bg_catalog_entry *bg_catalog_find(const bg_catalog *c, const char *name);
/* An absolute path becomes a file:// URL; URLs are checked for a
 * supported scheme (http, https, file). */
int bg_catalog_url_normalize(char **out, const char *url_or_path);
/* Resolve ref (absolute or relative URL) against base, RFC 3986 style. */
int bg_url_resolve(char **out, const char *base, const char *ref);
/* The catalog URL to use: override, else the config key; an empty
 * result is BANGER_EINVALID saying how to configure one. */
int bg_catalog_url_for(char **out, bg_env *env, const char *override);

/* ---- download.c ---- */
typedef int (*bg_progress_fn)(uint64_t done, uint64_t total, void *payload);

typedef struct {
	/* in */
	int fd;                      /* write the body here, or ... */
	bg_buf *buf;                 /* ... append it here */
	uint64_t expected_size;      /* 0: unknown; else must match exactly */
	uint64_t max_size;           /* 0: no limit */
	const char *expected_sha256; /* NULL: compute only */
	int64_t timeout_ms;          /* whole transfer; 0: one hour */
	bg_progress_fn progress;
	void *payload;
	/* The body's integrity rests on the transport (a catalog): plain
	 * http:// only as the plain-HTTP rule allows (bg_plain_http_check
	 * with this list), checked before connecting and again on the URL a
	 * redirect ends at, before any byte of the body is kept. */
	bool transport_integrity;
	const char *insecure_list;
	/* out */
	uint64_t bytes;
	char sha256[65];
} bg_download_req;

/* GET url (redirects followed, CURLOPT_NOSIGNAL, deadlines) streaming the
 * body through sha256.  HTTP 404 is BANGER_ENOTFOUND; a short body is
 * BANGER_ENETWORK ("truncated"); a size or digest mismatch is
 * BANGER_EVERIFY; progress returning non-zero stops it with the error of
 * every cancel (bg_progress_cancelled). */
int bg_download(bg_env *env, const char *url, bg_download_req *d);

/* ---- formats: ../kformat/kformat.h (bg_kernel_detect_file & co.) ---- */

/* ---- extract.c ---- */
/* Extract the ELF vmlinux embedded in a bzImage (the compressed payload,
 * located through the boot header or by scanning for compression magics
 * as Linux's scripts/extract-vmlinux does).  *out is bg_malloc'd. */
int bg_kernel_extract_buf(unsigned char **out, size_t *outlen, const unsigned char *img, size_t len);
/* File to file; out_path is created with O_EXCL and fsynced. */
int bg_kernel_extract_file(const char *bzimage_path, const char *out_path);

/* ---- install.c ---- */
typedef struct {
	char *dir;   /* <kernels>/.staging-<pid>-XXXXXX */
	char *tree;  /* <dir>/tree: becomes <kernels>/<name> */
	int tree_fd; /* O_DIRECTORY of tree */
} bg_kernel_staging;

typedef struct {
	bool vmlinux, bzimage, config;
	char initrd[64]; /* member name, "" when none */
} bg_kernel_files;

int bg_kernel_staging_new(bg_kernel_staging *st, const bg_layout *l);
/* Remove the staging directory and everything in it.  Accepts a zeroed one. */
void bg_kernel_staging_drop(bg_kernel_staging *st);
/* Unpack a tar artifact into st->tree, refusing any member that is not one
 * of the expected regular files. */
int bg_kernel_unpack(bg_kernel_staging *st, const char *tarball, bg_kernel_files *files);
/* Work out the primary kernel, its format and (from a bzImage alone) the
 * extracted vmlinux; fill rec's format/arch/paths for the final dir.
 * want_format is the catalog's statement, or NULL. */
int bg_kernel_finish_tree(bg_env *env, bg_kernel_staging *st, bg_kernel_files *files,
			  const char *name, const char *want_format, bg_kernel_record *rec,
			  bg_kernel_info *info);
/* Under the kernels lock: refuse a recorded name, clear a stale directory
 * of the same name, rename the tree into place and record rec; undo the
 * rename if recording fails.  A wait for the lock is reported to
 * progress (may be NULL), which may cancel it. */
int bg_kernel_commit(bg_env *env, bg_kernel_staging *st, const bg_kernel_record *rec,
		     const bg_progress *progress);
/* Remove record and files; BANGER_EBUSY naming a user. */
int bg_kernel_remove(bg_env *env, const char *name);

/* ---- pull.c and import.c ---- */
typedef struct {
	const char *catalog_url;
	bg_progress progress; /* the caller's reports; may cancel */
	int64_t timeout_ms;
} bg_pull_opts;

int bg_kernel_pull(bg_env *env, const char *name, const bg_pull_opts *o, bg_kernel_record *out);
/* progress may be NULL. */
int bg_kernel_import(bg_env *env, const char *name, const char *kernel_path, const char *initrd_path,
		     const char *config_path, const bg_progress *progress, bg_kernel_record *out);

/* ---- vmm.c: checks for the VM code ---- */
struct bg_vmm_driver;
/* The file driver d boots for k (bg_malloc'd; out may be NULL to check
 * only): the record's file when d boots it, else the alternative beside
 * it.  0, or BANGER_EUNSUPPORTED with a message saying why (wrong
 * architecture, bzImage without an extractable ELF where d boots only
 * ELF, ELF without a PVH note where d needs it and no bzImage is beside
 * it), BANGER_ENOTFOUND for missing files. */
int bg_kernel_boot_file(char **out, const bg_kernel_record *k, const struct bg_vmm_driver *d);
/* The same for a driver named vmm ("firecracker" | "qemu"; its
 * declarations only, nothing probed): the public banger_kernel_*_vmm. */
int bg_kernel_check_vmm(const bg_kernel_record *k, const char *vmm);
int bg_kernel_boot_path(char **out, const bg_kernel_record *k, const char *vmm);

#endif
