/*
 * libbanger — virtual machines.
 *
 * A VM is a Firecracker or QEMU process (the "VMM", chosen per VM and kept)
 * booting a guest kernel (<banger/kernel.h>) with three disks:
 *   - the system disk: a copy-on-write view of an image (<banger/image.h>),
 *     a device-mapper snapshot over it where the host has one, else a
 *     reflink or sparse copy;
 *   - the work disk: ext4, mounted at /root in the guest, grown with
 *     banger_vm_set();
 *   - the identity disk: small and read-only, with the hostname, the
 *     network settings, the guest's SSH host key and the keys allowed to
 *     log in (docs/guest-identity.md).
 * Each VM gets a /30 of the configured subnet through a tap device (and
 * outbound NAT when asked), a vsock CID, and the DNS name "<name>.vm".
 *
 * What a VM *is* lives in the store, one record per VM; banger_vm_lookup()
 * and banger_vm_list_all() hand out snapshots of it (banger_vm, read with
 * the accessors below).  What runs *now* (the VMM process, the tap, loop
 * and device-mapper devices) is never recorded: it is found again from the
 * OS, and banger_vm_is_alive() is the one answer to "does it run".
 *
 * The calls, in the order a VM meets them:
 *   banger_vm_create()     image + kernel -> disks, identity, record; then
 *                          boots it and waits until SSH answers with the
 *                          host key banger generated and pinned before the
 *                          first boot (no trust on first use; an image
 *                          banger did not prepare has no identity disk and
 *                          is trusted on first use)
 *   banger_vm_exec()       a command over that verified SSH connection
 *                          (interactive use: <banger/ssh.h>, sessions:
 *                          <banger/session.h>)
 *   banger_vm_stop(), banger_vm_start(), banger_vm_restart()
 *   banger_vm_set()        vCPUs, memory, NAT, a larger work disk (stopped)
 *   banger_vm_delete()     every host object, the files, the pins, the record
 *   banger_vm_reconcile()  records brought in line with the host after a
 *                          crash or a kill
 * Calls that take a VM take its name or its id.
 *
 * States (banger_vm_state_t): a create goes creating -> starting ->
 * running (or creating -> stopped without booting); stop goes stopping ->
 * stopped, start starting -> running, delete deleting -> gone.  A process
 * killed in the middle leaves one of the -ing states behind: opening a
 * context settles VMs whose VMM is gone, banger_vm_reconcile() the rest.
 *
 * Every call that changes a VM (create, start, stop, restart, delete,
 * set, reconcile) holds that VM's lock, so two processes never interleave
 * changes to one VM.  Calls that only use a running VM (exec, stats,
 * authsync, ssh argv) take no lock: a stop that races them ends their
 * connection, it never corrupts the VM.  A call that fails, or is cancelled through its
 * progress callback (<banger/progress.h>), undoes what it made: a failed
 * create leaves no VM (unless keep_on_failure), a cancelled one none at
 * all, a failed start a stopped one.  Start and restart report a wait
 * for a VM's lock another process holds, and may be cancelled in it.
 */
#ifndef BANGER_VM_H
#define BANGER_VM_H

#include "common.h"
#include "context.h"
#include "progress.h"
#include "ssh.h"

BANGER_BEGIN_DECL

/* A snapshot of one VM's durable record.  Opaque; read with accessors.
 * Strings returned by accessors live as long as the object. */
typedef struct banger_vm banger_vm;
/* A list of VM records. */
typedef struct banger_vm_list banger_vm_list;

/* List every VM recorded in the store, ordered by name. */
BANGER_EXTERN(int) banger_vm_list_all(banger_vm_list **out, banger_ctx *ctx);
BANGER_EXTERN(size_t) banger_vm_list_count(const banger_vm_list *list);
/* Borrowed pointer, valid until the list is freed; NULL past the end. */
BANGER_EXTERN(const banger_vm *) banger_vm_list_get(const banger_vm_list *list, size_t i);
BANGER_EXTERN(void) banger_vm_list_free(banger_vm_list *list);

