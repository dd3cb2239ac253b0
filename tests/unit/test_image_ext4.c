/* The ext4 writer end to end on a small layer (data straight into the
 * image, metadata with libext2fs, resize, journal), read back with
 * e2fsck -fn and debugfs; and the images table. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "helpers.h"
#include "../../libbanger/image/image.h"
#include "../../libbanger/store/store.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static char *run_out(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	size_t n;
	while ((n = fread(buf + len, 1, cap - 1 - len, p)) > 0)
		len += n;
	buf[len] = '\0';
	pclose(p);
	return buf;
}

/* A layer with everything the writer must get exactly right. */
static unsigned char *make_layer(size_t *len)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax(a);
	archive_write_add_filter_gzip(a);
	size_t cap = 16 << 20;
	unsigned char *buf = malloc(cap);
	archive_write_set_bytes_in_last_block(a, 1);
	assert_int_equal(archive_write_open_memory(a, buf, cap, len), ARCHIVE_OK);
	struct {
		const char *path;
		unsigned type, mode, uid, gid;
		size_t size;
		const char *link;
		unsigned major, minor;
	} es[] = {
		{ "usr/", AE_IFDIR, 0755 },
		{ "usr/bin/", AE_IFDIR, 0755 },
		{ "usr/bin/su", AE_IFREG, 04755, 0, 0, 5000 },
		{ "usr/bin/su2", AE_IFREG, 0, 0, 0, 0, "usr/bin/su" },
		{ "usr/bin/big", AE_IFREG, 0644, 0, 0, 3u << 20 },
		{ "usr/bin/empty", AE_IFREG, 0600, 7, 8, 0 },
		{ "bin", AE_IFLNK, 0777, 0, 0, 0, "usr/bin" },
		{ "long", AE_IFLNK, 0777, 0, 0, 0,
		  "a/very/long/symlink/target/that/does/not/fit/in/the/inode/itself/at/all/0123456789" },
		{ "dev/", AE_IFDIR, 0755 },
		{ "dev/null", AE_IFCHR, 0666, 0, 0, 0, NULL, 1, 3 },
		{ "dev/big", AE_IFBLK, 0660, 0, 6, 0, NULL, 259, 70000 },
		{ "dev/fifo", AE_IFIFO, 0600 },
		{ "tmp/", AE_IFDIR, 01777 },
		{ "home/u/", AE_IFDIR, 02750, 1000, 1000 },
		{ "home/u/file", AE_IFREG, 0640, 100000, 100001, 10 },
	};
	unsigned char *data = malloc(3u << 20);
	for (size_t i = 0; i < (3u << 20); i++)
		data[i] = (unsigned char)(i * 7 + (i >> 12));
	for (size_t i = 0; i < sizeof(es) / sizeof(es[0]); i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, es[i].path);
		archive_entry_set_uid(e, es[i].uid);
		archive_entry_set_gid(e, es[i].gid);
		archive_entry_set_mtime(e, 1600000000 + (time_t)i, 0);
		if (es[i].link && es[i].type == AE_IFREG) {
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_hardlink(e, es[i].link);
		} else {
			archive_entry_set_filetype(e, es[i].type);
			archive_entry_set_perm(e, es[i].mode);
			if (es[i].link)
				archive_entry_set_symlink(e, es[i].link);
			archive_entry_set_size(e, (la_int64_t)es[i].size);
			archive_entry_set_rdevmajor(e, es[i].major);
			archive_entry_set_rdevminor(e, es[i].minor);
		}
		if (strcmp(es[i].path, "usr/bin/su") == 0)
			archive_entry_xattr_add_entry(e, "security.capability", "\x01\x00\x00\x02\x00\x20\x00\x00"
						      "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);
		if (strcmp(es[i].path, "home/u/file") == 0)
			archive_entry_xattr_add_entry(e, "user.note", "hello", 5);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		if (es[i].type == AE_IFREG && !es[i].link && es[i].size)
			archive_write_data(a, data, es[i].size);
		archive_entry_free(e);
	}
	free(data);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	return buf;
}

