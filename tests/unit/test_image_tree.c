/* The shape of an image's tree: depth is bounded (BG_TREE_MAX_DEPTH), every
 * walk over the tree keeps no stack of its own (checked on a thread with a
 * small stack), a chain of symlinks cannot build a tree deeper than the
 * bound; and trees of many small entries get the inodes and directory
 * blocks they need (bg_ext4_fits, bg_ext4_create's inode count), written
 * and read back with e2fsck -fn and debugfs. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "helpers.h"
#include "../../libbanger/image/image.h"

#include <archive.h>
#include <archive_entry.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static char *run_out(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t cap = 1 << 20, len = 0, n;
	char *buf = malloc(cap);
	while ((n = fread(buf + len, 1, cap - 1 - len, p)) > 0)
		len += n;
	buf[len] = '\0';
	pclose(p);
	return buf;
}

static bg_inode *new_dir(bg_tree *t)
{
	bg_inode *i = bg_tree_new_inode(t, S_IFDIR | 0755);
	assert_non_null(i);
	return i;
}

/* A chain of directories named "a" under dir, levels deep, added by
 * layer; returns the last one and the code of the add that failed (0 if
 * none). */
static bg_inode *chain(bg_tree *t, bg_inode *dir, uint32_t levels, uint32_t layer, int *rc)
{
	*rc = 0;
	for (uint32_t i = 0; i < levels; i++) {
		bg_inode *n = new_dir(t);
		if ((*rc = bg_tree_add(t, dir, "a", 1, n, layer, NULL)))
			return dir;
		dir = n;
	}
	return dir;
}

/* 100,000 nested directories: refused past BG_TREE_MAX_DEPTH, with an
 * error that names the limit; what was built up to it is a sound tree. */
static void test_depth_bound(void **state)
{
	(void)state;
	bg_tree *t;
	assert_int_equal(bg_tree_new(&t), 0);
	int rc;
	bg_inode *last = chain(t, bg_tree_root(t), 100000, 0, &rc);
	assert_int_equal(rc, BANGER_EINVALID);
	assert_non_null(strstr(banger_error_last()->message, "too deep"));
	assert_non_null(strstr(banger_error_last()->message, "2048"));
	assert_int_equal(last->u.dir.depth, BG_TREE_MAX_DEPTH);
	/* a file may still live in the deepest directory */
	bg_inode *f = bg_tree_new_inode(t, S_IFREG | 0644);
	assert_int_equal(bg_tree_add(t, last, "f", 1, f, 0, NULL), 0);
	uint64_t inodes, bytes;
	bg_tree_stats(t, &inodes, &bytes);
	assert_int_equal(inodes, 1 + BG_TREE_MAX_DEPTH + 1);
	bg_tree_free(t);
}

/* ---- a layer of chained symlinks (the 80,000-level image) ---- */

static void add_entry(struct archive *a, const char *path, unsigned type, const char *link)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, type == AE_IFLNK ? 0777 : 0755);
	archive_entry_set_mtime(e, 1700000000, 0);
	if (link)
		archive_entry_set_symlink(e, link);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	archive_entry_free(e);
}

/* "a/a/.../a" (levels deep), then l1 -> it, "l1/a/.../a", l2 -> that, ...:
 * resolving lk follows k links, each adding levels - 1 directories. */
static unsigned char *chain_layer(unsigned levels, unsigned links, size_t *len)
{
	size_t cap = 8u << 20, plen = 2 * levels + 16;
	unsigned char *buf = malloc(cap);
	char *down = malloc(plen), *path = malloc(plen + 16), *link = malloc(plen + 16);
	assert_true(buf && down && path && link);
	struct archive *a = archive_write_new();
	archive_write_set_format_pax(a);
	archive_write_set_bytes_in_last_block(a, 1);
	assert_int_equal(archive_write_open_memory(a, buf, cap, len), ARCHIVE_OK);
	size_t n = 0;
	for (unsigned i = 0; i < levels; i++)
		n += (size_t)snprintf(down + n, plen - n, i ? "/a" : "a");
	add_entry(a, down, AE_IFDIR, NULL);
	add_entry(a, "l1", AE_IFLNK, down);
	const char *more = down + 2; /* levels - 1 of them */
	for (unsigned k = 1; k <= links; k++) {
		snprintf(path, plen + 16, "l%u/%s", k, more);
		add_entry(a, path, AE_IFDIR, NULL);
		if (k < links) {
			snprintf(link, plen + 16, "l%u", k + 1);
			add_entry(a, link, AE_IFLNK, path);
		}
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	free(down);
	free(path);
	free(link);
	return buf;
}

static int read_layer(bg_layer *l, const unsigned char *blob, size_t len)
{
	bg_limits lim;
	bg_limits_default(&lim);
	atomic_uint_fast64_t total = 0;
	int fd = memfd_create("layer", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, blob, len), (ssize_t)len);
	bg_layer_read_opts o = { .limits = &lim, .total_bytes = &total, .sink = bg_mem_sink() };
	int rc = bg_layer_read(l, fd, len, &o);
	close(fd);
	return rc;
}

