/* banger_vm_set: change a stopped VM's shape.  Disks only grow. */
#include "vm_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int grow_work_disk(const char *path, uint64_t bytes)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return bg_error_os(BANGER_EIO, errno, "stat %s", path);
	if ((uint64_t)st.st_size == bytes)
		return 0;
	if ((uint64_t)st.st_size > bytes)
		return bg_error(BANGER_EINVALID, "the work disk is %llu bytes; shrinking to %llu is not supported",
				(unsigned long long)st.st_size, (unsigned long long)bytes);
	if (truncate(path, (off_t)bytes) != 0)
		return bg_error_os(BANGER_EIO, errno, "grow %s", path);
	const char *fsck[] = { "e2fsck", "-f", "-p", path, NULL };
	int status = 0;
	int rc = bg_run(&status, NULL, NULL, fsck, 300000);
	if (rc == 0 && status > 1) /* 1: errors corrected */
		rc = bg_error(BANGER_EIO, "e2fsck of %s failed with status %d", path, status);
	const char *resize[] = { "resize2fs", path, NULL };
	if (rc == 0)
		rc = bg_run_checked(resize, 300000);
	return rc;
}

BANGER_EXTERN(int) banger_vm_set(banger_ctx *ctx, const char *name, uint32_t vcpus,
				 uint32_t memory_mib, uint64_t disk_bytes, int nat)
{
	if (!ctx)
		return bg_error(BANGER_EINVALID, "invalid argument");
	bg_vm_op op;
	int rc = bg_vm_op_begin(&op, ctx, name, -1);
	if (rc)
		goto out;
	if (bg_vm_alive(ctx, &op.vm, NULL) || strcmp(op.vm.state, BG_VM_STOPPED) != 0) {
		rc = bg_error(BANGER_ESTATE, "VM %s must be stopped to change it (it is %s)", op.vm.name, op.vm.state);
		goto out;
	}
	if (vcpus)
		op.vm.vcpus = vcpus;
	if (memory_mib)
		op.vm.memory_mib = memory_mib;
	if (nat >= 0)
		op.vm.nat = nat ? 1 : 0;
	/* The new shape must still boot under this VM's driver. */
	if ((rc = bg_vm_op_prepare_boot(&op)))
		goto out;
	if (disk_bytes) {
		if ((rc = grow_work_disk(op.vm.work_disk, disk_bytes)))
			goto out;
		op.vm.disk_bytes = disk_bytes;
	}
	op.vm.updated_at = bg_wall_seconds();
	rc = bg_store_vm_update(&ctx->store, &op.vm);
out:
	bg_vm_op_end(&op);
	return rc;
}
