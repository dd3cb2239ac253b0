/* Tap devices: persistent IFF_TAP|IFF_NO_PI, addressed and brought up
 * through rtnetlink. */
#include "host.h"
#include "netlink.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

bool bg_link_exists(const char *name)
{
	return if_nametoindex(name) != 0;
}

int bg_tap_create(const char *name, const char *host_ip, int prefix)
{
	if (strlen(name) >= IFNAMSIZ)
		return bg_error(BANGER_EINVALID, "interface name '%s' is longer than %d characters", name, IFNAMSIZ - 1);
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return bg_error_os(errno == EACCES || errno == EPERM ? BANGER_EPERM : BANGER_EUNSUPPORTED,
				   errno, "open /dev/net/tun");
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	memcpy(ifr.ifr_name, name, strlen(name));
	/* On an existing persistent tap of ours this attaches: idempotent. */
	if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
		int e = errno;
		close(fd);
		return bg_error_os(e == EPERM ? BANGER_EPERM : BANGER_EIO, e, "create tap %s", name);
	}
	if (ioctl(fd, TUNSETPERSIST, 1) != 0) {
		int e = errno;
		close(fd);
		return bg_error_os(BANGER_EIO, e, "make tap %s persistent", name);
	}
	close(fd);
	int r;
	if (host_ip && (r = bg_nl_addr_add(name, host_ip, prefix)) != 0 && r != -EEXIST)
		return bg_error_os(BANGER_EIO, -r, "address %s/%d on %s", host_ip, prefix, name);
	if ((r = bg_nl_link_up(name)) != 0)
		return bg_error_os(BANGER_EIO, -r, "bring %s up", name);
	return 0;
}

int bg_tap_delete(const char *name)
{
	int r = bg_nl_link_delete(name);
	if (r == 0 || r == -ENODEV)
		return 0;
	return bg_error_os(BANGER_EIO, -r, "delete tap %s", name);
}

int bg_link_list(const char *prefix, char ***names, size_t *count)
{
	return bg_nl_link_names(prefix, names, count);
}
