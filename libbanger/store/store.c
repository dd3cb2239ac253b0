/* Opening the SQLite store: WAL, foreign keys, busy timeout, migrations. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int bg_store_migrate(bg_store *s);

/* Long enough for twenty processes to queue behind each other's short
 * transactions; a "database is locked" must never reach a user. */
#define BUSY_TIMEOUT_MS 30000

int bg_store_error(bg_store *s, int src, const char *what)
{
	int code = BANGER_EIO;
	int ext = s && s->db ? sqlite3_extended_errcode(s->db) : src;
	if (src == SQLITE_CORRUPT || src == SQLITE_NOTADB) {
		const char *msg = s && s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(src);
		return bg_error_lib(BANGER_ESTORE, "sqlite", ext,
				    "%s: %s: the database is damaged; nothing was changed: run "
				    "`banger store recover` (it keeps the damaged file aside and rebuilds "
				    "the records from the VM, image and kernel directories)", what, msg);
	}
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

int bg_store_unit_begin(bg_store *s, bool *own)
{
	*own = sqlite3_get_autocommit(s->db) != 0;
	return *own ? bg_store_begin(s) : bg_store_exec(s, "SAVEPOINT bg_unit");
}

int bg_store_unit_end(bg_store *s, bool own, int rc)
{
	if (rc == 0) {
		rc = bg_store_exec(s, own ? "COMMIT" : "RELEASE bg_unit");
		if (rc == 0)
			return 0;
	}
	bg_error_saved saved;
	bg_error_save(&saved);
	if (own) {
		bg_store_rollback(s);
	} else {
		sqlite3_exec(s->db, "ROLLBACK TO bg_unit", NULL, NULL, NULL);
		sqlite3_exec(s->db, "RELEASE bg_unit", NULL, NULL, NULL);
	}
	bg_error_restore(&saved);
	return rc;
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

/* The database holds every VM's paths, addresses and errors: 0600, like
 * the rest of the state root.  SQLite creates a new file with 0644 (less
 * the umask) and its -wal and -shm files with the database's mode, so the
 * file is made here first; an older one is tightened. */
static int private_db_file(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return bg_error_os(bg_code_from_errno(errno), errno, "open store %s", path);
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) != 0)
		rc = bg_error_os(BANGER_EIO, errno, "stat %s", path);
	else if ((st.st_mode & 077) && fchmod(fd, 0600) != 0)
		rc = bg_error_os(BANGER_EPERM, errno, "chmod 0600 %s", path);
	close(fd);
	for (int i = 0; rc == 0 && i < 2; i++) {
		char *side = bg_sprintf("%s%s", path, i ? "-shm" : "-wal");
		if (!side)
			return bg_error_oom();
		if (lstat(side, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077))
			chmod(side, 0600);
		bg_free(side);
	}
	return rc;
}

static int load_id(bg_store *s)
{
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st, "SELECT value FROM meta WHERE key='store_id'");
	if (rc)
		return rc;
	int src = sqlite3_step(st);
	const unsigned char *v = src == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
	if (v && strlen((const char *)v) == BG_STORE_ID_LEN)
		memcpy(s->id, v, BG_STORE_ID_LEN + 1);
	else if (src == SQLITE_ROW || src == SQLITE_DONE)
		rc = bg_error(BANGER_ESTORE, "the store has no valid identity: run `banger store recover`");
	else
		rc = bg_store_error(s, src, "read the store id");
	sqlite3_finalize(st);
	return rc;
}

int bg_store_set_id(bg_store *s, const char *id)
{
	if (!id || strlen(id) != BG_STORE_ID_LEN || strspn(id, "0123456789abcdef") != BG_STORE_ID_LEN)
		return bg_error(BANGER_EINVALID, "invalid store id");
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st, "UPDATE meta SET value=?1 WHERE key='store_id'");
	if (rc)
		return rc;
	bg_store_bind_text(st, 1, id);
	if ((rc = bg_store_step_done(s, st, "set the store id")))
		return rc;
	memcpy(s->id, id, BG_STORE_ID_LEN + 1);
	return 0;
}

