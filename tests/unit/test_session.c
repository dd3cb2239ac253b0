/* Sessions: the attach framing (guest/include/banger-guest/session.h), the
 * helper's status lines, shell quoting of commands, the sessions table,
 * VMs that stop, die or are deleted marking their sessions lost, and the
 * helper's protocol spoken directly to a session it supervises on this
 * host (no SSH in between). */
#include <signal.h>
#include <sys/wait.h>

#include "ctx_fixture.h"
#include "fake_host.h"
#include "../../libbanger/session/session.h"
#include "../../libbanger/vm/vm.h"
#include "../../guest/include/banger-guest/session.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const banger_vm_delete_options FORCE_DELETE = { BANGER_VM_DELETE_OPTIONS_VERSION, 1 };

/* ---- framing ---- */

static void test_frame_roundtrip(void **state)
{
	(void)state;
	unsigned char buf[256];
	size_t n = 0;
	n += sp_encode_hello(buf + n, -1);
	n += sp_encode_winsize(buf + n, 40, 120);
	n += sp_encode_signal(buf + n, 15);
	n += sp_encode_bytes(buf + n, SP_INPUT, "ls\r", 3);
	n += sp_encode_output(buf + n, 0x0102030405060708ull, "out", 3);
	n += sp_encode_bytes(buf + n, SP_END, "exit 3", 6);
	sp_frame f;
	size_t used, pos = 0;

	assert_int_equal(sp_parse(buf + pos, n - pos, &f, &used), 1);
	assert_int_equal(f.type, SP_HELLO);
	assert_true(sp_valid(&f));
	assert_int_equal(sp_get_u32(f.payload), SP_VERSION);
	assert_true((int64_t)sp_get_u64(f.payload + 4) == -1);
	pos += used;

	assert_int_equal(sp_parse(buf + pos, n - pos, &f, &used), 1);
	assert_int_equal(f.type, SP_WINSIZE);
	assert_int_equal(sp_get_u16(f.payload), 40);
	assert_int_equal(sp_get_u16(f.payload + 2), 120);
	pos += used;

	assert_int_equal(sp_parse(buf + pos, n - pos, &f, &used), 1);
	assert_int_equal(f.type, SP_SIGNAL);
	assert_int_equal(sp_get_u32(f.payload), 15);
	pos += used;

	assert_int_equal(sp_parse(buf + pos, n - pos, &f, &used), 1);
	assert_int_equal(f.type, SP_INPUT);
	assert_int_equal(f.len, 3);
	assert_memory_equal(f.payload, "ls\r", 3);
	pos += used;

	assert_int_equal(sp_parse(buf + pos, n - pos, &f, &used), 1);
	assert_int_equal(f.type, SP_OUTPUT);
	assert_true(sp_valid(&f));
	assert_true(sp_get_u64(f.payload) == 0x0102030405060708ull);
	assert_memory_equal(f.payload + 8, "out", 3);
	pos += used;

	assert_int_equal(sp_parse(buf + pos, n - pos, &f, &used), 1);
	assert_int_equal(f.type, SP_END);
	assert_memory_equal(f.payload, "exit 3", 6);
	pos += used;
	assert_int_equal(pos, n);
	assert_int_equal(sp_parse(buf + pos, 0, &f, &used), 0);
}

