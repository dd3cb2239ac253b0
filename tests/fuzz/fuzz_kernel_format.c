/* Kernel images: ELF / bzImage detection (from memory and from a file,
 * which reads headers and notes where they lie and scans for the release
 * banner), the ELF extent, the bzImage layout, and bzImage -> vmlinux
 * extraction (boot header payload, magic scanning, every decompressor
 * libarchive has).
 *
 * Checked: a detected kernel has a known format and an architecture
 * name, its release string is printable; an extracted vmlinux is an ELF
 * image complete per its own headers; a bzImage's payload lies inside
 * the input; detection from memory and from a file agree. */
#include "fuzz.h"
#include "../../libbanger/kernel/kernel.h"

#include <sys/mman.h>
#include <unistd.h>

static void check_info(const bg_kernel_info *k)
{
	FUZZ_CHECK(k->format == BG_KFMT_ELF || k->format == BG_KFMT_BZIMAGE);
	FUZZ_CHECK(k->arch && *k->arch);
	FUZZ_CHECK(memchr(k->version, '\0', sizeof(k->version)) != NULL);
	for (const char *p = k->version; *p; p++)
		FUZZ_CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bg_kernel_info mem, file;
	int rc_mem = bg_kernel_detect_buf(&mem, data, size);
	if (rc_mem == 0)
		check_info(&mem);
	(void)bg_elf_extent(data, size);
	bg_bzimage_layout lay;
	if (bg_bzimage_layout_read(&lay, data, size) == 0 && lay.has_payload)
		FUZZ_CHECK(lay.payload_length > 0 && lay.payload_offset >= lay.pm_start &&
			   lay.payload_offset < size && lay.payload_length <= size - lay.payload_offset);

	/* the same bytes as a file */
	int fd = memfd_create("fuzz-kernel", MFD_CLOEXEC);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int rc_file = bg_kernel_detect_file(&file, path, true);
	if (rc_file == 0) {
		check_info(&file);
		FUZZ_CHECK(rc_mem == 0 && file.format == mem.format && strcmp(file.arch, mem.arch) == 0);
	}
	close(fd);

	unsigned char *vmlinux = NULL;
	size_t vlen = 0;
	if (bg_kernel_extract_buf(&vmlinux, &vlen, data, size) == 0) {
		FUZZ_CHECK(vmlinux && vlen >= 4 && memcmp(vmlinux, "\177ELF", 4) == 0);
		uint64_t extent = bg_elf_extent(vmlinux, vlen);
		FUZZ_CHECK(extent > 0 && extent <= vlen);
		bg_kernel_info inner;
		if (bg_kernel_detect_buf(&inner, vmlinux, vlen) == 0)
			FUZZ_CHECK(inner.format == BG_KFMT_ELF);
		bg_free(vmlinux);
	} else {
		FUZZ_CHECK(vmlinux == NULL && vlen == 0);
	}
	return 0;
}
