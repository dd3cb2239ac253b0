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

/* The path bg_host_probe found for each driver's binary, or NULL. */
static const char *fc_found(const bg_host_probe *p)
{
	return p->firecracker;
}

static const char *qemu_found(const bg_host_probe *p)
{
	return p->qemu;
}

/* In the order "auto" prefers them. */
static const struct {
	const char *name;
	void (*init)(bg_vmm_driver *d, bool kvm, bool vhost_vsock);
	bool needs_kvm;          /* runs no guest without KVM (else it falls back to TCG) */
	const char *(*found)(const bg_host_probe *p);
	const char *bin_key;     /* the config key that names its binary */
	const char *bin_default; /* the binary probe.c looks for when the config names none */
	const char *missing_hint;
} drivers[] = {
	{ "firecracker", fc_init, true, fc_found, "firecracker_bin", "firecracker",
	  " or use vmm = qemu" },
	{ "qemu", bg_vmm_qemu_init, false, qemu_found, "qemu_bin", "qemu-system-x86_64", "" },
};

/* The callers name the binaries from the config one by one (NULL: the
 * default); CONFIGURED lists them in the table's order. */
#define CONFIGURED(firecracker_bin, qemu_bin) ((const char *const[]){ firecracker_bin, qemu_bin })
_Static_assert(BG_ARRAY_SIZE(drivers) == 2, "CONFIGURED names a binary for every driver");

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

/* The binary driver i should be: the config's name, else its default. */
static const char *wanted_binary(size_t i, const char *const configured[])
{
	return configured[i] ? configured[i] : drivers[i].bin_default;
}

void bg_vmm_auto_pick(bg_vmm_auto *out, const bg_host_probe *p, const char *firecracker_bin, const char *qemu_bin)
{
	memset(out, 0, sizeof(*out));
	const char *const *configured = CONFIGURED(firecracker_bin, qemu_bin);
	size_t used = 0;
	for (size_t i = 0; i < BG_ARRAY_SIZE(drivers); i++) {
		const char *why = NULL;
		char missing[160];
		if (!drivers[i].found(p)) {
			snprintf(missing, sizeof(missing), "%s not found", wanted_binary(i, configured));
			why = missing;
		} else if (drivers[i].needs_kvm && !p->kvm_usable) {
			why = "KVM cannot run guests here";
		}
		if (!why) {
			out->name = drivers[i].name;
			out->binary = drivers[i].found(p);
			out->kvm = drivers[i].needs_kvm || p->kvm_usable;
			out->kvm_optional = !drivers[i].needs_kvm;
			return;
		}
		int n = snprintf(out->why + used, sizeof(out->why) - used, "%s%s", used ? ", and " : "", why);
		used += n > 0 ? (size_t)n : 0;
		if (used >= sizeof(out->why))
			used = sizeof(out->why) - 1; /* cut short: the rest is dropped */
	}
}

/* A driver named by the user: its binary must exist (KVM is not checked
 * for one that needs it: it fails at its start, and the API fake needs
 * none). */
static int resolve_named(bg_vmm_driver *out, size_t i, const bg_host_probe *p, const char *const configured[])
{
	const char *bin = drivers[i].found(p);
	if (!bin)
		return bg_error(BANGER_EUNSUPPORTED, "vmm %s: %s not found (set %s%s)", drivers[i].name,
				wanted_binary(i, configured), drivers[i].bin_key, drivers[i].missing_hint);
	return bg_vmm_driver_init(out, drivers[i].name, bin, drivers[i].needs_kvm || p->kvm_usable, p->vhost_vsock);
}

int bg_vmm_resolve(bg_vmm_driver *out, const char *name, const char *firecracker_bin,
		   const char *qemu_bin, const char **notice)
{
	memset(out, 0, sizeof(*out));
	if (notice)
		*notice = NULL;
	if (!name || !*name)
		name = "auto";
	int named = driver_index(name);
	if (!bg_streq(name, "auto") && named < 0)
		return bg_error(BANGER_EINVALID, "unknown vmm \"%s\" (auto, firecracker or qemu)", name);

	bg_host_probe p;
	int rc = bg_host_probe_run(&p, firecracker_bin, qemu_bin);
	if (rc)
		return rc;
	bg_vmm_auto au = { 0 };
	if (named >= 0) {
		rc = resolve_named(out, (size_t)named, &p, CONFIGURED(firecracker_bin, qemu_bin));
	} else {
		bg_vmm_auto_pick(&au, &p, firecracker_bin, qemu_bin);
		rc = au.name ? bg_vmm_driver_init(out, au.name, au.binary, au.kvm, p.vhost_vsock)
			     : bg_error(BANGER_EUNSUPPORTED, "no usable VMM: %s", au.why);
	}
	/* Say why when the choice is a fallback: a driver passed over, or
	 * software emulation. */
	if (rc == 0 && (au.why[0] || !out->kvm)) {
		if (out->kvm)
			snprintf(out->notice, sizeof(out->notice), "%s; using %s with KVM", au.why, out->name);
		else
			snprintf(out->notice, sizeof(out->notice), "%.200s%susing %s with TCG (software emulation, slow): %s",
				 au.why, au.why[0] ? "; " : "", out->name, p.kvm_detail);
		if (notice)
			*notice = out->notice;
	}
	bg_host_probe_free(&p);
	return rc;
}
