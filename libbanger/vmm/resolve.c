/* Choosing a driver (auto | firecracker | qemu) from what the host offers,
 * and recognising kernel image formats. */
#include "vmm.h"
#include "../host/probe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- kernel formats ---- */

static uint64_t le(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static bool read_at(int fd, void *buf, size_t n, uint64_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		got += (size_t)k;
	}
	return true;
}

#define NOTES_MAX 65536

/* Does an ELF64 image carry XEN_ELFNOTE_PHYS32_ENTRY (the PVH entry)? */
static int elf_has_pvh_note(int fd, bool *found)
{
	*found = false;
	unsigned char eh[64];
	if (!read_at(fd, eh, sizeof(eh), 0) || eh[4] != 2 /* ELFCLASS64 */ || eh[5] != 1 /* LSB */)
		return 0;
	uint64_t phoff = le(eh + 32, 8);
	uint64_t phentsize = le(eh + 54, 2), phnum = le(eh + 56, 2);
	if (phentsize < 56 || phnum > 256)
		return 0;
	/* heap, not stack: a host program's threads may have small stacks */
	unsigned char *notes = bg_malloc(NOTES_MAX);
	if (!notes)
		return bg_error_oom();
	for (uint64_t i = 0; i < phnum && !*found; i++) {
		unsigned char ph[56];
		if (!read_at(fd, ph, sizeof(ph), phoff + i * phentsize))
			break;
		if (le(ph, 4) != 4 /* PT_NOTE */)
			continue;
		uint64_t off = le(ph + 8, 8), size = le(ph + 32, 8);
		if (size > NOTES_MAX)
			size = NOTES_MAX;
		if (!read_at(fd, notes, (size_t)size, off))
			continue;
		uint64_t p = 0;
		while (p + 12 <= size) {
			uint64_t namesz = le(notes + p, 4), descsz = le(notes + p + 4, 4), type = le(notes + p + 8, 4);
			uint64_t name = p + 12;
			uint64_t desc = name + ((namesz + 3) & ~3ull);
			if (namesz > size || descsz > size || desc > size)
				break;
			if (namesz == 4 && memcmp(notes + name, "Xen", 4) == 0 && type == 18) {
				*found = true;
				break;
			}
			p = desc + ((descsz + 3) & ~3ull);
		}
	}
	bg_free(notes);
	return 0;
}

int bg_vmm_kernel_format(const char **fmt, bool *pvh, const char *path)
{
	*fmt = NULL;
	if (pvh)
		*pvh = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bg_error_os(bg_code_from_errno(errno), errno, "kernel %s", path);
	unsigned char head[0x210];
	ssize_t n = pread(fd, head, sizeof(head), 0);
	if (n >= 4 && memcmp(head, "\x7f" "ELF", 4) == 0) {
		*fmt = "elf";
		bool has = false;
		int rc = pvh ? elf_has_pvh_note(fd, &has) : 0;
		if (rc) {
			close(fd);
			*fmt = NULL;
			return rc;
		}
		if (pvh)
			*pvh = has;
	} else if (n >= 0x206 && head[0x1fe] == 0x55 && head[0x1ff] == 0xaa && memcmp(head + 0x202, "HdrS", 4) == 0) {
		*fmt = "bzimage";
	}
	close(fd);
	return 0;
}

/* ---- drivers ---- */

int bg_vmm_driver_init(bg_vmm_driver *out, const char *name, const char *binary, bool kvm, bool vhost_vsock)
{
	memset(out, 0, sizeof(*out));
	if (bg_streq(name, "firecracker"))
		bg_vmm_firecracker_init(out);
	else if (bg_streq(name, "qemu"))
		bg_vmm_qemu_init(out, kvm, vhost_vsock);
	else
		return bg_error(BANGER_EINVALID, "unknown VMM driver \"%s\" (firecracker or qemu)", name ? name : "");
	if (binary && !(out->binary = bg_strdup(binary))) {
		memset(out, 0, sizeof(*out));
		return bg_error_oom();
	}
	return 0;
}

void bg_vmm_driver_free(bg_vmm_driver *d)
{
	if (!d)
		return;
	bg_free(d->binary);
	memset(d, 0, sizeof(*d));
}

int bg_vmm_resolve(bg_vmm_driver *out, const char *name, const char *firecracker_bin,
		   const char *qemu_bin, const char **notice)
{
	memset(out, 0, sizeof(*out));
	if (notice)
		*notice = NULL;
	if (!name || !*name)
		name = "auto";
	if (!bg_streq(name, "auto") && !bg_streq(name, "firecracker") && !bg_streq(name, "qemu"))
		return bg_error(BANGER_EINVALID, "unknown vmm \"%s\" (auto, firecracker or qemu)", name);

	bg_host_probe p;
	int rc = bg_host_probe_run(&p, firecracker_bin, qemu_bin);
	if (rc)
		return rc;
	const char *fc_name = firecracker_bin ? firecracker_bin : "firecracker";
	const char *qemu_name = qemu_bin ? qemu_bin : "qemu-system-x86_64";
	char why[128] = "";
	const char *pick = name;

	if (bg_streq(name, "auto")) {
		if (p.firecracker && p.kvm_usable) {
			pick = "firecracker";
		} else {
			pick = "qemu";
			if (!p.firecracker)
				snprintf(why, sizeof(why), "%s not found", fc_name);
			else
				snprintf(why, sizeof(why), "KVM cannot run guests here");
		}
	}
	if (bg_streq(pick, "firecracker")) {
		if (!p.firecracker) {
			rc = bg_error(BANGER_EUNSUPPORTED, "vmm firecracker: %s not found (set firecracker_bin or use vmm = qemu)",
				      fc_name);
			goto out;
		}
		rc = bg_vmm_driver_init(out, "firecracker", p.firecracker, true, p.vhost_vsock);
		goto out;
	}
	if (!p.qemu) {
		if (*why)
			rc = bg_error(BANGER_EUNSUPPORTED, "no usable VMM: %s, and %s not found", why, qemu_name);
		else
			rc = bg_error(BANGER_EUNSUPPORTED, "vmm qemu: %s not found (set qemu_bin)", qemu_name);
		goto out;
	}
	rc = bg_vmm_driver_init(out, "qemu", p.qemu, p.kvm_usable, p.vhost_vsock);
	if (rc)
		goto out;
	if (*why || !p.kvm_usable) {
		if (p.kvm_usable)
			snprintf(out->notice, sizeof(out->notice), "%s; using qemu with KVM", why);
		else
			snprintf(out->notice, sizeof(out->notice), "%s%susing qemu with TCG (software emulation, slow): %s",
				 why, *why ? "; " : "", p.kvm_detail);
		if (notice)
			*notice = out->notice;
	}
out:
	bg_host_probe_free(&p);
	return rc;
}
