/* The public kernel API (include/banger/kernel.h): argument checks and
 * options, over the module's internals. */
#include "kernel.h"

#include <string.h>

/* ---- catalog ---- */

BANGER_EXTERN(int) banger_kernel_catalog_fetch(banger_kernel_catalog **out, banger_ctx *ctx,
					       const char *catalog_url)
{
	bg_env *env = bg_env_of(ctx);
	if (!out || !env)
		return bg_error(BANGER_EINVALID, "invalid argument");
	*out = NULL;
	char *url = NULL;
	int rc = bg_catalog_url_for(&url, env, catalog_url);
	if (rc)
		return rc;
	bg_catalog *c = bg_calloc(1, sizeof(*c));
	if (!c) {
		bg_free(url);
		return bg_error_oom();
	}
	rc = bg_catalog_fetch(c, env, url);
	bg_free(url);
	if (rc) {
		bg_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

BANGER_EXTERN(void) banger_kernel_catalog_free(banger_kernel_catalog *catalog)
{
	if (!catalog)
		return;
	bg_catalog_clear(catalog);
	bg_free(catalog);
}

BANGER_EXTERN(const char *) banger_kernel_catalog_url(const banger_kernel_catalog *catalog)
{
	return catalog ? catalog->url : NULL;
}

BANGER_EXTERN(size_t) banger_kernel_catalog_count(const banger_kernel_catalog *catalog)
{
	return catalog ? catalog->count : 0;
}

BANGER_EXTERN(const banger_kernel_catalog_entry *)
banger_kernel_catalog_get(const banger_kernel_catalog *catalog, size_t i)
{
	return catalog && i < catalog->count ? &catalog->entries[i] : NULL;
}

#define ENTRY_STR(fn, field) \
	BANGER_EXTERN(const char *) fn(const banger_kernel_catalog_entry *e) { return e ? e->field : NULL; }

ENTRY_STR(banger_kernel_catalog_entry_name, name)
ENTRY_STR(banger_kernel_catalog_entry_version, version)
ENTRY_STR(banger_kernel_catalog_entry_arch, arch)
ENTRY_STR(banger_kernel_catalog_entry_url, url)
ENTRY_STR(banger_kernel_catalog_entry_sha256, sha256)
ENTRY_STR(banger_kernel_catalog_entry_description, description)
ENTRY_STR(banger_kernel_catalog_entry_format, format)
ENTRY_STR(banger_kernel_catalog_entry_vmms, vmms)

BANGER_EXTERN(uint64_t) banger_kernel_catalog_entry_size(const banger_kernel_catalog_entry *e)
{
	return e ? e->size : 0;
}

/* ---- pull and import ---- */

BANGER_EXTERN(int) banger_kernel_pull_options_init(banger_kernel_pull_options *opts, unsigned int version)
{
	static const banger_kernel_pull_options def = BANGER_KERNEL_PULL_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_kernel_pull_options", version, BANGER_KERNEL_PULL_OPTIONS_VERSION,
			       BANGER_KERNEL_PULL_OPTIONS_VERSION);
}

BANGER_EXTERN(int) banger_kernel_import_options_init(banger_kernel_import_options *opts, unsigned int version)
{
	static const banger_kernel_import_options def = BANGER_KERNEL_IMPORT_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_kernel_import_options", version, BANGER_KERNEL_IMPORT_OPTIONS_VERSION,
			       BANGER_KERNEL_IMPORT_OPTIONS_VERSION);
}

/* The public object is a snapshot the caller owns, not the store's row:
 * the store knows nothing of it, and either can change alone. */
struct banger_kernel {
	bg_kernel_record rec;
};

/* Hand a finished record to the caller (or drop it when out is NULL). */
static int give(banger_kernel **out, bg_kernel_record *rec)
{
	if (!out) {
		bg_kernel_record_clear(rec);
		return 0;
	}
	banger_kernel *k = bg_malloc(sizeof(*k));
	if (!k) {
		/* installed and recorded: report success without the copy would
		 * mislead, so say what happened */
		bg_kernel_record_clear(rec);
		return bg_error(BANGER_ENOMEM, "out of memory after the kernel was installed");
	}
	k->rec = *rec;
	memset(rec, 0, sizeof(*rec));
	*out = k;
	return 0;
}

BANGER_EXTERN(int) banger_kernel_pull(banger_kernel **out, banger_ctx *ctx, const char *name,
				      const banger_kernel_pull_options *opts)
{
	bg_env *env = bg_env_of(ctx);
	if (out)
		*out = NULL;
	if (!env || !name)
		return bg_error(BANGER_EINVALID, "invalid argument");
	banger_kernel_pull_options def = BANGER_KERNEL_PULL_OPTIONS_INIT;
	int rc = BG_OPTIONS_CHECK(opts, &def, banger_kernel_pull_options, BANGER_KERNEL_PULL_OPTIONS_VERSION,
				  BANGER_KERNEL_PULL_OPTIONS_VERSION);
	if (rc)
		return rc;
	bg_pull_opts o = {
		.catalog_url = opts->catalog_url,
		.progress = { opts->progress, opts->progress_payload, BANGER_PROGRESS_OP_KERNEL_PULL, name },
		.timeout_ms = (int64_t)opts->timeout_seconds * 1000,
	};
	bg_kernel_record rec;
	rc = bg_kernel_pull(env, name, &o, &rec);
	return rc ? rc : give(out, &rec);
}

