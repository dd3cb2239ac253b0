/* Text files banger rewrites while patching an image: the image's own
 * /etc/fstab (the work disk line for /root is added, other /root mounts
 * dropped) and the host's resolv.conf (loopback name servers dropped).
 *
 * Checked: the patched fstab mounts something on /root exactly once, as
 * its last line; the filtered resolv.conf names no loopback server and
 * filtering it again changes nothing. */
#include "fuzz.h"
#include "../../libbanger/image/image.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>

/* Count lines whose second whitespace-separated field is "/root" or
 * "/root/"; *last gets whether the last line is one. */
static size_t root_mounts(const char *text, bool *last)
{
	size_t n = 0;
	*last = false;
	for (const char *p = text; *p;) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		const char *s = p, *e = p + len;
		bool is = false;
		while (s < e && isspace((unsigned char)*s))
			s++;
		if (s < e && *s != '#') {
			while (s < e && !isspace((unsigned char)*s))
				s++;
			while (s < e && isspace((unsigned char)*s))
				s++;
			const char *f = s;
			while (s < e && !isspace((unsigned char)*s))
				s++;
			size_t fl = (size_t)(s - f);
			is = (fl == 5 && strncmp(f, "/root", 5) == 0) || (fl == 6 && strncmp(f, "/root/", 6) == 0);
		}
		n += is;
		if (s < e || len)
			*last = is;
		p = eol ? eol + 1 : p + len;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);

	char *fstab = bg_fstab_patch(text);
	if (fstab) {
		bool last;
		FUZZ_CHECK(root_mounts(fstab, &last) == 1 && last);
		FUZZ_CHECK(strstr(fstab, "/dev/vdb") != NULL);
		bg_free(fstab);
	}

	char *resolv = bg_resolv_conf_filter(text);
	if (resolv) {
		char *again = bg_resolv_conf_filter(resolv);
		if (again) {
			/* the header comment is added each time: compare the rest */
			const char *a = strchr(resolv, '\n'), *b = strchr(again, '\n');
			FUZZ_CHECK(a && b);
			b = strchr(b + 1, '\n');
			FUZZ_CHECK(b && strcmp(a + 1, b + 1) == 0);
			bg_free(again);
		}
		/* no line "nameserver <loopback address>" is left */
		for (const char *p = resolv; (p = strstr(p, "nameserver")); p++) {
			if (p != resolv && p[-1] != '\n')
				continue;
			const char *a = p + 10;
			if (*a != ' ' && *a != '\t')
				continue;
			while (*a == ' ' || *a == '\t')
				a++;
			char addr[64];
			size_t n = strcspn(a, " \t\r\n");
			if (n == 0 || n >= sizeof(addr))
				continue;
			memcpy(addr, a, n);
			addr[n] = '\0';
			struct in_addr v4;
			struct in6_addr v6;
			if (inet_pton(AF_INET, addr, &v4) == 1)
				FUZZ_CHECK((ntohl(v4.s_addr) >> 24) != 127);
			if (inet_pton(AF_INET6, addr, &v6) == 1)
				FUZZ_CHECK(!IN6_IS_ADDR_LOOPBACK(&v6));
		}
		bg_free(resolv);
	}
	free(text);
	return 0;
}
