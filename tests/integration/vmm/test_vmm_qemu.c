/* The QEMU driver with a real qemu-system-x86_64 (TCG) booting a real
 * kernel with a busybox initrd built here: console log, QMP status,
 * graceful powerdown and kill, and the process hygiene of a detached
 * VMM (survives its parent, own session, nothing inherited).
 *
 * Kernel: $BANGER_TEST_KERNEL, else the CI cache (scripts/ci/ensure-kernel.sh
 * --key names it; never built from here).  Never /boot/vmlinuz-*: a
 * distribution kernel has virtio as modules, which a busybox initrd
 * cannot load, and what a host happens to have must not decide a test.
 * Skips (77) with a reason when there is no kernel, QEMU or busybox. */
#include "../../unit/helpers.h"

#include "../../../libbanger/vmm/vmm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MARKER "BANGER-INITRD-MARKER-OK"

static char kernel[4096], qemu[4096], busybox[4096], initrd[4300], tmp[4096];

static const char INIT[] =
	"#!/bin/busybox sh\n"
	"/bin/busybox --install -s /bin\n"
	"mount -t proc proc /proc\n"
	"mount -t sysfs sysfs /sys\n"
	"mount -t devtmpfs devtmpfs /dev\n"
	"echo \"BANGER-DISKS: $(ls /sys/block | grep '^vd' | tr '\\n' ' ')\"\n"
	"echo \"BANGER-VDC-RO: $(cat /sys/block/vdc/ro 2>/dev/null)\"\n"
	"mkdir -p /etc/acpi/PWRF\n"
	"printf '#!/bin/sh\\necho BANGER-POWERDOWN > /dev/console\\npoweroff -f\\n' > /etc/acpi/PWRF/00000080\n"
	"chmod +x /etc/acpi/PWRF/00000080\n"
	"acpid -d -c /etc/acpi &\n"
	"case \"$(cat /proc/cmdline)\" in *banger.flood*)\n"
	"  i=0; while [ $i -lt 8000 ]; do echo \"flood line $i of a guest that floods its console\"; i=$((i+1)); done\n"
	"  echo BANGER-FLOOD-END;;\n"
	"esac\n"
	"echo " MARKER "\n"
	"while :; do sleep 3600; done\n";

/* ---- environment ---- */

static bool find_kernel(char *reason, size_t rlen)
{
	const char *env = getenv("BANGER_TEST_KERNEL");
	if (env && *env) {
		snprintf(kernel, sizeof(kernel), "%s", env);
		return access(kernel, R_OK) == 0;
	}
	/* the CI cache: ask the script for the key only (no build) */
	const char *src = getenv("BANGER_SOURCE_DIR");
	char script[4200];
	snprintf(script, sizeof(script), "%s/scripts/ci/ensure-kernel.sh", src ? src : ".");
	const char *argv[] = { script, "--key", NULL };
	char *out = NULL;
	int status = -1;
	if (access(script, X_OK) == 0 && bg_run(&status, &out, NULL, argv, 60000) == 0 && status == 0 && out) {
		out[strcspn(out, "\n")] = '\0';
		const char *root = getenv("BANGER_CI_CACHE");
		const char *names[] = { "bzImage", "vmlinux" };
		for (size_t i = 0; i < 2; i++) {
			snprintf(kernel, sizeof(kernel), "%s/kernel/%s/%s", root && *root ? root : "/var/cache/banger-ci",
				 out, names[i]);
			if (access(kernel, R_OK) == 0) {
				bg_free(out);
				return true;
			}
		}
	}
	bg_free(out);
	snprintf(reason, rlen, "no guest kernel: no cached generic kernel "
			       "(run scripts/ci/ensure-kernel.sh), BANGER_TEST_KERNEL unset");
	return false;
}

static void write_file(const char *path, const char *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void sized_file(const char *path, off_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, size), 0);
	close(fd);
}

static int build_initrd(void **st)
{
	char root[4300], dir[4400];
	snprintf(root, sizeof(root), "%s/initrd-root", tmp);
	const char *sub[] = { "", "/bin", "/dev", "/proc", "/sys", "/etc" };
	for (size_t i = 0; i < BG_ARRAY_SIZE(sub); i++) {
		snprintf(dir, sizeof(dir), "%s%s", root, sub[i]);
		assert_int_equal(mkdir(dir, 0755), 0);
	}
	snprintf(dir, sizeof(dir), "%s/bin/busybox", root);
	const char *cp[] = { "cp", busybox, dir, NULL };
	assert_int_equal(bg_run_checked(cp, 10000), 0);
	snprintf(dir, sizeof(dir), "%s/init", root);
	write_file(dir, INIT, strlen(INIT), 0755);
	snprintf(initrd, sizeof(initrd), "%s/initrd.cpio", tmp);
	char cmd[9000];
	snprintf(cmd, sizeof(cmd), "cd '%s' && find . | %s -o -H newc --quiet > '%s'", root,
		 access("/usr/bin/cpio", X_OK) == 0 ? "cpio" : "busybox cpio", initrd);
	const char *sh[] = { "/bin/sh", "-c", cmd, NULL };
	assert_int_equal(bg_run_checked(sh, 60000), 0);
	return 0;
}

