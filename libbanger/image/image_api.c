/* Public access to image records: lists, lookup, accessors, removal. */
#include "../env/env.h"
#include "image.h"

#include <errno.h>
#include <unistd.h>

struct banger_image_list {
	banger_image *images;
	size_t count;
};

BANGER_EXTERN(int) banger_image_list_all(banger_image_list **out, banger_ctx *ctx)
{
	bg_env *env = bg_env_of(ctx);
	if (!out || !env)
		return bg_error(BANGER_EINVALID, "invalid argument");
	*out = NULL;
	bg_image_record *recs = NULL;
	size_t n = 0;
	int rc = bg_store_image_list(&env->store, &recs, &n);
	if (rc)
		return rc;
	banger_image_list *l = bg_calloc(1, sizeof(*l));
	banger_image *images = bg_calloc(n ? n : 1, sizeof(*images));
	if (!l || !images) {
		bg_free(l);
		bg_free(images);
		bg_image_records_free(recs, n);
		return bg_error_oom();
	}
	for (size_t i = 0; i < n; i++)
		images[i].rec = recs[i];
	bg_free(recs); /* the strings moved */
	l->images = images;
	l->count = n;
	*out = l;
	return 0;
}

BANGER_EXTERN(size_t) banger_image_list_count(const banger_image_list *list)
{
	return list ? list->count : 0;
}

BANGER_EXTERN(const banger_image *) banger_image_list_get(const banger_image_list *list, size_t i)
{
	return list && i < list->count ? &list->images[i] : NULL;
}

BANGER_EXTERN(void) banger_image_list_free(banger_image_list *list)
{
	if (!list)
		return;
	for (size_t i = 0; i < list->count; i++)
		bg_image_record_clear(&list->images[i].rec);
	bg_free(list->images);
	bg_free(list);
}

BANGER_EXTERN(int) banger_image_lookup(banger_image **out, banger_ctx *ctx, const char *name)
{
	bg_env *env = bg_env_of(ctx);
	if (!out || !env || !name)
		return bg_error(BANGER_EINVALID, "invalid argument");
	*out = NULL;
	banger_image *img = bg_calloc(1, sizeof(*img));
	if (!img)
		return bg_error_oom();
	int rc = bg_store_image_get(&env->store, &img->rec, name);
	if (rc) {
		bg_free(img);
		return rc;
	}
	*out = img;
	return 0;
}

BANGER_EXTERN(void) banger_image_free(banger_image *image)
{
	if (!image)
		return;
	bg_image_record_clear(&image->rec);
	bg_free(image);
}

BANGER_EXTERN(int) banger_image_remove(banger_ctx *ctx, const char *name)
{
	bg_env *env = bg_env_of(ctx);
	if (!env || !name)
		return bg_error(BANGER_EINVALID, "invalid argument");
	if (!bg_image_name_valid(name))
		return bg_error(BANGER_ENOTFOUND, "no image named '%.100s'", name);
	char *lock_path = bg_layout_image_lock(&env->layout, name);
	char *dir = bg_path_join(env->layout.images_dir, name);
	bg_lock lock = BG_LOCK_INIT;
	bg_image_record rec = { 0 };
	int rc = 0;
	if (!lock_path || !dir) {
		rc = bg_error_oom();
		goto out;
	}
	/* Wait for a pull of the same name to finish. */
	if ((rc = bg_lock_acquire(&lock, lock_path, 600 * 1000)))
		goto out;
	if ((rc = bg_store_begin(&env->store)))
		goto out;
	if ((rc = bg_store_image_get(&env->store, &rec, name)) ||
	    (rc = bg_store_image_delete(&env->store, name)) || (rc = bg_store_commit(&env->store))) {
		bg_store_rollback(&env->store);
		goto out;
	}
	/* The record is gone; the files follow.  A file outside our directory
	 * (never written by banger) is left alone. */
	if (bg_remove_tree(dir) != 0)
		bg_warn(env, "image %s: removing %s: %s", name, dir, banger_error_last()->message);
	rc = 0;
out:
	bg_lock_release(&lock);
	bg_image_record_clear(&rec);
	bg_free(lock_path);
	bg_free(dir);
	return rc;
}

BANGER_EXTERN(const char *) banger_image_name(const banger_image *i) { return i ? i->rec.name : NULL; }
BANGER_EXTERN(const char *) banger_image_ref(const banger_image *i) { return i ? i->rec.ref : NULL; }
BANGER_EXTERN(const char *) banger_image_digest(const banger_image *i) { return i ? i->rec.manifest_digest : NULL; }
BANGER_EXTERN(const char *) banger_image_platform(const banger_image *i) { return i ? i->rec.platform : NULL; }
BANGER_EXTERN(const char *) banger_image_config_json(const banger_image *i) { return i ? i->rec.config_json : NULL; }
BANGER_EXTERN(const char *) banger_image_kernel(const banger_image *i) { return i ? i->rec.kernel_name : NULL; }
BANGER_EXTERN(const char *) banger_image_rootfs_path(const banger_image *i) { return i ? i->rec.rootfs_path : NULL; }
BANGER_EXTERN(uint64_t) banger_image_rootfs_bytes(const banger_image *i) { return i ? i->rec.rootfs_bytes : 0; }
BANGER_EXTERN(int) banger_image_has_initrd(const banger_image *i) { return i ? i->rec.has_initrd : 0; }
BANGER_EXTERN(int) banger_image_prepared(const banger_image *i) { return i ? i->rec.prepared : 0; }
BANGER_EXTERN(int64_t) banger_image_created_at(const banger_image *i) { return i ? i->rec.created_at : 0; }
