/* The dispatcher over the command tables: a noun's verbs are found by
 * name; a verb's words are parsed against its entry, its help and usage
 * are printed from it, its positionals are counted against it, its option
 * values checked by the entry's check, and only then is the context
 * opened (as the entry's flags ask) and the verb run.  All that a verb's
 * entry says is data, so one place decides what a usage error is and
 * when the state is opened. */
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

static bool is_rest(cli_arg_kind k)
{
	return k == ARG_REST || k == ARG_REST_OPTIONAL;
}

static const cli_arg *rest_arg(const cli_cmd *cmd)
{
	for (const cli_arg *a = cmd->args; a && a->name; a++)
		if (is_rest(a->kind))
			return a;
	return NULL;
}

static void put(char *buf, size_t len, size_t *o, const char *fmt, ...) PRINTF_LIKE(4, 5);

static void put(char *buf, size_t len, size_t *o, const char *fmt, ...)
{
	if (*o >= len)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf + *o, len - *o, fmt, ap);
	va_end(ap);
	*o += n > 0 ? (size_t)n : 0;
}

/* A positional as the usage line spells it. */
static void arg_spelling(char *buf, size_t len, const cli_arg *a)
{
	const char *pre = "", *post = "";
	switch (a->kind) {
	case ARG_ONE: break;
	case ARG_OPTIONAL: pre = "["; post = "]"; break;
	case ARG_SOME: post = "..."; break;
	case ARG_ANY: pre = "["; post = "...]"; break;
	case ARG_REST: pre = "-- "; post = "..."; break;
	case ARG_REST_OPTIONAL: pre = "[-- "; post = "...]"; break;
	}
	snprintf(buf, len, "%s%s%s", pre, a->name, post);
}

void cli_usage_line(char *buf, size_t len, const cli_cmd *cmd)
{
	size_t o = 0;
	char word[128];
	buf[0] = '\0';
	if (cmd->subs) {
		put(buf, len, &o, "<command> [args]");
		return;
	}
	for (const cli_arg *a = cmd->args; a && a->name; a++) {
		if (is_rest(a->kind))
			continue;
		arg_spelling(word, sizeof(word), a);
		put(buf, len, &o, "%s%s", o ? " " : "", word);
	}
	bool optional = false;
	for (const cli_opt *p = cmd->opts; p && p->name; p++) {
		if (p->kind == OPT_STRING_REQUIRED)
			put(buf, len, &o, "%s--%s %s", o ? " " : "", p->name, p->metavar ? p->metavar : "VALUE");
		else
			optional = true;
	}
	if (optional)
		put(buf, len, &o, "%s[options]", o ? " " : "");
	const cli_arg *r = rest_arg(cmd);
	if (r) {
		arg_spelling(word, sizeof(word), r);
		put(buf, len, &o, "%s%s", o ? " " : "", word);
	}
}

static void option_line(FILE *f, const cli_opt *o)
{
	char left[64];
	bool value = o->kind != OPT_FLAG;
	snprintf(left, sizeof(left), "%s%c%s--%s%s%s", o->short_name ? "-" : "", o->short_name ? o->short_name : ' ',
		 o->short_name ? ", " : "  ", o->name, value ? " " : "", value ? (o->metavar ? o->metavar : "VALUE") : "");
	fprintf(f, "  %-28s %s\n", o->short_name ? left : left + 1, o->help ? o->help : "");
}

void cli_usage(FILE *f, const char *path, const cli_cmd *cmd)
{
	char line[512];
	cli_usage_line(line, sizeof(line), cmd);
	fprintf(f, "Usage: banger %s%s%s\n", path, line[0] ? " " : "", line);
	if (cmd->summary)
		fprintf(f, "\n%s\n", cmd->summary);
	if (cmd->subs) {
		fprintf(f, "\nCommands:\n");
		for (const cli_cmd *s = cmd->subs; s->name; s++)
			fprintf(f, "  %-14s %.*s\n", s->name, (int)strcspn(s->summary, "\n"), s->summary);
		fprintf(f, "  %-28s %s\n", "-h, --help", "show this help");
		return;
	}
	if (cmd->args && cmd->args->name) {
		fprintf(f, "\nArguments:\n");
		for (const cli_arg *a = cmd->args; a->name; a++) {
			arg_spelling(line, sizeof(line), a);
			fprintf(f, "  %-28s %s\n", line, a->help ? a->help : "");
		}
	}
	fprintf(f, "\nOptions:\n");
	for (const cli_opt *o = cmd->opts; o && o->name; o++)
		option_line(f, o);
	fprintf(f, "  %-28s %s\n", "-h, --help", "show this help");
}

static int usage_error(const char *path, const char *fmt, ...) PRINTF_LIKE(2, 3);

