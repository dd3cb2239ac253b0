/* banger: the command-line front end of libbanger. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const cli_cmd *const nouns[] = {
	&cli_vm_cmd,
	&cli_session_cmd,
	&cli_known_hosts_cmd,
	&cli_ssh_config_cmd,
	&cli_ssh_proxy_cmd,
	&cli_gc_cmd,
	&cli_store_cmd,
	&cli_kernel_cmd,
	&cli_image_cmd,
	&cli_doctor_cmd,
	&cli_version_cmd,
	NULL,
};

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

void cli_usage(FILE *f, const char *path, const cli_cmd *cmd, const cli_opt *opts)
{
	fprintf(f, "Usage: banger %s%s%s\n", path, cmd->usage ? " " : "", cmd->usage ? cmd->usage : "");
	if (cmd->summary)
		fprintf(f, "\n%s\n", cmd->summary);
	if (cmd->subs) {
		fprintf(f, "\nCommands:\n");
		for (const cli_cmd *s = cmd->subs; s->name; s++)
			fprintf(f, "  %-14s %s\n", s->name, s->summary);
	}
	if (opts && opts->name) {
		fprintf(f, "\nOptions:\n");
		for (const cli_opt *o = opts; o->name; o++) {
			char left[64];
			snprintf(left, sizeof(left), "%s%c%s--%s%s%s", o->short_name ? "-" : "",
				 o->short_name ? o->short_name : ' ', o->short_name ? ", " : "  ", o->name,
				 o->kind == OPT_FLAG ? "" : " ", o->kind == OPT_FLAG ? "" : (o->metavar ? o->metavar : "VALUE"));
			fprintf(f, "  %-28s %s\n", o->short_name ? left : left + 1, o->help ? o->help : "");
		}
	}
	fprintf(f, "  %-28s %s\n", "-h, --help", "show this help");
}

int cli_parse_or_usage(const char *path, const cli_cmd *cmd, const cli_opt *opts, int argc,
		       char **argv, const char ***pos, int *npos, char ***rest, int *nrest)
{
	char err[256];
	bool help = false;
	int rc = cli_parse(opts, argc, argv, pos, npos, rest, nrest, &help, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "banger %s: %s\n", path, err);
		fprintf(stderr, "Try 'banger %s --help'.\n", path);
		return rc;
	}
	if (help) {
		cli_usage(stdout, path, cmd, opts);
		return EXIT_OK;
	}
	return -1;
}

static void main_usage(FILE *f)
{
	fprintf(f,
		"Usage: banger [--state-dir DIR] [--config FILE] [-v] <command> [args]\n\n"
		"banger runs Linux microVMs: kernels from a catalog, root filesystems from OCI\n"
		"images, Firecracker (or QEMU) with verified SSH.\n\nCommands:\n");
	for (int i = 0; nouns[i]; i++)
		fprintf(f, "  %-12s %s\n", nouns[i]->name, nouns[i]->summary);
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

/* Dispatch "noun [verb] args" to the command table. */
static int dispatch(cli_env *env, const cli_cmd *cmd, const char *path, int argc, char **argv)
{
	if (!cmd->subs)
		return cmd->run(env, argc, argv);
	if (argc == 0 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
		cli_usage(argc == 0 ? stderr : stdout, path, cmd, NULL);
		return argc == 0 ? EXIT_USAGE : EXIT_OK;
	}
	for (const cli_cmd *s = cmd->subs; s->name; s++) {
		if (strcmp(s->name, argv[0]) == 0) {
			char sub[128];
			snprintf(sub, sizeof(sub), "%s %s", path, s->name);
			return dispatch(env, s, sub, argc - 1, argv + 1);
		}
	}
	fprintf(stderr, "banger %s: unknown command '%s'\nTry 'banger %s --help'.\n", path, argv[0], path);
	return EXIT_USAGE;
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
	for (int n = 0; nouns[n]; n++)
		if (strcmp(nouns[n]->name, argv[i]) == 0)
			cmd = nouns[n];
	if (!cmd)
		fprintf(stderr, "banger: unknown command '%s'\nTry 'banger --help'.\n", argv[i]);
	else
		rc = dispatch(&env, cmd, cmd->name, argc - i - 1, argv + i + 1);
	/* A command that could not open the state returns a generic failure;
	 * the reason (a database needing recovery, say) has its own code. */
	if (env.open_exit && !env.ctx)
		rc = env.open_exit;
	banger_ctx_close(env.ctx);
	return rc;
}
