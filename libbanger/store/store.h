/*
 * Private declarations of the store: SQLite schema, migrations and the
 * durable records (vms, images, kernels).  Nothing here ever holds a
 * kernel handle (pid, tap, loop, dm): those are rediscovered.
 */
#ifndef BG_STORE_H
#define BG_STORE_H

#include "../core/core.h"

typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;

/* The store's identity: 32 lowercase hex digits, random, made when the
 * store is created.  Every VM, image and kernel directory records the id
 * of the store that made it (see "durable copies" below), so a directory
 * no row describes can be told apart: made by this store (an interrupted
 * create, safe to finish), or by another one (a lost or replaced
 * database: never removed, recovered with `banger store recover`). */
#define BG_STORE_ID_LEN 32

typedef struct {
	sqlite3 *db;
	const void *log; /* a bg_env, for logging (core.h: bg_log) */
	char id[BG_STORE_ID_LEN + 1];
	int opened_version; /* schema version found at open (0: a new file) */
} bg_store;

/* Open (creating the file and migrating as needed).  A database SQLite
 * reports corrupt (or not a database) fails with BANGER_ESTORE. */
int bg_store_open(bg_store *s, const char *path, const void *log);
/* Replace the store's id (recovery adopts the id its directories carry).
 * Runs in the caller's transaction, if any. */
int bg_store_set_id(bg_store *s, const char *id);
/* PRAGMA quick_check: BANGER_ESTORE when SQLite finds damage. */
int bg_store_quick_check(bg_store *s);
/* Number of rows in vms, images and kernels together. */
int bg_store_count_records(bg_store *s, int64_t *out);
void bg_store_close(bg_store *s);
int bg_store_schema_version(bg_store *s, int *out);

/* Write transactions start with BEGIN IMMEDIATE (a deferred transaction
 * that reads then writes gets SQLITE_BUSY without the busy handler). */
int bg_store_begin(bg_store *s);
int bg_store_commit(bg_store *s);
void bg_store_rollback(bg_store *s);

/* A write that is not done until its durable copy is: inside the
 * caller's transaction a savepoint, else an IMMEDIATE transaction of its
 * own.  end() commits (or releases) when rc is 0, else undoes the write
 * and returns rc with its error intact. */
int bg_store_unit_begin(bg_store *s, bool *own);
int bg_store_unit_end(bg_store *s, bool own, int rc);

/* Prepare a statement; errors name the SQL. */
int bg_store_prepare(bg_store *s, sqlite3_stmt **out, const char *sql);
/* Map the connection's last error to a banger error with a context. */
int bg_store_error(bg_store *s, int sqlite_rc, const char *what);
/* Execute a statement without results (bound parameters only). */
int bg_store_exec(bg_store *s, const char *sql);

/* ---- row plumbing shared by the record files ---- */
/* Bind a string, or NULL when v is NULL. */
void bg_store_bind_text(sqlite3_stmt *st, int i, const char *v);
/* Copy column i (NULL stays NULL). */
int bg_store_col_text(char **out, sqlite3_stmt *st, int i);
/* Step a statement that returns no rows, then finalize it. */
int bg_store_step_done(bg_store *s, sqlite3_stmt *st, const char *what);
/* Step st to its end, reading each row with read() into a growing array
 * of elements of size elem; finalizes st.  On failure every element read
 * so far is cleared with clear() and nothing is returned. */
typedef int (*bg_store_row_read)(sqlite3_stmt *st, void *elem);
typedef void (*bg_store_row_clear)(void *elem);
int bg_store_collect(bg_store *s, sqlite3_stmt *st, size_t elem, bg_store_row_read read,
		     bg_store_row_clear clear, const char *what, void **out, size_t *count);

/* ---- VMs: what a VM *is* (durable identity, intent, derived paths) ---- */
typedef struct bg_vm_record {
	char id[9];
	char *name, *image, *kernel, *state, *vmm;
	char *guest_ip, *mac, *dns_name;
	char *api_sock, *vsock_path, *log_path, *metrics_path;
	char *vm_dir, *overlay, *work_disk;
	char *last_error; /* NULL when none */
	uint32_t vcpus, memory_mib, vsock_cid;
	uint64_t disk_bytes;
	int nat;
	int64_t created_at, updated_at, started_at;
} bg_vm_record;

