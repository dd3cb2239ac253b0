/* The Firecracker driver against the Firecracker API fake
 * (tests/fakes/firecracker/firecracker): the exact requests and bodies
 * banger sends, its behaviour on each rejection, graceful stop and its
 * escalation to SIGTERM and SIGKILL, metrics, and hybrid vsock. */
#include "../../unit/helpers.h"

#include "../../../libbanger/vmm/vmm.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static char fake[4096];

typedef struct {
	char *dir;
	char api[4300], vsock[4300], console[4300], log[4300], metrics[4300], record[4300];
	char kernel[4300], initrd[4300], sys[4300], work[4300], ident[4300], guest[4300];
	bg_vm_spec spec;
	bg_vmm_driver drv;
	pid_t pid;
} fx;

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	if (len)
		assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

#define P(field, name) snprintf(f->field, sizeof(f->field), "%s/%s", f->dir, name)

static int setup(void **st)
{
	fx *f = calloc(1, sizeof(*f));
	f->dir = test_tmpdir();
	P(api, "api.sock");
	P(vsock, "v.sock");
	P(console, "console.log");
	P(log, "firecracker.log");
	P(metrics, "metrics.json");
	P(record, "requests.jsonl");
	P(kernel, "vmlinux");
	P(initrd, "initrd.img");
	P(sys, "system.img");
	P(work, "work.ext4");
	P(ident, "identity.tar");
	P(guest, "guest");
	unsigned char elf[256] = { 0x7f, 'E', 'L', 'F', 2, 1, 1 };
	write_file(f->kernel, elf, sizeof(elf));
	write_file(f->initrd, "x", 1);
	write_file(f->sys, "", 0);
	write_file(f->work, "", 0);
	write_file(f->ident, "", 0);
	assert_int_equal(mkdir(f->guest, 0700), 0);
	f->spec = (bg_vm_spec){
		.id = "0a1b2c3d", .name = "dev", .vcpus = 2, .memory_mib = 512, .kernel_path = f->kernel,
		.kernel_format = "elf", .initrd_path = f->initrd,
		.cmdline = "console=ttyS0 reboot=k panic=1 pci=off ip=172.30.0.2::172.30.0.1:255.255.255.252:dev:eth0:off",
		.system_disk = f->sys, .work_disk = f->work, .identity_disk = f->ident, .tap = "bg-0a1b2c3d",
		.mac = "06:00:ac:1e:00:02", .vsock_cid = 3, .vsock_path = f->vsock, .api_sock = f->api,
		.console_log = f->console, .metrics_path = f->metrics, .log_path = f->log,
	};
	assert_int_equal(bg_vmm_driver_init(&f->drv, "firecracker", fake, true, false), 0);
	setenv("FC_FAKE_RECORD", f->record, 1);
	setenv("FC_FAKE_VSOCK_GUEST_DIR", f->guest, 1);
	*st = f;
	return 0;
}

static int teardown(void **st)
{
	fx *f = *st;
	if (f->pid > 0)
		(void)bg_vmm_terminate(f->pid, 500);
	const char *knobs[] = { "FC_FAKE_FAIL", "FC_FAKE_IGNORE_CTRL_ALT_DEL", "FC_FAKE_IGNORE_SIGTERM",
				"FC_FAKE_VSOCK_STALL", "FC_FAKE_EXIT_AFTER_START", "FC_FAKE_START_DELAY_MS",
				"FC_FAKE_RECORD", "FC_FAKE_VSOCK_GUEST_DIR" };
	for (size_t i = 0; i < BG_ARRAY_SIZE(knobs); i++)
		unsetenv(knobs[i]);
	bg_vmm_driver_free(&f->drv);
	test_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void spawn(fx *f)
{
	assert_int_equal(f->drv.check(&f->drv, &f->spec), 0);
	int rc = f->drv.spawn(&f->drv, &f->spec, &f->pid);
	if (rc)
		fail_msg("spawn: %s", banger_error_last()->message);
	assert_true(f->pid > 0);
	assert_true(bg_vmm_alive(f->api, f->pid));
}

static void ok(int rc)
{
	if (rc)
		fail_msg("%s", banger_error_last()->message);
}

/* ---- the request record ---- */

typedef struct {
	json_t *items[64];
	size_t n;
} record;

static void record_load(record *r, const char *path)
{
	memset(r, 0, sizeof(*r));
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(bg_read_file(&text, &len, path, 1 << 20), 0);
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		json_error_t e;
		json_t *j = json_loads(line, 0, &e);
		assert_non_null(j);
		assert_true(r->n < BG_ARRAY_SIZE(r->items));
		r->items[r->n++] = j;
	}
	bg_free(text);
}

