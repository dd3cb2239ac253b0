/* The schema and its migrations, keyed by PRAGMA user_version.  Each
 * migration runs in its own IMMEDIATE transaction, so two processes that
 * open a fresh store at once apply it exactly once. */
#include "store.h"

#include <sqlite3.h>
#include <stdio.h>

static const char *const migrations[] = {
	/* 1: initial schema */
	"CREATE TABLE kernels ("
	"  name TEXT PRIMARY KEY,"
	"  version TEXT,"
	"  arch TEXT NOT NULL,"
	"  format TEXT NOT NULL CHECK (format IN ('elf','bzimage')),"
	"  kernel_path TEXT NOT NULL,"
	"  initrd_path TEXT,"
	"  config_path TEXT,"
	"  source TEXT NOT NULL,"            /* catalog URL or 'import' */
	"  sha256 TEXT,"
	"  created_at INTEGER NOT NULL"
	");"
	"CREATE TABLE images ("
	"  name TEXT PRIMARY KEY,"
	"  ref TEXT,"
	"  manifest_digest TEXT,"
	"  platform TEXT,"
	"  config_json TEXT,"                /* entrypoint, cmd, env, user, workdir */
	"  kernel_name TEXT REFERENCES kernels(name) ON DELETE RESTRICT,"
	"  rootfs_path TEXT NOT NULL,"
	"  rootfs_bytes INTEGER NOT NULL,"
	"  has_initrd INTEGER NOT NULL DEFAULT 0,"
	"  prepared INTEGER NOT NULL DEFAULT 1," /* banger patched it (first-boot etc.) */
	"  created_at INTEGER NOT NULL"
	");"
	"CREATE TABLE vms ("
	"  id TEXT PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  image_name TEXT REFERENCES images(name) ON DELETE RESTRICT,"
	"  kernel_name TEXT REFERENCES kernels(name) ON DELETE RESTRICT,"
	"  state TEXT NOT NULL,"
	"  vmm TEXT NOT NULL,"
	"  vcpus INTEGER NOT NULL,"
	"  memory_mib INTEGER NOT NULL,"
	"  disk_bytes INTEGER NOT NULL,"
	"  nat INTEGER NOT NULL DEFAULT 0,"
	"  guest_ip TEXT UNIQUE,"
	"  mac TEXT UNIQUE,"
	"  vsock_cid INTEGER UNIQUE,"
	"  dns_name TEXT,"
	"  api_socket TEXT,"
	"  vsock_path TEXT,"
	"  log_path TEXT,"
	"  metrics_path TEXT,"
	"  vm_dir TEXT,"
	"  system_overlay TEXT,"
	"  work_disk TEXT,"
	"  last_error TEXT,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  started_at INTEGER NOT NULL DEFAULT 0"
	");",
	/* 2: sessions -- commands started in guests (durable facts only; the
	 * guest's pids and sockets are rediscovered through the guest) */
	"CREATE TABLE sessions ("
	"  id TEXT PRIMARY KEY,"
	"  vm_id TEXT NOT NULL,"             /* no foreign key: a deleted VM's sessions stay, lost */
	"  name TEXT,"
	"  command TEXT NOT NULL,"
	"  tty INTEGER NOT NULL DEFAULT 0,"
	"  state TEXT NOT NULL CHECK (state IN ('starting','running','exited','lost')),"
	"  exit_code INTEGER,"
	"  exit_signal INTEGER,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  UNIQUE (vm_id, name)"
	");"
	"CREATE INDEX sessions_by_vm ON sessions(vm_id);",
	/* 3: the store's identity, stamped into every directory it makes */
	"CREATE TABLE meta ("
	"  key TEXT PRIMARY KEY,"
	"  value TEXT NOT NULL"
	");"
	"INSERT INTO meta (key, value) VALUES ('store_id', lower(hex(randomblob(16))));",
};

int bg_store_migrate(bg_store *s);

int bg_store_migrate(bg_store *s)
{
	const int target = (int)BG_ARRAY_SIZE(migrations);
	s->opened_version = -1;
	for (;;) {
		int rc = bg_store_begin(s);
		if (rc)
			return rc;
		int version = 0;
		if ((rc = bg_store_schema_version(s, &version))) {
			bg_store_rollback(s);
			return rc;
		}
		if (s->opened_version < 0)
			s->opened_version = version;
		if (version > target) {
			bg_store_rollback(s);
			return bg_error(BANGER_EUNSUPPORTED,
					"the store has schema version %d, newer than this banger knows (%d); "
					"upgrade banger", version, target);
		}
		if (version == target) {
			bg_store_rollback(s);
			return 0;
		}
		char *err = NULL;
		int src = sqlite3_exec(s->db, migrations[version], NULL, NULL, &err);
		if (src != SQLITE_OK) {
			rc = bg_error_lib(BANGER_EIO, "sqlite", src, "migration %d failed: %s",
					  version + 1, err ? err : sqlite3_errstr(src));
			sqlite3_free(err);
			bg_store_rollback(s);
			return rc;
		}
		char pragma[64];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", version + 1);
		if ((rc = bg_store_exec(s, pragma)) || (rc = bg_store_commit(s))) {
			bg_store_rollback(s);
			return rc;
		}
		bg_info(s->log, "store migrated to schema version %d", version + 1);
	}
}
