/* Booting and stopping a VM: host objects first (each recorded in the
 * handles as it is made), then the VMM (readiness, after it, is
 * ready.c).  Fault points ("<op>:<step>") let the crash tests kill the
 * process at every step. */
#include "vm_internal.h"

#include "../guest/agent.h"

#include <banger/ssh.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STOP_TIMEOUT_MS 20000

static int fault(const char *prefix, const char *step)
{
	char name[64];
	snprintf(name, sizeof(name), "%s:%s", prefix, step);
	return bg_fault_step(name);
}

static bool uses_dm(const bg_vm_op *op)
{
	return bg_endswith(op->vm.overlay, ".cow");
}

/* dm-snapshot: read-only loop over the image, loop over the VM's COW
 * file, snapshot target over both.  Handles are saved after each step. */
static int attach_dm(bg_vm_op *op, bg_vm_handles *h)
{
	const bg_host_ops *ops = op->ctx->env.host;
	char *dev = NULL;
	int base_fd = -1, cow_fd = -1, rc;
	if ((rc = ops->loop_attach(ops->self, op->image.rootfs_path, true, &dev, &base_fd)))
		return rc;
	snprintf(h->base_loop, sizeof(h->base_loop), "%s", dev);
	bg_free(dev);
	if ((rc = bg_handles_save(op->ctx, &op->vm, h)))
		goto out;
	if ((rc = ops->loop_attach(ops->self, op->vm.overlay, false, &dev, &cow_fd)))
		goto out;
	snprintf(h->cow_loop, sizeof(h->cow_loop), "%s", dev);
	bg_free(dev);
	snprintf(h->dm_name, sizeof(h->dm_name), "%s", op->paths.dm_name);
	snprintf(h->dm_dev, sizeof(h->dm_dev), "/dev/mapper/%s", op->paths.dm_name);
	if ((rc = bg_handles_save(op->ctx, &op->vm, h)))
		goto out;
	rc = ops->dm_snapshot_create(ops->self, h->dm_name, h->base_loop, h->cow_loop,
				     op->image.rootfs_bytes / 512);
	if (rc == 0)
		op->spec.system_disk = h->dm_dev;
out:
	/* dm now holds the loops open; autoclear takes them when it goes. */
	if (base_fd >= 0)
		close(base_fd);
	if (cow_fd >= 0)
		close(cow_fd);
	return rc;
}

static int record_started(bg_vm_op *op)
{
	op->vm.started_at = bg_wall_seconds();
	op->vm.updated_at = op->vm.started_at;
	char *s = bg_strdup(BG_VM_RUNNING);
	if (!s)
		return bg_error_oom();
	bg_free(op->vm.state);
	op->vm.state = s;
	bg_free(op->vm.last_error);
	op->vm.last_error = NULL;
	return bg_store_vm_update(&op->ctx->env.store, &op->vm);
}

int bg_vm_boot(bg_vm_op *op, const char *pfx)
{
	banger_ctx *ctx = op->ctx;
	const bg_host_ops *ops = ctx->env.host;
	bg_vm_handles h;
	memset(&h, 0, sizeof(h));
	snprintf(h.tap, sizeof(h.tap), "%s", op->paths.tap);
	int rc;
	const char *step = "starting";

	if ((rc = bg_vm_op_set_state(op, BG_VM_STARTING, NULL)))
		return rc;
	snprintf(h.overlay, sizeof(h.overlay), "%s", uses_dm(op) ? "dm-snapshot" : "file");
	if ((rc = bg_handles_save(ctx, &op->vm, &h)))
		goto fail;

	if ((rc = fault(pfx, "overlay")))
		goto fail;
	if (uses_dm(op)) {
		step = "system disk (dm-snapshot)";
		if ((rc = bg_vm_op_progress(op, "disks", "dm-snapshot over %s", op->image.rootfs_path)) ||
		    (rc = attach_dm(op, &h)))
			goto fail;
	}

	if ((rc = fault(pfx, "tap")))
		goto fail;
	step = "tap device";
	if ((rc = bg_vm_op_progress(op, "network", "tap %s with %s/%d, guest %s", h.tap, op->host_ip,
				    BG_SLOT_PREFIX, op->vm.guest_ip)) ||
	    (rc = ops->tap_create(ops->self, h.tap, op->host_ip, BG_SLOT_PREFIX)))
		goto fail;
	if ((rc = fault(pfx, "nat")))
		goto fail;
	if (op->vm.nat) {
		step = "NAT";
		char table[32];
		bg_nat_table_name(table, ctx->env.layout.instance);
		h.nat = true;
		if ((rc = bg_handles_save(ctx, &op->vm, &h)) ||
		    (rc = ops->nat_add(ops->self, table, op->vm.id, h.tap, op->vm.guest_ip)))
			goto fail;
	}

	if ((rc = fault(pfx, "spawn")))
		goto fail;
	step = "VMM spawn";
	if ((rc = bg_vm_op_progress(op, "vmm", "starting %s%s%s", op->driver.name,
				    op->driver.notice[0] ? ": " : "", op->driver.notice)) ||
	    (rc = op->driver.spawn(&op->driver, &op->spec, &h.pid)))
		goto fail;
	if ((rc = bg_handles_save(ctx, &op->vm, &h)))
		goto fail;
	if ((rc = fault(pfx, "configure")))
		goto fail;
	step = "VMM configuration";
	if ((rc = op->driver.configure(&op->driver, &op->spec)))
		goto fail;
	if ((rc = fault(pfx, "start")))
		goto fail;
	step = "VMM start";
	if ((rc = op->driver.start(&op->driver, &op->spec)))
		goto fail;
	if ((rc = record_started(op)))
		goto fail;
	if ((rc = fault(pfx, "running")))
		goto fail;
	return 0;

fail:;
	bg_error_saved saved;
	if (rc != BANGER_ECANCELLED)
		bg_error_prefix("%s failed", step);
	bg_error_save(&saved);
	char last[1100];
	snprintf(last, sizeof(last), "%s", saved.message ? saved.message : step);
	bg_vm_teardown(ctx, &op->vm, &h);
	bg_vm_op_set_state(op, BG_VM_STOPPED, last);
	bg_error_restore(&saved);
	return rc;
}