static void record_free(record *r)
{
	for (size_t i = 0; i < r->n; i++)
		json_decref(r->items[i]);
	r->n = 0;
}

static void expect_req(record *r, size_t i, const char *method, const char *path, const char *body_json,
		       int status)
{
	if (i >= r->n)
		fail_msg("request %zu (%s %s) was not sent; only %zu recorded", i, method, path, r->n);
	json_t *it = r->items[i];
	const char *m = json_string_value(json_object_get(it, "method"));
	const char *p = json_string_value(json_object_get(it, "path"));
	if (!m || !p || strcmp(m, method) != 0 || strcmp(p, path) != 0)
		fail_msg("request %zu: got %s %s, want %s %s", i, m, p, method, path);
	json_t *body = json_object_get(it, "body");
	json_error_t e;
	json_t *want = json_loads(body_json, 0, &e);
	assert_non_null(want);
	if (!json_equal(body, want)) {
		char *got = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
		char *exp = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
		fail_msg("request %zu %s %s body:\n got  %s\n want %s", i, method, path, got, exp);
	}
	json_decref(want);
	assert_int_equal(json_integer_value(json_object_get(it, "status")), status);
}

static char *body_fmt(const char *fmt, ...) BG_PRINTF(1, 2);
static char *body_fmt(const char *fmt, ...)
{
	static char buf[8][2048];
	static int k;
	k = (k + 1) % 8;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf[k], sizeof(buf[k]), fmt, ap);
	va_end(ap);
	return buf[k];
}

/* The exact configuration sequence for the full spec. */
static size_t expect_full_config(fx *f, record *r)
{
	size_t i = 0;
	expect_req(r, i++, "PUT", "/logger",
		   body_fmt("{\"log_path\":\"%s\",\"level\":\"Info\",\"show_level\":true,\"show_log_origin\":false}",
			    f->log), 204);
	expect_req(r, i++, "PUT", "/metrics", body_fmt("{\"metrics_path\":\"%s\"}", f->metrics), 204);
	expect_req(r, i++, "PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":512}", 204);
	expect_req(r, i++, "PUT", "/boot-source",
		   body_fmt("{\"kernel_image_path\":\"%s\",\"initrd_path\":\"%s\",\"boot_args\":\"%s\"}", f->kernel,
			    f->initrd, f->spec.cmdline), 204);
	expect_req(r, i++, "PUT", "/drives/rootfs",
		   body_fmt("{\"drive_id\":\"rootfs\",\"path_on_host\":\"%s\",\"is_root_device\":true,"
			    "\"is_read_only\":false}", f->sys), 204);
	expect_req(r, i++, "PUT", "/drives/work",
		   body_fmt("{\"drive_id\":\"work\",\"path_on_host\":\"%s\",\"is_root_device\":false,"
			    "\"is_read_only\":false}", f->work), 204);
	expect_req(r, i++, "PUT", "/drives/identity",
		   body_fmt("{\"drive_id\":\"identity\",\"path_on_host\":\"%s\",\"is_root_device\":false,"
			    "\"is_read_only\":true}", f->ident), 204);
	expect_req(r, i++, "PUT", "/network-interfaces/eth0",
		   "{\"iface_id\":\"eth0\",\"host_dev_name\":\"bg-0a1b2c3d\",\"guest_mac\":\"06:00:ac:1e:00:02\"}", 204);
	expect_req(r, i++, "PUT", "/vsock", body_fmt("{\"guest_cid\":3,\"uds_path\":\"%s\"}", f->vsock), 204);
	return i;
}

static bool file_has(const char *path, const char *needle)
{
	char *text = NULL;
	size_t len = 0;
	if (bg_read_file(&text, &len, path, 1 << 22) != 0)
		return false;
	bool has = strstr(text, needle) != NULL;
	bg_free(text);
	return has;
}