void bg_vm_record_clear(bg_vm_record *vm);
int bg_store_vm_insert(bg_store *s, const bg_vm_record *vm);
/* Update everything but id/created_at. */
int bg_store_vm_update(bg_store *s, const bg_vm_record *vm);
int bg_store_vm_set_state(bg_store *s, const char *id, const char *state, const char *last_error);
int bg_store_vm_delete(bg_store *s, const char *id);
/* Find by exact name, else by id.  BANGER_ENOTFOUND when absent. */
int bg_store_vm_get(bg_store *s, bg_vm_record *out, const char *name_or_id);
/* All VMs ordered by name; *out is an array of *count records. */
int bg_store_vm_list(bg_store *s, bg_vm_record **out, size_t *count);
void bg_vm_records_free(bg_vm_record *v, size_t count);

/* ---- kernels (store_kernels.c): one row per installed guest kernel ---- */
typedef struct bg_kernel_record {
	char *name;
	char *version;     /* kernel release, NULL when unknown */
	char *arch;        /* "x86_64", "aarch64" */
	char *format;      /* "elf" or "bzimage": format of kernel_path */
	char *kernel_path; /* <kernels>/<name>/vmlinux or .../bzImage */
	char *initrd_path; /* NULL when none */
	char *config_path; /* NULL when none */
	char *source;      /* artifact URL it was pulled from, or "import" */
	char *sha256;      /* of the pulled artifact, or of the imported kernel file */
	int64_t created_at;
} bg_kernel_record;

void bg_kernel_record_clear(bg_kernel_record *k);
void bg_kernel_records_free(bg_kernel_record *k, size_t count);
/* BANGER_EEXISTS when the name is taken. */
int bg_store_kernel_insert(bg_store *s, const bg_kernel_record *k);
/* BANGER_ENOTFOUND when absent. */
int bg_store_kernel_get(bg_store *s, bg_kernel_record *out, const char *name);
/* All kernels ordered by name. */
int bg_store_kernel_list(bg_store *s, bg_kernel_record **out, size_t *count);
/* BANGER_EBUSY (naming the VM or image) while something uses it,
 * BANGER_ENOTFOUND when absent.  Runs in the caller's transaction, if any. */
int bg_store_kernel_delete(bg_store *s, const char *name);

/* ---- images (store_images.c): one row per pulled/imported rootfs ---- */
typedef struct bg_image_record {
	char *name;
	char *ref;             /* normalized reference, or the import source */
	char *manifest_digest; /* "sha256:<hex>" */
	char *platform;        /* "linux/amd64" */
	char *config_json;     /* {"entrypoint":..,"cmd":..,"env":..,"user":..,"workdir":..} */
	char *kernel_name;     /* NULL when none */
	char *rootfs_path;     /* <images>/<name>/rootfs.ext4 */
	uint64_t rootfs_bytes;
	int has_initrd;
	int prepared;          /* banger patched the tree (first-boot init etc.) */
	int64_t created_at;
} bg_image_record;

void bg_image_record_clear(bg_image_record *r);
void bg_image_records_free(bg_image_record *r, size_t count);
/* BANGER_EEXISTS when the name is taken; BANGER_ENOTFOUND when the
 * kernel it names is not installed. */
int bg_store_image_insert(bg_store *s, const bg_image_record *r);
/* Insert, or update every column of the row with that name (VMs keep
 * referring to it). */
int bg_store_image_upsert(bg_store *s, const bg_image_record *r);
/* BANGER_ENOTFOUND when absent. */
int bg_store_image_get(bg_store *s, bg_image_record *out, const char *name);
/* All images ordered by name. */
int bg_store_image_list(bg_store *s, bg_image_record **out, size_t *count);
/* Name of one VM using the image (*vm_name NULL when none; free it). */
int bg_store_image_user(bg_store *s, const char *name, char **vm_name);
/* BANGER_EBUSY (naming the VM) while a VM uses it, BANGER_ENOTFOUND when
 * absent.  Runs in the caller's transaction, if any. */
int bg_store_image_delete(bg_store *s, const char *name);