static void test_frame_partial_and_bad(void **state)
{
	(void)state;
	unsigned char buf[64];
	size_t n = sp_encode_output(buf, 7, "abcdef", 6);
	sp_frame f;
	size_t used;
	/* every proper prefix asks for more */
	for (size_t i = 0; i < n; i++)
		assert_int_equal(sp_parse(buf, i, &f, &used), 0);
	assert_int_equal(sp_parse(buf, n, &f, &used), 1);
	assert_int_equal(used, n);
	/* unknown type: an error at once, even with one byte */
	unsigned char bad = 'Z';
	assert_int_equal(sp_parse(&bad, 1, &f, &used), -1);
	/* too long */
	unsigned char big[SP_HEADER];
	sp_header(big, SP_INPUT, SP_MAX_PAYLOAD + 1);
	assert_int_equal(sp_parse(big, sizeof(big), &f, &used), -1);
	sp_header(big, SP_INPUT, SP_MAX_PAYLOAD);
	assert_int_equal(sp_parse(big, sizeof(big), &f, &used), 0);
	/* wrong payload sizes */
	unsigned char w[16];
	sp_header(w, SP_WINSIZE, 3);
	memset(w + 5, 0, 3);
	assert_int_equal(sp_parse(w, 8, &f, &used), 1);
	assert_false(sp_valid(&f));
	sp_header(w, SP_HELLO, 4);
	assert_int_equal(sp_parse(w, 9, &f, &used), 1);
	assert_false(sp_valid(&f));
	sp_header(w, SP_OUTPUT, 7);
	assert_int_equal(sp_parse(w, 12, &f, &used), 1);
	assert_false(sp_valid(&f));
}

static void test_status_parse(void **state)
{
	(void)state;
	char kind;
	int code;
	assert_true(sp_parse_status("exit 0\n", 7, &kind, &code) && kind == 'e' && code == 0);
	assert_true(sp_parse_status("exit 255", 8, &kind, &code) && code == 255);
	assert_true(sp_parse_status("signal 9\r\n", 10, &kind, &code) && kind == 's' && code == 9);
	assert_false(sp_parse_status("exit 256", 8, &kind, &code));
	assert_false(sp_parse_status("exit ", 5, &kind, &code));
	assert_false(sp_parse_status("exit -1", 7, &kind, &code));
	assert_false(sp_parse_status("exit 1x", 7, &kind, &code));
	assert_false(sp_parse_status("quit 1", 6, &kind, &code));
	assert_false(sp_parse_status("", 0, &kind, &code));

	int32_t c, s;
	assert_true(bg_session_parse_status("signal 15\nescalated\n", &c, &s));
	assert_int_equal(c, -1);
	assert_int_equal(s, 15);
	assert_true(bg_session_parse_status("exit 3\n", &c, &s));
	assert_int_equal(c, 3);
	assert_int_equal(s, 0);

	bg_session_status_line l;
	const char *ok = "0123456789ab running - 42";
	assert_true(bg_session_parse_status_line(&l, ok, strlen(ok)));
	assert_string_equal(l.id, "0123456789ab");
	assert_string_equal(l.state, "running");
	assert_int_equal(l.code, -1);
	assert_int_equal(l.log_size, 42);
	const char *ex = "abc exited 3 7";
	assert_true(bg_session_parse_status_line(&l, ex, strlen(ex)));
	assert_int_equal(l.code, 3);
	const char *gone = "abc missing - -";
	assert_true(bg_session_parse_status_line(&l, gone, strlen(gone)));
	assert_int_equal(l.log_size, -1);
	const char *bads[] = { "abc exited - 7", "abc sleeping - 1", "abc running - 1 extra", "abc running",
			       "abc exited 300 1", "abc running - -5" };
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
		assert_false(bg_session_parse_status_line(&l, bads[i], strlen(bads[i])));
}

/* ---- the sessions table ---- */

static bg_session_record rec(const char *id, const char *vm, const char *name, const char *state, int64_t created)
{
	bg_session_record r;
	memset(&r, 0, sizeof(r));
	r.id = (char *)id;
	r.vm_id = (char *)vm;
	r.name = (char *)name;
	r.command = (char *)"sleep 1";
	r.state = (char *)state;
	r.exit_code = -1;
	r.created_at = created;
	return r;
}

