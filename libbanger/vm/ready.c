/* Readiness of a booted VM: SSH answers with the pinned host key and,
 * where the VM has the vsock agent, the agent saw sshd listening first.
 * A first-boot error on the console or the VMM's death ends the wait
 * early.
 *
 * The caller hears WAITING about twice a second and never a second
 * apart, so it can stop the wait at any time: no step in here blocks
 * long without reporting.  The agent probe is short (the agent answers
 * in milliseconds once it runs), naps are short, and an SSH dial, which
 * may rightly take seconds (a guest still bringing up its network, a
 * slow handshake), reports from inside its own waits
 * (bg_ssh_connect_ticking). */
#include "vm_internal.h"

#include "../guest/agent.h"
#include "../guest/guest.h"
#include "../../guest/include/banger-guest/first_boot.h"

#include <banger/ssh.h>
#include <stdio.h>
#include <string.h>

#define CONSOLE_TAIL_BYTES 65536
#define ERROR_MARK BG_FB_ERROR_MARK

#define AGENT_PROBE_MS 400   /* one connect + VERSION + READY */
#define AGENT_GRACE_MS 5000  /* SSH works but the agent never confirmed */
#define SSH_ATTEMPT_MS 3000  /* one dial: TCP connect, handshake, authentication */
/* WAITING reports are BG_PROGRESS_WAIT_MS apart at least; no step
 * between two chances to report is longer than AGENT_PROBE_MS, so they
 * are under a second apart at most. */

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
bool bg_vm_agent_addr(bg_vm_op *op, bg_agent_addr *a)
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

/* One wait for readiness.  Stages: VMM up -> agent answers -> agent sees
 * sshd listening -> SSH handshake with the pinned key.  Without an agent
 * the middle two are skipped.  An agent that never answers at all does
 * not hold a VM whose SSH works for more than AGENT_GRACE_MS. */
typedef struct {
	bg_vm_op *op;
	uint32_t timeout_s;
	int64_t t0, deadline;
	bg_progress_pace pace; /* of WAITING */
	const char *names[2];
	banger_ssh_options so;
	bg_agent_addr aa;
	bool agent;           /* readiness asks the agent too */
	bool agent_seen, agent_sshd;
	bool agent_ok;        /* the last probe answered */
	bg_agent_report rep;
	char agent_why[300], ssh_why[300], fp[128];
	int64_t ssh_ok_at;    /* 0: SSH has not answered yet */
} ready_wait;

/* Nothing new, but the caller may want to stop waiting: WAITING when one
 * is due.  Also the SSH dial's tick. */
static int keep_alive(void *payload)
{
	ready_wait *w = payload;
	if (!bg_progress_due(&w->pace))
		return 0;
	return bg_vm_op_waiting(w->op, w->agent ? "agent" : "ssh");
}

/* Fill in the wait and say what it waits for. */
static int start(ready_wait *w, bg_vm_op *op, uint32_t timeout_s)
{
	memset(w, 0, sizeof(*w));
	w->op = op;
	w->timeout_s = timeout_s;
	w->t0 = bg_now_ms();
	w->deadline = w->t0 + (int64_t)timeout_s * 1000;
	bg_vm_pin_names(&op->vm, w->names);
	banger_ssh_options so = BANGER_SSH_OPTIONS_INIT;
	so.host = op->vm.guest_ip;
	so.known_hosts_path = op->ctx->env.layout.known_hosts;
	/* banger generated and pinned the host key before boot: only an
	 * exact match is accepted, there is no first-use window. */
	so.hostkey_policy = op->spec.identity_disk ? BANGER_SSH_HOSTKEY_PINNED : BANGER_SSH_HOSTKEY_TOFU;
	so.pin_names = w->names;
	so.pin_names_count = 2;
	so.connect_timeout_ms = SSH_ATTEMPT_MS;
	w->so = so;
	w->agent = bg_vm_agent_addr(op, &w->aa);
	snprintf(w->agent_why, sizeof(w->agent_why), "no answer yet");
	snprintf(w->ssh_why, sizeof(w->ssh_why), "no answer yet");
	int rc;
	if (w->agent)
		rc = bg_vm_op_progress(op, "agent", "waiting for the vsock agent (port %u) and sshd on %s (timeout %us)",
				       w->aa.port, op->vm.guest_ip, timeout_s);
	else
		rc = bg_vm_op_progress(op, "ssh", "waiting for sshd on %s (timeout %us)", op->vm.guest_ip, timeout_s);
	bg_progress_pace_restart(&w->pace);
	return rc;
}

/* The guest's first boot reported an error, or the VMM is gone: no
 * point waiting any longer. */
static int check_guest(ready_wait *w)
{
	bg_vm_op *op = w->op;
	bg_vm_handles h;
	pid_t pid = 0;
	if (bg_handles_cache_get(op->ctx, op->vm.id, &h))
		pid = h.pid;
	char *err = NULL;
	if (bg_vm_console_error(op->vm.log_path, &err)) {
		int rc = bg_error(BANGER_ERROR, "the guest's first boot failed: %s", err ? err : "");
		bg_free(err);
		return rc;
	}
	if (!bg_vmm_alive(op->vm.api_sock, pid)) {
		char tail[512];
		bg_vmm_log_tail(tail, sizeof(tail), op->vm.log_path);
		return bg_error(BANGER_EVMM, "the VMM exited during boot%s%s", tail[0] ? "; console: " : "", tail);
	}
	return 0;
}