static void test_symlink_chain_refused(void **state)
{
	(void)state;
	size_t len;
	unsigned char *blob = chain_layer(2000, 40, &len);
	bg_layer l;
	assert_int_equal(read_layer(&l, blob, len), 0);
	free(blob);
	bg_tree *t;
	assert_int_equal(bg_tree_new(&t), 0);
	assert_int_equal(bg_layer_apply(t, &l, 0), BANGER_EINVALID);
	const char *msg = banger_error_last()->message;
	if (!strstr(msg, "too deep") || !strstr(msg, "2048"))
		fail_msg("unexpected error: %.300s", msg);
	/* nothing deeper than the bound was built */
	uint32_t deepest = 0;
	bg_inode *root = bg_tree_root(t);
	for (bg_dentry *d = root->u.dir.first; d; d = bg_tree_next(root, d, true))
		if (S_ISDIR(d->inode->mode) && d->inode->u.dir.depth > deepest)
			deepest = d->inode->u.dir.depth;
	assert_int_equal(deepest, BG_TREE_MAX_DEPTH);
	bg_tree_free(t);
	bg_layer_free(&l);
}

/* ---- walks on a small stack ---- */

typedef struct {
	bg_tree *t;
	bg_ext4 *e;
	uint64_t inodes, bytes;
	int rc_opaque, rc_write;
	bool removed;
} walk_job;

/* Stats, an opaque whiteout over the whole deep tree (hide_lower),
 * removing a deep subtree and writing the ext4 image: none may use stack
 * in proportion to the depth. */
static void *walks(void *arg)
{
	walk_job *j = arg;
	bg_tree_stats(j->t, &j->inodes, &j->bytes);
	bg_inode *root = bg_tree_root(j->t);
	/* layer 1's opaque marker in /keep: layer 0's entries under it go */
	bg_entry opq = { .kind = BG_ENT_OPAQUE, .path = "keep/.wh..wh..opq" };
	bg_layer l = { .entries = &opq, .count = 1 };
	j->rc_opaque = bg_layer_apply(j->t, &l, 1);
	bg_dentry *gone = bg_tree_lookup(j->t, root, "gone", 4);
	if (gone) {
		bg_tree_remove(j->t, gone);
		j->removed = bg_tree_lookup(j->t, root, "gone", 4) == NULL;
	}
	j->rc_write = j->e ? bg_ext4_write_tree(j->e, j->t) : 0;
	return NULL;
}

static void run_small_stack(walk_job *j)
{
	pthread_attr_t attr;
	pthread_t th;
	assert_int_equal(pthread_attr_init(&attr), 0);
	/* 2048 levels of a recursive walk need far more than this */
	assert_int_equal(pthread_attr_setstacksize(&attr, 96u << 10), 0);
	assert_int_equal(pthread_create(&th, &attr, walks, j), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	pthread_attr_destroy(&attr);
}

/* Three chains BG_TREE_MAX_DEPTH deep: "deep" with a file and a hardlink
 * at every level; "keep", re-added by layer 1 with a layer-0 file at its
 * bottom that layer 1's opaque marker must hide; "gone", removed. */
static void test_deep_walks(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char *img = bg_path_join(dir, "rootfs.ext4");
	bg_tree *t;
	assert_int_equal(bg_tree_new(&t), 0);
	bg_inode *root = bg_tree_root(t), *bottom = NULL;
	const char *tops[] = { "deep", "keep", "gone" };
	for (size_t i = 0; i < 3; i++) {
		uint32_t layer = i == 1 ? 1 : 0;
		bg_inode *cur = new_dir(t);
		assert_int_equal(bg_tree_add(t, root, tops[i], strlen(tops[i]), cur, layer, NULL), 0);
		int rc;
		for (uint32_t k = 1; k < BG_TREE_MAX_DEPTH; k++) {
			if (i == 0) {
				bg_inode *f = bg_tree_new_inode(t, S_IFREG | 0644);
				assert_int_equal(bg_tree_add(t, cur, "f", 1, f, 0, NULL), 0);
				assert_int_equal(bg_tree_add(t, cur, "h", 1, f, 0, NULL), 0);
			}
			cur = chain(t, cur, 1, layer, &rc);
			assert_int_equal(rc, 0);
		}
		if (i == 1) {
			bottom = cur;
			bg_inode *f = bg_tree_new_inode(t, S_IFREG | 0644);
			assert_int_equal(bg_tree_add(t, cur, "old", 3, f, 0, NULL), 0);
		}
	}
	bg_ext4 *e;
	assert_int_equal(bg_ext4_create(&e, img, 64u << 20, 0), 0);
	uint64_t need = 0, short_blocks = 0;
	assert_true(bg_ext4_fits(e, t, &need, &short_blocks));
	walk_job j = { .t = t, .e = e };
	run_small_stack(&j);
	assert_int_equal(j.inodes, 1 + 3 * BG_TREE_MAX_DEPTH + (BG_TREE_MAX_DEPTH - 1) + 1);
	assert_int_equal(j.rc_opaque, 0);
	assert_true(j.removed);
	assert_int_equal(j.rc_write, 0);
	/* the opaque marker hid the file at the bottom, kept layer 1's chain */
	assert_int_equal(bottom->u.dir.depth, BG_TREE_MAX_DEPTH);
	assert_null(bottom->u.dir.first);
	uint64_t bytes;
	assert_int_equal(bg_ext4_finish(e, 0, 4u << 20, &bytes), 0);
	bg_ext4_free(e);
	bg_tree_free(t);

	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "e2fsck -fn '%s' 2>&1; echo rc=$?; debugfs -R 'ls /' '%s' 2>/dev/null",
		 img, img);
	char *out = run_out(cmd);
	if (!strstr(out, "rc=0") || !strstr(out, "deep") || !strstr(out, "keep") || strstr(out, "gone")) {
		fprintf(stderr, "%s\n", out);
		fail_msg("deep tree read back wrong");
	}
	free(out);
	free(img);
	test_rmrf(dir);
	free(dir);
}

