/* banger image ...: OCI images as root filesystems (pull, import, list,
 * show, rm, prune).  Progress: per-layer bars on a terminal, plain lines
 * otherwise, JSON events with --json. */
#include "cli.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Fields come from images and registries: made visible (vis). */
static const char *dash(const char *s)
{
	return s && *s ? vis(s) : "-";
}

/* The image config is JSON text the library built; a DEL (which may sit
 * only inside a string there) is the one raw control it can still hold. */
static void config_json(FILE *f, const char *cfg)
{
	if (!cfg || *cfg != '{') {
		fputs("null", f);
		return;
	}
	for (const char *p = cfg; *p; p++)
		if (*p == 0x7f)
			fputs("\\u007f", f);
		else
			fputc(*p, f);
}

static void image_json(FILE *f, const banger_image *img)
{
	fprintf(f, "{\"name\": ");
	json_str(f, banger_image_name(img));
	fprintf(f, ", \"ref\": ");
	json_str(f, banger_image_ref(img));
	fprintf(f, ", \"digest\": ");
	json_str(f, banger_image_digest(img));
	fprintf(f, ", \"platform\": ");
	json_str(f, banger_image_platform(img));
	fprintf(f, ", \"kernel\": ");
	json_str(f, banger_image_kernel(img));
	fprintf(f, ", \"rootfs\": ");
	json_str(f, banger_image_rootfs_path(img));
	fprintf(f, ", \"rootfs_bytes\": %llu, \"has_initrd\": %s, \"prepared\": %s, \"created_at\": %lld",
		(unsigned long long)banger_image_rootfs_bytes(img), banger_image_has_initrd(img) ? "true" : "false",
		banger_image_prepared(img) ? "true" : "false", (long long)banger_image_created_at(img));
	fprintf(f, ", \"config\": ");
	config_json(f, banger_image_config_json(img));
	fputc('}', f);
}

/* ---- progress ---- */

#define MAX_ROWS 64

typedef struct {
	int phase;          /* 0 waiting, 1 downloading, 2 downloaded/cached, 3 unpacking, 4 unpacked */
	uint64_t done, total;
	char digest[20];
	double t0;          /* when the phase started */
	uint64_t d0;
	double rate;        /* bytes/s, smoothed */
	double tlast;
	uint64_t dlast;
} row;

typedef struct {
	bool json, tty;
	uint32_t layers;
	row rows[MAX_ROWS];
	int drawn;          /* lines currently on screen */
	double last_draw;
	char step[64];
} progress;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *event_name(int e)
{
	switch (e) {
	case BANGER_PROGRESS_RESOLVED: return "resolved";
	case BANGER_PROGRESS_DOWNLOAD: return "download";
	case BANGER_PROGRESS_DOWNLOADED: return "downloaded";
	case BANGER_PROGRESS_CACHED: return "cached";
	case BANGER_PROGRESS_UNPACK: return "unpack";
	case BANGER_PROGRESS_UNPACKED: return "unpacked";
	case BANGER_PROGRESS_STEP: return "build";
	case BANGER_PROGRESS_WAITING: return "waiting";
	case BANGER_PROGRESS_DONE: return "done";
	case BANGER_PROGRESS_UP_TO_DATE: return "up-to-date";
	default: return "unknown";
	}
}

static void short_digest(char *out, size_t len, const char *d)
{
	snprintf(out, len, "%.12s", d && strncmp(d, "sha256:", 7) == 0 ? vis(d + 7) : (d ? vis(d) : "?"));
}

