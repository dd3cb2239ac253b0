/* The operation bundle: lookup + VM lock, then (for boots) image, kernel,
 * driver, command line and spec. */
#include "vm_internal.h"

#include "../kernel/kernel.h"

#include <stdio.h>
#include <string.h>

#define LOCK_WAIT_MS 30000

/* wait: the caller's progress for the wait for the lock, or NULL. */
static int begin(bg_vm_op *op, banger_ctx *ctx, const char *name, int lock_ms, bg_progress *wait)
{
	memset(op, 0, sizeof(*op));
	op->ctx = ctx;
	op->lock.fd = -1;
	if (!name)
		return bg_error(BANGER_EINVALID, "a VM name is required");
	int rc = bg_store_vm_get(&ctx->env.store, &op->vm, name);
	if (rc)
		return rc;
	if ((rc = bg_layout_vm_paths(&op->paths, &ctx->env.layout, op->vm.id)))
		return rc;
	char what[300];
	snprintf(what, sizeof(what), "the lock of VM %s", op->vm.name);
	if (wait)
		wait->subject = op->vm.name;
	if ((rc = bg_lock_acquire_reporting(&op->lock, op->paths.lock, lock_ms < 0 ? LOCK_WAIT_MS : lock_ms, wait,
					    what))) {
		if (rc != BANGER_ECANCELLED)
			bg_error_prefix("VM %s is busy", op->vm.name);
		return rc;
	}
	/* The record may have changed while we waited for the lock. */
	char id[9];
	snprintf(id, sizeof(id), "%s", op->vm.id);
	bg_vm_record_clear(&op->vm);
	if ((rc = bg_store_vm_get(&ctx->env.store, &op->vm, id)))
		return rc;
	return 0;
}

int bg_vm_op_begin(bg_vm_op *op, banger_ctx *ctx, const char *name, int lock_ms)
{
	return begin(op, ctx, name, lock_ms, NULL);
}

int bg_vm_op_begin_reporting(bg_vm_op *op, banger_ctx *ctx, const char *name, int operation, banger_progress_cb cb,
			     void *payload)
{
	bg_progress wait = { cb, payload, operation, NULL };
	return begin(op, ctx, name, -1, &wait);
}

void bg_vm_op_set_progress(bg_vm_op *op, int operation, banger_progress_cb cb, void *payload)
{
	op->progress.cb = cb;
	op->progress.payload = payload;
	op->progress.operation = operation;
}

/* Log a step (every step is logged, reported or not) and report it;
 * may_stop: the caller's answer counts. */
static int step(bg_vm_op *op, bool may_stop, const char *stage, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	bg_info(op->ctx, "%s: %s: %s", op->vm.name ? op->vm.name : "vm", stage, msg);
	banger_progress r = { .event = BANGER_PROGRESS_STEP, .stage = stage, .subject = op->vm.name, .detail = msg };
	if (may_stop)
		return bg_progress_report(&op->progress, &r);
	bg_progress_tell(&op->progress, &r);
	return 0;
}

int bg_vm_op_progress(bg_vm_op *op, const char *stage, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = step(op, true, stage, fmt, ap);
	va_end(ap);
	return rc;
}

void bg_vm_op_note(bg_vm_op *op, const char *stage, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	step(op, false, stage, fmt, ap);
	va_end(ap);
}

int bg_vm_op_waiting(bg_vm_op *op, const char *stage)
{
	banger_progress r = { .event = BANGER_PROGRESS_WAITING, .stage = stage, .subject = op->vm.name };
	return bg_progress_report(&op->progress, &r);
}

int bg_vm_op_set_state(bg_vm_op *op, const char *state, const char *last_error)
{
	int rc = bg_store_vm_set_state(&op->ctx->env.store, op->vm.id, state, last_error);
	if (rc)
		return rc;
	char *s = bg_strdup(state);
	char *e = last_error ? bg_strdup(last_error) : NULL;
	if (!s || (last_error && !e)) {
		bg_free(s);
		bg_free(e);
		return bg_error_oom();
	}
	bg_free(op->vm.state);
	bg_free(op->vm.last_error);
	op->vm.state = s;
	op->vm.last_error = e;
	return 0;
}

void bg_vm_pin_names(const bg_vm_record *vm, const char *names[2])
{
	names[0] = vm->dns_name;
	names[1] = vm->guest_ip;
}

void bg_vm_op_release_boot(bg_vm_op *op)
{
	bg_image_record_clear(&op->image);
	bg_kernel_record_clear(&op->kernel);
	if (op->driver_ok)
		bg_vmm_driver_free(&op->driver);
	op->driver_ok = false;
	bg_free(op->kernel_path);
	bg_free(op->cmdline);
	op->kernel_path = op->cmdline = NULL;
	memset(&op->spec, 0, sizeof(op->spec));
}

