/* The CLI's command tables (cmd_*.c, nouns.c) and the dispatcher that
 * reads them (command.c): the tables are well-formed data, usage lines
 * come from them, a usage error (unknown option, missing or stray
 * positional, no "--" command, a required option left out, a value the
 * entry's check refuses) exits 2 before the verb runs and before the
 * context is opened, and the context is opened as the entry's flags say,
 * by the dispatcher only.  main.c is not linked: the context calls below
 * stand in for it and count. */
#include "helpers.h"
#include "../../cli/cli.h"

static int ctx_opens;
static banger_ctx *fake_ctx = (banger_ctx *)&ctx_opens;

banger_ctx *cli_ctx(cli_env *env)
{
	ctx_opens++;
	if (env->open_exit)
		return NULL;
	env->ctx = fake_ctx;
	return env->ctx;
}

int cli_exit_code(int rc)
{
	return rc ? EXIT_FAILURE_ : EXIT_OK;
}

int cli_fail(const char *what, int rc)
{
	(void)what;
	return cli_exit_code(rc);
}

/* ---- the real tables ---- */

static bool known_kind(cli_arg_kind k)
{
	return k == ARG_ONE || k == ARG_OPTIONAL || k == ARG_SOME || k == ARG_ANY || k == ARG_REST ||
	       k == ARG_REST_OPTIONAL;
}

static void check_opts(const char *path, const cli_opt *opts)
{
	for (const cli_opt *o = opts; o && o->name; o++) {
		if (!o->name[0] || strchr(o->name, '=') || strcmp(o->name, "help") == 0 || !o->help || !o->help[0])
			fail_msg("%s: option '--%s' is malformed", path, o->name);
		if (!o->dest)
			fail_msg("%s: option '--%s' stores nowhere", path, o->name);
		if (o->kind != OPT_FLAG && !o->metavar)
			fail_msg("%s: option '--%s' takes a value but names none", path, o->name);
		if (o->short_name == 'h')
			fail_msg("%s: -h is help, not '--%s'", path, o->name);
		for (const cli_opt *p = o + 1; p->name; p++) {
			if (strcmp(o->name, p->name) == 0)
				fail_msg("%s: '--%s' twice", path, o->name);
			if (o->short_name && o->short_name == p->short_name)
				fail_msg("%s: '-%c' twice", path, o->short_name);
		}
	}
}

/* ONE* OPTIONAL* (SOME | ANY)? and at most one REST, last. */
static void check_args(const char *path, const cli_arg *args)
{
	int stage = 0; /* 0 ONE, 1 OPTIONAL, 2 after SOME/ANY, 3 after REST */
	for (const cli_arg *a = args; a && a->name; a++) {
		if (!a->name[0] || !a->help || !a->help[0] || !known_kind(a->kind))
			fail_msg("%s: positional '%s' is malformed", path, a->name);
		if (stage == 3)
			fail_msg("%s: '%s' after the words after '--'", path, a->name);
		switch (a->kind) {
		case ARG_ONE:
			if (stage > 0)
				fail_msg("%s: required '%s' after an optional or variadic one", path, a->name);
			break;
		case ARG_OPTIONAL:
			if (stage > 1)
				fail_msg("%s: '%s' after a variadic one", path, a->name);
			stage = 1;
			break;
		case ARG_SOME:
		case ARG_ANY:
			if (stage > 1)
				fail_msg("%s: two variadic positionals", path);
			if (stage == 1 && a->kind == ARG_SOME)
				fail_msg("%s: '%s...' after an optional one", path, a->name);
			stage = 2;
			break;
		case ARG_REST:
		case ARG_REST_OPTIONAL:
			stage = 3;
			break;
		}
	}
}