static void draw(progress *p, bool force)
{
	double t = now_s();
	if (!force && t - p->last_draw < 0.1)
		return;
	p->last_draw = t;
	if (p->drawn)
		fprintf(stderr, "\033[%dA", p->drawn);
	uint32_t n = p->layers < MAX_ROWS ? p->layers : MAX_ROWS;
	for (uint32_t i = 0; i < n; i++) {
		row *r = &p->rows[i];
		static const char *const what[] = { "waiting", "downloading", "downloaded", "unpacking", "unpacked" };
		char done[32], total[32], rate[48] = "", eta[32] = "", bar[32];
		fmt_bytes(done, sizeof(done), r->done);
		fmt_bytes(total, sizeof(total), r->total);
		int width = 20, fill = r->total ? (int)((double)r->done / (double)r->total * width) : 0;
		if (r->phase == 2 || r->phase == 4)
			fill = width;
		if (fill > width)
			fill = width;
		for (int k = 0; k < width; k++)
			bar[k] = k < fill ? '#' : '.';
		bar[width] = '\0';
		if ((r->phase == 1 || r->phase == 3) && r->rate > 0) {
			char rb[32];
			fmt_bytes(rb, sizeof(rb), (unsigned long long)r->rate);
			snprintf(rate, sizeof(rate), "%s/s", rb);
			if (r->total > r->done) {
				long s = (long)((double)(r->total - r->done) / r->rate);
				snprintf(eta, sizeof(eta), "ETA %ld:%02ld", s / 60, s % 60);
			}
		}
		fprintf(stderr, "\033[2Klayer %u/%u %s [%s] %10s / %-10s %-12s %-9s %s\n", i + 1, p->layers,
			r->digest, bar, done, total, rate, eta, what[r->phase]);
	}
	fprintf(stderr, "\033[2K%s\n", p->step);
	p->drawn = (int)n + 1;
	fflush(stderr);
}

static int on_progress(const banger_progress *ev, void *payload)
{
	progress *p = payload;
	if (p->json) {
		printf("{\"event\": \"%s\", \"layer\": %u, \"layers\": %u, \"digest\": ", event_name(ev->event),
		       ev->item, ev->items);
		json_str(stdout, ev->digest);
		printf(", \"done\": %llu, \"total\": %llu, \"detail\": ", (unsigned long long)ev->done,
		       (unsigned long long)ev->total);
		json_str(stdout, ev->detail);
		printf("}\n");
		fflush(stdout);
		return 0;
	}
	if (cli_progress_tell_wait(ev))
		return 0;
	p->layers = ev->items;
	row *r = ev->item < MAX_ROWS ? &p->rows[ev->item] : NULL;
	char d[20], sz[32];
	short_digest(d, sizeof(d), ev->digest);
	double t = now_s();
	int phase = -1;
	switch (ev->event) {
	case BANGER_PROGRESS_RESOLVED:
		fmt_bytes(sz, sizeof(sz), ev->total);
		fprintf(stderr, "resolved %s (%s), %u layers, %s\n", dash(ev->digest),
			dash(ev->detail), ev->items, sz);
		return 0;
	case BANGER_PROGRESS_DOWNLOAD: phase = 1; break;
	case BANGER_PROGRESS_DOWNLOADED:
	case BANGER_PROGRESS_CACHED: phase = 2; break;
	case BANGER_PROGRESS_UNPACK: phase = 3; break;
	case BANGER_PROGRESS_UNPACKED: phase = 4; break;
	case BANGER_PROGRESS_STEP:
		snprintf(p->step, sizeof(p->step), "%s", dash(ev->detail));
		if (p->tty)
			draw(p, true);
		else
			fprintf(stderr, "%s\n", dash(ev->detail));
		return 0;
	case BANGER_PROGRESS_DONE:
	case BANGER_PROGRESS_UP_TO_DATE:
		if (p->tty && p->drawn) {
			snprintf(p->step, sizeof(p->step), "%s",
				 ev->event == BANGER_PROGRESS_DONE ? "done" : "up to date");
			draw(p, true);
		}
		return 0;
	default:
		return 0;
	}
	if (!r)
		return 0;
	if (phase != r->phase) {
		if (!p->tty) {
			/* plain lines: state changes only */
			fmt_bytes(sz, sizeof(sz), ev->total);
			if (phase == 2 || phase == 4)
				fprintf(stderr, "layer %u/%u %s %s (%s)\n", ev->item + 1, ev->items, d,
					ev->event == BANGER_PROGRESS_CACHED ? "cached"
					: phase == 2 ? "downloaded" : "unpacked", sz);
		}
		r->phase = phase;
		r->t0 = r->tlast = t;
		r->d0 = r->dlast = ev->done;
		r->rate = 0;
	} else if (t - r->tlast >= 0.2) {
		double inst = (double)(ev->done - r->dlast) / (t - r->tlast);
		r->rate = r->rate > 0 ? 0.7 * r->rate + 0.3 * inst : inst;
		r->tlast = t;
		r->dlast = ev->done;
	}
	snprintf(r->digest, sizeof(r->digest), "%s", d);
	r->done = ev->done;
	r->total = ev->total;
	if (p->tty)
		draw(p, phase == 2 || phase == 4);
	return 0;
}

