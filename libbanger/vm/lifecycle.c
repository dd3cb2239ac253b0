/* start, stop, restart, delete.  Each holds the VM's lock for its whole
 * run, so two processes never interleave on one VM. */
#include "vm_internal.h"

#include "../guest/guest.h"

#include <string.h>

BANGER_EXTERN(int) banger_vm_start_options_init(banger_vm_start_options *opts, unsigned int version)
{
	static const banger_vm_start_options def = BANGER_VM_START_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_vm_start_options", version, BANGER_VM_START_OPTIONS_VERSION,
			       BANGER_VM_START_OPTIONS_VERSION);
}

static int start_locked(bg_vm_op *op, const banger_vm_start_options *o)
{
	if (bg_vm_alive(op->ctx, &op->vm, NULL))
		return bg_error(BANGER_ESTATE, "VM %s is already running", op->vm.name);
	if (strcmp(op->vm.state, BG_VM_STOPPED) != 0 && strcmp(op->vm.state, BG_VM_RUNNING) != 0)
		return bg_error(BANGER_ESTATE, "VM %s is %s", op->vm.name, op->vm.state);
	if (strcmp(op->vm.state, BG_VM_RUNNING) == 0) {
		/* recorded running but dead: clean up first */
		bg_vm_handles h;
		bg_vm_rediscover(op->ctx, &op->vm, &h, NULL, 0);
		int rc = bg_vm_teardown(op->ctx, &op->vm, &h);
		if (rc)
			return rc;
	}
	int rc = bg_vm_op_prepare_boot(op);
	if (rc)
		return rc;
	if ((rc = bg_vm_boot(op, "start")))
		return rc;
	if (o->no_wait) {
		bg_progress_done(&op->progress, op->vm.name, 0);
		return 0;
	}
	uint32_t timeout = o->ready_timeout_s;
	if (!timeout && bg_config_get_u32(&op->ctx->env.config, "ready_timeout", &timeout))
		timeout = 180;
	rc = bg_vm_wait_ready(op, timeout);
	if (rc) {
		/* A VM that cannot come up is stopped again, with the reason. */
		bg_error_saved saved;
		bg_error_save(&saved);
		bg_vm_shutdown(op, true, "start");
		bg_vm_op_set_state(op, BG_VM_STOPPED, saved.message);
		bg_error_restore(&saved);
	} else {
		bg_progress_done(&op->progress, op->vm.name, 0);
	}
	return rc;
}

BANGER_EXTERN(int) banger_vm_start(banger_ctx *ctx, const char *name, const banger_vm_start_options *opts)
{
	banger_vm_start_options def = BANGER_VM_START_OPTIONS_INIT;
	if (!ctx)
		return bg_error(BANGER_EINVALID, "invalid argument");
	int rc = BG_OPTIONS_CHECK(opts, &def, banger_vm_start_options, BANGER_VM_START_OPTIONS_VERSION,
				  BANGER_VM_START_OPTIONS_VERSION);
	if (rc)
		return rc;
	bg_vm_op op;
	rc = bg_vm_op_begin_reporting(&op, ctx, name, BANGER_PROGRESS_OP_VM_START, opts->progress,
				      opts->progress_payload);
	if (rc == 0) {
		bg_vm_op_set_progress(&op, BANGER_PROGRESS_OP_VM_START, opts->progress, opts->progress_payload);
		rc = start_locked(&op, opts);
	}
	bg_vm_op_end(&op);
	return rc;
}

static int stop_locked(bg_vm_op *op, bool force)
{
	if (strcmp(op->vm.state, BG_VM_STOPPED) == 0 && !bg_vm_alive(op->ctx, &op->vm, NULL)) {
		/* nothing runs; make sure nothing is left either */
		bg_vm_handles h;
		bg_vm_rediscover(op->ctx, &op->vm, &h, NULL, 0);
		int rc = bg_vm_teardown(op->ctx, &op->vm, &h);
		return rc ? rc : bg_vm_sessions_lost(op->ctx, op->vm.id);
	}
	int rc = bg_vm_shutdown(op, force, "stop");
	/* whatever ran in the guest went down with it */
	return rc ? rc : bg_vm_sessions_lost(op->ctx, op->vm.id);
}

BANGER_EXTERN(int) banger_vm_stop_options_init(banger_vm_stop_options *opts, unsigned int version)
{
	static const banger_vm_stop_options def = BANGER_VM_STOP_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_vm_stop_options", version,
			       BANGER_VM_STOP_OPTIONS_VERSION, BANGER_VM_STOP_OPTIONS_VERSION);
}

