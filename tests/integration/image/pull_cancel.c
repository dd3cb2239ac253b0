/* Cancelling an image pull (public API only), run by run.sh against its
 * registry: usage pull_cancel BASE_DIR REF.  For each kind of report a
 * pull sends, a pull in a fresh state root is cancelled at the first such
 * report: it must fail with BANGER_ECANCELLED and record nothing, leaving
 * under images/ nothing but lock files and in the whole state root no
 * partial file.  (UNPACK reports are throttled: a layer unpacked between
 * two looks sends none, and then there is nothing to cancel at.)  A last
 * pull, not cancelled, must see every stage with DONE last. */
#include <banger/banger.h>

#include <dirent.h>
#include <stdbool.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CHECK(cond)                                                                                      \
	do {                                                                                             \
		if (!(cond)) {                                                                           \
			fprintf(stderr, "%s:%d: check failed: %s (%s)\n", __FILE__, __LINE__, #cond,     \
				banger_error_last() ? banger_error_last()->message : "-");               \
			exit(1);                                                                         \
		}                                                                                        \
	} while (0)

typedef struct {
	int stop_event;  /* 0: never */
	int stopped;     /* the report that was answered with "stop" */
	int last_event, operation;
	char seen[256];  /* each stage once, in order */
} canceller;

static int on_progress(const banger_progress *p, void *payload)
{
	canceller *c = payload;
	CHECK(p->version == BANGER_PROGRESS_VERSION && p->stage && p->subject);
	c->last_event = p->event;
	c->operation = p->operation;
	const char *last = strrchr(c->seen, ' ');
	if (strcmp(last ? last + 1 : c->seen, p->stage) != 0)
		snprintf(c->seen + strlen(c->seen), sizeof(c->seen) - strlen(c->seen), "%s%s", c->seen[0] ? " " : "",
			 p->stage);
	if (c->stop_event && p->event == c->stop_event && !c->stopped) {
		c->stopped = p->event;
		return 1;
	}
	return 0;
}

/* Files a failed pull may leave: lock files only; no rootfs, no temp. */
static void nothing_left(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strncmp(e->d_name, ".lock", 5))
			continue;
		fprintf(stderr, "left behind in %s: %s\n", dir, e->d_name);
		exit(1);
	}
	closedir(d);
}

/* Partial files (blob downloads, a rootfs being written) anywhere. */
static int no_partial(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	const char *base = path + ftw->base;
	if (strncmp(base, ".tmp-", 5) == 0 || strncmp(base, ".rootfs.tmp-", 12) == 0) {
		fprintf(stderr, "partial file left behind: %s\n", path);
		exit(1);
	}
	return 0;
}

static banger_ctx *open_root(const char *base, const char *name)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/%s", base, name);
	banger_ctx_options o = BANGER_CTX_OPTIONS_INIT;
	o.state_dir = dir;
	banger_ctx *ctx = NULL;
	CHECK(banger_ctx_open(&ctx, &o) == 0);
	return ctx;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: pull_cancel BASE_DIR REF\n");
		return 2;
	}
	static const struct {
		int event;
		const char *name;
		bool always; /* every pull sends one */
	} stops[] = {
		{ BANGER_PROGRESS_RESOLVED, "resolved", true },	    { BANGER_PROGRESS_DOWNLOAD, "download", true },
		{ BANGER_PROGRESS_DOWNLOADED, "downloaded", true }, { BANGER_PROGRESS_UNPACK, "unpack", false },
		{ BANGER_PROGRESS_UNPACKED, "unpacked", true },	    { BANGER_PROGRESS_STEP, "build step", true },
	};
	banger_image_pull_options o = BANGER_IMAGE_PULL_OPTIONS_INIT;
	o.name = "cancelled";
	o.flags = BANGER_IMAGE_NO_PATCH;
	o.progress = on_progress;
	for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++) {
		banger_ctx *ctx = open_root(argv[1], stops[i].name);
		canceller c;
		memset(&c, 0, sizeof(c));
		c.stop_event = stops[i].event;
		o.progress_payload = &c;
		banger_image *img = NULL;
		int rc = banger_image_pull(&img, ctx, argv[2], &o);
		if (rc == 0 && !c.stopped && !stops[i].always) {
			printf("skip: no %s report was sent (small layers)\n", stops[i].name);
			banger_image_free(img);
			banger_ctx_close(ctx);
			continue;
		}
		if (rc != BANGER_ECANCELLED) {
			fprintf(stderr, "cancel at %s: pull gave %d (%s); reports: %s\n", stops[i].name, rc,
				banger_error_last() ? banger_error_last()->message : "-", c.seen);
			banger_image_free(img);
			banger_ctx_close(ctx);
			return 1;
		}
		CHECK(img == NULL && c.stopped == stops[i].event && c.operation == BANGER_PROGRESS_OP_IMAGE_PULL);
		CHECK(strstr(banger_error_last()->message, "cancelled"));
		CHECK(banger_image_lookup(&img, ctx, "cancelled") == BANGER_ENOTFOUND);
		char dir[4200];
		snprintf(dir, sizeof(dir), "%s/images", banger_ctx_state_dir(ctx));
		nothing_left(dir);
		CHECK(nftw(banger_ctx_state_dir(ctx), no_partial, 16, FTW_PHYS) == 0);
		banger_ctx_close(ctx);
		printf("ok: cancelled at %s (after: %s); nothing recorded\n", stops[i].name, c.seen);
	}
	banger_ctx *ctx = open_root(argv[1], "whole");
	canceller c;
	memset(&c, 0, sizeof(c));
	o.progress_payload = &c;
	banger_image *img = NULL;
	CHECK(banger_image_pull(&img, ctx, argv[2], &o) == 0 && img);
	banger_image_free(img);
	/* the filesystem is made, layers downloaded and unpacked side by side */
	printf("reports of a whole pull: %s\n", c.seen);
	CHECK(strncmp(c.seen, "resolve ", 8) == 0 && strstr(c.seen, " download ") && strstr(c.seen, " unpack "));
	const char *tail = strstr(c.seen, " build done");
	CHECK(tail && strcmp(tail, " build done") == 0);
	CHECK(c.last_event == BANGER_PROGRESS_DONE);
	banger_ctx_close(ctx);
	return 0;
}