/* ---- pull and import ---- */

static const char *o_name, *o_kernel, *o_platform, *o_size, *o_headroom, *o_max, *o_jobs;
static bool o_insecure, o_force, o_no_patch, o_json;

static const cli_opt pull_opts[] = {
	{ "name", 0, OPT_STRING, &o_name, "image name (default: from the reference, e.g. debian-bookworm)", "NAME" },
	{ "kernel-ref", 0, OPT_STRING, &o_kernel, "kernel to record with the image", "KERNEL" },
	{ "platform", 0, OPT_STRING, &o_platform, "os/arch[/variant] (default: this host)", "PLATFORM" },
	{ "size", 0, OPT_STRING, &o_size, "rootfs size (default: the tree plus headroom)", "SIZE" },
	{ "headroom", 0, OPT_STRING, &o_headroom, "free space added (default: config image_headroom)", "SIZE" },
	{ "insecure", 0, OPT_FLAG, &o_insecure, "plain HTTP to this registry", NULL },
	{ "force", 0, OPT_FLAG, &o_force, "rebuild even when up to date", NULL },
	{ "no-patch", 0, OPT_FLAG, &o_no_patch, "do not add banger's first-boot init, fstab, resolv.conf", NULL },
	{ "max-bytes", 0, OPT_STRING, &o_max, "budget: bytes downloaded, uncompressed layer bytes (default: config image_max_bytes, 64G)", "SIZE" },
	{ "jobs", 'j', OPT_STRING, &o_jobs, "parallel downloads and unpackers", "N" },
	{ "json", 0, OPT_FLAG, &o_json, "print JSON events, then the image", NULL },
	{ 0 },
};
/* import takes the same options but --insecure */
static const cli_opt import_opts[] = {
	{ "name", 0, OPT_STRING, &o_name, "image name (default: from the tag or file name)", "NAME" },
	{ "kernel-ref", 0, OPT_STRING, &o_kernel, "kernel to record with the image", "KERNEL" },
	{ "platform", 0, OPT_STRING, &o_platform, "os/arch[/variant] (default: this host)", "PLATFORM" },
	{ "size", 0, OPT_STRING, &o_size, "rootfs size (default: the tree plus headroom)", "SIZE" },
	{ "headroom", 0, OPT_STRING, &o_headroom, "free space added (default: config image_headroom)", "SIZE" },
	{ "force", 0, OPT_FLAG, &o_force, "rebuild even when up to date", NULL },
	{ "no-patch", 0, OPT_FLAG, &o_no_patch, "do not add banger's first-boot init, fstab, resolv.conf", NULL },
	{ "max-bytes", 0, OPT_STRING, &o_max, "budget: bytes copied from the archive, uncompressed layer bytes (default: config image_max_bytes, 64G)", "SIZE" },
	{ "jobs", 'j', OPT_STRING, &o_jobs, "parallel unpackers", "N" },
	{ "json", 0, OPT_FLAG, &o_json, "print JSON events, then the image", NULL },
	{ 0 },
};

static int parse_size(const char *what, const char *s, uint64_t *out)
{
	char *end;
	double v = strtod(s, &end);
	uint64_t mult = 1;
	if (end == s || v < 0) {
		fprintf(stderr, "banger: %s: '%s' is not a size\n", what, s);
		return EXIT_USAGE;
	}
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': mult = 1ull << 10; end++; break;
	case 'm': case 'M': mult = 1ull << 20; end++; break;
	case 'g': case 'G': mult = 1ull << 30; end++; break;
	case 't': case 'T': mult = 1ull << 40; end++; break;
	default: end = (char *)"?";
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	else if (*end == 'B')
		end++;
	if (*end) {
		fprintf(stderr, "banger: %s: '%s' is not a size (e.g. 512M, 4G)\n", what, s);
		return EXIT_USAGE;
	}
	*out = (uint64_t)(v * (double)mult);
	return 0;
}


