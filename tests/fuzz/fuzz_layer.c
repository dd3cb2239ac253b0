/* Image layers: a tar stream (plain, gzip or zstd; ustar, GNU and PAX
 * headers, long names, sparse files, xattrs, hardlinks, whiteouts) read
 * into entries, applied to the in-memory image tree over a base layer,
 * applied a second time (replacing what the first application made), and
 * the tree then patched as banger patches every image.
 *
 * Checked: the tree stays well formed (every dentry's parent is the
 * directory it is listed in, names are non-empty, have no '/' and are not
 * "." or "..", directory entry counts add up, every non-directory inode's
 * nlink is the number of dentries pointing at it, no directory is deeper
 * than BG_TREE_MAX_DEPTH, however its symlinks chain); after a successful
 * patch banger's files are regular files with exactly the content banger
 * wrote, at their paths (a hostile layer's symlinks must not redirect
 * them), and no ssh_host_* key is left in /etc/ssh. */
#include "fuzz.h"
#include "../../libbanger/image/image.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIRST_BOOT "#!/bin/sh\n# banger first boot (fuzz)\n"
#define RESOLV "nameserver 192.0.2.53\n"

static unsigned char *base;
static size_t base_len;
static char first_boot_path[64], resolv_path[64];

/* ---- a base layer every input is applied over ---- */

static void add(struct archive *a, const char *path, unsigned type, unsigned mode, const char *data,
		const char *link)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, mode);
	archive_entry_set_mtime(e, 1700000000, 0);
	if (type == AE_IFLNK)
		archive_entry_set_symlink(e, link);
	if (link && type == AE_IFREG) {
		archive_entry_set_hardlink(e, link);
		archive_entry_set_size(e, 0);
	} else {
		archive_entry_set_size(e, data ? (la_int64_t)strlen(data) : 0);
	}
	if (archive_write_header(a, e) != ARCHIVE_OK)
		abort();
	if (data && !(link && type == AE_IFREG))
		archive_write_data(a, data, strlen(data));
	archive_entry_free(e);
}

static void make_base(void)
{
	size_t cap = 1 << 20, used = 0;
	base = malloc(cap);
	struct archive *a = archive_write_new();
	if (!base || !a || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_open_memory(a, base, cap, &used) != ARCHIVE_OK)
		abort();
	add(a, "etc", AE_IFDIR, 0755, NULL, NULL);
	add(a, "etc/fstab", AE_IFREG, 0644, "proc /proc proc defaults 0 0\n", NULL);
	add(a, "etc/resolv.conf", AE_IFLNK, 0777, NULL, "../run/systemd/resolve/stub-resolv.conf");
	add(a, "etc/ssh", AE_IFDIR, 0755, NULL, NULL);
	add(a, "etc/ssh/ssh_host_ed25519_key", AE_IFREG, 0600, "secret", NULL);
	add(a, "etc/ssh/sshd_config", AE_IFREG, 0644, "PermitRootLogin prohibit-password\n", NULL);
	add(a, "usr", AE_IFDIR, 0755, NULL, NULL);
	add(a, "usr/bin", AE_IFDIR, 0755, NULL, NULL);
	add(a, "usr/bin/sh", AE_IFREG, 0755, "\177ELF", NULL);
	add(a, "usr/bin/bash", AE_IFREG, 0755, NULL, "usr/bin/sh");
	add(a, "usr/lib", AE_IFDIR, 0755, NULL, NULL);
	add(a, "bin", AE_IFLNK, 0777, NULL, "usr/bin");
	add(a, "lib", AE_IFLNK, 0777, NULL, "/usr/lib");
	add(a, "run", AE_IFDIR, 0755, NULL, NULL);
	add(a, "tmp", AE_IFDIR, 01777, NULL, NULL);
	if (archive_write_close(a) != ARCHIVE_OK)
		abort();
	archive_write_free(a);
	base_len = used;
}

static void write_tmp(char *path, size_t cap, const char *name, const char *text)
{
	snprintf(path, cap, "/tmp/banger-fuzz-%d-%s", (int)getpid(), name);
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		abort();
}

static void cleanup(void)
{
	unlink(first_boot_path);
	unlink(resolv_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	make_base();
	write_tmp(first_boot_path, sizeof(first_boot_path), "first-boot", FIRST_BOOT);
	write_tmp(resolv_path, sizeof(resolv_path), "resolv", RESOLV);
	atexit(cleanup);
	return 0;
}

/* ---- checks ---- */

typedef struct {
	const bg_inode **v;
	size_t n, cap;
} refs;

static void note(refs *r, const bg_inode *i)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 256;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		FUZZ_CHECK(r->v);
	}
	r->v[r->n++] = i;
}

