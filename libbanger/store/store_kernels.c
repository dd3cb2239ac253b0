/* The kernels table: installed guest kernels and where their files are. */
#include "store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#define KERNEL_COLUMNS \
	"name, version, arch, format, kernel_path, initrd_path, config_path, source, sha256, created_at"

void bg_kernel_record_clear(bg_kernel_record *k)
{
	if (!k)
		return;
	char **s[] = { &k->name, &k->version, &k->arch, &k->format, &k->kernel_path,
		       &k->initrd_path, &k->config_path, &k->source, &k->sha256 };
	for (size_t i = 0; i < BG_ARRAY_SIZE(s); i++)
		bg_free(*s[i]);
	memset(k, 0, sizeof(*k));
}

void bg_kernel_records_free(bg_kernel_record *k, size_t count)
{
	if (!k)
		return;
	for (size_t i = 0; i < count; i++)
		bg_kernel_record_clear(&k[i]);
	bg_free(k);
}

static int insert_row(bg_store *s, const bg_kernel_record *k)
{
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st, "INSERT INTO kernels (" KERNEL_COLUMNS ") VALUES "
				  "(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)");
	if (rc)
		return rc;
	bg_store_bind_text(st, 1, k->name);
	bg_store_bind_text(st, 2, k->version);
	bg_store_bind_text(st, 3, k->arch);
	bg_store_bind_text(st, 4, k->format);
	bg_store_bind_text(st, 5, k->kernel_path);
	bg_store_bind_text(st, 6, k->initrd_path);
	bg_store_bind_text(st, 7, k->config_path);
	bg_store_bind_text(st, 8, k->source);
	bg_store_bind_text(st, 9, k->sha256);
	sqlite3_bind_int64(st, 10, k->created_at);
	int src = sqlite3_step(st);
	if (src == SQLITE_DONE)
		rc = 0;
	else if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
		rc = bg_error(BANGER_EEXISTS, "a kernel named '%s' is already installed", k->name);
	else
		rc = bg_store_error(s, src, "record kernel");
	sqlite3_finalize(st);
	return rc ? rc : bg_copy_write_kernel(s->id, k);
}

int bg_store_kernel_insert(bg_store *s, const bg_kernel_record *k)
{
	bool own;
	int rc = bg_store_unit_begin(s, &own);
	return rc ? rc : bg_store_unit_end(s, own, insert_row(s, k));
}

static int read_row(sqlite3_stmt *st, bg_kernel_record *k)
{
	memset(k, 0, sizeof(*k));
	char **texts[] = { &k->name, &k->version, &k->arch, &k->format, &k->kernel_path,
			   &k->initrd_path, &k->config_path, &k->source, &k->sha256 };
	int rc = 0;
	for (int i = 0; i < (int)BG_ARRAY_SIZE(texts) && !rc; i++)
		rc = bg_store_col_text(texts[i], st, i);
	k->created_at = sqlite3_column_int64(st, 9);
	if (rc)
		bg_kernel_record_clear(k);
	return rc;
}

/* read_row and the clear function, for bg_store_collect */
static int read_any(sqlite3_stmt *st, void *elem)
{
	return read_row(st, elem);
}

static void clear_any(void *elem)
{
	bg_kernel_record_clear(elem);
}

int bg_store_kernel_get(bg_store *s, bg_kernel_record *out, const char *name)
{
	memset(out, 0, sizeof(*out));
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st, "SELECT " KERNEL_COLUMNS " FROM kernels WHERE name=?1");
	if (rc)
		return rc;
	bg_store_bind_text(st, 1, name);
	int src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		rc = read_row(st, out);
	else if (src == SQLITE_DONE)
		rc = bg_error(BANGER_ENOTFOUND, "no kernel named '%s' is installed", name);
	else
		rc = bg_store_error(s, src, "look up kernel");
	sqlite3_finalize(st);
	return rc;
}

int bg_store_kernel_list(bg_store *s, bg_kernel_record **out, size_t *count)
{
	*out = NULL;
	*count = 0;
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st, "SELECT " KERNEL_COLUMNS " FROM kernels ORDER BY name");
	if (rc)
		return rc;
	void *v;
	if ((rc = bg_store_collect(s, st, sizeof(bg_kernel_record), read_any, clear_any, "list kernels", &v, count)))
		return rc;
	*out = v;
	return 0;
}

/* Name the first VM or image that uses the kernel, with a count of the
 * others, so the refusal says who holds it.  0 when nothing does. */
static int check_users(bg_store *s, const char *name)
{
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st,
		"SELECT 0, 'VM', name FROM vms WHERE kernel_name=?1 "
		"UNION ALL SELECT 1, 'image', name FROM images WHERE kernel_name=?1 ORDER BY 1, 3");
	if (rc)
		return rc;
	bg_store_bind_text(st, 1, name);
	char kind[8] = "", first[256] = "";
	int users = 0, src;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		if (users++ == 0) {
			const unsigned char *k = sqlite3_column_text(st, 1);
			const unsigned char *n = sqlite3_column_text(st, 2);
			snprintf(kind, sizeof(kind), "%s", k ? (const char *)k : "?");
			snprintf(first, sizeof(first), "%s", n ? (const char *)n : "?");
		}
	}
	if (src != SQLITE_DONE)
		rc = bg_store_error(s, src, "find users of kernel");
	sqlite3_finalize(st);
	if (rc)
		return rc;
	if (users == 1)
		return bg_error(BANGER_EBUSY, "kernel '%s' is used by %s '%s'", name, kind, first);
	if (users > 1)
		return bg_error(BANGER_EBUSY, "kernel '%s' is used by %s '%s' and %d more", name, kind,
				first, users - 1);
	return 0;
}

int bg_store_kernel_delete(bg_store *s, const char *name)
{
	int rc = check_users(s, name);
	if (rc)
		return rc;
	sqlite3_stmt *st;
	if ((rc = bg_store_prepare(s, &st, "DELETE FROM kernels WHERE name=?1")))
		return rc;
	bg_store_bind_text(st, 1, name);
	int src = sqlite3_step(st);
	if (src == SQLITE_DONE)
		rc = sqlite3_changes(s->db) ? 0
			: bg_error(BANGER_ENOTFOUND, "no kernel named '%s' is installed", name);
	else if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_FOREIGNKEY)
		/* a user appeared between the check and the delete */
		rc = bg_error_lib(BANGER_EBUSY, "sqlite", SQLITE_CONSTRAINT_FOREIGNKEY,
				  "kernel '%s' is used by an image or VM", name);
	else
		rc = bg_store_error(s, src, "delete kernel record");
	sqlite3_finalize(st);
	return rc;
}
