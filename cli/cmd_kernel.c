/* banger kernel ...: guest kernels (catalog, pull, import, list, show, rm). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *dash(const char *s)
{
	return s && *s ? vis(s) : "-";
}

/* "a,b" → ["a", "b"] */
static void json_csv_array(FILE *f, const char *csv)
{
	fputc('[', f);
	const char *p = csv ? csv : "";
	bool first = true;
	while (*p) {
		size_t n = strcspn(p, ",");
		char item[64];
		snprintf(item, sizeof(item), "%.*s", (int)n, p);
		if (!first)
			fputs(", ", f);
		json_str(f, item);
		first = false;
		p += n;
		if (*p == ',')
			p++;
	}
	fputc(']', f);
}

/* ---- kernel catalog ---- */
static bool catalog_json;
static const char *catalog_url;
static const cli_opt catalog_opts[] = {
	{ "catalog", 0, OPT_STRING, &catalog_url, "catalog URL or path (default: kernel_catalog in the config)", "URL" },
	{ "json", 0, OPT_FLAG, &catalog_json, "print JSON", NULL },
	{ 0 },
};

static int kernel_catalog(cli_env *env, const cli_call *call)
{
	banger_ctx *ctx = call->ctx;
	int rc;
	banger_kernel_catalog *c;
	if ((rc = banger_kernel_catalog_fetch(&c, ctx, catalog_url)))
		return cli_fail("kernel catalog", rc);
	size_t n = banger_kernel_catalog_count(c);
	if (catalog_json) {
		printf("[");
		for (size_t i = 0; i < n; i++) {
			const banger_kernel_catalog_entry *e = banger_kernel_catalog_get(c, i);
			printf("%s\n  {\"name\": ", i ? "," : "");
			json_str(stdout, banger_kernel_catalog_entry_name(e));
			printf(", \"version\": ");
			json_str(stdout, banger_kernel_catalog_entry_version(e));
			printf(", \"arch\": ");
			json_str(stdout, banger_kernel_catalog_entry_arch(e));
			printf(", \"url\": ");
			json_str(stdout, banger_kernel_catalog_entry_url(e));
			printf(", \"size\": %llu, \"sha256\": ",
			       (unsigned long long)banger_kernel_catalog_entry_size(e));
			json_str(stdout, banger_kernel_catalog_entry_sha256(e));
			printf(", \"description\": ");
			json_str(stdout, banger_kernel_catalog_entry_description(e));
			printf(", \"vmms\": ");
			json_csv_array(stdout, banger_kernel_catalog_entry_vmms(e));
			printf(", \"format\": ");
			json_str(stdout, banger_kernel_catalog_entry_format(e));
			printf("}");
		}
		printf("%s]\n", n ? "\n" : "");
	} else {
		cli_table *t = table_new(6);
		const char *hdr[] = { "NAME", "VERSION", "ARCH", "SIZE", "VMMS", "DESCRIPTION" };
		table_row(t, hdr);
		for (size_t i = 0; i < n; i++) {
			const banger_kernel_catalog_entry *e = banger_kernel_catalog_get(c, i);
			char size[32];
			fmt_bytes(size, sizeof(size), banger_kernel_catalog_entry_size(e));
			const char *row[] = { banger_kernel_catalog_entry_name(e), banger_kernel_catalog_entry_version(e),
					      banger_kernel_catalog_entry_arch(e), size,
					      banger_kernel_catalog_entry_vmms(e),
					      dash(banger_kernel_catalog_entry_description(e)) };
			table_row(t, row);
		}
		table_print(t, stdout);
		table_free(t);
	}
	banger_kernel_catalog_free(c);
	return EXIT_OK;
}

