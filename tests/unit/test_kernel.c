/* Kernel module internals: catalog parsing (valid and malformed), URL
 * resolution, format detection on crafted ELF and bzImage headers,
 * bzImage → ELF extraction for every compressor libarchive writes, the
 * kernels store (EBUSY naming the user) and the VMM checks. */
#include "helpers.h"
#include "../../libbanger/kernel/kernel.h"
#include "../../libbanger/config/config.h"

#include <archive.h>
#include <dirent.h>
#include <archive_entry.h>
#include <elf.h>
#include <sqlite3.h>
#include <sys/utsname.h>

#define SHA_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* ---- catalog ---- */

static const char *good_catalog =
	"{\"schema_version\": 1, \"future_field\": true, \"kernels\": ["
	" {\"name\": \"generic-6.1\", \"version\": \"6.1.90\", \"arch\": \"x86_64\","
	"  \"url\": \"generic-6.1-x86_64.tar.gz\", \"size\": 1234,"
	"  \"sha256\": \"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789ABCDEF\","
	"  \"description\": \"generic\", \"vmms\": [\"firecracker\", \"qemu\"], \"format\": \"elf\"},"
	" {\"name\": \"other\", \"version\": \"6.12\", \"arch\": \"aarch64\","
	"  \"url\": \"https://mirror.example/k/other.tar.gz\", \"size\": 99,"
	"  \"sha256\": \"" SHA_A "\", \"description\": \"\", \"vmms\": [\"qemu\"]}"
	"]}";

static void test_catalog_valid(void **state)
{
	(void)state;
	bg_catalog c;
	assert_int_equal(bg_catalog_parse(&c, good_catalog, strlen(good_catalog),
					  "http://127.0.0.1:8080/kernels/catalog.json"), 0);
	assert_int_equal(c.count, 2);
	const bg_catalog_entry *e = bg_catalog_find(&c, "generic-6.1");
	assert_non_null(e);
	assert_string_equal(e->url, "http://127.0.0.1:8080/kernels/generic-6.1-x86_64.tar.gz");
	assert_string_equal(e->sha256, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	assert_int_equal(e->size, 1234);
	assert_string_equal(e->vmms, "firecracker,qemu");
	assert_string_equal(e->format, "elf");
	e = bg_catalog_find(&c, "other");
	assert_non_null(e);
	assert_string_equal(e->url, "https://mirror.example/k/other.tar.gz");
	assert_null(e->format);
	assert_string_equal(e->description, "");
	assert_null(bg_catalog_find(&c, "nope"));
	assert_string_equal(c.url, "http://127.0.0.1:8080/kernels/catalog.json");
	bg_catalog_clear(&c);

	const char *empty = "{\"schema_version\": 1, \"kernels\": []}";
	assert_int_equal(bg_catalog_parse(&c, empty, strlen(empty), "file:///x/c.json"), 0);
	assert_int_equal(c.count, 0);
	bg_catalog_clear(&c);
}

/* An entry with one field replaced (or removed, when value is NULL). */
static char *entry_with(const char *field, const char *value)
{
	static const char *const fields[][2] = {
		{ "name", "\"k1\"" }, { "version", "\"6.1\"" }, { "arch", "\"x86_64\"" },
		{ "url", "\"k1.tar.gz\"" }, { "size", "100" }, { "sha256", "\"" SHA_A "\"" },
		{ "description", "\"d\"" }, { "vmms", "[\"qemu\"]" },
	};
	char *out = malloc(4096);
	assert_non_null(out);
	strcpy(out, "{\"schema_version\": 1, \"kernels\": [{");
	bool first = true;
	bool replaced = false;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *v = fields[i][1];
		if (strcmp(fields[i][0], field) == 0) {
			replaced = true;
			if (!value)
				continue;
			v = value;
		}
		snprintf(out + strlen(out), 4096 - strlen(out), "%s\"%s\": %s", first ? "" : ", ", fields[i][0], v);
		first = false;
	}
	if (!replaced && value)
		snprintf(out + strlen(out), 4096 - strlen(out), ", \"%s\": %s", field, value);
	strcat(out, "}]}");
	return out;
}

static void expect_bad(const char *doc, int code, const char *needle)
{
	bg_catalog c;
	int rc = bg_catalog_parse(&c, doc, strlen(doc), "http://h/catalog.json");
	if (rc != code)
		fail_msg("catalog %s: got %d, wanted %d (%s)", doc, rc, code,
			 banger_error_last() ? banger_error_last()->message : "");
	const char *msg = banger_error_last()->message;
	if (!strstr(msg, needle))
		fail_msg("error for %s is '%s', which does not mention '%s'", doc, msg, needle);
	assert_int_equal(c.count, 0);
	assert_null(c.entries);
}

static void expect_bad_entry(const char *field, const char *value, const char *needle)
{
	char *doc = entry_with(field, value);
	expect_bad(doc, BANGER_EINVALID, needle);
	free(doc);
}

