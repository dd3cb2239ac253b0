/* banger_vm_create: allocate, build disks and identity, boot, wait for
 * verified SSH.  Any failure rolls back everything made so far (a failed
 * boot is kept when asked), and a cancel always does. */
#include "vm_internal.h"

#include "../guest/guest.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MKFS_TIMEOUT_MS 120000

BANGER_EXTERN(int) banger_vm_create_options_init(banger_vm_create_options *opts, unsigned int version)
{
	static const banger_vm_create_options def = BANGER_VM_CREATE_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_vm_create_options", version, BANGER_VM_CREATE_OPTIONS_VERSION,
			       BANGER_VM_CREATE_OPTIONS_VERSION);
}

/* Names become hostnames and DNS labels ("<name>.vm"). */
static int check_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 63)
		return bg_error(BANGER_EINVALID, "VM name '%s' must be 1 to 63 characters", name);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!(islower(c) || isdigit(c) || (c == '-' && i > 0 && i < n - 1)))
			return bg_error(BANGER_EINVALID,
					"VM name '%s' may use lowercase letters, digits and inner '-' only", name);
	}
	if (bg_vm_id_valid(name))
		return bg_error(BANGER_EINVALID, "VM name '%s' looks like a VM id; choose another", name);
	return 0;
}

static int fault(const char *step)
{
	char name[64];
	snprintf(name, sizeof(name), "create:%s", step);
	return bg_fault_step(name);
}

/* Create the VM directory and take its lock.  The directory is made
 * under a staging name, its lock file is created and locked there, the
 * stamped record written, and then it is renamed into place: a VM
 * directory never exists without a record saying which store made it,
 * and never unlocked while its creator is at work (the lock file moves
 * with the directory, so the lock taken in staging is the VM's lock).
 * A sweep leaves staging directories alone while their lock is held.
 * The rename fails when the id is taken; another process's sweep may
 * remove a staging directory a killed creator left, which is all a
 * retry needs to handle. */
static int make_locked_dir(bg_vm_op *op)
{
	int rc = 0;
	const char *slash = strrchr(op->paths.dir, '/');
	char *stage = slash ? bg_sprintf("%.*s/" BG_VM_STAGING_PREFIX "%s-%d", (int)(slash - op->paths.dir),
					 op->paths.dir, slash + 1, (int)getpid())
			    : NULL;
	char *stage_lock = stage ? bg_path_join(stage, BG_VM_LOCK_FILE) : NULL;
	if (!stage_lock) {
		bg_free(stage);
		return bg_error_oom();
	}
	/* A success breaks out with the lock held, a failure with an error;
	 * running out of attempts leaves no lock held. */
	for (int attempt = 0; attempt < 10; attempt++) {
		if (mkdir(stage, 0700) != 0 && errno != EEXIST) {
			rc = bg_error_os(bg_code_from_errno(errno), errno, "create %s", stage);
			break;
		}
		if ((rc = bg_lock_acquire(&op->lock, stage_lock, 2000))) {
			if (rc == BANGER_ENOTFOUND)
				continue; /* the staging directory went away under us */
			break;
		}
		if ((rc = bg_copy_write_vm(op->ctx->env.store.id, &op->vm, stage))) {
			bg_lock_release(&op->lock);
			if (!bg_path_exists(stage))
				continue;
			break;
		}
		if (rename(stage, op->paths.dir) != 0) {
			int err = errno;
			bg_lock_release(&op->lock);
			if (err == ENOENT)
				continue;
			rc = bg_error_os(err == ENOTEMPTY || err == EEXIST ? BANGER_EEXISTS : BANGER_EIO, err,
					 "rename %s to %s", stage, op->paths.dir);
			break;
		}
		if (bg_lock_is_current(&op->lock, op->paths.lock))
			break;
		bg_lock_release(&op->lock);
	}
	if (op->lock.fd < 0 && (rc == 0 || rc == BANGER_EBUSY || rc == BANGER_ENOTFOUND))
		rc = bg_error(BANGER_EBUSY, "cannot create and lock %s: it keeps disappearing", op->paths.dir);
	if (rc && bg_path_exists(stage))
		bg_remove_tree(stage);
	bg_free(stage_lock);
	bg_free(stage);
	return rc;
}