/* ---- per-test fixture ---- */

typedef struct {
	char dir[4400], api[4500], console[4500], sys[4500], work[4500], ident[4500];
	bg_vm_spec spec;
	bg_vmm_driver drv;
	char *cmdline;
	pid_t pid;
} fx;

static int setup(void **st)
{
	static int n;
	fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "%s/vm%d", tmp, ++n);
	assert_int_equal(mkdir(f->dir, 0700), 0);
	snprintf(f->api, sizeof(f->api), "%s/qmp.sock", f->dir);
	snprintf(f->console, sizeof(f->console), "%s/console.log", f->dir);
	snprintf(f->sys, sizeof(f->sys), "%s/system.img", f->dir);
	snprintf(f->work, sizeof(f->work), "%s/work.img", f->dir);
	snprintf(f->ident, sizeof(f->ident), "%s/identity.tar", f->dir);
	sized_file(f->sys, 1 << 20);
	sized_file(f->work, 1 << 20);
	sized_file(f->ident, 1 << 20);
	bg_vmm_driver qd;
	assert_int_equal(bg_vmm_driver_init(&qd, "qemu", NULL, false, false), 0);
	bg_bootargs ba = { .driver = &qd, .has_initrd = true };
	assert_int_equal(bg_bootargs_build(&f->cmdline, &ba), 0);
	bg_vmm_driver_free(&qd);
	f->spec = (bg_vm_spec){
		.id = "0a1b2c3d", .name = "qemu-test", .vcpus = 1, .memory_mib = 256, .kernel_path = kernel,
		.initrd_path = initrd, .cmdline = f->cmdline, .system_disk = f->sys, .work_disk = f->work,
		.identity_disk = f->ident, .api_sock = f->api, .console_log = f->console,
	};
	/* TCG: deterministic on every host, and what CI has */
	assert_int_equal(bg_vmm_driver_init(&f->drv, "qemu", qemu, false, false), 0);
	*st = f;
	return 0;
}

static int teardown(void **st)
{
	fx *f = *st;
	if (f->pid > 0)
		(void)bg_vmm_kill(&f->spec, f->pid, 1000);
	bg_vmm_driver_free(&f->drv);
	bg_free(f->cmdline);
	free(f);
	return 0;
}

static void ok(int rc)
{
	if (rc)
		fail_msg("%s", banger_error_last()->message);
}

static bool console_has(fx *f, const char *needle)
{
	char *text = NULL;
	size_t len = 0;
	if (bg_read_file(&text, &len, f->console, 16 << 20) != 0)
		return false;
	bool has = strstr(text, needle) != NULL;
	bg_free(text);
	return has;
}

static int64_t wait_console(fx *f, const char *needle, int timeout_ms)
{
	int64_t t0 = bg_now_ms();
	while (bg_now_ms() - t0 < timeout_ms) {
		if (console_has(f, needle))
			return bg_now_ms() - t0;
		if (!bg_vmm_alive(f->api, f->pid))
			break;
		bg_sleep_ms(50);
	}
	char tail[600];
	bg_vmm_log_tail(tail, sizeof(tail), f->console);
	fail_msg("\"%s\" not on the console; log ends with: %s", needle, tail);
	return -1;
}

/* Spawn from a child process that exits at once: the VMM must outlive
 * the process that started it. */
static pid_t spawn_from_short_lived_parent(fx *f, pid_t *parent)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		pid_t pid = 0;
		int rc = f->drv.spawn(&f->drv, &f->spec, &pid);
		if (rc) {
			fprintf(stderr, "spawn: %s\n", banger_error_last()->message);
			pid = -1;
		}
		(void)!write(p[1], &pid, sizeof(pid));
		_exit(0);
	}
	close(p[1]);
	pid_t pid = 0;
	assert_int_equal(read(p[0], &pid, sizeof(pid)), sizeof(pid));
	close(p[0]);
	int ws;
	assert_int_equal(waitpid(child, &ws, 0), child);
	*parent = child;
	return pid;
}

