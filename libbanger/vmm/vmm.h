/*
 * Private declarations of the VMM drivers: one interface, two drivers
 * (firecracker, qemu).  The VM lifecycle composes a bg_vm_spec and drives
 * it through these calls; drivers never touch the store.
 *
 * Sequence: resolve -> check -> spawn -> configure -> start, then
 * stop (graceful, escalating) or bg_vmm_kill (forced).  "Is it alive?" is
 * bg_vmm_alive(): the pid's command line names the VM's api socket.
 */
#ifndef BG_VMM_H
#define BG_VMM_H

#include <sys/types.h>

#include "../core/core.h"
#include "../host/probe.h"
#include "../kformat/kformat.h"

/* Capabilities a driver declares.  Code outside the driver files decides
 * from these and the driver's strings (console, kernel_args, ...), never
 * from its name; a request needing a missing one fails before anything
 * is created. */
#define BG_VMM_CAP_VSOCK        (1u << 0) /* a vsock device for the guest */
#define BG_VMM_CAP_KERNEL_ELF   (1u << 1) /* boots any ELF vmlinux */
#define BG_VMM_CAP_KERNEL_BZIMAGE (1u << 2) /* boots a bzImage */
#define BG_VMM_CAP_METRICS      (1u << 3) /* VMM metrics (Firecracker) */
#define BG_VMM_CAP_CTRL_ALT_DEL (1u << 4) /* its graceful stop reaches the guest
                                           * kernel itself (i8042 Ctrl-Alt-Del),
                                           * no guest userland needed */
#define BG_VMM_CAP_KERNEL_PVH   (1u << 5) /* boots an ELF vmlinux that carries
                                           * the PVH entry note (CONFIG_PVH) */