static void test_store_sessions(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char *db = bg_path_join(dir, "b.db");
	bg_store s;
	assert_int_equal(bg_store_open(&s, db, NULL), 0);
	bg_session_record a = rec("aaaa00000001", "vm1", "build", "running", 100);
	bg_session_record b = rec("aaaa00000002", "vm1", NULL, "running", 101);
	bg_session_record c = rec("bbbb00000003", "vm2", "build", "starting", 102);
	bg_session_record d = rec("cccc00000004", "vm2", NULL, "exited", 103);
	d.exit_code = 2;
	assert_int_equal(bg_store_session_insert(&s, &a), 0);
	assert_int_equal(bg_store_session_insert(&s, &b), 0);
	assert_int_equal(bg_store_session_insert(&s, &c), 0);
	assert_int_equal(bg_store_session_insert(&s, &d), 0);
	/* names are unique per VM; several unnamed are fine */
	bg_session_record dup = rec("dddd00000005", "vm1", "build", "running", 104);
	assert_int_equal(bg_store_session_insert(&s, &dup), BANGER_EEXISTS);
	bg_session_record again = rec("aaaa00000001", "vm3", NULL, "running", 104);
	assert_int_equal(bg_store_session_insert(&s, &again), BANGER_EEXISTS);

	bg_session_record got;
	assert_int_equal(bg_store_session_get(&s, &got, "aaaa00000002"), 0);
	assert_string_equal(got.vm_id, "vm1");
	assert_null(got.name);
	assert_null(got.vm_name); /* no such VM record */
	assert_int_equal(got.exit_code, -1);
	assert_int_equal(got.log_size, -1);
	bg_session_record_clear(&got);
	/* a name used on two VMs is ambiguous; a unique prefix works */
	assert_int_equal(bg_store_session_get(&s, &got, "build"), BANGER_EINVALID);
	assert_int_equal(bg_store_session_get(&s, &got, "bbbb"), 0);
	assert_string_equal(got.id, "bbbb00000003");
	bg_session_record_clear(&got);
	assert_int_equal(bg_store_session_get(&s, &got, "aaaa"), BANGER_EINVALID);
	assert_int_equal(bg_store_session_get(&s, &got, "aaa"), BANGER_ENOTFOUND);
	assert_int_equal(bg_store_session_get(&s, &got, "nope"), BANGER_ENOTFOUND);
	assert_int_equal(bg_store_session_get(&s, &got, "cccc00000004"), 0);
	assert_string_equal(got.state, "exited");
	assert_int_equal(got.exit_code, 2);
	bg_session_record_clear(&got);

	bg_session_record *v;
	size_t n;
	assert_int_equal(bg_store_session_list(&s, NULL, &v, &n), 0);
	assert_int_equal(n, 4);
	assert_string_equal(v[0].id, "aaaa00000001");
	assert_string_equal(v[3].id, "cccc00000004");
	bg_session_records_free(v, n);
	assert_int_equal(bg_store_session_list(&s, "vm2", &v, &n), 0);
	assert_int_equal(n, 2);
	bg_session_records_free(v, n);

	/* the VM hook: only its starting and running sessions */
	int changed = -1;
	assert_int_equal(bg_store_session_mark_vm_lost(&s, "vm2", &changed), 0);
	assert_int_equal(changed, 1);
	assert_int_equal(bg_store_session_get(&s, &got, "bbbb00000003"), 0);
	assert_string_equal(got.state, "lost");
	bg_session_record_clear(&got);
	assert_int_equal(bg_store_session_get(&s, &got, "cccc00000004"), 0);
	assert_string_equal(got.state, "exited");
	bg_session_record_clear(&got);
	assert_int_equal(bg_store_session_get(&s, &got, "aaaa00000001"), 0);
	assert_string_equal(got.state, "running");
	bg_session_record_clear(&got);

	assert_int_equal(bg_store_session_set_state(&s, "aaaa00000001", "exited", -1, 9), 0);
	assert_int_equal(bg_store_session_get(&s, &got, "aaaa00000001"), 0);
	assert_string_equal(got.state, "exited");
	assert_int_equal(got.exit_code, -1);
	assert_int_equal(got.exit_signal, 9);
	bg_session_record_clear(&got);
	/* the state is checked by the schema */
	assert_int_not_equal(bg_store_session_set_state(&s, "aaaa00000001", "bogus", -1, 0), 0);
	assert_int_equal(bg_store_session_set_state(&s, "ffff00000000", "lost", -1, 0), BANGER_ENOTFOUND);

	assert_int_equal(bg_store_session_delete(&s, "aaaa00000001"), 0);
	assert_int_equal(bg_store_session_delete(&s, "aaaa00000001"), BANGER_ENOTFOUND);
	bg_store_close(&s);
	bg_free(db);
	test_rmrf(dir);
	free(dir);
}

