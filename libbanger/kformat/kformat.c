/* Kernel formats: an ELF vmlinux (with or without the PVH entry note) or
 * an x86 bzImage ("HdrS" at 0x202, Linux boot protocol).  Detection reads
 * headers through a small positional reader, so the same code looks at a
 * file on disk and at a buffer (the ELF extracted from a bzImage). */
#include "kformat.h"

#include <ctype.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Boot header offsets (Documentation/x86/boot.rst). */
#define BZ_SETUP_SECTS 0x1f1
#define BZ_HEADER_MAGIC 0x202 /* "HdrS" */
#define BZ_VERSION 0x206
#define BZ_KERNEL_VERSION 0x20e
#define BZ_XLOADFLAGS 0x236
#define BZ_PAYLOAD_OFFSET 0x248 /* protocol 2.08+, from the protected-mode start */
#define BZ_PAYLOAD_LENGTH 0x24c
#define XLF_KERNEL_64 (1u << 0)
/* XEN_ELFNOTE_PHYS32_ENTRY: the PVH entry point (include/xen/interface/elfnote.h). */
#define XEN_ELFNOTE_PHYS32_ENTRY 18

const char *bg_kernel_format_name(bg_kernel_format f)
{
	switch (f) {
	case BG_KFMT_ELF: return "elf";
	case BG_KFMT_BZIMAGE: return "bzimage";
	default: return "unknown";
	}
}

/* ---- positional readers ---- */
typedef struct reader {
	/* Read up to n bytes at off; returns the count (short at the end). */
	size_t (*read_at)(struct reader *r, uint64_t off, void *dst, size_t n);
	const unsigned char *buf;
	size_t len;
	int fd;
	uint64_t size;
	int err; /* errno of a failed pread */
} reader;

static size_t buf_read_at(reader *r, uint64_t off, void *dst, size_t n)
{
	if (off >= r->len)
		return 0;
	if (n > r->len - off)
		n = r->len - (size_t)off;
	memcpy(dst, r->buf + off, n);
	return n;
}

static size_t fd_read_at(reader *r, uint64_t off, void *dst, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k = pread(r->fd, (char *)dst + got, n - got, (off_t)(off + got));
		if (k < 0) {
			if (errno == EINTR)
				continue;
			r->err = errno;
			break;
		}
		if (k == 0)
			break;
		got += (size_t)k;
	}
	return got;
}

static uint16_t le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static const char *elf_arch(unsigned machine)
{
	switch (machine) {
	case EM_X86_64: return "x86_64";
	case EM_AARCH64: return "aarch64";
	case EM_386: return "i386";
	case EM_RISCV: return "riscv64";
	case EM_PPC64: return "ppc64";
	case EM_S390: return "s390x";
	default: return "unknown";
	}
}

/* The headers of an ELF file that matter here, in host order. */
typedef struct {
	bool is64;
	unsigned machine;
	uint64_t phoff, shoff;
	unsigned phentsize, phnum, shentsize, shnum;
} elf_hdr;

static bool parse_ehdr(elf_hdr *h, const unsigned char *b, size_t len)
{
	if (len < EI_NIDENT || memcmp(b, ELFMAG, SELFMAG) != 0)
		return false;
	if (b[EI_DATA] != ELFDATA2LSB) /* every architecture banger boots is little-endian */
		return false;
	memset(h, 0, sizeof(*h));
	if (b[EI_CLASS] == ELFCLASS64 && len >= sizeof(Elf64_Ehdr)) {
		Elf64_Ehdr e;
		memcpy(&e, b, sizeof(e));
		h->is64 = true;
		h->machine = e.e_machine;
		h->phoff = e.e_phoff;
		h->shoff = e.e_shoff;
		h->phentsize = e.e_phentsize;
		h->phnum = e.e_phnum;
		h->shentsize = e.e_shentsize;
		h->shnum = e.e_shnum;
		return true;
	}
	if (b[EI_CLASS] == ELFCLASS32 && len >= sizeof(Elf32_Ehdr)) {
		Elf32_Ehdr e;
		memcpy(&e, b, sizeof(e));
		h->machine = e.e_machine;
		h->phoff = e.e_phoff;
		h->shoff = e.e_shoff;
		h->phentsize = e.e_phentsize;
		h->phnum = e.e_phnum;
		h->shentsize = e.e_shentsize;
		h->shnum = e.e_shnum;
		return true;
	}
	return false;
}

typedef struct {
	uint32_t type;
	uint64_t offset, filesz;
} elf_phdr;

