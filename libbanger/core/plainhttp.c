/*
 * The plain-HTTP rule, one for everything banger fetches whose integrity
 * rests on the transport: registries, and kernel catalogs (a catalog
 * carries the sha256 of every kernel, so whoever can change it in flight
 * chooses the kernel).  HTTPS always; plain HTTP only to loopback or to a
 * host the user listed in insecure_registries.
 */
#include "core.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <string.h>
#include <strings.h>

/* host[:port] part of a URL as written (for the plain-HTTP rule). */
char *bg_url_hostport(const char *url)
{
	CURLU *u = curl_url();
	if (!u)
		return NULL;
	char *host = NULL, *port = NULL, *out = NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		curl_url_get(u, CURLUPART_PORT, &port, 0);
		out = port ? bg_sprintf("%s:%s", host, port) : bg_strdup(host);
	}
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return out;
}

/* Split "host:port" / "[v6]:port" into host (without brackets). */
static void host_of(const char *hostport, char *host, size_t len)
{
	const char *s = hostport, *e;
	if (*s == '[') {
		s++;
		e = strchr(s, ']');
		if (!e)
			e = s + strlen(s);
	} else {
		const char *colon = strchr(s, ':');
		/* one colon: host:port; none or several (bare IPv6): all host */
		e = colon && !strchr(colon + 1, ':') ? colon : s + strlen(s);
	}
	size_t n = (size_t)(e - s);
	if (n >= len)
		n = len - 1;
	memcpy(host, s, n);
	host[n] = '\0';
}

bool bg_host_is_loopback(const char *hostport)
{
	char host[256];
	if (!hostport)
		return false;
	host_of(hostport, host, sizeof(host));
	if (strcasecmp(host, "localhost") == 0)
		return true;
	struct in_addr a4;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	struct in6_addr a6;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

bool bg_registry_insecure(const char *hostport, const char *list)
{
	if (bg_host_is_loopback(hostport))
		return true;
	if (!list)
		return false;
	char host[256];
	host_of(hostport, host, sizeof(host));
	const char *p = list;
	while (*p) {
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		const char *end = p;
		while (*end && *end != ',')
			end++;
		const char *e = end;
		while (e > p && isspace((unsigned char)e[-1]))
			e--;
		const char *item = p;
		if ((size_t)(e - item) > 7 && strncmp(item, "http://", 7) == 0)
			item += 7;
		else if ((size_t)(e - item) > 8 && strncmp(item, "https://", 8) == 0)
			item += 8;
		while (e > item && e[-1] == '/')
			e--;
		size_t n = (size_t)(e - item);
		if (n > 0 && ((strlen(hostport) == n && strncasecmp(hostport, item, n) == 0) ||
			      (strlen(host) == n && strncasecmp(host, item, n) == 0)))
			return true;
		p = end;
	}
	return false;
}

int bg_plain_http_check(const char *url, const char *insecure_list, const char *what)
{
	if (!url || strncasecmp(url, "http://", 7) != 0)
		return 0;
	char *hp = bg_url_hostport(url);
	if (!hp)
		return bg_error(BANGER_EINVALID, "%s: malformed URL '%.200s'", what, url);
	int rc = bg_registry_insecure(hp, insecure_list)
		? 0
		: bg_error(BANGER_ENETWORK, "%s: refusing plain HTTP to %s (not loopback and not in "
			   "insecure_registries): use https://", what, hp);
	bg_free(hp);
	return rc;
}
