/* The vsock agent over Firecracker's hybrid vsock, through the Firecracker
 * fake (tests/fakes/firecracker/firecracker): the fake relays a host
 * "CONNECT 52" to $FC_FAKE_VSOCK_GUEST_DIR/52.sock, where the real agent
 * listens (--unix) as the stand-in guest.  Covers the handshake, the
 * protocol behind it, a guest that does not listen yet or at all, a VMM
 * that never answers CONNECT (FC_FAKE_VSOCK_STALL, and the v1.16.1
 * pause/resume bug), a guest that accepts but never answers, and
 * poweroff.  Every failure must come back within its deadline. */
#include "../../unit/test_agent_fixture.h"

#include "../../../libbanger/vmm/vmm.h"

#include <spawn.h>

static char fake[4096];

typedef struct {
	agent_fx a; /* a.sock is the guest's port 52 */
	char api[4300], vsock[4300], console[4300], kernel[4300], sys[4300], guest[4100];
	bg_vm_spec spec;
	bg_vmm_driver drv;
	pid_t vmm;
} fx;

static void ok(int rc)
{
	if (rc)
		fail_msg("%s", banger_error_last()->message);
}

static int setup(void **st)
{
	fx *f = calloc(1, sizeof(*f));
	agent_fx_init(&f->a);
	const char *d = f->a.dir;
	snprintf(f->api, sizeof(f->api), "%s/api.sock", d);
	snprintf(f->vsock, sizeof(f->vsock), "%s/v.sock", d);
	snprintf(f->console, sizeof(f->console), "%s/console.log", d);
	snprintf(f->kernel, sizeof(f->kernel), "%s/vmlinux", d);
	snprintf(f->sys, sizeof(f->sys), "%s/system.img", d);
	snprintf(f->guest, sizeof(f->guest), "%s/guest", d);
	snprintf(f->a.sock, sizeof(f->a.sock), "%s/52.sock", f->guest);
	assert_int_equal(mkdir(f->guest, 0700), 0);
	unsigned char elf[256] = { 0x7f, 'E', 'L', 'F', 2, 1, 1 };
	assert_int_equal(bg_write_file_atomic(f->kernel, elf, sizeof(elf), 0644), 0);
	assert_int_equal(bg_write_file_atomic(f->sys, "", 0, 0644), 0);
	f->spec = (bg_vm_spec){
		.id = "0a1b2c3d", .name = "agent", .vcpus = 1, .memory_mib = 128, .kernel_path = f->kernel,
		.kernel_format = "elf", .cmdline = "console=ttyS0 reboot=k panic=1 pci=off", .system_disk = f->sys,
		.vsock_cid = 3, .vsock_path = f->vsock, .api_sock = f->api, .console_log = f->console,
	};
	assert_int_equal(bg_vmm_driver_init(&f->drv, "firecracker", fake, true, false), 0);
	setenv("FC_FAKE_VSOCK_GUEST_DIR", f->guest, 1);
	/* the agent reports sshd listening: a /proc/net/tcp that says so */
	agent_root_file(&f->a, "proc/net/tcp", TCP_HEADER TCP_SSHD_LISTEN, 0644);
	*st = f;
	return 0;
}

static int teardown(void **st)
{
	fx *f = *st;
	if (f->vmm > 0)
		(void)bg_vmm_terminate(f->vmm, 500);
	unsetenv("FC_FAKE_VSOCK_GUEST_DIR");
	unsetenv("FC_FAKE_VSOCK_STALL");
	unsetenv("FC_FAKE_VSOCK_PAUSE_BUG");
	bg_vmm_driver_free(&f->drv);
	agent_fx_free(&f->a);
	free(f);
	return 0;
}

/* Spawn the fake, configure it (vsock included) and InstanceStart. */
static void boot(fx *f)
{
	ok(f->drv.check(&f->drv, &f->spec));
	ok(f->drv.spawn(&f->drv, &f->spec, &f->vmm));
	ok(f->drv.configure(&f->drv, &f->spec));
	ok(f->drv.start(&f->drv, &f->spec));
}

