/* The QEMU driver: qemu-system-x86_64 -M pc with the same VM spec as
 * Firecracker, KVM when usable else TCG, a QMP socket at the spec's api
 * socket path (liveness: the pid's command line names it), started paused
 * (-S) so that start() is QMP "cont". */
#include "vmm.h"
#include "../../guest/include/banger-guest/first_boot.h"

#include <string.h>

/* ---- argv (pure) ---- */

typedef struct {
	char **v;
	size_t n, cap;
	bool oom;
} argv_b;

static void add(argv_b *a, char *s /* owned; NULL = out of memory */)
{
	if (a->oom || !s) {
		a->oom = true;
		bg_free(s);
		return;
	}
	if (a->n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 32;
		char **nv = bg_realloc(a->v, cap * sizeof(char *));
		if (!nv) {
			a->oom = true;
			bg_free(s);
			return;
		}
		a->v = nv;
		a->cap = cap;
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

static void adds(argv_b *a, const char *s)
{
	add(a, bg_strdup(s));
}

/* QemuOpts values: a comma is written as ",,". */
static char *esc(const char *s)
{
	size_t n = 0;
	for (const char *p = s; *p; p++)
		n += *p == ',' ? 2 : 1;
	char *o = bg_malloc(n + 1);
	if (!o)
		return NULL;
	char *w = o;
	for (const char *p = s; *p; p++) {
		*w++ = *p;
		if (*p == ',')
			*w++ = ',';
	}
	*w = '\0';
	return o;
}

static void add_drive(argv_b *a, const char *id, const char *path, bool ro)
{
	char *e = esc(path);
	adds(a, "-drive");
	add(a, e ? bg_sprintf("if=none,id=%s,file=%s,format=raw%s", id, e, ro ? ",readonly=on" : "") : NULL);
	adds(a, "-device");
	add(a, bg_sprintf("virtio-blk-pci,drive=%s", id));
	bg_free(e);
}

void bg_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		bg_free(*p);
	bg_free(argv);
}

int bg_qemu_argv(char ***out, const bg_vm_spec *s, const char *binary, bool kvm, bool vsock)
{
	*out = NULL;
	if (!binary || !s->api_sock || !s->console_log || !s->kernel_path)
		return bg_error(BANGER_EINVALID, "qemu: the VM spec needs an api socket, console log and kernel");
	if (strchr(s->api_sock, ','))
		return bg_error(BANGER_EINVALID, "qemu: the QMP socket path must not contain a comma: %s", s->api_sock);
	if (s->tap && (!s->mac || strchr(s->tap, ',') || strchr(s->mac, ',')))
		return bg_error(BANGER_EINVALID, "qemu: a tap device needs a guest MAC (and no commas)");

	argv_b a = { NULL, 0, 0, false };
	adds(&a, binary);
	if (s->name) {
		char *e = esc(s->name);
		adds(&a, "-name");
		add(&a, e ? bg_sprintf("guest=%s", e) : NULL);
		bg_free(e);
	}
	/* -M pc: microvm hangs under TCG here.  -nodefaults: no VGA, NIC,
	 * serial, monitor or media we did not ask for. */
	adds(&a, "-M");
	adds(&a, "pc");
	adds(&a, "-accel");
	adds(&a, kvm ? "kvm" : "tcg");
	adds(&a, "-cpu");
	adds(&a, kvm ? "host" : "max");
	adds(&a, "-m");
	add(&a, bg_sprintf("%u", s->memory_mib ? s->memory_mib : 128));
	adds(&a, "-smp");
	add(&a, bg_sprintf("%u", s->vcpus ? s->vcpus : 1));
	adds(&a, "-nodefaults");
	adds(&a, "-no-user-config");
	adds(&a, "-display");
	adds(&a, "none");
	adds(&a, "-no-reboot");
	adds(&a, "-S");
	adds(&a, "-kernel");
	adds(&a, s->kernel_path);
	if (s->initrd_path) {
		adds(&a, "-initrd");
		adds(&a, s->initrd_path);
	}
	if (s->cmdline) {
		adds(&a, "-append");
		adds(&a, s->cmdline);
	}
	/* The console: QEMU's stdout when that is the relay's pipe, else
	 * appended to the same log as QEMU's own stdio. */
	adds(&a, "-chardev");
	if (s->console_log_max) {
		adds(&a, "stdio,id=con0,signal=off");
	} else {
		char *log = esc(s->console_log);
		add(&a, log ? bg_sprintf("file,id=con0,path=%s,append=on", log) : NULL);
		bg_free(log);
	}
	adds(&a, "-serial");
	adds(&a, "chardev:con0");
	/* Disks in this order: the guest sees vda, vdb, vdc. */
	if (s->system_disk)
		add_drive(&a, "vda", s->system_disk, false);
	if (s->work_disk)
		add_drive(&a, "vdb", s->work_disk, false);
	if (s->identity_disk)
		add_drive(&a, "vdc", s->identity_disk, true);
	if (s->tap) {
		adds(&a, "-netdev");
		add(&a, bg_sprintf("tap,id=n0,ifname=%s,script=no,downscript=no", s->tap));
		adds(&a, "-device");
		add(&a, bg_sprintf("virtio-net-pci,netdev=n0,mac=%s", s->mac));
	}
	if (vsock && s->vsock_cid) {
		adds(&a, "-device");
		add(&a, bg_sprintf("vhost-vsock-pci,guest-cid=%u", s->vsock_cid));
	}
	adds(&a, "-qmp");
	add(&a, bg_sprintf("unix:%s,server=on,wait=off", s->api_sock));

	if (a.oom) {
		bg_argv_free(a.v);
		return bg_error_oom();
	}
	*out = a.v;
	return 0;
}

/* ---- driver ---- */

static int q_check(const bg_vmm_driver *d, const bg_vm_spec *s)
{
	if (!d->binary)
		return bg_error(BANGER_EUNSUPPORTED, "qemu: binary not found");
	if (!s->api_sock || !s->console_log || !s->kernel_path)
		return bg_error(BANGER_EINVALID, "qemu: the VM spec needs an api socket, console log and kernel");
	if (s->vcpus < 1 || s->vcpus > 255 || s->memory_mib < 16)
		return bg_error(BANGER_EINVALID, "qemu: need 1..255 vcpus and at least 16 MiB (got %u, %u MiB)",
				s->vcpus, s->memory_mib);
	int rc = bg_vmm_check_kernel(d, s->kernel_path, s->kernel_format);
	if (rc)
		return rc;
	if (s->vsock_cid && !(d->caps & BG_VMM_CAP_VSOCK))
		return bg_error(BANGER_EUNSUPPORTED,
				"qemu: vsock needs /dev/vhost-vsock on the host (modprobe vhost_vsock), which is absent");
	if (s->vsock_cid && s->vsock_cid < 3)
		return bg_error(BANGER_EINVALID, "qemu: the guest CID must be >= 3");
	char **argv = NULL;
	rc = bg_qemu_argv(&argv, s, d->binary, d->kvm, d->caps & BG_VMM_CAP_VSOCK);
	bg_argv_free(argv);
	return rc;
}

static int q_spawn(const bg_vmm_driver *d, const bg_vm_spec *s, pid_t *pid)
{
	*pid = 0;
	char **argv = NULL;
	int rc = bg_vmm_unlink_socket(s->api_sock);
	if (!rc)
		rc = bg_qemu_argv(&argv, s, d->binary, d->kvm, d->caps & BG_VMM_CAP_VSOCK);
	if (!rc)
		rc = bg_vmm_spawn_relayed(pid, (const char *const *)argv, s->console_log, s->console_log_max);
	bg_argv_free(argv);
	if (rc)
		return rc;
	int64_t deadline = bg_now_ms() + BG_VMM_SPAWN_TIMEOUT_MS;
	rc = bg_vmm_wait_socket(s->api_sock, *pid, s->console_log, BG_VMM_SPAWN_TIMEOUT_MS);
	/* The socket exists before QEMU has opened its disks; a QMP answer
	 * comes only from the main loop, after machine setup succeeded. */
	if (!rc) {
		char *status = NULL;
		int left = (int)(deadline - bg_now_ms());
		rc = bg_qmp_query_status(&status, s->api_sock, left > 1000 ? left : 1000);
		bg_free(status);
		if (rc && !bg_vmm_alive(s->api_sock, *pid)) {
			char tail[300];
			bg_vmm_log_tail(tail, sizeof(tail), s->console_log);
			rc = bg_error(BANGER_EVMM, "QEMU (pid %d) exited during startup%s%s", (int)*pid,
				      *tail ? "; console log ends with: " : "", tail);
		}
	}
	if (rc) {
		bg_error_saved saved;
		bg_error_save(&saved);
		(void)bg_vmm_terminate(*pid, 1000);
		(void)bg_vmm_unlink_socket(s->api_sock);
		bg_error_restore(&saved);
		*pid = 0;
	}
	return rc;
}

static int q_configure(const bg_vmm_driver *d, const bg_vm_spec *s)
{
	return 0; /* the command line carries the whole machine */
}

static int q_start(const bg_vmm_driver *d, const bg_vm_spec *s)
{
	return bg_qmp_command(s->api_sock, "cont", BG_VMM_API_TIMEOUT_MS);
}

static int q_stop(const bg_vmm_driver *d, const bg_vm_spec *s, pid_t pid, int timeout_ms)
{
	if (!bg_vmm_alive(s->api_sock, pid)) {
		(void)bg_vmm_wait_gone(pid, 0);
		(void)bg_vmm_unlink_socket(s->api_sock);
		return 0;
	}
	/* ACPI power button: the guest shuts down and QEMU exits on power
	 * off.  A guest that ignores it (or never ran) gets SIGTERM, which
	 * QEMU handles as a clean exit, then SIGKILL. */
	int wait = timeout_ms < 0 ? 0 : timeout_ms;
	if (bg_qmp_command(s->api_sock, "system_powerdown", BG_VMM_API_TIMEOUT_MS) == 0 &&
	    bg_vmm_wait_gone(pid, wait) == 0) {
		(void)bg_vmm_unlink_socket(s->api_sock);
		return 0;
	}
	return bg_vmm_kill(s, pid, BG_VMM_TERM_GRACE_MS);
}

static int q_metrics(const bg_vmm_driver *d, const bg_vm_spec *s, char **out_json)
{
	*out_json = NULL;
	return bg_error(BANGER_EUNSUPPORTED, "qemu: no VMM metrics (Firecracker only)");
}

void bg_vmm_qemu_init(bg_vmm_driver *d, bool kvm, bool vhost_vsock)
{
	d->name = "qemu";
	/* -kernel takes a bzImage, or an ELF only through its PVH entry.
	 * Its graceful stop is the ACPI power button, which needs guest
	 * userland (so no BG_VMM_CAP_CTRL_ALT_DEL); vsock needs
	 * /dev/vhost-vsock on the host. */
	d->caps = BG_VMM_CAP_KERNEL_PVH | BG_VMM_CAP_KERNEL_BZIMAGE | (vhost_vsock ? BG_VMM_CAP_VSOCK : 0);
	d->console = "ttyS0";
	d->kernel_args = "root=" BG_FB_SYSTEM_DISK " rw";
	d->kernel_advice = "QEMU cannot boot it with -kernel: rebuild it with CONFIG_PVH=y, or import its bzImage";
	d->no_vsock = vhost_vsock ? NULL : "no /dev/vhost-vsock";
	d->check = q_check;
	d->spawn = q_spawn;
	d->configure = q_configure;
	d->start = q_start;
	d->stop = q_stop;
	d->metrics = q_metrics;
	d->kvm = kvm;
}