/* ---- tests ---- */

static void test_full_sequence_and_graceful_stop(void **st)
{
	fx *f = *st;
	/* stale sockets of a previous run are removed, not tripped over */
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, f->vsock, strlen(f->vsock) + 1);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	memcpy(sa.sun_path, f->api, strlen(f->api) + 1);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	/* a previous boot's log is kept aside, its metrics dropped */
	write_file(f->log, "old log line\n", 13);
	write_file(f->metrics, "{\"old\":1}\n{\"old\":2}\n{\"old\":3}\n{\"old\":4}\n", 40);

	spawn(f);
	ok(f->drv.configure(&f->drv, &f->spec));
	ok(f->drv.start(&f->drv, &f->spec));
	pid_t found = 0;
	ok(bg_vmm_find(&found, f->api));
	assert_int_equal(found, f->pid);

	record r;
	record_load(&r, f->record);
	size_t i = expect_full_config(f, &r);
	expect_req(&r, i++, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}", 204);
	assert_int_equal(r.n, i);
	record_free(&r);
	/* no root= from banger: Firecracker appends it for the root drive */
	assert_null(strstr(f->spec.cmdline, "root="));
	char old[4400];
	snprintf(old, sizeof(old), "%s.old", f->log);
	assert_true(file_has(old, "old log line"));
	assert_false(file_has(f->log, "old log line"));

	/* metrics: FlushMetrics, then the last line, which is fresh */
	char *m = NULL;
	ok(f->drv.metrics(&f->drv, &f->spec, &m));
	json_error_t e;
	json_t *j = json_loads(m, 0, &e);
	assert_true(json_is_object(j));
	assert_null(json_object_get(j, "old"));
	assert_true(json_is_integer(json_object_get(j, "utc_timestamp_ms")));
	assert_true(json_is_object(json_object_get(j, "vcpu")));
	assert_true(json_is_object(json_object_get(j, "block_rootfs")));
	assert_true(json_is_object(json_object_get(j, "net_eth0")));
	json_decref(j);
	bg_free(m);

	/* graceful stop: Ctrl-Alt-Del, and the VMM exits by itself */
	int64_t t0 = bg_now_ms();
	ok(f->drv.stop(&f->drv, &f->spec, f->pid, 10000));
	int64_t took = bg_now_ms() - t0;
	assert_false(bg_vmm_alive(f->api, f->pid));
	assert_true(took < 10000);
	record_load(&r, f->record);
	expect_req(&r, r.n - 2, "PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}", 204);
	expect_req(&r, r.n - 1, "PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}", 204);
	record_free(&r);
	assert_true(file_has(f->log, "Firecracker exiting successfully"));
	assert_true(file_has(f->console, "reboot: Restarting system"));
	/* both sockets are cleaned up */
	assert_false(bg_path_exists(f->api));
	assert_false(bg_path_exists(f->vsock));
	/* stopping a stopped VM is fine */
	ok(f->drv.stop(&f->drv, &f->spec, f->pid, 1000));
	f->pid = 0;
	print_message("graceful stop took %lld ms\n", (long long)took);
}

static void test_minimal_spec(void **st)
{
	fx *f = *st;
	f->spec.initrd_path = NULL;
	f->spec.work_disk = NULL;
	f->spec.identity_disk = NULL;
	f->spec.tap = NULL;
	f->spec.mac = NULL;
	f->spec.vsock_cid = 0;
	f->spec.vsock_path = NULL;
	f->spec.metrics_path = NULL;
	f->spec.log_path = f->console; /* same as the console: no PUT /logger */
	f->spec.vcpus = 1;
	spawn(f);
	ok(f->drv.configure(&f->drv, &f->spec));
	ok(f->drv.start(&f->drv, &f->spec));
	record r;
	record_load(&r, f->record);
	expect_req(&r, 0, "PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":512}", 204);
	expect_req(&r, 1, "PUT", "/boot-source",
		   body_fmt("{\"kernel_image_path\":\"%s\",\"boot_args\":\"%s\"}", f->kernel, f->spec.cmdline), 204);
	expect_req(&r, 2, "PUT", "/drives/rootfs",
		   body_fmt("{\"drive_id\":\"rootfs\",\"path_on_host\":\"%s\",\"is_root_device\":true,"
			    "\"is_read_only\":false}", f->sys), 204);
	expect_req(&r, 3, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}", 204);
	assert_int_equal(r.n, 4);
	record_free(&r);
	/* no metrics file: the driver says so */
	char *m = (char *)1;
	assert_int_equal(f->drv.metrics(&f->drv, &f->spec, &m), BANGER_EUNSUPPORTED);
	assert_null(m);
	/* the fake's own log went to the console log (its stdout) */
	assert_true(file_has(f->console, "InstanceStart"));
	ok(f->drv.stop(&f->drv, &f->spec, f->pid, 10000));
	f->pid = 0;
}

