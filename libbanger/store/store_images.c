/* The images table: pulled or imported root filesystems and their origin. */
#include "store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#define IMAGE_COLUMNS \
	"name, ref, manifest_digest, platform, config_json, kernel_name, rootfs_path, " \
	"rootfs_bytes, has_initrd, prepared, created_at"

void bg_image_record_clear(bg_image_record *r)
{
	if (!r)
		return;
	char **s[] = { &r->name, &r->ref, &r->manifest_digest, &r->platform, &r->config_json,
		       &r->kernel_name, &r->rootfs_path };
	for (size_t i = 0; i < BG_ARRAY_SIZE(s); i++)
		bg_free(*s[i]);
	memset(r, 0, sizeof(*r));
}

void bg_image_records_free(bg_image_record *r, size_t count)
{
	if (!r)
		return;
	for (size_t i = 0; i < count; i++)
		bg_image_record_clear(&r[i]);
	bg_free(r);
}

static void bind_all(sqlite3_stmt *st, const bg_image_record *r)
{
	bg_store_bind_text(st, 1, r->name);
	bg_store_bind_text(st, 2, r->ref);
	bg_store_bind_text(st, 3, r->manifest_digest);
	bg_store_bind_text(st, 4, r->platform);
	bg_store_bind_text(st, 5, r->config_json);
	bg_store_bind_text(st, 6, r->kernel_name);
	bg_store_bind_text(st, 7, r->rootfs_path);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)r->rootfs_bytes);
	sqlite3_bind_int(st, 9, r->has_initrd ? 1 : 0);
	sqlite3_bind_int(st, 10, r->prepared ? 1 : 0);
	sqlite3_bind_int64(st, 11, r->created_at);
}

static int write_row(bg_store *s, const bg_image_record *r, const char *sql)
{
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st, sql);
	if (rc)
		return rc;
	bind_all(st, r);
	int src = sqlite3_step(st);
	int ext = sqlite3_extended_errcode(s->db);
	if (src == SQLITE_DONE)
		rc = 0;
	else if (ext == SQLITE_CONSTRAINT_PRIMARYKEY)
		rc = bg_error(BANGER_EEXISTS, "an image named '%s' exists", r->name);
	else if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
		rc = bg_error_lib(BANGER_ENOTFOUND, "sqlite", ext, "no kernel named '%s' is installed",
				  r->kernel_name ? r->kernel_name : "?");
	else
		rc = bg_store_error(s, src, "record image");
	sqlite3_finalize(st);
	return rc ? rc : bg_copy_write_image(s->id, r);
}

static int write_unit(bg_store *s, const bg_image_record *r, const char *sql)
{
	bool own;
	int rc = bg_store_unit_begin(s, &own);
	return rc ? rc : bg_store_unit_end(s, own, write_row(s, r, sql));
}

int bg_store_image_insert(bg_store *s, const bg_image_record *r)
{
	return write_unit(s, r, "INSERT INTO images (" IMAGE_COLUMNS ") VALUES "
			 "(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)");
}

int bg_store_image_upsert(bg_store *s, const bg_image_record *r)
{
	return write_unit(s, r, "INSERT INTO images (" IMAGE_COLUMNS ") VALUES "
			 "(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11) ON CONFLICT(name) DO UPDATE SET "
			 "ref=excluded.ref, manifest_digest=excluded.manifest_digest, "
			 "platform=excluded.platform, config_json=excluded.config_json, "
			 "kernel_name=excluded.kernel_name, rootfs_path=excluded.rootfs_path, "
			 "rootfs_bytes=excluded.rootfs_bytes, has_initrd=excluded.has_initrd, "
			 "prepared=excluded.prepared, created_at=excluded.created_at");
}

static int read_row(sqlite3_stmt *st, bg_image_record *r)
{
	memset(r, 0, sizeof(*r));
	char **texts[] = { &r->name, &r->ref, &r->manifest_digest, &r->platform, &r->config_json,
			   &r->kernel_name, &r->rootfs_path };
	int rc = 0;
	for (int i = 0; i < (int)BG_ARRAY_SIZE(texts) && !rc; i++)
		rc = bg_store_col_text(texts[i], st, i);
	r->rootfs_bytes = (uint64_t)sqlite3_column_int64(st, 7);
	r->has_initrd = sqlite3_column_int(st, 8);
	r->prepared = sqlite3_column_int(st, 9);
	r->created_at = sqlite3_column_int64(st, 10);
	if (rc)
		bg_image_record_clear(r);
	return rc;
}

/* read_row and the clear function, for bg_store_collect */
static int read_any(sqlite3_stmt *st, void *elem)
{
	return read_row(st, elem);
}

static void clear_any(void *elem)
{
	bg_image_record_clear(elem);
}

int bg_store_image_get(bg_store *s, bg_image_record *out, const char *name)
{
	memset(out, 0, sizeof(*out));
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st, "SELECT " IMAGE_COLUMNS " FROM images WHERE name=?1");
	if (rc)
		return rc;
	bg_store_bind_text(st, 1, name);
	int src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		rc = read_row(st, out);
	else if (src == SQLITE_DONE)
		rc = bg_error(BANGER_ENOTFOUND, "no image named '%s'", name);
	else
		rc = bg_store_error(s, src, "look up image");
	sqlite3_finalize(st);
	return rc;
}

int bg_store_image_list(bg_store *s, bg_image_record **out, size_t *count)
{
	*out = NULL;
	*count = 0;
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st, "SELECT " IMAGE_COLUMNS " FROM images ORDER BY name");
	if (rc)
		return rc;
	void *v;
	if ((rc = bg_store_collect(s, st, sizeof(bg_image_record), read_any, clear_any, "list images", &v, count)))
		return rc;
	*out = v;
	return 0;
}

int bg_store_image_user(bg_store *s, const char *name, char **vm_name)
{
	*vm_name = NULL;
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st, "SELECT name FROM vms WHERE image_name=?1 ORDER BY name LIMIT 1");
	if (rc)
		return rc;
	bg_store_bind_text(st, 1, name);
	int src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		rc = bg_store_col_text(vm_name, st, 0);
	else if (src != SQLITE_DONE)
		rc = bg_store_error(s, src, "find VMs using image");
	sqlite3_finalize(st);
	return rc;
}

int bg_store_image_delete(bg_store *s, const char *name)
{
	char *vm = NULL;
	int rc = bg_store_image_user(s, name, &vm);
	if (rc)
		return rc;
	if (vm) {
		rc = bg_error(BANGER_EBUSY, "image '%s' is used by VM '%s'", name, vm);
		bg_free(vm);
		return rc;
	}
	sqlite3_stmt *st;
	if ((rc = bg_store_prepare(s, &st, "DELETE FROM images WHERE name=?1")))
		return rc;
	bg_store_bind_text(st, 1, name);
	int src = sqlite3_step(st);
	if (src == SQLITE_DONE)
		rc = sqlite3_changes(s->db) ? 0 : bg_error(BANGER_ENOTFOUND, "no image named '%s'", name);
	else if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_FOREIGNKEY)
		/* a VM appeared between the check and the delete */
		rc = bg_error_lib(BANGER_EBUSY, "sqlite", SQLITE_CONSTRAINT_FOREIGNKEY,
				  "image '%s' is used by a VM", name);
	else
		rc = bg_store_error(s, src, "delete image record");
	sqlite3_finalize(st);
	return rc;
}
