/* Probing the host: KVM, device-mapper, tun, loop, binaries. */
#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static bool cpu_has_virt_flag(void)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	if (!f)
		return false;
	char line[4096];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		/* strtok_r: banger_host_features() is documented thread-safe */
		char *save = NULL;
		for (char *t = strtok_r(line, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save))
			if (strcmp(t, "vmx") == 0 || strcmp(t, "svm") == 0)
				found = true;
		break;
	}
	fclose(f);
	return found;
}

static bool misc_has(const char *name)
{
	FILE *f = fopen("/proc/misc", "re");
	if (!f)
		return false;
	char line[256];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *n = strchr(line, ' ');
		if (n && strncmp(n + 1, name, strlen(name)) == 0 && n[1 + strlen(name)] == '\n')
			found = true;
	}
	fclose(f);
	return found;
}

static bool char_dev_opens(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static void probe_kvm(bg_host_probe *p)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		p->dev_kvm_opens = ioctl(fd, KVM_GET_API_VERSION, 0) == KVM_API_VERSION;
		close(fd);
	}
	p->cpu_virt_flag = cpu_has_virt_flag();
	p->kvm_pvm = bg_path_exists("/sys/module/kvm_pvm");
	bool vendor = bg_path_exists("/sys/module/kvm_intel") || bg_path_exists("/sys/module/kvm_amd");
	p->kvm_usable = p->dev_kvm_opens && p->cpu_virt_flag && vendor;
	if (!bg_path_exists("/dev/kvm"))
		snprintf(p->kvm_detail, sizeof(p->kvm_detail), "/dev/kvm does not exist");
	else if (!p->dev_kvm_opens)
		snprintf(p->kvm_detail, sizeof(p->kvm_detail), "/dev/kvm exists but cannot be opened read-write by this user");
	else if (p->kvm_usable)
		snprintf(p->kvm_detail, sizeof(p->kvm_detail), "/dev/kvm works (%s)",
			 bg_path_exists("/sys/module/kvm_intel") ? "kvm_intel" : "kvm_amd");
	else if (p->kvm_pvm)
		snprintf(p->kvm_detail, sizeof(p->kvm_detail),
			 "/dev/kvm opens, but the CPU shows no vmx/svm flag and the loaded module is kvm_pvm, "
			 "which boots no ordinary guest kernel");
	else
		snprintf(p->kvm_detail, sizeof(p->kvm_detail),
			 "/dev/kvm opens, but the CPU shows %s and no kvm_intel/kvm_amd module is loaded",
			 p->cpu_virt_flag ? "vmx/svm" : "no vmx/svm flag");
}

int bg_host_probe_run(bg_host_probe *p, const char *fc_bin, const char *qemu_bin)
{
	memset(p, 0, sizeof(*p));
	probe_kvm(p);
	p->device_mapper = bg_path_exists("/dev/mapper/control") && misc_has("device-mapper");
	p->tun = char_dev_opens("/dev/net/tun", O_RDWR);
	p->loop = bg_path_exists("/dev/loop-control");
	p->vhost_vsock = bg_path_exists("/dev/vhost-vsock");
	p->root = geteuid() == 0;
	/* a lookup that failed for want of memory must not read as "not
	 * installed" */
	if ((!(p->firecracker = bg_which(fc_bin ? fc_bin : "firecracker")) && errno == ENOMEM) ||
	    (!(p->qemu = bg_which(qemu_bin ? qemu_bin : "qemu-system-x86_64")) && errno == ENOMEM) ||
	    (!(p->nft = bg_which("nft")) && errno == ENOMEM)) {
		bg_host_probe_free(p);
		return bg_error_oom();
	}
	return 0;
}

void bg_host_probe_free(bg_host_probe *p)
{
	if (!p)
		return;
	bg_free(p->firecracker);
	bg_free(p->qemu);
	bg_free(p->nft);
	memset(p, 0, sizeof(*p));
}

BANGER_EXTERN(int) banger_host_features(uint32_t *out)
{
	if (!out)
		return bg_error(BANGER_EINVALID, "out must not be NULL");
	bg_host_probe p;
	int rc = bg_host_probe_run(&p, NULL, NULL);
	if (rc)
		return rc;
	uint32_t f = 0;
	if (p.kvm_usable) f |= BANGER_FEATURE_KVM;
	if (p.firecracker) f |= BANGER_FEATURE_FIRECRACKER;
	if (p.qemu) f |= BANGER_FEATURE_QEMU;
	if (p.device_mapper) f |= BANGER_FEATURE_DEVICE_MAPPER;
	if (p.tun) f |= BANGER_FEATURE_TUN;
	if (p.loop) f |= BANGER_FEATURE_LOOP;
	if (p.nft) f |= BANGER_FEATURE_NFT;
	if (p.vhost_vsock) f |= BANGER_FEATURE_VHOST_VSOCK;
	if (p.root) f |= BANGER_FEATURE_ROOT;
	bg_host_probe_free(&p);
	*out = f;
	return 0;
}