static bool read_phdr(reader *r, const elf_hdr *h, unsigned i, elf_phdr *out)
{
	if (h->is64) {
		Elf64_Phdr p;
		if (h->phentsize < sizeof(p) ||
		    r->read_at(r, h->phoff + (uint64_t)i * h->phentsize, &p, sizeof(p)) != sizeof(p))
			return false;
		out->type = p.p_type;
		out->offset = p.p_offset;
		out->filesz = p.p_filesz;
	} else {
		Elf32_Phdr p;
		if (h->phentsize < sizeof(p) ||
		    r->read_at(r, h->phoff + (uint64_t)i * h->phentsize, &p, sizeof(p)) != sizeof(p))
			return false;
		out->type = p.p_type;
		out->offset = p.p_offset;
		out->filesz = p.p_filesz;
	}
	return true;
}

/* Does a PT_NOTE segment carry the Xen PVH entry note? */
static bool notes_have_pvh(const unsigned char *n, size_t len)
{
	size_t off = 0;
	while (len - off >= 12) {
		uint32_t namesz = le32(n + off), descsz = le32(n + off + 4), type = le32(n + off + 8);
		size_t name_pad = ((size_t)namesz + 3) & ~(size_t)3;
		size_t desc_pad = ((size_t)descsz + 3) & ~(size_t)3;
		if (namesz > len || descsz > len || name_pad > len - off - 12 ||
		    desc_pad > len - off - 12 - name_pad)
			return false;
		const unsigned char *name = n + off + 12;
		if (type == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 && memcmp(name, "Xen", 4) == 0)
			return true;
		off += 12 + name_pad + desc_pad;
	}
	return false;
}

static int detect_elf(bg_kernel_info *out, reader *r, const unsigned char *head, size_t hlen)
{
	elf_hdr h;
	if (!parse_ehdr(&h, head, hlen))
		return bg_error(BANGER_EINVALID, "ELF file is not a little-endian 32- or 64-bit image");
	out->format = BG_KFMT_ELF;
	out->elf64 = h.is64;
	out->arch = elf_arch(h.machine);
	if (h.phnum == 0 || h.phnum > KFORMAT_PHNUM_MAX)
		return bg_error(BANGER_EINVALID, "ELF file has no usable program headers: not a kernel image");
	for (unsigned i = 0; i < h.phnum; i++) {
		elf_phdr p;
		if (!read_phdr(r, &h, i, &p))
			return bg_error(BANGER_EINVALID, "ELF program header %u lies outside the file", i);
		if (p.type != PT_NOTE || p.filesz == 0 || p.filesz > KFORMAT_NOTES_MAX)
			continue;
		unsigned char *notes = bg_malloc((size_t)p.filesz);
		if (!notes)
			return bg_error_oom();
		size_t got = r->read_at(r, p.offset, notes, (size_t)p.filesz);
		bool pvh = notes_have_pvh(notes, got);
		bg_free(notes);
		if (pvh) {
			out->pvh = true;
			break;
		}
	}
	return 0;
}

