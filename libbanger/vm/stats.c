/* banger_vm_stats: VMM CPU time and RSS from /proc, disk usage, and the
 * VMM's own metrics when it has any. */
#include "vm_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void proc_usage(pid_t pid, json_t *o)
{
	char path[64], buf[2048];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (f) {
		if (fgets(buf, sizeof(buf), f)) {
			const char *p = strrchr(buf, ')');
			unsigned long long ut = 0, st = 0;
			/* fields after ")": state ppid pgrp ... utime(14) stime(15) */
			/* /proc/PID/stat: numbers the kernel wrote */
			// NOLINTNEXTLINE(cert-err34-c)
			if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
				json_object_set_new(o, "vmm_cpu_seconds",
						    json_real((double)(ut + st) / (double)sysconf(_SC_CLK_TCK)));
		}
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (f) {
		while (fgets(buf, sizeof(buf), f)) {
			unsigned long long kb;
			if (sscanf(buf, "VmRSS: %llu kB", &kb) == 1) // NOLINT(cert-err34-c): /proc/PID/status
				json_object_set_new(o, "vmm_rss_bytes", json_integer((json_int_t)(kb * 1024)));
		}
		fclose(f);
	}
}

static json_t *disk(const char *path)
{
	struct stat st;
	if (!path || stat(path, &st) != 0)
		return json_null();
	json_t *d = json_object();
	json_object_set_new(d, "path", json_string(path));
	json_object_set_new(d, "size_bytes", json_integer((json_int_t)st.st_size));
	json_object_set_new(d, "allocated_bytes", json_integer((json_int_t)st.st_blocks * 512));
	return d;
}

BANGER_EXTERN(int) banger_vm_stats(char **out, banger_ctx *ctx, const char *name)
{
	if (!out || !ctx || !name)
		return bg_error(BANGER_EINVALID, "invalid argument");
	*out = NULL;
	bg_vm_op op;
	memset(&op, 0, sizeof(op));
	op.ctx = ctx;
	op.lock.fd = -1;
	int rc = bg_store_vm_get(&ctx->env.store, &op.vm, name);
	if (rc)
		return rc;
	json_t *o = json_object();
	if (!o) {
		bg_vm_record_clear(&op.vm);
		return bg_error_oom();
	}
	pid_t pid = 0;
	bool alive = bg_vm_alive(ctx, &op.vm, &pid);
	json_object_set_new(o, "name", json_string(op.vm.name));
	json_object_set_new(o, "state", json_string(op.vm.state));
	json_object_set_new(o, "alive", json_boolean(alive));
	json_object_set_new(o, "vmm", json_string(op.vm.vmm));
	if (alive) {
		json_object_set_new(o, "vmm_pid", json_integer(pid));
		json_object_set_new(o, "uptime_seconds", json_integer(bg_wall_seconds() - op.vm.started_at));
		proc_usage(pid, o);
	}
	json_object_set_new(o, "system_disk", disk(op.vm.overlay));
	json_object_set_new(o, "work_disk", disk(op.vm.work_disk));
	json_t *metrics = json_null();
	if (alive && bg_layout_vm_paths(&op.paths, &ctx->env.layout, op.vm.id) == 0 &&
	    bg_vm_op_prepare_boot(&op) == 0 && (op.driver.caps & BG_VMM_CAP_METRICS)) {
		char *m = NULL;
		if (op.driver.metrics(&op.driver, &op.spec, &m) == 0 && m) {
			json_t *parsed = json_loads(m, 0, NULL);
			if (parsed) {
				json_decref(metrics);
				metrics = parsed;
			}
		}
		bg_free(m);
	}
	banger_error_clear();
	json_object_set_new(o, "vmm_metrics", metrics);
	char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	bg_vm_op_end(&op);
	if (!text)
		return bg_error_oom();
	*out = bg_strdup(text);
	free(text);
	return *out ? 0 : bg_error_oom();
}
