/* Minimal rtnetlink client: link up, address, delete, dump names. */
#include "host.h"
#include "netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NL_BUF 16384

typedef struct {
	struct nlmsghdr h;
	char payload[1024];
} nl_req;

static void add_attr(nl_req *r, unsigned short type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)&r->h + NLMSG_ALIGN(r->h.nlmsg_len));
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	r->h.nlmsg_len = NLMSG_ALIGN(r->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

static int nl_open(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -1;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Receive with a deadline; netlink answers at once, but never hang. */
static ssize_t nl_recv(int fd, void *buf, size_t len)
{
	struct pollfd p = { fd, POLLIN, 0 };
	if (poll(&p, 1, 5000) <= 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	return recv(fd, buf, len, 0);
}

/* Send one request and wait for its ACK; returns 0 or a negative errno. */
static int nl_transact(nl_req *r)
{
	int fd = nl_open();
	if (fd < 0)
		return -errno;
	r->h.nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	r->h.nlmsg_seq = 1;
	if (send(fd, r, r->h.nlmsg_len, MSG_NOSIGNAL) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	char buf[NL_BUF];
	int result = -EIO;
	for (;;) {
		ssize_t n = nl_recv(fd, buf, sizeof(buf));
		if (n < 0) {
			result = -errno;
			break;
		}
		struct nlmsghdr *h = (struct nlmsghdr *)buf;
		bool done = false;
		for (; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);
				result = e->error;
				done = true;
				break;
			}
		}
		if (done)
			break;
	}
	close(fd);
	return result;
}

int bg_nl_link_up(const char *name)
{
	unsigned idx = if_nametoindex(name);
	if (!idx)
		return -ENODEV;
	nl_req r;
	memset(&r, 0, sizeof(r));
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	r.h.nlmsg_type = RTM_NEWLINK;
	struct ifinfomsg *ifi = NLMSG_DATA(&r.h);
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)idx;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	return nl_transact(&r);
}

int bg_nl_addr_add(const char *name, const char *ip, int prefix)
{
	unsigned idx = if_nametoindex(name);
	if (!idx)
		return -ENODEV;
	struct in_addr a;
	if (inet_pton(AF_INET, ip, &a) != 1)
		return -EINVAL;
	nl_req r;
	memset(&r, 0, sizeof(r));
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
	r.h.nlmsg_type = RTM_NEWADDR;
	r.h.nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
	struct ifaddrmsg *ifa = NLMSG_DATA(&r.h);
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (unsigned char)prefix;
	ifa->ifa_index = idx;
	add_attr(&r, IFA_LOCAL, &a, sizeof(a));
	add_attr(&r, IFA_ADDRESS, &a, sizeof(a));
	return nl_transact(&r);
}

int bg_nl_link_delete(const char *name)
{
	unsigned idx = if_nametoindex(name);
	if (!idx)
		return -ENODEV;
	nl_req r;
	memset(&r, 0, sizeof(r));
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	r.h.nlmsg_type = RTM_DELLINK;
	struct ifinfomsg *ifi = NLMSG_DATA(&r.h);
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)idx;
	return nl_transact(&r);
}

int bg_nl_link_names(const char *prefix, char ***names, size_t *count)
{
	*names = NULL;
	*count = 0;
	int fd = nl_open();
	if (fd < 0)
		return bg_error_os(BANGER_EIO, errno, "netlink socket");
	nl_req r;
	memset(&r, 0, sizeof(r));
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	r.h.nlmsg_type = RTM_GETLINK;
	r.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	r.h.nlmsg_seq = 1;
	int rc = 0;
	if (send(fd, &r, r.h.nlmsg_len, MSG_NOSIGNAL) < 0) {
		rc = bg_error_os(BANGER_EIO, errno, "netlink dump");
		close(fd);
		return rc;
	}
	char buf[NL_BUF];
	size_t pl = strlen(prefix);
	bool done = false;
	while (!done && !rc) {
		ssize_t n = nl_recv(fd, buf, sizeof(buf));
		if (n < 0) {
			rc = bg_error_os(BANGER_EIO, errno, "netlink dump");
			break;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
				done = true;
				break;
			}
			if (h->nlmsg_type != RTM_NEWLINK)
				continue;
			struct ifinfomsg *ifi = NLMSG_DATA(h);
			int alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*ifi)));
			for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
				if (a->rta_type != IFLA_IFNAME)
					continue;
				const char *nm = RTA_DATA(a);
				if (strncmp(nm, prefix, pl) != 0)
					continue;
				char **nv = bg_realloc(*names, (*count + 1) * sizeof(char *));
				char *dup = bg_strdup(nm);
				if (!nv || !dup) {
					if (nv)
						*names = nv;
					bg_free(dup);
					rc = bg_error_oom();
					break;
				}
				*names = nv;
				(*names)[(*count)++] = dup;
			}
		}
	}
	close(fd);
	if (rc) {
		bg_strv_free(*names, *count);
		*names = NULL;
		*count = 0;
	}
	return rc;
}
