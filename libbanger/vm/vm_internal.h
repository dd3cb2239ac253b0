/*
 * Internals shared by the lifecycle operations (create.c, boot.c,
 * lifecycle.c, exec.c, set.c, stats.c): one "operation" bundles a VM's
 * record with everything needed to boot or stop it.
 */
#ifndef BG_VM_INTERNAL_H
#define BG_VM_INTERNAL_H

#include "vm.h"
#include "../guest/agent.h"
#include "../vmm/vmm.h"

typedef struct {
	banger_ctx *ctx;
	bg_vm_record vm;
	bg_image_record image;
	bg_kernel_record kernel;
	bg_vmm_driver driver;
	bool driver_ok;
	bg_vm_paths paths;
	bg_lock lock;
	char host_ip[16];
	char *kernel_path;   /* the file the VMM gets */
	char *cmdline;
	bg_vm_spec spec;
	bg_progress progress; /* the caller's callback (bg_vm_op_progress) */
} bg_vm_op;

/* Look the VM up, take its lock (waiting up to lock_ms), and fill in
 * paths.  The VM's image, kernel and driver are loaded by
 * bg_vm_op_prepare_boot. */
int bg_vm_op_begin(bg_vm_op *op, banger_ctx *ctx, const char *name, int lock_ms);
/* The same for an operation that reports progress (start, restart): a
 * wait for the VM's lock is reported to cb (NULL: none; operation is a
 * banger_progress_op), which may cancel it (BANGER_ECANCELLED).  The
 * operation's own reports are set with bg_vm_op_set_progress. */
int bg_vm_op_begin_reporting(bg_vm_op *op, banger_ctx *ctx, const char *name, int operation, banger_progress_cb cb,
			     void *payload);
/* Load image, kernel, driver; build command line and spec; check that
 * the driver can boot it.  Nothing is created. */
int bg_vm_op_prepare_boot(bg_vm_op *op);
/* Drop what bg_vm_op_prepare_boot loaded. */
void bg_vm_op_release_boot(bg_vm_op *op);
void bg_vm_op_end(bg_vm_op *op);
/* Give the operation the caller's progress callback. */
void bg_vm_op_set_progress(bg_vm_op *op, int operation, banger_progress_cb cb, void *payload);
/* Log a step and report it: 0, or BANGER_ECANCELLED when the caller's
 * callback asked to stop (then fail as on any error). */
int bg_vm_op_progress(bg_vm_op *op, const char *stage, const char *fmt, ...) BG_PRINTF(3, 4);
/* The same where stopping is not possible (stopping, rolling back). */
void bg_vm_op_note(bg_vm_op *op, const char *stage, const char *fmt, ...) BG_PRINTF(3, 4);
/* A long wait goes on at stage: the caller may cancel (0 or
 * BANGER_ECANCELLED). */
int bg_vm_op_waiting(bg_vm_op *op, const char *stage);

/* Create host objects, spawn, configure and start the VMM; the state
 * goes starting -> running.  step_prefix names fault points
 * ("create" / "start").  On failure everything it made is torn down and
 * the state is set back to stopped (with last_error). */
int bg_vm_boot(bg_vm_op *op, const char *step_prefix);
/* Wait until SSH answers with the pinned host key (and the vsock agent,
 * where the VM has one, saw sshd listening), while watching the VMM
 * process and the console for a first-boot BANGER-ERROR line (ready.c).
 * WAITING goes to the operation's progress about twice a second, never a
 * second apart; a cancel ends the wait with BANGER_ECANCELLED. */
int bg_vm_wait_ready(bg_vm_op *op, uint32_t timeout_s);
/* How to reach the VM's vsock agent; false (and why, in the debug log)
 * when the driver gives it no vsock or the image lacks the agent. */
bool bg_vm_agent_addr(bg_vm_op *op, bg_agent_addr *a);
/* Stop the VMM (gracefully unless force) and tear everything down;
 * state -> stopped. */
int bg_vm_shutdown(bg_vm_op *op, bool force, const char *step_prefix);

/* The identity disk (docs/guest-identity.md). */
typedef struct {
	const char *name; /* "banger/..." */
	mode_t mode;
	const char *data; /* NULL: a directory */
	size_t len;
} bg_identity_file;
/* Append the identity disk's bytes, a ustar archive of files (in this
 * order) as the guest's first-boot reads it, to out (identity_disk.c). */
int bg_identity_archive(bg_buf *out, const bg_identity_file *files, size_t n);
int bg_vm_identity_write(banger_ctx *ctx, const bg_vm_record *vm, const char *host_ip,
			 const char *private_key, const char *public_line);

/* Set state (and last_error) in the store and in op->vm. */
int bg_vm_op_set_state(bg_vm_op *op, const char *state, const char *last_error);

/* Scan the console log for the first-boot error line; *msg (bg_free)
 * gets its text when present (ready.c). */
bool bg_vm_console_error(const char *console_log, char **msg);

#endif