/* Look a VM up by name or id. */
BANGER_EXTERN(int) banger_vm_lookup(banger_vm **out, banger_ctx *ctx, const char *name_or_id);
BANGER_EXTERN(void) banger_vm_free(banger_vm *vm);

/* A VM's recorded state.  (The type has the _t suffix because its plain
 * name is the accessor's.) */
typedef enum {
	/* A state this library does not know: a newer library wrote it.
	 * Treat any value not listed here as this one. */
	BANGER_VM_STATE_UNKNOWN = 0,
	BANGER_VM_STATE_CREATING = 1, /* being created (reconcile finishes a killed create as a removal) */
	BANGER_VM_STATE_STOPPED = 2,
	BANGER_VM_STATE_STARTING = 3, /* booting: host objects and the VMM are being set up */
	BANGER_VM_STATE_RUNNING = 4,  /* the VMM was started (banger_vm_is_alive says whether it still runs) */
	BANGER_VM_STATE_STOPPING = 5,
	BANGER_VM_STATE_DELETING = 6  /* being deleted (reconcile finishes a killed delete) */
} banger_vm_state_t;

BANGER_EXTERN(const char *) banger_vm_id(const banger_vm *vm);
BANGER_EXTERN(const char *) banger_vm_name(const banger_vm *vm);
/* A banger_vm_state_t. */
BANGER_EXTERN(int) banger_vm_state(const banger_vm *vm);
/* The state's name as the CLI prints it ("running"); "unknown" for
 * BANGER_VM_STATE_UNKNOWN and any value not listed.  Static, never NULL. */
BANGER_EXTERN(const char *) banger_vm_state_name(int state);
BANGER_EXTERN(const char *) banger_vm_image(const banger_vm *vm);
BANGER_EXTERN(const char *) banger_vm_kernel(const banger_vm *vm);
BANGER_EXTERN(const char *) banger_vm_guest_ip(const banger_vm *vm);
BANGER_EXTERN(const char *) banger_vm_mac(const banger_vm *vm);
BANGER_EXTERN(const char *) banger_vm_dns_name(const banger_vm *vm);
BANGER_EXTERN(const char *) banger_vm_vmm(const banger_vm *vm);
BANGER_EXTERN(const char *) banger_vm_last_error(const banger_vm *vm); /* NULL if none */
BANGER_EXTERN(uint32_t) banger_vm_vcpus(const banger_vm *vm);
BANGER_EXTERN(uint32_t) banger_vm_memory_mib(const banger_vm *vm);
BANGER_EXTERN(uint32_t) banger_vm_vsock_cid(const banger_vm *vm);
BANGER_EXTERN(int) banger_vm_nat(const banger_vm *vm);
BANGER_EXTERN(int64_t) banger_vm_created_at(const banger_vm *vm);  /* unix seconds */
BANGER_EXTERN(int64_t) banger_vm_started_at(const banger_vm *vm);  /* 0 if never */

/* The one liveness rule: 1 when the VM's state is running, its VMM
 * process exists and that process's command line still names the VM's
 * API socket (a reused pid is not alive); 0 when not; <0 on error. */
BANGER_EXTERN(int) banger_vm_is_alive(banger_ctx *ctx, const banger_vm *vm);

/* Also remove kernel objects with banger's names that no VM owns (taps,
 * loops under the state dir, dm targets, NAT rules, stray VMM processes)
 * and directories of unfinished creates, but only what is proven to be
 * this store's: a VM directory with no row is removed only when its own
 * record, stamped by this store, says it was never finished; one stamped
 * by another store, or without a record, is reported (with its path) and
 * left in place, and so are the kernel objects named after it. */
#define BANGER_RECONCILE_SWEEP (1u << 0)