static bg_agent_addr addr(fx *f)
{
	bg_agent_addr a = { .uds_path = f->vsock, .cid = 3, .port = 0 };
	return a;
}

static void test_ready_through_fake(void **st)
{
	fx *f = *st;
	boot(f);
	agent_start(&f->a, 5000);
	bg_agent_addr a = addr(f);
	bg_agent_report r;
	ok(bg_agent_ready(&r, &a, 5000));
	assert_string_equal(r.systemd, "absent");
	assert_true(r.sshd_listening);

	/* the raw protocol behind the handshake */
	int fd = -1;
	ok(bg_agent_connect(&fd, &a, 5000));
	agent_expect(fd, "VERSION", "OK banger-vsock-agent 1");
	agent_expect(fd, "PING", "PONG");
	agent_expect(fd, "EXEC /bin/sh", "ERR unknown command");
	agent_expect(fd, "READY", "OK systemd=absent sshd=listening");
	close(fd);

	/* sshd goes away: the next report says so */
	agent_root_file(&f->a, "proc/net/tcp", TCP_HEADER, 0644);
	ok(bg_agent_ready(&r, &a, 5000));
	assert_false(r.sshd_listening);

	/* many short connections in a row */
	for (int i = 0; i < 30; i++)
		ok(bg_agent_ready(&r, &a, 5000));
	ok(f->drv.stop(&f->drv, &f->spec, f->vmm, 10000));
	f->vmm = 0;
}

/* The guest is still booting: CONNECT is refused until the agent
 * listens, and the client keeps retrying within its deadline. */
static void test_agent_starts_late(void **st)
{
	fx *f = *st;
	boot(f);
	char tmo[] = "5000";
	const char *argv[] = { "/bin/sh", "-c", "sleep 0.7; exec \"$0\" \"$@\"", agent_bin(), "--unix", f->a.sock,
			       "--sysroot", f->a.root, "--timeout-ms", tmo, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 2, f->a.log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	assert_int_equal(posix_spawn(&f->a.pid, argv[0], &fa, NULL, (char *const *)argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	int64_t t0 = bg_now_ms();
	bg_agent_addr a = addr(f);
	bg_agent_report r;
	ok(bg_agent_ready(&r, &a, 8000));
	int64_t took = bg_now_ms() - t0;
	assert_true(r.sshd_listening);
	assert_true(took >= 600);
	print_message("the agent answered %lld ms after the first attempt (it started after 700 ms)\n",
		      (long long)took);
}

/* Nothing listens in the guest: Firecracker closes each connection, the
 * client retries until the deadline and says why. */
static void test_nothing_listens(void **st)
{
	fx *f = *st;
	boot(f);
	bg_agent_addr a = addr(f);
	bg_agent_report r;
	int64_t t0 = bg_now_ms();
	assert_int_equal(bg_agent_ready(&r, &a, 800), BANGER_ETIMEOUT);
	int64_t took = bg_now_ms() - t0;
	assert_true(took >= 800 && took < 800 + 1500);
	assert_non_null(strstr(banger_error_last()->message, "not listening on vsock port 52"));
	assert_int_equal(bg_agent_poweroff(&a, 500), BANGER_ETIMEOUT);

	/* the agent stops: connections are refused again */
	agent_start(&f->a, 5000);
	ok(bg_agent_ready(&r, &a, 3000));
	agent_stop(&f->a);
	unlink(f->a.sock);
	assert_int_equal(bg_agent_ready(&r, &a, 500), BANGER_ETIMEOUT);
}

/* The VMM accepts but never answers CONNECT: each attempt has its own
 * deadline and the whole call its total one. */
static void test_vmm_stalls(void **st)
{
	fx *f = *st;
	setenv("FC_FAKE_VSOCK_STALL", "1", 1);
	boot(f);
	agent_start(&f->a, 5000);
	bg_agent_addr a = addr(f);
	bg_agent_report r;
	int64_t t0 = bg_now_ms();
	assert_int_equal(bg_agent_ready(&r, &a, 1500), BANGER_ETIMEOUT);
	int64_t took = bg_now_ms() - t0;
	assert_true(took >= 1500 && took < 1500 + 1500);
	assert_non_null(strstr(banger_error_last()->message, "no answer to CONNECT 52"));
	print_message("stalled CONNECT given up after %lld ms (deadline 1500 ms)\n", (long long)took);
}

/* Firecracker <= 1.16.1: after a bare pause/resume every new host
 * connection hangs.  The readiness probe must still return in time. */
static void test_pause_resume_bug(void **st)
{
	fx *f = *st;
	setenv("FC_FAKE_VSOCK_PAUSE_BUG", "1", 1);
	boot(f);
	agent_start(&f->a, 5000);
	bg_agent_addr a = addr(f);
	bg_agent_report r;
	ok(bg_agent_ready(&r, &a, 3000));
	ok(bg_fc_request(NULL, NULL, f->api, "PATCH", "/vm", "{\"state\":\"Paused\"}", 5000));
	ok(bg_fc_request(NULL, NULL, f->api, "PATCH", "/vm", "{\"state\":\"Resumed\"}", 5000));
	int64_t t0 = bg_now_ms();
	assert_int_equal(bg_agent_ready(&r, &a, 1200), BANGER_ETIMEOUT);
	assert_true(bg_now_ms() - t0 < 1200 + 1500);
}

/* The guest accepts the connection (the VMM says OK) but the program
 * behind it never answers: the request's deadline ends it. */
static void test_guest_never_answers(void **st)
{
	fx *f = *st;
	boot(f);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, f->a.sock, strlen(f->a.sock) + 1);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 8), 0); /* never accepted, never read */
	bg_agent_addr a = addr(f);
	bg_agent_report r;
	int64_t t0 = bg_now_ms();
	assert_int_equal(bg_agent_ready(&r, &a, 1000), BANGER_ETIMEOUT);
	int64_t took = bg_now_ms() - t0;
	assert_true(took < 1000 + 1500);
	assert_non_null(strstr(banger_error_last()->message, "no answer to VERSION"));
	close(l);
}

