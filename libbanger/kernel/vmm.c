/* Which file a VMM boots, and whether it can boot the kernel at all.  The
 * VM code calls bg_kernel_check_vmm() before it creates anything.
 *
 *   firecracker  needs an ELF vmlinux (released Firecracker ≤ 1.16 rejects
 *                bzImage on x86_64): the record's vmlinux, or the one
 *                extracted from a bzImage at install time.
 *   qemu         boots a bzImage, or an ELF vmlinux that has the PVH entry
 *                note (CONFIG_PVH); for an ELF without it, a bzImage
 *                installed beside it is used instead. */
#include "kernel.h"

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

int bg_kernel_boot_path(char **out, const bg_kernel_record *k, const char *vmm)
{
	if (out)
		*out = NULL;
	if (!k || !k->name || !k->kernel_path || !k->format || !vmm)
		return bg_error(BANGER_EINVALID, "invalid argument");
	bool fc = strcmp(vmm, "firecracker") == 0, qemu = strcmp(vmm, "qemu") == 0;
	if (!fc && !qemu)
		return bg_error(BANGER_EINVALID, "unknown VMM '%s' (firecracker or qemu)", vmm);
	const char *host = bg_host_arch();
	if (!k->arch || strcmp(k->arch, host) != 0)
		return bg_error(BANGER_EUNSUPPORTED, "kernel '%s' is built for %s; this host is %s", k->name,
				k->arch ? k->arch : "an unknown architecture", host);
	if (!bg_path_exists(k->kernel_path))
		return missing(k, k->kernel_path);
	bool elf = strcmp(k->format, "elf") == 0;
	char *alt = NULL, *chosen = NULL;
	bg_kernel_info info;
	int rc = 0, oom = 0;
	if (fc) {
		if (elf) {
			if (!is_format(k->kernel_path, BG_KFMT_ELF, &info, &oom))
				return oom ? oom : bg_error(BANGER_EUNSUPPORTED, "kernel '%s': %s is not an ELF vmlinux",
						k->name, k->kernel_path);
			chosen = bg_strdup(k->kernel_path);
		} else {
			if ((rc = sibling(&alt, k->kernel_path, "vmlinux")))
				return rc;
			if (!is_format(alt, BG_KFMT_ELF, &info, &oom)) {
				bg_free(alt);
				return oom ? oom : bg_error(BANGER_EUNSUPPORTED,
						"kernel '%s' is a bzImage and no ELF vmlinux could be extracted from it; "
						"Firecracker (up to 1.16) boots only an ELF vmlinux on x86_64: use the qemu "
						"VMM, or import the kernel's vmlinux", k->name);
			}
			chosen = alt;
			alt = NULL;
		}
	} else {
		if (!elf) {
			if (!is_format(k->kernel_path, BG_KFMT_BZIMAGE, &info, &oom))
				return oom ? oom : bg_error(BANGER_EUNSUPPORTED, "kernel '%s': %s is not a bzImage", k->name,
						k->kernel_path);
			chosen = bg_strdup(k->kernel_path);
		} else {
			if (!is_format(k->kernel_path, BG_KFMT_ELF, &info, &oom))
				return oom ? oom : bg_error(BANGER_EUNSUPPORTED, "kernel '%s': %s is not an ELF vmlinux",
						k->name, k->kernel_path);
			if (info.pvh) {
				chosen = bg_strdup(k->kernel_path);
			} else {
				if ((rc = sibling(&alt, k->kernel_path, "bzImage")))
					return rc;
				if (!is_format(alt, BG_KFMT_BZIMAGE, &info, &oom)) {
					bg_free(alt);
					return oom ? oom : bg_error(BANGER_EUNSUPPORTED,
							"kernel '%s' is an ELF vmlinux without the PVH entry note and has no "
							"bzImage beside it; QEMU cannot boot it with -kernel: rebuild it with "
							"CONFIG_PVH=y, or import its bzImage", k->name);
				}
				chosen = alt;
				alt = NULL;
			}
		}
	}
	if (!chosen)
		return bg_error_oom();
	if (out)
		*out = chosen;
	else
		bg_free(chosen);
	return 0;
}

int bg_kernel_check_vmm(const bg_kernel_record *k, const char *vmm)
{
	return bg_kernel_boot_path(NULL, k, vmm);
}
