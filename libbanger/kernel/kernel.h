/*
 * Private declarations of the kernel module: catalog fetch and parse,
 * downloads, artifact unpacking and installation, format detection,
 * bzImage → vmlinux extraction, import, and the checks the VM code runs
 * before it creates anything.
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

#include "../ctx/ctx.h"

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
/* The host's architecture as banger names it ("x86_64", "aarch64"). */
const char *bg_host_arch(void);

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
int bg_catalog_fetch(bg_catalog *out, banger_ctx *ctx, const char *url);
void bg_catalog_clear(bg_catalog *c);
const bg_catalog_entry *bg_catalog_find(const bg_catalog *c, const char *name);
/* An absolute path becomes a file:// URL; URLs are checked for a
 * supported scheme (http, https, file). */
int bg_catalog_url_normalize(char **out, const char *url_or_path);
/* Resolve ref (absolute or relative URL) against base, RFC 3986 style. */
int bg_url_resolve(char **out, const char *base, const char *ref);
/* The catalog URL to use: override, else the config key; an empty
 * result is BANGER_EINVALID saying how to configure one. */
int bg_catalog_url_for(char **out, banger_ctx *ctx, const char *override);

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
 * BANGER_EVERIFY. */
int bg_download(banger_ctx *ctx, const char *url, bg_download_req *d);

/* ---- format.c ---- */
typedef enum {
	BG_KFMT_UNKNOWN = 0,
	BG_KFMT_ELF,
	BG_KFMT_BZIMAGE
} bg_kernel_format;

typedef struct {
	bg_kernel_format format;
	const char *arch;       /* static: "x86_64", "aarch64", "i386", ... or "unknown" */
	bool elf64;
	bool pvh;               /* ELF carries XEN_ELFNOTE_PHYS32_ENTRY (PVH boot) */
	uint16_t boot_protocol; /* bzImage: 0x020f for 2.15 */
	char version[65];       /* kernel release when found, else "" */
} bg_kernel_info;

const char *bg_kernel_format_name(bg_kernel_format f); /* "elf", "bzimage", "unknown" */
/* Detect from the first bytes of a file (and, for ELF notes, offsets
 * within buf).  BANGER_EINVALID when neither ELF nor bzImage. */
int bg_kernel_detect_buf(bg_kernel_info *out, const unsigned char *buf, size_t len);
/* Detect a file: ELF headers and notes are read where they lie.  The
 * release comes from the bzImage header, or with find_release from the
 * "Linux version" banner of an ELF (which reads the whole file). */
int bg_kernel_detect_file(bg_kernel_info *out, const char *path, bool find_release);
/* Bytes an ELF image needs according to its headers (0 if not ELF). */
uint64_t bg_elf_extent(const unsigned char *buf, size_t len);

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
int bg_kernel_finish_tree(banger_ctx *ctx, bg_kernel_staging *st, bg_kernel_files *files,
			  const char *name, const char *want_format, bg_kernel_record *rec,
			  bg_kernel_info *info);
/* Under the kernels lock: refuse a recorded name, clear a stale directory
 * of the same name, rename the tree into place and record rec; undo the
 * rename if recording fails. */
int bg_kernel_commit(banger_ctx *ctx, bg_kernel_staging *st, const bg_kernel_record *rec);
/* Remove record and files; BANGER_EBUSY naming a user. */
int bg_kernel_remove(banger_ctx *ctx, const char *name);

/* ---- pull.c and import.c ---- */
typedef struct {
	const char *catalog_url;
	bg_progress progress; /* the caller's reports; may cancel */
	int64_t timeout_ms;
} bg_pull_opts;

int bg_kernel_pull(banger_ctx *ctx, const char *name, const bg_pull_opts *o, bg_kernel_record *out);
/* progress may be NULL. */
int bg_kernel_import(banger_ctx *ctx, const char *name, const char *kernel_path, const char *initrd_path,
		     const char *config_path, const bg_progress *progress, bg_kernel_record *out);

/* ---- vmm.c: checks for the VM code ---- */
/* Can vmm ("firecracker" | "qemu") boot k on this host?  0, or
 * BANGER_EUNSUPPORTED with a message saying why (wrong architecture,
 * bzImage without an extractable ELF for Firecracker, ELF without a PVH
 * note for QEMU when no bzImage is installed beside it, missing files). */
int bg_kernel_check_vmm(const bg_kernel_record *k, const char *vmm);
/* The file vmm should be given (bg_malloc'd), after the same checks. */
int bg_kernel_boot_path(char **out, const bg_kernel_record *k, const char *vmm);

#endif
