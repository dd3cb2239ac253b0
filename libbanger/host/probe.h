/*
 * Private declarations of host probing: what this machine offers.
 * The same probes feed banger_host_features(), banger_host_check() and the
 * VMM/overlay choices, so they never disagree.
 */
#ifndef BG_PROBE_H
#define BG_PROBE_H

#include "../core/core.h"

typedef struct {
	bool dev_kvm_opens;   /* open("/dev/kvm") and KVM_GET_API_VERSION == 12 */
	bool cpu_virt_flag;   /* vmx or svm in /proc/cpuinfo */
	bool kvm_pvm;         /* the kvm_pvm module (runs no ordinary guest kernel) */
	bool kvm_usable;      /* can run an ordinary guest */
	char kvm_detail[256];
	bool device_mapper;
	bool tun, loop, vhost_vsock, root;
	char *firecracker;    /* resolved binary path or NULL */
	char *qemu;
	char *nft;
} bg_host_probe;

/* firecracker_bin/qemu_bin: names from the config (NULL: defaults). */
int bg_host_probe_run(bg_host_probe *p, const char *firecracker_bin, const char *qemu_bin);
void bg_host_probe_free(bg_host_probe *p);

#endif