/* Lowest free /30 slot and lowest free CID >= 3, read inside the caller's
 * IMMEDIATE transaction so two creators never pick the same. */
static int allocate(banger_ctx *ctx, const bg_subnet *sn, uint32_t *slot, uint32_t *cid)
{
	bg_vm_record *vms;
	size_t n;
	int rc = bg_store_vm_list(&ctx->env.store, &vms, &n);
	if (rc)
		return rc;
	uint32_t slots = bg_subnet_slots(sn);
	rc = bg_error(BANGER_EBUSY, "no free guest address left in subnet (%u VMs)", slots);
	for (uint32_t s = 0; s < slots; s++) {
		bool used = false;
		for (size_t i = 0; i < n && !used; i++)
			used = bg_subnet_slot_of(sn, vms[i].guest_ip) == (int64_t)s;
		if (!used) {
			*slot = s;
			rc = 0;
			break;
		}
	}
	for (uint32_t c = 3; rc == 0; c++) {
		bool used = false;
		for (size_t i = 0; i < n && !used; i++)
			used = vms[i].vsock_cid == c;
		if (!used) {
			*cid = c;
			break;
		}
	}
	bg_vm_records_free(vms, n);
	if (rc == 0)
		banger_error_clear();
	return rc;
}

static int make_work_disk(const char *path, uint64_t bytes)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return bg_error_os(bg_code_from_errno(errno), errno, "create %s", path);
	int rc = ftruncate(fd, (off_t)bytes) == 0 ? 0 : bg_error_os(BANGER_EIO, errno, "size %s", path);
	close(fd);
	if (rc)
		return rc;
	/* Made without mounting anything. */
	const char *argv[] = { "mkfs.ext4", "-q", "-F", "-L", "banger-work", "-m", "0",
			       "-E", "lazy_itable_init=1,lazy_journal_init=1", path, NULL };
	rc = bg_run_checked(argv, MKFS_TIMEOUT_MS);
	if (rc)
		bg_error_prefix("make the work disk");
	return rc;
}

/* The copy-on-write system disk: with device-mapper, a sparse COW file
 * for a snapshot made at each boot; without, a reflink clone (or sparse
 * copy) of the image. */
