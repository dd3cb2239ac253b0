/* VM readiness with the vsock agent (bg_vm_wait_ready), end to end on
 * the host side: a VM created through the Firecracker fake in a private
 * network namespace; behind the fake's vsock relay the real agent stands
 * in for the guest ($FC_FAKE_VSOCK_GUEST_DIR/52.sock), and a real sshd
 * with the VM's own host key (taken from its identity disk) listens on
 * the guest's address.  The agent reads this namespace's real
 * /proc/net/tcp, so "sshd listening" is the truth, not a fixture.
 *
 * Checks the stages a timeout names (agent, sshd, SSH), that a VM is ready
 * only once the agent confirms sshd, that a silent agent does not hold a
 * VM whose SSH works for more than the grace period, and that an image
 * without the agent is SSH only.  Root only (taps, namespaces). */
#include "../vm/vm_fixture.h"

#include "../../unit/test_agent_fixture.h"
#include "../../../libbanger/vm/vm_internal.h"

#include <pthread.h>
#include <spawn.h>

static vm_fixture F;
static agent_fx A;        /* the stand-in guest agent; A.sock = <guest>/52.sock */
static char guest_dir[4100];
static pid_t sshd_pid;
static bg_buf progress_log = BG_BUF_INIT;
static bg_buf debug_log = BG_BUF_INIT;
static int64_t last_report, max_gap; /* between reports of one wait */

static int on_progress(const banger_progress *p, void *payload)
{
	(void)payload;
	int64_t now = bg_now_ms();
	if (now - last_report > max_gap)
		max_gap = now - last_report;
	last_report = now;
	if (p->event == BANGER_PROGRESS_STEP)
		bg_buf_printf(&progress_log, "%s: %s\n", p->stage, p->detail);
	return 0;
}

static void on_log(int level, const char *message, void *payload)
{
	(void)payload;
	bg_buf_printf(&debug_log, "%d %s\n", level, message);
}

static void shf(const char *fmt, const char *a, const char *b, const char *c)
{
	char cmd[16384];
	snprintf(cmd, sizeof(cmd), fmt, a, b ? b : "", c ? c : "");
	if (system(cmd) != 0)
		fail_msg("failed: %s", cmd);
}

/* An image whose rootfs carries the agent and its unit. */
static void add_agent_image(void)
{
	char *tree = bg_path_join(F.dir, "agent-tree");
	char *img = bg_path_join(F.dir, "agent-rootfs.ext4");
	shf("mkdir -p %s/usr/local/libexec %s/etc/systemd/system%s", tree, tree, "");
	shf("cp %s %s/usr/local/libexec/%s", agent_bin(), tree, "");
	shf("cp %s/libexec/banger/banger-vsock-agent.service %s/etc/systemd/system/%s", getenv("BANGER_BUILD_DIR"),
	    tree, "");
	shf("mkfs.ext4 -q -F -d %s %s 32M >/dev/null", tree, img, NULL);
	bg_image_record ir;
	memset(&ir, 0, sizeof(ir));
	ir.name = (char *)"agentimg";
	ir.ref = (char *)"test-agent";
	ir.kernel_name = (char *)"testk";
	ir.rootfs_path = img;
	ir.rootfs_bytes = 32 << 20;
	ir.prepared = 1;
	ir.created_at = 1;
	assert_int_equal(bg_store_image_insert(&F.ctx->env.store, &ir), 0);
	assert_true(bg_agent_image_has(img));
	bg_free(tree);
	bg_free(img);
}

static int setup(void **state)
{
	(void)state;
	fx_setup(&F);
	agent_fx_init(&A);
	snprintf(guest_dir, sizeof(guest_dir), "%s/guest", F.dir);
	assert_int_equal(mkdir(guest_dir, 0700), 0);
	snprintf(A.sock, sizeof(A.sock), "%s/52.sock", guest_dir);
	/* the agent sees this namespace's real sockets */
	char proc[4400];
	snprintf(proc, sizeof(proc), "%s/proc", A.root);
	assert_int_equal(symlink("/proc", proc), 0);
	setenv("FC_FAKE_VSOCK_GUEST_DIR", guest_dir, 1);
	add_agent_image();
	F.ctx->env.logger.cb = on_log;
	F.ctx->env.logger.payload = NULL;
	F.ctx->env.logger.level = BANGER_LOG_DEBUG;
	sshd_pid = 0;
	return 0;
}

static void stop_sshd(void)
{
	if (sshd_pid > 0) {
		kill(sshd_pid, SIGTERM);
		waitpid(sshd_pid, NULL, 0);
		sshd_pid = 0;
	}
}

static int teardown(void **state)
{
	(void)state;
	stop_sshd();
	agent_fx_free(&A);
	unsetenv("FC_FAKE_VSOCK_GUEST_DIR");
	fx_teardown(&F);
	bg_buf_free(&progress_log);
	bg_buf_free(&debug_log);
	return 0;
}