static void test_catalog_malformed(void **state)
{
	(void)state;
	expect_bad("", BANGER_EINVALID, "malformed catalog http://h/catalog.json");
	expect_bad("{\"schema_version\": 1, \"kernels\": [", BANGER_EINVALID, "line 1");
	expect_bad("[]", BANGER_EINVALID, "must be a JSON object");
	expect_bad("{\"kernels\": []}", BANGER_EINVALID, "schema_version");
	expect_bad("{\"schema_version\": \"1\", \"kernels\": []}", BANGER_EINVALID, "schema_version");
	expect_bad("{\"schema_version\": 0, \"kernels\": []}", BANGER_EINVALID, "schema_version");
	expect_bad("{\"schema_version\": 2, \"kernels\": []}", BANGER_EUNSUPPORTED, "schema_version 2");
	expect_bad("{\"schema_version\": 1}", BANGER_EINVALID, "\"kernels\" must be an array");
	expect_bad("{\"schema_version\": 1, \"kernels\": {}}", BANGER_EINVALID, "\"kernels\" must be an array");
	expect_bad("{\"schema_version\": 1, \"schema_version\": 1, \"kernels\": []}", BANGER_EINVALID, "duplicate");
	expect_bad("{\"schema_version\": 1, \"kernels\": [42]}", BANGER_EINVALID, "kernels[0]: an entry must be");

	expect_bad_entry("name", NULL, "missing required field \"name\"");
	expect_bad_entry("name", "7", "\"name\" must be a string");
	expect_bad_entry("name", "\"../evil\"", "is not valid");
	expect_bad_entry("name", "\"a/b\"", "is not valid");
	expect_bad_entry("name", "\"\"", "must not be empty");
	expect_bad_entry("version", NULL, "(\"k1\"): missing required field \"version\"");
	expect_bad_entry("arch", NULL, "\"arch\"");
	expect_bad_entry("arch", "\"X86 64\"", "arch");
	expect_bad_entry("url", NULL, "\"url\"");
	expect_bad_entry("url", "\"has space.tar.gz\"", "url");
	expect_bad_entry("url", "\"ftp://h/k.tar.gz\"", "scheme 'ftp' is not supported");
	expect_bad_entry("url", "\"file:///etc/shadow\"", "may not point at a local file");
	expect_bad_entry("size", NULL, "\"size\"");
	expect_bad_entry("size", "0", "size must be a positive integer");
	expect_bad_entry("size", "-5", "size must be a positive integer");
	expect_bad_entry("size", "1.5", "size must be a positive integer");
	expect_bad_entry("size", "\"100\"", "size must be a positive integer");
	expect_bad_entry("size", "99999999999999", "larger than banger accepts");
	expect_bad_entry("sha256", NULL, "\"sha256\"");
	expect_bad_entry("sha256", "\"abc\"", "sha256 must be 64 hexadecimal digits");
	expect_bad_entry("sha256", "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg\"",
			 "sha256 must be 64 hexadecimal digits");
	expect_bad_entry("description", NULL, "\"description\"");
	expect_bad_entry("vmms", NULL, "\"vmms\"");
	expect_bad_entry("vmms", "[]", "vmms must be a non-empty array");
	expect_bad_entry("vmms", "\"qemu\"", "vmms must be a non-empty array");
	expect_bad_entry("vmms", "[\"qemu\", 3]", "vmms[1]");
	expect_bad_entry("format", "\"pe\"", "format \"pe\"");

	/* the same name twice */
	const char *dup = "{\"schema_version\": 1, \"kernels\": ["
		"{\"name\": \"a\", \"version\": \"1\", \"arch\": \"x86_64\", \"url\": \"a\", \"size\": 1,"
		" \"sha256\": \"" SHA_A "\", \"description\": \"\", \"vmms\": [\"qemu\"]},"
		"{\"name\": \"a\", \"version\": \"2\", \"arch\": \"x86_64\", \"url\": \"b\", \"size\": 1,"
		" \"sha256\": \"" SHA_A "\", \"description\": \"\", \"vmms\": [\"qemu\"]}]}";
	expect_bad(dup, BANGER_EINVALID, "listed twice");
}

/* Every allocation failure during a parse is reported and leaks nothing
 * (ASan checks the leaks). */
static void test_catalog_alloc_failures(void **state)
{
	(void)state;
	for (uint64_t n = 1; n < 500; n++) {
		bg_catalog c;
		bg_alloc_fail_at(n);
		int rc = bg_catalog_parse(&c, good_catalog, strlen(good_catalog), "http://h/k/catalog.json");
		bg_alloc_fail_at(0);
		if (rc == 0) {
			assert_int_equal(c.count, 2);
			bg_catalog_clear(&c);
			return;
		}
		assert_int_equal(rc, BANGER_ENOMEM);
	}
	fail_msg("catalog parsing never succeeded");
}

static void expect_resolve(const char *base, const char *ref, const char *want)
{
	char *out = NULL;
	int rc = bg_url_resolve(&out, base, ref);
	if (rc)
		fail_msg("resolve %s against %s: %s", ref, base, banger_error_last()->message);
	if (strcmp(out, want) != 0)
		fail_msg("resolve %s against %s: got %s, wanted %s", ref, base, out, want);
	bg_free(out);
}

static void test_url_resolution(void **state)
{
	(void)state;
	const char *base = "http://127.0.0.1:8000/a/b/catalog.json";
	expect_resolve(base, "k.tar.gz", "http://127.0.0.1:8000/a/b/k.tar.gz");
	expect_resolve(base, "./k.tar.gz", "http://127.0.0.1:8000/a/b/k.tar.gz");
	expect_resolve(base, "../k.tar.gz", "http://127.0.0.1:8000/a/k.tar.gz");
	expect_resolve(base, "sub/k.tar.gz", "http://127.0.0.1:8000/a/b/sub/k.tar.gz");
	expect_resolve(base, "/x/k.tar.gz", "http://127.0.0.1:8000/x/k.tar.gz");
	expect_resolve(base, "//mirror.example/k.tar.gz", "http://mirror.example/k.tar.gz");
	expect_resolve(base, "https://other.example/k.tar.gz?x=1", "https://other.example/k.tar.gz?x=1");
	expect_resolve(base, "k.tar.gz?token=abc", "http://127.0.0.1:8000/a/b/k.tar.gz?token=abc");
	expect_resolve("http://h/dir/catalog.json?v=2", "k.tgz", "http://h/dir/k.tgz");
	expect_resolve("file:///srv/kernels/catalog.json", "k.tar.gz", "file:///srv/kernels/k.tar.gz");
	expect_resolve("file:///srv/kernels/catalog.json", "../other/k.tar.gz", "file:///srv/other/k.tar.gz");
	expect_resolve(NULL, "http://h/k", "http://h/k");

	char *out = NULL;
	assert_int_equal(bg_url_resolve(&out, base, "ftp://h/k"), BANGER_EUNSUPPORTED);
	assert_null(out);
	assert_int_equal(bg_url_resolve(&out, base, "a b"), BANGER_EINVALID);
	assert_int_equal(bg_url_resolve(&out, base, ""), BANGER_EINVALID);
	assert_int_equal(bg_url_resolve(&out, NULL, "k.tar.gz"), BANGER_EINVALID); /* relative, no base */

	assert_int_equal(bg_catalog_url_normalize(&out, "/srv/my kernels/catalog.json"), 0);
	assert_string_equal(out, "file:///srv/my%20kernels/catalog.json");
	bg_free(out);
	assert_int_equal(bg_catalog_url_normalize(&out, "HTTP://127.0.0.1:9/c.json"), 0);
	assert_string_equal(out, "http://127.0.0.1:9/c.json");
	bg_free(out);
	assert_int_equal(bg_catalog_url_normalize(&out, "gopher://h/c.json"), BANGER_EUNSUPPORTED);
	assert_int_equal(bg_catalog_url_normalize(&out, ""), BANGER_EINVALID);
}

static void test_names(void **state)
{
	(void)state;
	assert_true(bg_kernel_name_valid("generic-6.1"));
	assert_true(bg_kernel_name_valid("a"));
	assert_true(bg_kernel_name_valid("K_1.x-y"));
	assert_false(bg_kernel_name_valid(""));
	assert_false(bg_kernel_name_valid(NULL));
	assert_false(bg_kernel_name_valid(".hidden"));
	assert_false(bg_kernel_name_valid(".."));
	assert_false(bg_kernel_name_valid("-x"));
	assert_false(bg_kernel_name_valid("a/b"));
	assert_false(bg_kernel_name_valid("a b"));
	char longname[80];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_false(bg_kernel_name_valid(longname));
}

