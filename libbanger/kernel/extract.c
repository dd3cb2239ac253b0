/* Extract the ELF vmlinux a bzImage carries, so that Firecracker (which
 * boots only ELF on x86_64 up to 1.16) can boot a distribution kernel.
 *
 * A bzImage is real-mode setup code, then the protected-mode part: a small
 * decompressor with the compressed vmlinux as its payload.  Where that
 * part starts and, since boot protocol 2.08, where the payload lies is
 * read by ../kformat (bg_bzimage_layout_read), the one parser of kernel
 * headers; so is whether the result is an ELF image complete per its
 * headers (bg_elf_extent).  Older or odd images are scanned for the
 * compression magics, as Linux's scripts/extract-vmlinux does.  libarchive
 * ("raw" format over every filter) decompresses gzip, xz, lzma, bzip2, lz4
 * and zstd. */
#include "kernel.h"

#include <archive.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Upper bounds: a bzImage we read, and the vmlinux we produce. */
#define BZIMAGE_MAX (256u << 20)
#define VMLINUX_MAX (1024u << 20)
#define SCAN_ATTEMPTS_MAX 32

static const struct {
	const char *name;
	const unsigned char *magic;
	size_t len;
} magics[] = {
	{ "gzip", (const unsigned char *)"\037\213\010", 3 },
	{ "xz", (const unsigned char *)"\3757zXZ\000", 6 },
	{ "bzip2", (const unsigned char *)"BZh", 3 },
	{ "lzma", (const unsigned char *)"\135\000\000\000", 4 },
	{ "lzo", (const unsigned char *)"\211LZO", 4 },
	{ "lz4", (const unsigned char *)"\002!L\030", 4 },
	{ "zstd", (const unsigned char *)"(\265/\375", 4 },
};

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static const char *magic_name(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < BG_ARRAY_SIZE(magics); i++)
		if (len >= magics[i].len && memcmp(p, magics[i].magic, magics[i].len) == 0)
			return magics[i].name;
	return NULL;
}

static bool elf_complete(const unsigned char *p, size_t len)
{
	uint64_t extent = bg_elf_extent(p, len);
	return extent > 0 && extent <= len;
}

static bool is_elf(const unsigned char *p, size_t len)
{
	return bg_elf_extent(p, len) > 0;
}

/* Decompress data[0..len) into *out.  Returns 0 when the output is a
 * complete ELF image; a decompressor complaint after the whole ELF came
 * out (the kernel build appends the uncompressed size after most
 * formats) is not an error. */
static int try_decompress(bg_buf *out, const unsigned char *data, size_t len, char *why, size_t whylen)
{
	struct archive *a = archive_read_new();
	if (!a)
		return bg_error_oom();
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	out->len = 0;
	int rc = 0;
	struct archive_entry *e;
	if (archive_read_open_memory(a, data, len) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK) {
		snprintf(why, whylen, "%s", archive_error_string(a) ? archive_error_string(a) : "unreadable");
		archive_read_free(a);
		return BANGER_EINVALID;
	}
	if (archive_filter_count(a) < 2) { /* only the "none" filter: nothing was decompressed */
		snprintf(why, whylen, "not a compressed stream libarchive knows");
		archive_read_free(a);
		return BANGER_EINVALID;
	}
	bool stream_error = false;
	for (;;) {
		const void *blk;
		size_t n;
		la_int64_t off;
		int r = archive_read_data_block(a, &blk, &n, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			snprintf(why, whylen, "%s", archive_error_string(a) ? archive_error_string(a) : "decompression failed");
			stream_error = true;
			break;
		}
		if (out->len + n > VMLINUX_MAX) {
			snprintf(why, whylen, "decompressed kernel exceeds %u MiB", VMLINUX_MAX >> 20);
			rc = BANGER_EINVALID;
			break;
		}
		if (bg_buf_put(out, blk, n)) {
			rc = bg_error_oom();
			break;
		}
	}
	archive_read_free(a);
	if (rc)
		return rc;
	if (!is_elf((const unsigned char *)out->data, out->len)) {
		if (!stream_error)
			snprintf(why, whylen, "the decompressed payload is not an ELF image");
		return BANGER_EINVALID;
	}
	if (!elf_complete((const unsigned char *)out->data, out->len)) {
		if (!stream_error)
			snprintf(why, whylen, "the decompressed ELF image is incomplete");
		return BANGER_EINVALID;
	}
	return 0;
}

/* CRC-32 (IEEE), bitwise: only ever run over a few bytes. */
static uint32_t crc32_small(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
	}
	return ~c;
}

/* Decompress a stream that may be followed by other bytes: as is; then
 * without the 4-byte uncompressed size the kernel build appends to every
 * format but gzip; then, for xz (whose decoder refuses trailing bytes),
 * cut after each well-formed stream footer (CRC32, backward size, the
 * header's flags, "YZ"). */