static size_t walk(const char *path, const cli_cmd *cmd)
{
	if (!cmd->name || !cmd->name[0] || strpbrk(cmd->name, " \t\n"))
		fail_msg("%s: a command without a proper name", path);
	if (!cmd->summary || !cmd->summary[0] || strcspn(cmd->summary, "\n") > 80)
		fail_msg("%s: the summary's first line must be there and short", path);
	if (cmd->flags & ~(unsigned)(CLI_CTX | CLI_CTX_RECOVER | CLI_CTX_OPTIONAL | CLI_CTX_UNLESS_FILE))
		fail_msg("%s: unknown flags", path);
	if (cmd->subs) {
		if (cmd->run || cmd->opts || cmd->args || cmd->flags || cmd->check)
			fail_msg("%s: a noun has verbs only", path);
		size_t verbs = 0;
		for (const cli_cmd *s = cmd->subs; s->name; s++) {
			for (const cli_cmd *t = s + 1; t->name; t++)
				if (strcmp(s->name, t->name) == 0)
					fail_msg("%s: verb '%s' twice", path, s->name);
			char sub[128];
			snprintf(sub, sizeof(sub), "%s %s", path, s->name);
			verbs += walk(sub, s);
		}
		return verbs;
	}
	if (!cmd->run)
		fail_msg("%s: a verb that runs nothing", path);
	if (cmd->flags & CLI_CTX_UNLESS_FILE) {
		const cli_opt *o = cmd->opts;
		while (o && o->name && strcmp(o->name, "file") != 0)
			o++;
		if (!o || !o->name || o->kind != OPT_STRING)
			fail_msg("%s: without the context unless --file, but it has no --file", path);
	}
	/* No verb opens the context itself: each says what it needs, and
	 * only `version` needs none. */
	if (!cmd->flags && strcmp(path, "version") != 0)
		fail_msg("%s: says nothing of the context it needs", path);
	check_opts(path, cmd->opts);
	check_args(path, cmd->args);
	return 1;
}

static void test_tables_are_well_formed(void **state)
{
	(void)state;
	size_t verbs = 0, nouns = 0;
	for (const cli_cmd *const *n = cli_nouns; *n; n++, nouns++) {
		for (const cli_cmd *const *m = n + 1; *m; m++)
			if (strcmp((*n)->name, (*m)->name) == 0)
				fail_msg("noun '%s' twice", (*n)->name);
		verbs += walk((*n)->name, *n);
	}
	assert_int_equal(nouns, 11);
	/* every verb of every noun, and the nouns that are verbs themselves */
	assert_true(verbs >= 40);
}

static const cli_cmd *find(const char *noun, const char *verb)
{
	for (const cli_cmd *const *n = cli_nouns; *n; n++) {
		if (strcmp((*n)->name, noun) != 0)
			continue;
		if (!verb)
			return *n;
		for (const cli_cmd *s = (*n)->subs; s && s->name; s++)
			if (strcmp(s->name, verb) == 0)
				return s;
	}
	fail_msg("no command %s %s", noun, verb ? verb : "");
	return NULL;
}

static void assert_usage(const char *noun, const char *verb, const char *want)
{
	char line[512];
	cli_usage_line(line, sizeof(line), find(noun, verb));
	if (strcmp(line, want) != 0)
		fail_msg("usage of %s %s is '%s', want '%s'", noun, verb ? verb : "", line, want);
}

static void test_usage_lines(void **state)
{
	(void)state;
	assert_usage("vm", NULL, "<command> [args]");
	assert_usage("vm", "show", "NAME [options]");
	assert_usage("vm", "create", "--image IMG [options]");
	assert_usage("vm", "exec", "NAME [options] -- CMD...");
	assert_usage("vm", "ssh", "NAME [-- CMD...]");
	assert_usage("vm", "run", "[options] -- CMD...");
	assert_usage("session", "list", "[VM] [options]");
	assert_usage("session", "rm", "ID... [options]");
	assert_usage("kernel", "import", "NAME --vmlinux PATH [options]");
	assert_usage("kernel", "rm", "NAME...");
	assert_usage("known-hosts", "check", "HOST PUBKEY_FILE [options]");
	assert_usage("ssh-proxy", NULL, "HOST PORT");
	assert_usage("version", NULL, "");
}