#define BG_VMM_CAP_VSOCK_UDS    (1u << 6) /* guest vsock ports are reached through
                                           * spec->vsock_path ("CONNECT <port>",
                                           * Firecracker's hybrid vsock), not
                                           * AF_VSOCK to the CID */

/* Deadlines the drivers use (milliseconds). */
#define BG_VMM_SPAWN_TIMEOUT_MS 10000 /* API/QMP socket must appear */
#define BG_VMM_API_TIMEOUT_MS   5000  /* one API/QMP request */
#define BG_VMM_TERM_GRACE_MS    3000  /* SIGTERM -> SIGKILL in stop() */

/* The smallest console_log_max banger accepts (config "console_log_max"). */
#define BG_CONSOLE_LOG_MIN (64u * 1024u)

/* Everything a driver needs to boot one VM.  Strings are borrowed. */
typedef struct {
	const char *id;           /* 8 hex chars */
	const char *name;
	uint32_t vcpus;
	uint32_t memory_mib;
	const char *kernel_path;
	const char *kernel_format; /* "elf" or "bzimage": stands in when the file's
	                           * format cannot be told; NULL: the file's */
	const char *initrd_path;  /* NULL when none */
	const char *cmdline;      /* complete kernel command line (see bootargs) */
	const char *system_disk;  /* copy-on-write system disk: file or block device
	                           * (Firecracker: required; QEMU: NULL = none) */
	const char *work_disk;    /* ext4 image mounted at /root, NULL when none */
	const char *identity_disk;/* per-VM identity (ustar), NULL when none; read-only */
	const char *tap;          /* host tap device name, NULL for no network */
	const char *mac;          /* guest MAC "06:00:ac:1e:00:02" (needed with tap) */
	uint32_t vsock_cid;       /* 0: no vsock */
	const char *vsock_path;   /* Firecracker hybrid vsock uds path */
	const char *api_sock;     /* Firecracker API socket / QEMU QMP socket (required) */
	const char *console_log;  /* serial console and VMM stdio (required) */
	uint64_t console_log_max; /* > 0: the console goes through the relay,
	                           * which rotates console_log to "<it>.1" at
	                           * this size; 0: the VMM appends to it itself */
	const char *metrics_path; /* Firecracker metrics file, NULL: no metrics */
	const char *log_path;     /* Firecracker logger file; NULL or equal to
	                           * console_log: no PUT /logger (Firecracker then
	                           * logs to its stdout, i.e. the console log) */
} bg_vm_spec;

typedef struct bg_vmm_driver bg_vmm_driver;

struct bg_vmm_driver {
	const char *name;     /* "firecracker" or "qemu": printed and stored only */
	uint32_t caps;        /* BG_VMM_CAP_* */
	/* What the guest kernel's command line needs (bootargs.c): */
	const char *console;  /* the serial console device, "ttyS0" */
	const char *kernel_args; /* the driver's own arguments, or NULL */
	/* For messages: what to do about a kernel it cannot boot, and why it
	 * gives guests no vsock device here (NULL when it does). */
	const char *kernel_advice;
	const char *no_vsock;
	/* Validate the spec against the driver's capabilities (kernel format,
	 * vsock, binary present).  Called before anything is created. */
	int (*check)(const bg_vmm_driver *d, const bg_vm_spec *spec);
	/* Start the VMM process detached (own session, stdio to the console
	 * log, no inherited descriptors), remove a stale socket first, wait
	 * for the API/QMP socket with a deadline.  *pid receives the pid.
	 * On failure nothing is left running. */
	int (*spawn)(const bg_vmm_driver *d, const bg_vm_spec *spec, pid_t *pid);
	/* Configure the machine (Firecracker: logger, metrics, machine-config,
	 * boot-source, drives, network, vsock).  QEMU: no-op (argv has it). */
	int (*configure)(const bg_vmm_driver *d, const bg_vm_spec *spec);
	/* Boot the guest (Firecracker: InstanceStart; QEMU: "cont", the
	 * process is spawned paused with -S). */
	int (*start)(const bg_vmm_driver *d, const bg_vm_spec *spec);
	/* Graceful stop: Ctrl-Alt-Del / system_powerdown, wait up to
	 * timeout_ms, then SIGTERM (BG_VMM_TERM_GRACE_MS), then SIGKILL.
	 * Tolerates a dead process; never signals a pid whose command line
	 * does not name spec->api_sock.  Removes the api socket afterwards. */
	int (*stop)(const bg_vmm_driver *d, const bg_vm_spec *spec, pid_t pid, int timeout_ms);
	/* Metrics as a JSON object string (bg_free).  BANGER_EUNSUPPORTED when
	 * the driver has none. */
	int (*metrics)(const bg_vmm_driver *d, const bg_vm_spec *spec, char **out_json);
	/* Driver settings. */
	char *binary;         /* resolved binary path (owned, bg_free) */
	bool kvm;             /* QEMU: use KVM (else TCG) */
	char notice[512];     /* why this driver/accelerator was chosen, or "" */
};

/* Resolve a driver by name: "auto", "firecracker" or "qemu".  binaries
 * come from the config (firecracker_bin, qemu_bin; NULL: defaults).
 * "firecracker": its binary must exist (KVM is not checked: a Firecracker
 * without KVM fails at InstanceStart, and the API fake needs none).
 * "qemu": its binary must exist; KVM when usable, else TCG.
 * "auto": Firecracker when its binary exists and KVM can run guests, else
 * QEMU.  *notice (may be NULL) gets a one-line explanation when the
 * choice is a fallback (TCG, or QEMU instead of Firecracker), else NULL;
 * it points into out->notice and lives as long as *out. */
int bg_vmm_resolve(bg_vmm_driver *out, const char *name, const char *firecracker_bin,
		   const char *qemu_bin, const char **notice);
/* The choice of "auto" on a probed host, the one rule bg_vmm_resolve
 * and the doctor's report both follow (sets no error): the first driver
 * in order of preference whose binary was found and that can run guests
 * here (one that needs KVM only where KVM runs guests).  name is NULL
 * when none can; why lists what was passed over and why ("firecracker
 * not found"), joined by ", and ". */
typedef struct {
	const char *name;   /* the driver's name, or NULL */
	const char *binary; /* the probe's path of its binary (borrowed from it) */
	bool kvm;           /* it will run guests with KVM (else TCG) */
	bool kvm_optional;  /* it runs without KVM too: which one is worth saying */
	char why[256];
} bg_vmm_auto;
void bg_vmm_auto_pick(bg_vmm_auto *out, const bg_host_probe *p, const char *firecracker_bin,
		      const char *qemu_bin);
/* A driver for a given binary without probing (tests, explicit paths). */
int bg_vmm_driver_init(bg_vmm_driver *out, const char *name, const char *binary, bool kvm,
		       bool vhost_vsock);
void bg_vmm_driver_free(bg_vmm_driver *d);

/* Kill with escalation: SIGTERM, wait up to grace_ms, then SIGKILL and
 * wait until gone.  Tolerates a dead process.  No identity check: prefer
 * bg_vmm_kill when the api socket is known. */
int bg_vmm_terminate(pid_t pid, int grace_ms);
/* Same, but only while pid's command line still names spec->api_sock
 * (pid reuse), and removes the stale api socket afterwards. */
int bg_vmm_kill(const bg_vm_spec *spec, pid_t pid, int grace_ms);
/* Liveness: pid runs (not a zombie) and its command line names api_sock. */
bool bg_vmm_alive(const char *api_sock, pid_t pid);
/* Rediscover the VMM of a VM from /proc: *pid = 0 when none runs,
 * BANGER_EBUSY when more than one claims the socket. */
int bg_vmm_find(pid_t *pid, const char *api_sock);

/* Which kernels a driver boots (boots.c), from its BG_VMM_CAP_KERNEL_*
 * bits.  bg_vmm_boots: a kernel of format f (with or without the PVH
 * note).  bg_vmm_check_kernel: the file at path, as ../kformat reads it
 * (declared, "elf" or "bzimage", stands in when it cannot tell); 0,
 * BANGER_EUNSUPPORTED naming the file's format and the driver's advice,
 * BANGER_EINVALID for neither format, or the error of reading it. */
bool bg_vmm_boots(const bg_vmm_driver *d, bg_kernel_format f, bool pvh);
int bg_vmm_check_kernel(const bg_vmm_driver *d, const char *path, const char *declared);
/* The names of the drivers that declare every bit of caps, joined by
 * " or " into buf (messages that say which VMM can do something). */
void bg_vmm_driver_names(char *buf, size_t len, uint32_t caps);

/* Fill in the driver tables (used by resolve). */
void bg_vmm_firecracker_init(bg_vmm_driver *d);
void bg_vmm_qemu_init(bg_vmm_driver *d, bool kvm, bool vhost_vsock);

/* ---- process plumbing shared by the drivers (spawn.c) ---- */
/* Spawn argv[0] (absolute path) detached: an intermediate child
 * posix_spawns it in a new session (stdin /dev/null, stdout+stderr
 * appended to log_path, every descriptor above 2 closed, default signal
 * mask and dispositions) and exits; the caller reaps the intermediate, so
 * the VMM is reparented and never becomes the caller's zombie. */
int bg_vmm_spawn_detached(pid_t *pid, const char *const argv[], const char *log_path);
/* The same, but with log_max > 0 stdout and stderr are a pipe to a console
 * relay (relay.c) spawned alongside, which appends to log_path and
 * rotates it at log_max bytes; the VMM runs with SIGPIPE ignored. */
int bg_vmm_spawn_relayed(pid_t *pid, const char *const argv[], const char *log_path, uint64_t log_max);

/* ---- the console relay (relay.c) ---- */
/* Where banger-console is, by the rule of bg_guest_file (layout.h:
 * $BANGER_CONSOLE_RELAY first).  BANGER_EUNSUPPORTED when in none. */
int bg_vmm_relay_program(char **out);
/* Relays whose command line names exactly this log (*pids bg_malloc'ed). */
int bg_vmm_relay_find(pid_t **pids, size_t *count, const char *log_path);
/* After the VMM is gone: wait up to grace_ms for the log's relays to end
 * by themselves (the pipe closed), then terminate what is left. */
int bg_vmm_relay_stop(const char *log_path, int grace_ms);
/* The last (up to) want bytes of the console output, across a rotation
 * (the end of "<log>.1", then <log>), at the start of buf. */
size_t bg_vmm_console_tail(char *buf, size_t want, const char *log_path);
/* Wait until a Unix socket at path accepts connections; fail early when
 * pid dies (quoting the tail of log_path) or at the deadline. */
int bg_vmm_wait_socket(const char *path, pid_t pid, const char *log_path, int timeout_ms);
/* Wait until pid is gone (or a zombie); BANGER_ETIMEOUT otherwise. */
int bg_vmm_wait_gone(pid_t pid, int timeout_ms);
/* Remove a stale Unix socket (tolerates absence; refuses non-sockets). */
int bg_vmm_unlink_socket(const char *path);
/* Last line(s) of a log file on one line, made visible (bg_visible_into),
 * for error messages ("" when unreadable). */
void bg_vmm_log_tail(char *out, size_t outlen, const char *log_path);

/* ---- Firecracker API over HTTP/1.1 on its Unix socket (fc_http.c) ---- */
/* method "GET"/"PUT"/"PATCH", path "/drives/rootfs", body JSON or NULL.
 * 2xx: 0 and *out_body (may be NULL) gets the response body (bg_free).
 * 4xx/5xx: BANGER_EVMM "Firecracker rejected PUT /x (400): <fault_message>".
 * Transport failures: BANGER_EIO/BANGER_ETIMEOUT. */
int bg_fc_request(char **out_body, long *out_status, const char *api_sock, const char *method,
		  const char *path, const char *body, int timeout_ms);
/* Extract fault_message from an error body (bg_free; NULL if absent). */
char *bg_fc_fault_message(const char *body);

/* Firecracker request bodies, exposed for the tests (bg_free). */
int bg_fc_body_boot_source(char **out, const bg_vm_spec *spec);
int bg_fc_body_drive(char **out, const char *id, const char *path, bool root, bool read_only);
/* The last complete JSON object line of a metrics file (bg_free). */
int bg_fc_metrics_last_line(char **out, const char *metrics_path);

/* ---- QEMU (qemu.c) ---- */
/* QEMU's argv for spec: NULL-terminated, bg_malloc'ed (bg_argv_free).
 * Pure: looks at nothing but its arguments. */
int bg_qemu_argv(char ***out, const bg_vm_spec *spec, const char *binary, bool kvm,
		 bool vsock);
void bg_argv_free(char **argv);

/* ---- QMP client (qmp.c) ---- */
typedef struct {
	int fd;
	bg_buf in;   /* bytes read but not yet consumed */
} bg_qmp;
#define BG_QMP_INIT { -1, BG_BUF_INIT }

typedef enum {
	BG_QMP_MSG_GREETING = 1, /* {"QMP": {...}} */
	BG_QMP_MSG_RETURN,       /* {"return": ...} */
	BG_QMP_MSG_ERROR,        /* {"error": {"class", "desc"}} */
	BG_QMP_MSG_EVENT         /* {"event": "NAME", ...} */
} bg_qmp_kind;

typedef struct {
	bg_qmp_kind kind;
	char *ret;    /* RETURN: the "return" value as JSON text */
	char *cls;    /* ERROR: class; EVENT: event name */
	char *desc;   /* ERROR: description */
} bg_qmp_msg;

/* Parse one QMP line (pure).  BANGER_EVMM for anything unrecognised. */
int bg_qmp_parse(bg_qmp_msg *m, const char *line);
void bg_qmp_msg_free(bg_qmp_msg *m);
/* Connect, read the greeting and negotiate capabilities. */
int bg_qmp_open(bg_qmp *q, const char *path, int timeout_ms);
/* Run one command (args_json NULL or a JSON object); events are skipped;
 * an "error" reply is BANGER_EVMM with QEMU's class and desc.
 * *out_return (may be NULL) gets the return value as JSON. */
int bg_qmp_execute(bg_qmp *q, char **out_return, const char *command, const char *args_json,
		   int timeout_ms);
void bg_qmp_close(bg_qmp *q);
/* query-status -> "running", "paused", "prelaunch", "shutdown"... */
int bg_qmp_query_status(char **status, const char *path, int timeout_ms);
/* One-shot command over a fresh connection. */
int bg_qmp_command(const char *path, const char *command, int timeout_ms);

/* ---- vsock, host side (vsock.c) ---- */
/* Firecracker hybrid vsock: connect to uds_path, send "CONNECT <port>\n",
 * expect "OK <n>\n"; retry every ~100 ms until timeout_ms (the guest may
 * not listen yet).  Every read has a deadline.  *fd: a blocking,
 * close-on-exec stream to the guest port. */
int bg_vsock_connect_hybrid(int *fd, const char *uds_path, uint32_t port, int timeout_ms);
/* AF_VSOCK (QEMU vhost-vsock): connect to cid:port, retrying until
 * timeout_ms.  BANGER_EUNSUPPORTED when the host has no AF_VSOCK. */
int bg_vsock_connect_cid(int *fd, uint32_t cid, uint32_t port, int timeout_ms);

/* ---- the kernel command line for a VM (bootargs.c) ---- */
typedef struct {
	const bg_vmm_driver *driver; /* its console and kernel_args */
	const char *guest_ip, *gateway, *netmask, *hostname, *iface;
	                        /* guest_ip NULL: no ip=; iface NULL: eth0 */
	bool has_initrd;        /* without one: init=/usr/local/libexec/banger-first-boot */
	const char *extra;      /* appended verbatim, may be NULL; refused when it
	                         * masks dev-vdb.device or dev-ttyS0.device */
} bg_bootargs;
int bg_bootargs_build(char **out, const bg_bootargs *a);

#endif
