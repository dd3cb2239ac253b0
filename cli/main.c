/* banger: the command-line front end of libbanger. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void log_to_stderr(int level, const char *msg, void *payload)
{
	static const char *names[] = { "error", "warning", "info", "debug" };
	(void)payload;
	/* the library makes its log lines visible; vis() again costs little
	 * and keeps this program safe with any library */
	fprintf(stderr, "banger: %s: %s\n", level >= 0 && level < 4 ? names[level] : "log", vis(msg));
}


banger_ctx *cli_ctx(cli_env *env)
{
	if (env->ctx)
		return env->ctx;
	if (env->open_exit)
		return NULL; /* tried and said why once */
	banger_ctx_options o;
	banger_ctx_options_init(&o, BANGER_CTX_OPTIONS_VERSION);
	o.state_dir = env->state_dir;
	o.config_path = env->config_path;
	o.log_cb = log_to_stderr;
	o.log_level = env->verbose >= 2 ? BANGER_LOG_DEBUG : env->verbose ? BANGER_LOG_INFO : BANGER_LOG_WARN;
	o.flags = env->ctx_flags;
	int rc = banger_ctx_open(&env->ctx, &o);
	if (rc) {
		env->open_exit = cli_fail("cannot open banger's state", rc);
		return NULL;
	}
	return env->ctx;
}

int cli_exit_code(int rc)
{
	switch (rc) {
	case BANGER_OK: return EXIT_OK;
	case BANGER_ENOTFOUND: return EXIT_NOTFOUND;
	case BANGER_ETRUST: case BANGER_EREVOKED: return EXIT_TRUST;
	case BANGER_EUNSUPPORTED: return EXIT_UNSUPPORTED;
	case BANGER_EBUSY: case BANGER_EEXISTS: return EXIT_BUSY;
	case BANGER_ETIMEOUT: return EXIT_TIMEOUT;
	case BANGER_EINVALID: return EXIT_USAGE;
	case BANGER_ESTORE: return EXIT_STORE;
	default: return EXIT_FAILURE_;
	}
}

int cli_fail(const char *what, int rc)
{
	const banger_error *e = banger_error_last();
	fprintf(stderr, "banger: %s: %s\n", what, e ? vis(e->message) : banger_error_name(rc));
	return cli_exit_code(rc);
}

static void main_usage(FILE *f)
{
	fprintf(f,
		"Usage: banger [--state-dir DIR] [--config FILE] [-v] <command> [args]\n\n"
		"banger runs Linux microVMs: kernels from a catalog, root filesystems from OCI\n"
		"images, Firecracker (or QEMU) with verified SSH.\n\nCommands:\n");
	for (int i = 0; cli_nouns[i]; i++)
		fprintf(f, "  %-12s %s\n", cli_nouns[i]->name, cli_nouns[i]->summary);
	fprintf(f,
		"\nGlobal options:\n"
		"  --state-dir DIR   state root (default $BANGER_HOME, else $XDG_STATE_HOME/banger)\n"
		"  --config FILE     configuration file (default $XDG_CONFIG_HOME/banger/config)\n"
		"  -v, --verbose     more logging (twice for debug)\n"
		"  --version         print the version\n"
		"  -h, --help        show help; 'banger <command> --help' for a command\n"
		"\nExit codes: 0 ok, 1 failure, 2 usage or invalid input, 3 not found,\n"
		"4 host key mismatch or revoked (possible MITM), 5 unsupported on this host,\n"
		"6 busy or already exists, 7 timed out, 8 the database is lost or damaged\n"
		"(nothing was changed: run 'banger store recover').\n");
}

int main(int argc, char **argv)
{
	cli_env env = { 0 };
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--version") == 0) {
			printf("banger %s\n", banger_version());
			return EXIT_OK;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			main_usage(stdout);
			return EXIT_OK;
		} else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			env.verbose++;
		} else if (strcmp(a, "-vv") == 0) {
			env.verbose += 2;
		} else if ((strcmp(a, "--state-dir") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc) {
			if (a[2] == 's')
				env.state_dir = argv[++i];
			else
				env.config_path = argv[++i];
		} else if (strncmp(a, "--state-dir=", 12) == 0) {
			env.state_dir = a + 12;
		} else if (strncmp(a, "--config=", 9) == 0) {
			env.config_path = a + 9;
		} else {
			fprintf(stderr, "banger: unknown global option '%s'\nTry 'banger --help'.\n", a);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		main_usage(stderr);
		return EXIT_USAGE;
	}
	int rc = EXIT_USAGE;
	const cli_cmd *cmd = NULL;
	for (int n = 0; cli_nouns[n]; n++)
		if (strcmp(cli_nouns[n]->name, argv[i]) == 0)
			cmd = cli_nouns[n];
	if (!cmd)
		fprintf(stderr, "banger: unknown command '%s'\nTry 'banger --help'.\n", argv[i]);
	else
		rc = cli_dispatch(&env, cmd, cmd->name, argc - i - 1, argv + i + 1);
	/* A command that could not open the state returns a generic failure;
	 * the reason (a database needing recovery, say) has its own code. */
	if (env.open_exit && !env.ctx)
		rc = env.open_exit;
	banger_ctx_close(env.ctx);
	return rc;
}