/* ---- crafted kernels ---- */

/* A small but structurally complete ELF64: header, a PT_LOAD over the
 * whole file, optionally a PT_NOTE with the Xen PVH entry note (and a
 * harmless note before it), and body bytes after. */
static unsigned char *make_elf(size_t *len, uint16_t machine, bool pvh, size_t body)
{
	const size_t nph = 2, notes_off = sizeof(Elf64_Ehdr) + nph * sizeof(Elf64_Phdr);
	unsigned char notes[64];
	size_t nlen = 0;
	/* note 1: "GNU" build-id style, type 3 */
	uint32_t hdr1[3] = { 4, 4, 3 };
	memcpy(notes + nlen, hdr1, 12);
	memcpy(notes + nlen + 12, "GNU\0", 4);
	memcpy(notes + nlen + 16, "\x01\x02\x03\x04", 4);
	nlen += 20;
	/* note 2: Xen PHYS32_ENTRY (18) or some other Xen note (6) */
	uint32_t hdr2[3] = { 4, 4, pvh ? 18u : 6u };
	memcpy(notes + nlen, hdr2, 12);
	memcpy(notes + nlen + 12, "Xen\0", 4);
	memcpy(notes + nlen + 16, "\x00\x10\x00\x01", 4);
	nlen += 20;
	size_t total = notes_off + nlen + body;
	unsigned char *b = calloc(1, total);
	assert_non_null(b);
	Elf64_Ehdr e = { 0 };
	memcpy(e.e_ident, ELFMAG, SELFMAG);
	e.e_ident[EI_CLASS] = ELFCLASS64;
	e.e_ident[EI_DATA] = ELFDATA2LSB;
	e.e_ident[EI_VERSION] = EV_CURRENT;
	e.e_type = ET_EXEC;
	e.e_machine = machine;
	e.e_version = EV_CURRENT;
	e.e_phoff = sizeof(Elf64_Ehdr);
	e.e_ehsize = sizeof(Elf64_Ehdr);
	e.e_phentsize = sizeof(Elf64_Phdr);
	e.e_phnum = (uint16_t)nph;
	memcpy(b, &e, sizeof(e));
	Elf64_Phdr load = { .p_type = PT_LOAD, .p_offset = 0, .p_filesz = total, .p_memsz = total };
	Elf64_Phdr note = { .p_type = PT_NOTE, .p_offset = notes_off, .p_filesz = nlen, .p_memsz = nlen };
	memcpy(b + sizeof(Elf64_Ehdr), &load, sizeof(load));
	memcpy(b + sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr), &note, sizeof(note));
	memcpy(b + notes_off, notes, nlen);
	for (size_t i = 0; i < body; i++) /* compressible but not trivial */
		b[notes_off + nlen + i] = (unsigned char)((i * 7) ^ (i >> 5));
	*len = total;
	return b;
}

/* An x86 boot image: 1 setup sector, "HdrS", protocol version, a version
 * string, and the payload after a 64-byte stub.  With proto < 0x208 the
 * payload fields are left zero (extraction must scan). */
static unsigned char *make_bzimage(size_t *len, uint16_t proto, const unsigned char *payload, size_t plen,
				   size_t trailer)
{
	const size_t pm = 2 * 512, stub = 64;
	size_t total = pm + stub + plen + trailer;
	unsigned char *b = calloc(1, total);
	assert_non_null(b);
	b[0x1f1] = 1;
	b[0x1fe] = 0x55;
	b[0x1ff] = 0xaa;
	memcpy(b + 0x202, "HdrS", 4);
	b[0x206] = (unsigned char)(proto & 0xff);
	b[0x207] = (unsigned char)(proto >> 8);
	const char *ver = "6.1.77-crafted (test@banger) #1 SMP";
	memcpy(b + 0x300, ver, strlen(ver) + 1);
	b[0x20e] = 0x00; /* kernel_version: 0x300 - 0x200 */
	b[0x20f] = 0x01;
	b[0x236] = 1; /* XLF_KERNEL_64 */
	if (proto >= 0x0208) {
		uint32_t off = (uint32_t)stub, l = (uint32_t)plen;
		memcpy(b + 0x248, &off, 4);
		memcpy(b + 0x24c, &l, 4);
	}
	memset(b + pm, 0x90, stub);
	memcpy(b + pm + stub, payload, plen);
	for (size_t i = 0; i < trailer; i++)
		b[pm + stub + plen + i] = (unsigned char)(0xa5 ^ i);
	*len = total;
	return b;
}

static unsigned char *compress_with(int filter, const unsigned char *data, size_t len, size_t *outlen)
{
	size_t cap = len * 2 + 65536;
	unsigned char *out = malloc(cap);
	assert_non_null(out);
	struct archive *a = archive_write_new();
	assert_int_equal(archive_write_add_filter(a, filter), ARCHIVE_OK);
	assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
	archive_write_set_bytes_in_last_block(a, 1);
	assert_int_equal(archive_write_open_memory(a, out, cap, outlen), ARCHIVE_OK);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "vmlinux");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_size(e, (la_int64_t)len);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	assert_int_equal(archive_write_data(a, data, len), (la_ssize_t)len);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_entry_free(e);
	archive_write_free(a);
	return out;
}