static void test_boot_status_powerdown(void **st)
{
	fx *f = *st;
	ok(f->drv.check(&f->drv, &f->spec));

	/* a descriptor a careless host leaves open must not reach QEMU */
	char leak_path[4600];
	snprintf(leak_path, sizeof(leak_path), "%s/leaked-descriptor", f->dir);
	int leak = open(leak_path, O_WRONLY | O_CREAT, 0600); /* no O_CLOEXEC on purpose */
	assert_true(leak >= 0);

	int64_t t0 = bg_now_ms();
	pid_t parent = 0;
	f->pid = spawn_from_short_lived_parent(f, &parent);
	close(leak);
	assert_true(f->pid > 0);
	int64_t t_spawned = bg_now_ms() - t0;

	/* alive after its starter exited; its own session; not our child */
	assert_true(bg_vmm_alive(f->api, f->pid));
	assert_int_equal(getsid(f->pid), f->pid);
	assert_int_not_equal(getsid(f->pid), getsid(0));
	errno = 0;
	assert_int_equal(waitpid(f->pid, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);

	/* descriptors: 0 is /dev/null, 1 and 2 the console log, nothing of ours */
	char fddir[64];
	snprintf(fddir, sizeof(fddir), "/proc/%d/fd", (int)f->pid);
	DIR *d = opendir(fddir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char link[600], target[4600] = "";
		snprintf(link, sizeof(link), "%s/%s", fddir, e->d_name);
		ssize_t k = readlink(link, target, sizeof(target) - 1);
		if (k <= 0)
			continue;
		target[k] = '\0';
		int fd = atoi(e->d_name);
		if (fd == 0)
			assert_string_equal(target, "/dev/null");
		else if (fd <= 2)
			assert_string_equal(target, f->console);
		else if (strcmp(target, leak_path) == 0)
			fail_msg("QEMU inherited descriptor %d -> %s", fd, target);
	}
	closedir(d);

	/* the QMP socket path is on QEMU's command line (liveness) */
	pid_t found = 0;
	ok(bg_vmm_find(&found, f->api));
	assert_int_equal(found, f->pid);

	/* paused until start() */
	char *status = NULL;
	ok(bg_qmp_query_status(&status, f->api, 5000));
	assert_string_equal(status, "prelaunch");
	bg_free(status);
	ok(f->drv.configure(&f->drv, &f->spec));
	int64_t t_start = bg_now_ms();
	ok(f->drv.start(&f->drv, &f->spec));
	int64_t boot = wait_console(f, MARKER, 120000);
	(void)t_start;
	ok(bg_qmp_query_status(&status, f->api, 5000));
	assert_string_equal(status, "running");
	bg_free(status);

	/* disks in order: vda, vdb, vdc; the identity disk read-only */
	assert_true(console_has(f, "BANGER-DISKS: vda vdb vdc"));
	assert_true(console_has(f, "BANGER-VDC-RO: 1"));

	/* graceful stop: ACPI power button, the guest powers off */
	bg_sleep_ms(500); /* let acpid open its event devices */
	int64_t t1 = bg_now_ms();
	ok(f->drv.stop(&f->drv, &f->spec, f->pid, 30000));
	int64_t stop_ms = bg_now_ms() - t1;
	assert_false(bg_vmm_alive(f->api, f->pid));
	assert_false(bg_path_exists(f->api));
	bool graceful = console_has(f, "BANGER-POWERDOWN");
	assert_true(graceful);
	f->pid = 0;
	print_message("qemu (TCG): spawn+QMP socket %lld ms, boot to initrd marker %lld ms, "
		      "powerdown %lld ms (%s)\n", (long long)t_spawned, (long long)boot, (long long)stop_ms,
		      graceful ? "guest powered off" : "escalated");
}

static void test_kill(void **st)
{
	fx *f = *st;
	ok(f->drv.spawn(&f->drv, &f->spec, &f->pid));
	ok(f->drv.start(&f->drv, &f->spec));
	wait_console(f, MARKER, 120000);
	ok(bg_vmm_kill(&f->spec, f->pid, 5000));
	assert_false(bg_vmm_alive(f->api, f->pid));
	assert_false(bg_path_exists(f->api));
	f->pid = 0;
}

/* A guest flooding its serial console through the console relay
 * (QEMU's -chardev stdio on the relay's pipe): console.log and its one
 * rotation stay within console_log_max, the latest output is at the end
 * of console.log, and the relay ends with QEMU. */
static void test_console_flood_is_bounded(void **st)
{
	fx *f = *st;
	char *cmdline = bg_sprintf("%s banger.flood", f->cmdline);
	assert_non_null(cmdline);
	f->spec.cmdline = cmdline;
	f->spec.console_log_max = 65536;
	ok(f->drv.spawn(&f->drv, &f->spec, &f->pid));
	ok(f->drv.configure(&f->drv, &f->spec));
	ok(f->drv.start(&f->drv, &f->spec));
	wait_console(f, MARKER, 180000);
	char older[4600];
	snprintf(older, sizeof(older), "%s.1", f->console);
	struct stat a, b;
	assert_int_equal(stat(f->console, &a), 0);
	assert_int_equal(stat(older, &b), 0);
	print_message("console after the flood: %lld + %lld bytes (bound 65536 each)\n", (long long)a.st_size,
		      (long long)b.st_size);
	assert_true(a.st_size <= 65536 && b.st_size <= 65536 && b.st_size > 0);
	char buf[4097];
	size_t n = bg_vmm_console_tail(buf, sizeof(buf) - 1, f->console);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "flood line 7999 of"));
	assert_non_null(strstr(buf, "BANGER-FLOOD-END"));
	pid_t *relays = NULL;
	size_t nr = 0;
	ok(bg_vmm_relay_find(&relays, &nr, f->console));
	bg_free(relays);
	assert_int_equal(nr, 1);
	ok(bg_vmm_kill(&f->spec, f->pid, 5000));
	f->pid = 0;
	ok(bg_vmm_relay_stop(f->console, 5000));
	ok(bg_vmm_relay_find(&relays, &nr, f->console));
	bg_free(relays);
	assert_int_equal(nr, 0);
	f->spec.cmdline = f->cmdline;
	bg_free(cmdline);
}

