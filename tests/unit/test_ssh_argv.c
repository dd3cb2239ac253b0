/* banger's one OpenSSH policy (guest/ssh_policy.c) and its two spellings:
 * the argv of `banger vm ssh` (banger_vm_ssh_argv) and the "Host *.vm"
 * block of `banger ssh-config` (banger_ssh_config_render).  Host-key
 * checking is on in both, with the same options, and (checked with the
 * real `ssh -G` when ssh is installed) a hostile "Host *" in the user's
 * config changes neither where the connection goes nor which known_hosts
 * decides. */
#include "ctx_fixture.h"
#include "../../libbanger/guest/guest.h"
#include "../../libbanger/vm/vm.h"

#include <ctype.h>
#include <unistd.h>

static void assert_argv(char **argv, const char *const *want)
{
	size_t i = 0;
	for (; want[i]; i++) {
		assert_non_null(argv[i]);
		if (strcmp(argv[i], want[i]) != 0)
			fail_msg("argv[%zu] is '%s', want '%s'", i, argv[i], want[i]);
	}
	if (argv[i])
		fail_msg("argv[%zu] is '%s', want the end", i, argv[i]);
}

/* What must never come back, whatever the input. */
static void assert_checking_on(const char *text)
{
	char low[8192];
	size_t n = strlen(text);
	assert_true(n < sizeof(low));
	for (size_t i = 0; i <= n; i++)
		low[i] = (char)tolower((unsigned char)text[i]);
	assert_null(strstr(low, "stricthostkeychecking=no"));
	assert_null(strstr(low, "stricthostkeychecking no"));
	assert_null(strstr(low, "stricthostkeychecking=off"));
	assert_null(strstr(low, "userknownhostsfile=/dev/null"));
	assert_null(strstr(low, "userknownhostsfile=none"));
	assert_null(strstr(low, "loglevel"));
	assert_non_null(strstr(low, "stricthostkeychecking"));
}

static void assert_argv_checking_on(char **argv)
{
	char all[8192];
	size_t o = 0;
	for (char **a = argv; *a; a++)
		o += (size_t)snprintf(all + o, sizeof(all) - o, "%s ", *a);
	assert_true(o < sizeof(all));
	assert_checking_on(all);
	for (char **a = argv; *a; a++)
		if (strncasecmp(*a, "StrictHostKeyChecking=", 22) == 0)
			assert_string_equal(*a + 22, "accept-new");
}

static const bg_ssh_target box = {
	.identity = "/var/lib/banger/ssh/id_ed25519",
	.known_hosts = "/var/lib/banger/ssh/known_hosts",
	.host_name = "172.30.0.5",
	.host_key_alias = "box.vm",
};

#define POLICY(ip, alias, port, proxy)                                                                    \
	"-o", "User=root", "-o", "HostName=" ip, "-o", "Port=" port, "-o",                                  \
		"IdentityFile=\"/var/lib/banger/ssh/id_ed25519\"", "-o", "IdentitiesOnly=yes", "-o",        \
		"UserKnownHostsFile=\"/var/lib/banger/ssh/known_hosts\"", "-o", "GlobalKnownHostsFile=none", \
		"-o", "StrictHostKeyChecking=accept-new", "-o", "HostKeyAlias=" alias, "-o",                \
		"HashKnownHosts=no", "-o", "CheckHostIP=no", "-o", "UpdateHostKeys=no", "-o",               \
		"ProxyCommand=" proxy

static void test_interactive(void **state)
{
	(void)state;
	char **argv;
	assert_int_equal(bg_ssh_argv(&argv, &box, "ssh", "172.30.0.5", NULL, 0), 0);
	const char *want[] = { "ssh", POLICY("172.30.0.5", "box.vm", "22", "none"), "--", "172.30.0.5", NULL };
	assert_argv(argv, want);
	assert_argv_checking_on(argv);
	bg_free(argv); /* one allocation */
}

