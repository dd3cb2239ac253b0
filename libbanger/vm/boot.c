/* Booting and stopping a VM: host objects first (each recorded in the
 * handles as it is made), then the VMM; readiness is SSH with the pinned
 * host key, and the vsock agent's report where the VM has one.  Fault
 * points ("<op>:<step>") let the crash tests kill the process at every
 * step. */
#include "vm_internal.h"

#include "../guest/agent.h"
#include "../../guest/include/banger-guest/first_boot.h"

#include <banger/ssh.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STOP_TIMEOUT_MS 20000
#define CONSOLE_TAIL_BYTES 65536
#define ERROR_MARK BG_FB_ERROR_MARK

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

bool bg_vm_console_error(const char *console_log, char **msg)
{
	*msg = NULL;
	/* The tail across a rotation of the log (the relay may just have
	 * moved the line into console.log.1). */
	char *buf = bg_malloc(CONSOLE_TAIL_BYTES + 1);
	ssize_t n = buf ? (ssize_t)bg_vmm_console_tail(buf, CONSOLE_TAIL_BYTES, console_log) : -1;
	if (n <= 0) {
		bg_free(buf);
		return false;
	}
	buf[n] = '\0';
	/* NULs from the serial line would end the search early */
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	char *hit = strstr(buf, ERROR_MARK);
	if (hit) {
		hit += strlen(ERROR_MARK);
		size_t len = strcspn(hit, "\r\n");
		*msg = bg_strndup(hit, len);
	}
	bg_free(buf);
	return hit != NULL;
}

/* Readiness also asks the guest's vsock agent (docs/vsock-agent.md)
 * where there is one: the driver gives the VM a vsock device and the
 * image carries the agent.  Otherwise it is SSH alone. */
#define AGENT_PROBE_MS 1500  /* one connect + VERSION + READY */
#define AGENT_GRACE_MS 5000  /* SSH works but the agent never confirmed */

static bool agent_addr(bg_vm_op *op, bg_agent_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->port = BG_AGENT_PORT;
	if (!(op->driver.caps & BG_VMM_CAP_VSOCK) || !op->spec.vsock_cid) {
		const char *why = op->driver.no_vsock;
		bg_debug(op->ctx, "%s: readiness is SSH only: %s gives this VM no vsock device%s%s%s", op->vm.name,
			 op->driver.name, why ? " (" : "", why ? why : "", why ? ")" : "");
		return false;
	}
	if (!bg_agent_image_has(op->image.rootfs_path)) {
		bg_debug(op->ctx, "%s: readiness is SSH only: image %s does not carry the vsock agent (%s)",
			 op->vm.name, op->image.name ? op->image.name : "?", BG_AGENT_GUEST_BIN);
		return false;
	}
	if (op->driver.caps & BG_VMM_CAP_VSOCK_UDS)
		a->uds_path = op->spec.vsock_path; /* hybrid vsock */
	a->cid = op->spec.vsock_cid;
	return a->uds_path != NULL || a->cid >= 3;
}