/* ---- VMs that stop, die or go away ---- */

typedef struct {
	char *dir;
	banger_ctx *ctx;
	fake_host fh;
	bg_host_ops ops;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	f->ctx = test_ctx_open(&f->dir, "state");
	f->ops = fake_host_ops(&f->fh);
	bg_env_set_host_ops(&f->ctx->env, &f->ops);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	test_ctx_close(f->ctx, f->dir);
	free(f);
	return 0;
}

static void add_vm(fixture *f, const char *id, const char *name, const char *state)
{
	bg_vm_paths p;
	assert_int_equal(bg_layout_vm_paths(&p, &f->ctx->env.layout, id), 0);
	bg_vm_record vm;
	memset(&vm, 0, sizeof(vm));
	snprintf(vm.id, sizeof(vm.id), "%s", id);
	vm.name = (char *)name;
	vm.state = (char *)state;
	vm.vmm = (char *)"qemu";
	vm.api_sock = p.api_sock;
	vm.vm_dir = p.dir;
	vm.vcpus = 1;
	vm.memory_mib = 128;
	assert_int_equal(bg_mkdir_p(p.dir, 0700), 0);
	assert_int_equal(bg_store_vm_insert(&f->ctx->env.store, &vm), 0);
	bg_vm_paths_free(&p);
}

static void add_session(fixture *f, const char *id, const char *vm_id, const char *state)
{
	bg_session_record r = rec(id, vm_id, NULL, state, bg_wall_seconds());
	assert_int_equal(bg_store_session_insert(&f->ctx->env.store, &r), 0);
}

static void assert_state(fixture *f, const char *id, const char *want)
{
	banger_session *s;
	assert_int_equal(banger_session_lookup(&s, f->ctx, id, 0), 0);
	assert_string_equal(banger_session_state_name(banger_session_state(s)), want);
	banger_session_free(s);
}

/* States are numbers in the API; a VM state a newer library wrote (here
 * made up) reads as UNKNOWN, and every name is the string the store
 * keeps.  (The sessions table's CHECK admits only the states there are:
 * a new one comes with a migration an older library refuses.) */
static void test_states(void **state)
{
	fixture *f = *state;
	add_vm(f, "0000000c", "future", "hibernating");
	banger_vm *vm;
	assert_int_equal(banger_vm_lookup(&vm, f->ctx, "future"), 0);
	assert_int_equal(banger_vm_state(vm), BANGER_VM_STATE_UNKNOWN);
	assert_string_equal(banger_vm_state_name(banger_vm_state(vm)), "unknown");
	banger_vm_free(vm);

	static const char *const vm_states[] = { BG_VM_CREATING, BG_VM_STOPPED, BG_VM_STARTING,
						 BG_VM_RUNNING, BG_VM_STOPPING, BG_VM_DELETING };
	for (int i = 1; i <= BANGER_VM_STATE_DELETING; i++)
		assert_string_equal(banger_vm_state_name(i), vm_states[i - 1]);
	assert_string_equal(banger_vm_state_name(BANGER_VM_STATE_DELETING + 1), "unknown");
	assert_string_equal(banger_vm_state_name(-1), "unknown");
	static const char *const session_states[] = { BG_SESSION_STARTING, BG_SESSION_RUNNING, BG_SESSION_EXITED,
						      BG_SESSION_LOST };
	for (int i = 1; i <= BANGER_SESSION_STATE_LOST; i++)
		assert_string_equal(banger_session_state_name(i), session_states[i - 1]);
	assert_string_equal(banger_session_state_name(0), "unknown");
	assert_string_equal(banger_session_state_name(BANGER_SESSION_STATE_LOST + 1), "unknown");
}

/* A stopped VM: a refresh needs no connection to know its sessions are
 * gone, and nothing can be started, attached, awaited or stopped. */