static void test_command_port_user(void **state)
{
	(void)state;
	const char *cmd[] = { "uname", "-a", "; rm -rf /" };
	bg_ssh_target t = box;
	t.host_name = "10.0.0.2";
	t.host_key_alias = "web.vm";
	t.port = 2222;
	t.known_hosts = "/s p%c/known_hosts";
	char **argv;
	assert_int_equal(bg_ssh_argv(&argv, &t, "/usr/bin/ssh", "10.0.0.2", cmd, 3), 0);
	assert_string_equal(argv[0], "/usr/bin/ssh");
	assert_string_equal(argv[6], "Port=2222");
	assert_string_equal(argv[12], "UserKnownHostsFile=\"/s p%%c/known_hosts\"");
	const char *tail[] = { "--", "10.0.0.2", "uname", "-a", "; rm -rf /", NULL };
	size_t n = 0;
	while (argv[n])
		n++;
	assert_true(n > 5);
	assert_argv(argv + n - 5, tail);
	assert_argv_checking_on(argv);
	bg_free(argv);
	t.user = "admin";
	assert_int_equal(bg_ssh_argv(&argv, &t, "ssh", "10.0.0.2", NULL, 0), 0);
	assert_string_equal(argv[2], "User=admin");
	bg_free(argv);
}

/* A path ssh would read back differently, or a word it would split: the
 * policy refuses (fail closed) rather than run ssh against some other
 * known_hosts; there is no weaker fallback. */
static void test_refused(void **state)
{
	(void)state;
	const char *bad_paths[] = { NULL, "", "relative/known_hosts", "/has\"quote", "/new\nline", "/back\\slash" };
	char **argv = (char **)1;
	for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
		bg_ssh_target t = box;
		t.known_hosts = bad_paths[i];
		assert_int_equal(bg_ssh_argv(&argv, &t, "ssh", "172.30.0.5", NULL, 0), BANGER_EINVALID);
		assert_null(argv);
		t = box;
		t.identity = bad_paths[i];
		assert_int_equal(bg_ssh_argv(&argv, &t, "ssh", "172.30.0.5", NULL, 0), BANGER_EINVALID);
	}
	const char *bad_words[] = { "", "a b", "x#y", "q'", "r\\" };
	for (size_t i = 0; i < sizeof(bad_words) / sizeof(bad_words[0]); i++) {
		bg_ssh_target t = box;
		t.user = bad_words[i];
		assert_int_equal(bg_ssh_argv(&argv, &t, "ssh", "172.30.0.5", NULL, 0), BANGER_EINVALID);
		t = box;
		t.host_key_alias = bad_words[i];
		assert_int_equal(bg_ssh_argv(&argv, &t, "ssh", "172.30.0.5", NULL, 0), BANGER_EINVALID);
	}
	bg_ssh_target t = box;
	t.proxy_command = "nc %h %p\nProxyJump evil";
	assert_int_equal(bg_ssh_argv(&argv, &t, "ssh", "172.30.0.5", NULL, 0), BANGER_EINVALID);
	assert_int_equal(bg_ssh_argv(&argv, &box, "ssh", "", NULL, 0), BANGER_EINVALID);
	assert_int_equal(bg_ssh_argv(&argv, &box, NULL, "172.30.0.5", NULL, 0), BANGER_EINVALID);
	assert_int_equal(bg_ssh_argv(&argv, &box, "ssh", "172.30.0.5", NULL, 1), BANGER_EINVALID);
}

/* ---- through a context: the public call and ssh-config ---- */