/* Ask the guest itself to power off over SSH (verified key).  QEMU's ACPI
 * power button needs logind or acpid in the guest, which container-born
 * images lack; a poweroff through sshd works wherever sshd does. */
static void guest_poweroff(bg_vm_op *op)
{
	const char *names[2];
	bg_vm_pin_names(&op->vm, names);
	banger_ssh_options so = BANGER_SSH_OPTIONS_INIT;
	so.host = op->vm.guest_ip;
	so.known_hosts_path = op->ctx->env.layout.known_hosts;
	so.pin_names = names;
	so.pin_names_count = 2;
	so.connect_timeout_ms = 5000;
	so.io_timeout_ms = 5000;
	banger_ssh *ssh = NULL;
	if (banger_ssh_connect(&ssh, op->ctx, &so) == 0) {
		banger_ssh_exec_options eo = BANGER_SSH_EXEC_OPTIONS_INIT;
		eo.timeout_ms = 5000;
		banger_ssh_result *res = NULL;
		/* the connection usually drops as the guest goes down */
		banger_ssh_exec(&res, ssh, "(systemctl poweroff || poweroff) >/dev/null 2>&1 &", &eo);
		banger_ssh_result_free(res);
		banger_ssh_close(ssh);
	}
	banger_error_clear();
}

int bg_vm_shutdown(bg_vm_op *op, bool force, const char *pfx)
{
	banger_ctx *ctx = op->ctx;
	int rc = bg_vm_op_set_state(op, BG_VM_STOPPING, NULL);
	if (rc)
		return rc;
	if ((rc = fault(pfx, "stopping")))
		return rc;
	bg_vm_handles h;
	bg_vm_rediscover(ctx, &op->vm, &h, NULL, 0);
	if (h.pid > 0 && bg_vmm_alive(op->vm.api_sock, h.pid)) {
		/* Graceful needs the driver; if the VM cannot be described any
		 * more (binary gone), the teardown's kill still stops it. */
		if (!force && (op->driver_ok || bg_vm_op_prepare_boot(op) == 0)) {
			/* A driver whose graceful stop needs guest userland (QEMU's
			 * ACPI power button) gets the guest asked first; one whose
			 * stop reaches the guest kernel itself (Firecracker's
			 * Ctrl-Alt-Del) does not. */
			if (!(op->driver.caps & BG_VMM_CAP_CTRL_ALT_DEL)) {
				bg_agent_addr aa;
				/* the vsock agent when the VM has one, else sshd */
				if (bg_vm_agent_addr(op, &aa) && bg_agent_poweroff(&aa, 3000) == 0) {
					bg_vm_op_note(op, "stop", "the vsock agent is powering the guest off");
				} else {
					bg_vm_op_note(op, "stop", "asking the guest to power off over SSH");
					guest_poweroff(op);
				}
				banger_error_clear();
				bg_vmm_wait_gone(h.pid, STOP_TIMEOUT_MS);
			}
			/* graceful through the VMM, then SIGTERM, then SIGKILL */
			if (bg_vmm_alive(op->vm.api_sock, h.pid))
				op->driver.stop(&op->driver, &op->spec, h.pid, STOP_TIMEOUT_MS / 2);
		}
		/* whatever is left, the teardown kills */
		banger_error_clear();
	}
	if ((rc = fault(pfx, "teardown")))
		return rc;
	if ((rc = bg_vm_teardown(ctx, &op->vm, &h)))
		return rc;
	if ((rc = fault(pfx, "stopped")))
		return rc;
	return bg_vm_op_set_state(op, BG_VM_STOPPED, NULL);
}
