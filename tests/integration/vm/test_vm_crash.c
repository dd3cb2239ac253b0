/* Crash safety: a process killed with SIGKILL at every step of create,
 * start, stop and delete; the next context open destroys nothing, and an
 * explicit reconcile brings it to a consistent state with nothing leaked,
 * checked against the kernel (links, /proc, nftables, loop devices) and
 * banger's known_hosts (no pin outlives its VM), not against banger's
 * records. */
#include "vm_fixture.h"

#include <signal.h>
#include <sys/wait.h>

static const banger_vm_delete_options FORCE_DELETE = { BANGER_VM_DELETE_OPTIONS_VERSION, 1 };
static const banger_vm_stop_options FORCE_STOP = { BANGER_VM_STOP_OPTIONS_VERSION, 1 };

static vm_fixture F;

typedef enum { OP_CREATE, OP_START, OP_STOP, OP_DELETE } op_kind;

static const struct {
	op_kind op;
	const char *step;
} steps[] = {
	{ OP_CREATE, "create:dir" },      { OP_CREATE, "create:recorded" },
	{ OP_CREATE, "create:overlay" },  { OP_CREATE, "create:workdisk" },
	{ OP_CREATE, "create:identity" }, { OP_CREATE, "create:tap" },
	{ OP_CREATE, "create:nat" },      { OP_CREATE, "create:spawn" },
	{ OP_CREATE, "create:configure" },{ OP_CREATE, "create:start" },
	{ OP_CREATE, "create:running" },
	{ OP_START, "start:tap" },        { OP_START, "start:nat" },
	{ OP_START, "start:spawn" },      { OP_START, "start:configure" },
	{ OP_START, "start:start" },      { OP_START, "start:running" },
	{ OP_STOP, "stop:stopping" },     { OP_STOP, "stop:teardown" },
	{ OP_STOP, "stop:stopped" },
	{ OP_DELETE, "delete:deleting" }, { OP_DELETE, "delete:teardown" },
	{ OP_DELETE, "delete:pins" },     { OP_DELETE, "delete:files" },
};

static int create_vm(banger_ctx *ctx, int start)
{
	banger_vm_create_options o = BANGER_VM_CREATE_OPTIONS_INIT;
	o.name = "crash";
	o.image = "testimg";
	o.nat = 1;
	o.no_wait = 1;
	o.no_start = !start;
	return banger_vm_create(NULL, ctx, &o);
}

static int run_op(banger_ctx *ctx, op_kind op)
{
	banger_vm_start_options so = BANGER_VM_START_OPTIONS_INIT;
	so.no_wait = 1;
	switch (op) {
	case OP_CREATE: return create_vm(ctx, 1);
	case OP_START: return banger_vm_start(ctx, "crash", &so);
	case OP_STOP: return banger_vm_stop(ctx, "crash", NULL);
	case OP_DELETE: return banger_vm_delete(ctx, "crash", &FORCE_DELETE);
	}
	return -1;
}

/* After reconcile the VM is gone, stopped with nothing running, or
 * running and alive with exactly its own objects. */
/* Lines of banger's known_hosts that pin the VM's name. */
static int pins(void)
{
	return fx_count("grep -c '^crash\\.vm[ ,]' '%s' || true", banger_ssh_known_hosts_path(F.ctx));
}

static void assert_consistent(const char *step)
{
	banger_vm *vm = NULL;
	int rc = banger_vm_lookup(&vm, F.ctx, "crash");
	char *vms = bg_path_join(F.state, "vms");
	if (rc == BANGER_ENOTFOUND) {
		fx_assert_clean(&F);
		if (fx_count("ls -A '%s' | wc -l", vms) != 0)
			fail_msg("%s: a VM directory was left behind", step);
		if (pins() != 0)
			fail_msg("%s: the VM is gone but its host key pin is not", step);
	} else {
		assert_int_equal(rc, 0);
		int st = banger_vm_state(vm);
		if (st == BANGER_VM_STATE_RUNNING) {
			assert_int_equal(banger_vm_is_alive(F.ctx, vm), 1);
			assert_int_equal(fx_procs(&F), 1);
			assert_int_equal(fx_taps(), 1);
			assert_int_equal(fx_nat_rules(), 3);
		} else if (st == BANGER_VM_STATE_STOPPED) {
			fx_assert_clean(&F);
		} else {
			fail_msg("%s: VM left in state %s", step, banger_vm_state_name(st));
		}
		assert_int_equal(fx_count("ls -A '%s' | wc -l", vms), 1);
		if (pins() != 1)
			fail_msg("%s: the VM exists but its name is pinned %d times", step, pins());
	}
	free(vms);
	banger_vm_free(vm);
}

static void crash_at(op_kind op, const char *step)
{
	/* bring the VM into the state the operation starts from */
	banger_vm *vm = NULL;
	bool exists = banger_vm_lookup(&vm, F.ctx, "crash") == 0;
	bool running = exists && banger_vm_is_alive(F.ctx, vm) == 1;
	banger_vm_free(vm);
	banger_error_clear();
	if (op == OP_CREATE && exists)
		assert_int_equal(banger_vm_delete(F.ctx, "crash", &FORCE_DELETE), 0);
	if (op != OP_CREATE && !exists)
		assert_int_equal(create_vm(F.ctx, op != OP_START), 0);
	if (op == OP_START && exists && running)
		assert_int_equal(banger_vm_stop(F.ctx, "crash", &FORCE_STOP), 0);
	if ((op == OP_STOP || op == OP_DELETE) && exists && !running) {
		banger_vm_start_options so = BANGER_VM_START_OPTIONS_INIT;
		so.no_wait = 1;
		assert_int_equal(banger_vm_start(F.ctx, "crash", &so), 0);
	}

	pid_t pid = fork();
	if (pid == 0) {
		banger_ctx *ctx = fx_open(&F, BANGER_CTX_NO_RECONCILE);
		setenv("BANGER_FAULT", step, 1);
		int rc = run_op(ctx, op);
		fprintf(stderr, "%s: the operation finished (rc %d) without reaching its fault point\n", step, rc);
		_exit(3);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
		fail_msg("%s: child was not killed at the fault point (status %d)", step, status);

	/* Opening kills and deletes nothing: whatever the killed process
	 * left is still there for the explicit reconcile to settle. */
	int dirs_before = fx_count("ls -A '%s' | wc -l", F.state);
	banger_ctx_close(F.ctx);
	char *vms = bg_path_join(F.state, "vms");
	int vm_dirs = fx_count("ls -A '%s' | wc -l", vms);
	F.ctx = fx_open(&F, 0);
	if (fx_count("ls -A '%s' | wc -l", vms) != vm_dirs || fx_count("ls -A '%s' | wc -l", F.state) != dirs_before)
		fail_msg("%s: opening a context removed something", step);
	free(vms);
	assert_true(banger_vm_reconcile(F.ctx, NULL) >= 0);
	assert_consistent(step);
	printf("ok: killed at %-18s -> consistent after reconcile\n", step);
}

static void test_crash_everywhere(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		crash_at(steps[i].op, steps[i].step);
	banger_vm *vm;
	if (banger_vm_lookup(&vm, F.ctx, "crash") == 0) {
		banger_vm_free(vm);
		assert_int_equal(banger_vm_delete(F.ctx, "crash", &FORCE_DELETE), 0);
	}
	fx_assert_clean(&F);
}

static int setup(void **state)
{
	(void)state;
	fx_setup(&F);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fx_teardown(&F);
	return 0;
}

int main(void)
{
	int rc = fx_enter_netns();
	if (rc)
		return rc;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_crash_everywhere, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