static void test_help_text(void **state)
{
	(void)state;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	cli_usage(f, "known-hosts check", find("known-hosts", "check"));
	fclose(f);
	assert_non_null(strstr(text, "Usage: banger known-hosts check HOST PUBKEY_FILE [options]\n"));
	assert_non_null(strstr(text, "\nexit 0 match, 3 not-found, 4 mismatch/revoked, 5 skip\n"));
	assert_non_null(strstr(text, "\nArguments:\n  HOST "));
	assert_non_null(strstr(text, "\n  -p, --port N "));
	assert_non_null(strstr(text, "\n  -h, --help "));
	free(text);
	/* in the noun's list, only the summary's first line */
	f = open_memstream(&text, &len);
	cli_usage(f, "known-hosts", find("known-hosts", NULL));
	fclose(f);
	assert_non_null(strstr(text, "\n  check          check a host key: match, mismatch, not-found, revoked or skip\n"));
	assert_null(strstr(text, "exit 0 match"));
	free(text);
}

/* ---- the dispatcher on a table of its own ---- */

static int runs, items_seen, checks, opens_at_check;
static cli_call seen;
static char seen_path[64], seen_rest0[64];
static bool flag;
static const char *value, *needed, *file;
static cli_list items;

static int record(cli_env *env, const cli_call *call)
{
	(void)env;
	runs++;
	seen = *call;
	items_seen = items.count;
	/* what the verb gets lives only while it runs */
	snprintf(seen_path, sizeof(seen_path), "%s", call->path);
	snprintf(seen_rest0, sizeof(seen_rest0), "%s", call->nrest ? call->rest[0] : "");
	return 42;
}

/* Refuses --value=bad as a usage error, before the context. */
static int check_value(const cli_call *call)
{
	(void)call;
	checks++;
	opens_at_check = ctx_opens;
	return value && strcmp(value, "bad") == 0 ? EXIT_USAGE : 0;
}

static const cli_opt file_opts[] = {
	{ "file", 'f', OPT_STRING, &file, "a file instead of the state", "FILE" },
	{ 0 },
};

static const cli_opt opts[] = {
	{ "flag", 'f', OPT_FLAG, &flag, "a flag", NULL },
	{ "value", 0, OPT_STRING, &value, "a value", "V" },
	{ "item", 'i', OPT_LIST, &items, "an item", "I" },
	{ 0 },
};
static const cli_opt req_opts[] = {
	{ "needed", 0, OPT_STRING_REQUIRED, &needed, "must be given", "N" },
	{ 0 },
};
static const cli_arg one[] = { { "NAME", ARG_ONE, "a name" }, { 0 } };
static const cli_arg one_rest[] = { { "NAME", ARG_ONE, "a name" }, { "CMD", ARG_REST, "a command" }, { 0 } };
static const cli_arg maybe_rest[] = { { "CMD", ARG_REST_OPTIONAL, "a command" }, { 0 } };
static const cli_arg opt_some[] = { { "A", ARG_OPTIONAL, "maybe" }, { "B", ARG_ANY, "any" }, { 0 } };
static const cli_arg some[] = { { "X", ARG_SOME, "one or more" }, { 0 } };

static const cli_cmd verbs[] = {
	{ "one", "one name", opts, one, CLI_CTX, record, NULL, NULL },
	{ "rest", "a name and a command", opts, one_rest, CLI_CTX, record, NULL, NULL },
	{ "maybe", "maybe a command", NULL, maybe_rest, 0, record, NULL, NULL },
	{ "any", "optional then any", NULL, opt_some, 0, record, NULL, NULL },
	{ "some", "one or more", NULL, some, 0, record, NULL, NULL },
	{ "req", "a required option", req_opts, NULL, CLI_CTX_RECOVER, record, NULL, NULL },
	{ "checked", "values checked first", opts, one, CLI_CTX, record, NULL, check_value },
	{ "ifcan", "the context when it opens", NULL, NULL, CLI_CTX_OPTIONAL, record, NULL, NULL },
	{ "file", "the context unless --file", file_opts, NULL, CLI_CTX_UNLESS_FILE, record, NULL, NULL },
	{ 0 },
};
static const cli_cmd noun = { "noun", "a test noun", NULL, NULL, 0, NULL, verbs, NULL };