typedef struct {
	char *dir;
	banger_ctx *ctx;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	f->ctx = test_ctx_open(&f->dir, "state");
	bg_vm_record vm;
	memset(&vm, 0, sizeof(vm));
	snprintf(vm.id, sizeof(vm.id), "%s", "0123abcd");
	vm.name = (char *)"box";
	vm.state = (char *)"stopped";
	vm.vmm = (char *)"qemu";
	vm.guest_ip = (char *)"172.30.0.5";
	vm.dns_name = (char *)"box.vm";
	vm.vcpus = 1;
	vm.memory_mib = 128;
	assert_int_equal(bg_store_vm_insert(&f->ctx->env.store, &vm), 0);
	vm.name = (char *)"nowhere";
	vm.guest_ip = NULL;
	snprintf(vm.id, sizeof(vm.id), "%s", "4567cdef");
	assert_int_equal(bg_store_vm_insert(&f->ctx->env.store, &vm), 0);
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

static char *arg_value(char **argv, const char *key)
{
	size_t kl = strlen(key);
	for (char **a = argv; *a; a++)
		if (strncmp(*a, key, kl) == 0 && (*a)[kl] == '=')
			return *a + kl + 1;
	return NULL;
}

static void test_public_call(void **state)
{
	fixture *f = *state;
	banger_vm_ssh_options o;
	assert_int_equal(banger_vm_ssh_options_init(&o, 99), BANGER_EINVALID);
	assert_int_equal(banger_vm_ssh_options_init(&o, BANGER_VM_SSH_OPTIONS_VERSION), 0);
	const char *cmd[] = { "id" };
	o.command = cmd;
	o.command_count = 1;
	char **argv = NULL;
	assert_int_equal(banger_vm_ssh_argv(&argv, f->ctx, "box", &o), 0);
	assert_string_equal(argv[0], "ssh");
	assert_string_equal(arg_value(argv, "HostKeyAlias"), "box.vm");
	assert_string_equal(arg_value(argv, "HostName"), "172.30.0.5");
	char want[4300];
	snprintf(want, sizeof(want), "\"%s\"", banger_ssh_known_hosts_path(f->ctx));
	assert_string_equal(arg_value(argv, "UserKnownHostsFile"), want);
	snprintf(want, sizeof(want), "\"%s\"", banger_ssh_client_key_path(f->ctx));
	assert_string_equal(arg_value(argv, "IdentityFile"), want);
	/* the key it names exists: the argv works as it is */
	assert_int_equal(access(banger_ssh_client_key_path(f->ctx), R_OK), 0);
	size_t n = 0;
	while (argv[n])
		n++;
	assert_string_equal(argv[n - 3], "--");
	assert_string_equal(argv[n - 2], "172.30.0.5");
	assert_string_equal(argv[n - 1], "id");
	assert_argv_checking_on(argv);
	banger_free(argv);

	/* by id too; NULL options are the defaults */
	assert_int_equal(banger_vm_ssh_argv(&argv, f->ctx, "0123abcd", NULL), 0);
	assert_string_equal(argv[0], "ssh");
	banger_free(argv);

	argv = (char **)1;
	assert_int_equal(banger_vm_ssh_argv(&argv, f->ctx, "ghost", NULL), BANGER_ENOTFOUND);
	assert_null(argv);
	assert_int_equal(banger_vm_ssh_argv(&argv, f->ctx, "nowhere", NULL), BANGER_ESTATE);
	assert_int_equal(banger_vm_ssh_argv(&argv, NULL, "box", NULL), BANGER_EINVALID);
	assert_int_equal(banger_vm_ssh_argv(NULL, f->ctx, "box", NULL), BANGER_EINVALID);
	o.version = 0;
	assert_int_equal(banger_vm_ssh_argv(&argv, f->ctx, "box", &o), BANGER_EINVALID);
}

/* The two spellings carry the same options: every "Key value" line of the
 * ssh_config block is an "-o Key=value" of the argv, except where the
 * target differs by design (HostName and the alias, ProxyCommand). */
static void test_one_policy(void **state)
{
	fixture *f = *state;
	char *text = NULL, **argv = NULL;
	assert_int_equal(banger_ssh_config_render(&text, f->ctx, "/usr/bin/banger ssh-proxy %h %p"), 0);
	assert_int_equal(banger_vm_ssh_argv(&argv, f->ctx, "box", NULL), 0);
	assert_checking_on(text);
	assert_non_null(strstr(text, "\n\tGlobalKnownHostsFile none\n"));
	assert_non_null(strstr(text, "\n\tPort 22\n"));
	assert_non_null(strstr(text, "\n\tProxyCommand /usr/bin/banger ssh-proxy %h %p\n"));
	size_t lines = 0;
	for (char *l = strstr(text, "\n\t"); l; l = strstr(l + 1, "\n\t")) {
		char key[64], line[4400];
		size_t kl = strcspn(l + 2, " "), ll = strcspn(l + 2, "\n");
		assert_true(kl < sizeof(key) && ll < sizeof(line));
		memcpy(key, l + 2, kl);
		key[kl] = '\0';
		memcpy(line, l + 2 + kl + 1, ll - kl - 1);
		line[ll - kl - 1] = '\0';
		const char *v = arg_value(argv, key);
		if (!v)
			fail_msg("%s is in the ssh_config block but not in the argv", key);
		if (strcmp(key, "HostName") && strcmp(key, "ProxyCommand"))
			assert_string_equal(v, line);
		lines++;
	}
	/* the argv has the alias on top (it dials an IP) */
	size_t opts = 0;
	for (char **a = argv; *a; a++)
		opts += strcmp(*a, "-o") == 0;
	assert_int_equal(opts, lines + 1);
	banger_free(text);
	banger_free(argv);
}

/* ---- what the real ssh makes of them ---- */

static bool have_ssh(void)
{
	return system("command -v ssh >/dev/null 2>&1") == 0;
}

/* A user's config that tries to send every connection elsewhere and to
 * decide host keys itself. */
static void write_hostile(const char *path, const char *include)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	if (include)
		fprintf(fp, "Include \"%s\"\n", include);
	fputs("Host *.vm 172.30.*\n"
	      "    User nobody\n"
	      "    ProxyJump alice@127.0.0.1:9\n"
	      "    HostName evil.example\n"
	      "Host *\n"
	      "    User alice\n"
	      "    Port 2222\n"
	      "    ProxyCommand nc evil.example 22\n"
	      "    StrictHostKeyChecking no\n"
	      "    UserKnownHostsFile /dev/null\n"
	      "    GlobalKnownHostsFile /etc/ssh/ssh_known_hosts\n",
	      fp);
	fclose(fp);
}

