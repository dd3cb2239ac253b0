/* The identity disk's archive, read as the guest reads it: its layout
 * (plain ustar headers, no pax, 512-byte records, two zero blocks at
 * the end), then extracted by the guest's own tar-less reader (the
 * functions of guest/first-boot/banger-first-boot, run by /bin/sh) and
 * by tar. */
#include "helpers.h"
#include "../../libbanger/vm/vm_internal.h"

#include <sys/stat.h>
#include <unistd.h>

/* Sizes around a record boundary, so padding is exercised. */
static char d511[511], d512[512], d513[513];

static const bg_identity_file files[] = {
	{ "banger/", 0755, NULL, 0 },
	{ "banger/hostname", 0644, "box\n", 4 },
	{ "banger/network.env", 0644, d511, sizeof(d511) },
	{ "banger/ssh_host_ed25519_key", 0600, d512, sizeof(d512) },
	{ "banger/authorized_keys", 0644, d513, sizeof(d513) },
};

static void fill(void)
{
	for (size_t i = 0; i < sizeof(d513); i++) {
		char c = (char)('a' + i % 26);
		if (i < sizeof(d511))
			d511[i] = i % 64 == 63 ? '\n' : c;
		if (i < sizeof(d512))
			d512[i] = (char)('A' + i % 26);
		d513[i] = i % 50 == 49 ? '\n' : (char)('0' + i % 10);
	}
}

static unsigned long long octal_field(const unsigned char *h, size_t off, size_t len)
{
	char buf[16] = "";
	memcpy(buf, h + off, len);
	return strtoull(buf, NULL, 8);
}

static void test_layout(void **state)
{
	(void)state;
	fill();
	bg_buf b = BG_BUF_INIT;
	assert_int_equal(bg_identity_archive(&b, files, BG_ARRAY_SIZE(files)), 0);
	/* one header per member, data rounded up to 512, then two zero
	 * blocks: the size the hand-written writer produced */
	size_t want = 1024;
	for (size_t i = 0; i < BG_ARRAY_SIZE(files); i++)
		want += 512 + (files[i].len + 511) / 512 * 512;
	assert_int_equal(b.len, want);
	const unsigned char *p = (const unsigned char *)b.data;
	size_t off = 0;
	for (size_t i = 0; i < BG_ARRAY_SIZE(files); i++) {
		const unsigned char *h = p + off;
		assert_string_equal((const char *)h, files[i].name);
		assert_memory_equal(h + 257, "ustar\0" "00", 8);
		assert_int_equal(h[156], files[i].data ? '0' : '5'); /* never 'x' or 'g' (pax) */
		assert_int_equal(h[345], '\0');                       /* no prefix needed */
		assert_int_equal(octal_field(h, 100, 8) & 07777, files[i].mode);
		assert_int_equal(octal_field(h, 108, 8), 0);
		assert_int_equal(octal_field(h, 116, 8), 0);
		assert_string_equal((const char *)h + 265, "root");
		assert_int_equal(octal_field(h, 124, 12), files[i].len);
		unsigned sum = 0;
		for (size_t k = 0; k < 512; k++)
			sum += k >= 148 && k < 156 ? ' ' : h[k];
		assert_int_equal(octal_field(h, 148, 8), sum);
		if (files[i].len)
			assert_memory_equal(h + 512, files[i].data, files[i].len);
		off += 512 + (files[i].len + 511) / 512 * 512;
	}
	for (; off < b.len; off++)
		assert_int_equal(p[off], 0);
	bg_buf_free(&b);
}

/* Run script under /bin/sh; its exit status. */
static int sh(const char *script)
{
	char *cmd = bg_shell_quote(script);
	assert_non_null(cmd);
	char *line = bg_sprintf("/bin/sh -c %s", cmd);
	int st = system(line);
	bg_free(cmd);
	bg_free(line);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void check_extracted(const char *dir)
{
	for (size_t i = 1; i < BG_ARRAY_SIZE(files); i++) {
		char *path = bg_path_join(dir, files[i].name);
		char *got = NULL;
		size_t len = 0;
		assert_int_equal(bg_read_file(&got, &len, path, 1 << 16), 0);
		assert_int_equal(len, files[i].len);
		assert_memory_equal(got, files[i].data, len);
		bg_free(got);
		bg_free(path);
	}
}

static void test_guest_reads_it(void **state)
{
	(void)state;
	const char *src = getenv("BANGER_SOURCE_DIR");
	if (!src)
		skip();
	fill();
	bg_buf b = BG_BUF_INIT;
	assert_int_equal(bg_identity_archive(&b, files, BG_ARRAY_SIZE(files)), 0);
	char *dir = test_tmpdir();
	char *img = bg_path_join(dir, "identity.img");
	assert_int_equal(bg_write_file_atomic(img, b.data, b.len, 0600), 0);
	bg_buf_free(&b);

	/* the guest's reader, taken from the script itself */
	char *script = bg_sprintf("set -eu; d=%s; mkdir \"$d/guest\" \"$d/work\"; WORK_DIR=\"$d/work\"; "
				  "eval \"$(sed -n '/^header_field() {/,/^}/p; /^ustar_extract() {/,/^}/p' "
				  "%s/guest/first-boot/banger-first-boot)\"; "
				  "ustar_extract \"$d/identity.img\" \"$d/guest\"",
				  dir, src);
	assert_int_equal(sh(script), 0);
	bg_free(script);
	char *guest = bg_path_join(dir, "guest");
	check_extracted(guest);
	bg_free(guest);

	/* and tar, which the guest prefers when it has one */
	script = bg_sprintf("set -eu; mkdir %s/tar && tar -xf %s/identity.img -C %s/tar", dir, dir, dir);
	assert_int_equal(sh(script), 0);
	bg_free(script);
	char *tar = bg_path_join(dir, "tar");
	check_extracted(tar);
	bg_free(tar);

	bg_free(img);
	test_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_guest_reads_it),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