static int try_stream(bg_buf *out, const unsigned char *data, size_t len, const char *fmt, char *why,
		      size_t whylen)
{
	int rc = try_decompress(out, data, len, why, whylen);
	if (rc != BANGER_EINVALID)
		return rc;
	char ignored[160];
	if (fmt && strcmp(fmt, "gzip") != 0 && len > 16) {
		rc = try_decompress(out, data, len - 4, ignored, sizeof(ignored));
		if (rc != BANGER_EINVALID)
			return rc;
	}
	if (fmt && strcmp(fmt, "xz") == 0 && len >= 24) {
		int tries = 0;
		for (size_t end = 24; end <= len && tries < 8; end++) {
			const unsigned char *f = data + end - 12;
			if (f[10] != 'Y' || f[11] != 'Z' || f[8] != data[6] || f[9] != data[7] ||
			    crc32_small(f + 4, 6) != le32(f))
				continue;
			tries++;
			rc = try_decompress(out, data, end, ignored, sizeof(ignored));
			if (rc != BANGER_EINVALID)
				return rc;
		}
	}
	return BANGER_EINVALID;
}

/* 1. Where the header says the payload is (kformat checked that it lies
 * inside the image).  0 with the vmlinux in b, BANGER_EINVALID (why says
 * what was there) to go on scanning, or BANGER_ENOMEM. */
static int from_header(bg_buf *b, const unsigned char *img, const bg_bzimage_layout *lay, char *why,
		       size_t whylen)
{
	if (!lay->has_payload || lay->payload_length < 4)
		return BANGER_EINVALID;
	const unsigned char *p = img + lay->payload_offset;
	size_t plen = (size_t)lay->payload_length;
	if (is_elf(p, plen)) { /* CONFIG_KERNEL_UNCOMPRESSED */
		if (!elf_complete(p, plen))
			return BANGER_EINVALID;
		return bg_buf_put(b, p, plen) ? bg_error_oom() : 0;
	}
	const char *fmt = magic_name(p, plen);
	char why1[200];
	int rc = try_stream(b, p, plen, fmt, why1, sizeof(why1));
	if (rc == BANGER_EINVALID)
		snprintf(why, whylen, "%s payload at offset %llu: %s", fmt ? fmt : "unknown",
			 (unsigned long long)lay->payload_offset, why1);
	return rc;
}

/* 2. Scan the protected-mode part for compression magics, as
 * scripts/extract-vmlinux does; why keeps the first failure when the
 * header had none to report. */
static int from_scan(bg_buf *b, const unsigned char *img, size_t len, const bg_bzimage_layout *lay, char *why,
		     size_t whylen)
{
	int attempts = 0;
	size_t from = lay->pm_start < len ? (size_t)lay->pm_start : 0;
	for (size_t i = from; i + 4 <= len && attempts < SCAN_ATTEMPTS_MAX; i++) {
		const char *fmt = magic_name(img + i, len - i);
		if (!fmt)
			continue;
		attempts++;
		char why2[160];
		int rc = try_stream(b, img + i, len - i, fmt, why2, sizeof(why2));
		if (rc != BANGER_EINVALID)
			return rc;
		if (!why[0])
			snprintf(why, whylen, "%s stream at offset %zu: %s", fmt, i, why2);
	}
	return BANGER_EINVALID;
}

int bg_kernel_extract_buf(unsigned char **out, size_t *outlen, const unsigned char *img, size_t len)
{
	*out = NULL;
	*outlen = 0;
	bg_bzimage_layout lay;
	int rc = bg_bzimage_layout_read(&lay, img, len);
	if (rc)
		return rc;
	bg_buf b = BG_BUF_INIT;
	char why[256] = "";
	rc = from_header(&b, img, &lay, why, sizeof(why));
	if (rc == BANGER_EINVALID)
		rc = from_scan(&b, img, len, &lay, why, sizeof(why));
	if (rc) {
		bg_buf_free(&b);
		if (rc != BANGER_EINVALID)
			return rc;
		return bg_error(BANGER_EINVALID, "no ELF vmlinux could be extracted from the bzImage%s%s",
				why[0] ? ": " : " (no compressed payload found)", why);
	}
	*outlen = b.len;
	*out = (unsigned char *)bg_buf_detach(&b);
	return *out ? 0 : bg_error_oom();
}

int bg_kernel_extract_file(const char *bzimage_path, const char *out_path)
{
	char *img = NULL;
	size_t len = 0;
	int rc = bg_read_file(&img, &len, bzimage_path, BZIMAGE_MAX);
	if (rc)
		return rc;
	unsigned char *elf = NULL;
	size_t elflen = 0;
	rc = bg_kernel_extract_buf(&elf, &elflen, (const unsigned char *)img, len);
	bg_free(img);
	if (rc) {
		bg_error_prefix("%s", bzimage_path);
		return rc;
	}
	int fd = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = bg_error_os(bg_code_from_errno(errno), errno, "create %s", out_path);
		bg_free(elf);
		return rc;
	}
	size_t off = 0;
	while (off < elflen && !rc) {
		ssize_t n = write(fd, elf + off, elflen - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			rc = bg_error_os(BANGER_EIO, errno, "write %s", out_path);
		else
			off += (size_t)n;
	}
	if (!rc && fsync(fd) != 0)
		rc = bg_error_os(BANGER_EIO, errno, "fsync %s", out_path);
	close(fd);
	bg_free(elf);
	if (rc)
		unlink(out_path);
	return rc;
}