static void copy_release(char *dst, size_t cap, const char *s, size_t len)
{
	size_t n = 0;
	while (n < len && n + 1 < cap && s[n] && !isspace((unsigned char)s[n]) && isprint((unsigned char)s[n]))
		n++;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

static void detect_bzimage(bg_kernel_info *out, reader *r, const unsigned char *head, size_t hlen)
{
	out->format = BG_KFMT_BZIMAGE;
	out->boot_protocol = le16(head + BZ_VERSION);
	bool is32 = out->boot_protocol >= 0x020c && hlen > BZ_XLOADFLAGS + 1 &&
		    !(le16(head + BZ_XLOADFLAGS) & XLF_KERNEL_64);
	out->arch = is32 ? "i386" : "x86_64";
	uint16_t vptr = hlen > BZ_KERNEL_VERSION + 1 ? le16(head + BZ_KERNEL_VERSION) : 0;
	if (out->boot_protocol >= 0x0200 && vptr) {
		char v[80] = "";
		size_t got = r->read_at(r, (uint64_t)vptr + 0x200, v, sizeof(v) - 1);
		v[got] = '\0';
		if (isdigit((unsigned char)v[0]))
			copy_release(out->version, sizeof(out->version), v, got);
	}
}

static int detect(bg_kernel_info *out, reader *r)
{
	memset(out, 0, sizeof(*out));
	out->arch = "unknown";
	unsigned char head[1024];
	size_t hlen = r->read_at(r, 0, head, sizeof(head));
	if (r->err)
		return bg_error_os(BANGER_EIO, r->err, "read kernel header");
	if (hlen >= SELFMAG && memcmp(head, ELFMAG, SELFMAG) == 0)
		return detect_elf(out, r, head, hlen);
	if (hlen >= BZ_HEADER_MAGIC + 4 && memcmp(head + BZ_HEADER_MAGIC, "HdrS", 4) == 0) {
		detect_bzimage(out, r, head, hlen);
		return 0;
	}
	if (hlen >= 0x40 && memcmp(head + 0x38, "ARM\x64", 4) == 0)
		return bg_error(BANGER_EUNSUPPORTED,
				"this is an arm64 Image kernel; banger boots x86_64 ELF vmlinux and bzImage kernels");
	return bg_error(BANGER_EINVALID,
			"not a kernel banger can boot: neither an ELF vmlinux (no \\x7fELF magic) nor a "
			"bzImage (no \"HdrS\" at offset 0x202)");
}

int bg_kernel_detect_buf(bg_kernel_info *out, const unsigned char *buf, size_t len)
{
	reader r = { .read_at = buf_read_at, .buf = buf, .len = len, .fd = -1 };
	return detect(out, &r);
}

/* Find "Linux version <release>" (linux_banner) in an ELF vmlinux. */
static void scan_banner(bg_kernel_info *out, int fd)
{
	static const char needle[] = "Linux version ";
	const size_t nlen = sizeof(needle) - 1, chunk = 1 << 20, keep = 96;
	char *b = bg_malloc(chunk + keep);
	if (!b)
		return;
	size_t have = 0;
	uint64_t off = 0;
	for (;;) {
		ssize_t k = pread(fd, b + have, chunk, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		off += (uint64_t)k;
		have += (size_t)k;
		for (char *p = b; (p = memmem(p, have - (size_t)(p - b), needle, nlen)); p++) {
			size_t rest = have - (size_t)(p - b) - nlen;
			if (rest < keep - nlen && (size_t)k == chunk)
				break; /* the release may continue in the next chunk */
			if (isdigit((unsigned char)p[nlen])) {
				copy_release(out->version, sizeof(out->version), p + nlen, rest);
				bg_free(b);
				return;
			}
		}
		size_t tail = have < keep ? have : keep;
		memmove(b, b + have - tail, tail);
		have = tail;
	}
	bg_free(b);
}

int bg_kernel_detect_file(bg_kernel_info *out, const char *path, bool find_release)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bg_error_os(bg_code_from_errno(errno), errno, "open %s", path);
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) != 0)
		rc = bg_error_os(BANGER_EIO, errno, "stat %s", path);
	else if (!S_ISREG(st.st_mode))
		rc = bg_error(BANGER_EINVALID, "%s is not a regular file", path);
	if (!rc) {
		reader r = { .read_at = fd_read_at, .fd = fd, .size = (uint64_t)st.st_size };
		rc = detect(out, &r);
		if (rc == 0 && find_release && out->format == BG_KFMT_ELF)
			scan_banner(out, fd);
		if (rc)
			bg_error_prefix("%s", path);
	}
	close(fd);
	return rc;
}

uint64_t bg_elf_extent(const unsigned char *buf, size_t len)
{
	elf_hdr h;
	if (!parse_ehdr(&h, buf, len))
		return 0;
	uint64_t end = h.is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	uint64_t ph_end = h.phoff + (uint64_t)h.phnum * h.phentsize;
	uint64_t sh_end = h.shoff + (uint64_t)h.shnum * h.shentsize;
	if (ph_end > end)
		end = ph_end;
	if (sh_end > end)
		end = sh_end;
	reader r = { .read_at = buf_read_at, .buf = buf, .len = len, .fd = -1 };
	for (unsigned i = 0; i < h.phnum; i++) {
		elf_phdr p;
		if (!read_phdr(&r, &h, i, &p))
			return UINT64_MAX; /* headers beyond the data: incomplete */
		if (p.offset + p.filesz > end)
			end = p.offset + p.filesz;
	}
	return end;
}

int bg_bzimage_layout_read(bg_bzimage_layout *out, const unsigned char *buf, size_t len)
{
	memset(out, 0, sizeof(*out));
	if (len < BZ_HEADER_MAGIC + 4 || memcmp(buf + BZ_HEADER_MAGIC, "HdrS", 4) != 0)
		return bg_error(BANGER_EINVALID, "not a bzImage (no \"HdrS\" at offset 0x202)");
	if (len < BZ_PAYLOAD_LENGTH + 4)
		return bg_error(BANGER_EINVALID, "bzImage of %zu bytes ends inside its boot header", len);
	unsigned setup_sects = buf[BZ_SETUP_SECTS] ? buf[BZ_SETUP_SECTS] : 4;
	out->pm_start = ((uint64_t)setup_sects + 1) * 512;
	out->boot_protocol = le16(buf + BZ_VERSION);
	if (out->boot_protocol < 0x0208 || out->pm_start >= len)
		return 0;
	/* Both fields are 32 bits, so the sum cannot wrap a uint64_t. */
	uint64_t off = out->pm_start + le32(buf + BZ_PAYLOAD_OFFSET);
	uint64_t plen = le32(buf + BZ_PAYLOAD_LENGTH);
	if (plen > 0 && off < len && plen <= len - off) {
		out->has_payload = true;
		out->payload_offset = off;
		out->payload_length = plen;
	}
	return 0;
}
