/* The argv of `banger vm ssh`: banger's identity and known_hosts, host-key
 * checking on, and never the options that turn it off. */
#include "helpers.h"
#include "../../cli/cli.h"

#include <ctype.h>

static void assert_argv(char **argv, const char *const *want)
{
	size_t i = 0;
	for (; want[i]; i++) {
		assert_non_null(argv[i]);
		if (strcmp(argv[i], want[i]) != 0)
			fail_msg("argv[%zu] is '%s', want '%s'", i, argv[i], want[i]);
	}
	assert_null(argv[i]);
}

/* What must never come back, whatever the input. */
static void assert_checking_on(char **argv)
{
	for (char **a = argv; *a; a++) {
		char low[4096];
		size_t n = strlen(*a);
		assert_true(n < sizeof(low));
		for (size_t i = 0; i <= n; i++)
			low[i] = (char)tolower((unsigned char)(*a)[i]);
		assert_null(strstr(low, "stricthostkeychecking=no"));
		assert_null(strstr(low, "stricthostkeychecking=off"));
		assert_null(strstr(low, "stricthostkeychecking no"));
		assert_null(strstr(low, "userknownhostsfile=/dev/null"));
		assert_null(strstr(low, "userknownhostsfile=none"));
		assert_null(strstr(low, "globalknownhostsfile=/dev/null"));
		assert_null(strstr(low, "loglevel=quiet"));
		if (strncmp(low, "stricthostkeychecking=", 22) == 0)
			assert_true(strcmp(low + 22, "accept-new") == 0 || strcmp(low + 22, "yes") == 0);
	}
}

static void test_interactive(void **state)
{
	(void)state;
	cli_ssh_target t = { 0 };
	t.vm_name = "box";
	t.ip = "172.30.0.5";
	t.identity = "/var/lib/banger/ssh/id_ed25519";
	t.known_hosts = "/var/lib/banger/ssh/known_hosts";
	char **argv = cli_ssh_argv(&t);
	assert_non_null(argv);
	const char *want[] = { "ssh", "-i", "/var/lib/banger/ssh/id_ed25519", "-o", "IdentitiesOnly=yes",
			       "-o", "UserKnownHostsFile=\"/var/lib/banger/ssh/known_hosts\"",
			       "-o", "StrictHostKeyChecking=accept-new", "-o", "HostKeyAlias=box.vm",
			       "-o", "HashKnownHosts=no", "-o", "CheckHostIP=no", "-o", "UpdateHostKeys=no",
			       "--", "root@172.30.0.5", NULL };
	assert_argv(argv, want);
	assert_checking_on(argv);
	cli_ssh_argv_free(argv);
}

static void test_command_and_port(void **state)
{
	(void)state;
	char *cmd[] = { "uname", "-a", "; rm -rf /" };
	cli_ssh_target t = { 0 };
	t.ssh = "/usr/bin/ssh";
	t.vm_name = "web";
	t.ip = "10.0.0.2";
	t.port = 2222;
	t.identity = "/s/id";
	t.known_hosts = "/s p%c/known_hosts";
	t.command = cmd;
	t.ncommand = 3;
	char **argv = cli_ssh_argv(&t);
	assert_non_null(argv);
	const char *want[] = { "/usr/bin/ssh", "-i", "/s/id", "-o", "IdentitiesOnly=yes",
			       "-o", "UserKnownHostsFile=\"/s p%%c/known_hosts\"",
			       "-o", "StrictHostKeyChecking=accept-new", "-o", "HostKeyAlias=web.vm",
			       "-o", "HashKnownHosts=no", "-o", "CheckHostIP=no", "-o", "UpdateHostKeys=no",
			       "-p", "2222", "--", "root@10.0.0.2", "uname", "-a", "; rm -rf /", NULL };
	assert_argv(argv, want);
	assert_checking_on(argv);
	cli_ssh_argv_free(argv);
}

/* banger's file cannot be named: fail closed, never "no". */
static void test_unresolved_known_hosts(void **state)
{
	(void)state;
	const char *bad[] = { NULL, "", "relative/known_hosts", "/has\"quote", "/new\nline" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cli_ssh_target t = { 0 };
		t.vm_name = "box";
		t.ip = "172.30.0.5";
		t.known_hosts = bad[i];
		char **argv = cli_ssh_argv(&t);
		assert_non_null(argv);
		const char *want[] = { "ssh", "-o", "StrictHostKeyChecking=yes", "-o", "HostKeyAlias=box.vm",
				       "-o", "HashKnownHosts=no", "-o", "CheckHostIP=no", "-o", "UpdateHostKeys=no",
				       "--", "root@172.30.0.5", NULL };
		assert_argv(argv, want);
		assert_checking_on(argv);
		for (char **a = argv; *a; a++)
			assert_null(strstr(*a, "UserKnownHostsFile"));
		cli_ssh_argv_free(argv);
	}
}

static void test_invalid(void **state)
{
	(void)state;
	cli_ssh_target t = { 0 };
	assert_null(cli_ssh_argv(NULL));
	assert_null(cli_ssh_argv(&t));
	t.vm_name = "box";
	assert_null(cli_ssh_argv(&t)); /* no IP */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_interactive),
		cmocka_unit_test(test_command_and_port),
		cmocka_unit_test(test_unresolved_known_hosts),
		cmocka_unit_test(test_invalid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
