/*
 * libbanger — guest kernels: the catalog, pull, import, list, remove.
 *
 * A kernel is installed under <state>/kernels/<name>/ and recorded in the
 * store.  Pull fetches a catalog (docs/kernel-catalog.md), downloads the
 * named entry's artifact, verifies its size and sha256 while streaming,
 * unpacks it and installs it atomically; import copies kernel files the
 * user built.  A failure leaves nothing installed and nothing recorded.
 *
 * Progress (progress.h): a pull reports STEP "catalog", DOWNLOAD (item 0
 * of 1: bytes of the artifact) and DOWNLOADED, STEP "unpack" and
 * "install", then DONE; an import STEP "copy" and "install", then DONE.
 * Cancelling installs and records nothing.
 */
#ifndef BANGER_KERNEL_H
#define BANGER_KERNEL_H

#include "common.h"
#include "context.h"
#include "progress.h"

BANGER_BEGIN_DECL

/* ---- the catalog ---- */

/* A fetched, validated catalog.  Opaque; read with accessors. */
typedef struct banger_kernel_catalog banger_kernel_catalog;
/* One entry of a catalog; borrowed from the catalog it came from. */
typedef struct banger_kernel_catalog_entry banger_kernel_catalog_entry;

/* Fetch and validate the catalog at catalog_url (http://, https://,
 * file:// or an absolute path); NULL means the "kernel_catalog"
 * configuration key.  A malformed catalog is BANGER_EINVALID with a
 * message naming the entry and field. */
BANGER_EXTERN(int) banger_kernel_catalog_fetch(banger_kernel_catalog **out, banger_ctx *ctx,
					       const char *catalog_url);
BANGER_EXTERN(void) banger_kernel_catalog_free(banger_kernel_catalog *catalog);
/* The URL the catalog was fetched from. */
BANGER_EXTERN(const char *) banger_kernel_catalog_url(const banger_kernel_catalog *catalog);
BANGER_EXTERN(size_t) banger_kernel_catalog_count(const banger_kernel_catalog *catalog);
/* Borrowed; NULL past the end. */
BANGER_EXTERN(const banger_kernel_catalog_entry *) banger_kernel_catalog_get(const banger_kernel_catalog *catalog,
									      size_t i);

BANGER_EXTERN(const char *) banger_kernel_catalog_entry_name(const banger_kernel_catalog_entry *e);
BANGER_EXTERN(const char *) banger_kernel_catalog_entry_version(const banger_kernel_catalog_entry *e);
BANGER_EXTERN(const char *) banger_kernel_catalog_entry_arch(const banger_kernel_catalog_entry *e);
/* The artifact URL, resolved against the catalog URL. */
BANGER_EXTERN(const char *) banger_kernel_catalog_entry_url(const banger_kernel_catalog_entry *e);
/* Lowercase hex sha256 of the artifact. */
BANGER_EXTERN(const char *) banger_kernel_catalog_entry_sha256(const banger_kernel_catalog_entry *e);
BANGER_EXTERN(const char *) banger_kernel_catalog_entry_description(const banger_kernel_catalog_entry *e);
/* "elf" or "bzimage"; NULL when the catalog does not say. */
BANGER_EXTERN(const char *) banger_kernel_catalog_entry_format(const banger_kernel_catalog_entry *e);
/* The VMMs it boots under, comma separated: "firecracker,qemu". */
BANGER_EXTERN(const char *) banger_kernel_catalog_entry_vmms(const banger_kernel_catalog_entry *e);
/* Artifact size in bytes. */
BANGER_EXTERN(uint64_t) banger_kernel_catalog_entry_size(const banger_kernel_catalog_entry *e);

/* ---- installed kernels ---- */

/* One installed kernel's record.  Opaque; strings live as long as it. */
typedef struct banger_kernel banger_kernel;
typedef struct banger_kernel_list banger_kernel_list;

/* Version 2: progress is a banger_progress_cb (progress.h); it was a
 * callback of kernels' own. */
#define BANGER_KERNEL_PULL_OPTIONS_VERSION 2

typedef struct {
	unsigned int version;        /* BANGER_KERNEL_PULL_OPTIONS_VERSION */
	const char *catalog_url;     /* NULL: the "kernel_catalog" configuration key */
	banger_progress_cb progress; /* NULL: no reports; may cancel (progress.h) */
	void *progress_payload;
	uint32_t timeout_seconds;    /* deadline of the whole download; 0: one hour */
} banger_kernel_pull_options;

#define BANGER_KERNEL_PULL_OPTIONS_INIT { BANGER_KERNEL_PULL_OPTIONS_VERSION, NULL, NULL, NULL, 0 }

BANGER_EXTERN(int) banger_kernel_pull_options_init(banger_kernel_pull_options *opts,
						   unsigned int version);

