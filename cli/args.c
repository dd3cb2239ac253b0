/* A small option parser: --long, --long=value, -s value, flags, lists,
 * "--" ending options.  Pure (no globals), so it can be fuzzed. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const cli_opt *find_long(const cli_opt *opts, const char *name, size_t len)
{
	for (; opts && opts->name; opts++)
		if (strlen(opts->name) == len && strncmp(opts->name, name, len) == 0)
			return opts;
	return NULL;
}

static const cli_opt *find_short(const cli_opt *opts, char c)
{
	for (; opts && opts->name; opts++)
		if (opts->short_name && opts->short_name == c)
			return opts;
	return NULL;
}

static int assign(const cli_opt *o, const char *value, char *err, size_t errlen)
{
	switch (o->kind) {
	case OPT_FLAG:
		*(bool *)o->dest = true;
		return 0;
	case OPT_STRING:
	case OPT_STRING_REQUIRED:
		*(const char **)o->dest = value;
		return 0;
	case OPT_LIST: {
		cli_list *l = o->dest;
		const char **items = realloc(l->items, (size_t)(l->count + 1) * sizeof(*items));
		if (!items) {
			snprintf(err, errlen, "out of memory");
			return EXIT_FAILURE_;
		}
		items[l->count++] = value;
		l->items = items;
		return 0;
	}
	}
	return 0;
}

int cli_parse(const cli_opt *opts, int argc, char **argv, const char ***pos, int *npos,
	      char ***rest, int *nrest, bool *help, char *err, size_t errlen)
{
	*npos = 0;
	*pos = calloc((size_t)argc + 1, sizeof(char *));
	if (!*pos) {
		snprintf(err, errlen, "out of memory");
		return EXIT_FAILURE_;
	}
	if (rest) {
		*rest = NULL;
		*nrest = 0;
	}
	*help = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			if (!rest) {
				snprintf(err, errlen, "unexpected '--'");
				return EXIT_USAGE;
			}
			*rest = argv + i + 1;
			*nrest = argc - i - 1;
			return 0;
		}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			*help = true;
			continue;
		}
		const cli_opt *o = NULL;
		const char *value = NULL;
		if (a[0] == '-' && a[1] == '-') {
			const char *name = a + 2, *eq = strchr(name, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			o = find_long(opts, name, len);
			if (!o) {
				snprintf(err, errlen, "unknown option '--%.*s'", (int)len, name);
				return EXIT_USAGE;
			}
			if (eq) {
				if (o->kind == OPT_FLAG) {
					snprintf(err, errlen, "option '--%s' takes no value", o->name);
					return EXIT_USAGE;
				}
				value = eq + 1;
			}
		} else if (a[0] == '-' && a[1] && !a[2]) {
			o = find_short(opts, a[1]);
			if (!o) {
				snprintf(err, errlen, "unknown option '%s'", a);
				return EXIT_USAGE;
			}
		} else if (a[0] == '-' && a[1] && a[1] != '-' && find_short(opts, a[1]) &&
			   find_short(opts, a[1])->kind != OPT_FLAG) {
			o = find_short(opts, a[1]); /* -n4 */
			value = a + 2;
		} else {
			(*pos)[(*npos)++] = a;
			continue;
		}
		if (o->kind != OPT_FLAG && !value) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "option '--%s' needs a value", o->name);
				return EXIT_USAGE;
			}
			value = argv[++i];
		}
		int rc = assign(o, value, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}