static void test_detect_elf(void **state)
{
	(void)state;
	size_t len;
	unsigned char *elf = make_elf(&len, EM_X86_64, true, 256);
	bg_kernel_info info;
	assert_int_equal(bg_kernel_detect_buf(&info, elf, len), 0);
	assert_int_equal(info.format, BG_KFMT_ELF);
	assert_string_equal(bg_kernel_format_name(info.format), "elf");
	assert_string_equal(info.arch, "x86_64");
	assert_true(info.elf64);
	assert_true(info.pvh);
	assert_int_equal(bg_elf_extent(elf, len), len);
	assert_true(bg_elf_extent(elf, len - 1) > len - 1); /* incomplete */
	free(elf);

	elf = make_elf(&len, EM_X86_64, false, 256);
	assert_int_equal(bg_kernel_detect_buf(&info, elf, len), 0);
	assert_int_equal(info.format, BG_KFMT_ELF);
	assert_false(info.pvh);
	free(elf);

	elf = make_elf(&len, EM_AARCH64, false, 16);
	assert_int_equal(bg_kernel_detect_buf(&info, elf, len), 0);
	assert_string_equal(info.arch, "aarch64");
	free(elf);

	/* the parser's bounds (libbanger/kformat/kformat.h) */
	elf = make_elf(&len, EM_X86_64, false, 16);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)elf;
	eh->e_phnum = KFORMAT_PHNUM_MAX + 1;
	assert_int_equal(bg_kernel_detect_buf(&info, elf, len), BANGER_EINVALID);
	eh->e_phnum = 5; /* the fourth and fifth lie outside the file */
	assert_int_equal(bg_kernel_detect_buf(&info, elf, len), BANGER_EINVALID);
	assert_non_null(strstr(banger_error_last()->message, "outside the file"));
	free(elf);
	/* a notes segment larger than KFORMAT_NOTES_MAX is not read: no PVH */
	size_t big = KFORMAT_NOTES_MAX + 64;
	elf = make_elf(&len, EM_X86_64, true, big);
	Elf64_Phdr *note = (Elf64_Phdr *)(elf + sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr));
	assert_int_equal(bg_kernel_detect_buf(&info, elf, len), 0);
	assert_true(info.pvh);
	note->p_filesz = KFORMAT_NOTES_MAX + 1;
	assert_int_equal(bg_kernel_detect_buf(&info, elf, len), 0);
	assert_false(info.pvh);
	/* a note running past its segment ends the walk */
	note->p_filesz = 20 + 12; /* the first note and the second's header only */
	assert_int_equal(bg_kernel_detect_buf(&info, elf, len), 0);
	assert_false(info.pvh);
	free(elf);

	/* a file on disk: the release comes from the "Linux version" banner */
	char *dir = test_tmpdir();
	char *path = bg_path_join(dir, "vmlinux");
	elf = make_elf(&len, EM_X86_64, true, 4096);
	const char *banner = "Linux version 6.1.55-banger (u@h) (gcc) #1";
	memcpy(elf + len - 200, banner, strlen(banner));
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(elf, 1, len, f), len);
	fclose(f);
	assert_int_equal(bg_kernel_detect_file(&info, path, true), 0);
	assert_int_equal(info.format, BG_KFMT_ELF);
	assert_true(info.pvh);
	assert_string_equal(info.version, "6.1.55-banger");
	assert_int_equal(bg_kernel_detect_file(&info, path, false), 0);
	assert_string_equal(info.version, "");
	assert_int_equal(bg_kernel_detect_file(&info, dir, false), BANGER_EINVALID); /* a directory */
	free(elf);
	bg_free(path);
	test_rmrf(dir);
	free(dir);
}

static void test_detect_bzimage_and_junk(void **state)
{
	(void)state;
	size_t len;
	const unsigned char payload[16] = "not compressed!";
	unsigned char *bz = make_bzimage(&len, 0x020f, payload, sizeof(payload), 0);
	bg_kernel_info info;
	assert_int_equal(bg_kernel_detect_buf(&info, bz, len), 0);
	assert_int_equal(info.format, BG_KFMT_BZIMAGE);
	assert_string_equal(bg_kernel_format_name(info.format), "bzimage");
	assert_string_equal(info.arch, "x86_64");
	assert_int_equal(info.boot_protocol, 0x020f);
	assert_string_equal(info.version, "6.1.77-crafted");
	/* protocol ≥ 2.12 without XLF_KERNEL_64: a 32-bit kernel */
	bz[0x236] = 0;
	assert_int_equal(bg_kernel_detect_buf(&info, bz, len), 0);
	assert_string_equal(info.arch, "i386");
	free(bz);

	/* just "HdrS" at 0x202 in otherwise empty bytes: still a bzImage */
	unsigned char min[0x400] = { 0 };
	memcpy(min + 0x202, "HdrS", 4);
	assert_int_equal(bg_kernel_detect_buf(&info, min, sizeof(min)), 0);
	assert_int_equal(info.format, BG_KFMT_BZIMAGE);
	assert_string_equal(info.arch, "x86_64");

	/* "HdrS" one byte off, random bytes, short input: refused */
	unsigned char off[0x400] = { 0 };
	memcpy(off + 0x203, "HdrS", 4);
	assert_int_equal(bg_kernel_detect_buf(&info, off, sizeof(off)), BANGER_EINVALID);
	assert_non_null(strstr(banger_error_last()->message, "HdrS"));
	unsigned char junk[4096];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 31 + 7);
	assert_int_equal(bg_kernel_detect_buf(&info, junk, sizeof(junk)), BANGER_EINVALID);
	assert_int_equal(bg_kernel_detect_buf(&info, (const unsigned char *)"\177EL", 3), BANGER_EINVALID);
	assert_int_equal(bg_kernel_detect_buf(&info, (const unsigned char *)"", 0), BANGER_EINVALID);
	/* an ELF header with no program headers is not a kernel */
	unsigned char noph[sizeof(Elf64_Ehdr)] = { 0 };
	Elf64_Ehdr e = { 0 };
	memcpy(e.e_ident, ELFMAG, SELFMAG);
	e.e_ident[EI_CLASS] = ELFCLASS64;
	e.e_ident[EI_DATA] = ELFDATA2LSB;
	e.e_machine = EM_X86_64;
	memcpy(noph, &e, sizeof(e));
	assert_int_equal(bg_kernel_detect_buf(&info, noph, sizeof(noph)), BANGER_EINVALID);
	/* an arm64 Image is named as such */
	unsigned char arm[0x40] = { 0 };
	memcpy(arm + 0x38, "ARM\x64", 4);
	assert_int_equal(bg_kernel_detect_buf(&info, arm, sizeof(arm)), BANGER_EUNSUPPORTED);
	assert_non_null(strstr(banger_error_last()->message, "arm64"));
}

/* The boot header's layout, read by kformat for the extraction: the
 * payload only when it lies inside the image. */