/* Ask the agent (until it has seen sshd listening); a change in what it
 * says is a step. */
static int probe_agent(ready_wait *w)
{
	if (!w->agent || w->agent_sshd)
		return 0;
	int64_t left = w->deadline - bg_now_ms();
	int probe_ms = (int)(left < 200 ? 200 : left > AGENT_PROBE_MS ? AGENT_PROBE_MS : left);
	bg_agent_report r;
	int ar = bg_agent_ready(&r, &w->aa, probe_ms);
	if (ar == BANGER_EUNSUPPORTED) {
		bg_debug(w->op->ctx, "%s: readiness is SSH only: %s", w->op->vm.name, banger_error_last()->message);
		w->agent = false;
		return 0;
	}
	if (ar) {
		w->agent_ok = false;
		snprintf(w->agent_why, sizeof(w->agent_why), "%s", banger_error_last()->message);
		return 0;
	}
	int rc = 0;
	if (!w->agent_seen || strcmp(r.systemd, w->rep.systemd) != 0 || r.sshd_listening != w->rep.sshd_listening)
		rc = bg_vm_op_progress(w->op, "agent", "the vsock agent answers: systemd %s, sshd %s", r.systemd,
				       r.sshd_listening ? "listening" : "not listening yet");
	w->rep = r;
	w->agent_seen = w->agent_ok = true;
	w->agent_sshd = r.sshd_listening;
	return rc;
}

/* Dial SSH once, unless it answered already or the agent says sshd is
 * not listening yet.  A host-key or authentication verdict ends the
 * wait; anything else is tried again. */
static int probe_ssh(ready_wait *w)
{
	if (w->ssh_ok_at || (w->agent && !w->agent_sshd && w->agent_ok))
		return 0;
	banger_ssh *ssh = NULL;
	int rc = bg_ssh_connect_ticking(&ssh, &w->op->ctx->env, &w->so, keep_alive, w);
	if (rc == 0) {
		snprintf(w->fp, sizeof(w->fp), "%s", banger_ssh_host_fingerprint(ssh));
		banger_ssh_close(ssh);
		w->ssh_ok_at = bg_now_ms();
		return 0;
	}
	if (rc == BANGER_ETRUST || rc == BANGER_EREVOKED || rc == BANGER_EPERM || rc == BANGER_ECANCELLED)
		return rc;
	snprintf(w->ssh_why, sizeof(w->ssh_why), "%s", banger_error_last()->message);
	return 0;
}

static bool is_ready(const ready_wait *w, int64_t now)
{
	return w->ssh_ok_at &&
	       (!w->agent || w->agent_sshd || now - w->ssh_ok_at >= AGENT_GRACE_MS || now >= w->deadline);
}

static int report_ready(ready_wait *w, int64_t now)
{
	bg_vm_op *op = w->op;
	if (w->agent && !w->agent_sshd)
		bg_warn(op->ctx, "%s: SSH works but the vsock agent %s; ready on SSH alone", op->vm.name,
			!w->agent_seen ? "never answered"
			: w->agent_ok  ? "still reports sshd not listening"
				       : "stopped answering");
	return bg_vm_op_progress(op, "ready", "SSH answered with the pinned host key (%s) after %.1fs%s", w->fp,
				 (double)(now - w->t0) / 1000.0,
				 w->agent && w->agent_sshd ? "; the vsock agent confirmed sshd" : "");
}

/* The timeout names the stage the wait got to. */
static int timed_out(const ready_wait *w)
{
	const bg_vm_op *op = w->op;
	char stage[800];
	if (!w->agent)
		snprintf(stage, sizeof(stage), "the VMM is up; still waiting for sshd on %s", op->vm.guest_ip);
	else if (!w->agent_seen)
		snprintf(stage, sizeof(stage), "the VMM is up; still waiting for the vsock agent: %s", w->agent_why);
	else if (!w->agent_ok)
		snprintf(stage, sizeof(stage), "the vsock agent answered earlier but no longer: %s", w->agent_why);
	else if (!w->agent_sshd)
		snprintf(stage, sizeof(stage),
			 "the VMM and the vsock agent are up (systemd %s); still waiting for sshd to listen",
			 w->rep.systemd);
	else
		snprintf(stage, sizeof(stage), "the vsock agent reports sshd listening; still waiting for SSH on %s: %s",
			 op->vm.guest_ip, w->ssh_why);
	char tail[512];
	bg_vmm_log_tail(tail, sizeof(tail), op->vm.log_path);
	return bg_error(BANGER_ETIMEOUT, "VM %s did not become ready within %us (%s)%s%s", op->vm.name, w->timeout_s,
			stage, tail[0] ? "; console: " : "", tail);
}

int bg_vm_wait_ready(bg_vm_op *op, uint32_t timeout_s)
{
	ready_wait w;
	int rc = start(&w, op, timeout_s);
	while (rc == 0) {
		if ((rc = keep_alive(&w)) || (rc = check_guest(&w)) || (rc = probe_agent(&w)) ||
		    (rc = keep_alive(&w)) || (rc = probe_ssh(&w)))
			break;
		int64_t now = bg_now_ms();
		if (is_ready(&w, now))
			return report_ready(&w, now);
		if (now >= w.deadline)
			return timed_out(&w);
		if ((rc = keep_alive(&w)))
			break;
		bg_sleep_ms(w.agent ? 250 : BG_PROGRESS_WAIT_MS);
	}
	return rc;
}
