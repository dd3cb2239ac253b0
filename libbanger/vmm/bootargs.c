/* The guest kernel command line: the one place it is composed.
 *
 *   console=<driver's> reboot=k panic=1 the driver's serial console
 *                                        (ttyS0); reboot and panic leave
 *                                        the VMM (Firecracker exits on
 *                                        reset, QEMU runs -no-reboot)
 *   <the driver's kernel_args>           Firecracker: pci=off (virtio-mmio);
 *                                        QEMU: root=/dev/vda rw (Firecracker
 *                                        appends root= itself)
 *   ip=<guest>::<gw>:<mask>:<host>:<if>:off
 *                                        the kernel configures eth0 before
 *                                        init: container images have no
 *                                        iproute2 or DHCP client
 *   init=/usr/local/libexec/banger-first-boot
 *                                        images without an initrd
 *
 * Nothing here ever masks dev-vdb.device (the work disk, mounted from
 * fstab) or the console's device unit (dev-ttyS0.device). */
#include "vmm.h"
#include "../../guest/include/banger-guest/first_boot.h"

#include <stdio.h>
#include <string.h>

/* Values inside ip= may not contain ':' or whitespace. */
static bool ip_field_ok(const char *s)
{
	if (!s)
		return true;
	for (const char *p = s; *p; p++)
		if (*p == ':' || *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '"' ||
		    (unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			return false;
	return true;
}

static bool hostname_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '.'))
			return false;
	return s[0] != '-' && s[0] != '.';
}

/* Does a command line mask a unit banger depends on? */
static bool masks_needed_unit(const char *cmdline, const char *console)
{
	char console_unit[64];
	snprintf(console_unit, sizeof(console_unit), "dev-%s.device", console);
	const char *const units[] = { BG_FB_WORK_DISK_UNIT, console_unit };
	const char *p = cmdline;
	while ((p = strstr(p, "systemd.mask="))) {
		const char *v = p + strlen("systemd.mask=");
		size_t n = strcspn(v, " \t\n");
		for (size_t i = 0; i < BG_ARRAY_SIZE(units); i++) {
			size_t un = strlen(units[i]);
			/* the value may be a comma list in future systemd versions */
			for (const char *q = v; q + un <= v + n; q++)
				if (memcmp(q, units[i], un) == 0)
					return true;
		}
		p = v;
	}
	return false;
}

int bg_bootargs_build(char **out, const bg_bootargs *a)
{
	*out = NULL;
	if (!a)
		return bg_error(BANGER_EINVALID, "bootargs: no arguments");
	const bg_vmm_driver *d = a->driver;
	if (!d || !d->console || !*d->console)
		return bg_error(BANGER_EINVALID, "bootargs: no VMM driver (or one without a console)");
	if (a->guest_ip) {
		const char *f[] = { a->guest_ip, a->gateway, a->netmask, a->hostname, a->iface };
		for (size_t i = 0; i < BG_ARRAY_SIZE(f); i++)
			if (!ip_field_ok(f[i]))
				return bg_error(BANGER_EINVALID, "bootargs: \"%s\" cannot go into ip=", f[i]);
		if (!*a->guest_ip)
			return bg_error(BANGER_EINVALID, "bootargs: empty guest address");
		if (a->hostname && *a->hostname && !hostname_ok(a->hostname))
			return bg_error(BANGER_EINVALID, "bootargs: invalid hostname \"%s\"", a->hostname);
	}
	if (a->extra && masks_needed_unit(a->extra, d->console))
		return bg_error(BANGER_EINVALID,
				"bootargs: refusing to mask " BG_FB_WORK_DISK_UNIT " or dev-%s.device (the work disk and "
				"the serial console): \"%s\"", d->console, a->extra);

	bg_buf b = BG_BUF_INIT;
	bg_buf_printf(&b, "console=%s reboot=k panic=1", d->console);
	if (d->kernel_args && *d->kernel_args)
		bg_buf_printf(&b, " %s", d->kernel_args);
	if (a->guest_ip)
		bg_buf_printf(&b, " ip=%s::%s:%s:%s:%s:off", a->guest_ip, a->gateway ? a->gateway : "",
			      a->netmask ? a->netmask : "", a->hostname ? a->hostname : "",
			      a->iface && *a->iface ? a->iface : "eth0");
	if (!a->has_initrd)
		bg_buf_puts(&b, " init=" BG_FB_GUEST_PATH);
	if (a->extra && *a->extra)
		bg_buf_printf(&b, " %s", a->extra);
	char *s = bg_buf_detach(&b);
	if (!s)
		return bg_error_oom();
	*out = s;
	return 0;
}