#define BANGER_VM_RECONCILE_OPTIONS_VERSION 1
typedef struct {
	unsigned int version;        /* BANGER_VM_RECONCILE_OPTIONS_VERSION */
	uint32_t flags;              /* BANGER_RECONCILE_* */
	/* BANGER_PROGRESS_OP_VM_RECONCILE reports (progress.h): a STEP for
	 * every object acted on or left alone, subject the VM's name or the
	 * object, detail what was done; NULL: none.  A non-zero answer stops
	 * the reconcile before the next object. */
	banger_progress_cb progress;
	void *progress_payload;
} banger_vm_reconcile_options;
#define BANGER_VM_RECONCILE_OPTIONS_INIT { BANGER_VM_RECONCILE_OPTIONS_VERSION, 0, NULL, NULL }
BANGER_EXTERN(int) banger_vm_reconcile_options_init(banger_vm_reconcile_options *opts, unsigned int version);

/* Bring recorded VMs in line with the host: VMs whose VMM is gone are
 * stopped, a VMM whose starter or stopper was killed is stopped,
 * interrupted creates and deletes are finished (disks, directory, host
 * key pins, row).  A context open does only the first of these.
 * Returns the number of corrections (>= 0) or a negative error.  A
 * cancel returns BANGER_ECANCELLED between two objects, never while one
 * VM is torn down; what was done before it stays done.  opts may be
 * NULL (no sweep, no reports). */
BANGER_EXTERN(int) banger_vm_reconcile(banger_ctx *ctx, const banger_vm_reconcile_options *opts);

/* ---- lifecycle ---- */

/* Version 2: progress is a banger_progress_cb (progress.h), which can
 * cancel. */
#define BANGER_VM_CREATE_OPTIONS_VERSION 2

typedef struct {
	unsigned int version;     /* BANGER_VM_CREATE_OPTIONS_VERSION */
	const char *name;         /* NULL: generated ("vm-<id>") */
	const char *image;        /* image name (required) */
	const char *kernel;       /* NULL: the image's kernel, else config default_kernel */
	uint32_t vcpus;           /* 0: config "vcpus" */
	uint32_t memory_mib;      /* 0: config "memory_mib" */
	uint64_t disk_bytes;      /* work disk size; 0: config "disk_size" */
	int nat;                  /* outbound NAT for the guest */
	const char *vmm;          /* "auto", "firecracker", "qemu"; NULL: config "vmm" */
	int no_start;             /* only create: disks, identity, record (state stopped) */
	int no_wait;              /* start, but do not wait for SSH */
	int keep_on_failure;      /* keep the record (with last_error) when boot fails;
				     never after a cancel */
	uint32_t ready_timeout_s; /* 0: config "ready_timeout" */
	banger_progress_cb progress; /* NULL: no reports; may cancel (progress.h) */
	void *progress_payload;
} banger_vm_create_options;

#define BANGER_VM_CREATE_OPTIONS_INIT { BANGER_VM_CREATE_OPTIONS_VERSION, NULL, NULL, NULL, 0, 0, 0, 0, NULL, 0, 0, 0, 0, NULL, NULL }

BANGER_EXTERN(int) banger_vm_create_options_init(banger_vm_create_options *opts, unsigned int version);

/* Create a VM and (unless no_start) boot it and wait until SSH answers
 * with the host key banger pinned for it.  Any failure rolls back
 * everything created so far and says which step failed ("create VM
 * NAME: ..."); with keep_on_failure the VM is kept instead, stopped, with
 * the error as its last_error.  A cancellation through progress always
 * rolls back, keep_on_failure or not (that is for failures to debug; a
 * cancel is the caller saying stop): no record, no directory, nothing on
 * the host, and the error is plainly BANGER_ECANCELLED, "cancelled ...".
 * *out (may be NULL) receives the VM's record. */
BANGER_EXTERN(int) banger_vm_create(banger_vm **out, banger_ctx *ctx, const banger_vm_create_options *opts);

