/* The sessions table: commands started in guests, as far as banger last
 * saw them. */
#include "store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#define SESSION_COLUMNS                                                                          \
	"s.id, s.vm_id, s.name, s.command, s.state, s.tty, s.exit_code, s.exit_signal, s.created_at, " \
	"s.updated_at, v.name"
#define SESSION_FROM " FROM sessions s LEFT JOIN vms v ON v.id = s.vm_id"

void bg_session_record_clear(bg_session_record *r)
{
	if (!r)
		return;
	char **s[] = { &r->id, &r->vm_id, &r->name, &r->command, &r->state, &r->vm_name };
	for (size_t i = 0; i < BG_ARRAY_SIZE(s); i++)
		bg_free(*s[i]);
	memset(r, 0, sizeof(*r));
	r->exit_code = -1;
	r->log_size = -1;
}

void bg_session_records_free(bg_session_record *r, size_t count)
{
	if (!r)
		return;
	for (size_t i = 0; i < count; i++)
		bg_session_record_clear(&r[i]);
	bg_free(r);
}

int bg_store_session_insert(bg_store *s, const bg_session_record *r)
{
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st,
				  "INSERT INTO sessions (id, vm_id, name, command, state, tty, exit_code, exit_signal, "
				  "created_at, updated_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?9)");
	if (rc)
		return rc;
	bg_store_bind_text(st, 1, r->id);
	bg_store_bind_text(st, 2, r->vm_id);
	bg_store_bind_text(st, 3, r->name);
	bg_store_bind_text(st, 4, r->command);
	bg_store_bind_text(st, 5, r->state);
	sqlite3_bind_int(st, 6, r->tty ? 1 : 0);
	if (r->exit_code >= 0)
		sqlite3_bind_int(st, 7, r->exit_code);
	else
		sqlite3_bind_null(st, 7);
	if (r->exit_signal > 0)
		sqlite3_bind_int(st, 8, r->exit_signal);
	else
		sqlite3_bind_null(st, 8);
	sqlite3_bind_int64(st, 9, r->created_at);
	int src = sqlite3_step(st);
	if (src == SQLITE_DONE)
		rc = 0;
	else if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_UNIQUE)
		rc = bg_error(BANGER_EEXISTS, "the VM already has a session named '%s'", r->name ? r->name : "");
	else if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
		rc = bg_error(BANGER_EEXISTS, "a session with id %s already exists", r->id);
	else
		rc = bg_store_error(s, src, "record session");
	sqlite3_finalize(st);
	return rc;
}

static int read_row(sqlite3_stmt *st, bg_session_record *r)
{
	memset(r, 0, sizeof(*r));
	int rc = bg_store_col_text(&r->id, st, 0);
	if (!rc)
		rc = bg_store_col_text(&r->vm_id, st, 1);
	if (!rc)
		rc = bg_store_col_text(&r->name, st, 2);
	if (!rc)
		rc = bg_store_col_text(&r->command, st, 3);
	if (!rc)
		rc = bg_store_col_text(&r->state, st, 4);
	r->tty = sqlite3_column_int(st, 5);
	r->exit_code = sqlite3_column_type(st, 6) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 6);
	r->exit_signal = sqlite3_column_type(st, 7) == SQLITE_NULL ? 0 : sqlite3_column_int(st, 7);
	r->created_at = sqlite3_column_int64(st, 8);
	r->updated_at = sqlite3_column_int64(st, 9);
	if (!rc)
		rc = bg_store_col_text(&r->vm_name, st, 10);
	r->log_size = -1;
	if (rc)
		bg_session_record_clear(r);
	return rc;
}

/* read_row and the clear function, for bg_store_collect */
static int read_any(sqlite3_stmt *st, void *elem)
{
	return read_row(st, elem);
}

static void clear_any(void *elem)
{
	bg_session_record_clear(elem);
}

/* Run a query expected to give at most a few rows; *n gets how many
 * matched, out the first. */
static int query_one(bg_store *s, const char *sql, const char *arg, bg_session_record *out, int *n)
{
	*n = 0;
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st, sql);
	if (rc)
		return rc;
	bg_store_bind_text(st, 1, arg);
	int src;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		if ((*n)++ == 0 && (rc = read_row(st, out)))
			break;
	}
	if (!rc && src != SQLITE_DONE)
		rc = bg_store_error(s, src, "look up session");
	sqlite3_finalize(st);
	if (rc && *n > 0 && out->id)
		bg_session_record_clear(out);
	return rc;
}