static int usage_error(const char *path, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "banger %s: ", path);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'banger %s --help'.\n", path);
	return EXIT_USAGE;
}

/* The positionals and options the entry asks for are there, and no more
 * positionals than it takes.  Returns -1 to go on, else EXIT_USAGE. */
static int check_words(const char *path, const cli_cmd *cmd, const cli_call *c)
{
	int have = c->npos, taken = 0;
	bool unbounded = false;
	char word[128];
	for (const cli_arg *a = cmd->args; a && a->name; a++) {
		switch (a->kind) {
		case ARG_ONE:
		case ARG_SOME:
			if (taken >= have) {
				arg_spelling(word, sizeof(word), a);
				return usage_error(path, "missing %s", word);
			}
			taken++;
			unbounded = a->kind == ARG_SOME;
			break;
		case ARG_OPTIONAL:
			taken += taken < have;
			break;
		case ARG_ANY:
			unbounded = true;
			break;
		case ARG_REST:
			if (c->nrest == 0) {
				arg_spelling(word, sizeof(word), a);
				return usage_error(path, "missing %s (the command goes after '--')", word);
			}
			break;
		case ARG_REST_OPTIONAL:
			break;
		}
	}
	if (!unbounded && have > taken)
		return usage_error(path, "unexpected argument '%s'", c->pos[taken]);
	for (const cli_opt *o = cmd->opts; o && o->name; o++)
		if (o->kind == OPT_STRING_REQUIRED && !*(const char **)o->dest)
			return usage_error(path, "--%s is required", o->name);
	return -1;
}

/* List options own what they collected; a verb only reads it. */
static void free_lists(const cli_cmd *cmd)
{
	for (const cli_opt *o = cmd->opts; o && o->name; o++) {
		if (o->kind != OPT_LIST)
			continue;
		cli_list *l = o->dest;
		free(l->items);
		l->items = NULL;
		l->count = 0;
	}
}

/* The entry's --file option was given (CLI_CTX_UNLESS_FILE). */
static bool file_given(const cli_cmd *cmd)
{
	for (const cli_opt *o = cmd->opts; o && o->name; o++)
		if (strcmp(o->name, "file") == 0 && o->kind == OPT_STRING)
			return *(const char **)o->dest != NULL;
	return false;
}

/* The entry's check, then the context its flags ask for, then the verb. */
static int open_and_run(cli_env *env, const cli_cmd *cmd, cli_call *c)
{
	int rc;
	if (cmd->check && (rc = cmd->check(c)))
		return rc;
	unsigned f = cmd->flags;
	bool wanted = (f & (CLI_CTX | CLI_CTX_RECOVER | CLI_CTX_OPTIONAL)) ||
		      ((f & CLI_CTX_UNLESS_FILE) && !file_given(cmd));
	if (f & CLI_CTX_RECOVER)
		env->ctx_flags |= BANGER_CTX_RECOVER;
	if (wanted && !(c->ctx = cli_ctx(env)) && !(f & CLI_CTX_OPTIONAL))
		return EXIT_FAILURE_;
	return cmd->run(env, c);
}

static int run_verb(cli_env *env, const cli_cmd *cmd, const char *path, int argc, char **argv)
{
	cli_call c = { .path = path };
	char err[256];
	bool help = false;
	int rc = cli_parse(cmd->opts, argc, argv, &c.pos, &c.npos, rest_arg(cmd) ? &c.rest : NULL, &c.nrest,
			   &help, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "banger %s: %s\nTry 'banger %s --help'.\n", path, err, path);
	} else if (help) {
		cli_usage(stdout, path, cmd);
		rc = EXIT_OK;
	} else if ((rc = check_words(path, cmd, &c)) < 0) {
		rc = open_and_run(env, cmd, &c);
	}
	free(c.pos);
	free_lists(cmd);
	return rc;
}

int cli_dispatch(cli_env *env, const cli_cmd *cmd, const char *path, int argc, char **argv)
{
	if (!cmd->subs)
		return run_verb(env, cmd, path, argc, argv);
	if (argc == 0 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
		cli_usage(argc == 0 ? stderr : stdout, path, cmd);
		return argc == 0 ? EXIT_USAGE : EXIT_OK;
	}
	for (const cli_cmd *s = cmd->subs; s->name; s++) {
		if (strcmp(s->name, argv[0]) == 0) {
			char sub[128];
			snprintf(sub, sizeof(sub), "%s %s", path, s->name);
			return cli_dispatch(env, s, sub, argc - 1, argv + 1);
		}
	}
	fprintf(stderr, "banger %s: unknown command '%s'\nTry 'banger %s --help'.\n", path, argv[0], path);
	return EXIT_USAGE;
}
