/* Output helpers: JSON strings, aligned tables, human units. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

void json_str(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
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
		c[t->nrows * t->ncols + i] = strdup(cells[i] ? cells[i] : "-");
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
