/*
 * Private declarations of the VM module: handles (what is currently true
 * about a VM), liveness, teardown, reconcile, and the lifecycle.
 */
#ifndef BG_VM_H
#define BG_VM_H

#include "../ctx/ctx.h"

/* VM states as stored in the vms row. */
#define BG_VM_CREATING "creating"
#define BG_VM_STOPPED "stopped"
#define BG_VM_STARTING "starting"
#define BG_VM_RUNNING "running"
#define BG_VM_STOPPING "stopping"
#define BG_VM_DELETING "deleting"

/* ---- handles.json (jansson, temp + fsync + rename, 0600) ---- */
int bg_handles_write(const char *path, const bg_vm_handles *h);
/* BANGER_ENOTFOUND when missing, BANGER_EINVALID (naming the problem)
 * when corrupt; *h is zeroed in both cases. */
int bg_handles_read(const char *path, bg_vm_handles *h);
int bg_handles_parse(const char *json, size_t len, bg_vm_handles *h);

/* ---- the mutex-guarded cache on the context ---- */
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

/* Remove a VM directory (rm -rf) in a way other processes cannot race:
 * it is first renamed to "<vms>/.trash-<id>-<pid>-<n>", so that nobody
 * can make its lock file again, under the old name, while it is being
 * emptied (a creator would then lock a file that is removed next).
 * Leftover trash of a killed process is swept by reconcile.  A missing
 * directory is fine. */
int bg_vm_dir_remove(const char *dir);
/* Is name a VM directory's trash name? */
bool bg_vm_dir_is_trash(const char *name);

/* ---- reconcile ---- */
typedef void (*bg_reconcile_report)(const char *subject, const char *action, void *payload);
/* Bring recorded VMs in line with the host.  With sweep, also remove
 * kernel objects carrying this state root's names that no VM owns. */
int bg_vm_reconcile(banger_ctx *ctx, bool sweep, bg_reconcile_report report, void *payload,
		    unsigned *fixed);

#endif