/* The options of pull and import, from their option values (checked
 * before the context is opened). */
static banger_image_pull_options get_o;

static int get_check(const cli_call *call)
{
	banger_image_pull_options *o = &get_o;
	int rc;
	banger_image_pull_options_init(o, BANGER_IMAGE_PULL_OPTIONS_VERSION);
	o->name = o_name;
	o->kernel_ref = o_kernel;
	o->platform = o_platform;
	if ((o_size && (rc = parse_size("--size", o_size, &o->size_bytes))) ||
	    (o_headroom && (rc = parse_size("--headroom", o_headroom, &o->headroom_bytes))) ||
	    (o_max && (rc = parse_size("--max-bytes", o_max, &o->max_bytes))))
		return rc;
	if (o_jobs) {
		char *end;
		long j = strtol(o_jobs, &end, 10);
		if (*end || j < 1 || j > 64) {
			fprintf(stderr, "banger %s: --jobs wants a number from 1 to 64\n", call->path);
			return EXIT_USAGE;
		}
		o->max_parallel = (uint32_t)j;
	}
	o->flags = (o_insecure ? BANGER_IMAGE_INSECURE : 0) | (o_force ? BANGER_IMAGE_FORCE : 0) |
		   (o_no_patch ? BANGER_IMAGE_NO_PATCH : 0);
	return 0;
}

static int run_get(cli_env *env, const cli_call *call, bool import)
{
	const char *what = call->pos[0];
	banger_ctx *ctx = call->ctx;
	int rc;
	banger_image_pull_options o = get_o;
	progress ps;
	memset(&ps, 0, sizeof(ps));
	ps.json = o_json;
	ps.tty = !o_json && isatty(STDERR_FILENO) == 1;
	snprintf(ps.step, sizeof(ps.step), "resolving");
	o.progress = on_progress;
	o.progress_payload = &ps;
	banger_image *img = NULL;
	rc = import ? banger_image_import(&img, ctx, what, &o) : banger_image_pull(&img, ctx, what, &o);
	if (rc) {
		if (o_json) {
			const banger_error *e = banger_error_last();
			printf("{\"event\": \"error\", \"code\": ");
			json_str(stdout, banger_error_name(rc));
			printf(", \"message\": ");
			json_str(stdout, e ? e->message : banger_error_name(rc));
			printf("}\n");
		}
		return cli_fail(import ? "image import" : "image pull", rc);
	}
	if (o_json) {
		printf("{\"event\": \"image\", \"image\": ");
		image_json(stdout, img);
		printf("}\n");
	} else {
		char sz[32];
		fmt_bytes(sz, sizeof(sz), banger_image_rootfs_bytes(img));
		printf("%s: %s (%s, %s)\n", vis(banger_image_name(img)), vis(banger_image_rootfs_path(img)),
		       dash(banger_image_platform(img)), sz);
	}
	banger_image_free(img);
	return EXIT_OK;
}

static int image_pull(cli_env *env, const cli_call *call)
{
	return run_get(env, call, false);
}

static int image_import(cli_env *env, const cli_call *call)
{
	return run_get(env, call, true);
}

/* ---- list, show, rm ---- */

static bool list_json;
static const cli_opt list_opts[] = {
	{ "json", 0, OPT_FLAG, &list_json, "print JSON", NULL },
	{ 0 },
};

