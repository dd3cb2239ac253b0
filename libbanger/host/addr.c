/* Guest addressing: a /30 per VM from the configured subnet, MAC derived
 * from the guest IP. */
#include "host.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bg_subnet_parse(bg_subnet *out, const char *cidr)
{
	return bg_subnet_cidr_parse(&out->base, &out->prefix, cidr);
}

uint32_t bg_subnet_slots(const bg_subnet *s)
{
	return 1u << (32 - s->prefix - 2);
}

static void quad(char *buf, uint32_t v)
{
	struct in_addr a = { htonl(v) };
	inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

int bg_subnet_slot(const bg_subnet *s, uint32_t n, char *host_ip, char *guest_ip)
{
	if (n >= bg_subnet_slots(s))
		return bg_error(BANGER_EBUSY, "no free guest address left in the subnet");
	uint32_t net = s->base + 4 * n;
	if (host_ip)
		quad(host_ip, net + 1);
	if (guest_ip)
		quad(guest_ip, net + 2);
	return 0;
}

int64_t bg_subnet_slot_of(const bg_subnet *s, const char *guest_ip)
{
	struct in_addr a;
	if (!guest_ip || inet_pton(AF_INET, guest_ip, &a) != 1)
		return -1;
	uint32_t v = ntohl(a.s_addr);
	uint32_t mask = 0xffffffffu << (32 - s->prefix);
	if ((v & mask) != s->base)
		return -1;
	return (int64_t)((v - s->base) / 4);
}

void bg_mac_from_ip(char out[18], const char *guest_ip)
{
	struct in_addr a = { 0 };
	inet_pton(AF_INET, guest_ip, &a);
	const unsigned char *b = (const unsigned char *)&a.s_addr;
	/* 06: locally administered, unicast. */
	snprintf(out, 18, "06:00:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3]);
}
