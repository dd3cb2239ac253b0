/* The blob cache kept bounded: which blobs recorded images reference
 * (OCI manifests, indexes, `docker save` configs), banger_image_prune
 * (everything unreferenced, or oldest first down to keep_bytes; dry run;
 * leftovers of killed pulls), the blob_cache_max cap, the cache lock a
 * pull holds (a prune waits for it or reports busy, never removes what the
 * pull counts on), and the byte budget's default. */
#include "ctx_fixture.h"
#include "../../libbanger/image/image.h"
#include "../../libbanger/env/env.h"

#include <banger/banger.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
	char *dir;
	banger_ctx *ctx;
	const char *blobs;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->ctx = test_ctx_open(&f->dir, NULL);
	f->blobs = f->ctx->env.layout.blobs_dir;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	test_ctx_close(f->ctx, f->dir);
	free(f);
	return 0;
}

/* Put data in the cache; its digest into out.  mtime: seconds since the
 * epoch (the age prune goes by), 0 to leave it. */
static void put(fixture *f, const char *data, char out[BG_DIGEST_SIZE], int64_t mtime)
{
	assert_int_equal(bg_digest_of(out, data, strlen(data)), 0);
	assert_int_equal(bg_blob_put(f->blobs, out, data, strlen(data)), 0);
	if (mtime) {
		char *p = bg_blob_path(f->blobs, out);
		struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };
		assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
		bg_free(p);
	}
}

static bool cached(fixture *f, const char *digest)
{
	return bg_blob_cached(f->blobs, digest);
}

/* An OCI manifest for config and layers (digests and sizes from the cache). */
static void put_manifest(fixture *f, char out[BG_DIGEST_SIZE], const char *config, const char *const *layers,
			 size_t n)
{
	char buf[8192];
	int k = snprintf(buf, sizeof(buf),
			 "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
			 "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\","
			 "\"size\":1},\"layers\":[", config);
	for (size_t i = 0; i < n; i++)
		k += snprintf(buf + k, sizeof(buf) - (size_t)k,
			      "%s{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\","
			      "\"size\":1}", i ? "," : "", layers[i]);
	snprintf(buf + k, sizeof(buf) - (size_t)k, "]}");
	put(f, buf, out, 0);
}

static void record(fixture *f, const char *name, const char *digest)
{
	bg_image_record r = { 0 };
	r.name = (char *)name;
	r.manifest_digest = (char *)digest;
	r.rootfs_path = (char *)"/nonexistent/rootfs.ext4";
	r.created_at = 1;
	assert_int_equal(bg_store_image_insert(&f->ctx->env.store, &r), 0);
}

static void touch(fixture *f, const char *name)
{
	char p[4200];
	snprintf(p, sizeof(p), "%s/%s", f->blobs, name);
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	fputs("partial", fp);
	fclose(fp);
}

static bool exists(fixture *f, const char *name)
{
	char p[4200];
	snprintf(p, sizeof(p), "%s/%s", f->blobs, name);
	return access(p, F_OK) == 0;
}

/* Three images (an OCI manifest, an index over two platforms, a docker
 * save config) and blobs nothing references. */
typedef struct {
	char cfg_a[BG_DIGEST_SIZE], l1[BG_DIGEST_SIZE], l2[BG_DIGEST_SIZE], man_a[BG_DIGEST_SIZE];
	char cfg_b[BG_DIGEST_SIZE], man_b1[BG_DIGEST_SIZE], man_b2[BG_DIGEST_SIZE], idx_b[BG_DIGEST_SIZE];
	char l3[BG_DIGEST_SIZE], cfg_c[BG_DIGEST_SIZE];
	char orphan1[BG_DIGEST_SIZE], orphan2[BG_DIGEST_SIZE], orphan3[BG_DIGEST_SIZE];
} images;

static void make_images(fixture *f, images *im)
{
	put(f, "{\"config a\":1}", im->cfg_a, 1000);
	put(f, "layer one", im->l1, 1000);
	put(f, "layer two", im->l2, 1000);
	const char *la[] = { im->l1, im->l2 };
	put_manifest(f, im->man_a, im->cfg_a, la, 2);
	record(f, "a", im->man_a);

	/* an index: both platforms' manifests are kept; layer two is shared */
	put(f, "{\"config b\":1}", im->cfg_b, 1000);
	const char *lb[] = { im->l2 };
	put_manifest(f, im->man_b1, im->cfg_b, lb, 1);
	put_manifest(f, im->man_b2, im->cfg_b, la, 1);
	char idx[1024];
	snprintf(idx, sizeof(idx),
		 "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":["
		 "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":1},"
		 "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":1}]}",
		 im->man_b1, im->man_b2);
	put(f, idx, im->idx_b, 1000);
	record(f, "b", im->idx_b);

	/* docker save: the record names the config; the layers are its diff_ids */
	put(f, "uncompressed layer three", im->l3, 1000);
	char cfg[1024];
	snprintf(cfg, sizeof(cfg), "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
		 "\"diff_ids\":[\"%s\"]}}", im->l3);
	put(f, cfg, im->cfg_c, 1000);
	record(f, "c", im->cfg_c);

	put(f, "orphan number one (oldest)", im->orphan1, 2000);
	put(f, "orphan number two", im->orphan2, 3000);
	put(f, "orphan number three (newest)", im->orphan3, 4000);
}

