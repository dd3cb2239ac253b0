/* The drivers banger has, and choosing one (auto | firecracker | qemu)
 * from what the host offers. */
#include "vmm.h"
#include "../host/probe.h"

#include <stdio.h>
#include <string.h>

/* ---- the drivers ---- */

static void fc_init(bg_vmm_driver *d, bool kvm, bool vhost_vsock)
{
	bg_vmm_firecracker_init(d); /* always KVM; its vsock needs no host module */
}

static const struct {
	const char *name;
	void (*init)(bg_vmm_driver *d, bool kvm, bool vhost_vsock);
} drivers[] = {
	{ "firecracker", fc_init },
	{ "qemu", bg_vmm_qemu_init },
};

static int driver_index(const char *name)
{
	for (size_t i = 0; name && i < BG_ARRAY_SIZE(drivers); i++)
		if (strcmp(drivers[i].name, name) == 0)
			return (int)i;
	return -1;
}

void bg_vmm_driver_names(char *buf, size_t len, uint32_t caps)
{
	size_t used = 0;
	if (len)
		buf[0] = '\0';
	for (size_t i = 0; i < BG_ARRAY_SIZE(drivers) && used < len; i++) {
		bg_vmm_driver d;
		memset(&d, 0, sizeof(d));
		drivers[i].init(&d, true, true); /* every capability it can have */
		if ((d.caps & caps) != caps)
			continue;
		int n = snprintf(buf + used, len - used, "%s%s", used ? " or " : "", drivers[i].name);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

int bg_vmm_driver_init(bg_vmm_driver *out, const char *name, const char *binary, bool kvm, bool vhost_vsock)
{
	memset(out, 0, sizeof(*out));
	int i = driver_index(name);
	if (i < 0)
		return bg_error(BANGER_EINVALID, "unknown VMM driver \"%s\" (firecracker or qemu)", name ? name : "");
	drivers[i].init(out, kvm, vhost_vsock);
	if (binary && !(out->binary = bg_strdup(binary))) {
		memset(out, 0, sizeof(*out));
		return bg_error_oom();
	}
	return 0;
}

void bg_vmm_driver_free(bg_vmm_driver *d)
{
	if (!d)
		return;
	bg_free(d->binary);
	memset(d, 0, sizeof(*d));
}

int bg_vmm_resolve(bg_vmm_driver *out, const char *name, const char *firecracker_bin,
		   const char *qemu_bin, const char **notice)
{
	memset(out, 0, sizeof(*out));
	if (notice)
		*notice = NULL;
	if (!name || !*name)
		name = "auto";
	if (!bg_streq(name, "auto") && driver_index(name) < 0)
		return bg_error(BANGER_EINVALID, "unknown vmm \"%s\" (auto, firecracker or qemu)", name);

	bg_host_probe p;
	int rc = bg_host_probe_run(&p, firecracker_bin, qemu_bin);
	if (rc)
		return rc;
	const char *fc_name = firecracker_bin ? firecracker_bin : "firecracker";
	const char *qemu_name = qemu_bin ? qemu_bin : "qemu-system-x86_64";
	char why[128] = "";
	const char *pick = name;

	if (bg_streq(name, "auto")) {
		if (p.firecracker && p.kvm_usable) {
			pick = "firecracker";
		} else {
			pick = "qemu";
			if (!p.firecracker)
				snprintf(why, sizeof(why), "%s not found", fc_name);
			else
				snprintf(why, sizeof(why), "KVM cannot run guests here");
		}
	}
	if (bg_streq(pick, "firecracker")) {
		if (!p.firecracker) {
			rc = bg_error(BANGER_EUNSUPPORTED, "vmm firecracker: %s not found (set firecracker_bin or use vmm = qemu)",
				      fc_name);
			goto out;
		}
		rc = bg_vmm_driver_init(out, "firecracker", p.firecracker, true, p.vhost_vsock);
		goto out;
	}
	if (!p.qemu) {
		if (*why)
			rc = bg_error(BANGER_EUNSUPPORTED, "no usable VMM: %s, and %s not found", why, qemu_name);
		else
			rc = bg_error(BANGER_EUNSUPPORTED, "vmm qemu: %s not found (set qemu_bin)", qemu_name);
		goto out;
	}
	rc = bg_vmm_driver_init(out, "qemu", p.qemu, p.kvm_usable, p.vhost_vsock);
	if (rc)
		goto out;
	if (*why || !p.kvm_usable) {
		if (p.kvm_usable)
			snprintf(out->notice, sizeof(out->notice), "%s; using qemu with KVM", why);
		else
			snprintf(out->notice, sizeof(out->notice), "%s%susing qemu with TCG (software emulation, slow): %s",
				 why, *why ? "; " : "", p.kvm_detail);
		if (notice)
			*notice = out->notice;
	}
out:
	bg_host_probe_free(&p);
	return rc;
}