static int image_list(cli_env *env, const cli_call *call)
{
	banger_ctx *ctx = call->ctx;
	int rc;
	banger_image_list *l;
	if ((rc = banger_image_list_all(&l, ctx)))
		return cli_fail("list images", rc);
	size_t n = banger_image_list_count(l);
	if (list_json) {
		printf("[");
		for (size_t i = 0; i < n; i++) {
			printf("%s\n  ", i ? "," : "");
			image_json(stdout, banger_image_list_get(l, i));
		}
		printf("%s]\n", n ? "\n" : "");
	} else {
		cli_table *t = table_new(6);
		const char *hdr[] = { "NAME", "REF", "PLATFORM", "SIZE", "KERNEL", "DIGEST" };
		table_row(t, hdr);
		for (size_t i = 0; i < n; i++) {
			const banger_image *img = banger_image_list_get(l, i);
			char sz[32], dg[20];
			fmt_bytes(sz, sizeof(sz), banger_image_rootfs_bytes(img));
			short_digest(dg, sizeof(dg), banger_image_digest(img));
			const char *cells[] = { banger_image_name(img), dash(banger_image_ref(img)),
						dash(banger_image_platform(img)), sz, dash(banger_image_kernel(img)), dg };
			table_row(t, cells);
		}
		table_print(t, stdout);
		table_free(t);
	}
	banger_image_list_free(l);
	return EXIT_OK;
}

static bool show_json;
static const cli_opt show_opts[] = {
	{ "json", 0, OPT_FLAG, &show_json, "print JSON", NULL },
	{ 0 },
};

