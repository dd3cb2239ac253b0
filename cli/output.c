/* Output helpers: JSON strings, aligned tables, human units, a guest
 * command's end as the exit status a shell would give. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* Every string the CLI prints may come from an image, a registry, a
 * catalog or a guest: it goes through the library's banger_text_visible
 * (the one definition of what is safe), in JSON syntax for --json. */
void json_str(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	char *v = NULL;
	if (banger_text_visible(&v, NULL, NULL, s, strlen(s), BANGER_TEXT_JSON) == 0)
		fprintf(f, "\"%s\"", v);
	else
		fputs("\"\"", f); /* out of memory: print nothing rather than raw bytes */
	banger_free(v);
}

/* The last few results stay alive, so that several can be passed to one
 * printf; the CLI is single-threaded. */
#define VIS_SLOTS 16

const char *vis(const char *s)
{
	static char *slot[VIS_SLOTS];
	static unsigned next;
	if (!s)
		return NULL;
	char *v = NULL;
	if (banger_text_visible(&v, NULL, NULL, s, strlen(s), 0) != 0)
		return "?";
	unsigned i = next++ % VIS_SLOTS;
	banger_free(slot[i]);
	slot[i] = v;
	return v;
}

int write_visible(FILE *f, const char *data, size_t len, char *carry, size_t *ncarry)
{
	/* carry holds the unfinished tail of the previous chunk (<= 4 bytes:
	 * a cut UTF-8 character or a CR whose LF is still to come) */
	char joined[4 + 8192];
	size_t off = 0;
	int rc = 0;
	while (rc == 0 && (off < len || (!data && *ncarry))) {
		size_t take = len - off;
		if (take > sizeof(joined) - *ncarry)
			take = sizeof(joined) - *ncarry;
		memcpy(joined, carry, *ncarry);
		if (take)
			memcpy(joined + *ncarry, data + off, take);
		size_t n = *ncarry + take, used = 0;
		char *v = NULL;
		rc = banger_text_visible(&v, NULL, &used, joined, n,
					 BANGER_TEXT_LINES | (data ? BANGER_TEXT_PARTIAL : 0));
		if (rc == 0) {
			fputs(v, f);
			*ncarry = n - used;
			memcpy(carry, joined + used, *ncarry);
		}
		banger_free(v);
		off += take;
		if (!data)
			break;
	}
	return rc;
}

struct cli_table {
	int ncols, nrows;
	char **cells; /* nrows * ncols */
};

cli_table *table_new(int ncols)
{
	cli_table *t = calloc(1, sizeof(*t));
	if (t)
		t->ncols = ncols;
	return t;
}

void table_row(cli_table *t, const char *const *cells)
{
	if (!t)
		return;
	char **c = realloc(t->cells, (size_t)(t->nrows + 1) * (size_t)t->ncols * sizeof(char *));
	if (!c)
		return;
	t->cells = c;
	for (int i = 0; i < t->ncols; i++)
		c[t->nrows * t->ncols + i] = strdup(cells[i] ? vis(cells[i]) : "-");
	t->nrows++;
}

void table_print(cli_table *t, FILE *f)
{
	if (!t)
		return;
	int *w = calloc((size_t)t->ncols, sizeof(int));
	if (!w)
		return;
	for (int r = 0; r < t->nrows; r++)
		for (int c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			int len = s ? (int)strlen(s) : 0;
			if (len > w[c])
				w[c] = len;
		}
	for (int r = 0; r < t->nrows; r++) {
		for (int c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			if (c == t->ncols - 1)
				fprintf(f, "%s\n", s ? s : "");
			else
				fprintf(f, "%-*s  ", w[c], s ? s : "");
		}
	}
	free(w);
}

void table_free(cli_table *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

void fmt_duration(char *buf, size_t len, long long s)
{
	if (s < 60)
		snprintf(buf, len, "%llds", s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm", s / 60);
	else if (s < 86400)
		snprintf(buf, len, "%lldh%lldm", s / 3600, (s % 3600) / 60);
	else
		snprintf(buf, len, "%lldd%lldh", s / 86400, (s % 86400) / 3600);
}

void fmt_bytes(char *buf, size_t len, unsigned long long b)
{
	const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", b);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
}

int cli_exit_status(banger_exit_status st)
{
	if (st.code >= 0)
		return st.code;
	/* the guest did not say which signal (-1): a failure, like not ended */
	return st.signal > 0 ? 128 + st.signal : EXIT_FAILURE_;
}
