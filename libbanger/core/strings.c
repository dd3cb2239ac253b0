/* Small string helpers. */
#include "core.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/random.h>

bool bg_streq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

bool bg_startswith(const char *s, const char *prefix)
{
	return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

bool bg_endswith(const char *s, const char *suffix)
{
	if (!s)
		return false;
	size_t ls = strlen(s), lx = strlen(suffix);
	return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

char *bg_path_join(const char *a, const char *b)
{
	size_t la = strlen(a);
	while (la > 1 && a[la - 1] == '/')
		la--;
	while (*b == '/')
		b++;
	return bg_sprintf("%.*s/%s", (int)la, a, b);
}

int bg_subnet_cidr_parse(uint32_t *base, int *prefix, const char *cidr)
{
	char ip[INET_ADDRSTRLEN];
	const char *slash = cidr ? strchr(cidr, '/') : NULL;
	if (!slash || (size_t)(slash - cidr) >= sizeof(ip))
		return bg_error(BANGER_EINVALID, "subnet '%s' is not in CIDR form (a.b.c.d/len)", cidr ? cidr : "");
	memcpy(ip, cidr, (size_t)(slash - cidr));
	ip[slash - cidr] = '\0';
	char *end;
	errno = 0;
	long len = strtol(slash + 1, &end, 10);
	struct in_addr a;
	if (errno || end == slash + 1 || *end || len < 8 || len > 28 || inet_pton(AF_INET, ip, &a) != 1)
		return bg_error(BANGER_EINVALID, "subnet '%s' is invalid (prefix length must be 8..28)", cidr);
	uint32_t mask = 0xffffffffu << (32 - len);
	*base = ntohl(a.s_addr) & mask;
	*prefix = (int)len;
	return 0;
}

int bg_parse_size(uint64_t *out, const char *s)
{
	if (!s || !isdigit((unsigned char)*s))
		return bg_error(BANGER_EINVALID, "invalid size '%s'", s ? s : "");
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return bg_error(BANGER_EINVALID, "invalid size '%s'", s);
	unsigned shift = 0;
	switch (toupper((unsigned char)*end)) {
	case '\0': break;
	case 'K': shift = 10; break;
	case 'M': shift = 20; break;
	case 'G': shift = 30; break;
	case 'T': shift = 40; break;
	default: return bg_error(BANGER_EINVALID, "invalid size suffix in '%s'", s);
	}
	if (*end) {
		end++;
		if ((*end == 'i' || *end == 'I') && (end[1] == 'B' || end[1] == 'b'))
			end += 2;
		else if (*end == 'B' || *end == 'b')
			end++;
		if (*end)
			return bg_error(BANGER_EINVALID, "invalid size '%s'", s);
	}
	if (shift && v > (UINT64_MAX >> shift))
		return bg_error(BANGER_EINVALID, "size '%s' too large", s);
	*out = (uint64_t)v << shift;
	return 0;
}

void bg_hex(char *out, const unsigned char *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int bg_random_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return bg_error_os(BANGER_EIO, errno, "getrandom");
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}