static int make_overlay(bg_vm_op *op, char **overlay_path)
{
	*overlay_path = NULL;
	if (bg_dm_available()) {
		char *cow = bg_sprintf("%s/system.cow", op->paths.dir);
		if (!cow)
			return bg_error_oom();
		int fd = open(cow, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		int rc = fd < 0 ? bg_error_os(BANGER_EIO, errno, "create %s", cow) : 0;
		if (fd >= 0) {
			if (ftruncate(fd, (off_t)op->image.rootfs_bytes) != 0)
				rc = bg_error_os(BANGER_EIO, errno, "size %s", cow);
			close(fd);
		}
		if (rc || (rc = bg_vm_op_progress(op, "disks", "system disk: dm-snapshot COW file %s", cow))) {
			bg_free(cow);
			return rc;
		}
		*overlay_path = cow;
		return 0;
	}
	bg_overlay_kind kind;
	int rc = bg_overlay_clone(op->image.rootfs_path, op->paths.overlay, &kind);
	if (rc || (rc = bg_vm_op_progress(op, "disks", "system disk: %s of %s (no device-mapper here)",
					  bg_overlay_kind_name(kind), op->image.rootfs_path)))
		return rc;
	*overlay_path = bg_strdup(op->paths.overlay);
	return *overlay_path ? 0 : bg_error_oom();
}

static int make_identity(bg_vm_op *op)
{
	char *priv = NULL, *pub = NULL;
	bg_sshkey key;
	memset(&key, 0, sizeof(key));
	int rc = bg_sshkey_generate_ed25519(&priv, &pub, op->vm.dns_name);
	if (rc == 0)
		rc = bg_vm_identity_write(op->ctx, &op->vm, op->host_ip, priv, pub);
	if (rc == 0)
		rc = bg_sshkey_from_line(&key, pub);
	if (rc == 0) {
		/* Pinned before first boot; an old pin for a reused IP or name
		 * belongs to a VM that no longer exists and is replaced. */
		const char *names[2];
		bg_vm_pin_names(&op->vm, names);
		rc = bg_known_hosts_pin(op->ctx->env.layout.known_hosts, names, 2, 22, &key, 0);
		if (rc == 0) {
			char *fp = NULL;
			bg_sshkey_fingerprint(&fp, &key);
			rc = bg_vm_op_progress(op, "identity", "host key %s pinned for %s and %s", fp ? fp : "",
					       names[0], names[1]);
			bg_free(fp);
		}
	}
	bg_sshkey_free(&key);
	bg_free_secret(priv);
	bg_free(pub);
	return rc;
}

/* Undo a failed create: kernel objects, pins, files, row. */
static void rollback(bg_vm_op *op, bool recorded, bool keep)
{
	bg_error_saved saved;
	bg_error_save(&saved);
	bg_vm_handles h;
	bg_vm_rediscover(op->ctx, &op->vm, &h, NULL, 0);
	bg_vm_teardown(op->ctx, &op->vm, &h);
	if (keep && recorded) {
		bg_vm_op_set_state(op, BG_VM_STOPPED, saved.message ? saved.message : "create failed");
	} else {
		if (op->vm.dns_name && op->vm.guest_ip) {
			const char *names[2];
			bg_vm_pin_names(&op->vm, names);
			bg_known_hosts_remove(op->ctx->env.layout.known_hosts, names, 2, NULL);
		}
		bg_vm_dir_remove(op->paths.dir);
		if (recorded)
			bg_store_vm_delete(&op->ctx->env.store, op->vm.id);
	}
	bg_error_restore(&saved);
}

static int set_str(char **field, const char *v)
{
	bg_free(*field);
	*field = v ? bg_strdup(v) : NULL;
	return (v && !*field) ? bg_error_oom() : 0;
}

/* What the VM will be, decided and checked before anything is created:
 * image, kernel, name, sizes, driver, paths, and a dry run of the boot
 * description (the kernel/VMM checks fail here).  Fills op->vm, *img
 * and *sn; creates nothing. */
static int plan(bg_vm_op *op, const banger_vm_create_options *opts, bg_image_record *img, bg_subnet *sn)
{
	banger_ctx *ctx = op->ctx;
	bg_vm_record *vm = &op->vm;
	int rc;
	if ((rc = bg_store_image_get(&ctx->env.store, img, opts->image))) {
		if (rc == BANGER_ENOTFOUND)
			bg_error(rc, "no image named '%s' (see `banger image list`)", opts->image);
		return rc;
	}
	const char *kernel = opts->kernel ? opts->kernel : img->kernel_name;
	if (!kernel || !*kernel)
		kernel = bg_config_get(&ctx->env.config, "default_kernel");
	if (!kernel || !*kernel)
		return bg_error(BANGER_EINVALID, "image '%s' names no kernel: pass --kernel or set default_kernel",
				opts->image);
	if (opts->name) {
		bg_vm_record other;
		if (bg_store_vm_get(&ctx->env.store, &other, opts->name) == 0) {
			bg_vm_record_clear(&other);
			return bg_error(BANGER_EEXISTS, "a VM named '%s' already exists", opts->name);
		}
		banger_error_clear();
	}
	uint32_t def;
	uint64_t disk = opts->disk_bytes;
	if (!disk && (rc = bg_parse_size(&disk, bg_config_get(&ctx->env.config, "disk_size"))))
		return rc;
	if ((rc = bg_vm_id_generate(vm->id)))
		return rc;
	vm->vcpus = opts->vcpus;
	if (!vm->vcpus && (rc = bg_config_get_u32(&ctx->env.config, "vcpus", &def)) == 0)
		vm->vcpus = def;
	vm->memory_mib = opts->memory_mib;
	if (!vm->memory_mib && (rc = bg_config_get_u32(&ctx->env.config, "memory_mib", &def)) == 0)
		vm->memory_mib = def;
	if (rc)
		return rc;
	vm->disk_bytes = disk;
	vm->nat = opts->nat ? 1 : 0;
	char genname[16];
	snprintf(genname, sizeof(genname), "vm-%s", vm->id);
	const char *name = opts->name ? opts->name : genname;

	/* resolve "auto" once: the VM keeps its driver */
	bg_vmm_driver d;
	const char *want = opts->vmm ? opts->vmm : bg_config_get(&ctx->env.config, "vmm");
	const char *notice = NULL;
	if ((rc = bg_vmm_resolve(&d, want, bg_config_get(&ctx->env.config, "firecracker_bin"),
				 bg_config_get(&ctx->env.config, "qemu_bin"), &notice)))
		return rc;
	(void)notice; /* reported when the VMM starts (progress "vmm") */
	rc = set_str(&vm->vmm, d.name);
	bg_vmm_driver_free(&d);
	if (rc || (rc = bg_layout_vm_paths(&op->paths, &ctx->env.layout, vm->id)) ||
	    (rc = bg_subnet_parse(sn, bg_config_get(&ctx->env.config, "subnet"))))
		return rc;
	char dns[80];
	snprintf(dns, sizeof(dns), "%s.vm", name);
	if ((rc = set_str(&vm->name, name)) || (rc = set_str(&vm->image, img->name)) ||
	    (rc = set_str(&vm->kernel, kernel)) || (rc = set_str(&vm->dns_name, dns)) ||
	    (rc = set_str(&vm->api_sock, op->paths.api_sock)) ||
	    (rc = set_str(&vm->vsock_path, op->paths.vsock_sock)) ||
	    (rc = set_str(&vm->log_path, op->paths.console_log)) ||
	    (rc = set_str(&vm->metrics_path, op->paths.metrics)) ||
	    (rc = set_str(&vm->vm_dir, op->paths.dir)) ||
	    (rc = set_str(&vm->overlay, bg_dm_available() ? "" : op->paths.overlay)) ||
	    (rc = set_str(&vm->work_disk, op->paths.work_disk)) ||
	    (rc = set_str(&vm->state, BG_VM_CREATING)))
		return rc;
	/* Dry run of the boot description with the first address: the
	 * kernel/VMM checks fail here, before anything exists. */
	char ip[16];
	bg_subnet_slot(sn, 0, NULL, ip);
	vm->vsock_cid = 3;
	if ((rc = set_str(&vm->guest_ip, ip)) || (rc = set_str(&vm->mac, "06:00:00:00:00:00")) ||
	    (rc = bg_vm_op_prepare_boot(op)))
		return rc;
	bg_vm_op_release_boot(op);
	return 0;
}

/* Record the VM: the lowest free address slot and vsock CID, and the row
 * in state "creating", in one transaction. */
static int record(bg_vm_op *op, const bg_subnet *sn)
{
	banger_ctx *ctx = op->ctx;
	bg_vm_record *vm = &op->vm;
	uint32_t slot = 0, cid = 0;
	char ip[16], mac[18];
	int rc;
	if ((rc = bg_store_begin(&ctx->env.store)))
		return rc;
	if ((rc = allocate(ctx, sn, &slot, &cid))) {
		bg_store_rollback(&ctx->env.store);
		return rc;
	}
	bg_subnet_slot(sn, slot, NULL, ip);
	bg_mac_from_ip(mac, ip);
	vm->vsock_cid = cid;
	vm->created_at = vm->updated_at = bg_wall_seconds();
	if ((rc = set_str(&vm->guest_ip, ip)) || (rc = set_str(&vm->mac, mac)) ||
	    (rc = bg_store_vm_insert(&ctx->env.store, vm))) {
		bg_store_rollback(&ctx->env.store);
		if (rc == BANGER_EEXISTS)
			bg_error(rc, "a VM named '%s' already exists", vm->name);
		return rc;
	}
	if ((rc = bg_store_commit(&ctx->env.store)))
		bg_store_rollback(&ctx->env.store);
	return rc;
}

/* The VM's disks: the copy-on-write system disk, the work disk, and the
 * identity disk (host key pinned) when the image was prepared. */
static int make_disks(bg_vm_op *op)
{
	bg_vm_record *vm = &op->vm;
	char *overlay = NULL;
	int rc;
	if ((rc = make_overlay(op, &overlay)))
		return rc;
	rc = set_str(&vm->overlay, overlay);
	bg_free(overlay);
	if (rc || (rc = bg_store_vm_update(&op->ctx->env.store, vm)))
		return rc;
	op->spec.system_disk = vm->overlay;
	if ((rc = fault("overlay")) || (rc = make_work_disk(vm->work_disk, vm->disk_bytes)) ||
	    (rc = fault("workdisk")))
		return rc;
	if (op->image.prepared) {
		if ((rc = make_identity(op)))
			return rc;
		op->spec.identity_disk = op->paths.identity_disk;
	} else {
		bg_warn(op->ctx, "image %s was not prepared by banger: the host key is trusted on first use",
			op->image.name);
	}
	return fault("identity");
}

/* Stopped as asked, or booted and (unless told not to wait) ready. */
static int first_start(bg_vm_op *op, const banger_vm_create_options *opts)
{
	int rc;
	if (opts->no_start)
		return bg_vm_op_set_state(op, BG_VM_STOPPED, NULL);
	if ((rc = bg_vm_boot(op, "create")) || opts->no_wait)
		return rc;
	uint32_t timeout = opts->ready_timeout_s;
	if (!timeout && bg_config_get_u32(&op->ctx->env.config, "ready_timeout", &timeout))
		timeout = 180;
	return bg_vm_wait_ready(op, timeout);
}

/* A plan with no side effects, then the steps that make the VM; a
 * failure after the directory exists is rolled back as a whole. */
BANGER_EXTERN(int) banger_vm_create(banger_vm **out, banger_ctx *ctx, const banger_vm_create_options *opts)
{
	if (out)
		*out = NULL;
	if (!ctx)
		return bg_error(BANGER_EINVALID, "invalid argument");
	int rc = BG_OPTIONS_CHECK(opts, NULL, banger_vm_create_options, BANGER_VM_CREATE_OPTIONS_VERSION,
				  BANGER_VM_CREATE_OPTIONS_VERSION);
	if (rc)
		return rc;
	if (!opts->image)
		return bg_error(BANGER_EINVALID, "an image is required (--image)");
	if (opts->name && check_name(opts->name))
		return BANGER_EINVALID;

	bg_vm_op op;
	memset(&op, 0, sizeof(op));
	op.ctx = ctx;
	op.lock.fd = -1;
	bg_vm_op_set_progress(&op, BANGER_PROGRESS_OP_VM_CREATE, opts->progress, opts->progress_payload);
	bg_vm_record *vm = &op.vm;
	bg_image_record img;
	memset(&img, 0, sizeof(img));
	bg_subnet sn;
	bool recorded = false, dir_made = false;

	if ((rc = plan(&op, opts, &img, &sn)))
		goto early;
	/* ---- from here on, everything made is undone on failure ---- */
	if ((rc = make_locked_dir(&op)))
		goto early;
	dir_made = true;
	if ((rc = fault("dir")) || (rc = record(&op, &sn)))
		goto fail;
	recorded = true;
	if ((rc = fault("recorded")) || (rc = bg_vm_op_prepare_boot(&op)) ||
	    (rc = bg_vm_op_progress(&op, "create", "%s (%s), %u vCPU, %u MiB, %s, %s", vm->name, vm->id,
				    vm->vcpus, vm->memory_mib, vm->guest_ip, op.driver.name)) ||
	    (rc = make_disks(&op)) || (rc = first_start(&op, opts)))
		goto fail;
	bg_progress_done(&op.progress, vm->name, 0);
	if (out) {
		bg_vm_record copy;
		if (bg_store_vm_get(&ctx->env.store, &copy, vm->id) == 0)
			bg_vm_public_new(out, &copy);
	}
	bg_image_record_clear(&img);
	bg_vm_op_end(&op);
	return 0;

fail:;
	/* A cancel is the caller saying stop, not a failure to debug: it is
	 * rolled back whatever keep_on_failure says, and its error is the
	 * plain BANGER_ECANCELLED. */
	const bool cancelled = rc == BANGER_ECANCELLED;
	if (!cancelled)
		bg_error_prefix("create VM %s", vm->name ? vm->name : vm->id);
	if (dir_made)
		rollback(&op, recorded, opts->keep_on_failure != 0 && !cancelled);
early:
	bg_image_record_clear(&img);
	bg_vm_op_end(&op);
	return rc;
}