/* Each request refused in turn: the error carries the fault_message,
 * nothing after the refused request is sent. */
static void test_each_rejection(void **st)
{
	fx *f = *st;
	const char *paths[] = { "/logger", "/metrics", "/machine-config", "/boot-source", "/drives/rootfs",
				"/drives/work", "/drives/identity", "/network-interfaces/eth0", "/vsock", "/actions" };
	for (size_t k = 0; k < BG_ARRAY_SIZE(paths); k++) {
		char fail[128];
		snprintf(fail, sizeof(fail), "PUT %s", paths[k]);
		setenv("FC_FAKE_FAIL", fail, 1);
		spawn(f);
		unsetenv("FC_FAKE_FAIL");
		int rc = f->drv.configure(&f->drv, &f->spec);
		if (k + 1 == BG_ARRAY_SIZE(paths)) {
			ok(rc);
			rc = f->drv.start(&f->drv, &f->spec);
		}
		assert_int_equal(rc, BANGER_EVMM);
		const banger_error *e = banger_error_last();
		char want[256];
		snprintf(want, sizeof(want), "Firecracker rejected PUT %s (400): Injected failure (FC_FAKE_FAIL) for PUT %s",
			 paths[k], paths[k]);
		if (!strstr(e->message, want))
			fail_msg("message \"%s\" lacks \"%s\"", e->message, want);
		assert_string_equal(e->lib, "firecracker");
		assert_int_equal(e->lib_code, 400);
		record r;
		record_load(&r, f->record);
		assert_int_equal(r.n, k + 1); /* nothing after the refusal */
		assert_int_equal(json_integer_value(json_object_get(r.items[k], "status")), 400);
		record_free(&r);
		/* stop before boot: Ctrl-Alt-Del is refused pre-boot, SIGTERM ends it */
		ok(f->drv.stop(&f->drv, &f->spec, f->pid, 2000));
		assert_false(bg_vmm_alive(f->api, f->pid));
		f->pid = 0;
	}
}

/* Real (not injected) validation errors come back verbatim. */
static void test_real_fault_messages(void **st)
{
	fx *f = *st;
	char missing[4400];
	snprintf(missing, sizeof(missing), "%s/no-such-disk", f->dir);
	f->spec.work_disk = missing;
	spawn(f);
	assert_int_equal(f->drv.configure(&f->drv, &f->spec), BANGER_EVMM);
	const char *msg = banger_error_last()->message;
	assert_non_null(strstr(msg, "PUT /drives/work (400)"));
	assert_non_null(strstr(msg, "No such file or directory"));
	ok(bg_vmm_kill(&f->spec, f->pid, 1000));
	f->pid = 0;

	/* a second InstanceStart is refused as post-boot-only territory */
	f->spec.work_disk = f->work;
	spawn(f);
	ok(f->drv.configure(&f->drv, &f->spec));
	ok(f->drv.start(&f->drv, &f->spec));
	assert_int_equal(f->drv.start(&f->drv, &f->spec), BANGER_EVMM);
	assert_non_null(strstr(banger_error_last()->message, "not supported after starting the microVM"));
	ok(f->drv.stop(&f->drv, &f->spec, f->pid, 10000));
	f->pid = 0;
}