/* Pull the catalog entry called name and install it under the same name.
 * BANGER_EEXISTS when a kernel of that name is installed, BANGER_ENOTFOUND
 * when the catalog has no such entry or the server answers 404,
 * BANGER_EVERIFY on a size or sha256 mismatch, BANGER_EINVALID on a
 * malformed catalog or artifact, BANGER_ENETWORK on transfer failures.
 * out may be NULL; otherwise it receives the new record. */
BANGER_EXTERN(int) banger_kernel_pull(banger_kernel **out, banger_ctx *ctx, const char *name,
				      const banger_kernel_pull_options *opts);

/* Version 2 added progress. */
#define BANGER_KERNEL_IMPORT_OPTIONS_VERSION 2

typedef struct {
	unsigned int version;        /* BANGER_KERNEL_IMPORT_OPTIONS_VERSION */
	const char *initrd_path;     /* NULL: none */
	const char *config_path;     /* the kernel's .config; NULL: none */
	banger_progress_cb progress; /* NULL: no reports; may cancel (progress.h) */
	void *progress_payload;
} banger_kernel_import_options;

#define BANGER_KERNEL_IMPORT_OPTIONS_INIT { BANGER_KERNEL_IMPORT_OPTIONS_VERSION, NULL, NULL, NULL, NULL }

BANGER_EXTERN(int) banger_kernel_import_options_init(banger_kernel_import_options *opts,
						     unsigned int version);

/* Copy a kernel the user built (an ELF vmlinux or a bzImage; the format is
 * detected) and its optional initrd and config into the kernels directory
 * and record it as name.  From a bzImage the embedded ELF vmlinux is
 * extracted too when possible, so that Firecracker can boot it.
 * out may be NULL. */
BANGER_EXTERN(int) banger_kernel_import(banger_kernel **out, banger_ctx *ctx, const char *name,
					const char *kernel_path,
					const banger_kernel_import_options *opts);

/* Every installed kernel, ordered by name. */
BANGER_EXTERN(int) banger_kernel_list_all(banger_kernel_list **out, banger_ctx *ctx);
BANGER_EXTERN(size_t) banger_kernel_list_count(const banger_kernel_list *list);
/* Borrowed, valid until the list is freed; NULL past the end. */
BANGER_EXTERN(const banger_kernel *) banger_kernel_list_get(const banger_kernel_list *list, size_t i);
BANGER_EXTERN(void) banger_kernel_list_free(banger_kernel_list *list);

BANGER_EXTERN(int) banger_kernel_lookup(banger_kernel **out, banger_ctx *ctx, const char *name);
BANGER_EXTERN(void) banger_kernel_free(banger_kernel *kernel);

/* Remove an installed kernel (record and files).  BANGER_EBUSY, naming
 * the user, while an image or VM uses it. */
BANGER_EXTERN(int) banger_kernel_remove(banger_ctx *ctx, const char *name);

BANGER_EXTERN(const char *) banger_kernel_name(const banger_kernel *k);
/* Kernel release ("6.1.90"), NULL when unknown. */
BANGER_EXTERN(const char *) banger_kernel_version(const banger_kernel *k);
BANGER_EXTERN(const char *) banger_kernel_arch(const banger_kernel *k);
/* "elf" (vmlinux) or "bzimage": the format of banger_kernel_path(). */
BANGER_EXTERN(const char *) banger_kernel_format(const banger_kernel *k);
BANGER_EXTERN(const char *) banger_kernel_path(const banger_kernel *k);
BANGER_EXTERN(const char *) banger_kernel_initrd_path(const banger_kernel *k); /* NULL if none */
BANGER_EXTERN(const char *) banger_kernel_config_path(const banger_kernel *k); /* NULL if none */
/* The artifact URL it was pulled from, or "import". */
BANGER_EXTERN(const char *) banger_kernel_source(const banger_kernel *k);
/* sha256 of the pulled artifact, or of the imported kernel file. */
BANGER_EXTERN(const char *) banger_kernel_sha256(const banger_kernel *k);
BANGER_EXTERN(int64_t) banger_kernel_created_at(const banger_kernel *k); /* unix seconds */

/* Can vmm ("firecracker" or "qemu") boot this kernel?  0 when it can,
 * BANGER_EUNSUPPORTED with a message saying why when it cannot. */
BANGER_EXTERN(int) banger_kernel_check_vmm(const banger_kernel *k, const char *vmm);
/* The file vmm should boot (e.g. the vmlinux extracted from a bzImage for
 * Firecracker).  *out is freed with banger_free(). */
BANGER_EXTERN(int) banger_kernel_boot_path(char **out, const banger_kernel *k, const char *vmm);

BANGER_END_DECL

#endif