static void test_bzimage_layout(void **state)
{
	(void)state;
	size_t len;
	const unsigned char payload[32] = "payload bytes";
	unsigned char *bz = make_bzimage(&len, 0x020f, payload, sizeof(payload), 8);
	bg_bzimage_layout lay;
	assert_int_equal(bg_bzimage_layout_read(&lay, bz, len), 0);
	assert_int_equal(lay.boot_protocol, 0x020f);
	assert_int_equal(lay.pm_start, 2 * 512); /* setup_sects 1 */
	assert_true(lay.has_payload);
	assert_int_equal(lay.payload_offset, 2 * 512 + 64);
	assert_int_equal(lay.payload_length, sizeof(payload));
	assert_memory_equal(bz + lay.payload_offset, payload, sizeof(payload));

	/* setup_sects 0 means 4 */
	bz[0x1f1] = 0;
	assert_int_equal(bg_bzimage_layout_read(&lay, bz, len), 0);
	assert_int_equal(lay.pm_start, 5 * 512);
	assert_false(lay.has_payload); /* the protected-mode part starts beyond the image */
	bz[0x1f1] = 1;

	/* a payload reaching past the end, or empty, is no payload */
	uint32_t big = (uint32_t)sizeof(payload) + 9;
	memcpy(bz + 0x24c, &big, 4);
	assert_int_equal(bg_bzimage_layout_read(&lay, bz, len), 0);
	assert_false(lay.has_payload);
	uint32_t huge = UINT32_MAX;
	memcpy(bz + 0x248, &huge, 4);
	assert_int_equal(bg_bzimage_layout_read(&lay, bz, len), 0);
	assert_false(lay.has_payload);
	uint32_t zero = 0;
	memcpy(bz + 0x248, &zero, 4);
	memcpy(bz + 0x24c, &zero, 4);
	assert_int_equal(bg_bzimage_layout_read(&lay, bz, len), 0);
	assert_false(lay.has_payload);
	free(bz);

	/* before protocol 2.08 the fields do not exist */
	bz = make_bzimage(&len, 0x0206, payload, sizeof(payload), 0);
	uint32_t off = 64, l = (uint32_t)sizeof(payload);
	memcpy(bz + 0x248, &off, 4);
	memcpy(bz + 0x24c, &l, 4);
	assert_int_equal(bg_bzimage_layout_read(&lay, bz, len), 0);
	assert_int_equal(lay.boot_protocol, 0x0206);
	assert_false(lay.has_payload);

	/* no "HdrS", or a header cut short: not a bzImage */
	assert_int_equal(bg_bzimage_layout_read(&lay, bz, 0x24f), BANGER_EINVALID);
	assert_non_null(strstr(banger_error_last()->message, "boot header"));
	assert_int_equal(bg_bzimage_layout_read(&lay, bz, 0x205), BANGER_EINVALID);
	bz[0x202] = 'h';
	assert_int_equal(bg_bzimage_layout_read(&lay, bz, len), BANGER_EINVALID);
	assert_non_null(strstr(banger_error_last()->message, "HdrS"));
	assert_int_equal(bg_bzimage_layout_read(&lay, (const unsigned char *)"", 0), BANGER_EINVALID);
	free(bz);
}

/* size_append: the payload ends with the 4-byte uncompressed size, as
 * the kernel build writes it for every format but gzip (and counts it in
 * payload_length). */
static void check_extract(int filter, const char *name, uint16_t proto, size_t trailer, bool size_append)
{
	size_t elen, clen, blen, outlen;
	unsigned char *elf = make_elf(&elen, EM_X86_64, true, 64 * 1024);
	unsigned char *comp = compress_with(filter, elf, elen, &clen);
	if (size_append) {
		uint32_t sz = (uint32_t)elen;
		memcpy(comp + clen, &sz, 4);
		clen += 4;
	}
	unsigned char *bz = make_bzimage(&blen, proto, comp, clen, trailer);
	unsigned char *out = NULL;
	int rc = bg_kernel_extract_buf(&out, &outlen, bz, blen);
	if (rc)
		fail_msg("%s (protocol %#x, trailer %zu): %s", name, proto, trailer, banger_error_last()->message);
	assert_true(outlen >= elen);
	assert_memory_equal(out, elf, elen);
	bg_kernel_info info;
	assert_int_equal(bg_kernel_detect_buf(&info, out, outlen), 0);
	assert_true(info.pvh);
	bg_free(out);
	free(bz);
	free(comp);
	free(elf);
}

static void test_extract(void **state)
{
	(void)state;
	/* the header's payload fields, exact */
	check_extract(ARCHIVE_FILTER_GZIP, "gzip", 0x020f, 0, false);
	check_extract(ARCHIVE_FILTER_XZ, "xz", 0x020f, 0, false);
	check_extract(ARCHIVE_FILTER_ZSTD, "zstd", 0x020f, 0, false);
	check_extract(ARCHIVE_FILTER_LZ4, "lz4", 0x020f, 0, false);
	check_extract(ARCHIVE_FILTER_BZIP2, "bzip2", 0x020f, 0, false);
	check_extract(ARCHIVE_FILTER_LZMA, "lzma", 0x020f, 0, false);
	/* as Linux lays it out: the payload ends with the size (not gzip) */
	check_extract(ARCHIVE_FILTER_XZ, "xz", 0x020f, 0, true);
	check_extract(ARCHIVE_FILTER_ZSTD, "zstd", 0x020f, 0, true);
	check_extract(ARCHIVE_FILTER_LZ4, "lz4", 0x020f, 0, true);
	check_extract(ARCHIVE_FILTER_BZIP2, "bzip2", 0x020f, 0, true);
	check_extract(ARCHIVE_FILTER_LZMA, "lzma", 0x020f, 0, true);
	/* old protocol: no payload fields, found by scanning, with other
	 * bytes after the stream */
	check_extract(ARCHIVE_FILTER_GZIP, "gzip", 0x0206, 64, false);
	check_extract(ARCHIVE_FILTER_XZ, "xz", 0x0206, 64, true);
	check_extract(ARCHIVE_FILTER_BZIP2, "bzip2", 0x0206, 4, true);

	/* an uncompressed ELF payload (CONFIG_KERNEL_UNCOMPRESSED) */
	size_t elen, blen, outlen;
	unsigned char *elf = make_elf(&elen, EM_X86_64, false, 1024);
	unsigned char *bz = make_bzimage(&blen, 0x020f, elf, elen, 0);
	unsigned char *out = NULL;
	assert_int_equal(bg_kernel_extract_buf(&out, &outlen, bz, blen), 0);
	assert_int_equal(outlen, elen);
	assert_memory_equal(out, elf, elen);
	bg_free(out);
	free(bz);

	/* a truncated payload is refused, naming the failure */
	size_t clen;
	unsigned char *comp = compress_with(ARCHIVE_FILTER_XZ, elf, elen, &clen);
	bz = make_bzimage(&blen, 0x020f, comp, clen / 2, 0);
	assert_int_equal(bg_kernel_extract_buf(&out, &outlen, bz, blen), BANGER_EINVALID);
	assert_null(out);
	assert_non_null(strstr(banger_error_last()->message, "no ELF vmlinux could be extracted"));
	free(bz);
	free(comp);

	/* a payload that decompresses to something other than ELF */
	unsigned char text[4096];
	memset(text, 'k', sizeof(text));
	comp = compress_with(ARCHIVE_FILTER_GZIP, text, sizeof(text), &clen);
	bz = make_bzimage(&blen, 0x020f, comp, clen, 0);
	assert_int_equal(bg_kernel_extract_buf(&out, &outlen, bz, blen), BANGER_EINVALID);
	assert_non_null(strstr(banger_error_last()->message, "not an ELF"));
	free(bz);
	free(comp);

	/* no payload at all; not a bzImage */
	bz = make_bzimage(&blen, 0x020f, (const unsigned char *)"plain bytes", 11, 0);
	assert_int_equal(bg_kernel_extract_buf(&out, &outlen, bz, blen), BANGER_EINVALID);
	free(bz);
	assert_int_equal(bg_kernel_extract_buf(&out, &outlen, elf, elen), BANGER_EINVALID);
	free(elf);
}