static banger_vm *create_vm(const char *image)
{
	banger_vm_create_options o = BANGER_VM_CREATE_OPTIONS_INIT;
	o.name = "box";
	o.image = image;
	o.no_wait = 1;
	banger_vm *vm = NULL;
	int rc = banger_vm_create(&vm, F.ctx, &o);
	if (rc)
		fail_msg("create: %s", banger_error_last()->message);
	assert_string_equal(banger_vm_guest_ip(vm), "172.29.0.2");
	/* the guest's address answers here: sshd will listen on it */
	assert_int_equal(system("ip addr replace 172.29.0.2/32 dev lo"), 0);
	return vm;
}

static bool ssh_port_open(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(22) };
	a.sin_addr.s_addr = htonl(0xac1d0002); /* 172.29.0.2 */
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* sshd on 172.29.0.2:22 with the host key and authorized keys from the
 * VM's identity disk, as the guest's first boot would install them. */
static void start_sshd(void)
{
	bg_vm_record vm;
	memset(&vm, 0, sizeof(vm));
	assert_int_equal(bg_store_vm_get(&F.ctx->env.store, &vm, "box"), 0);
	bg_vm_paths paths;
	assert_int_equal(bg_layout_vm_paths(&paths, &F.ctx->env.layout, vm.id), 0);
	char *idd = bg_path_join(F.dir, "identity");
	shf("mkdir -p %s && tar -xf %s -C %s && mkdir -p /run/sshd && chmod 755 /run/sshd", idd, paths.identity_disk,
	    idd);
	shf("chmod 600 %s/banger/ssh_host_ed25519_key%s%s", idd, NULL, NULL);
	char *cfg = bg_path_join(F.dir, "sshd_config");
	char *text = bg_sprintf("ListenAddress 172.29.0.2:22\nHostKey %s/banger/ssh_host_ed25519_key\n"
				"AuthorizedKeysFile %s/banger/authorized_keys\nPermitRootLogin prohibit-password\n"
				"UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
				"PidFile none\n", idd, idd);
	assert_int_equal(bg_write_file_atomic(cfg, text, strlen(text), 0600), 0);
	char *log = bg_path_join(F.dir, "sshd.log");
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	char *argv[] = { (char *)"/usr/sbin/sshd", (char *)"-D", (char *)"-e", (char *)"-f", cfg, NULL };
	assert_int_equal(posix_spawn(&sshd_pid, argv[0], &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	int64_t end = bg_now_ms() + 10000;
	while (!ssh_port_open()) {
		if (bg_now_ms() > end)
			fail_msg("sshd did not start; see %s", log);
		usleep(20000);
	}
	bg_free(idd);
	bg_free(cfg);
	bg_free(text);
	bg_free(log);
	bg_vm_paths_free(&paths);
	bg_vm_record_clear(&vm);
}

/* bg_vm_wait_ready on the VM "box" as create/start would call it. */
static int wait_ready(uint32_t timeout_s, int64_t *took)
{
	bg_vm_op op;
	int rc = bg_vm_op_begin(&op, F.ctx, "box", 5000);
	if (rc == 0)
		rc = bg_vm_op_prepare_boot(&op);
	if (rc) {
		bg_vm_op_end(&op);
		fail_msg("op: %s", banger_error_last()->message);
	}
	bg_vm_op_set_progress(&op, BANGER_PROGRESS_OP_VM_START, on_progress, NULL);
	int64_t t0 = bg_now_ms();
	last_report = t0;
	max_gap = 0;
	rc = bg_vm_wait_ready(&op, timeout_s);
	if (took)
		*took = bg_now_ms() - t0;
	/* the caller hears of the wait about twice a second: shown, not
	 * asserted (timing) */
	print_message("reports at most %lld ms apart\n", (long long)max_gap);
	bg_vm_op_end(&op);
	return rc;
}

static void expect_timeout(uint32_t timeout_s, const char *stage)
{
	int rc = wait_ready(timeout_s, NULL);
	if (rc != BANGER_ETIMEOUT)
		fail_msg("expected a timeout, got %d: %s", rc, rc ? banger_error_last()->message : "ready");
	const char *msg = banger_error_last()->message;
	if (!strstr(msg, stage))
		fail_msg("the timeout does not say \"%s\": %s", stage, msg);
	print_message("timeout: %s\n", msg);
}

static void has(const bg_buf *b, const char *needle)
{
	if (!b->data || !strstr(b->data, needle))
		fail_msg("\"%s\" not in:\n%s", needle, b->data ? b->data : "");
}

static void *stop_agent_later(void *arg)
{
	(void)arg;
	usleep(1000000);
	agent_stop(&A);
	unlink(A.sock);
	return NULL;
}

/* VMM up -> agent -> sshd listening -> SSH: each stage named in a
 * timeout, ready only at the end. */
static void test_stages(void **state)
{
	(void)state;
	banger_vm *vm = create_vm("agentimg");

	/* the guest's agent is not up */
	expect_timeout(2, "the VMM is up; still waiting for the vsock agent");
	assert_non_null(strstr(banger_error_last()->message, "not listening on vsock port 52"));
	has(&progress_log, "agent: waiting for the vsock agent (port 52) and sshd on 172.29.0.2");

	/* the agent answers, sshd does not listen */
	agent_start(&A, 5000);
	expect_timeout(2, "the VMM and the vsock agent are up (systemd absent); still waiting for sshd to listen");
	has(&progress_log, "agent: the vsock agent answers: systemd absent, sshd not listening yet");

	/* the agent answers once, then goes away mid-wait */
	pthread_t killer;
	assert_int_equal(pthread_create(&killer, NULL, stop_agent_later, NULL), 0);
	expect_timeout(4, "the vsock agent answered earlier but no longer");
	pthread_join(killer, NULL);
	agent_start(&A, 5000);

	/* the agent reports sshd listening but SSH does not complete (a
	 * listener on the guest's port 22 that is not sshd) */
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(22) };
	a.sin_addr.s_addr = htonl(0xac1d0002);
	int one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 64), 0);
	expect_timeout(4, "the vsock agent reports sshd listening; still waiting for SSH on 172.29.0.2");
	close(l);

	/* real sshd: ready, confirmed by the agent */
	start_sshd();
	bg_buf_free(&progress_log);
	int64_t took;
	int rc = wait_ready(20, &took);
	if (rc)
		fail_msg("not ready: %s", banger_error_last()->message);
	has(&progress_log, "agent: the vsock agent answers: systemd absent, sshd listening");
	has(&progress_log, "the vsock agent confirmed sshd");
	assert_true(took < 5000); /* no grace period involved */
	print_message("ready after %lld ms:\n%s", (long long)took, progress_log.data);
	banger_vm_free(vm);
}

