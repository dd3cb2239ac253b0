/* Rediscovery and the one liveness rule. */
#include "vm.h"

#include <banger/vm.h>
#include <stdio.h>
#include <string.h>

int bg_vm_rediscover(banger_ctx *ctx, const bg_vm_record *vm, bg_vm_handles *h,
		     char *note, size_t note_len)
{
	/* Callers tear down from *h even when this fails: never leave it
	 * uninitialised (a stale tap name there would be "deleted" instead
	 * of the VM's). */
	memset(h, 0, sizeof(*h));
	bg_vm_paths p;
	int rc = bg_layout_vm_paths(&p, &ctx->env.layout, vm->id);
	if (rc)
		return rc;
	if (note && note_len)
		note[0] = '\0';
	rc = bg_handles_read(p.handles, h);
	if (rc) {
		/* Missing or corrupt: fall back to the deterministic names.  A
		 * missing file is normal before the first resource exists. */
		if (note && note_len && rc != BANGER_ENOTFOUND)
			snprintf(note, note_len, "%s", banger_error_last()->message);
		banger_error_clear();
		memset(h, 0, sizeof(*h));
		snprintf(h->tap, sizeof(h->tap), "%s", p.tap);
		snprintf(h->dm_name, sizeof(h->dm_name), "%s", p.dm_name);
		h->nat = vm->nat != 0;
	}
	/* What the OS says wins over the scratch file. */
	const char *sock = vm->api_sock ? vm->api_sock : p.api_sock;
	if (!(h->pid && bg_proc_cmdline_has(h->pid, sock))) {
		pid_t *pids = NULL;
		size_t n = 0;
		if (bg_proc_find(&pids, &n, sock) == 0 && n > 0)
			h->pid = pids[0];
		bg_free(pids);
	}
	bg_vm_paths_free(&p);
	return 0;
}

bool bg_vm_alive(banger_ctx *ctx, const bg_vm_record *vm, pid_t *pid)
{
	if (pid)
		*pid = 0;
	if (!vm->state || strcmp(vm->state, BG_VM_RUNNING) != 0 || !vm->api_sock)
		return false;
	bg_vm_handles h;
	if (!bg_handles_cache_get(ctx, vm->id, &h) || !bg_proc_cmdline_has(h.pid, vm->api_sock)) {
		if (bg_vm_rediscover(ctx, vm, &h, NULL, 0) != 0)
			return false;
	}
	if (!bg_proc_cmdline_has(h.pid, vm->api_sock))
		return false;
	if (pid)
		*pid = h.pid;
	return true;
}

BANGER_EXTERN(int) banger_vm_is_alive(banger_ctx *ctx, const banger_vm *vm)
{
	if (!ctx || !vm)
		return bg_error(BANGER_EINVALID, "invalid argument");
	return bg_vm_alive(ctx, bg_vm_public_record(vm), NULL) ? 1 : 0;
}