static void test_prune_unreferenced(void **state)
{
	fixture *f = *state;
	images im;
	make_images(f, &im);
	touch(f, ".tmp-killedpull");
	touch(f, "not-a-blob");

	banger_image_prune_report r;
	banger_image_prune_options o = BANGER_IMAGE_PRUNE_OPTIONS_INIT;
	o.flags = BANGER_IMAGE_PRUNE_DRY_RUN;
	assert_int_equal(banger_image_prune(&r, f->ctx, &o), 0);
	assert_int_equal(r.blobs_removed, 3);
	assert_true(cached(f, im.orphan1) && cached(f, im.orphan2) && cached(f, im.orphan3));
	assert_true(exists(f, ".tmp-killedpull"));

	assert_int_equal(banger_image_prune(&r, f->ctx, NULL), 0);
	assert_int_equal(r.blobs_removed, 3);
	assert_int_equal(r.bytes_removed, strlen("orphan number one (oldest)") + strlen("orphan number two") +
						  strlen("orphan number three (newest)"));
	assert_int_equal(r.temp_removed, 1);
	assert_int_equal(r.blobs_referenced, 10);
	assert_int_equal(r.blobs_kept, 10);
	assert_false(cached(f, im.orphan1) || cached(f, im.orphan2) || cached(f, im.orphan3));
	const char *kept[] = { im.cfg_a, im.l1, im.l2, im.man_a, im.cfg_b, im.man_b1, im.man_b2, im.idx_b,
			       im.l3, im.cfg_c };
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		assert_true(cached(f, kept[i]));
	assert_false(exists(f, ".tmp-killedpull"));
	assert_true(exists(f, "not-a-blob")); /* not banger's to judge */

	/* an image removed: its own blobs go, the shared layer stays */
	assert_int_equal(bg_store_image_delete(&f->ctx->env.store, "a"), 0);
	assert_int_equal(banger_image_prune(&r, f->ctx, NULL), 0);
	assert_int_equal(r.blobs_removed, 2); /* man_a, cfg_a */
	assert_false(cached(f, im.man_a) || cached(f, im.cfg_a));
	assert_true(cached(f, im.l2) && cached(f, im.idx_b) && cached(f, im.cfg_c) && cached(f, im.l3));
	/* l1 stays: the index's other platform lists it */
	assert_true(cached(f, im.l1) && cached(f, im.man_b2));

	/* nothing recorded: everything goes */
	assert_int_equal(bg_store_image_delete(&f->ctx->env.store, "b"), 0);
	assert_int_equal(bg_store_image_delete(&f->ctx->env.store, "c"), 0);
	assert_int_equal(banger_image_prune(&r, f->ctx, NULL), 0);
	assert_int_equal(r.blobs_kept, 0);
	assert_int_equal(r.bytes_kept, 0);
}

static void test_keep_evicts_oldest_first(void **state)
{
	fixture *f = *state;
	images im;
	make_images(f, &im);
	banger_image_prune_report r;
	assert_int_equal(banger_image_prune(&r, f->ctx, &(banger_image_prune_options){
		BANGER_IMAGE_PRUNE_OPTIONS_VERSION, 0, 0, BANGER_IMAGE_PRUNE_DRY_RUN }), 0);
	uint64_t referenced = r.bytes_referenced;
	/* room for the referenced blobs and the two newest orphans */
	banger_image_prune_options o = BANGER_IMAGE_PRUNE_OPTIONS_INIT;
	o.keep_bytes = referenced + strlen("orphan number two") + strlen("orphan number three (newest)");
	assert_int_equal(banger_image_prune(&r, f->ctx, &o), 0);
	assert_int_equal(r.blobs_removed, 1);
	assert_false(cached(f, im.orphan1));
	assert_true(cached(f, im.orphan2) && cached(f, im.orphan3));
	assert_int_equal(r.bytes_kept, o.keep_bytes);
	/* a cap below what images use: every unreferenced blob goes, no more */
	o.keep_bytes = 1;
	assert_int_equal(banger_image_prune(&r, f->ctx, &o), 0);
	assert_int_equal(r.blobs_removed, 2);
	assert_int_equal(r.bytes_kept, referenced);
	assert_true(cached(f, im.l1) && cached(f, im.cfg_c));
}