static void test_not_running_vm(void **state)
{
	fixture *f = *state;
	add_vm(f, "0000000a", "idle", BG_VM_STOPPED);
	add_session(f, "00000000000a", "0000000a", "running");
	add_session(f, "00000000000b", "0000000a", "exited");
	banger_session_list *l;
	assert_int_equal(banger_session_list_all(&l, f->ctx, "idle", BANGER_SESSION_REFRESH), 0);
	assert_int_equal(banger_session_list_count(l), 2);
	const banger_session *s = banger_session_list_get(l, 0);
	assert_int_equal(banger_session_state(s), BANGER_SESSION_STATE_LOST);
	assert_string_equal(banger_session_vm_name(s), "idle");
	assert_int_equal(banger_session_state(banger_session_list_get(l, 1)), BANGER_SESSION_STATE_EXITED);
	assert_null(banger_session_list_get(l, 2));
	banger_session_list_free(l);

	char *id = NULL;
	const char *argv[] = { "true" };
	assert_int_equal(banger_session_start(&id, f->ctx, "idle", argv, 1, NULL), BANGER_ESTATE);
	assert_null(id);
	banger_exit_status st;
	assert_int_equal(banger_session_wait(&st, f->ctx, "00000000000a", NULL), BANGER_ESTATE);
	assert_int_equal(st.code, -1);
	assert_int_equal(st.signal, 0);
	assert_int_equal(banger_session_stop(NULL, f->ctx, "00000000000a", NULL), BANGER_ESTATE);
	banger_session_attach_options ao = BANGER_SESSION_ATTACH_OPTIONS_INIT;
	ao.out_fd = 1;
	assert_int_equal(banger_session_attach(NULL, f->ctx, "00000000000a", &ao), BANGER_ESTATE);
	/* a lost session is only forgotten */
	banger_session_remove_options ro = BANGER_SESSION_REMOVE_OPTIONS_INIT;
	ro.version = 99;
	assert_int_equal(banger_session_remove(f->ctx, "00000000000a", &ro), BANGER_EINVALID);
	assert_int_equal(banger_session_remove(f->ctx, "00000000000a", NULL), 0);
	banger_session *gone = NULL;
	assert_int_equal(banger_session_lookup(&gone, f->ctx, "00000000000a", 0), BANGER_ENOTFOUND);
	assert_null(gone);
}

static void test_vm_stop_delete_reconcile(void **state)
{
	fixture *f = *state;
	add_vm(f, "0000000b", "stopme", BG_VM_STOPPED);
	add_session(f, "0000000000b1", "0000000b", "running");
	add_session(f, "0000000000b2", "0000000b", "starting");
	assert_int_equal(banger_vm_stop(f->ctx, "stopme", NULL), 0);
	assert_state(f, "0000000000b1", "lost");
	assert_state(f, "0000000000b2", "lost");

	add_vm(f, "0000000c", "deleteme", BG_VM_STOPPED);
	add_session(f, "0000000000c1", "0000000c", "running");
	assert_int_equal(banger_vm_delete(f->ctx, "deleteme", &FORCE_DELETE), 0);
	assert_state(f, "0000000000c1", "lost");
	banger_session *s;
	assert_int_equal(banger_session_lookup(&s, f->ctx, "0000000000c1", 0), 0);
	assert_null(banger_session_vm_name(s)); /* the VM record is gone */
	assert_string_equal(banger_session_vm_id(s), "0000000c");
	banger_session_free(s);
	/* still listed under the deleted VM's id */
	banger_session_list *l;
	assert_int_equal(banger_session_list_all(&l, f->ctx, "0000000c", BANGER_SESSION_REFRESH), 0);
	assert_int_equal(banger_session_list_count(l), 1);
	banger_session_list_free(l);
	assert_int_equal(banger_session_list_all(&l, f->ctx, "nosuchvm", 0), BANGER_ENOTFOUND);

	/* a VM recorded running whose VMM is gone: reconcile marks it
	 * stopped, and its sessions lost */
	add_vm(f, "0000000d", "dead", BG_VM_RUNNING);
	add_session(f, "0000000000d1", "0000000d", "running");
	add_session(f, "0000000000d2", "0000000d", "exited");
	unsigned fixed = 0;
	assert_int_equal(bg_vm_reconcile(f->ctx, false, NULL, &fixed), 0);
	assert_int_equal(fixed, 1);
	assert_state(f, "0000000000d1", "lost");
	assert_state(f, "0000000000d2", "exited");
}

