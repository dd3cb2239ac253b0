/* The CLI's option parser (cli/args.c).  The input is split at NUL bytes
 * into argv (at most 64 arguments) and parsed against an option table
 * with flags, string options, list options and short names, with and
 * without "--" allowed.
 *
 * Checked: on success every positional, option value and list item is
 * one of the arguments (or a suffix of one, for --name=value and -n4);
 * positionals never start with '-' unless they are exactly "-"; the
 * counts add up. */
#include "fuzz.h"
#include "../../cli/cli.h"

#define MAX_ARGS 64

static bool points_into(const char *p, char **argv, int argc)
{
	for (int i = 0; i < argc; i++)
		if (p >= argv[i] && p <= argv[i] + strlen(argv[i]))
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fuzz_cstr(data, size);
	char *argv[MAX_ARGS + 1];
	int argc = 0;
	for (size_t off = 0; off < size && argc < MAX_ARGS;) {
		argv[argc++] = buf + off;
		off += strlen(buf + off) + 1;
	}
	argv[argc] = NULL;

	for (int variant = 0; variant < 2; variant++) {
		bool json = false, force = false;
		const char *name = NULL, *vcpus = NULL;
		cli_list env = { NULL, 0 }, port = { NULL, 0 };
		const cli_opt opts[] = {
			{ "json", 0, OPT_FLAG, &json, "JSON output", NULL },
			{ "force", 'f', OPT_FLAG, &force, "force", NULL },
			{ "name", 'n', OPT_STRING, &name, "name", "NAME" },
			{ "vcpus", 'c', OPT_STRING, &vcpus, "vcpus", "N" },
			{ "env", 'e', OPT_LIST, &env, "environment", "K=V" },
			{ "port", 'p', OPT_LIST, &port, "port", "P" },
			{ NULL, 0, OPT_FLAG, NULL, NULL, NULL },
		};
		const char **pos = NULL;
		int npos = -1, nrest = -1;
		char **rest = NULL;
		bool help = false;
		char err[256] = "";
		int rc = cli_parse(opts, argc, argv, &pos, &npos, variant ? &rest : NULL, variant ? &nrest : NULL,
				   &help, err, sizeof(err));
		FUZZ_CHECK(rc == 0 || rc == EXIT_USAGE || rc == EXIT_FAILURE_);
		if (rc == 0) {
			FUZZ_CHECK(npos >= 0 && npos <= argc);
			for (int i = 0; i < npos; i++) {
				FUZZ_CHECK(points_into(pos[i], argv, argc));
				FUZZ_CHECK(pos[i][0] != '-' || pos[i][1] == '\0' ||
					   /* "-x..." where x is not a known short option */
					   (pos[i][1] != '-' && pos[i][2] != '\0'));
			}
			if (name)
				FUZZ_CHECK(points_into(name, argv, argc));
			if (vcpus)
				FUZZ_CHECK(points_into(vcpus, argv, argc));
			for (int i = 0; i < env.count; i++)
				FUZZ_CHECK(points_into(env.items[i], argv, argc));
			for (int i = 0; i < port.count; i++)
				FUZZ_CHECK(points_into(port.items[i], argv, argc));
			if (variant && rest) {
				FUZZ_CHECK(nrest >= 0 && rest + nrest == argv + argc);
				FUZZ_CHECK(strcmp(rest[-1], "--") == 0);
			}
			FUZZ_CHECK(npos + env.count + port.count <= argc);
		} else {
			FUZZ_CHECK(err[0] != '\0');
		}
		free(pos);
		free(env.items);
		free(port.items);
	}
	free(buf);
	return 0;
}
