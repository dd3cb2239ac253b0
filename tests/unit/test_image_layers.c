/* Layers: tar parsing with budgets, OCI whiteout semantics, confinement
 * of hostile members, digests of the blob and of the uncompressed stream.
 * Layers are built in memory with libarchive's writer (which happily
 * writes hostile names). */
/* entries list only the fields they need */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "helpers.h"
#include "../../libbanger/image/image.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { F = 1, D, L, H, C, B, P };

typedef struct {
	const char *path;
	int type;
	unsigned mode;
	const char *data;   /* file content, or symlink/hardlink target */
	unsigned uid, gid;
	const char *xname, *xvalue;
	unsigned major, minor;
} ent;

static unsigned char *make_tar(const ent *es, size_t n, size_t *len, bool gzip)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax(a);
	if (gzip)
		archive_write_add_filter_gzip(a);
	size_t cap = 1 << 24;
	unsigned char *buf = malloc(cap);
	size_t used = 0;
	archive_write_set_bytes_in_last_block(a, 1);
	assert_int_equal(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		const ent *e = &es[i];
		struct archive_entry *ae = archive_entry_new();
		archive_entry_set_pathname(ae, e->path);
		archive_entry_set_uid(ae, e->uid);
		archive_entry_set_gid(ae, e->gid);
		archive_entry_set_mtime(ae, 1700000000, 123);
		unsigned mode = e->mode ? e->mode : (e->type == D ? 0755 : 0644);
		switch (e->type) {
		case F:
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_size(ae, e->data ? (la_int64_t)strlen(e->data) : 0);
			break;
		case D:
			archive_entry_set_filetype(ae, AE_IFDIR);
			break;
		case L:
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_symlink(ae, e->data);
			break;
		case H:
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_hardlink(ae, e->data);
			archive_entry_set_size(ae, 0);
			break;
		case C:
		case B:
			archive_entry_set_filetype(ae, e->type == C ? AE_IFCHR : AE_IFBLK);
			archive_entry_set_rdevmajor(ae, e->major);
			archive_entry_set_rdevminor(ae, e->minor);
			break;
		case P:
			archive_entry_set_filetype(ae, AE_IFIFO);
			break;
		}
		archive_entry_set_perm(ae, mode);
		if (e->xname)
			archive_entry_xattr_add_entry(ae, e->xname, e->xvalue, strlen(e->xvalue));
		assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
		if (e->type == F && e->data)
			archive_write_data(a, e->data, strlen(e->data));
		archive_entry_free(ae);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	*len = used;
	return buf;
}

/* gzip of arbitrary bytes (one member) */
static unsigned char *gzip_bytes(const unsigned char *data, size_t n, size_t *len)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_raw(a);
	archive_write_add_filter_gzip(a);
	size_t cap = n + (1 << 20);
	unsigned char *buf = malloc(cap);
	size_t used = 0;
	archive_write_set_bytes_in_last_block(a, 1);
	assert_int_equal(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
	struct archive_entry *ae = archive_entry_new();
	archive_entry_set_filetype(ae, AE_IFREG);
	archive_entry_set_pathname(ae, "x");
	archive_write_header(a, ae);
	size_t off = 0;
	while (off < n) {
		la_ssize_t w = archive_write_data(a, data + off, n - off);
		assert_true(w > 0);
		off += (size_t)w;
	}
	archive_entry_free(ae);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	*len = used;
	return buf;
}

