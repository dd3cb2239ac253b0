/* Allocation failure in banger_image_pull from a real registry on
 * loopback (started by test-alloc-pull.sh, which exports
 * BANGER_TEST_IMAGE=ADDR/REPO:TAG for a two-layer image).
 *
 * Each child pulls into a fresh state root (so every run downloads,
 * unpacks, builds the ext4 image and patches it) with the Nth allocation
 * failing.  After a failure: no image recorded, nothing under images/
 * (no half-built rootfs, no staging directory), only complete, verified
 * blobs in the cache, PRAGMA integrity_check "ok".  After a success: the
 * image is recorded and its rootfs passes e2fsck. */
#include "alloc_fail.h"
#include "../../libbanger/env/env.h"
#include "../../libbanger/image/image.h"

#include <dirent.h>
#include <sqlite3.h>

static char *base_dir;
static const char *image_ref;

static struct {
	char *dir;
	banger_ctx *ctx;
} C;

static int setup(void *arg)
{
	(void)arg;
	C.dir = bg_sprintf("%s/c%d", base_dir, (int)getpid());
	char *state = bg_sprintf("%s/state", C.dir);
	banger_ctx_options o = BANGER_CTX_OPTIONS_INIT;
	o.state_dir = state;
	int rc = state ? banger_ctx_open(&C.ctx, &o) : -1;
	bg_free(state);
	return rc;
}

static void teardown(void *arg)
{
	(void)arg;
	banger_ctx_close(C.ctx);
	C.ctx = NULL;
	if (C.dir) {
		char cmd[4200];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", C.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", C.dir);
	}
	bg_free(C.dir);
	C.dir = NULL;
}

static int pull_op(void *arg)
{
	(void)arg;
	banger_image_pull_options o = BANGER_IMAGE_PULL_OPTIONS_INIT;
	o.name = "tiny";
	o.max_parallel = 1; /* the allocation count stays (nearly) the same run to run */
	return banger_image_pull(NULL, C.ctx, image_ref, &o);
}

static int count_entries(const char *dir, bool blobs_only_hex)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (blobs_only_hex) {
			/* a cached blob is named by its digest and must match it */
			char digest[BG_DIGEST_SIZE + 256];
			snprintf(digest, sizeof(digest), "sha256:%s", e->d_name);
			if (!bg_digest_valid(digest) || !bg_blob_cached(dir, digest)) {
				fprintf(stderr, "blob cache holds %s\n", e->d_name);
				n++;
				continue;
			}
			char *data = NULL;
			size_t len = 0;
			if (bg_blob_read(dir, digest, 64u << 20, &data, &len) != 0) {
				fprintf(stderr, "cached blob %s does not verify\n", e->d_name);
				n++;
			}
			bg_free(data);
			continue;
		}
		if (strncmp(e->d_name, ".lock-", 6) == 0)
			continue; /* per-name pull locks stay, as lock files do */
		fprintf(stderr, "left in %s: %s\n", dir, e->d_name);
		n++;
	}
	closedir(d);
	return n;
}

static int integrity_ok(void)
{
	sqlite3 *h = NULL;
	int ok = 0;
	if (sqlite3_open_v2(C.ctx->env.layout.db_path, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW)
			ok = strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
		sqlite3_finalize(st);
	}
	sqlite3_close(h);
	return ok;
}

static int pull_verify(void *arg, int rc)
{
	(void)arg;
	int bad = 0;
	banger_image *img = NULL;
	int lrc = banger_image_lookup(&img, C.ctx, "tiny");
	if (!integrity_ok()) {
		fprintf(stderr, "integrity_check failed\n");
		bad = 1;
	}
	if (count_entries(C.ctx->env.layout.blobs_dir, true))
		bad = 1;
	if (rc != 0) {
		if (lrc != BANGER_ENOTFOUND) {
			fprintf(stderr, "a failed pull left the image recorded (lookup %d)\n", lrc);
			bad = 1;
		}
		if (count_entries(C.ctx->env.layout.images_dir, false))
			bad = 1;
	} else {
		if (lrc != 0) {
			fprintf(stderr, "pull succeeded but the image is not recorded\n");
			bad = 1;
		} else {
			char cmd[4200];
			snprintf(cmd, sizeof(cmd), "e2fsck -fn '%s' >/dev/null 2>&1", banger_image_rootfs_path(img));
			if (system(cmd) != 0) {
				fprintf(stderr, "the rootfs does not pass e2fsck\n");
				bad = 1;
			}
			/* a success despite the failed allocation built the same tree:
			 * the second layer's file, its whiteout, the patch */
			snprintf(cmd, sizeof(cmd),
				 "f='%s'; [ \"$(debugfs -R 'cat /etc/hostname' \"$f\" 2>/dev/null)\" = tiny2 ] && "
				 "debugfs -R 'stat /srv/data' \"$f\" 2>/dev/null | grep -q 'Size: 3000' && "
				 "! debugfs -R 'stat /var/lib/old' \"$f\" 2>&1 | grep -q 'Inode:' && "
				 "debugfs -R 'stat /usr/local/libexec/banger-first-boot' \"$f\" 2>/dev/null | grep -q 'Type: regular'",
				 banger_image_rootfs_path(img));
			if (system(cmd) != 0) {
				fprintf(stderr, "the rootfs does not hold the image's tree\n");
				bad = 1;
			}
		}
	}
	banger_image_free(img);
	return bad ? -1 : 0;
}

int main(void)
{
	image_ref = getenv("BANGER_TEST_IMAGE");
	if (!image_ref || !*image_ref) {
		printf("SKIP: BANGER_TEST_IMAGE is not set (run through test-alloc-pull.sh)\n");
		return 77;
	}
	const char *tmp = getenv("TMPDIR");
	base_dir = bg_sprintf("%s/banger-allocpull-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!base_dir || !mkdtemp(base_dir))
		return 1;
	char *run = bg_sprintf("%s/run", base_dir);
	setenv("BANGER_RUNTIME_DIR", run, 1);
	setenv("DOCKER_CONFIG", base_dir, 1); /* no credentials from the host */
	bg_free(run);

	af_opts o = { "banger_image_pull (local registry)", setup, pull_op, pull_verify, teardown, NULL, 200, 80 };
	af_result r = af_run(&o);
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", base_dir);
	free(base_dir);
	return r.bad || r.other_codes || r.runs < 2 ? 1 : 0;
}