/* SSH works but the agent never answers (an image whose agent does not
 * run): ready on SSH alone after the grace period, with a warning. */
static void test_silent_agent_does_not_block(void **state)
{
	(void)state;
	banger_vm *vm = create_vm("agentimg");
	start_sshd();
	int64_t took;
	int rc = wait_ready(30, &took);
	if (rc)
		fail_msg("not ready: %s", banger_error_last()->message);
	assert_true(took >= 5000 && took < 15000);
	has(&debug_log, "SSH works but the vsock agent never answered; ready on SSH alone");
	print_message("ready on SSH alone after %lld ms\n", (long long)took);
	banger_vm_free(vm);
}

/* The agent comes up while SSH already works: it confirms, no grace. */
static void test_agent_late(void **state)
{
	(void)state;
	banger_vm *vm = create_vm("agentimg");
	start_sshd();
	char tmo[] = "5000";
	const char *argv[] = { "/bin/sh", "-c", "sleep 1.5; exec \"$0\" \"$@\"", agent_bin(), "--unix", A.sock,
			       "--sysroot", A.root, "--timeout-ms", tmo, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 2, A.log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	assert_int_equal(posix_spawn(&A.pid, argv[0], &fa, NULL, (char *const *)argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	int64_t took;
	int rc = wait_ready(30, &took);
	if (rc)
		fail_msg("not ready: %s", banger_error_last()->message);
	has(&progress_log, "the vsock agent confirmed sshd");
	assert_true(took >= 1000 && took < 5000);
	banger_vm_free(vm);
}

/* An image without the agent: SSH only, and the debug log says why. */
static void test_image_without_agent(void **state)
{
	(void)state;
	banger_vm *vm = create_vm("testimg");
	expect_timeout(2, "the VMM is up; still waiting for sshd on 172.29.0.2");
	has(&debug_log, "readiness is SSH only: image testimg does not carry the vsock agent");
	start_sshd();
	bg_buf_free(&progress_log);
	int rc = wait_ready(20, NULL);
	if (rc)
		fail_msg("not ready: %s", banger_error_last()->message);
	has(&progress_log, "ssh: waiting for sshd on 172.29.0.2");
	assert_null(strstr(progress_log.data, "agent"));
	banger_vm_free(vm);
}

int main(void)
{
	if (access("/usr/sbin/sshd", X_OK) != 0) {
		fprintf(stderr, "skip: needs /usr/sbin/sshd (openssh-server)\n");
		return 77;
	}
	char *tool = bg_which("mkfs.ext4");
	if (!tool) {
		fprintf(stderr, "skip: needs mkfs.ext4\n");
		return 77;
	}
	bg_free(tool);
	if (!(tool = bg_which("python3"))) {
		fprintf(stderr, "skip: python3 (needed by the Firecracker fake) is not installed\n");
		return 77;
	}
	bg_free(tool);
	if (access(agent_bin(), X_OK) != 0) {
		fprintf(stderr, "the agent is not built at %s\n", agent_bin());
		return 1;
	}
	int rc = fx_enter_netns();
	if (rc)
		return rc;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_silent_agent_does_not_block, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_late, setup, teardown),
		cmocka_unit_test_setup_teardown(test_image_without_agent, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