static int memfd_of(const unsigned char *data, size_t n)
{
	int fd = memfd_create("layer", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	return fd;
}

typedef struct {
	bg_tree *t;
	bg_layer layers[8];
	size_t n;
	bg_limits lim;
	atomic_uint_fast64_t total;
} img;

static void img_init(img *m)
{
	memset(m, 0, sizeof(*m));
	assert_int_equal(bg_tree_new(&m->t), 0);
	bg_limits_default(&m->lim);
}

/* Read (and, when apply, apply) a layer; returns the banger code. */
static int layer_bytes(img *m, const unsigned char *blob, size_t len, bool apply)
{
	int fd = memfd_of(blob, len);
	bg_layer_read_opts o = { .limits = &m->lim, .total_bytes = &m->total, .sink = bg_mem_sink(),
				 .index = (uint32_t)m->n };
	bg_layer *l = &m->layers[m->n];
	int rc = bg_layer_read(l, fd, len, &o);
	close(fd);
	if (rc)
		return rc;
	m->n++;
	return apply ? bg_layer_apply(m->t, l, (uint32_t)(m->n - 1)) : 0;
}

static int layer(img *m, const ent *es, size_t n)
{
	size_t len;
	unsigned char *t = make_tar(es, n, &len, true);
	int rc = layer_bytes(m, t, len, true);
	free(t);
	return rc;
}

static void img_free(img *m)
{
	for (size_t i = 0; i < m->n; i++)
		bg_layer_free(&m->layers[i]);
	bg_tree_free(m->t);
}

static bg_inode *get(img *m, const char *path)
{
	bg_dentry *d = bg_tree_lookup_path(m->t, path);
	return d ? d->inode : NULL;
}

static void assert_content(bg_inode *i, const char *want)
{
	assert_non_null(i);
	assert_true(S_ISREG(i->mode));
	assert_int_equal(i->u.file->size, strlen(want));
	assert_memory_equal(i->u.file->mem, want, strlen(want));
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_metadata(void **state)
{
	(void)state;
	img m;
	img_init(&m);
	ent l1[] = {
		{ "./", D, 0755 },
		{ "./usr/", D, 0755 },
		{ "./usr/bin/", D, 0755 },
		{ "./usr/bin/su", F, 04755, "su-binary" },
		{ "./usr/bin/ping", F, 0755, "ping", 0, 0, "security.capability", "capdata!" },
		{ "./usr/bin/su2", H, 0, "./usr/bin/su" },
		{ "./bin", L, 0777, "usr/bin" },
		{ "./dev/", D, 0755 },
		{ "./dev/null", C, 0666, NULL, 0, 0, NULL, NULL, 1, 3 },
		{ "./dev/sda", B, 0660, NULL, 0, 6, NULL, NULL, 8, 0 },
		{ "./dev/big", C, 0600, NULL, 0, 0, NULL, NULL, 300, 70000 },
		{ "./run/fifo", P, 0600 },
		{ "./tmp/", D, 01777 },
		{ "./home/u/", D, 0750, NULL, 1000, 1000 },
		{ "./home/u/f", F, 0640, "x", 1000, 1000 },
	};
	assert_int_equal(layer(&m, l1, N(l1)), 0);
	bg_inode *su = get(&m, "usr/bin/su");
	assert_content(su, "su-binary");
	assert_int_equal(su->mode & 07777, 04755);
	assert_int_equal(su->nlink, 2);
	assert_ptr_equal(get(&m, "usr/bin/su2"), su);
	assert_int_equal(su->mtime, 1700000000);
	bg_inode *ping = get(&m, "usr/bin/ping");
	if (ping->nxattrs != 1)
		fail_msg("ping has %u xattrs", ping->nxattrs);
	assert_string_equal(ping->xattrs[0].name, "security.capability");
	assert_int_equal(ping->xattrs[0].len, 8);
	bg_inode *bin = get(&m, "bin");
	assert_true(S_ISLNK(bin->mode));
	assert_int_equal(bin->u.link.len, 7);
	assert_memory_equal(bin->u.link.target, "usr/bin", 7);
	bg_inode *null = get(&m, "dev/null");
	assert_true(S_ISCHR(null->mode));
	assert_int_equal(null->u.dev.major, 1);
	assert_int_equal(null->u.dev.minor, 3);
	assert_true(S_ISBLK(get(&m, "dev/sda")->mode));
	assert_int_equal(get(&m, "dev/sda")->gid, 6);
	assert_int_equal(get(&m, "dev/big")->u.dev.minor, 70000);
	assert_true(S_ISFIFO(get(&m, "run/fifo")->mode));
	assert_true(get(&m, "run")->implicit); /* no entry for run/ */
	assert_int_equal(get(&m, "tmp")->mode & 07777, 01777);
	assert_int_equal(get(&m, "home/u/f")->uid, 1000);
	assert_int_equal(get(&m, "home/u")->mode & 07777, 0750);
	uint64_t inodes, bytes;
	bg_tree_stats(m.t, &inodes, &bytes);
	assert_int_equal(inodes, 16); /* root + 15 (su2 shares su's inode) */
	img_free(&m);
}

static void test_whiteouts(void **state)
{
	(void)state;
	img m;
	img_init(&m);
	ent l1[] = {
		{ "a/", D }, { "a/b", F, 0, "b" }, { "a/c", F, 0, "c" }, { "a/keep", F, 0, "k" },
		{ "d/", D }, { "d/old1", F, 0, "o" }, { "d/sub/", D }, { "d/sub/old2", F, 0, "o" },
		{ "e/", D }, { "e/sub/", D }, { "e/sub/old", F, 0, "o" },
		{ "x", F, 0, "x1" }, { "gone/", D }, { "gone/deep/f", F, 0, "f" },
		{ "lnk", L, 0, "/etc" }, { "etc/", D }, { "etc/passwd", F, 0, "root" },
		{ "s", L, 0, "a" },
	};
	assert_int_equal(layer(&m, l1, N(l1)), 0);
	ent l2[] = {
		{ "a/.wh.b", F },                         /* deletes lower a/b */
		{ "a/new", F, 0, "n" }, { "a/.wh.new", F }, /* same layer: stays */
		{ "a/.wh.missing", F },                   /* nothing there: fine */
		{ "d/new", F, 0, "n" }, { "d/sub/", D }, { "d/sub/new2", F, 0, "n2" },
		{ "d/.wh..wh..opq", F },                  /* marker after its new children */
		{ "e/sub/new3", F, 0, "n3" },             /* no e/ or e/sub/ entry in this layer */
		{ "e/.wh..wh..opq", F },
		{ "x", F, 0, "x2" }, { "x", F, 0, "x3" }, /* duplicates: last wins */
		{ ".wh.gone", F },                        /* a whole subtree */
		{ "lnk/", D }, { "lnk/inside", F, 0, "i" }, /* a directory replaces a symlink */
		{ ".wh..wh.plnk", F },                    /* reserved: ignored */
		{ "s/.wh.c", F },                         /* whiteout through a symlink: stays in the tree */
	};
	assert_int_equal(layer(&m, l2, N(l2)), 0);
	assert_null(get(&m, "a/b"));
	assert_null(get(&m, "a/c")); /* removed via s -> a */
	assert_non_null(get(&m, "a/keep"));
	assert_content(get(&m, "a/new"), "n");
	assert_content(get(&m, "d/new"), "n");
	assert_content(get(&m, "d/sub/new2"), "n2");
	assert_null(get(&m, "d/old1"));
	assert_null(get(&m, "d/sub/old2"));
	assert_content(get(&m, "e/sub/new3"), "n3");
	assert_null(get(&m, "e/sub/old"));
	assert_content(get(&m, "x"), "x3");
	assert_null(get(&m, "gone"));
	assert_true(S_ISDIR(get(&m, "lnk")->mode));
	assert_content(get(&m, "lnk/inside"), "i");
	assert_null(get(&m, "etc/inside"));
	assert_content(get(&m, "etc/passwd"), "root");
	assert_null(get(&m, ".wh..wh.plnk"));
	/* a third layer re-adds what the second deleted */
	ent l3[] = { { "a/b", F, 0, "again" }, { "a/.wh.keep", F } };
	assert_int_equal(layer(&m, l3, N(l3)), 0);
	assert_content(get(&m, "a/b"), "again");
	assert_null(get(&m, "a/keep"));
	img_free(&m);
}

static void test_whiteout_same_layer_dir(void **state)
{
	(void)state;
	img m;
	img_init(&m);
	ent l1[] = { { "d/", D }, { "d/lower", F, 0, "l" } };
	assert_int_equal(layer(&m, l1, N(l1)), 0);
	/* this layer has d/ and its own child, and whites d out: lower content
	 * of d goes, this layer's stays */
	ent l2[] = { { "d/", D, 0700 }, { "d/upper", F, 0, "u" }, { ".wh.d", F } };
	assert_int_equal(layer(&m, l2, N(l2)), 0);
	assert_non_null(get(&m, "d"));
	assert_int_equal(get(&m, "d")->mode & 07777, 0700);
	assert_content(get(&m, "d/upper"), "u");
	assert_null(get(&m, "d/lower"));
	img_free(&m);
}

static void test_links(void **state)
{
	(void)state;
	img m;
	img_init(&m);
	ent l1[] = {
		{ "usr/bin/", D }, { "usr/bin/tool", F, 0755, "t" }, { "bin", L, 0, "usr/bin" },
		{ "f", F, 0, "data" }, { "abs", L, 0, "/usr/bin" },
	};
	assert_int_equal(layer(&m, l1, N(l1)), 0);
	ent l2[] = {
		{ "bin/newtool", F, 0755, "nt" },     /* through bin -> usr/bin (merged /usr) */
		{ "abs/abstool", F, 0755, "at" },     /* through an absolute symlink */
		{ "g", H, 0, "f" },                   /* hardlink into the lower layer */
		{ "h", H, 0, "/f" },                  /* absolute hardlink target: confined */
		{ "bin", L, 0, "usr/sbin" },          /* replacing a symlink never writes through it */
	};
	assert_int_equal(layer(&m, l2, N(l2)), 0);
	assert_content(get(&m, "usr/bin/newtool"), "nt");
	assert_content(get(&m, "usr/bin/abstool"), "at");
	bg_inode *f = get(&m, "f");
	assert_ptr_equal(get(&m, "g"), f);
	assert_ptr_equal(get(&m, "h"), f);
	assert_int_equal(f->nlink, 3);
	assert_memory_equal(get(&m, "bin")->u.link.target, "usr/sbin", 8);
	assert_true(S_ISDIR(get(&m, "usr/bin")->mode));
	/* replacing one name of a hardlinked file leaves the others */
	ent l3[] = { { "g", F, 0, "new g" } };
	assert_int_equal(layer(&m, l3, N(l3)), 0);
	assert_content(get(&m, "f"), "data");
	assert_int_equal(get(&m, "f")->nlink, 2);
	assert_content(get(&m, "g"), "new g");
	img_free(&m);
}

static void test_hostile(void **state)
{
	(void)state;
	/* each of these is refused */
	static const ent bad[][2] = {
		{ { "../escape", F, 0, "x" } },
		{ { "a/../../escape", F, 0, "x" } },
		{ { "ok", F, 0, "x" }, { "link", H, 0, "../../etc/shadow" } },
		{ { "link", H, 0, "nothere" } },
		{ { "d/", D }, { "hl", H, 0, "d" } },
		{ { ".", L, 0, "/etc" } },
		{ { "/", L, 0, "/tmp" } },
		{ { "./", F, 0, "x" } },
		{ { "a/.wh.", F } },
		{ { "a/.wh..", F } },
		{ { "s", L, 0, "" } },
	};
	for (size_t i = 0; i < N(bad); i++) {
		img m;
		img_init(&m);
		size_t n = bad[i][1].path ? 2 : 1;
		int rc = layer(&m, bad[i], n);
		if (rc == 0)
			fail_msg("hostile layer %zu (%s) accepted", i, bad[i][n - 1].path);
		assert_int_equal(rc, BANGER_EINVALID);
		img_free(&m);
	}
	/* these are confined to the tree */
	img m;
	img_init(&m);
	ent l1[] = {
		{ "/etc/abs", F, 0, "abs" },                 /* absolute member name */
		{ "out", L, 0, "../../../../tmp" },          /* relative escape */
		{ "outabs", L, 0, "/../../tmp/x" },
		{ "loop1", L, 0, "loop2" }, { "loop2", L, 0, "loop1" },
	};
	assert_int_equal(layer(&m, l1, N(l1)), 0);
	assert_content(get(&m, "etc/abs"), "abs");
	ent l2[] = {
		{ "out/pwned", F, 0, "p" },     /* written through: lands in the tree's /tmp */
		{ "outabs/pwned", F, 0, "q" },
		{ "out/.wh.pwned", F },         /* whiteouts through symlinks stay inside too */
	};
	assert_int_equal(layer(&m, l2, N(l2)), 0);
	assert_content(get(&m, "tmp/pwned"), "p"); /* same-layer whiteout keeps it */
	assert_content(get(&m, "tmp/x/pwned"), "q");
	ent l3[] = { { "loop1/f", F, 0, "x" } };
	assert_int_equal(layer(&m, l3, N(l3)), BANGER_EINVALID); /* symlink loop */
	img_free(&m);
}

/* A member name carries escape sequences (clear the screen, set the title,
 * fake colours): the error that names it must show them spelled out. */
static void test_hostile_name_in_error(void **state)
{
	(void)state;
	static const ent bad[][2] = {
		{ { "\x1b[2J\x1b]0;owned\x07/../../escape", F, 0, "x" } },
		{ { "\x1b[31mlink", H, 0, "nothere" } },
		{ { "s\x1b[1A", L, 0, "" } },
	};
	for (size_t i = 0; i < N(bad); i++) {
		img m;
		img_init(&m);
		assert_int_equal(layer(&m, bad[i], 1), BANGER_EINVALID);
		const char *msg = banger_error_last()->message;
		for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
			if (*p < 0x20 || *p == 0x7f || *p == 0x9b)
				fail_msg("raw control 0x%02x in \"%s\"", *p, msg);
		assert_non_null(strstr(msg, "\\x1b["));
		img_free(&m);
	}
}

static void test_budgets(void **state)
{
	(void)state;
	/* decompression bomb: 64 MiB of zeros in a 64 KiB gzip member */
	size_t zn = 64u << 20, blen;
	unsigned char *zeros = calloc(1, zn);
	unsigned char *bomb = gzip_bytes(zeros, zn, &blen);
	free(zeros);
	assert_true(blen < (1u << 20));
	img m;
	img_init(&m);
	m.lim.max_bytes = 4u << 20;
	assert_int_equal(layer_bytes(&m, bomb, blen, true), BANGER_EINVALID);
	assert_non_null(strstr(banger_error_last()->message, "limit"));
	free(bomb);
	img_free(&m);

	/* gzip inside gzip is not a layer */
	ent one[] = { { "f", F, 0, "x" } };
	size_t tl, g1, g2;
	unsigned char *tar = make_tar(one, 1, &tl, true);
	unsigned char *twice = gzip_bytes(tar, tl, &g2);
	(void)g1;
	img_init(&m);
	assert_int_equal(layer_bytes(&m, twice, g2, true), BANGER_EINVALID);
	assert_non_null(strstr(banger_error_last()->message, "nested"));
	img_free(&m);
	free(tar);
	free(twice);

	/* per-entry limits */
	char longname[400];
	memset(longname, 'a', sizeof(longname));
	longname[399] = '\0';
	ent longcomp[] = { { longname, F, 0, "x" } };
	img_init(&m);
	assert_int_equal(layer(&m, longcomp, 1), BANGER_EINVALID);
	img_free(&m);
	img_init(&m);
	m.lim.max_symlink = 8;
	ent longlink[] = { { "l", L, 0, "0123456789" } };
	assert_int_equal(layer(&m, longlink, 1), BANGER_EINVALID);
	img_free(&m);
	img_init(&m);
	m.lim.max_xattr_value = 4;
	ent bigx[] = { { "f", F, 0, "x", 0, 0, "user.big", "0123456789" } };
	assert_int_equal(layer(&m, bigx, 1), BANGER_EINVALID);
	img_free(&m);
	img_init(&m);
	m.lim.max_entries = 2;
	ent many[] = { { "a", F }, { "b", F }, { "c", F } };
	assert_int_equal(layer(&m, many, 3), BANGER_EINVALID);
	img_free(&m);
	/* PAX headers: a long name needs one; over the header budget it stops */
	char longpath[2100];
	memset(longpath, 'p', sizeof(longpath));
	longpath[2099] = '\0';
	for (size_t i = 200; i < sizeof(longpath) - 1; i += 200)
		longpath[i] = '/';
	ent paxed[] = { { longpath, F, 0, "x" }, { "after", F, 0, "y" } };
	img_init(&m);
	assert_int_equal(layer(&m, paxed, 2), 0);
	img_free(&m);
	img_init(&m);
	m.lim.max_header = 1024;
	assert_int_equal(layer(&m, paxed, 2), BANGER_EINVALID);
	assert_non_null(strstr(banger_error_last()->message, "extended headers"));
	img_free(&m);
	img_init(&m);
	m.lim.max_path = 10;
	ent deep[] = { { "aaaa/bbbb/cccc", F } };
	assert_int_equal(layer(&m, deep, 1), BANGER_EINVALID);
	img_free(&m);
}

static void test_digests(void **state)
{
	(void)state;
	ent es[] = { { "f", F, 0, "hello" }, { "d/", D }, { "d/g", F, 0, "world" } };
	size_t tl;
	unsigned char *tar = make_tar(es, N(es), &tl, false);
	char want_diff[BG_DIGEST_SIZE];
	bg_digest_of(want_diff, tar, tl);

	/* plain tar: digest == diff_id */
	img m;
	img_init(&m);
	assert_int_equal(layer_bytes(&m, tar, tl, true), 0);
	assert_string_equal(m.layers[0].diff_id, want_diff);
	assert_string_equal(m.layers[0].digest, want_diff);
	assert_int_equal(m.layers[0].bytes, tl);
	img_free(&m);

	/* two gzip members (pigz, some registries): one stream */
	size_t half = tl / 2, g1, g2;
	unsigned char *m1 = gzip_bytes(tar, half, &g1);
	unsigned char *m2 = gzip_bytes(tar + half, tl - half, &g2);
	unsigned char *both = malloc(g1 + g2);
	memcpy(both, m1, g1);
	memcpy(both + g1, m2, g2);
	char want_blob[BG_DIGEST_SIZE];
	bg_digest_of(want_blob, both, g1 + g2);
	img_init(&m);
	assert_int_equal(layer_bytes(&m, both, g1 + g2, true), 0);
	assert_string_equal(m.layers[0].diff_id, want_diff);
	assert_string_equal(m.layers[0].digest, want_blob);
	assert_content(get(&m, "d/g"), "world");
	img_free(&m);
	free(m1);
	free(m2);
	free(both);
	free(tar);
}

static void test_normalize(void **state)
{
	(void)state;
	bg_limits lim;
	bg_limits_default(&lim);
	char out[256];
	static const char *const ok[][2] = {
		{ "./a/b", "a/b" }, { "/a//b/", "a/b" }, { "a/./b", "a/b" }, { "./", "" }, { "/", "" },
		{ "...", "..." }, { "a/..b", "a/..b" }, { "//x", "x" },
	};
	for (size_t i = 0; i < N(ok); i++) {
		assert_int_equal(bg_layer_normalize(out, ok[i][0], &lim), 0);
		assert_string_equal(out, ok[i][1]);
	}
	assert_int_equal(bg_layer_normalize(out, "a/../b", &lim), BANGER_EINVALID);
	assert_int_equal(bg_layer_normalize(out, "..", &lim), BANGER_EINVALID);
	assert_int_equal(bg_layer_normalize(out, "/..", &lim), BANGER_EINVALID);
}

static void test_patch_text(void **state)
{
	(void)state;
	char *r = bg_resolv_conf_filter("search lan\nnameserver 127.0.0.53\nnameserver 10.0.0.1\n"
					"nameserver ::1\nnameserver  127.0.1.1 # local\noptions edns0\n"
					"nameserver fe80::1%eth0\nnameserver 0.0.0.0\n");
	assert_non_null(strstr(r, "search lan\n"));
	assert_non_null(strstr(r, "nameserver 10.0.0.1\n"));
	assert_non_null(strstr(r, "nameserver fe80::1%eth0\n"));
	assert_non_null(strstr(r, "options edns0\n"));
	assert_null(strstr(r, "127.0"));
	assert_null(strstr(r, "::1\n"));
	assert_null(strstr(r, "0.0.0.0"));
	bg_free(r);
	char *f = bg_fstab_patch("# comment about /root\nproc /proc proc defaults 0 0\n/dev/sdb1 /root ext4 defaults 0 2");
	assert_non_null(strstr(f, "# comment about /root\n"));
	assert_non_null(strstr(f, "proc /proc proc defaults 0 0\n"));
	assert_null(strstr(f, "/dev/sdb1"));
	assert_non_null(strstr(f, "/dev/vdb /root ext4 defaults,nofail 0 2\n"));
	bg_free(f);
	f = bg_fstab_patch(NULL);
	assert_string_equal(f, "# banger: the VM's work disk\n/dev/vdb /root ext4 defaults,nofail 0 2\n");
	bg_free(f);
}

static void test_patch_tree(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char *fb = bg_path_join(dir, "first-boot");
	char *rc_path = bg_path_join(dir, "resolv.conf");
	assert_int_equal(bg_write_file_atomic(fb, "#!/bin/sh\n", 10, 0755), 0);
	assert_int_equal(bg_write_file_atomic(rc_path, "nameserver 9.9.9.9\n", 19, 0644), 0);
	bg_patch_inputs in = { .first_boot = fb, .resolv_conf = rc_path };

	img m;
	img_init(&m);
	ent l1[] = {
		{ "etc/", D }, { "etc/ssh/", D }, { "etc/ssh/ssh_host_rsa_key", F, 0600, "k" },
		{ "etc/ssh/ssh_host_rsa_key.pub", F, 0644, "p" }, { "etc/ssh/sshd_config", F, 0644, "c" },
		{ "etc/fstab", F, 0640, "proc /proc proc defaults 0 0\n", 0, 42 },
		{ "etc/resolv.conf", L, 0, "../run/systemd/resolve/stub-resolv.conf" },
		{ "run/systemd/resolve/", D },
	};
	assert_int_equal(layer(&m, l1, N(l1)), 0);
	assert_int_equal(bg_image_patch(m.t, bg_mem_sink(), &in), 0);
	assert_null(get(&m, "etc/ssh/ssh_host_rsa_key"));
	assert_null(get(&m, "etc/ssh/ssh_host_rsa_key.pub"));
	assert_non_null(get(&m, "etc/ssh/sshd_config"));
	bg_inode *fbi = get(&m, "usr/local/libexec/banger-first-boot");
	assert_content(fbi, "#!/bin/sh\n");
	assert_int_equal(fbi->mode & 07777, 0755);
	bg_inode *fstab = get(&m, "etc/fstab");
	assert_int_equal(fstab->gid, 42); /* owner and mode kept */
	assert_int_equal(fstab->mode & 07777, 0640);
	assert_non_null(memmem(fstab->u.file->mem, fstab->u.file->size, "/dev/vdb /root", 14));
	bg_inode *res = get(&m, "etc/resolv.conf");
	assert_true(S_ISREG(res->mode)); /* the symlink was replaced, not followed */
	assert_non_null(memmem(res->u.file->mem, res->u.file->size, "9.9.9.9", 7));
	assert_null(get(&m, "run/systemd/resolve/stub-resolv.conf"));
	assert_true(S_ISDIR(get(&m, "root")->mode));
	img_free(&m);

	/* units are installed enabled (multi-user.target.wants), the session
	 * helper under its protocol name */
	char *unit = bg_path_join(dir, "agent.service");
	char *agent = bg_path_join(dir, "agent");
	char *helper = bg_path_join(dir, "banger-session");
	assert_int_equal(bg_write_file_atomic(unit, "[Unit]\n", 7, 0644), 0);
	assert_int_equal(bg_write_file_atomic(agent, "ELF", 3, 0755), 0);
	assert_int_equal(bg_write_file_atomic(helper, "ELF", 3, 0755), 0);
	bg_patch_inputs in2 = { .first_boot = fb, .first_boot_unit = unit, .agent = agent,
				.agent_unit = unit, .session_helper = helper, .resolv_conf = rc_path };
	img_init(&m);
	ent l0[] = { { "etc/", D } };
	assert_int_equal(layer(&m, l0, N(l0)), 0);
	assert_int_equal(bg_image_patch(m.t, bg_mem_sink(), &in2), 0);
	bg_inode *w = get(&m, "etc/systemd/system/multi-user.target.wants/banger-vsock-agent.service");
	assert_non_null(w);
	assert_true(S_ISLNK(w->mode));
	assert_string_equal(w->u.link.target, "/etc/systemd/system/banger-vsock-agent.service");
	w = get(&m, "etc/systemd/system/multi-user.target.wants/banger-first-boot.service");
	assert_non_null(w);
	assert_string_equal(w->u.link.target, "/etc/systemd/system/banger-first-boot.service");
	assert_non_null(get(&m, "etc/systemd/system/banger-vsock-agent.service"));
	bg_inode *sh = get(&m, "usr/local/libexec/banger/banger-session-p1");
	assert_non_null(sh);
	assert_int_equal(sh->mode & 07777, 0755);
	img_free(&m);
	free(unit);
	free(agent);
	free(helper);

	/* a symlinked /etc is refused: never edited through */
	img_init(&m);
	ent l2[] = { { "etc", L, 0, "/tmp/elsewhere" } };
	assert_int_equal(layer(&m, l2, N(l2)), 0);
	assert_int_equal(bg_image_patch(m.t, bg_mem_sink(), &in), BANGER_EINVALID);
	assert_null(get(&m, "tmp/elsewhere"));
	img_free(&m);
	img_init(&m);
	ent l3[] = { { "etc/", D }, { "etc/ssh", L, 0, "/keys" }, { "keys/ssh_host_x", F, 0, "k" } };
	assert_int_equal(layer(&m, l3, N(l3)), 0);
	assert_int_equal(bg_image_patch(m.t, bg_mem_sink(), &in), BANGER_EINVALID);
	img_free(&m);

	free(fb);
	free(rc_path);
	test_rmrf(dir);
	free(dir);
}

/* Reading and applying a layer fails cleanly (no crash, no leak) when
 * any allocation fails. */
static void test_alloc_failures(void **state)
{
	(void)state;
	ent l1[] = { { "a/", D }, { "a/f", F, 0, "x", 0, 0, "user.x", "y" }, { "a/l", L, 0, "f" },
		     { "a/h", H, 0, "a/f" }, { "a/.wh.gone", F }, { "b/c/d", F, 0, "deep" } };
	size_t len;
	unsigned char *tar = make_tar(l1, N(l1), &len, true);
	bool done = false;
	for (uint64_t n = 1; n < 500 && !done; n++) {
		img m;
		img_init(&m);
		bg_alloc_fail_at(n);
		int rc = layer_bytes(&m, tar, len, true);
		bg_alloc_fail_at(0);
		if (rc == 0)
			done = true;
		else
			assert_int_equal(rc, BANGER_ENOMEM);
		img_free(&m);
	}
	assert_true(done);
	free(tar);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metadata),
		cmocka_unit_test(test_whiteouts),
		cmocka_unit_test(test_whiteout_same_layer_dir),
		cmocka_unit_test(test_links),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_hostile_name_in_error),
		cmocka_unit_test(test_budgets),
		cmocka_unit_test(test_digests),
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_patch_text),
		cmocka_unit_test(test_patch_tree),
		cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
