/* Tearing down a VM's kernel objects, in a fixed order, from its handles
 * and from the deterministic names (so a lost scratch file loses nothing). */
#include "vm.h"
#include "../vmm/vmm.h"

#include <errno.h>
#include <glob.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define STOP_GRACE_MS 3000

static void keep_first(int *first, int rc)
{
	if (rc && !*first)
		*first = rc;
}

#define TRASH_PREFIX ".trash-"

bool bg_vm_dir_is_trash(const char *name)
{
	return name && strncmp(name, TRASH_PREFIX, strlen(TRASH_PREFIX)) == 0;
}

bool bg_vm_dir_is_staging(const char *name)
{
	return name && strncmp(name, BG_VM_STAGING_PREFIX, strlen(BG_VM_STAGING_PREFIX)) == 0;
}

int bg_vm_dir_remove(const char *dir)
{
	static atomic_uint counter;
	const char *slash = strrchr(dir, '/');
	if (!slash || !slash[1])
		return bg_remove_tree(dir);
	char *trash = bg_sprintf("%.*s/" TRASH_PREFIX "%s-%d-%u", (int)(slash - dir), dir, slash + 1, (int)getpid(),
				 atomic_fetch_add(&counter, 1));
	if (!trash)
		return bg_error_oom();
	int rc;
	if (rename(dir, trash) == 0)
		rc = bg_remove_tree(trash);
	else if (errno == ENOENT)
		rc = 0;
	else
		rc = bg_remove_tree(dir);
	bg_free(trash);
	return rc;
}

int bg_vm_teardown(banger_ctx *ctx, const bg_vm_record *vm, const bg_vm_handles *h)
{
	const bg_host_ops *ops = ctx->env.host;
	bg_vm_paths p;
	int rc = bg_layout_vm_paths(&p, &ctx->env.layout, vm->id);
	if (rc)
		return rc;
	int first = 0;
	const char *sock = vm->api_sock ? vm->api_sock : p.api_sock;

	/* 1. the VMM: only a process whose command line names our socket
	 *    (never a reused pid), plus any other such process /proc knows. */
	if (h->pid > 0 && bg_proc_cmdline_has(h->pid, sock))
		keep_first(&first, ops->process_terminate(ops->self, h->pid, STOP_GRACE_MS));
	pid_t *pids = NULL;
	size_t n = 0;
	if (bg_proc_find(&pids, &n, sock) == 0)
		for (size_t i = 0; i < n; i++)
			keep_first(&first, ops->process_terminate(ops->self, pids[i], STOP_GRACE_MS));
	bg_free(pids);
	/* 1b. the console relay: it ends by itself once the VMM's pipe has
	 *     closed (after draining the VMM's last output); one that still
	 *     names this VM's log is stopped. */
	keep_first(&first, bg_vmm_relay_stop(vm->log_path ? vm->log_path : p.console_log, 2000));

	/* 2. NAT rules tagged with the VM id */
	if (h->nat || vm->nat) {
		char table[32];
		bg_nat_table_name(table, ctx->env.layout.instance);
		keep_first(&first, ops->nat_remove(ops->self, table, vm->id));
	}

	/* 3. dm-snapshot target, 4. COW loop, 5. base loop */
	keep_first(&first, ops->dm_remove(ops->self, h->dm_name[0] ? h->dm_name : p.dm_name));
	if (h->cow_loop[0])
		keep_first(&first, ops->loop_detach(ops->self, h->cow_loop));
	if (h->base_loop[0])
		keep_first(&first, ops->loop_detach(ops->self, h->base_loop));
	char **loops = NULL;
	size_t nl = 0;
	if (ops->loop_list(ops->self, p.dir, &loops, &nl) == 0)
		for (size_t i = 0; i < nl; i++)
			keep_first(&first, ops->loop_detach(ops->self, loops[i]));
	bg_strv_free(loops, nl);

	/* 6. tap */
	keep_first(&first, ops->tap_delete(ops->self, h->tap[0] ? h->tap : p.tap));

	/* 7. stale sockets (and Firecracker's <vsock>_<port> listeners) */
	unlink(p.api_sock);
	unlink(p.qmp_sock);
	unlink(p.vsock_sock);
	char *pattern = bg_sprintf("%s_*", p.vsock_sock);
	if (pattern) {
		glob_t g;
		if (glob(pattern, GLOB_NOSORT, NULL, &g) == 0) {
			for (size_t i = 0; i < g.gl_pathc; i++)
				unlink(g.gl_pathv[i]);
			globfree(&g);
		}
		bg_free(pattern);
	}

	/* What is true now: nothing.  Keep the scratch file in step. */
	if (bg_path_exists(p.dir)) {
		bg_error_saved saved;
		bg_error_save(&saved);
		bg_vm_handles none;
		memset(&none, 0, sizeof(none));
		keep_first(&first, bg_handles_write(p.handles, &none));
		if (first != 0)
			bg_error_restore(&saved);
		else
			bg_error_restore(&saved), banger_error_clear();
	}
	bg_handles_cache_drop(ctx, vm->id);
	bg_vm_paths_free(&p);
	if (first)
		bg_error_prefix("tear down VM %s", vm->name ? vm->name : vm->id);
	return first;
}

int bg_vm_sessions_lost(banger_ctx *ctx, const char *vm_id)
{
	int n = 0;
	int rc = bg_store_session_mark_vm_lost(&ctx->env.store, vm_id, &n);
	if (rc == 0 && n > 0)
		bg_info(ctx, "%d session(s) of VM %s marked lost", n, vm_id);
	return rc;
}