/* POWEROFF through the VMM's vsock: "OK", then the guest's poweroff. */
static void test_poweroff(void **st)
{
	fx *f = *st;
	char rec[4400], script[8192];
	snprintf(rec, sizeof(rec), "%s/calls", f->a.dir);
	snprintf(script, sizeof(script), "#!/bin/sh\necho \"systemctl $*\" >> '%s'\n", rec);
	agent_root_dir(&f->a, "run/systemd/system");
	agent_root_file(&f->a, "usr/bin/systemctl", script, 0755);
	boot(f);
	agent_start(&f->a, 5000);
	bg_agent_addr a = addr(f);
	ok(bg_agent_poweroff(&a, 5000));
	assert_true(wait_for_file(rec, 5000));
	char *calls = NULL;
	size_t len;
	assert_int_equal(bg_read_file(&calls, &len, rec, 4096), 0);
	/* the readiness probe that may have run first calls is-system-running */
	assert_non_null(strstr(calls, "systemctl poweroff\n"));
	bg_free(calls);
}

int main(void)
{
	const char *src = getenv("BANGER_SOURCE_DIR");
	snprintf(fake, sizeof(fake), "%s/tests/fakes/firecracker/firecracker", src ? src : ".");
	if (access(fake, R_OK) != 0) {
		fprintf(stderr, "skip: the Firecracker fake is not at %s\n", fake);
		return 77;
	}
	char *py = bg_which("python3");
	if (!py) {
		fprintf(stderr, "skip: python3 (needed by the Firecracker fake) is not installed\n");
		return 77;
	}
	bg_free(py);
	if (access(agent_bin(), X_OK) != 0) {
		fprintf(stderr, "the agent is not built at %s\n", agent_bin());
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ready_through_fake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_starts_late, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nothing_listens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vmm_stalls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pause_resume_bug, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_never_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poweroff, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