int bg_vm_op_prepare_boot(bg_vm_op *op)
{
	banger_ctx *ctx = op->ctx;
	bg_vm_record *vm = &op->vm;
	int rc;
	/* Callable again (restart: stop, then start): start from scratch. */
	bg_vm_op_release_boot(op);
	if (!vm->image)
		return bg_error(BANGER_EINVALID, "VM %s has no image", vm->name);
	if ((rc = bg_store_image_get(&ctx->env.store, &op->image, vm->image)))
		return rc;
	if (!vm->kernel)
		return bg_error(BANGER_EINVALID, "VM %s has no kernel", vm->name);
	if ((rc = bg_store_kernel_get(&ctx->env.store, &op->kernel, vm->kernel)))
		return rc;
	const char *fc = bg_config_get(&ctx->env.config, "firecracker_bin");
	const char *qemu = bg_config_get(&ctx->env.config, "qemu_bin");
	if ((rc = bg_vmm_resolve(&op->driver, vm->vmm, fc, qemu, NULL)))
		return rc;
	op->driver_ok = true;
	/* A kernel the VMM cannot boot fails here, before anything exists. */
	if ((rc = bg_kernel_boot_file(&op->kernel_path, &op->kernel, &op->driver)))
		return rc;

	bg_subnet sn;
	if ((rc = bg_subnet_parse(&sn, bg_config_get(&ctx->env.config, "subnet"))))
		return rc;
	int64_t slot = bg_subnet_slot_of(&sn, vm->guest_ip);
	if (slot < 0)
		return bg_error(BANGER_EINVALID, "VM %s has address %s outside the subnet", vm->name,
				vm->guest_ip ? vm->guest_ip : "(none)");
	if ((rc = bg_subnet_slot(&sn, (uint32_t)slot, op->host_ip, NULL)))
		return rc;
	bg_bootargs ba = {
		.driver = &op->driver,
		.guest_ip = vm->guest_ip,
		.gateway = op->host_ip,
		.netmask = BG_SLOT_NETMASK,
		.hostname = vm->name,
		.iface = "eth0",
		.has_initrd = op->kernel.initrd_path != NULL,
		.extra = NULL,
	};
	if ((rc = bg_bootargs_build(&op->cmdline, &ba)))
		return rc;

	bg_vm_spec *s = &op->spec;
	memset(s, 0, sizeof(*s));
	s->id = vm->id;
	s->name = vm->name;
	s->vcpus = vm->vcpus;
	s->memory_mib = vm->memory_mib;
	s->kernel_path = op->kernel_path;
	s->kernel_format = NULL; /* sniffed from the file the VMM gets */
	s->initrd_path = op->kernel.initrd_path;
	s->cmdline = op->cmdline;
	s->system_disk = vm->overlay;
	s->work_disk = vm->work_disk;
	s->identity_disk = bg_path_exists(op->paths.identity_disk) ? op->paths.identity_disk : NULL;
	s->tap = op->paths.tap;
	s->mac = vm->mac;
	bool vsock = (op->driver.caps & BG_VMM_CAP_VSOCK) != 0;
	s->vsock_cid = vsock ? vm->vsock_cid : 0;
	s->vsock_path = vsock ? vm->vsock_path : NULL;
	s->api_sock = vm->api_sock;
	s->console_log = vm->log_path;
	/* The guest decides how much it prints: the relay keeps the log to
	 * this size (and one rotated file of it). */
	uint64_t con_max = 0;
	if ((rc = bg_parse_size(&con_max, bg_config_get(&ctx->env.config, "console_log_max")))) {
		bg_error_prefix("config key 'console_log_max'");
		return rc;
	}
	if (con_max < BG_CONSOLE_LOG_MIN)
		return bg_error(BANGER_EINVALID, "config key 'console_log_max': at least %u bytes",
				(unsigned)BG_CONSOLE_LOG_MIN);
	s->console_log_max = con_max;
	s->metrics_path = (op->driver.caps & BG_VMM_CAP_METRICS) ? vm->metrics_path : NULL;
	s->log_path = NULL;
	return op->driver.check(&op->driver, s);
}

void bg_vm_op_end(bg_vm_op *op)
{
	if (!op)
		return;
	bg_lock_release(&op->lock);
	bg_vm_op_release_boot(op);
	bg_vm_record_clear(&op->vm);
	bg_vm_paths_free(&op->paths);
	memset(op, 0, sizeof(*op));
	op->lock.fd = -1;
}