static void test_bad_arguments(void **state)
{
	fixture *f = *state;
	char *id = NULL;
	const char *argv[] = { "true" };
	banger_session_start_options o = BANGER_SESSION_START_OPTIONS_INIT;
	assert_int_equal(banger_session_start(&id, f->ctx, "x", argv, 0, &o), BANGER_EINVALID);
	o.name = "bad name";
	assert_int_equal(banger_session_start(&id, f->ctx, "x", argv, 1, &o), BANGER_EINVALID);
	o.name = NULL;
	const char *env[] = { "NOEQUALS" };
	o.env = env;
	o.env_count = 1;
	assert_int_equal(banger_session_start(&id, f->ctx, "x", argv, 1, &o), BANGER_EINVALID);
	o.env_count = 0;
	o.version = 99;
	assert_int_equal(banger_session_start(&id, f->ctx, "x", argv, 1, &o), BANGER_EINVALID);
	assert_int_equal(banger_session_start_options_init(&o, 99), BANGER_EINVALID);
	assert_int_equal(banger_session_start(&id, f->ctx, "novm", argv, 1, NULL), BANGER_ENOTFOUND);
	banger_session_attach_options ao;
	assert_int_equal(banger_session_attach_options_init(&ao, BANGER_SESSION_ATTACH_OPTIONS_VERSION), 0);
	assert_int_equal(ao.in_fd, -1);
	assert_true(ao.replay_from == -1);
	assert_int_equal(banger_session_attach(NULL, f->ctx, "x", &ao), BANGER_EINVALID); /* no out_fd */
	banger_session_stop_options so = BANGER_SESSION_STOP_OPTIONS_INIT;
	so.signal = 99;
	assert_int_equal(banger_session_stop(NULL, f->ctx, "x", &so), BANGER_EINVALID);
	uint64_t off = 7;
	banger_session_logs_options lo;
	assert_int_equal(banger_session_logs_options_init(&lo, BANGER_SESSION_LOGS_OPTIONS_VERSION), 0);
	assert_true(lo.from == 0 && lo.flags == 0 && lo.output_cb == NULL);
	lo.from = 5;
	assert_int_equal(banger_session_logs(&off, f->ctx, "nosuch", &lo), BANGER_ENOTFOUND);
	assert_int_equal(off, 5);
	/* a refused struct: nothing was read from it, *out is 0 */
	lo.version = 99;
	assert_int_equal(banger_session_logs(&off, f->ctx, "nosuch", &lo), BANGER_EINVALID);
	assert_int_equal(off, 0);
	assert_int_equal(banger_session_logs(&off, f->ctx, "nosuch", NULL), BANGER_ENOTFOUND);
	banger_session_list_free(NULL);
	banger_session_free(NULL);
	assert_null(banger_session_id(NULL));
	assert_int_equal(banger_session_exit_code(NULL), -1);
}

/* ---- the helper's protocol, spoken directly to its socket ---- */

static char *helper_path(void)
{
	const char *h = getenv("BANGER_SESSION_HELPER");
	if (h && *h)
		return strdup(h);
	const char *b = getenv("BANGER_BUILD_DIR");
	if (!b)
		return NULL;
	char *p = malloc(4096);
	snprintf(p, 4096, "%s/libexec/banger/banger-session", b);
	return access(p, X_OK) == 0 ? p : (free(p), NULL);
}