static void test_ext4_roundtrip(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char *img = bg_path_join(dir, "rootfs.ext4");
	size_t len;
	unsigned char *blob = make_layer(&len);
	int fd = memfd_create("layer", MFD_CLOEXEC);
	assert_int_equal(write(fd, blob, len), (ssize_t)len);
	free(blob);

	bg_ext4 *e;
	assert_int_equal(bg_ext4_create(&e, img, 64u << 20, 0), 0);
	bg_limits lim;
	bg_limits_default(&lim);
	atomic_uint_fast64_t total = 0;
	bg_layer_read_opts o = { .limits = &lim, .total_bytes = &total, .sink = bg_ext4_sink(e) };
	bg_layer l;
	assert_int_equal(bg_layer_read(&l, fd, len, &o), 0);
	close(fd);
	assert_int_equal(bg_ext4_overflow_blocks(e), 0);
	bg_tree *t;
	assert_int_equal(bg_tree_new(&t), 0);
	assert_int_equal(bg_layer_apply(t, &l, 0), 0);
	/* drop a file: its data blocks become a hole */
	bg_tree_remove(t, bg_tree_lookup_path(t, "usr/bin/big"));
	assert_int_equal(bg_ext4_write_tree(e, t), 0);
	uint64_t bytes;
	assert_int_equal(bg_ext4_finish(e, 0, 8u << 20, &bytes), 0);
	bg_ext4_free(e);
	bg_tree_free(t);
	bg_layer_free(&l);
	struct stat st;
	assert_int_equal(stat(img, &st), 0);
	assert_int_equal((uint64_t)st.st_size, bytes);
	assert_true(bytes < (24u << 20)); /* shrunk from 64 MiB to what is used + headroom */
	assert_true((uint64_t)st.st_blocks * 512 < (4u << 20)); /* sparse; the dropped data punched out */

	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "e2fsck -fn '%s' >/dev/null 2>&1; echo $?", img);
	char *out = run_out(cmd);
	assert_string_equal(out, "0\n");
	free(out);
	snprintf(cmd, sizeof(cmd),
		 "debugfs -R 'stat /usr/bin/su' '%s' 2>/dev/null; debugfs -R 'stat /dev/null' '%s' 2>/dev/null;"
		 "debugfs -R 'stat /dev/big' '%s' 2>/dev/null; debugfs -R 'stat /home/u/file' '%s' 2>/dev/null;"
		 "debugfs -R 'stat /long' '%s' 2>/dev/null; debugfs -R 'stat /home/u' '%s' 2>/dev/null;"
		 "debugfs -R 'stat /tmp' '%s' 2>/dev/null; debugfs -R 'ls -l /usr/bin' '%s' 2>/dev/null;"
		 "dumpe2fs -h '%s' 2>/dev/null",
		 img, img, img, img, img, img, img, img, img);
	out = run_out(cmd);
	static const char *const want[] = {
		"Type: regular    Mode:  04755", "Links: 2", "Size: 5000", "security.capability (20)",
		"Type: character special    Mode:  0666", "Device major/minor number: 01:03",
		"Type: block special    Mode:  0660", "major/minor number: 259:70000",
		"User: 100000   Group: 100001", "user.note (5) = \"hello\"",
		"Type: symlink", "Fast link dest:" /* of /bin, not printed here */,
		"Mode:  02750", "User:  1000   Group:  1000", "Mode:  01777",
		"has_journal", "metadata_csum", "Filesystem state:         clean",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (i == 11)
			continue;
		if (!strstr(out, want[i])) {
			fprintf(stderr, "%s\n", out);
			fail_msg("'%s' not in the debugfs output above", want[i]);
		}
	}
	assert_null(strstr(out, " big\n"));
	free(out);
	/* file content read back */
	snprintf(cmd, sizeof(cmd), "debugfs -R 'cat /usr/bin/su' '%s' 2>/dev/null | md5sum; "
		 "head -c 5000 /dev/zero | python3 -c \"import sys; d=bytes((i*7+(i>>12))&255 for i in range(5000)); "
		 "import hashlib; print(hashlib.md5(d).hexdigest()+'  -')\"", img);
	out = run_out(cmd);
	char *nl = strchr(out, '\n');
	assert_non_null(nl);
	assert_memory_equal(out, nl + 1, 32);
	free(out);
	free(img);
	test_rmrf(dir);
	free(dir);
}

/* A sparse 600 MiB file: more extents than the inode holds (an extent
 * tree with an index block), data at both ends, holes between. */