static int run(cli_env *env, const char *const *words)
{
	char *argv[16];
	int argc = 0;
	while (words[argc]) {
		argv[argc] = (char *)words[argc];
		argc++;
	}
	runs = checks = 0;
	ctx_opens = 0;
	opens_at_check = -1;
	flag = false;
	value = needed = file = NULL;
	memset(&seen, 0, sizeof(seen));
	return cli_dispatch(env, &noun, "noun", argc, argv);
}

#define RUN(env, ...) run(env, (const char *const[]){ __VA_ARGS__, NULL })

static void assert_refused(cli_env *env, int rc)
{
	(void)env;
	assert_int_equal(rc, EXIT_USAGE);
	assert_int_equal(runs, 0);
	assert_int_equal(ctx_opens, 0);
}

static void test_usage_errors(void **state)
{
	(void)state;
	cli_env env = { 0 };
	assert_refused(&env, RUN(&env, "one"));                    /* missing NAME */
	assert_refused(&env, RUN(&env, "one", "a", "b"));          /* stray */
	assert_refused(&env, RUN(&env, "one", "a", "--bogus"));    /* unknown option */
	assert_refused(&env, RUN(&env, "one", "a", "--", "x"));    /* no "--" here */
	assert_refused(&env, RUN(&env, "rest", "a"));              /* no command */
	assert_refused(&env, RUN(&env, "rest", "a", "--"));        /* an empty one */
	assert_refused(&env, RUN(&env, "rest", "--", "ls"));       /* no NAME */
	assert_refused(&env, RUN(&env, "maybe", "x"));             /* no positionals at all */
	assert_refused(&env, RUN(&env, "some"));                   /* one or more */
	assert_refused(&env, RUN(&env, "req"));                    /* --needed left out */
	assert_refused(&env, RUN(&env, "nope"));                   /* unknown verb */
	assert_int_equal(RUN(&env, "one", "--help"), EXIT_OK);     /* help wins */
	assert_int_equal(runs + ctx_opens, 0);
	assert_int_equal(RUN(&env, "--help"), EXIT_OK);
	char *none[] = { NULL };
	assert_int_equal(cli_dispatch(&env, &noun, "noun", 0, none), EXIT_USAGE);
	/* real verbs: nothing is opened for a usage error */
	char *show[] = { "show" }, *stray[] = { "list", "x" }, *exec[] = { "exec", "box" };
	ctx_opens = 0;
	assert_int_equal(cli_dispatch(&env, find("vm", NULL), "vm", 1, show), EXIT_USAGE);
	assert_int_equal(cli_dispatch(&env, find("vm", NULL), "vm", 2, stray), EXIT_USAGE);
	assert_int_equal(cli_dispatch(&env, find("vm", NULL), "vm", 2, exec), EXIT_USAGE);
	assert_int_equal(ctx_opens, 0);
}

