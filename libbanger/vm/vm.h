/*
 * Private declarations of the VM module: handles (what is currently true
 * about a VM), liveness, teardown, reconcile, and the lifecycle.
 */
#ifndef BG_VM_H
#define BG_VM_H

#include "../env/env.h"

#include <pthread.h>

/* What is currently true about a VM: kernel handles, never stored in
 * SQLite.  Cached on the context and in <vm dir>/handles.json. */
typedef struct {
	pid_t pid;              /* VMM process, 0 when none */
	char tap[16];           /* tap device, "" when none */
	char base_loop[32];     /* read-only loop over the image (dm only) */
	char cow_loop[32];      /* loop over the COW file (dm only) */
	char dm_name[64];       /* dm-snapshot target name */
	char dm_dev[96];        /* /dev/mapper/<dm_name> */
	char overlay[16];       /* "dm-snapshot", "reflink", "copy" or "" */
	bool nat;               /* NAT rules installed */
} bg_vm_handles;

/* VM states as stored in the vms row. */
#define BG_VM_CREATING "creating"
#define BG_VM_STOPPED "stopped"
#define BG_VM_STARTING "starting"
#define BG_VM_RUNNING "running"
#define BG_VM_STOPPING "stopping"
#define BG_VM_DELETING "deleting"

/* Prefix of a VM directory being made: vms/.new-<id>-<pid> holds the
 * record and the lock file, then is renamed to vms/<id>, so a VM
 * directory never exists without its stamped record. */
#define BG_VM_STAGING_PREFIX ".new-"

/* ---- the public object (vm_info.c) ----
 * banger_vm is its own struct holding a snapshot of a record. */
/* A new banger_vm for *out holding rec's contents (rec is left empty;
 * cleared on failure). */
int bg_vm_public_new(banger_vm **out, bg_vm_record *rec);
/* The record a banger_vm holds (NULL for NULL). */
const bg_vm_record *bg_vm_public_record(const banger_vm *vm);

/* ---- handles.json (jansson, temp + fsync + rename, 0600) ---- */
int bg_handles_write(const char *path, const bg_vm_handles *h);
/* BANGER_ENOTFOUND when missing, BANGER_EINVALID (naming the problem)
 * when corrupt; *h is zeroed in both cases. */
int bg_handles_read(const char *path, bg_vm_handles *h);
int bg_handles_parse(const char *json, size_t len, bg_vm_handles *h);

/* ---- the mutex-guarded cache on the context (ctx->vms) ---- */
struct bg_vm_cache *bg_vm_cache_new(void);
void bg_vm_cache_free(struct bg_vm_cache *cache);
/* How many VMs the cache holds (tests check that it stays bounded). */
size_t bg_vm_cache_count(banger_ctx *ctx);
bool bg_handles_cache_get(banger_ctx *ctx, const char *id, bg_vm_handles *out);
int bg_handles_cache_put(banger_ctx *ctx, const char *id, const bg_vm_handles *h);
void bg_handles_cache_drop(banger_ctx *ctx, const char *id);

/* Record handles: cache and scratch file together (as each resource is
 * created, so a crash leaves a record of what exists). */
int bg_handles_save(banger_ctx *ctx, const bg_vm_record *vm, const bg_vm_handles *h);

/* Rediscover a VM's handles: the scratch file (even when the process is
 * dead, so cleanup can tear down), then /proc for the process whose
 * command line names the VM's api socket, which wins over the file.
 * A missing or corrupt scratch file is not an error: *scratch_note
 * (may be NULL) says what was wrong, and names come from the VM id. */
int bg_vm_rediscover(banger_ctx *ctx, const bg_vm_record *vm, bg_vm_handles *h,
		     char *scratch_note, size_t note_len);

/* THE liveness rule, used by every caller: state is running, the VMM
 * process exists, and its command line still names the api socket (a
 * reused pid is not alive).  *pid (may be NULL) gets the live pid. */
bool bg_vm_alive(banger_ctx *ctx, const bg_vm_record *vm, pid_t *pid);

/* Tear down every kernel object of a VM, from its handles and from the
 * deterministic names, in order: VMM process, NAT, dm target, COW loop,
 * base loop (and any loop backed by a file in the VM dir), tap, stale
 * sockets.  Tolerates "already gone"; keeps going after a failure and
 * returns the first error. */
int bg_vm_teardown(banger_ctx *ctx, const bg_vm_record *vm, const bg_vm_handles *h);

/* The VM vm_id was stopped or deleted (or found dead): its starting and
 * running sessions are lost.  A store write: sessions live above the vm
 * module, which marks them through their table, not their code. */
int bg_vm_sessions_lost(banger_ctx *ctx, const char *vm_id);

/* Remove a VM directory (rm -rf) in a way other processes cannot race:
 * it is first renamed to "<vms>/.trash-<id>-<pid>-<n>", so that nobody
 * can make its lock file again, under the old name, while it is being
 * emptied (a creator would then lock a file that is removed next).
 * Leftover trash of a killed process is swept by reconcile.  A missing
 * directory is fine. */
int bg_vm_dir_remove(const char *dir);
/* Is name a VM directory's trash name? */
bool bg_vm_dir_is_trash(const char *name);
/* Is name a VM directory being made (create.c: made under this name with
 * its record, then renamed to the VM id)? */
bool bg_vm_dir_is_staging(const char *name);

/* What a VM directory that has no row is, by its own record. */
typedef enum {
	BG_VM_DIR_ABSENT,     /* there is none */
	BG_VM_DIR_LEFTOVER,   /* this store's, never finished or being deleted */
	BG_VM_DIR_UNRECORDED, /* this store's, a whole VM: its row was lost */
	BG_VM_DIR_FOREIGN     /* another store's, or no readable record */
} bg_vm_dir_kind;
/* why (may be NULL when why_len is 0) gets a phrase for the last two. */
bg_vm_dir_kind bg_vm_dir_classify(banger_ctx *ctx, const char *id, char *why, size_t why_len);

/* ---- a lost or damaged store (recover.c) ---- */
/* BANGER_ESTORE, naming them, when the store has no records while
 * directories it did not make exist under the state root. */
int bg_store_check_not_lost(banger_ctx *ctx);

/* ---- reconcile ---- */
typedef enum {
	BG_RECONCILE_REPAIR = 0, /* settle recorded VMs; sweep when something was repaired */
	BG_RECONCILE_SWEEP = 1,  /* and remove this store's orphan objects */
	BG_RECONCILE_OPEN = 2    /* on context open: kills and deletes nothing */
} bg_reconcile_mode;
/* Bring recorded VMs in line with the host (see reconcile.c).  Every
 * object acted on or left alone is a STEP to progress (may be NULL); a
 * "stop" ends it before the next object with BANGER_ECANCELLED.  *fixed
 * (may be NULL) gets the number of corrections, also then. */
int bg_vm_reconcile(banger_ctx *ctx, bg_reconcile_mode mode, const bg_progress *progress, unsigned *fixed);

/* Names a VM is reached by, the ones its host key is pinned under:
 * "<name>.vm" and its IP (sessions use them to connect). */
void bg_vm_pin_names(const bg_vm_record *vm, const char *names[2]);

#endif
