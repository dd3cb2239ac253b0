/* Public API only: image options, reference normalization, records,
 * errors of pull/import/remove that need no registry, an import that
 * waits for the image's lock and a pull that waits for a prune's hold of
 * the blob cache lock (reported, cancellable). */
#include <banger/banger.h>

#include "lock_holder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); exit(1); } } while (0)

static int progress_calls;
static int on_progress(const banger_progress *p, void *payload)
{
	(void)p;
	CHECK(payload == &progress_calls);
	progress_calls++;
	return 0;
}

typedef struct {
	int operation;      /* what the reports must name */
	const char *subject;
	int waits;          /* WAITING reports at stage "lock" */
	int cancel;         /* answer "stop" to the first of them */
	pid_t release;      /* > 0: stop this holder at the first of them */
	int last_event;
	char detail[256];
} lock_watch;

/* A watch for reports of operation on subject; cancel: answer "stop";
 * release: stop this holder at the first wait. */
static lock_watch watch_for(int operation, const char *subject, int cancel, pid_t release)
{
	lock_watch w;
	memset(&w, 0, sizeof(w));
	w.operation = operation;
	w.subject = subject;
	w.cancel = cancel;
	w.release = release;
	return w;
}

static int on_lock_wait(const banger_progress *p, void *payload)
{
	lock_watch *w = payload;
	w->last_event = p->event;
	if (p->event != BANGER_PROGRESS_WAITING || strcmp(p->stage, "lock") != 0)
		return 0;
	CHECK(p->operation == w->operation && p->subject && strcmp(p->subject, w->subject) == 0);
	w->waits++;
	snprintf(w->detail, sizeof(w->detail), "%s", p->detail ? p->detail : "");
	if (w->release > 0) {
		lock_holder_stop(w->release);
		w->release = 0;
	}
	return w->cancel;
}

/* Another process holds the image's lock: the import reports the wait
 * and a cancel in it records nothing; when the holder lets go, the
 * import goes on. */
static void import_waits_for_lock(banger_ctx *ctx, const char *state)
{
	char layout[4200], lock[4200], cmd[9000], held[64];
	snprintf(layout, sizeof(layout), "%s.layout", state);
	snprintf(cmd, sizeof(cmd), "python3 '%s/tests/hardening/mkimage.py' '%s' v1", getenv("BANGER_SOURCE_DIR"),
		 layout);
	CHECK(system(cmd) == 0);
	snprintf(lock, sizeof(lock), "%s/images", state);
	mkdir(lock, 0700);
	snprintf(lock, sizeof(lock), "%s/images/.lock-locked", state);
	pid_t holder = lock_holder_start(lock);
	snprintf(held, sizeof(held), "held by pid %d", (int)holder);

	banger_image_pull_options o = BANGER_IMAGE_PULL_OPTIONS_INIT;
	o.name = "locked";
	o.progress = on_lock_wait;
	lock_watch w = watch_for(BANGER_PROGRESS_OP_IMAGE_IMPORT, "locked", 1, 0);
	o.progress_payload = &w;
	banger_image *img = NULL;
	CHECK(banger_image_import(&img, ctx, layout, &o) == BANGER_ECANCELLED && img == NULL);
	CHECK(w.waits == 1 && strstr(w.detail, "waiting for the lock of image locked") && strstr(w.detail, held));
	CHECK(strstr(banger_error_last()->message, "cancelled"));
	CHECK(banger_image_lookup(&img, ctx, "locked") == BANGER_ENOTFOUND);

	w = watch_for(BANGER_PROGRESS_OP_IMAGE_IMPORT, "locked", 0, holder);
	CHECK(banger_image_import(&img, ctx, layout, &o) == 0 && img);
	CHECK(w.waits >= 1 && w.last_event == BANGER_PROGRESS_DONE);
	banger_image_free(img);
	CHECK(banger_image_remove(ctx, "locked") == 0);
}

/* A prune holds the blob cache lock (exclusive): a pull reports the wait
 * and a cancel in it ends the pull; when the prune lets go, the pull goes
 * on (to a registry that is not there). */