static void test_extract_file(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char *in = bg_path_join(dir, "bzImage"), *outp = bg_path_join(dir, "vmlinux");
	size_t elen, clen, blen;
	unsigned char *elf = make_elf(&elen, EM_X86_64, true, 8192);
	unsigned char *comp = compress_with(ARCHIVE_FILTER_GZIP, elf, elen, &clen);
	unsigned char *bz = make_bzimage(&blen, 0x020f, comp, clen, 0);
	FILE *f = fopen(in, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(bz, 1, blen, f), blen);
	fclose(f);
	assert_int_equal(bg_kernel_extract_file(in, outp), 0);
	char *got = NULL;
	size_t glen = 0;
	assert_int_equal(bg_read_file(&got, &glen, outp, 1 << 20), 0);
	assert_int_equal(glen, elen);
	assert_memory_equal(got, elf, elen);
	bg_free(got);
	/* never overwrites */
	assert_int_equal(bg_kernel_extract_file(in, outp), BANGER_EEXISTS);
	free(bz);
	free(comp);
	free(elf);
	bg_free(in);
	bg_free(outp);
	test_rmrf(dir);
	free(dir);
}

/* ---- store ---- */

static void fill_kernel(bg_kernel_record *k, const char *name, const char *format)
{
	memset(k, 0, sizeof(*k));
	k->name = (char *)name;
	k->version = (char *)"6.1.90";
	k->arch = (char *)"x86_64";
	k->format = (char *)format;
	k->kernel_path = (char *)"/nonexistent/vmlinux";
	k->source = (char *)"import";
	k->sha256 = (char *)SHA_A;
	k->created_at = 1700000000;
}

static void test_store_kernels(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char *db = bg_path_join(dir, "b.db");
	bg_store s;
	assert_int_equal(bg_store_open(&s, db, NULL), 0);
	bg_kernel_record k, got;
	fill_kernel(&k, "b-kernel", "elf");
	assert_int_equal(bg_store_kernel_insert(&s, &k), 0);
	assert_int_equal(bg_store_kernel_insert(&s, &k), BANGER_EEXISTS);
	assert_non_null(strstr(banger_error_last()->message, "b-kernel"));
	fill_kernel(&k, "a-kernel", "bzimage");
	k.initrd_path = (char *)"/x/initrd";
	assert_int_equal(bg_store_kernel_insert(&s, &k), 0);
	/* the schema's CHECK refuses other formats */
	fill_kernel(&k, "c", "pe");
	assert_int_not_equal(bg_store_kernel_insert(&s, &k), 0);

	assert_int_equal(bg_store_kernel_get(&s, &got, "a-kernel"), 0);
	assert_string_equal(got.name, "a-kernel");
	assert_string_equal(got.format, "bzimage");
	assert_string_equal(got.initrd_path, "/x/initrd");
	assert_null(got.config_path);
	assert_int_equal(got.created_at, 1700000000);
	bg_kernel_record_clear(&got);
	assert_int_equal(bg_store_kernel_get(&s, &got, "zzz"), BANGER_ENOTFOUND);

	bg_kernel_record *list;
	size_t n;
	assert_int_equal(bg_store_kernel_list(&s, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "a-kernel");
	assert_string_equal(list[1].name, "b-kernel");
	bg_kernel_records_free(list, n);

	/* in use by a VM, then by an image: refused, naming the user */
	bg_vm_record vm;
	memset(&vm, 0, sizeof(vm));
	snprintf(vm.id, sizeof(vm.id), "0000abcd");
	vm.name = (char *)"web";
	vm.kernel = (char *)"a-kernel";
	vm.state = (char *)"stopped";
	vm.vmm = (char *)"qemu";
	vm.vcpus = 1;
	vm.memory_mib = 256;
	vm.created_at = vm.updated_at = 1700000000;
	assert_int_equal(bg_store_vm_insert(&s, &vm), 0);
	assert_int_equal(bg_store_kernel_delete(&s, "a-kernel"), BANGER_EBUSY);
	assert_non_null(strstr(banger_error_last()->message, "used by VM 'web'"));
	assert_int_equal(bg_store_exec(&s, "INSERT INTO images (name, kernel_name, rootfs_path, rootfs_bytes, "
				       "created_at) VALUES ('alpine', 'a-kernel', '/r', 1, 1)"), 0);
	assert_int_equal(bg_store_kernel_delete(&s, "a-kernel"), BANGER_EBUSY);
	assert_non_null(strstr(banger_error_last()->message, "used by VM 'web' and 1 more"));
	assert_int_equal(bg_store_vm_delete(&s, "0000abcd"), 0);
	assert_int_equal(bg_store_kernel_delete(&s, "a-kernel"), BANGER_EBUSY);
	assert_non_null(strstr(banger_error_last()->message, "used by image 'alpine'"));
	assert_int_equal(bg_store_exec(&s, "DELETE FROM images"), 0);
	assert_int_equal(bg_store_kernel_delete(&s, "a-kernel"), 0);
	assert_int_equal(bg_store_kernel_delete(&s, "a-kernel"), BANGER_ENOTFOUND);
	assert_int_equal(bg_store_kernel_get(&s, &got, "a-kernel"), BANGER_ENOTFOUND);

	bg_store_close(&s);
	bg_free(db);
	test_rmrf(dir);
	free(dir);
}

/* ---- the host's architecture (host/arch.c), which kernels are held to ---- */

static void test_host_arch(void **state)
{
	(void)state;
	assert_string_equal(bg_host_arch_of("x86_64"), "x86_64");
	assert_string_equal(bg_host_arch_of("aarch64"), "aarch64");
	assert_string_equal(bg_host_arch_of("arm64"), "aarch64");
	assert_string_equal(bg_host_arch_of("armv7l"), "unknown");
	assert_string_equal(bg_host_arch_of(""), "unknown");
	assert_string_equal(bg_host_arch_of(NULL), "unknown");
	/* detected once: uname's machine, the same pointer every time */
	struct utsname u;
	assert_int_equal(uname(&u), 0);
	assert_string_equal(bg_host_machine(), u.machine);
	assert_ptr_equal(bg_host_machine(), bg_host_machine());
	assert_string_equal(bg_host_arch(), bg_host_arch_of(u.machine));
}

/* ---- VMM checks ---- */

static void write_bytes(const char *path, const unsigned char *b, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, len, f), len);
	fclose(f);
}