static void test_stop_escalates_to_sigterm(void **st)
{
	fx *f = *st;
	setenv("FC_FAKE_IGNORE_CTRL_ALT_DEL", "1", 1);
	spawn(f);
	unsetenv("FC_FAKE_IGNORE_CTRL_ALT_DEL");
	ok(f->drv.configure(&f->drv, &f->spec));
	ok(f->drv.start(&f->drv, &f->spec));
	int64_t t0 = bg_now_ms();
	ok(f->drv.stop(&f->drv, &f->spec, f->pid, 500));
	int64_t took = bg_now_ms() - t0;
	assert_false(bg_vmm_alive(f->api, f->pid));
	assert_true(took >= 500);
	/* killed by SIGTERM: no orderly exit in the log */
	assert_false(file_has(f->log, "Firecracker exiting successfully"));
	record r;
	record_load(&r, f->record);
	expect_req(&r, r.n - 1, "PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}", 204);
	record_free(&r);
	assert_false(bg_path_exists(f->api));
	f->pid = 0;
	print_message("Ctrl-Alt-Del ignored: stopped by SIGTERM after %lld ms\n", (long long)took);
}

static void test_stop_escalates_to_sigkill(void **st)
{
	fx *f = *st;
	setenv("FC_FAKE_IGNORE_CTRL_ALT_DEL", "1", 1);
	setenv("FC_FAKE_IGNORE_SIGTERM", "1", 1);
	spawn(f);
	unsetenv("FC_FAKE_IGNORE_CTRL_ALT_DEL");
	unsetenv("FC_FAKE_IGNORE_SIGTERM");
	ok(f->drv.configure(&f->drv, &f->spec));
	ok(f->drv.start(&f->drv, &f->spec));
	int64_t t0 = bg_now_ms();
	ok(f->drv.stop(&f->drv, &f->spec, f->pid, 300));
	int64_t took = bg_now_ms() - t0;
	assert_false(bg_vmm_alive(f->api, f->pid));
	assert_true(took >= 300 + BG_VMM_TERM_GRACE_MS);
	f->pid = 0;
	print_message("Ctrl-Alt-Del and SIGTERM ignored: stopped by SIGKILL after %lld ms\n", (long long)took);
}

static void test_vmm_exits_by_itself(void **st)
{
	fx *f = *st;
	setenv("FC_FAKE_EXIT_AFTER_START", "1", 1);
	setenv("FC_FAKE_START_DELAY_MS", "300", 1); /* spawn waits for the socket */
	spawn(f);
	unsetenv("FC_FAKE_EXIT_AFTER_START");
	unsetenv("FC_FAKE_START_DELAY_MS");
	ok(f->drv.configure(&f->drv, &f->spec));
	ok(f->drv.start(&f->drv, &f->spec));
	ok(bg_vmm_wait_gone(f->pid, 5000));
	assert_false(bg_vmm_alive(f->api, f->pid));
	/* the last metrics line is still there after the VMM is gone */
	char *m = NULL;
	ok(f->drv.metrics(&f->drv, &f->spec, &m));
	assert_non_null(strstr(m, "utc_timestamp_ms"));
	bg_free(m);
	ok(f->drv.stop(&f->drv, &f->spec, f->pid, 1000));
	f->pid = 0;
}

/* Allocation failures on the HTTP path: an error, no leak, and the next
 * request works. */
static void test_http_allocation_failures(void **st)
{
	fx *f = *st;
	spawn(f);
	for (uint64_t n = 1; n < 40; n++) {
		char *body = NULL;
		long status = 0;
		bg_alloc_fail_at(n);
		int rc = bg_fc_request(&body, &status, f->api, "GET", "/", NULL, 5000);
		bg_alloc_fail_at(0);
		if (rc == 0) {
			assert_non_null(strstr(body, "\"app_name\":\"Firecracker\""));
			assert_int_equal(status, 200);
			bg_free(body);
			break;
		}
		assert_int_equal(rc, BANGER_ENOMEM);
		assert_null(body);
	}
	for (uint64_t n = 1; n < 40; n++) {
		bg_alloc_fail_at(n);
		int rc = bg_fc_request(NULL, NULL, f->api, "PUT", "/machine-config",
				       "{\"vcpu_count\":1,\"mem_size_mib\":128}", 5000);
		bg_alloc_fail_at(0);
		if (rc == 0)
			break;
		assert_int_equal(rc, BANGER_ENOMEM);
	}
	/* a 400 with its fault_message, under allocation failure too */
	for (uint64_t n = 1; n < 40; n++) {
		bg_alloc_fail_at(n);
		int rc = bg_fc_request(NULL, NULL, f->api, "PUT", "/machine-config", "{\"vcpu_count\":1}", 5000);
		bg_alloc_fail_at(0);
		if (rc == BANGER_EVMM) {
			assert_non_null(strstr(banger_error_last()->message, "missing field `mem_size_mib`"));
			break;
		}
		assert_int_equal(rc, BANGER_ENOMEM);
	}
	ok(bg_vmm_kill(&f->spec, f->pid, 1000));
	f->pid = 0;
}