static void walk(const bg_inode *dir, refs *r, unsigned depth)
{
	FUZZ_CHECK(S_ISDIR(dir->mode));
	FUZZ_CHECK(depth <= BG_TREE_MAX_DEPTH && dir->u.dir.depth == depth);
	uint32_t count = 0;
	for (const bg_dentry *d = dir->u.dir.first; d; d = d->next) {
		count++;
		FUZZ_CHECK(d->parent == dir);
		FUZZ_CHECK(d->name && d->namelen > 0 && strlen(d->name) >= d->namelen);
		FUZZ_CHECK(!memchr(d->name, '/', d->namelen) && !memchr(d->name, '\0', d->namelen));
		FUZZ_CHECK(!(d->namelen == 1 && d->name[0] == '.'));
		FUZZ_CHECK(!(d->namelen == 2 && d->name[0] == '.' && d->name[1] == '.'));
		FUZZ_CHECK(d->inode);
		if (d->next)
			FUZZ_CHECK(d->next->prev == d);
		if (S_ISDIR(d->inode->mode)) {
			FUZZ_CHECK(d->inode->u.dir.self == d);
			walk(d->inode, r, depth + 1);
		} else {
			note(r, d->inode);
			if (S_ISREG(d->inode->mode))
				FUZZ_CHECK(d->inode->u.file);
		}
	}
	FUZZ_CHECK(count == dir->u.dir.count);
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (const bg_inode *const *)a, y = (uintptr_t) * (const bg_inode *const *)b;
	return x < y ? -1 : x > y;
}

static void check_tree(bg_tree *t)
{
	refs r = { 0 };
	walk(bg_tree_root(t), &r, 0);
	if (r.n)
		qsort(r.v, r.n, sizeof(*r.v), cmp_ptr);
	for (size_t i = 0; i < r.n;) {
		size_t j = i;
		while (j < r.n && r.v[j] == r.v[i])
			j++;
		FUZZ_CHECK(r.v[i]->nlink == j - i);
		i = j;
	}
	free(r.v);
	uint64_t inodes = 0, bytes = 0;
	bg_tree_stats(t, &inodes, &bytes);
	FUZZ_CHECK(inodes >= 1);
}

static void check_file(bg_tree *t, const char *path, const char *want)
{
	bg_dentry *d = bg_tree_lookup_path(t, path);
	FUZZ_CHECK(d && S_ISREG(d->inode->mode) && d->inode->u.file);
	const bg_fdata *f = d->inode->u.file;
	if (want)
		FUZZ_CHECK(f->size == strlen(want) && memcmp(f->mem, want, f->size) == 0);
}

/* ---- the target ---- */

static int read_layer(bg_layer *l, const uint8_t *data, size_t size, const bg_limits *lim,
		      atomic_uint_fast64_t *total, uint32_t index)
{
	int fd = memfd_create("fuzz-layer", MFD_CLOEXEC);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
	bg_layer_read_opts o = { .limits = lim, .total_bytes = total, .sink = bg_mem_sink(), .index = index };
	memset(l, 0, sizeof(*l));
	int rc = bg_layer_read(l, fd, size, &o);
	close(fd);
	if (rc == 0) {
		FUZZ_CHECK(bg_digest_valid(l->digest) && bg_digest_valid(l->diff_id));
		FUZZ_CHECK(l->count == 0 || l->entries);
	}
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bg_limits lim;
	bg_limits_default(&lim);
	/* the memory sink holds file data in RAM: keep hostile sizes small */
	lim.max_bytes = 64u << 20;
	lim.max_entries = 20000;
	atomic_uint_fast64_t total = 0;

	bg_tree *t = NULL;
	FUZZ_CHECK(bg_tree_new(&t) == 0);
	bg_layer l0, l1;
	FUZZ_CHECK(read_layer(&l0, base, base_len, &lim, &total, 0) == 0);
	FUZZ_CHECK(bg_layer_apply(t, &l0, 0) == 0);

	int rc = read_layer(&l1, data, size, &lim, &total, 1);
	if (rc == 0) {
		for (size_t i = 0; i < l1.count; i++) {
			const bg_entry *e = &l1.entries[i];
			FUZZ_CHECK(e->path && e->path[0] != '/');
			FUZZ_CHECK(e->kind >= BG_ENT_FILE && e->kind <= BG_ENT_OPAQUE);
		}
		int a1 = bg_layer_apply(t, &l1, 1);
		check_tree(t);
		int a2 = a1 == 0 ? bg_layer_apply(t, &l1, 2) : -1;
		check_tree(t);
		if (a1 == 0 && a2 == 0) {
			bg_patch_inputs in = { .first_boot = first_boot_path, .resolv_conf = resolv_path };
			int p = bg_image_patch(t, bg_mem_sink(), &in);
			check_tree(t);
			if (p == 0) {
				check_file(t, "usr/local/libexec/banger-first-boot", FIRST_BOOT);
				check_file(t, "etc/resolv.conf", NULL);
				check_file(t, "etc/fstab", NULL);
				bg_dentry *ssh = bg_tree_lookup_path(t, "etc/ssh");
				if (ssh && S_ISDIR(ssh->inode->mode))
					for (bg_dentry *d = ssh->inode->u.dir.first; d; d = d->next)
						FUZZ_CHECK(!(d->namelen > 9 && memcmp(d->name, "ssh_host_", 9) == 0));
			} else {
				FUZZ_CHECK(p == BANGER_EINVALID || p == BANGER_ENOMEM);
			}
		}
	}
	/* the tree points into the layers' arenas: free it first */
	bg_tree_free(t);
	if (rc == 0)
		bg_layer_free(&l1);
	bg_layer_free(&l0);
	return 0;
}
