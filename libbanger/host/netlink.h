/* rtnetlink helpers used by tap.c; negative errno on failure. */
#ifndef BG_NETLINK_H
#define BG_NETLINK_H

int bg_nl_link_up(const char *name);
int bg_nl_addr_add(const char *name, const char *ip, int prefix);
int bg_nl_link_delete(const char *name);
/* Names of links starting with prefix (banger error codes). */
int bg_nl_link_names(const char *prefix, char ***names, size_t *count);

#endif