/* Version 2: progress is a banger_progress_cb (progress.h). */
#define BANGER_VM_START_OPTIONS_VERSION 2
typedef struct {
	unsigned int version;        /* BANGER_VM_START_OPTIONS_VERSION */
	int no_wait;                 /* do not wait for SSH */
	uint32_t ready_timeout_s;    /* 0: config "ready_timeout" */
	banger_progress_cb progress; /* NULL: no reports; may cancel (progress.h) */
	void *progress_payload;
} banger_vm_start_options;
#define BANGER_VM_START_OPTIONS_INIT { BANGER_VM_START_OPTIONS_VERSION, 0, 0, NULL, NULL }
BANGER_EXTERN(int) banger_vm_start_options_init(banger_vm_start_options *opts, unsigned int version);

/* Boot a stopped VM (opts may be NULL).  A boot that fails or is
 * cancelled (BANGER_ECANCELLED) is torn down: the VM is stopped again,
 * with the reason as its last error. */
BANGER_EXTERN(int) banger_vm_start(banger_ctx *ctx, const char *name, const banger_vm_start_options *opts);
/* Stop it as banger_vm_stop() does without force, then start it. */
BANGER_EXTERN(int) banger_vm_restart(banger_ctx *ctx, const char *name, const banger_vm_start_options *opts);

#define BANGER_VM_STOP_OPTIONS_VERSION 1
typedef struct {
	unsigned int version; /* BANGER_VM_STOP_OPTIONS_VERSION */
	int force;            /* kill the VMM at once: no graceful shutdown */
} banger_vm_stop_options;
#define BANGER_VM_STOP_OPTIONS_INIT { BANGER_VM_STOP_OPTIONS_VERSION, 0 }
BANGER_EXTERN(int) banger_vm_stop_options_init(banger_vm_stop_options *opts, unsigned int version);

/* Stop a running VM: graceful shutdown with a deadline, then SIGTERM and
 * SIGKILL; with force, kill at once.  Every kernel object is torn down.
 * opts may be NULL (graceful). */
BANGER_EXTERN(int) banger_vm_stop(banger_ctx *ctx, const char *name, const banger_vm_stop_options *opts);

#define BANGER_VM_DELETE_OPTIONS_VERSION 1
typedef struct {
	unsigned int version; /* BANGER_VM_DELETE_OPTIONS_VERSION */
	int force;            /* delete a running VM too (its VMM is killed) */
} banger_vm_delete_options;
#define BANGER_VM_DELETE_OPTIONS_INIT { BANGER_VM_DELETE_OPTIONS_VERSION, 0 }
BANGER_EXTERN(int) banger_vm_delete_options_init(banger_vm_delete_options *opts, unsigned int version);

/* Delete a VM: stop it (refused while running unless force), tear down
 * every handle, remove its directory, its known_hosts pins and its
 * record.  opts may be NULL (no force). */
BANGER_EXTERN(int) banger_vm_delete(banger_ctx *ctx, const char *name, const banger_vm_delete_options *opts);

#define BANGER_VM_EXEC_OPTIONS_VERSION 1
typedef struct {
	unsigned int version;           /* BANGER_VM_EXEC_OPTIONS_VERSION */
	int stdin_fd;                   /* read until EOF and sent to the command; -1: none */
	banger_ssh_output_cb output_cb; /* stream 1 stdout, 2 stderr; NULL: output is dropped */
	void *output_payload;
	uint32_t timeout_ms;            /* the whole command; 0: 24 hours */
} banger_vm_exec_options;
#define BANGER_VM_EXEC_OPTIONS_INIT { BANGER_VM_EXEC_OPTIONS_VERSION, -1, NULL, NULL, 0 }
BANGER_EXTERN(int) banger_vm_exec_options_init(banger_vm_exec_options *opts, unsigned int version);

/* Run command (through the guest user's shell) in a running VM over SSH,
 * with the host key banger pinned for it.  A command that ran and failed
 * is not an error: *out gets how it ended (banger_exit_status, common.h).
 * opts may be NULL (no stdin, output dropped). */