static void pull_waits_for_prune(banger_ctx *ctx, const char *state)
{
	char blobs[4200], lock[4300], cmd[4400], held[64];
	const char *cache = getenv("BANGER_CACHE_DIR");
	if (cache)
		snprintf(blobs, sizeof(blobs), "%s/blobs", cache);
	else
		snprintf(blobs, sizeof(blobs), "%s/cache/blobs", state);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", blobs);
	CHECK(system(cmd) == 0);
	snprintf(lock, sizeof(lock), "%s/.lock", blobs);
	pid_t holder = lock_holder_start(lock);
	snprintf(held, sizeof(held), "held by pid %d", (int)holder);

	banger_image_pull_options o = BANGER_IMAGE_PULL_OPTIONS_INIT;
	o.name = "cached";
	o.progress = on_lock_wait;
	lock_watch w = watch_for(BANGER_PROGRESS_OP_IMAGE_PULL, "cached", 1, 0);
	o.progress_payload = &w;
	banger_image *img = NULL;
	CHECK(banger_image_pull(&img, ctx, "localhost:1/none", &o) == BANGER_ECANCELLED && img == NULL);
	CHECK(w.waits == 1 && strstr(w.detail, "waiting for the blob cache lock") && strstr(w.detail, held));
	CHECK(strstr(banger_error_last()->message, "cancelled"));

	w = watch_for(BANGER_PROGRESS_OP_IMAGE_PULL, "cached", 0, holder);
	int rc = banger_image_pull(&img, ctx, "localhost:1/none", &o);
	CHECK(w.waits >= 1 && rc != 0 && rc != BANGER_ECANCELLED && img == NULL);
}

int main(int argc, char **argv)
{
	CHECK(argc == 2);
	banger_image_pull_options o = BANGER_IMAGE_PULL_OPTIONS_INIT;
	CHECK(o.version == BANGER_IMAGE_PULL_OPTIONS_VERSION);
	CHECK(banger_image_pull_options_init(&o, 999) == BANGER_EINVALID);
	CHECK(banger_image_pull_options_init(&o, BANGER_IMAGE_PULL_OPTIONS_VERSION) == 0);
	CHECK(o.name == NULL && o.flags == 0 && o.progress == NULL);
	CHECK(o.headroom_bytes == BANGER_IMAGE_HEADROOM_DEFAULT);

	char *s = NULL;
	CHECK(banger_image_ref_normalize(&s, "debian:bookworm") == 0);
	CHECK(strcmp(s, "docker.io/library/debian:bookworm") == 0);
	banger_free(s);
	CHECK(banger_image_ref_normalize(&s, "localhost:5000/a/b") == 0);
	CHECK(strcmp(s, "localhost:5000/a/b:latest") == 0);
	banger_free(s);
	CHECK(banger_image_ref_normalize(&s, "Bad/Name") == BANGER_EINVALID && s == NULL);
	CHECK(banger_error_last() && strstr(banger_error_last()->message, "lowercase"));

	banger_ctx_options co;
	banger_ctx_options_init(&co, BANGER_CTX_OPTIONS_VERSION);
	co.state_dir = argv[1];
	co.flags = BANGER_CTX_NO_RECONCILE;
	banger_ctx *ctx = NULL;
	CHECK(banger_ctx_open(&ctx, &co) == 0);

	banger_image_list *l = NULL;
	CHECK(banger_image_list_all(&l, ctx) == 0 && banger_image_list_count(l) == 0);
	CHECK(banger_image_list_get(l, 0) == NULL);
	banger_image_list_free(l);
	banger_image_list_free(NULL);

	banger_image *img = (banger_image *)&o; /* must be reset on failure */
	CHECK(banger_image_lookup(&img, ctx, "nope") == BANGER_ENOTFOUND && img == NULL);
	CHECK(banger_image_remove(ctx, "nope") == BANGER_ENOTFOUND);
	banger_image_free(NULL);
	CHECK(banger_image_name(NULL) == NULL && banger_image_rootfs_bytes(NULL) == 0);

	o.progress = on_progress;
	o.progress_payload = &progress_calls;
	img = (banger_image *)&o;
	CHECK(banger_image_pull(&img, ctx, "not a reference", &o) == BANGER_EINVALID && img == NULL);
	o.name = "Bad Name";
	CHECK(banger_image_pull(NULL, ctx, "debian", &o) == BANGER_EINVALID);
	o.name = NULL;
	o.platform = "linux";
	CHECK(banger_image_pull(NULL, ctx, "debian", &o) == BANGER_EINVALID);
	o.platform = NULL;
	o.kernel_ref = "no-such-kernel";
	CHECK(banger_image_pull(NULL, ctx, "debian", &o) == BANGER_ENOTFOUND);
	CHECK(strstr(banger_error_last()->message, "no-such-kernel"));
	o.kernel_ref = NULL;
	o.version = 42;
	CHECK(banger_image_pull(NULL, ctx, "debian", &o) == BANGER_EINVALID);
	o.version = BANGER_IMAGE_PULL_OPTIONS_VERSION;
	o.flags = 1u << 30;
	CHECK(banger_image_pull(NULL, ctx, "debian", &o) == BANGER_EINVALID);
	o.flags = 0;
	CHECK(banger_image_import(NULL, ctx, "/nonexistent/layout", &o) == BANGER_ENOTFOUND);
	CHECK(banger_image_import(NULL, ctx, argv[1], &o) == BANGER_EINVALID); /* not a layout */
	CHECK(progress_calls == 0);

	import_waits_for_lock(ctx, argv[1]);
	pull_waits_for_prune(ctx, argv[1]);
	banger_ctx_close(ctx);
	return 0;
}