BANGER_EXTERN(int) banger_kernel_import(banger_kernel **out, banger_ctx *ctx, const char *name,
					const char *kernel_path, const banger_kernel_import_options *opts)
{
	bg_env *env = bg_env_of(ctx);
	if (out)
		*out = NULL;
	if (!env || !name || !kernel_path)
		return bg_error(BANGER_EINVALID, "invalid argument");
	banger_kernel_import_options def = BANGER_KERNEL_IMPORT_OPTIONS_INIT;
	int rc = BG_OPTIONS_CHECK(opts, &def, banger_kernel_import_options, BANGER_KERNEL_IMPORT_OPTIONS_VERSION,
				  BANGER_KERNEL_IMPORT_OPTIONS_VERSION);
	if (rc)
		return rc;
	bg_kernel_record rec;
	bg_progress p = { opts->progress, opts->progress_payload, BANGER_PROGRESS_OP_KERNEL_IMPORT, name };
	rc = bg_kernel_import(env, name, kernel_path, opts->initrd_path, opts->config_path, &p, &rec);
	return rc ? rc : give(out, &rec);
}

/* ---- installed kernels ---- */

struct banger_kernel_list {
	banger_kernel *kernels;
	size_t count;
};

BANGER_EXTERN(int) banger_kernel_list_all(banger_kernel_list **out, banger_ctx *ctx)
{
	bg_env *env = bg_env_of(ctx);
	if (!out || !env)
		return bg_error(BANGER_EINVALID, "invalid argument");
	*out = NULL;
	bg_kernel_record *recs = NULL;
	size_t n = 0;
	int rc = bg_store_kernel_list(&env->store, &recs, &n);
	if (rc)
		return rc;
	banger_kernel_list *l = bg_calloc(1, sizeof(*l));
	banger_kernel *kernels = bg_calloc(n ? n : 1, sizeof(*kernels));
	if (!l || !kernels) {
		bg_free(l);
		bg_free(kernels);
		bg_kernel_records_free(recs, n);
		return bg_error_oom();
	}
	for (size_t i = 0; i < n; i++)
		kernels[i].rec = recs[i];
	bg_free(recs); /* the strings moved */
	l->kernels = kernels;
	l->count = n;
	*out = l;
	return 0;
}

BANGER_EXTERN(size_t) banger_kernel_list_count(const banger_kernel_list *list)
{
	return list ? list->count : 0;
}

BANGER_EXTERN(const banger_kernel *) banger_kernel_list_get(const banger_kernel_list *list, size_t i)
{
	return list && i < list->count ? &list->kernels[i] : NULL;
}

BANGER_EXTERN(void) banger_kernel_list_free(banger_kernel_list *list)
{
	if (!list)
		return;
	for (size_t i = 0; i < list->count; i++)
		bg_kernel_record_clear(&list->kernels[i].rec);
	bg_free(list->kernels);
	bg_free(list);
}

BANGER_EXTERN(int) banger_kernel_lookup(banger_kernel **out, banger_ctx *ctx, const char *name)
{
	bg_env *env = bg_env_of(ctx);
	if (!out || !env || !name)
		return bg_error(BANGER_EINVALID, "invalid argument");
	*out = NULL;
	banger_kernel *k = bg_calloc(1, sizeof(*k));
	if (!k)
		return bg_error_oom();
	int rc = bg_store_kernel_get(&env->store, &k->rec, name);
	if (rc) {
		bg_free(k);
		return rc;
	}
	*out = k;
	return 0;
}

BANGER_EXTERN(void) banger_kernel_free(banger_kernel *kernel)
{
	if (!kernel)
		return;
	bg_kernel_record_clear(&kernel->rec);
	bg_free(kernel);
}

BANGER_EXTERN(int) banger_kernel_remove(banger_ctx *ctx, const char *name)
{
	bg_env *env = bg_env_of(ctx);
	if (!env || !name)
		return bg_error(BANGER_EINVALID, "invalid argument");
	return bg_kernel_remove(env, name);
}

#define KERNEL_STR(fn, field) \
	BANGER_EXTERN(const char *) fn(const banger_kernel *k) { return k ? k->rec.field : NULL; }

KERNEL_STR(banger_kernel_name, name)
KERNEL_STR(banger_kernel_version, version)
KERNEL_STR(banger_kernel_arch, arch)
KERNEL_STR(banger_kernel_format, format)
KERNEL_STR(banger_kernel_path, kernel_path)
KERNEL_STR(banger_kernel_initrd_path, initrd_path)
KERNEL_STR(banger_kernel_config_path, config_path)
KERNEL_STR(banger_kernel_source, source)
KERNEL_STR(banger_kernel_sha256, sha256)

BANGER_EXTERN(int64_t) banger_kernel_created_at(const banger_kernel *k)
{
	return k ? k->rec.created_at : 0;
}

BANGER_EXTERN(int) banger_kernel_check_vmm(const banger_kernel *k, const char *vmm)
{
	return bg_kernel_check_vmm(k ? &k->rec : NULL, vmm);
}

BANGER_EXTERN(int) banger_kernel_boot_path(char **out, const banger_kernel *k, const char *vmm)
{
	if (!out)
		return bg_error(BANGER_EINVALID, "invalid argument");
	return bg_kernel_boot_path(out, k ? &k->rec : NULL, vmm);
}