static void test_cap_after_pull(void **state)
{
	fixture *f = *state;
	images im;
	make_images(f, &im);
	/* under the default cap (20G): nothing happens */
	bg_blob_cache_enforce_cap(&f->ctx->env);
	assert_true(cached(f, im.orphan1) && cached(f, im.orphan2) && cached(f, im.orphan3));
	banger_image_prune_report r;
	assert_int_equal(banger_image_prune(&r, f->ctx, &(banger_image_prune_options){
		BANGER_IMAGE_PRUNE_OPTIONS_VERSION, 0, 0, BANGER_IMAGE_PRUNE_DRY_RUN }), 0);
	char cfg[128];
	snprintf(cfg, sizeof(cfg), "blob_cache_max = %llu\n",
		 (unsigned long long)(r.bytes_referenced + strlen("orphan number three (newest)")));
	assert_int_equal(bg_config_parse(&f->ctx->env.config, cfg, "test"), 0);
	bg_blob_cache_enforce_cap(&f->ctx->env);
	assert_false(cached(f, im.orphan1) || cached(f, im.orphan2));
	assert_true(cached(f, im.orphan3) && cached(f, im.l1));
	/* a bad value is refused when the configuration is read (file:line),
	 * and the cap in force stays as it was */
	assert_int_equal(bg_config_parse(&f->ctx->env.config, "blob_cache_max = lots\n", "test"), BANGER_EINVALID);
	bg_blob_cache_enforce_cap(&f->ctx->env);
	assert_true(cached(f, im.orphan3));
}

static void test_pull_holds_the_cache(void **state)
{
	fixture *f = *state;
	images im;
	make_images(f, &im);
	touch(f, ".tmp-old");
	/* a pull enters the cache: alone, it clears what killed pulls left */
	bg_lock pull = BG_LOCK_INIT;
	assert_int_equal(bg_blob_cache_enter(&f->ctx->env, &pull, NULL), 0);
	assert_false(exists(f, ".tmp-old"));
	/* it downloads a blob for an image it has not recorded yet */
	char fresh[BG_DIGEST_SIZE];
	put(f, "a layer a pull just downloaded", fresh, 0);
	touch(f, ".tmp-downloading");
	/* a second pull may enter too, and must not sweep the first one's file */
	bg_lock other = BG_LOCK_INIT;
	assert_int_equal(bg_blob_cache_enter(&f->ctx->env, &other, NULL), 0);
	assert_true(exists(f, ".tmp-downloading"));
	bg_lock_release(&other);
	/* a prune meanwhile: busy, nothing removed */
	banger_image_prune_report r = { .blobs_removed = 99 };
	assert_int_equal(banger_image_prune(&r, f->ctx, NULL), BANGER_EBUSY);
	assert_non_null(strstr(banger_error_last()->message, "pull or import"));
	assert_int_equal(r.blobs_removed, 0);
	banger_image_prune_options o = BANGER_IMAGE_PRUNE_OPTIONS_INIT;
	o.timeout_ms = 50;
	assert_int_equal(banger_image_prune(&r, f->ctx, &o), BANGER_EBUSY);
	assert_int_equal(bg_config_parse(&f->ctx->env.config, "blob_cache_max = 0\n", "test"), 0);
	bg_blob_cache_enforce_cap(&f->ctx->env); /* over the cap, but skipped while the pull runs */
	assert_true(cached(f, fresh) && cached(f, im.orphan1) && exists(f, ".tmp-downloading"));
	/* the pull records its image and leaves */
	record(f, "fresh", fresh);
	bg_lock_release(&pull);
	assert_int_equal(banger_image_prune(&r, f->ctx, NULL), 0);
	assert_true(cached(f, fresh));
	assert_false(cached(f, im.orphan1));
	assert_false(exists(f, ".tmp-downloading"));
}

static void test_options_and_budget(void **state)
{
	fixture *f = *state;
	banger_image_prune_options o;
	assert_int_equal(banger_image_prune_options_init(&o, 7), BANGER_EINVALID);
	assert_int_equal(banger_image_prune_options_init(&o, BANGER_IMAGE_PRUNE_OPTIONS_VERSION), 0);
	assert_int_equal(o.keep_bytes, 0);
	o.flags = 1u << 9;
	assert_int_equal(banger_image_prune(NULL, f->ctx, &o), BANGER_EINVALID);
	o.flags = 0;
	o.version = 2;
	assert_int_equal(banger_image_prune(NULL, f->ctx, &o), BANGER_EINVALID);
	assert_int_equal(banger_image_prune(NULL, NULL, NULL), BANGER_EINVALID);
	assert_int_equal(banger_image_prune(NULL, f->ctx, NULL), 0); /* empty cache */

	uint64_t b = 0;
	assert_int_equal(bg_image_budget(&f->ctx->env, 0, &b), 0);
	assert_int_equal(b, 64ull << 30);
	assert_int_equal(bg_image_budget(&f->ctx->env, 12345, &b), 0);
	assert_int_equal(b, 12345);
	assert_int_equal(bg_config_parse(&f->ctx->env.config, "image_max_bytes = 2G\n", "test"), 0);
	assert_int_equal(bg_image_budget(&f->ctx->env, 0, &b), 0);
	assert_int_equal(b, 2ull << 30);
	/* a budget of nothing is refused at load */
	assert_int_equal(bg_config_parse(&f->ctx->env.config, "image_max_bytes = 0\n", "test"), BANGER_EINVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_prune_unreferenced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keep_evicts_oldest_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cap_after_pull, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pull_holds_the_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_options_and_budget, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