int bg_store_quick_check(bg_store *s)
{
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st, "PRAGMA quick_check");
	if (rc)
		return rc;
	int src = sqlite3_step(st);
	const unsigned char *v = src == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
	if (src == SQLITE_ROW && (!v || strcmp((const char *)v, "ok") != 0))
		rc = bg_error(BANGER_ESTORE, "the database is damaged: %s", v ? (const char *)v : "?");
	else if (src != SQLITE_ROW)
		rc = bg_store_error(s, src, "check the database");
	sqlite3_finalize(st);
	return rc;
}

int bg_store_count_records(bg_store *s, int64_t *out)
{
	sqlite3_stmt *st;
	int rc = bg_store_prepare(s, &st, "SELECT (SELECT count(*) FROM vms) + (SELECT count(*) FROM images) + "
				  "(SELECT count(*) FROM kernels)");
	if (rc)
		return rc;
	int src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else
		rc = bg_store_error(s, src, "count records");
	sqlite3_finalize(st);
	return rc;
}

int bg_store_open(bg_store *s, const char *path, const void *log)
{
	memset(s, 0, sizeof(*s));
	s->log = log;
	if (strcmp(path, ":memory:") != 0) {
		int prc = private_db_file(path);
		if (prc)
			return prc;
	}
	int src = sqlite3_open_v2(path, &s->db,
				  SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (src != SQLITE_OK) {
		int rc = bg_store_error(s, src, path);
		bg_store_close(s);
		return rc;
	}
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	/* Converting a brand-new file to WAL while another process does the
	 * same can answer SQLITE_BUSY without consulting the busy handler
	 * (the WAL index is being set up), so the setup is retried with a
	 * deadline; on a store that exists it succeeds at once. */
	int rc;
	int64_t deadline = bg_now_ms() + BUSY_TIMEOUT_MS;
	for (int delay = 5;; delay = delay < 200 ? delay * 2 : 200) {
		if ((rc = bg_store_exec(s, "PRAGMA journal_mode = WAL")) == 0 &&
		    (rc = bg_store_exec(s, "PRAGMA foreign_keys = ON")) == 0 &&
		    (rc = bg_store_exec(s, "PRAGMA synchronous = NORMAL")) == 0 &&
		    (rc = bg_store_migrate(s)) == 0 && (rc = load_id(s)) == 0) {
			/* A store from before durable copies: give every directory
			 * its record now, so a later loss can be recovered. */
			if (s->opened_version > 0 && s->opened_version < 3 && bg_store_write_all_copies(s)) {
				bg_warn(log, "could not write every durable record: %s", banger_error_last()->message);
				banger_error_clear();
			}
			return 0;
		}
		if (rc != BANGER_EBUSY || bg_now_ms() >= deadline)
			break;
		bg_sleep_ms(delay);
	}
	bg_error_prefix("open store %s", path);
	bg_store_close(s);
	return rc;
}

void bg_store_close(bg_store *s)
{
	if (s && s->db) {
		sqlite3_close_v2(s->db);
		s->db = NULL;
	}
}

void bg_store_bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

int bg_store_col_text(char **out, sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	if (!t) {
		*out = NULL;
		return 0;
	}
	*out = bg_strdup((const char *)t);
	return *out ? 0 : bg_error_oom();
}

int bg_store_step_done(bg_store *s, sqlite3_stmt *st, const char *what)
{
	int src = sqlite3_step(st);
	int rc = src == SQLITE_DONE ? 0 : bg_store_error(s, src, what);
	sqlite3_finalize(st);
	return rc;
}

int bg_store_collect(bg_store *s, sqlite3_stmt *st, size_t elem, bg_store_row_read read,
		     bg_store_row_clear clear, const char *what, void **out, size_t *count)
{
	*out = NULL;
	*count = 0;
	char *v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0, src;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			char *nv = bg_realloc(v, ncap * elem);
			if (!nv) {
				rc = bg_error_oom();
				break;
			}
			v = nv;
			cap = ncap;
		}
		if ((rc = read(st, v + n * elem)))
			break;
		n++;
	}
	if (!rc && src != SQLITE_DONE)
		rc = bg_store_error(s, src, what);
	sqlite3_finalize(st);
	if (rc) {
		for (size_t i = 0; i < n; i++)
			clear(v + i * elem);
		bg_free(v);
		return rc;
	}
	*out = v;
	*count = n;
	return 0;
}
