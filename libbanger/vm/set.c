/* banger_vm_set: change a stopped VM's shape.  Disks only grow. */
#include "vm_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* e2fsck and resize2fs parse a filesystem the guest wrote, so they run
 * confined to that one file (bg_run_confined: no capabilities, no
 * new privileges, Landlock where the kernel has it). */
static int e2fs_tool(banger_ctx *ctx, int *status, const char *const argv[], const char *disk)
{
	bool landlocked = false;
	int rc = bg_run_confined(status, NULL, NULL, argv, 300000, disk, &landlocked);
	if (rc == 0 && !landlocked)
		bg_warn(ctx, "%s ran without Landlock (the kernel has none): capabilities dropped only", argv[0]);
	return rc;
}

/* Check first, grow after: a filesystem e2fsck cannot repair is left
 * exactly as it was (size included), and the file is cut back to its
 * old size when resize2fs fails, so a failed grow never looks done. */
static int grow_work_disk(banger_ctx *ctx, const char *path, uint64_t bytes)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return bg_error_os(BANGER_EIO, errno, "open %s", path);
	struct stat st;
	int rc = 0, status = 0;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = bg_error(BANGER_EIO, "%s is not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size == bytes)
		goto out;
	if ((uint64_t)st.st_size > bytes) {
		rc = bg_error(BANGER_EINVALID, "the work disk is %llu bytes; shrinking to %llu is not supported",
			      (unsigned long long)st.st_size, (unsigned long long)bytes);
		goto out;
	}
	const char *fsck[] = { "e2fsck", "-f", "-p", path, NULL };
	if ((rc = e2fs_tool(ctx, &status, fsck, path)))
		goto out;
	if (status > 1) { /* 1: errors corrected */
		rc = bg_error(BANGER_EIO,
			      "the work disk %s has errors e2fsck -p cannot repair (status %d); it was not grown", path,
			      status);
		goto out;
	}
	if (ftruncate(fd, (off_t)bytes) != 0) {
		rc = bg_error_os(BANGER_EIO, errno, "grow %s", path);
		goto out;
	}
	const char *resize[] = { "resize2fs", path, NULL };
	if ((rc = e2fs_tool(ctx, &status, resize, path)) == 0 && status != 0)
		rc = bg_error(BANGER_EIO, "resize2fs of %s failed with status %d", path, status);
	if (rc) {
		bg_error_saved saved;
		bg_error_save(&saved);
		if (ftruncate(fd, st.st_size) != 0)
			bg_warn(ctx, "cannot cut %s back to %llu bytes: %s", path, (unsigned long long)st.st_size,
				strerror(errno));
		bg_error_restore(&saved);
		goto out;
	}
	if (fsync(fd) != 0)
		rc = bg_error_os(BANGER_EIO, errno, "fsync %s", path);
out:
	close(fd);
	return rc;
}

BANGER_EXTERN(int) banger_vm_set_options_init(banger_vm_set_options *opts, unsigned int version)
{
	static const banger_vm_set_options def = BANGER_VM_SET_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_vm_set_options", version,
			       BANGER_VM_SET_OPTIONS_VERSION, BANGER_VM_SET_OPTIONS_VERSION);
}

BANGER_EXTERN(int) banger_vm_set(banger_ctx *ctx, const char *name, const banger_vm_set_options *opts)
{
	if (!ctx)
		return bg_error(BANGER_EINVALID, "invalid argument");
	int rc = BG_OPTIONS_CHECK(opts, NULL, banger_vm_set_options, BANGER_VM_SET_OPTIONS_VERSION,
				  BANGER_VM_SET_OPTIONS_VERSION);
	if (rc)
		return rc;
	const uint32_t vcpus = opts->vcpus, memory_mib = opts->memory_mib;
	const uint64_t disk_bytes = opts->disk_bytes;
	const int nat = opts->nat;
	bg_vm_op op;
	rc = bg_vm_op_begin(&op, ctx, name, -1);
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
		if ((rc = grow_work_disk(ctx, op.vm.work_disk, disk_bytes)))
			goto out;
		op.vm.disk_bytes = disk_bytes;
	}
	op.vm.updated_at = bg_wall_seconds();
	rc = bg_store_vm_update(&ctx->env.store, &op.vm);
out:
	bg_vm_op_end(&op);
	return rc;
}
