/* Opening the SQLite store: WAL, foreign keys, busy timeout, migrations. */
#include "store.h"

#include <sqlite3.h>
#include <string.h>

int bg_store_migrate(bg_store *s);

/* Long enough for twenty processes to queue behind each other's short
 * transactions; a "database is locked" must never reach a user. */
#define BUSY_TIMEOUT_MS 30000

int bg_store_error(bg_store *s, int src, const char *what)
{
	int code = BANGER_EIO;
	int ext = s && s->db ? sqlite3_extended_errcode(s->db) : src;
	if (src == SQLITE_BUSY || src == SQLITE_LOCKED)
		code = BANGER_EBUSY;
	else if (src == SQLITE_NOMEM)
		code = BANGER_ENOMEM;
	else if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
		code = BANGER_EEXISTS;
	else if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
		code = BANGER_EBUSY;
	const char *msg = s && s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(src);
	return bg_error_lib(code, "sqlite", ext, "%s: %s", what, msg);
}

int bg_store_prepare(bg_store *s, sqlite3_stmt **out, const char *sql)
{
	int src = sqlite3_prepare_v2(s->db, sql, -1, out, NULL);
	if (src != SQLITE_OK)
		return bg_store_error(s, src, "prepare statement");
	return 0;
}

int bg_store_exec(bg_store *s, const char *sql)
{
	char *err = NULL;
	int src = sqlite3_exec(s->db, sql, NULL, NULL, &err);
	sqlite3_free(err);
	return src == SQLITE_OK ? 0 : bg_store_error(s, src, sql);
}

int bg_store_begin(bg_store *s)
{
	return bg_store_exec(s, "BEGIN IMMEDIATE");
}

int bg_store_commit(bg_store *s)
{
	return bg_store_exec(s, "COMMIT");
}

void bg_store_rollback(bg_store *s)
{
	if (s->db && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

int bg_store_schema_version(bg_store *s, int *out)
{
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st, "PRAGMA user_version");
	if (rc)
		return rc;
	int src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		*out = sqlite3_column_int(st, 0);
		rc = 0;
	} else {
		rc = bg_store_error(s, src, "read schema version");
	}
	sqlite3_finalize(st);
	return rc;
}

int bg_store_open(bg_store *s, const char *path, struct banger_ctx *ctx)
{
	memset(s, 0, sizeof(*s));
	s->ctx = ctx;
	int src = sqlite3_open_v2(path, &s->db,
				  SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (src != SQLITE_OK) {
		int rc = bg_store_error(s, src, path);
		bg_store_close(s);
		return rc;
	}
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	int rc;
	/* journal_mode=WAL takes a lock of its own when it converts the file,
	 * and is answered by the busy handler like any other statement. */
	if ((rc = bg_store_exec(s, "PRAGMA journal_mode = WAL")) ||
	    (rc = bg_store_exec(s, "PRAGMA foreign_keys = ON")) ||
	    (rc = bg_store_exec(s, "PRAGMA synchronous = NORMAL")) ||
	    (rc = bg_store_migrate(s))) {
		bg_error_prefix("open store %s", path);
		bg_store_close(s);
		return rc;
	}
	return 0;
}

void bg_store_close(bg_store *s)
{
	if (s && s->db) {
		sqlite3_close_v2(s->db);
		s->db = NULL;
	}
}