int bg_store_session_get(bg_store *s, bg_session_record *out, const char *key)
{
	memset(out, 0, sizeof(*out));
	out->exit_code = -1;
	out->log_size = -1;
	if (!key || !*key)
		return bg_error(BANGER_EINVALID, "no session id or name given");
	int n, rc = query_one(s, "SELECT " SESSION_COLUMNS SESSION_FROM " WHERE s.id = ?1", key, out, &n);
	if (rc || n == 1)
		return rc;
	if ((rc = query_one(s, "SELECT " SESSION_COLUMNS SESSION_FROM " WHERE s.name = ?1 ORDER BY s.created_at",
			    key, out, &n)))
		return rc;
	if (n == 1)
		return 0;
	if (n > 1) {
		bg_session_record_clear(out);
		return bg_error(BANGER_EINVALID, "several VMs have a session named '%s': use its id", key);
	}
	size_t len = strlen(key);
	bool hex = len >= 4 && strspn(key, "0123456789abcdef") == len;
	if (hex) {
		char *pat = bg_sprintf("%s*", key);
		if (!pat)
			return bg_error_oom();
		rc = query_one(s, "SELECT " SESSION_COLUMNS SESSION_FROM " WHERE s.id GLOB ?1", pat, out, &n);
		bg_free(pat);
		if (rc || n == 1)
			return rc;
		if (n > 1) {
			bg_session_record_clear(out);
			return bg_error(BANGER_EINVALID, "'%s' is the start of several session ids", key);
		}
	}
	return bg_error(BANGER_ENOTFOUND, "no session '%s'", key);
}

int bg_store_session_list(bg_store *s, const char *vm_id, bg_session_record **out, size_t *count)
{
	*out = NULL;
	*count = 0;
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st,
				  "SELECT " SESSION_COLUMNS SESSION_FROM
				  " WHERE ?1 IS NULL OR s.vm_id = ?1 ORDER BY s.created_at, s.id");
	if (rc)
		return rc;
	bg_store_bind_text(st, 1, vm_id);
	void *v;
	if ((rc = bg_store_collect(s, st, sizeof(bg_session_record), read_any, clear_any, "list sessions", &v, count)))
		return rc;
	*out = v;
	return 0;
}

int bg_store_session_set_state(bg_store *s, const char *id, const char *state, int32_t exit_code,
			       int32_t exit_signal)
{
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st,
				  "UPDATE sessions SET state=?2, exit_code=?3, exit_signal=?4, updated_at=?5 WHERE id=?1");
	if (rc)
		return rc;
	bg_store_bind_text(st, 1, id);
	bg_store_bind_text(st, 2, state);
	if (exit_code >= 0)
		sqlite3_bind_int(st, 3, exit_code);
	else
		sqlite3_bind_null(st, 3);
	if (exit_signal > 0)
		sqlite3_bind_int(st, 4, exit_signal);
	else
		sqlite3_bind_null(st, 4);
	sqlite3_bind_int64(st, 5, bg_wall_seconds());
	int src = sqlite3_step(st);
	if (src == SQLITE_DONE)
		rc = sqlite3_changes(s->db) ? 0 : bg_error(BANGER_ENOTFOUND, "no session '%s'", id);
	else
		rc = bg_store_error(s, src, "update session");
	sqlite3_finalize(st);
	return rc;
}

int bg_store_session_delete(bg_store *s, const char *id)
{
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st, "DELETE FROM sessions WHERE id=?1");
	if (rc)
		return rc;
	bg_store_bind_text(st, 1, id);
	int src = sqlite3_step(st);
	if (src == SQLITE_DONE)
		rc = sqlite3_changes(s->db) ? 0 : bg_error(BANGER_ENOTFOUND, "no session '%s'", id);
	else
		rc = bg_store_error(s, src, "delete session");
	sqlite3_finalize(st);
	return rc;
}

int bg_store_session_mark_vm_lost(bg_store *s, const char *vm_id, int *changed)
{
	if (changed)
		*changed = 0;
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st,
				  "UPDATE sessions SET state='lost', updated_at=?2 "
				  "WHERE vm_id=?1 AND state IN ('starting','running')");
	if (rc)
		return rc;
	bg_store_bind_text(st, 1, vm_id);
	sqlite3_bind_int64(st, 2, bg_wall_seconds());
	int src = sqlite3_step(st);
	if (src == SQLITE_DONE) {
		if (changed)
			*changed = sqlite3_changes(s->db);
		rc = 0;
	} else {
		rc = bg_store_error(s, src, "mark sessions lost");
	}
	sqlite3_finalize(st);
	return rc;
}