static void test_check_vmm(void **state)
{
	(void)state;
	if (strcmp(bg_host_arch(), "x86_64") != 0)
		skip();
	char *dir = test_tmpdir();
	char *vmlinux = bg_path_join(dir, "vmlinux"), *bzimage = bg_path_join(dir, "bzImage");
	size_t len;
	bg_kernel_record k;
	char *path = NULL;

	/* ELF with PVH: both VMMs boot the vmlinux */
	unsigned char *elf = make_elf(&len, EM_X86_64, true, 64);
	write_bytes(vmlinux, elf, len);
	free(elf);
	fill_kernel(&k, "k", "elf");
	k.kernel_path = vmlinux;
	assert_int_equal(bg_kernel_check_vmm(&k, "firecracker"), 0);
	assert_int_equal(bg_kernel_boot_path(&path, &k, "qemu"), 0);
	assert_string_equal(path, vmlinux);
	bg_free(path);
	assert_int_equal(bg_kernel_check_vmm(&k, "bochs"), BANGER_EINVALID);
	k.arch = (char *)"aarch64";
	assert_int_equal(bg_kernel_check_vmm(&k, "firecracker"), BANGER_EUNSUPPORTED);
	assert_non_null(strstr(banger_error_last()->message, "built for aarch64"));
	k.arch = (char *)"x86_64";

	/* ELF without PVH: QEMU refuses, until a bzImage sits beside it */
	unlink(vmlinux);
	elf = make_elf(&len, EM_X86_64, false, 64);
	write_bytes(vmlinux, elf, len);
	assert_int_equal(bg_kernel_check_vmm(&k, "firecracker"), 0);
	assert_int_equal(bg_kernel_check_vmm(&k, "qemu"), BANGER_EUNSUPPORTED);
	assert_non_null(strstr(banger_error_last()->message, "PVH"));
	unsigned char min[0x400] = { 0 };
	memcpy(min + 0x202, "HdrS", 4);
	write_bytes(bzimage, min, sizeof(min));
	assert_int_equal(bg_kernel_boot_path(&path, &k, "qemu"), 0);
	assert_string_equal(path, bzimage);
	bg_free(path);

	/* bzImage: QEMU boots it; Firecracker needs the extracted vmlinux */
	fill_kernel(&k, "k", "bzimage");
	k.kernel_path = bzimage;
	assert_int_equal(bg_kernel_boot_path(&path, &k, "firecracker"), 0);
	assert_string_equal(path, vmlinux);
	bg_free(path);
	unlink(vmlinux);
	assert_int_equal(bg_kernel_check_vmm(&k, "qemu"), 0);
	assert_int_equal(bg_kernel_check_vmm(&k, "firecracker"), BANGER_EUNSUPPORTED);
	assert_non_null(strstr(banger_error_last()->message, "Firecracker"));
	/* a file that went missing */
	unlink(bzimage);
	assert_int_equal(bg_kernel_check_vmm(&k, "qemu"), BANGER_ENOTFOUND);
	free(elf);
	bg_free(vmlinux);
	bg_free(bzimage);
	test_rmrf(dir);
	free(dir);
}

/* ---- allocation failures in import and pull: every failure is reported,
 *      leaks nothing (ASan) and leaves nothing installed or recorded ---- */

static banger_ctx *open_ctx(const char *dir)
{
	char *state = bg_path_join(dir, "state"), *run = bg_path_join(dir, "run");
	assert_non_null(state);
	assert_non_null(run);
	setenv("BANGER_RUNTIME_DIR", run, 1);
	banger_ctx_options o;
	assert_int_equal(banger_ctx_options_init(&o, BANGER_CTX_OPTIONS_VERSION), 0);
	o.state_dir = state;
	banger_ctx *ctx = NULL;
	assert_int_equal(banger_ctx_open(&ctx, &o), 0);
	bg_free(state);
	bg_free(run);
	return ctx;
}

static void assert_nothing_installed(banger_ctx *ctx, const char *name, uint64_t n)
{
	DIR *d = opendir(ctx->env.layout.kernels_dir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, name) == 0 || bg_startswith(e->d_name, ".staging-") ||
		    bg_startswith(e->d_name, ".trash-"))
			fail_msg("allocation %llu failed: %s left in %s", (unsigned long long)n, e->d_name,
				 ctx->env.layout.kernels_dir);
	closedir(d);
	bg_kernel_record r;
	assert_int_equal(bg_store_kernel_get(&ctx->env.store, &r, name), BANGER_ENOTFOUND);
}

static void test_import_alloc_failures(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	banger_ctx *ctx = open_ctx(dir);
	char *config = bg_path_join(dir, "config");
	FILE *f = fopen(config, "w");
	assert_non_null(f);
	fputs("#\n# Linux/x86 6.1.3 Kernel Configuration\n#\nCONFIG_X=y\n", f);
	fclose(f);
	uint64_t n;
	for (n = 1; n < 5000; n++) {
		bg_kernel_record rec;
		uint64_t before = bg_alloc_count();
		bg_alloc_fail_at(n);
		int rc = bg_kernel_import(&ctx->env, "k", "/bin/true", NULL, config, NULL, &rec);
		bg_alloc_fail_at(0);
		bool reached = bg_alloc_count() - before >= n;
		if (rc == 0) {
			/* the failed allocation was one that may fail (or none failed) */
			assert_string_equal(rec.format, "elf");
			bg_kernel_record_clear(&rec);
			assert_int_equal(bg_kernel_remove(&ctx->env, "k"), 0);
			if (!reached)
				break;
			continue;
		}
		if (rc != BANGER_ENOMEM)
			fail_msg("allocation %llu failed: got %d: %s", (unsigned long long)n, rc,
				 banger_error_last()->message);
		assert_nothing_installed(ctx, "k", n);
	}
	assert_true(n > 5 && n < 5000);
	print_message("import: %llu allocation failures checked\n", (unsigned long long)n - 1);
	bg_free(config);
	banger_ctx_close(ctx);
	test_rmrf(dir);
	free(dir);
}

