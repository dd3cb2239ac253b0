/* The Firecracker driver: spawn `firecracker --api-sock S --id ID`,
 * configure it over its API in the order Firecracker documents (logger,
 * metrics, machine-config, boot-source, drives, network, vsock), then
 * InstanceStart.  Request bodies follow firecracker-api-v1.16.1.yaml. */
#include "vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FC_CMDLINE_MAX 2048
#define METRICS_TAIL (512u * 1024u)

/* ---- JSON bodies ---- */

/* Serialise j (stolen) compactly into a bg_malloc'ed string. */
static int dump(char **out, json_t *j, const char *what)
{
	*out = NULL;
	if (!j)
		return bg_error(BANGER_EINVALID, "cannot encode the %s request (a string is not valid UTF-8?)", what);
	size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT);
	char *s = n ? bg_malloc(n + 1) : NULL;
	if (!s) {
		json_decref(j);
		return n ? bg_error_oom() : bg_error(BANGER_EINVALID, "cannot encode the %s request", what);
	}
	json_dumpb(j, s, n, JSON_COMPACT);
	s[n] = '\0';
	json_decref(j);
	*out = s;
	return 0;
}

int bg_fc_body_boot_source(char **out, const bg_vm_spec *spec)
{
	json_t *j = json_pack("{s:s}", "kernel_image_path", spec->kernel_path);
	if (j && spec->initrd_path &&
	    json_object_set_new(j, "initrd_path", json_string(spec->initrd_path)) != 0)
		goto fail;
	if (j && spec->cmdline && json_object_set_new(j, "boot_args", json_string(spec->cmdline)) != 0)
		goto fail;
	return dump(out, j, "boot-source");
fail:
	json_decref(j);
	return dump(out, NULL, "boot-source");
}

int bg_fc_body_drive(char **out, const char *id, const char *path, bool root, bool read_only)
{
	return dump(out,
		    json_pack("{s:s, s:s, s:b, s:b}", "drive_id", id, "path_on_host", path,
			      "is_root_device", root, "is_read_only", read_only),
		    "drive");
}

/* ---- calls ---- */

static int put(const bg_vm_spec *spec, const char *path, char *body /* freed */)
{
	int rc = bg_fc_request(NULL, NULL, spec->api_sock, "PUT", path, body, BG_VMM_API_TIMEOUT_MS);
	bg_free(body);
	return rc;
}

static int put_action(const bg_vm_spec *spec, const char *action, int timeout_ms)
{
	char body[64];
	snprintf(body, sizeof(body), "{\"action_type\":\"%s\"}", action);
	return bg_fc_request(NULL, NULL, spec->api_sock, "PUT", "/actions", body, timeout_ms);
}

/* Firecracker opens its log and metrics files read-write without O_CREAT,
 * O_APPEND or O_TRUNC and writes from offset 0: each boot needs a fresh,
 * empty file, or old lines would trail the new ones.  A previous log is
 * kept as <log>.old; old metrics are meaningless and dropped. */
