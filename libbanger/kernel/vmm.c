/* Which file a VMM boots, and whether it can boot the kernel at all.  The
 * VM code calls bg_kernel_boot_file() with its driver before it creates
 * anything.
 *
 * The kernel module knows the files of an installed kernel: the record's
 * kernel_path, and the alternative beside it (the vmlinux extracted from
 * a bzImage at install time, or a bzImage installed with a vmlinux).  The
 * driver knows which formats it boots (bg_vmm_boots, from its
 * capabilities).  The record's file is taken when the driver boots it,
 * else the alternative; neither is an error saying why, with the
 * driver's advice. */
#include "kernel.h"
#include "../vmm/vmm.h"

#include <stdlib.h>
#include <string.h>

static int missing(const bg_kernel_record *k, const char *path)
{
	return bg_error(BANGER_ENOTFOUND, "kernel '%s': %s is missing; remove the kernel and install it again",
			k->name, path);
}

/* Is path a kernel of format want?  A detection that failed for want of
 * memory sets *oom (and keeps that error) instead of reading as "no". */
static bool is_format(const char *path, bg_kernel_format want, bg_kernel_info *info, int *oom)
{
	bg_error_saved saved;
	bg_error_save(&saved);
	int rc = bg_path_exists(path) ? bg_kernel_detect_file(info, path, false) : BANGER_ENOTFOUND;
	bool ok = rc == 0 && info->format == want;
	if (rc == BANGER_ENOMEM) {
		*oom = rc;
		free(saved.message); /* strdup'ed by bg_error_save */
	} else {
		bg_error_restore(&saved);
	}
	return ok;
}

static int sibling(char **out, const char *kernel_path, const char *name)
{
	const char *slash = strrchr(kernel_path, '/');
	size_t dirlen = slash ? (size_t)(slash - kernel_path) : 0;
	*out = bg_sprintf("%.*s/%s", (int)dirlen, kernel_path, name);
	return *out ? 0 : bg_error_oom();
}

/* Does the driver boot some kernels of format f at all? */
static bool boots_kind(const bg_vmm_driver *d, bg_kernel_format f)
{
	return bg_vmm_boots(d, f, true);
}

/* Neither the record's file nor the alternative: say what the kernel is
 * and what the driver's advice is. */
static int unbootable(const bg_kernel_record *k, const bg_vmm_driver *d, bool elf)
{
	const char *advice = d->kernel_advice ? d->kernel_advice : "use another VMM";
	if (!elf)
		return bg_error(BANGER_EUNSUPPORTED,
				"kernel '%s' is a bzImage and no ELF vmlinux could be extracted from it; %s", k->name,
				advice);
	return bg_error(BANGER_EUNSUPPORTED, "kernel '%s' is an ELF vmlinux%s and has no bzImage beside it; %s",
			k->name, boots_kind(d, BG_KFMT_ELF) ? " without the PVH entry note" : "", advice);
}

int bg_kernel_boot_file(char **out, const bg_kernel_record *k, const bg_vmm_driver *d)
{
	if (out)
		*out = NULL;
	if (!k || !k->name || !k->kernel_path || !k->format || !d)
		return bg_error(BANGER_EINVALID, "invalid argument");
	const char *host = bg_host_arch();
	if (!k->arch || strcmp(k->arch, host) != 0)
		return bg_error(BANGER_EUNSUPPORTED, "kernel '%s' is built for %s; this host is %s", k->name,
				k->arch ? k->arch : "an unknown architecture", host);
	if (!bg_path_exists(k->kernel_path))
		return missing(k, k->kernel_path);
	bool elf = strcmp(k->format, "elf") == 0;
	bg_kernel_format own = elf ? BG_KFMT_ELF : BG_KFMT_BZIMAGE;
	bg_kernel_format other = elf ? BG_KFMT_BZIMAGE : BG_KFMT_ELF;
	bg_kernel_info info;
	int oom = 0;
	char *chosen = NULL;
	/* The record's own file, when the driver boots that kind at all: it
	 * must be what the record says. */
	if (boots_kind(d, own)) {
		if (!is_format(k->kernel_path, own, &info, &oom))
			return oom ? oom : bg_error(BANGER_EUNSUPPORTED, "kernel '%s': %s is not %s", k->name,
						    k->kernel_path, elf ? "an ELF vmlinux" : "a bzImage");
		if (bg_vmm_boots(d, info.format, info.pvh) && !(chosen = bg_strdup(k->kernel_path)))
			return bg_error_oom();
	}
	if (!chosen) {
		char *alt = NULL;
		int rc = sibling(&alt, k->kernel_path, elf ? "bzImage" : "vmlinux");
		if (rc)
			return rc;
		if (!is_format(alt, other, &info, &oom) || !bg_vmm_boots(d, info.format, info.pvh)) {
			bg_free(alt);
			return oom ? oom : unbootable(k, d, elf);
		}
		chosen = alt;
	}
	if (out)
		*out = chosen;
	else
		bg_free(chosen);
	return 0;
}

int bg_kernel_boot_path(char **out, const bg_kernel_record *k, const char *vmm)
{
	if (out)
		*out = NULL;
	if (!k || !vmm)
		return bg_error(BANGER_EINVALID, "invalid argument");
	/* The driver's declarations only: nothing is probed or started. */
	bg_vmm_driver d;
	int rc = bg_vmm_driver_init(&d, vmm, NULL, false, false);
	if (rc)
		return rc;
	rc = bg_kernel_boot_file(out, k, &d);
	bg_vmm_driver_free(&d);
	return rc;
}

int bg_kernel_check_vmm(const bg_kernel_record *k, const char *vmm)
{
	return bg_kernel_boot_path(NULL, k, vmm);
}