/* `ssh -G` output (the configuration ssh would use) for args. */
static char *ssh_G(const char *args)
{
	char cmd[12000];
	snprintf(cmd, sizeof(cmd), "ssh -G %s 2>/dev/null", args);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	static char out[65536];
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	assert_int_equal(pclose(p), 0);
	return out;
}

static void assert_line(const char *out, const char *line)
{
	char want[4400];
	snprintf(want, sizeof(want), "\n%s\n", line);
	if (!strstr(out, want) && strncmp(out, line, strlen(line)) != 0)
		fail_msg("ssh -G has no line '%s' in:\n%s", line, out);
}

static void assert_no_key(const char *out, const char *key)
{
	char want[128];
	snprintf(want, sizeof(want), "\n%s ", key);
	if (strstr(out, want))
		fail_msg("ssh -G has '%s' in:\n%s", key, out);
}

static void assert_resolved(const char *out, fixture *f, const char *user, const char *hostname)
{
	char line[4400];
	snprintf(line, sizeof(line), "user %s", user);
	assert_line(out, line);
	snprintf(line, sizeof(line), "hostname %s", hostname);
	assert_line(out, line);
	assert_line(out, "port 22");
	assert_line(out, "stricthostkeychecking accept-new");
	assert_line(out, "globalknownhostsfile none");
	snprintf(line, sizeof(line), "userknownhostsfile %s", banger_ssh_known_hosts_path(f->ctx));
	assert_line(out, line);
	snprintf(line, sizeof(line), "identityfile %s", banger_ssh_client_key_path(f->ctx));
	assert_line(out, line);
	assert_no_key(out, "proxyjump");
}

static void test_real_ssh_argv(void **state)
{
	fixture *f = *state;
	if (!have_ssh())
		skip();
	char cfg[4300];
	snprintf(cfg, sizeof(cfg), "%s/user_config", f->dir);
	write_hostile(cfg, NULL);
	char **argv = NULL;
	assert_int_equal(banger_vm_ssh_argv(&argv, f->ctx, "box", NULL), 0);
	/* argv[1..] as shell words (the test paths hold no single quote) */
	char args[11000];
	size_t o = (size_t)snprintf(args, sizeof(args), "-F '%s'", cfg);
	for (char **a = argv + 1; *a; a++)
		o += (size_t)snprintf(args + o, sizeof(args) - o, " '%s'", *a);
	assert_true(o < sizeof(args));
	const char *out = ssh_G(args);
	assert_resolved(out, f, "root", "172.30.0.5");
	assert_line(out, "hostkeyalias box.vm");
	assert_no_key(out, "proxycommand"); /* "none": a direct connection */
	banger_free(argv);
}

static void test_real_ssh_config(void **state)
{
	fixture *f = *state;
	if (!have_ssh())
		skip();
	char *text = NULL, mine[4300], cfg[4300];
	assert_int_equal(banger_ssh_config_render(&text, f->ctx, "/usr/bin/banger ssh-proxy %h %p"), 0);
	snprintf(mine, sizeof(mine), "%s/banger_ssh_config", f->dir);
	FILE *fp = fopen(mine, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	banger_free(text);
	snprintf(cfg, sizeof(cfg), "%s/user_config", f->dir);
	write_hostile(cfg, mine);
	char args[9000];
	snprintf(args, sizeof(args), "-F '%s' box.vm", cfg);
	const char *out = ssh_G(args);
	assert_resolved(out, f, "root", "box.vm");
	assert_line(out, "proxycommand /usr/bin/banger ssh-proxy %h %p"); /* as written */
	/* another host is none of banger's business */
	snprintf(args, sizeof(args), "-F '%s' other.example", cfg);
	out = ssh_G(args);
	assert_line(out, "port 2222");
	assert_no_key(out, "hostkeyalias");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_interactive),
		cmocka_unit_test(test_command_port_user),
		cmocka_unit_test(test_refused),
		cmocka_unit_test_setup_teardown(test_public_call, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_policy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_real_ssh_argv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_real_ssh_config, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