/* ---- many small entries ---- */

/* n entries of one kind spread over 30 directories: empty directories,
 * or symlinks with targets too long for the inode (a Nix profile). */
static bg_tree *many(unsigned n, bool symlinks)
{
	bg_tree *t;
	assert_int_equal(bg_tree_new(&t), 0);
	bg_inode *root = bg_tree_root(t), *parents[30];
	char name[64];
	for (unsigned i = 0; i < 30; i++) {
		parents[i] = new_dir(t);
		snprintf(name, sizeof(name), "p%02u", i);
		assert_int_equal(bg_tree_add(t, root, name, strlen(name), parents[i], 0, NULL), 0);
	}
	static const char target[] = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz012-pkg-1.0/bin/tool";
	for (unsigned i = 0; i < n; i++) {
		bg_inode *c = bg_tree_new_inode(t, symlinks ? S_IFLNK | 0777 : S_IFDIR | 0755);
		assert_non_null(c);
		if (symlinks) {
			c->u.link.target = target;
			c->u.link.len = (uint32_t)strlen(target);
		}
		snprintf(name, sizeof(name), "e%05u", i);
		assert_int_equal(bg_tree_add(t, parents[i % 30], name, strlen(name), c, 0, NULL), 0);
	}
	return t;
}

static void build_many(unsigned n, bool symlinks, const char *probe)
{
	char *dir = test_tmpdir();
	char *img = bg_path_join(dir, "rootfs.ext4");
	bg_tree *t = many(n, symlinks);
	/* 64 MiB: 16384 inodes and 16,000 free blocks, too few */
	bg_ext4 *e;
	assert_int_equal(bg_ext4_create(&e, img, 64u << 20, 0), 0);
	uint64_t need = 0, short_blocks = 0;
	assert_false(bg_ext4_fits(e, t, &need, &short_blocks));
	assert_true(need >= n);
	assert_true(short_blocks > 0);
	bg_ext4_discard(e);
	/* as the build sizes its second round: the missing blocks, and the
	 * inodes through bg_ext4_create */
	uint64_t size = (64u << 20) + short_blocks * 4608 + (64u << 20);
	assert_int_equal(bg_ext4_create(&e, img, size, need + need / 8 + 1024), 0);
	assert_true(bg_ext4_fits(e, t, &need, &short_blocks));
	assert_int_equal(bg_ext4_write_tree(e, t), 0);
	uint64_t bytes;
	assert_int_equal(bg_ext4_finish(e, 0, 4u << 20, &bytes), 0);
	bg_ext4_free(e);
	bg_tree_free(t);

	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "e2fsck -fn '%s' >/dev/null 2>&1; echo rc=$?; "
		 "for p in 00 17 29; do debugfs -R \"ls /p$p\" '%s' 2>/dev/null; done | tr -s ' \\n' '\\n\\n' | "
		 "grep -c '^e[0-9]'; debugfs -R 'stat %s' '%s' 2>/dev/null",
		 img, img, probe, img);
	char *out = run_out(cmd);
	char want[32];
	snprintf(want, sizeof(want), "rc=0\n%u\n", 3 * (n / 30));
	if (strncmp(out, want, strlen(want)) != 0 || !strstr(out, symlinks ? "Type: symlink" : "Type: directory")) {
		fprintf(stderr, "%s\n", out);
		fail_msg("image of %u entries read back wrong (want %s)", n, want);
	}
	free(out);
	free(img);
	test_rmrf(dir);
	free(dir);
}

static void test_many_empty_dirs(void **state)
{
	(void)state;
	build_many(30000, false, "/p29/e29999");
}

static void test_symlink_farm(void **state)
{
	(void)state;
	build_many(20010, true, "/p29/e20009");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_depth_bound),
		cmocka_unit_test(test_symlink_chain_refused),
		cmocka_unit_test(test_deep_walks),
		cmocka_unit_test(test_many_empty_dirs),
		cmocka_unit_test(test_symlink_farm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