static int run_helper(const char *helper, char *const argv[], char *out, size_t outlen)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		execv(helper, argv);
		_exit(127);
	}
	close(fds[1]);
	size_t have = 0;
	ssize_t n;
	while ((n = read(fds[0], out + have, outlen - 1 - have)) > 0)
		have += (size_t)n;
	out[have] = '\0';
	close(fds[0]);
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int connect_sock(const char *dir)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	/* a cut path would name another socket (and gcc -O3 says so) */
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", dir);
	assert_true(n > 0 && (size_t)n < sizeof(sa.sun_path));
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Read frames until EOF; output bytes are appended to out (checking
 * that offsets run on without a gap), the end and refusal texts kept. */
typedef struct {
	char out[8192];
	size_t out_len;
	uint64_t first, next;
	bool any;
	char end[32], refused[128];
} reader;

static void read_frames(int fd, reader *r, const char *until)
{
	static unsigned char buf[SP_HEADER + SP_MAX_PAYLOAD + 64];
	size_t have = 0;
	for (;;) {
		if (until && strstr(r->out, until))
			return;
		struct pollfd p = { fd, POLLIN, 0 };
		assert_true(poll(&p, 1, 20000) == 1);
		ssize_t n = recv(fd, buf + have, sizeof(buf) - have, 0);
		assert_true(n >= 0);
		if (n == 0) {
			assert_int_equal(have, 0);
			return;
		}
		have += (size_t)n;
		sp_frame f;
		size_t used;
		int pr;
		while ((pr = sp_parse(buf, have, &f, &used)) == 1) {
			assert_true(sp_valid(&f));
			if (f.type == SP_OUTPUT) {
				uint64_t off = sp_get_u64(f.payload);
				if (!r->any) {
					r->first = off;
					r->next = off;
					r->any = true;
				}
				assert_true(off == r->next);
				size_t len = f.len - 8;
				assert_true(r->out_len + len < sizeof(r->out));
				memcpy(r->out + r->out_len, f.payload + 8, len);
				r->out_len += len;
				r->out[r->out_len] = '\0';
				r->next = off + len;
			} else if (f.type == SP_END) {
				snprintf(r->end, sizeof(r->end), "%.*s", (int)f.len, (const char *)f.payload);
			} else if (f.type == SP_REFUSED) {
				snprintf(r->refused, sizeof(r->refused), "%.*s", (int)f.len, (const char *)f.payload);
			} else {
				fail_msg("unexpected frame type %c from the supervisor", f.type);
			}
			memmove(buf, buf + used, have - used);
			have -= used;
		}
		assert_int_not_equal(pr, -1);
	}
}