static int fresh_file(const char *path, bool keep_old)
{
	if (keep_old) {
		struct stat st;
		if (stat(path, &st) == 0 && st.st_size > 0) {
			char *old = bg_sprintf("%s.old", path);
			if (!old)
				return bg_error_oom();
			int r = rename(path, old); // NOLINT(readability-suspicious-call-argument): path -> path.old
			int e = errno;
			bg_free(old);
			if (r != 0)
				return bg_error_os(bg_code_from_errno(e), e, "rotate %s", path);
		}
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return bg_error_os(bg_code_from_errno(errno), errno, "create %s", path);
	close(fd);
	return 0;
}

static int fc_check(const bg_vmm_driver *d, const bg_vm_spec *s)
{
	if (!d->binary)
		return bg_error(BANGER_EUNSUPPORTED, "firecracker: binary not found");
	if (!s->id || !*s->id || !s->api_sock || !s->console_log || !s->kernel_path || !s->system_disk)
		return bg_error(BANGER_EINVALID,
				"firecracker: the VM spec needs an id, api socket, console log, kernel and system disk");
	/* "1 or even" applies only with SMT, which banger never enables. */
	if (s->vcpus < 1 || s->vcpus > 32)
		return bg_error(BANGER_EINVALID, "firecracker: vcpus must be 1 to 32 (got %u)", s->vcpus);
	if (s->memory_mib < 1)
		return bg_error(BANGER_EINVALID, "firecracker: memory must be at least 1 MiB");
	int rc = bg_vmm_check_kernel(d, s->kernel_path, s->kernel_format);
	if (rc)
		return rc;
	if (s->cmdline && strlen(s->cmdline) > FC_CMDLINE_MAX - 64)
		return bg_error(BANGER_EINVALID, "firecracker: kernel command line longer than %d bytes",
				FC_CMDLINE_MAX - 64);
	if (s->vsock_cid && (s->vsock_cid < 3 || !s->vsock_path))
		return bg_error(BANGER_EINVALID, "firecracker: vsock needs a guest CID >= 3 and a uds path");
	if (s->tap && !s->mac)
		return bg_error(BANGER_EINVALID, "firecracker: a tap device needs a guest MAC");
	return 0;
}

static int fc_spawn(const bg_vmm_driver *d, const bg_vm_spec *s, pid_t *pid)
{
	*pid = 0;
	int rc;
	if ((rc = bg_vmm_unlink_socket(s->api_sock)) || (rc = bg_vmm_unlink_socket(s->vsock_path)))
		return rc;
	const char *argv[] = { d->binary, "--api-sock", s->api_sock, "--id", s->id, NULL };
	if ((rc = bg_vmm_spawn_relayed(pid, argv, s->console_log, s->console_log_max)))
		return rc;
	rc = bg_vmm_wait_socket(s->api_sock, *pid, s->console_log, BG_VMM_SPAWN_TIMEOUT_MS);
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

static int fc_configure(const bg_vmm_driver *d, const bg_vm_spec *s)
{
	char *body = NULL;
	int rc;

	if (s->log_path && !bg_streq(s->log_path, s->console_log)) {
		if ((rc = fresh_file(s->log_path, true)) ||
		    (rc = dump(&body, json_pack("{s:s, s:s, s:b, s:b}", "log_path", s->log_path, "level", "Info",
						"show_level", 1, "show_log_origin", 0), "logger")) ||
		    (rc = put(s, "/logger", body)))
			return rc;
	}
	if (s->metrics_path) {
		if ((rc = fresh_file(s->metrics_path, false)) ||
		    (rc = dump(&body, json_pack("{s:s}", "metrics_path", s->metrics_path), "metrics")) ||
		    (rc = put(s, "/metrics", body)))
			return rc;
	}
	if ((rc = dump(&body, json_pack("{s:I, s:I}", "vcpu_count", (json_int_t)s->vcpus, "mem_size_mib",
					(json_int_t)s->memory_mib), "machine-config")) ||
	    (rc = put(s, "/machine-config", body)))
		return rc;
	if ((rc = bg_fc_body_boot_source(&body, s)) || (rc = put(s, "/boot-source", body)))
		return rc;
	if ((rc = bg_fc_body_drive(&body, "rootfs", s->system_disk, true, false)) ||
	    (rc = put(s, "/drives/rootfs", body)))
		return rc;
	if (s->work_disk && ((rc = bg_fc_body_drive(&body, "work", s->work_disk, false, false)) ||
			     (rc = put(s, "/drives/work", body))))
		return rc;
	if (s->identity_disk && ((rc = bg_fc_body_drive(&body, "identity", s->identity_disk, false, true)) ||
				 (rc = put(s, "/drives/identity", body))))
		return rc;
	if (s->tap) {
		if ((rc = dump(&body, json_pack("{s:s, s:s, s:s}", "iface_id", "eth0", "host_dev_name", s->tap,
						"guest_mac", s->mac), "network-interfaces")) ||
		    (rc = put(s, "/network-interfaces/eth0", body)))
			return rc;
	}
	if (s->vsock_cid) {
		if ((rc = dump(&body, json_pack("{s:I, s:s}", "guest_cid", (json_int_t)s->vsock_cid, "uds_path",
						s->vsock_path), "vsock")) ||
		    (rc = put(s, "/vsock", body)))
			return rc;
	}
	return 0;
}

static int fc_start(const bg_vmm_driver *d, const bg_vm_spec *s)
{
	/* InstanceStart loads the kernel and sets up every device: give it
	 * more than an ordinary request. */
	return put_action(s, "InstanceStart", 4 * BG_VMM_API_TIMEOUT_MS);
}

static void remove_sockets(const bg_vm_spec *s)
{
	bg_error_saved saved;
	bg_error_save(&saved);
	(void)bg_vmm_unlink_socket(s->api_sock);
	(void)bg_vmm_unlink_socket(s->vsock_path);
	bg_error_restore(&saved);
}

static int fc_stop(const bg_vmm_driver *d, const bg_vm_spec *s, pid_t pid, int timeout_ms)
{
	if (!bg_vmm_alive(s->api_sock, pid)) {
		(void)bg_vmm_wait_gone(pid, 0); /* reap a zombie of ours, if any */
		remove_sockets(s);
		return 0;
	}
	/* Ctrl-Alt-Del: the guest reboots, reboot=k makes that a CPU reset,
	 * and Firecracker exits on reset.  Rejected (not started yet) or not
	 * honoured in time: escalate. */
	int wait = timeout_ms < 0 ? 0 : timeout_ms;
	if (put_action(s, "SendCtrlAltDel", BG_VMM_API_TIMEOUT_MS) == 0 &&
	    bg_vmm_wait_gone(pid, wait) == 0) {
		remove_sockets(s);
		return 0;
	}
	int rc = bg_vmm_kill(s, pid, BG_VMM_TERM_GRACE_MS);
	if (rc == 0)
		remove_sockets(s);
	return rc;
}

int bg_fc_metrics_last_line(char **out, const char *metrics_path)
{
	*out = NULL;
	int fd = open(metrics_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bg_error_os(bg_code_from_errno(errno), errno, "open metrics %s", metrics_path);
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return bg_error_os(BANGER_EIO, e, "stat %s", metrics_path);
	}
	size_t want = st.st_size > (off_t)METRICS_TAIL ? METRICS_TAIL : (size_t)st.st_size;
	off_t off = st.st_size - (off_t)want;
	char *buf = bg_malloc(want + 1);
	if (!buf) {
		close(fd);
		return bg_error_oom();
	}
	size_t got = 0;
	while (got < want) {
		ssize_t n = pread(fd, buf + got, want - got, off + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';

	/* Walk complete lines from the end; the first that is a JSON object
	 * wins.  A line being written (no newline yet) is skipped. */
	int rc = bg_error(BANGER_ENOTFOUND, "no complete metrics line in %s yet", metrics_path);
	size_t end = got;
	while (end > 0 && buf[end - 1] != '\n')
		end--;
	while (end > 0) {
		size_t stop = end - 1; /* the newline */
		size_t start = stop;
		while (start > 0 && buf[start - 1] != '\n')
			start--;
		if (start == 0 && off > 0)
			break; /* possibly cut by the tail window */
		/* a NUL byte (a torn or preallocated file) would cut the copy
		 * below short of what was parsed: not a metrics line */
		if (stop > start && !memchr(buf + start, '\0', stop - start)) {
			json_error_t jerr;
			json_t *j = json_loadb(buf + start, stop - start, 0, &jerr);
			bool obj = json_is_object(j);
			json_decref(j);
			if (obj) {
				*out = bg_strndup(buf + start, stop - start);
				rc = *out ? 0 : bg_error_oom();
				break;
			}
		}
		end = start;
	}
	bg_free(buf);
	return rc;
}

static int fc_metrics(const bg_vmm_driver *d, const bg_vm_spec *s, char **out_json)
{
	*out_json = NULL;
	if (!s->metrics_path)
		return bg_error(BANGER_EUNSUPPORTED, "firecracker: this VM has no metrics file");
	int frc = put_action(s, "FlushMetrics", BG_VMM_API_TIMEOUT_MS);
	if (frc == 0)
		return bg_fc_metrics_last_line(out_json, s->metrics_path);
	/* Not flushed (e.g. not started): an older line still answers; if
	 * there is none, the flush failure is the better explanation. */
	bg_error_saved saved;
	bg_error_save(&saved);
	int rc = bg_fc_metrics_last_line(out_json, s->metrics_path);
	bg_error_restore(&saved);
	return rc ? frc : 0;
}

void bg_vmm_firecracker_init(bg_vmm_driver *d)
{
	d->name = "firecracker";
	/* Released Firecracker (up to 1.16) boots only an ELF vmlinux on
	 * x86_64; its vsock is hybrid (a Unix socket per VM), needing no host
	 * module; Ctrl-Alt-Del reaches the guest kernel through the i8042. */
	d->caps = BG_VMM_CAP_VSOCK | BG_VMM_CAP_VSOCK_UDS | BG_VMM_CAP_KERNEL_ELF | BG_VMM_CAP_METRICS |
		  BG_VMM_CAP_CTRL_ALT_DEL;
	d->console = "ttyS0";
	/* virtio-mmio only; Firecracker appends root= itself for the root drive */
	d->kernel_args = "pci=off";
	d->kernel_advice = "Firecracker (up to 1.16) boots only an ELF vmlinux on x86_64: use the qemu VMM, or "
			   "import the kernel's vmlinux";
	d->no_vsock = NULL;
	d->check = fc_check;
	d->spawn = fc_spawn;
	d->configure = fc_configure;
	d->start = fc_start;
	d->stop = fc_stop;
	d->metrics = fc_metrics;
	d->kvm = true;
}