static int image_show(cli_env *env, const cli_call *call)
{
	const char *name = call->pos[0];
	banger_ctx *ctx = call->ctx;
	int rc;
	banger_image *img;
	if ((rc = banger_image_lookup(&img, ctx, name)))
		return cli_fail(name, rc);
	if (show_json) {
		image_json(stdout, img);
		printf("\n");
	} else {
		char sz[32], when[64] = "-";
		fmt_bytes(sz, sizeof(sz), banger_image_rootfs_bytes(img));
		time_t ct = (time_t)banger_image_created_at(img);
		struct tm tm;
		if (ct && localtime_r(&ct, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		printf("name:       %s\nref:        %s\ndigest:     %s\nplatform:   %s\nkernel:     %s\n"
		       "rootfs:     %s\nsize:       %s\nprepared:   %s\ncreated:    %s\nconfig:     %s\n",
		       vis(banger_image_name(img)), dash(banger_image_ref(img)), dash(banger_image_digest(img)),
		       dash(banger_image_platform(img)), dash(banger_image_kernel(img)),
		       dash(banger_image_rootfs_path(img)), sz, banger_image_prepared(img) ? "yes" : "no", when,
		       dash(banger_image_config_json(img)));
	}
	banger_image_free(img);
	return EXIT_OK;
}

static const cli_opt rm_opts[] = { { 0 } };

static int image_rm(cli_env *env, const cli_call *call)
{
	const char *const *pos = call->pos;
	int npos = call->npos, rc;
	banger_ctx *ctx = call->ctx;
	int exit_code = EXIT_OK;
	for (int i = 0; i < npos; i++) {
		if ((rc = banger_image_remove(ctx, pos[i])))
			exit_code = cli_fail(pos[i], rc);
		else
			printf("removed %s\n", pos[i]);
	}
	return exit_code;
}

/* ---- prune: the blob cache ---- */

static bool prune_json, prune_dry;
static const char *prune_keep, *prune_wait;
static const cli_opt prune_opts[] = {
	{ "keep", 0, OPT_STRING, &prune_keep, "keep unused blobs, newest first, while the cache stays under SIZE", "SIZE" },
	{ "wait", 0, OPT_STRING, &prune_wait, "wait up to SECONDS for pulls and imports in progress (default: do not)", "SECONDS" },
	{ "dry-run", 'n', OPT_FLAG, &prune_dry, "say what would be removed, remove nothing", NULL },
	{ "json", 0, OPT_FLAG, &prune_json, "print JSON", NULL },
	{ 0 },
};

static banger_image_prune_options prune_o;

static int prune_check(const cli_call *call)
{
	banger_image_prune_options *o = &prune_o;
	int rc;
	banger_image_prune_options_init(o, BANGER_IMAGE_PRUNE_OPTIONS_VERSION);
	if (prune_keep && (rc = parse_size("--keep", prune_keep, &o->keep_bytes)))
		return rc;
	if (prune_wait) {
		char *end;
		long w = strtol(prune_wait, &end, 10);
		if (*end || end == prune_wait || w < 0 || w > 86400) {
			fprintf(stderr, "banger image prune: --wait wants seconds from 0 to 86400\n");
			return EXIT_USAGE;
		}
		o->timeout_ms = (uint32_t)w * 1000u;
	}
	o->flags = prune_dry ? BANGER_IMAGE_PRUNE_DRY_RUN : 0;
	return 0;
}

static int image_prune(cli_env *env, const cli_call *call)
{
	int rc;
	banger_image_prune_report r;
	if ((rc = banger_image_prune(&r, call->ctx, &prune_o)))
		return cli_fail("image prune", rc);
	if (prune_json) {
		printf("{\"dry_run\": %s, \"blobs_removed\": %llu, \"bytes_removed\": %llu, \"blobs_kept\": %llu, "
		       "\"bytes_kept\": %llu, \"blobs_referenced\": %llu, \"bytes_referenced\": %llu, "
		       "\"temp_removed\": %llu}\n",
		       prune_dry ? "true" : "false", (unsigned long long)r.blobs_removed,
		       (unsigned long long)r.bytes_removed, (unsigned long long)r.blobs_kept,
		       (unsigned long long)r.bytes_kept, (unsigned long long)r.blobs_referenced,
		       (unsigned long long)r.bytes_referenced, (unsigned long long)r.temp_removed);
	} else {
		char freed[32], kept[32];
		fmt_bytes(freed, sizeof(freed), r.bytes_removed);
		fmt_bytes(kept, sizeof(kept), r.bytes_kept);
		printf("%s %llu blobs (%s); %llu blobs (%s) kept, %llu of them used by images\n",
		       prune_dry ? "would remove" : "removed", (unsigned long long)r.blobs_removed, freed,
		       (unsigned long long)r.blobs_kept, kept, (unsigned long long)r.blobs_referenced);
	}
	return EXIT_OK;
}

/* The blob cache's part of `banger gc`: every unused blob goes; a pull
 * running elsewhere only postpones it.  Returns exit_code unless the
 * prune itself failed. */
int cli_gc_blobs(banger_ctx *ctx, int exit_code)
{
	banger_image_prune_report r;
	int rc = banger_image_prune(&r, ctx, NULL);
	if (rc == BANGER_EBUSY) {
		printf("blob cache: skipped (a pull or import is using it)\n");
		return exit_code;
	}
	if (rc) {
		int e = cli_fail("prune the blob cache", rc);
		return exit_code != EXIT_OK ? exit_code : e;
	}
	char freed[32];
	fmt_bytes(freed, sizeof(freed), r.bytes_removed);
	printf("blob cache: removed %llu unused blobs (%s)\n", (unsigned long long)r.blobs_removed, freed);
	return exit_code;
}

#define PRUNE_SUMMARY "remove cached blobs no image uses"

static const cli_arg pull_args[] = { { "REF", ARG_ONE, "an image reference, e.g. debian:bookworm" }, { 0 } };
static const cli_arg import_args[] = { { "PATH[:TAG]", ARG_ONE, "an OCI layout directory or a docker save archive" },
				       { 0 } };
static const cli_arg name_arg[] = { { "NAME", ARG_ONE, "the image's name" }, { 0 } };
static const cli_arg rm_args[] = { { "NAME", ARG_SOME, "images" }, { 0 } };

static const cli_cmd image_subs[] = {
	{ "pull", "pull an image from a registry and build its rootfs", pull_opts, pull_args, CLI_CTX, image_pull, NULL,
	  get_check },
	{ "import", "import an OCI layout or docker save archive", import_opts, import_args, CLI_CTX, image_import,
	  NULL, get_check },
	{ "list", "list images", list_opts, NULL, CLI_CTX, image_list, NULL, NULL },
	{ "show", "show one image", show_opts, name_arg, CLI_CTX, image_show, NULL, NULL },
	{ "rm", "remove images (refused while a VM uses one)", rm_opts, rm_args, CLI_CTX, image_rm, NULL, NULL },
	{ "prune", PRUNE_SUMMARY, prune_opts, NULL, CLI_CTX, image_prune, NULL, prune_check },
	{ 0 },
};

const cli_cmd cli_image_cmd = { "image", "pull, import and manage root filesystem images", NULL, NULL, 0, NULL,
				image_subs, NULL };