static void test_pull_alloc_failures(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	banger_ctx *ctx = open_ctx(dir);
	char cmd[8192];
	snprintf(cmd, sizeof(cmd),
		 "set -e; cd '%s'; mkdir a; cp /bin/true a/vmlinux; printf 'CONFIG_X=y\\n' > a/config; "
		 "tar -C a -czf k.tar.gz vmlinux config; "
		 "printf '{\"schema_version\": 1, \"kernels\": [{\"name\": \"k\", \"version\": \"1\", "
		 "\"arch\": \"x86_64\", \"url\": \"k.tar.gz\", \"size\": %%s, \"sha256\": \"%%s\", "
		 "\"description\": \"\", \"vmms\": [\"qemu\"]}]}' "
		 "\"$(stat -c %%s k.tar.gz)\" \"$(sha256sum k.tar.gz | cut -c1-64)\" > catalog.json",
		 dir);
	assert_int_equal(system(cmd), 0);
	char *catalog = bg_path_join(dir, "catalog.json");
	bg_pull_opts o = { .catalog_url = catalog };
	uint64_t n;
	for (n = 1; n < 5000; n++) {
		bg_kernel_record rec;
		uint64_t before = bg_alloc_count();
		bg_alloc_fail_at(n);
		int rc = bg_kernel_pull(&ctx->env, "k", &o, &rec);
		bg_alloc_fail_at(0);
		bool reached = bg_alloc_count() - before >= n;
		if (rc == 0) {
			assert_string_equal(rec.format, "elf");
			bg_kernel_record_clear(&rec);
			assert_int_equal(bg_kernel_remove(&ctx->env, "k"), 0);
			if (!reached)
				break;
			continue;
		}
		if (rc != BANGER_ENOMEM)
			fail_msg("allocation %llu failed: got %d: %s", (unsigned long long)n, rc,
				 banger_error_last()->message);
		assert_nothing_installed(ctx, "k", n);
	}
	assert_true(n > 5 && n < 5000);
	print_message("pull: %llu allocation failures checked\n", (unsigned long long)n - 1);
	bg_free(catalog);
	banger_ctx_close(ctx);
	test_rmrf(dir);
	free(dir);
}

/* ---- the shipped examples ---- */

static char *source_file(const char *rel)
{
	const char *srcdir = getenv("BANGER_SOURCE_DIR");
	if (!srcdir)
		return NULL;
	char *path = bg_path_join(srcdir, rel), *text = NULL;
	assert_non_null(path);
	assert_int_equal(bg_read_file(&text, NULL, path, 1 << 20), 0);
	bg_free(path);
	return text;
}

static void test_shipped_examples(void **state)
{
	(void)state;
	char *catalog = source_file("configs/catalog.example.json");
	if (!catalog)
		skip(); /* run outside ctest */
	bg_catalog c;
	assert_int_equal(bg_catalog_parse(&c, catalog, strlen(catalog), "https://h/kernels/catalog.json"), 0);
	assert_true(c.count >= 1);
	assert_string_equal(c.entries[0].url, "https://h/kernels/generic-6.1-x86_64.tar.gz");
	bg_catalog_clear(&c);
	bg_free(catalog);

	/* config.example: every key, commented out as "# key = default", and
	 * the file parses once those lines are uncommented */
	char *example = source_file("configs/config.example");
	bg_config defaults, parsed;
	assert_int_equal(bg_config_load(&defaults, NULL, false), 0);
	for (size_t i = 0; i < defaults.count; i++) {
		char needle[128];
		snprintf(needle, sizeof(needle), "\n# %s =", defaults.entries[i].key);
		if (!strstr(example, needle))
			fail_msg("configs/config.example does not list the key '%s'", defaults.entries[i].key);
	}
	bg_buf active = BG_BUF_INIT;
	for (char *line = strtok(example, "\n"); line; line = strtok(NULL, "\n")) {
		const char *p = line + 2;
		size_t k = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
		if (strncmp(line, "# ", 2) == 0 && k && strncmp(p + k, " =", 2) == 0)
			bg_buf_printf(&active, "%s\n", p);
	}
	assert_int_equal(bg_config_load(&parsed, NULL, false), 0);
	if (bg_config_parse(&parsed, active.data, "config.example") != 0)
		fail_msg("%s", banger_error_last()->message);
	for (size_t i = 0; i < defaults.count; i++) {
		const char *key = defaults.entries[i].key;
		if (strcmp(key, "kernel_catalog") && strcmp(key, "default_kernel") && strcmp(key, "insecure_registries"))
			assert_string_equal(bg_config_get(&parsed, key), defaults.entries[i].value);
	}
	bg_buf_free(&active);
	bg_config_free(&parsed);
	bg_config_free(&defaults);
	bg_free(example);
}

/* A catalog carries the sha256 of every kernel: over plain HTTP it gives
 * no integrity, so it is refused like a registry would be (loopback and
 * insecure_registries hosts only), before any connection.  192.0.2.1 is
 * TEST-NET-1: nothing may be sent there, and nothing is. */
static void test_catalog_plain_http(void **state)
{
	(void)state;
	bg_buf body = BG_BUF_INIT;
	bg_download_req d = { .fd = -1, .buf = &body, .transport_integrity = true };
	assert_int_equal(bg_download(NULL, "http://192.0.2.1:8080/catalog.json", &d), BANGER_ENETWORK);
	assert_non_null(strstr(banger_error_last()->message, "refusing plain HTTP to 192.0.2.1:8080"));
	assert_int_equal(d.bytes, 0);
	/* the same rule as registries: loopback, or listed */
	assert_int_equal(bg_plain_http_check("http://127.0.0.1:8080/c.json", NULL, "t"), 0);
	assert_int_equal(bg_plain_http_check("http://[::1]:8080/c.json", NULL, "t"), 0);
	assert_int_equal(bg_plain_http_check("http://localhost/c.json", "", "t"), 0);
	assert_int_equal(bg_plain_http_check("http://192.0.2.1/c.json", "192.0.2.1", "t"), 0);
	assert_int_equal(bg_plain_http_check("http://192.0.2.1:81/c.json", "192.0.2.1:80", "t"), BANGER_ENETWORK);
	assert_int_equal(bg_plain_http_check("HTTP://kernels.example/c.json", NULL, "t"), BANGER_ENETWORK);
	assert_int_equal(bg_plain_http_check("https://kernels.example/c.json", NULL, "t"), 0);
	assert_int_equal(bg_plain_http_check("file:///srv/c.json", NULL, "t"), 0);
	bg_buf_free(&body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_catalog_valid),
		cmocka_unit_test(test_catalog_malformed),
		cmocka_unit_test(test_catalog_alloc_failures),
		cmocka_unit_test(test_url_resolution),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_detect_elf),
		cmocka_unit_test(test_detect_bzimage_and_junk),
		cmocka_unit_test(test_bzimage_layout),
		cmocka_unit_test(test_extract),
		cmocka_unit_test(test_extract_file),
		cmocka_unit_test(test_catalog_plain_http),
		cmocka_unit_test(test_store_kernels),
		cmocka_unit_test(test_host_arch),
		cmocka_unit_test(test_check_vmm),
		cmocka_unit_test(test_shipped_examples),
		cmocka_unit_test(test_import_alloc_failures),
		cmocka_unit_test(test_pull_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