/* A guest that ignores the power button is stopped with SIGTERM. */
static void test_stop_escalates(void **st)
{
	fx *f = *st;
	ok(f->drv.spawn(&f->drv, &f->spec, &f->pid));
	/* never started: powerdown has no guest to act on */
	int64_t t0 = bg_now_ms();
	ok(f->drv.stop(&f->drv, &f->spec, f->pid, 500));
	assert_true(bg_now_ms() - t0 >= 500);
	assert_false(bg_vmm_alive(f->api, f->pid));
	f->pid = 0;
}

/* QMP "quit" ends QEMU at once (the answer comes before the exit). */
static void test_qmp_quit(void **st)
{
	fx *f = *st;
	ok(f->drv.spawn(&f->drv, &f->spec, &f->pid));
	ok(f->drv.start(&f->drv, &f->spec));
	ok(bg_qmp_command(f->api, "quit", 5000));
	ok(bg_vmm_wait_gone(f->pid, 10000));
	assert_false(bg_vmm_alive(f->api, f->pid));
	/* the driver's stop tolerates the dead VMM and cleans the socket */
	ok(f->drv.stop(&f->drv, &f->spec, f->pid, 1000));
	assert_false(bg_path_exists(f->api));
	f->pid = 0;
}

static void test_spawn_failure_reports_log(void **st)
{
	fx *f = *st;
	char missing[4600];
	snprintf(missing, sizeof(missing), "%s/no-such-disk", f->dir);
	f->spec.work_disk = missing;
	assert_int_equal(f->drv.spawn(&f->drv, &f->spec, &f->pid), BANGER_EVMM);
	assert_int_equal(f->pid, 0);
	const char *msg = banger_error_last()->message;
	assert_true(strstr(msg, "exited before its socket") || strstr(msg, "exited during startup"));
	assert_non_null(strstr(msg, "no-such-disk"));
}

int main(void)
{
	char reason[512];
	char *q = bg_which("qemu-system-x86_64");
	if (!q) {
		fprintf(stderr, "skip: qemu-system-x86_64 is not installed\n");
		return 77;
	}
	snprintf(qemu, sizeof(qemu), "%s", q);
	bg_free(q);
	char *b = bg_which("busybox");
	if (!b) {
		fprintf(stderr, "skip: busybox (busybox-static) is not installed\n");
		return 77;
	}
	snprintf(busybox, sizeof(busybox), "%s", b);
	bg_free(b);
	if (!find_kernel(reason, sizeof(reason))) {
		fprintf(stderr, "skip: %s\n", reason);
		return 77;
	}
	char *t = test_tmpdir();
	snprintf(tmp, sizeof(tmp), "%s", t);
	free(t);
	fprintf(stderr, "kernel: %s\n", kernel);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_boot_status_powerdown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_console_flood_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_escalates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qmp_quit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spawn_failure_reports_log, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, build_initrd, NULL);
	test_rmrf(tmp);
	return rc;
}