BANGER_EXTERN(int) banger_vm_stop(banger_ctx *ctx, const char *name, const banger_vm_stop_options *opts)
{
	banger_vm_stop_options def = BANGER_VM_STOP_OPTIONS_INIT;
	if (!ctx)
		return bg_error(BANGER_EINVALID, "invalid argument");
	int rc = BG_OPTIONS_CHECK(opts, &def, banger_vm_stop_options, BANGER_VM_STOP_OPTIONS_VERSION,
				  BANGER_VM_STOP_OPTIONS_VERSION);
	if (rc)
		return rc;
	bg_vm_op op;
	rc = bg_vm_op_begin(&op, ctx, name, -1);
	if (rc == 0)
		rc = stop_locked(&op, opts->force != 0);
	bg_vm_op_end(&op);
	return rc;
}

BANGER_EXTERN(int) banger_vm_restart(banger_ctx *ctx, const char *name, const banger_vm_start_options *opts)
{
	banger_vm_start_options def = BANGER_VM_START_OPTIONS_INIT;
	if (!ctx)
		return bg_error(BANGER_EINVALID, "invalid argument");
	int rc = BG_OPTIONS_CHECK(opts, &def, banger_vm_start_options, BANGER_VM_START_OPTIONS_VERSION,
				  BANGER_VM_START_OPTIONS_VERSION);
	if (rc)
		return rc;
	bg_vm_op op;
	rc = bg_vm_op_begin_reporting(&op, ctx, name, BANGER_PROGRESS_OP_VM_RESTART, opts->progress,
				      opts->progress_payload);
	if (rc == 0)
		rc = stop_locked(&op, false);
	if (rc == 0) {
		bg_vm_op_set_progress(&op, BANGER_PROGRESS_OP_VM_RESTART, opts->progress, opts->progress_payload);
		rc = start_locked(&op, opts);
	}
	bg_vm_op_end(&op);
	return rc;
}

BANGER_EXTERN(int) banger_vm_delete_options_init(banger_vm_delete_options *opts, unsigned int version)
{
	static const banger_vm_delete_options def = BANGER_VM_DELETE_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_vm_delete_options", version,
			       BANGER_VM_DELETE_OPTIONS_VERSION, BANGER_VM_DELETE_OPTIONS_VERSION);
}

BANGER_EXTERN(int) banger_vm_delete(banger_ctx *ctx, const char *name, const banger_vm_delete_options *opts)
{
	banger_vm_delete_options def = BANGER_VM_DELETE_OPTIONS_INIT;
	if (!ctx)
		return bg_error(BANGER_EINVALID, "invalid argument");
	int rc = BG_OPTIONS_CHECK(opts, &def, banger_vm_delete_options, BANGER_VM_DELETE_OPTIONS_VERSION,
				  BANGER_VM_DELETE_OPTIONS_VERSION);
	if (rc)
		return rc;
	const bool force = opts->force != 0;
	bg_vm_op op;
	rc = bg_vm_op_begin(&op, ctx, name, -1);
	if (rc)
		goto out;
	if (!force && bg_vm_alive(ctx, &op.vm, NULL)) {
		rc = bg_error(BANGER_ESTATE, "VM %s is running: stop it first or use --force", op.vm.name);
		goto out;
	}
	/* Recorded first: a crash from here on is finished by reconcile. */
	if ((rc = bg_vm_op_set_state(&op, BG_VM_DELETING, NULL)))
		goto out;
	bg_fault_point("delete:deleting");
	bg_vm_handles h;
	bg_vm_rediscover(ctx, &op.vm, &h, NULL, 0);
	if (h.pid > 0 && !force && bg_vm_op_prepare_boot(&op) == 0)
		op.driver.stop(&op.driver, &op.spec, h.pid, 10000);
	banger_error_clear();
	if ((rc = bg_vm_teardown(ctx, &op.vm, &h)))
		goto out;
	bg_fault_point("delete:teardown");
	const char *names[2];
	bg_vm_pin_names(&op.vm, names);
	if (names[0] && names[1] &&
	    (rc = bg_known_hosts_remove(ctx->env.layout.known_hosts, names, 2, NULL)))
		goto out;
	bg_fault_point("delete:pins");
	if ((rc = bg_vm_dir_remove(op.paths.dir)))
		goto out;
	bg_fault_point("delete:files");
	rc = bg_store_vm_delete(&ctx->env.store, op.vm.id);
	if (rc == BANGER_ENOTFOUND) {
		/* Another process's reconcile saw the directory gone and
		 * finished the deletion for us: it is done. */
		banger_error_clear();
		rc = 0;
	}
	if (rc == 0)
		rc = bg_vm_sessions_lost(ctx, op.vm.id);
out:
	bg_vm_op_end(&op);
	return rc;
}