BANGER_EXTERN(int) banger_vm_exec(banger_exit_status *out, banger_ctx *ctx, const char *name,
				  const char *command, const banger_vm_exec_options *opts);

#define BANGER_VM_SET_OPTIONS_VERSION 1
typedef struct {
	unsigned int version; /* BANGER_VM_SET_OPTIONS_VERSION */
	uint32_t vcpus;       /* 0: unchanged */
	uint32_t memory_mib;  /* 0: unchanged */
	uint64_t disk_bytes;  /* grow the work disk to this; 0: unchanged; shrinking is refused */
	int nat;              /* 1 on, 0 off, -1: unchanged */
} banger_vm_set_options;
#define BANGER_VM_SET_OPTIONS_INIT { BANGER_VM_SET_OPTIONS_VERSION, 0, 0, 0, -1 }
BANGER_EXTERN(int) banger_vm_set_options_init(banger_vm_set_options *opts, unsigned int version);

/* Change a stopped VM as opts says (required). */
BANGER_EXTERN(int) banger_vm_set(banger_ctx *ctx, const char *name, const banger_vm_set_options *opts);

/* Resource use of a VM as a JSON object (banger_free): VMM CPU time and
 * RSS from /proc, disk usage, and the VMM's own metrics when it has any. */
BANGER_EXTERN(int) banger_vm_stats(char **out_json, banger_ctx *ctx, const char *name);

/* Path of a VM's console log (borrowed from the record).  It is kept
 * to the config's console_log_max: at that size it is renamed to
 * "<path>.1" (replacing the one before) and a new log is started, so the
 * older part of the output, if any, is in "<path>.1". */
BANGER_EXTERN(const char *) banger_vm_console_log(const banger_vm *vm);

/* Copy the host user's public keys (the .pub files in ~/.ssh) and banger's client key
 * into the guest's /etc/banger/authorized_keys. */
BANGER_EXTERN(int) banger_vm_authsync(banger_ctx *ctx, const char *name);

/* ---- the system ssh into a VM ---- */

#define BANGER_VM_SSH_OPTIONS_VERSION 1
typedef struct {
	unsigned int version;        /* BANGER_VM_SSH_OPTIONS_VERSION */
	const char *ssh_path;        /* argv[0]: NULL gives "ssh" (found on PATH by execvp) */
	const char *user;            /* NULL: "root" */
	const char *const *command;  /* words of a remote command; NULL: a login shell.
					ssh joins them with blanks for the guest's shell */
	size_t command_count;
} banger_vm_ssh_options;
#define BANGER_VM_SSH_OPTIONS_INIT { BANGER_VM_SSH_OPTIONS_VERSION, NULL, NULL, NULL, 0 }
BANGER_EXTERN(int) banger_vm_ssh_options_init(banger_vm_ssh_options *opts, unsigned int version);

/* The argv that runs OpenSSH's ssh into a VM the way `banger vm ssh` does:
 * banger's client key only (created if missing), banger's known_hosts
 * only (GlobalKnownHostsFile none), StrictHostKeyChecking accept-new
 * (never "no"), the key looked up under the VM's NAME.vm pin, and User,
 * Port 22, HostName and "ProxyCommand none" given so that a "Host *" in
 * the user's ssh config cannot redirect the connection.  These are the
 * options of the "Host *.vm" block banger_ssh_config_render writes: one
 * policy, two spellings.  The VM need not be running (ssh then fails to
 * connect).  *out is NULL-terminated and one allocation: free it with
 * banger_free.  Errors: BANGER_ENOTFOUND, BANGER_ESTATE (the VM has no
 * address), BANGER_EINVALID (a path ssh could not read back as written,
 * e.g. one with a quote or a backslash: refused rather than weakened). */
BANGER_EXTERN(int) banger_vm_ssh_argv(char ***out, banger_ctx *ctx, const char *name,
				      const banger_vm_ssh_options *opts);

BANGER_END_DECL

#endif