static void test_ext4_extent_tree(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char *img = bg_path_join(dir, "rootfs.ext4");
	struct archive *a = archive_write_new();
	archive_write_set_format_pax(a);
	size_t cap = 1 << 20, len = 0;
	unsigned char *buf = malloc(cap);
	archive_write_set_bytes_in_last_block(a, 1);
	assert_int_equal(archive_write_open_memory(a, buf, cap, &len), ARCHIVE_OK);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "sparse");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	uint64_t size = 600ull << 20;
	archive_entry_set_size(e, (la_int64_t)size);
	archive_entry_sparse_add_entry(e, 0, 4096);
	archive_entry_sparse_add_entry(e, (la_int64_t)(size - 4096), 4096);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	char head[4096], tail[4096];
	memset(head, 'H', sizeof(head));
	memset(tail, 'T', sizeof(tail));
	archive_write_data(a, head, sizeof(head));
	archive_write_data(a, tail, sizeof(tail));
	(void)tail;
	archive_entry_free(e);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	int fd = memfd_create("layer", MFD_CLOEXEC);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	free(buf);

	bg_ext4 *x;
	assert_int_equal(bg_ext4_create(&x, img, 700ull << 20, 0), 0);
	bg_limits lim;
	bg_limits_default(&lim);
	atomic_uint_fast64_t total = 0;
	bg_layer_read_opts o = { .limits = &lim, .total_bytes = &total, .sink = bg_ext4_sink(x) };
	bg_layer l;
	assert_int_equal(bg_layer_read(&l, fd, len, &o), 0);
	close(fd);
	assert_int_equal(bg_ext4_overflow_blocks(x), 0);
	assert_true(atomic_load(&total) >= size); /* holes count against the budget */
	bg_tree *t;
	assert_int_equal(bg_tree_new(&t), 0);
	assert_int_equal(bg_layer_apply(t, &l, 0), 0);
	assert_int_equal(bg_ext4_write_tree(x, t), 0);
	uint64_t bytes;
	assert_int_equal(bg_ext4_finish(x, 0, 4u << 20, &bytes), 0);
	bg_ext4_free(x);
	bg_tree_free(t);
	bg_layer_free(&l);

	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "e2fsck -fn '%s' 2>&1; echo rc=$?; debugfs -R 'stat /sparse' '%s' 2>/dev/null; "
		 "debugfs -R 'cat /sparse' '%s' 2>/dev/null | head -c 8192 | tr -d H | wc -c",
		 img, img, img);
	char *out = run_out(cmd);
	/* (libarchive's writer drops the data of the second region; the first
	 * must come back exactly, the rest as zeros) */
	if (!strstr(out, "rc=0") || !strstr(out, "Size: 629145600") || !strstr(out, "(ETB0)") ||
	    !strstr(out, "\n4096\n")) {
		fprintf(stderr, "%s\n", out);
		fail_msg("sparse file read back wrong");
	}
	free(out);
	free(img);
	test_rmrf(dir);
	free(dir);
}

static void test_store_images(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char *db = bg_path_join(dir, "b.db");
	bg_store s;
	assert_int_equal(bg_store_open(&s, db, NULL), 0);
	bg_image_record r = { .name = "deb", .ref = "docker.io/library/debian:bookworm",
			      .manifest_digest = "sha256:aa", .platform = "linux/amd64",
			      .config_json = "{}", .rootfs_path = "/x/rootfs.ext4", .rootfs_bytes = 123,
			      .prepared = 1, .created_at = 5 };
	assert_int_equal(bg_store_image_insert(&s, &r), 0);
	assert_int_equal(bg_store_image_insert(&s, &r), BANGER_EEXISTS);
	r.kernel_name = "nope";
	assert_int_equal(bg_store_image_insert(&s, &(bg_image_record){ .name = "k", .kernel_name = "nope",
		.rootfs_path = "/y", .created_at = 1 }), BANGER_ENOTFOUND);
	r.kernel_name = NULL;
	bg_image_record got;
	assert_int_equal(bg_store_image_get(&s, &got, "deb"), 0);
	assert_string_equal(got.ref, r.ref);
	assert_string_equal(got.platform, "linux/amd64");
	assert_int_equal(got.rootfs_bytes, 123);
	assert_int_equal(got.prepared, 1);
	assert_null(got.kernel_name);
	bg_image_record_clear(&got);
	r.rootfs_bytes = 456;
	r.manifest_digest = "sha256:bb";
	assert_int_equal(bg_store_image_upsert(&s, &r), 0);
	assert_int_equal(bg_store_image_get(&s, &got, "deb"), 0);
	assert_int_equal(got.rootfs_bytes, 456);
	assert_string_equal(got.manifest_digest, "sha256:bb");
	bg_image_record_clear(&got);
	assert_int_equal(bg_store_image_get(&s, &got, "none"), BANGER_ENOTFOUND);
	bg_image_record *all;
	size_t n;
	assert_int_equal(bg_store_image_list(&s, &all, &n), 0);
	assert_int_equal(n, 1);
	bg_image_records_free(all, n);
	/* a VM using it blocks the delete */
	assert_int_equal(bg_store_exec(&s, "INSERT INTO vms (id, name, image_name, state, vmm, vcpus, memory_mib, "
				       "disk_bytes, created_at, updated_at) VALUES ('abcd0001','vm1','deb','stopped',"
				       "'qemu',1,256,0,1,1)"), 0);
	assert_int_equal(bg_store_image_delete(&s, "deb"), BANGER_EBUSY);
	assert_non_null(strstr(banger_error_last()->message, "vm1"));
	assert_int_equal(bg_store_exec(&s, "DELETE FROM vms"), 0);
	assert_int_equal(bg_store_image_delete(&s, "deb"), 0);
	assert_int_equal(bg_store_image_delete(&s, "deb"), BANGER_ENOTFOUND);
	bg_store_close(&s);
	free(db);
	test_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ext4_roundtrip),
		cmocka_unit_test(test_ext4_extent_tree),
		cmocka_unit_test(test_store_images),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
