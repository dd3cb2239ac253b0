/*
 * Private declarations of the VMM drivers: one interface, two drivers
 * (firecracker, qemu).  The VM lifecycle composes a bg_vm_spec and drives
 * it through these calls; drivers never touch the store.
 */
#ifndef BG_VMM_H
#define BG_VMM_H

#include <sys/types.h>

#include "../core/core.h"

/* Capabilities a driver declares; a request needing a missing one fails
 * before anything is created. */
#define BG_VMM_CAP_VSOCK        (1u << 0) /* a vsock device for the guest */
#define BG_VMM_CAP_KERNEL_ELF   (1u << 1) /* boots an ELF vmlinux */
#define BG_VMM_CAP_KERNEL_BZIMAGE (1u << 2) /* boots a bzImage */
#define BG_VMM_CAP_METRICS      (1u << 3) /* VMM metrics (Firecracker) */
#define BG_VMM_CAP_CTRL_ALT_DEL (1u << 4) /* graceful stop via the VMM */

/* Everything a driver needs to boot one VM.  Strings are borrowed. */
typedef struct {
	const char *id;           /* 8 hex chars */
	const char *name;
	uint32_t vcpus;
	uint32_t memory_mib;
	const char *kernel_path;
	const char *kernel_format; /* "elf" or "bzimage" */
	const char *initrd_path;  /* NULL when none */
	const char *cmdline;      /* complete kernel command line (see bootargs) */
	const char *system_disk;  /* copy-on-write system disk: file or block device */
	const char *work_disk;    /* ext4 image mounted at /root */
	const char *identity_disk;/* per-VM identity (ustar), NULL when none */
	const char *tap;          /* host tap device name, NULL for no network */
	const char *mac;          /* guest MAC "06:00:ac:1e:00:02" */
	uint32_t vsock_cid;       /* 0: no vsock */
	const char *vsock_path;   /* Firecracker hybrid vsock uds path */
	const char *api_sock;     /* Firecracker API socket / QEMU QMP socket */
	const char *console_log;  /* serial console and VMM stdio */
	const char *metrics_path; /* Firecracker metrics file */
	const char *log_path;     /* Firecracker logger file (may equal console_log) */
} bg_vm_spec;

typedef struct bg_vmm_driver bg_vmm_driver;

struct bg_vmm_driver {
	const char *name;     /* "firecracker" or "qemu" */
	uint32_t caps;        /* BG_VMM_CAP_* */
	/* Validate the spec against the driver's capabilities (kernel format,
	 * vsock, binary present).  Called before anything is created. */
	int (*check)(const bg_vmm_driver *d, const bg_vm_spec *spec);
	/* Start the VMM process detached (own session, stdio to the console
	 * log, no inherited descriptors), remove a stale socket first, wait
	 * for the API/QMP socket with a deadline.  *pid receives the pid. */
	int (*spawn)(const bg_vmm_driver *d, const bg_vm_spec *spec, pid_t *pid);
	/* Configure the machine (Firecracker: logger, metrics, machine-config,
	 * boot-source, drives, network, vsock).  QEMU: no-op (argv has it). */
	int (*configure)(const bg_vmm_driver *d, const bg_vm_spec *spec);
	/* Boot the guest (Firecracker: InstanceStart; QEMU: "cont"). */
	int (*start)(const bg_vmm_driver *d, const bg_vm_spec *spec);
	/* Graceful stop: Ctrl-Alt-Del / system_powerdown, wait up to
	 * timeout_ms, then SIGTERM, then SIGKILL.  Tolerates a dead process. */
	int (*stop)(const bg_vmm_driver *d, const bg_vm_spec *spec, pid_t pid, int timeout_ms);
	/* Metrics as a JSON object string (bg_free).  BANGER_EUNSUPPORTED when
	 * the driver has none. */
	int (*metrics)(const bg_vmm_driver *d, const bg_vm_spec *spec, char **out_json);
	/* Driver settings. */
	const char *binary;   /* resolved binary path */
	bool kvm;             /* QEMU: use KVM (else TCG) */
};

/* Resolve a driver by name: "auto", "firecracker" or "qemu".  binaries
 * come from the config (firecracker_bin, qemu_bin).  For "auto":
 * Firecracker when its binary exists and KVM can run guests, else QEMU
 * (KVM when usable, else TCG); *notice gets a one-line explanation when
 * the choice is a fallback (static string, may be NULL). */
int bg_vmm_resolve(bg_vmm_driver *out, const char *name, const char *firecracker_bin,
		   const char *qemu_bin, const char **notice);
void bg_vmm_driver_free(bg_vmm_driver *d);

/* Kill with escalation: SIGTERM, wait up to grace_ms, then SIGKILL and
 * reap/wait until gone.  Tolerates a dead process. */
int bg_vmm_terminate(pid_t pid, int grace_ms);

/* The kernel command line for a VM (see bootargs.c). */
typedef struct {
	const char *vmm;        /* "firecracker" adds pci=off */
	const char *guest_ip, *gateway, *netmask, *hostname, *iface;
	bool has_initrd;        /* without one: init=/usr/local/libexec/banger-first-boot */
	const char *extra;      /* appended verbatim, may be NULL */
} bg_bootargs;
int bg_bootargs_build(char **out, const bg_bootargs *a);

#endif
