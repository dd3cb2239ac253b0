/*
 * Private declarations of the kernel image parser: the one place that
 * reads a kernel file's headers.  An ELF vmlinux (32- or 64-bit, little
 * endian, with or without the PVH entry note) or an x86 bzImage ("HdrS"
 * at 0x202, Linux boot protocol).  Both the kernel module (install,
 * import, which file a VM boots) and the VMM drivers (their early checks)
 * ask it; it depends on core only.
 *
 * Bounds: at most KFORMAT_PHNUM_MAX program headers, every one inside the
 * file; a PT_NOTE segment is read only up to KFORMAT_NOTES_MAX bytes and
 * each note must lie inside its segment; a bzImage's payload must lie
 * inside the image.  tests/fuzz/fuzz_kernel_format.c
 * runs every entry point over its corpus.
 */
#ifndef BG_KFORMAT_H
#define BG_KFORMAT_H

#include "../core/core.h"

/* A vmlinux has a handful of program headers and a notes segment of a
 * few hundred bytes: anything far beyond is not a kernel banger boots. */
#define KFORMAT_PHNUM_MAX 256
#define KFORMAT_NOTES_MAX (64u * 1024u)

typedef enum {
	BG_KFMT_UNKNOWN = 0,
	BG_KFMT_ELF,
	BG_KFMT_BZIMAGE
} bg_kernel_format;

typedef struct {
	bg_kernel_format format;
	const char *arch;       /* static: "x86_64", "aarch64", "i386", ... or "unknown"
	                         * (the host's, in the same names: ../host, bg_host_arch) */
	bool elf64;
	bool pvh;               /* ELF carries XEN_ELFNOTE_PHYS32_ENTRY (PVH boot) */
	uint16_t boot_protocol; /* bzImage: 0x020f for 2.15 */
	char version[65];       /* kernel release when found, else "" */
} bg_kernel_info;

const char *bg_kernel_format_name(bg_kernel_format f); /* "elf", "bzimage", "unknown" */
/* Detect from the first bytes of a file (and, for ELF notes, offsets
 * within buf).  BANGER_EINVALID when neither ELF nor bzImage. */
int bg_kernel_detect_buf(bg_kernel_info *out, const unsigned char *buf, size_t len);
/* Detect a file: ELF headers and notes are read where they lie.  The
 * release comes from the bzImage header, or with find_release from the
 * "Linux version" banner of an ELF (which reads the whole file).  Errors:
 * the open's (BANGER_ENOTFOUND, BANGER_EPERM, ...), BANGER_EINVALID for
 * a file that is not a kernel (BANGER_EUNSUPPORTED for an arm64 Image),
 * BANGER_ENOMEM. */
int bg_kernel_detect_file(bg_kernel_info *out, const char *path, bool find_release);
/* Bytes an ELF image needs according to its headers (0 if not a
 * little-endian 32- or 64-bit ELF; UINT64_MAX when its program headers
 * lie beyond len).  A complete image is one with 0 < extent <= len. */
uint64_t bg_elf_extent(const unsigned char *buf, size_t len);

/* Where a bzImage keeps the kernel it decompresses (Linux boot protocol,
 * Documentation/arch/x86/boot.rst): the protected-mode part starts at
 * (setup_sects + 1) * 512, setup_sects 0 meaning 4; from protocol 2.08
 * the header names the payload, relative to that start. */
typedef struct {
	uint16_t boot_protocol;
	uint64_t pm_start;       /* offset of the protected-mode part (may lie beyond len) */
	bool has_payload;        /* the header names a payload, and it lies inside buf */
	uint64_t payload_offset; /* from the start of the image */
	uint64_t payload_length; /* > 0 */
} bg_bzimage_layout;

/* The layout of the bzImage in buf[0..len).  BANGER_EINVALID when buf
 * has no "HdrS" at 0x202 or ends before the header's payload fields
 * (0x250).  A payload the header places outside buf, or of length 0, is
 * reported as has_payload false, never as an offset to read. */
int bg_bzimage_layout_read(bg_bzimage_layout *out, const unsigned char *buf, size_t len);

#endif