/* ---- sessions (store_sessions.c): commands started in guests ----
 * Durable facts only: which VM, what was run, when, and the last state
 * banger saw ("starting", "running", "exited", "lost") with the exit
 * status.  The guest's pids and sockets are never stored. */
typedef struct bg_session_record {
	char *id;          /* 12 hex digits */
	char *vm_id;
	char *name;        /* NULL when none; unique per VM */
	char *command;     /* the argv as shell words, for display */
	char *state;
	int tty;
	int32_t exit_code;   /* 0..255 when exited normally, else -1 */
	int32_t exit_signal; /* signal number when killed, else 0 */
	int64_t created_at, updated_at;
	/* filled by reads, not columns of the row */
	char *vm_name;       /* NULL when the VM record is gone */
	int64_t log_size;    /* bytes of output when just refreshed, else -1 */
} bg_session_record;

void bg_session_record_clear(bg_session_record *r);
void bg_session_records_free(bg_session_record *r, size_t count);
/* BANGER_EEXISTS when the VM already has a session of that name. */
int bg_store_session_insert(bg_store *s, const bg_session_record *r);
/* By exact id, else by name (BANGER_EINVALID when several VMs have a
 * session of that name), else by a unique id prefix of at least 4
 * characters.  BANGER_ENOTFOUND when none matches. */
int bg_store_session_get(bg_store *s, bg_session_record *out, const char *id_or_name);
/* Sessions of one VM (vm_id) or all (NULL), oldest first. */
int bg_store_session_list(bg_store *s, const char *vm_id, bg_session_record **out, size_t *count);
/* Set state and exit status (exit_code -1 / exit_signal 0 when none). */
int bg_store_session_set_state(bg_store *s, const char *id, const char *state, int32_t exit_code,
			       int32_t exit_signal);
/* BANGER_ENOTFOUND when absent. */
int bg_store_session_delete(bg_store *s, const char *id);
/* Mark every starting or running session of a VM lost; *changed (may be
 * NULL) gets how many. */
int bg_store_session_mark_vm_lost(bg_store *s, const char *vm_id, int *changed);

/* ---- durable copies (durable.c) ----
 * SQLite is the index, not the only copy: every write of a VM, image or
 * kernel row also writes the record, stamped with the store id, as JSON
 * into the object's own directory (temp + fsync + rename).  A lost or
 * corrupt database is rebuilt from these (`banger store recover`). */
#define BG_VM_COPY_FILE "vm.json"
#define BG_IMAGE_COPY_FILE "image.json"
#define BG_KERNEL_COPY_FILE "kernel.json"
/* Largest copy read back; a record is a few hundred bytes. */
#define BG_COPY_MAX_BYTES (256 * 1024)

typedef enum { BG_COPY_VM, BG_COPY_IMAGE, BG_COPY_KERNEL } bg_copy_kind;

typedef struct {
	bg_copy_kind kind;
	char store_id[BG_STORE_ID_LEN + 1];
	bg_vm_record vm;         /* kind BG_COPY_VM */
	bg_image_record image;   /* kind BG_COPY_IMAGE */
	bg_kernel_record kernel; /* kind BG_COPY_KERNEL */
} bg_store_copy;

/* Write the copy of a record into its directory (vm->vm_dir, or into
 * when not NULL; the directory of image->rootfs_path, of
 * kernel->kernel_path) stamped with store_id. */
int bg_copy_write_vm(const char *store_id, const bg_vm_record *vm, const char *into);
int bg_copy_write_image(const char *store_id, const bg_image_record *r);
int bg_copy_write_kernel(const char *store_id, const bg_kernel_record *k);
/* Parse a copy (strict: types, lengths, a 32-hex store id).  On success
 * *out owns its records; free with bg_store_copy_clear(). */
int bg_copy_parse(bg_store_copy *out, const char *text, size_t len, const char *origin);
/* Read and parse <dir>/<file>.  BANGER_ENOTFOUND when there is none. */
int bg_copy_read(bg_store_copy *out, const char *dir, const char *file);
void bg_store_copy_clear(bg_store_copy *c);
/* Write the copy of every row (a store migrated from before copies). */
int bg_store_write_all_copies(bg_store *s);

#endif
