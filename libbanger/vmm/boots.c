/* Which kernels a driver boots: its BG_VMM_CAP_KERNEL_* bits applied to
 * what the one kernel parser (../kformat) reads from the file.  The
 * drivers' early checks and the choice of the file a VM boots
 * (kernel/vmm.c) both go through bg_vmm_boots, so they cannot disagree. */
#include "vmm.h"

#include <stdlib.h>
#include <string.h>

bool bg_vmm_boots(const bg_vmm_driver *d, bg_kernel_format f, bool pvh)
{
	switch (f) {
	case BG_KFMT_ELF:
		return (d->caps & BG_VMM_CAP_KERNEL_ELF) || ((d->caps & BG_VMM_CAP_KERNEL_PVH) && pvh);
	case BG_KFMT_BZIMAGE:
		return (d->caps & BG_VMM_CAP_KERNEL_BZIMAGE) != 0;
	default:
		return false;
	}
}

static bg_kernel_format declared_format(const char *declared)
{
	if (bg_streq(declared, "elf"))
		return BG_KFMT_ELF;
	if (bg_streq(declared, "bzimage"))
		return BG_KFMT_BZIMAGE;
	return BG_KFMT_UNKNOWN;
}

int bg_vmm_check_kernel(const bg_vmm_driver *d, const char *path, const char *declared)
{
	bg_kernel_info k;
	bg_error_saved saved;
	bg_error_save(&saved);
	int rc = bg_kernel_detect_file(&k, path, false);
	if (rc == BANGER_EINVALID || rc == BANGER_EUNSUPPORTED) {
		/* Not a file the parser recognises (the test fakes' stub kernels
		 * among them): the spec's word for it stands in. */
		bg_error_restore(&saved);
		memset(&k, 0, sizeof(k));
		k.format = declared_format(declared);
	} else {
		free(saved.message); /* strdup'ed by bg_error_save */
		if (rc)
			return rc;
	}
	if (k.format == BG_KFMT_UNKNOWN)
		return bg_error(BANGER_EINVALID, "%s: %s is neither an ELF vmlinux nor a bzImage", d->name, path);
	if (bg_vmm_boots(d, k.format, k.pvh))
		return 0;
	const char *what = k.format == BG_KFMT_BZIMAGE ? "a bzImage"
			   : (d->caps & BG_VMM_CAP_KERNEL_PVH) ? "an ELF vmlinux without the PVH entry note (CONFIG_PVH)"
							       : "an ELF vmlinux";
	return bg_error(BANGER_EUNSUPPORTED, "%s: kernel %s is %s; %s", d->name, path, what,
			d->kernel_advice ? d->kernel_advice : "use another VMM");
}