/* ---- kernel pull ---- */
typedef struct {
	bool tty;
	int last_step;     /* plain: last quarter reported; tty: last percent drawn */
	long long last_ms;
	bool drew;
} progress_state;

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int on_progress(const banger_progress *ev, void *payload)
{
	progress_state *p = payload;
	/* a wait for another process (after the download: end its line) */
	if (ev->event == BANGER_PROGRESS_WAITING && p->drew) {
		fputc('\n', stderr);
		p->drew = false;
	}
	if (cli_progress_tell_wait(ev))
		return 0;
	/* the download's bytes are what there is to see */
	if (ev->event != BANGER_PROGRESS_DOWNLOAD)
		return 0;
	const uint64_t done = ev->done, total = ev->total;
	char d[32], t[32];
	fmt_bytes(d, sizeof(d), done);
	fmt_bytes(t, sizeof(t), total);
	int pct = total ? (int)(done * 100 / total) : 0;
	if (p->tty) {
		long long now = now_ms();
		if (pct == p->last_step && now - p->last_ms < 200 && done != total)
			return 0;
		p->last_step = pct;
		p->last_ms = now;
		char bar[31];
		int fill = total ? (int)(done * 30 / total) : 0;
		for (int i = 0; i < 30; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[30] = '\0';
		if (total)
			fprintf(stderr, "\r  [%s] %3d%%  %s / %s   ", bar, pct, d, t);
		else
			fprintf(stderr, "\r  %s   ", d);
		p->drew = true;
	} else if (total) {
		int quarter = pct / 25;
		if (quarter > p->last_step) {
			p->last_step = quarter;
			fprintf(stderr, "downloaded %s of %s (%d%%)\n", d, t, pct);
		}
	}
	return 0;
}

static void print_kernel_summary(const char *verb, const banger_kernel *k)
{
	/* names and versions come from a catalog or a kernel image */
	printf("%s kernel %s: %s %s%s%s, %s\n", verb, vis(banger_kernel_name(k)), vis(banger_kernel_arch(k)),
	       vis(banger_kernel_format(k)), banger_kernel_version(k) ? ", Linux " : "",
	       banger_kernel_version(k) ? vis(banger_kernel_version(k)) : "", vis(banger_kernel_path(k)));
}

static const char *pull_catalog;
static const cli_opt pull_opts[] = {
	{ "catalog", 0, OPT_STRING, &pull_catalog, "catalog URL or path (default: kernel_catalog in the config)", "URL" },
	{ 0 },
};

static int kernel_pull(cli_env *env, const cli_call *call)
{
	const char *name = call->pos[0];
	banger_ctx *ctx = call->ctx;
	int rc;
	progress_state ps = { .tty = isatty(STDERR_FILENO) == 1, .last_step = 0 };
	banger_kernel_pull_options o;
	banger_kernel_pull_options_init(&o, BANGER_KERNEL_PULL_OPTIONS_VERSION);
	o.catalog_url = pull_catalog;
	o.progress = on_progress;
	o.progress_payload = &ps;
	if (!ps.tty)
		fprintf(stderr, "pulling kernel %s\n", name);
	banger_kernel *k;
	rc = banger_kernel_pull(&k, ctx, name, &o);
	if (ps.drew)
		fputc('\n', stderr);
	if (rc)
		return cli_fail(name, rc);
	print_kernel_summary("pulled", k);
	banger_kernel_free(k);
	return EXIT_OK;
}

/* ---- kernel import ---- */
static const char *import_vmlinux, *import_initrd, *import_config;
static const cli_opt import_opts[] = {
	{ "vmlinux", 0, OPT_STRING_REQUIRED, &import_vmlinux, "the kernel: an ELF vmlinux or a bzImage (detected)", "PATH" },
	{ "initrd", 0, OPT_STRING, &import_initrd, "an initial ramdisk", "PATH" },
	{ "config", 0, OPT_STRING, &import_config, "the kernel's .config", "PATH" },
	{ 0 },
};

static int kernel_import(cli_env *env, const cli_call *call)
{
	const char *name = call->pos[0];
	banger_ctx *ctx = call->ctx;
	int rc;
	banger_kernel_import_options o;
	banger_kernel_import_options_init(&o, BANGER_KERNEL_IMPORT_OPTIONS_VERSION);
	o.initrd_path = import_initrd;
	o.config_path = import_config;
	banger_kernel *k;
	if ((rc = banger_kernel_import(&k, ctx, name, import_vmlinux, &o)))
		return cli_fail(name, rc);
	print_kernel_summary("imported", k);
	banger_kernel_free(k);
	return EXIT_OK;
}

/* ---- kernel list / show ---- */
static void kernel_json(FILE *f, const banger_kernel *k)
{
	fprintf(f, "{\"name\": ");
	json_str(f, banger_kernel_name(k));
	fprintf(f, ", \"version\": ");
	json_str(f, banger_kernel_version(k));
	fprintf(f, ", \"arch\": ");
	json_str(f, banger_kernel_arch(k));
	fprintf(f, ", \"format\": ");
	json_str(f, banger_kernel_format(k));
	fprintf(f, ", \"kernel_path\": ");
	json_str(f, banger_kernel_path(k));
	fprintf(f, ", \"initrd_path\": ");
	json_str(f, banger_kernel_initrd_path(k));
	fprintf(f, ", \"config_path\": ");
	json_str(f, banger_kernel_config_path(k));
	fprintf(f, ", \"source\": ");
	json_str(f, banger_kernel_source(k));
	fprintf(f, ", \"sha256\": ");
	json_str(f, banger_kernel_sha256(k));
	fprintf(f, ", \"created_at\": %lld", (long long)banger_kernel_created_at(k));
}

static bool list_json;
static const cli_opt list_opts[] = {
	{ "json", 0, OPT_FLAG, &list_json, "print JSON", NULL },
	{ 0 },
};

static int kernel_list(cli_env *env, const cli_call *call)
{
	banger_ctx *ctx = call->ctx;
	int rc;
	banger_kernel_list *l;
	if ((rc = banger_kernel_list_all(&l, ctx)))
		return cli_fail("list kernels", rc);
	size_t n = banger_kernel_list_count(l);
	if (list_json) {
		printf("[");
		for (size_t i = 0; i < n; i++) {
			printf("%s\n  ", i ? "," : "");
			kernel_json(stdout, banger_kernel_list_get(l, i));
			printf("}");
		}
		printf("%s]\n", n ? "\n" : "");
	} else {
		cli_table *t = table_new(5);
		const char *hdr[] = { "NAME", "VERSION", "ARCH", "FORMAT", "SOURCE" };
		table_row(t, hdr);
		for (size_t i = 0; i < n; i++) {
			const banger_kernel *k = banger_kernel_list_get(l, i);
			const char *row[] = { banger_kernel_name(k), dash(banger_kernel_version(k)), banger_kernel_arch(k),
					      banger_kernel_format(k), banger_kernel_source(k) };
			table_row(t, row);
		}
		table_print(t, stdout);
		table_free(t);
	}
	banger_kernel_list_free(l);
	return EXIT_OK;
}

static bool show_json;
static const cli_opt show_opts[] = {
	{ "json", 0, OPT_FLAG, &show_json, "print JSON", NULL },
	{ 0 },
};

static int kernel_show(cli_env *env, const cli_call *call)
{
	const char *name = call->pos[0];
	banger_ctx *ctx = call->ctx;
	int rc;
	banger_kernel *k;
	if ((rc = banger_kernel_lookup(&k, ctx, name)))
		return cli_fail(name, rc);
	/* The public API lists no drivers: these are the names
	 * banger_kernel_boot_path takes, each printed as it is. */
	static const char *const vmms[] = { "firecracker", "qemu" };
	const size_t nvmms = sizeof(vmms) / sizeof(vmms[0]);
	if (show_json) {
		kernel_json(stdout, k);
		printf(", \"boot\": {");
		for (size_t i = 0; i < nvmms; i++) {
			char *path = NULL;
			int brc = banger_kernel_boot_path(&path, k, vmms[i]);
			printf("%s\"%s\": {\"path\": ", i ? ", " : "", vmms[i]);
			json_str(stdout, brc ? NULL : path);
			printf(", \"error\": ");
			json_str(stdout, brc ? banger_error_last()->message : NULL);
			printf("}");
			banger_free(path);
		}
		printf("}}\n");
	} else {
		char created[64] = "-";
		time_t ct = (time_t)banger_kernel_created_at(k);
		struct tm tm;
		if (ct && localtime_r(&ct, &tm))
			strftime(created, sizeof(created), "%Y-%m-%d %H:%M:%S", &tm);
		printf("name:        %s\nversion:     %s\narch:        %s\nformat:      %s\nkernel:      %s\n"
		       "initrd:      %s\nconfig:      %s\nsource:      %s\nsha256:      %s\ncreated:     %s\n",
		       vis(banger_kernel_name(k)), dash(banger_kernel_version(k)), vis(banger_kernel_arch(k)),
		       vis(banger_kernel_format(k)), vis(banger_kernel_path(k)), dash(banger_kernel_initrd_path(k)),
		       dash(banger_kernel_config_path(k)), vis(banger_kernel_source(k)), dash(banger_kernel_sha256(k)),
		       created);
		for (size_t i = 0; i < nvmms; i++) {
			char *path = NULL;
			int brc = banger_kernel_boot_path(&path, k, vmms[i]);
			char label[32];
			snprintf(label, sizeof(label), "%s:", vmms[i]);
			printf("%-12s %s%s\n", label, brc ? "no: " : "boots ",
			       brc ? banger_error_last()->message : vis(path));
			banger_free(path);
		}
	}
	banger_kernel_free(k);
	return EXIT_OK;
}

/* ---- kernel rm ---- */

static int kernel_rm(cli_env *env, const cli_call *call)
{
	const char *const *pos = call->pos;
	int npos = call->npos, rc;
	banger_ctx *ctx = call->ctx;
	int exit_rc = EXIT_OK;
	for (int i = 0; i < npos; i++) {
		if ((rc = banger_kernel_remove(ctx, pos[i])))
			exit_rc = cli_fail(pos[i], rc);
		else
			printf("removed kernel %s\n", pos[i]);
	}
	return exit_rc;
}

#define CATALOG_SUMMARY "list the kernels a catalog offers"
#define PULL_SUMMARY "download, verify and install a kernel from the catalog"
#define IMPORT_SUMMARY "install a kernel you built (vmlinux or bzImage)"
#define LIST_SUMMARY "list installed kernels"
#define SHOW_SUMMARY "show one installed kernel and which VMMs can boot it"
#define RM_SUMMARY "remove installed kernels (refused while an image or VM uses one)"

static const cli_arg name_arg[] = { { "NAME", ARG_ONE, "the kernel's name" }, { 0 } };
static const cli_arg pull_args[] = { { "NAME", ARG_ONE, "a kernel of the catalog (see `banger kernel catalog`)" },
				     { 0 } };
static const cli_arg import_args[] = { { "NAME", ARG_ONE, "the name to install it as" }, { 0 } };
static const cli_arg rm_args[] = { { "NAME", ARG_SOME, "installed kernels" }, { 0 } };

static const cli_cmd kernel_subs[] = {
	{ "catalog", CATALOG_SUMMARY, catalog_opts, NULL, CLI_CTX, kernel_catalog, NULL, NULL },
	{ "pull", PULL_SUMMARY, pull_opts, pull_args, CLI_CTX, kernel_pull, NULL, NULL },
	{ "import", IMPORT_SUMMARY, import_opts, import_args, CLI_CTX, kernel_import, NULL, NULL },
	{ "list", LIST_SUMMARY, list_opts, NULL, CLI_CTX, kernel_list, NULL, NULL },
	{ "show", SHOW_SUMMARY, show_opts, name_arg, CLI_CTX, kernel_show, NULL, NULL },
	{ "rm", RM_SUMMARY, NULL, rm_args, CLI_CTX, kernel_rm, NULL, NULL },
	{ 0 },
};

const cli_cmd cli_kernel_cmd = { "kernel", "guest kernels: catalog, pull, import, list, show, rm", NULL, NULL, 0,
				 NULL, kernel_subs, NULL };