static void test_runs_with_what_it_parsed(void **state)
{
	(void)state;
	cli_env env = { 0 };
	assert_int_equal(RUN(&env, "rest", "-f", "box", "--value=v", "--", "uname", "-a"), 42);
	assert_int_equal(runs, 1);
	assert_int_equal(ctx_opens, 1);
	assert_ptr_equal(seen.ctx, fake_ctx);
	assert_string_equal(seen_path, "noun rest");
	assert_true(flag);
	assert_string_equal(value, "v");
	assert_int_equal(seen.npos, 1);
	assert_int_equal(seen.nrest, 2);
	assert_string_equal(seen_rest0, "uname");

	/* lists are the verb's while it runs, and freed after */
	assert_int_equal(RUN(&env, "one", "-i", "a", "box", "--item", "b"), 42);
	assert_int_equal(items_seen, 2);
	assert_int_equal(items.count, 0);
	assert_null(items.items);

	/* no CLI_CTX: the verb needs none, and none is opened */
	assert_int_equal(RUN(&env, "maybe"), 42);
	assert_int_equal(ctx_opens, 0);
	assert_null(seen.ctx);
	assert_int_equal(seen.nrest, 0);
	assert_int_equal(RUN(&env, "maybe", "--", "x"), 42);
	assert_int_equal(seen.nrest, 1);
	assert_int_equal(RUN(&env, "any"), 42);
	assert_int_equal(RUN(&env, "any", "a", "b", "c"), 42);
	assert_int_equal(seen.npos, 3);
	assert_int_equal(RUN(&env, "some", "a", "b"), 42);
	assert_int_equal(seen.npos, 2);

	/* opened for recovery */
	assert_int_equal(RUN(&env, "req", "--needed", "n"), 42);
	assert_int_equal(ctx_opens, 1);
	assert_true(env.ctx_flags & BANGER_CTX_RECOVER);

	/* a context that cannot be opened: the verb does not run */
	cli_env broken = { .open_exit = EXIT_STORE };
	assert_int_equal(RUN(&broken, "one", "box"), EXIT_FAILURE_);
	assert_int_equal(ctx_opens, 1);
	assert_int_equal(runs, 0);
}

static void test_check_then_context(void **state)
{
	(void)state;
	cli_env env = { 0 };
	/* the check runs before the context is opened, and a value it
	 * refuses is a usage error that opens nothing */
	assert_int_equal(RUN(&env, "checked", "box", "--value", "bad"), EXIT_USAGE);
	assert_int_equal(checks, 1);
	assert_int_equal(ctx_opens + runs, 0);
	assert_int_equal(RUN(&env, "checked", "box", "--value", "good"), 42);
	assert_int_equal(checks, 1);
	assert_int_equal(opens_at_check, 0);
	assert_int_equal(ctx_opens, 1);
	assert_ptr_equal(seen.ctx, fake_ctx);
	/* a usage error of the words comes before the check */
	assert_int_equal(RUN(&env, "checked"), EXIT_USAGE);
	assert_int_equal(checks + ctx_opens, 0);

	/* CLI_CTX_OPTIONAL: the verb runs without a context that fails */
	cli_env broken = { .open_exit = EXIT_STORE };
	assert_int_equal(RUN(&broken, "ifcan"), 42);
	assert_int_equal(ctx_opens, 1);
	assert_null(seen.ctx);
	cli_env fine = { 0 };
	assert_int_equal(RUN(&fine, "ifcan"), 42);
	assert_ptr_equal(seen.ctx, fake_ctx);

	/* CLI_CTX_UNLESS_FILE: --file needs no state */
	cli_env fresh = { 0 };
	assert_int_equal(RUN(&fresh, "file", "--file", "/tmp/x"), 42);
	assert_int_equal(ctx_opens, 0);
	assert_null(seen.ctx);
	assert_int_equal(RUN(&fresh, "file"), 42);
	assert_int_equal(ctx_opens, 1);
	assert_ptr_equal(seen.ctx, fake_ctx);
	assert_int_equal(RUN(&broken, "file"), EXIT_FAILURE_);
	assert_int_equal(runs, 0);

	/* real verbs: a value refused by their check opens nothing */
	char *create[] = { "create", "--image", "img", "--vcpus", "many" };
	char *logs[] = { "logs", "s1", "--from", "-1" };
	char *proxy[] = { "box.vm", "0" };
	ctx_opens = 0;
	assert_int_equal(cli_dispatch(&fresh, find("vm", NULL), "vm", 5, create), EXIT_USAGE);
	assert_int_equal(cli_dispatch(&fresh, find("session", NULL), "session", 4, logs), EXIT_USAGE);
	assert_int_equal(cli_dispatch(&fresh, find("ssh-proxy", NULL), "ssh-proxy", 2, proxy), EXIT_USAGE);
	assert_int_equal(ctx_opens, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tables_are_well_formed),
		cmocka_unit_test(test_usage_lines),
		cmocka_unit_test(test_help_text),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_runs_with_what_it_parsed),
		cmocka_unit_test(test_check_then_context),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