static void send_frame(int fd, const unsigned char *f, size_t n)
{
	assert_int_equal(send(fd, f, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void test_helper_protocol(void **state)
{
	(void)state;
	char *helper = helper_path();
	if (!helper) {
		print_message("banger-session not built: skipped\n");
		skip();
	}
	char *tmp = test_tmpdir();
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/sessions/s1", tmp);
	char out[512];
	char *start[] = { "banger-session", "start", "--dir", dir, "--tty", "--rows", "10", "--cols", "20", "--",
			  "sh", "-c", "echo hi; stty size; read a; read b; echo \"in:$a:$b\"; stty size; exit 4", NULL };
	assert_int_equal(run_helper(helper, start, out, sizeof(out)), 0);
	assert_true(strncmp(out, "pid ", 4) == 0);

	/* 1: input before hello is refused */
	int rude = connect_sock(dir);
	unsigned char f[128];
	send_frame(rude, f, sp_encode_bytes(f, SP_INPUT, "x", 1));
	reader r0 = { .out_len = 0 };
	read_frames(rude, &r0, NULL);
	assert_non_null(strstr(r0.refused, "hello"));
	close(rude);

	/* 2: a newer protocol is refused */
	int newer = connect_sock(dir);
	size_t n = sp_encode_hello(f, -1);
	sp_put_u32(f + 5, SP_VERSION + 1);
	send_frame(newer, f, n);
	reader r1 = { .out_len = 0 };
	read_frames(newer, &r1, NULL);
	assert_non_null(strstr(r1.refused, "not supported"));
	close(newer);

	/* 3: two attachers replaying from 0; one types, one resizes */
	int a = connect_sock(dir), b = connect_sock(dir);
	send_frame(a, f, sp_encode_hello(f, 0));
	send_frame(b, f, sp_encode_hello(f, 0));
	reader ra = { .out_len = 0 }, rb = { .out_len = 0 };
	read_frames(a, &ra, "10 20");
	read_frames(b, &rb, "10 20");
	assert_true(ra.first == 0 && rb.first == 0);
	assert_non_null(strstr(ra.out, "hi"));
	send_frame(b, f, sp_encode_winsize(f, 33, 44));
	send_frame(a, f, sp_encode_bytes(f, SP_INPUT, "one\r", 4));
	send_frame(b, f, sp_encode_bytes(f, SP_INPUT, "two\r", 4));
	read_frames(a, &ra, NULL);
	read_frames(b, &rb, NULL);
	assert_non_null(strstr(ra.out, "in:one:two"));
	assert_non_null(strstr(ra.out, "33 44"));
	/* both saw every byte, from offset 0, identically */
	assert_int_equal(ra.out_len, rb.out_len);
	assert_memory_equal(ra.out, rb.out, ra.out_len);
	assert_string_equal(ra.end, "exit 4");
	assert_string_equal(rb.end, "exit 4");
	close(a);
	close(b);

	/* the log is the same bytes, and the status is recorded */
	char path[4300], *log = NULL;
	size_t loglen = 0;
	snprintf(path, sizeof(path), "%s/log", dir);
	assert_int_equal(bg_read_file(&log, &loglen, path, 1 << 20), 0);
	assert_int_equal(loglen, ra.out_len);
	assert_memory_equal(log, ra.out, loglen);
	bg_free(log);
	char *st[] = { "banger-session", "status", "--dir", dir, NULL };
	assert_int_equal(run_helper(helper, st, out, sizeof(out)), 0);
	char want[64];
	snprintf(want, sizeof(want), "s1 exited 4 %zu\n", ra.out_len);
	assert_string_equal(out, want);
	char *wt[] = { "banger-session", "wait", "--dir", dir, NULL };
	assert_int_equal(run_helper(helper, wt, out, sizeof(out)), 0);
	assert_string_equal(out, "exit 4\n");
	/* the socket is gone once it ended: attach says so */
	char *at[] = { "banger-session", "attach", "--dir", dir, NULL };
	assert_int_equal(run_helper(helper, at, out, sizeof(out)), 7);

	/* 4: a signal frame reaches the process group */
	char dir2[4200];
	snprintf(dir2, sizeof(dir2), "%s/sessions/s2", tmp);
	char *start2[] = { "banger-session", "start", "--dir", dir2, "--", "sleep", "100", NULL };
	assert_int_equal(run_helper(helper, start2, out, sizeof(out)), 0);
	int c = connect_sock(dir2);
	n = sp_encode_hello(f, -1);
	n += sp_encode_signal(f + n, SIGUSR1);
	send_frame(c, f, n);
	reader rc2 = { .out_len = 0 };
	read_frames(c, &rc2, NULL);
	close(c);
	assert_string_equal(rc2.end, "signal 10");
	char *rm[] = { "banger-session", "remove", "--dir", dir2, NULL };
	assert_int_equal(run_helper(helper, rm, out, sizeof(out)), 0);
	assert_int_equal(access(dir2, F_OK), -1);

	/* 5: status of a directory that is not there */
	char *st3[] = { "banger-session", "status", "--dir", "/nonexistent/zz", NULL };
	assert_int_equal(run_helper(helper, st3, out, sizeof(out)), 0);
	assert_string_equal(out, "zz missing - -\n");
	test_rmrf(tmp);
	free(tmp);
	free(helper);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_roundtrip),
		cmocka_unit_test(test_frame_partial_and_bad),
		cmocka_unit_test(test_status_parse),
		cmocka_unit_test(test_store_sessions),
		cmocka_unit_test_setup_teardown(test_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_running_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vm_stop_delete_reconcile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
		cmocka_unit_test(test_helper_protocol),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