static void test_spawn_refuses_non_socket(void **st)
{
	fx *f = *st;
	write_file(f->api, "not a socket", 12);
	assert_int_equal(f->drv.spawn(&f->drv, &f->spec, &f->pid), BANGER_EEXISTS);
	assert_int_equal(f->pid, 0);
	assert_true(bg_path_exists(f->api));
}

/* ---- hybrid vsock through the fake ---- */

typedef struct {
	int listener;
} guest_t;

static void *guest_echo(void *arg)
{
	guest_t *g = arg;
	int fd = accept(g->listener, NULL, NULL);
	if (fd < 0)
		return NULL;
	char buf[64];
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n > 0)
		(void)!write(fd, buf, (size_t)n);
	close(fd);
	return NULL;
}

static void test_hybrid_vsock(void **st)
{
	fx *f = *st;
	spawn(f);
	ok(f->drv.configure(&f->drv, &f->spec));
	ok(f->drv.start(&f->drv, &f->spec));

	/* a "guest" listening on port 52 */
	guest_t g;
	char path[4400];
	snprintf(path, sizeof(path), "%s/52.sock", f->guest);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, path, strlen(path) + 1);
	g.listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(g.listener, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(g.listener, 4), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, guest_echo, &g), 0);

	int fd = -1;
	ok(bg_vsock_connect_hybrid(&fd, f->vsock, 52, 5000));
	assert_int_equal(send(fd, "ping", 4, MSG_NOSIGNAL), 4);
	char buf[8] = "";
	size_t got = 0;
	while (got < 4) {
		ssize_t n = read(fd, buf + got, 4 - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_memory_equal(buf, "ping", 4);
	close(fd);
	pthread_join(th, NULL);
	close(g.listener);

	/* nothing listens on 53: refused until the deadline */
	int64_t t0 = bg_now_ms();
	assert_int_equal(bg_vsock_connect_hybrid(&fd, f->vsock, 53, 800), BANGER_ETIMEOUT);
	assert_true(bg_now_ms() - t0 >= 800);
	assert_non_null(strstr(banger_error_last()->message, "not listening on vsock port 53"));
	assert_int_equal(fd, -1);
	ok(f->drv.stop(&f->drv, &f->spec, f->pid, 10000));
	f->pid = 0;
}

static void test_hybrid_vsock_stall(void **st)
{
	fx *f = *st;
	setenv("FC_FAKE_VSOCK_STALL", "1", 1);
	spawn(f);
	unsetenv("FC_FAKE_VSOCK_STALL");
	ok(f->drv.configure(&f->drv, &f->spec));
	ok(f->drv.start(&f->drv, &f->spec));
	int fd = -1;
	int64_t t0 = bg_now_ms();
	assert_int_equal(bg_vsock_connect_hybrid(&fd, f->vsock, 52, 1500), BANGER_ETIMEOUT);
	int64_t took = bg_now_ms() - t0;
	assert_true(took >= 1500 && took < 1500 + 2000);
	assert_non_null(strstr(banger_error_last()->message, "no answer to CONNECT 52"));
	ok(f->drv.stop(&f->drv, &f->spec, f->pid, 10000));
	f->pid = 0;
	print_message("stalled CONNECT gave up after %lld ms (deadline 1500 ms)\n", (long long)took);
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
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_full_sequence_and_graceful_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_minimal_spec, setup, teardown),
		cmocka_unit_test_setup_teardown(test_each_rejection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_real_fault_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_escalates_to_sigterm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_escalates_to_sigkill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vmm_exits_by_itself, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http_allocation_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spawn_refuses_non_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hybrid_vsock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hybrid_vsock_stall, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