int bg_vm_wait_ready(bg_vm_op *op, uint32_t timeout_s)
{
	banger_ctx *ctx = op->ctx;
	int64_t deadline = bg_now_ms() + (int64_t)timeout_s * 1000;
	int64_t t0 = bg_now_ms();
	const char *names[2];
	bg_vm_pin_names(&op->vm, names);
	banger_ssh_options so = BANGER_SSH_OPTIONS_INIT;
	so.host = op->vm.guest_ip;
	so.known_hosts_path = ctx->env.layout.known_hosts;
	/* banger generated and pinned the host key before boot: only an
	 * exact match is accepted, there is no first-use window. */
	so.hostkey_policy = op->spec.identity_disk ? BANGER_SSH_HOSTKEY_PINNED : BANGER_SSH_HOSTKEY_TOFU;
	so.pin_names = names;
	so.pin_names_count = 2;
	so.connect_timeout_ms = 3000;
	/* Stages: VMM up -> agent answers -> agent sees sshd listening ->
	 * SSH handshake with the pinned key.  Without an agent, the middle
	 * two are skipped.  An agent that never answers at all does not hold
	 * a VM whose SSH works for more than AGENT_GRACE_MS. */
	bg_agent_addr aa;
	bool agent = agent_addr(op, &aa);
	bool agent_seen = false, agent_sshd = false, agent_ok = false; /* ok: the last probe answered */
	bg_agent_report rep;
	memset(&rep, 0, sizeof(rep));
	char agent_why[300] = "no answer yet", ssh_why[300] = "no answer yet", fp[128] = "";
	int64_t ssh_ok_at = 0;
	int rc;
	if (agent)
		rc = bg_vm_op_progress(op, "agent", "waiting for the vsock agent (port %u) and sshd on %s (timeout %us)",
				       aa.port, op->vm.guest_ip, timeout_s);
	else
		rc = bg_vm_op_progress(op, "ssh", "waiting for sshd on %s (timeout %us)", op->vm.guest_ip, timeout_s);
	if (rc)
		return rc;
	for (;;) {
		bg_vm_handles h;
		pid_t pid = 0;
		if (bg_handles_cache_get(ctx, op->vm.id, &h))
			pid = h.pid;
		char *err = NULL;
		if (bg_vm_console_error(op->vm.log_path, &err)) {
			rc = bg_error(BANGER_ERROR, "the guest's first boot failed: %s", err ? err : "");
			bg_free(err);
			return rc;
		}
		if (!bg_vmm_alive(op->vm.api_sock, pid)) {
			char tail[512];
			bg_vmm_log_tail(tail, sizeof(tail), op->vm.log_path);
			return bg_error(BANGER_EVMM, "the VMM exited during boot%s%s", tail[0] ? "; console: " : "", tail);
		}
		if (agent && !agent_sshd) {
			int64_t left = deadline - bg_now_ms();
			int probe_ms = (int)(left < 200 ? 200 : left > AGENT_PROBE_MS ? AGENT_PROBE_MS : left);
			bg_agent_report r;
			int ar = bg_agent_ready(&r, &aa, probe_ms);
			if (ar == 0) {
				if ((!agent_seen || strcmp(r.systemd, rep.systemd) != 0 ||
				     r.sshd_listening != rep.sshd_listening) &&
				    (rc = bg_vm_op_progress(op, "agent", "the vsock agent answers: systemd %s, sshd %s",
							    r.systemd,
							    r.sshd_listening ? "listening" : "not listening yet")))
					return rc;
				rep = r;
				agent_seen = agent_ok = true;
				agent_sshd = r.sshd_listening;
			} else if (ar == BANGER_EUNSUPPORTED) {
				bg_debug(ctx, "%s: readiness is SSH only: %s", op->vm.name, banger_error_last()->message);
				agent = false;
			} else {
				agent_ok = false;
				snprintf(agent_why, sizeof(agent_why), "%s", banger_error_last()->message);
			}
		}
		/* The agent says sshd is not listening: no point dialling yet. */
		if (!ssh_ok_at && (!agent || agent_sshd || !agent_ok)) {
			banger_ssh *ssh = NULL;
			rc = banger_ssh_connect(&ssh, ctx, &so);
			if (rc == 0) {
				snprintf(fp, sizeof(fp), "%s", banger_ssh_host_fingerprint(ssh));
				banger_ssh_close(ssh);
				ssh_ok_at = bg_now_ms();
			} else if (rc == BANGER_ETRUST || rc == BANGER_EREVOKED || rc == BANGER_EPERM) {
				return rc;
			} else {
				snprintf(ssh_why, sizeof(ssh_why), "%s", banger_error_last()->message);
			}
		}
		int64_t now = bg_now_ms();
		if (ssh_ok_at && (!agent || agent_sshd || now - ssh_ok_at >= AGENT_GRACE_MS || now >= deadline)) {
			if (agent && !agent_sshd)
				bg_warn(ctx, "%s: SSH works but the vsock agent %s; ready on SSH alone", op->vm.name,
					!agent_seen ? "never answered" : agent_ok ? "still reports sshd not listening"
									: "stopped answering");
			return bg_vm_op_progress(op, "ready", "SSH answered with the pinned host key (%s) after %.1fs%s",
						 fp, (double)(now - t0) / 1000.0,
						 agent && agent_sshd ? "; the vsock agent confirmed sshd" : "");
		}
		if (now >= deadline)
			break;
		/* nothing new, but the caller may want to stop waiting */
		if ((rc = bg_vm_op_waiting(op, agent ? "agent" : "ssh")))
			return rc;
		bg_sleep_ms(agent ? 250 : 500);
	}
	char stage[800];
	if (!agent)
		snprintf(stage, sizeof(stage), "the VMM is up; still waiting for sshd on %s", op->vm.guest_ip);
	else if (!agent_seen)
		snprintf(stage, sizeof(stage), "the VMM is up; still waiting for the vsock agent: %s", agent_why);
	else if (!agent_ok)
		snprintf(stage, sizeof(stage), "the vsock agent answered earlier but no longer: %s", agent_why);
	else if (!agent_sshd)
		snprintf(stage, sizeof(stage),
			 "the VMM and the vsock agent are up (systemd %s); still waiting for sshd to listen",
			 rep.systemd);
	else
		snprintf(stage, sizeof(stage),
			 "the vsock agent reports sshd listening; still waiting for SSH on %s: %s",
			 op->vm.guest_ip, ssh_why);
	char tail[512];
	bg_vmm_log_tail(tail, sizeof(tail), op->vm.log_path);
	return bg_error(BANGER_ETIMEOUT, "VM %s did not become ready within %us (%s)%s%s", op->vm.name, timeout_s,
			stage, tail[0] ? "; console: " : "", tail);
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
				if (agent_addr(op, &aa) && bg_agent_poweroff(&aa, 3000) == 0) {
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
