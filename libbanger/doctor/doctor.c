/* banger_host_check: every host check, each with a one-line fix. */
#include "../host/probe.h"
#include "../env/env.h"
#include "../host/host.h"
#include "../vmm/vmm.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static int report(banger_host_finding_cb cb, void *payload, const char *name, int status,
		  const char *detail, const char *fix)
{
	banger_host_finding c = { name, status, detail, status == BANGER_HOST_CHECK_OK ? NULL : fix };
	return cb(&c, payload);
}

static int check_private(banger_host_finding_cb cb, void *payload, const char *name, const char *path)
{
	struct stat st;
	char detail[512], fix[512];
	if (lstat(path, &st) != 0) {
		snprintf(detail, sizeof(detail), "%s does not exist", path);
		return report(cb, payload, name, BANGER_HOST_CHECK_MISSING, detail,
			      "it is created on first use");
	}
	bool ok = S_ISDIR(st.st_mode) && st.st_uid == geteuid() && (st.st_mode & 077) == 0;
	snprintf(detail, sizeof(detail), "%s mode %03o owner uid %u", path,
		 (unsigned)(st.st_mode & 0777), (unsigned)st.st_uid);
	snprintf(fix, sizeof(fix), "chmod 700 %s && chown %u %s", path, (unsigned)geteuid(), path);
	return report(cb, payload, name, ok ? BANGER_HOST_CHECK_OK : BANGER_HOST_CHECK_MISSING, detail, fix);
}

BANGER_EXTERN(int) banger_host_check(banger_ctx *ctx, banger_host_finding_cb cb, void *payload)
{
	bg_env *env = bg_env_of(ctx);
	if (!cb)
		return bg_error(BANGER_EINVALID, "callback must not be NULL");
	const char *fc_name = env ? bg_config_get(&env->config, "firecracker_bin") : NULL;
	const char *qemu_name = env ? bg_config_get(&env->config, "qemu_bin") : NULL;
	bg_host_probe p;
	int rc = bg_host_probe_run(&p, fc_name, qemu_name);
	if (rc)
		return rc;
	char detail[512];

	rc = report(cb, payload, "kvm", p.kvm_usable ? BANGER_HOST_CHECK_OK : BANGER_HOST_CHECK_WARN,
		    p.kvm_detail,
		    p.kvm_pvm ? "guests run under QEMU with TCG (slow); use a host with VT-x/AMD-V for Firecracker"
			      : "enable virtualization (VT-x/AMD-V), load kvm_intel or kvm_amd, and add yourself to group kvm");
	if (rc) goto out;

	snprintf(detail, sizeof(detail), "%s", p.firecracker ? p.firecracker : "firecracker not found on PATH");
	rc = report(cb, payload, "firecracker", p.firecracker ? BANGER_HOST_CHECK_OK : BANGER_HOST_CHECK_WARN,
		    detail,
		    "install a Firecracker release binary on PATH (or set firecracker_bin); VMs use QEMU meanwhile");
	if (rc) goto out;

	snprintf(detail, sizeof(detail), "%s", p.qemu ? p.qemu : "qemu-system-x86_64 not found on PATH");
	rc = report(cb, payload, "qemu", p.qemu ? BANGER_HOST_CHECK_OK : BANGER_HOST_CHECK_MISSING, detail,
		    "apt-get install qemu-system-x86");
	if (rc) goto out;

	/* The resolver's own rule, so the report never disagrees with a create. */
	bg_vmm_auto au;
	bg_vmm_auto_pick(&au, &p, fc_name, qemu_name);
	snprintf(detail, sizeof(detail), "vmm=auto would pick: %s%s", au.name ? au.name : "none",
		 !au.name || !au.kvm_optional ? "" : au.kvm ? " (KVM)" : " (TCG, no KVM)");
	rc = report(cb, payload, "vmm", au.name ? BANGER_HOST_CHECK_OK : BANGER_HOST_CHECK_MISSING,
		    detail, "install qemu-system-x86, or firecracker on a host with KVM");
	if (rc) goto out;

	rc = report(cb, payload, "device-mapper", p.device_mapper ? BANGER_HOST_CHECK_OK : BANGER_HOST_CHECK_WARN,
		    p.device_mapper ? "/dev/mapper/control present: system disks use dm-snapshot"
				    : "no device-mapper (dm-mod not loaded): system disks use a reflink clone or a sparse copy",
		    "modprobe dm-mod (or use a kernel with CONFIG_BLK_DEV_DM)");
	if (rc) goto out;

	rc = report(cb, payload, "tun", p.tun ? BANGER_HOST_CHECK_OK : BANGER_HOST_CHECK_MISSING,
		    p.tun ? "/dev/net/tun opens" : "/dev/net/tun missing or not openable",
		    "modprobe tun, and run as root (or with CAP_NET_ADMIN)");
	if (rc) goto out;

	rc = report(cb, payload, "loop", p.loop ? BANGER_HOST_CHECK_OK : BANGER_HOST_CHECK_WARN,
		    p.loop ? "/dev/loop-control present" : "/dev/loop-control missing",
		    "modprobe loop");
	if (rc) goto out;

	snprintf(detail, sizeof(detail), "%s", p.nft ? p.nft : "nft not found: --nat is unavailable");
	rc = report(cb, payload, "nft", p.nft ? BANGER_HOST_CHECK_OK : BANGER_HOST_CHECK_WARN, detail,
		    "apt-get install nftables");
	if (rc) goto out;

	rc = report(cb, payload, "vhost-vsock", p.vhost_vsock ? BANGER_HOST_CHECK_OK : BANGER_HOST_CHECK_WARN,
		    p.vhost_vsock ? "/dev/vhost-vsock present: QEMU guests get vsock"
				  : "/dev/vhost-vsock missing: QEMU guests run without vsock (Firecracker's hybrid vsock is unaffected)",
		    "modprobe vhost_vsock");
	if (rc) goto out;

	rc = report(cb, payload, "privileges", p.root ? BANGER_HOST_CHECK_OK : BANGER_HOST_CHECK_WARN,
		    p.root ? "running as root" : "not root: tap devices, loop devices and NAT need root",
		    "run banger as root (sudo)");
	if (rc) goto out;

	if (env) {
		bg_overlay_kind k = bg_overlay_probe(env->layout.vms_dir);
		snprintf(detail, sizeof(detail), "new VMs' system disks: %s (%s)", bg_overlay_kind_name(k),
			 k == BG_OVERLAY_DM_SNAPSHOT ? "device-mapper snapshot over the shared image"
			 : k == BG_OVERLAY_REFLINK ? "the state dir's file system clones files instantly"
						   : "sparse copy of the image per VM: neither dm nor reflink here");
		rc = report(cb, payload, "overlay", k == BG_OVERLAY_COPY ? BANGER_HOST_CHECK_WARN : BANGER_HOST_CHECK_OK,
			    detail,
			    "load dm-mod, or keep the state dir on a reflink-capable file system (btrfs, xfs)");
		if (rc)
			goto out;
		if ((rc = check_private(cb, payload, "state-dir", env->layout.state_dir)))
			goto out;
		rc = check_private(cb, payload, "ssh-dir", env->layout.ssh_dir);
	}
out:
	bg_host_probe_free(&p);
	return rc;
}
