/* Which proxy, if any, a banger HTTP request goes through: the one rule
 * for every libcurl handle that can reach a registry or a kernel catalog.
 *
 * libcurl on its own takes http_proxy/https_proxy/all_proxy from the
 * environment and sends everything there, loopback included, unless
 * NO_PROXY says otherwise.  A user behind a corporate proxy has those
 * variables set and a registry or catalog on 127.0.0.1 then fails with
 * "Failed to connect to <proxy>".  What the rest of the ecosystem does
 * (Go's ProxyFromEnvironment, so Docker, skopeo and containerd) is the
 * rule here:
 *   - localhost, 127.0.0.0/8 and ::1 are never proxied;
 *   - NO_PROXY / no_proxy (the lower-case one first, as libcurl reads
 *     them) adds hosts, domains and CIDR ranges that are reached
 *     directly; "*" means nothing is proxied;
 *   - the "proxy" configuration key decides for banger alone: empty (the
 *     default) takes the proxy from the environment, "none" reaches
 *     everything directly whatever the environment says, anything else
 *     is the proxy URL for every scheme.
 * Setting CURLOPT_NOPROXY replaces libcurl's own reading of NO_PROXY,
 * which is why the environment's list is folded in here.  libcurl
 * applies the list per connection, so redirects are judged again. */
#include "core.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

/* 127.0.0.1 as well as the range: a libcurl older than 7.86 reads no
 * CIDR and would otherwise proxy the common case. */
#define LOOPBACK_NOPROXY "localhost,127.0.0.1,127.0.0.0/8,::1"

static bool only_star(const char *s)
{
	s += strspn(s, " \t");
	if (*s != '*')
		return false;
	s++;
	return s[strspn(s, " \t")] == '\0';
}

char *bg_http_noproxy_list(const char *env_no_proxy)
{
	if (env_no_proxy && only_star(env_no_proxy))
		return bg_strdup("*");
	if (!env_no_proxy || !env_no_proxy[strspn(env_no_proxy, " \t,")])
		return bg_strdup(LOOPBACK_NOPROXY);
	return bg_sprintf("%s,%s", LOOPBACK_NOPROXY, env_no_proxy);
}

static const char *env_no_proxy(void)
{
	const char *v = getenv("no_proxy");
	if (!v || !*v)
		v = getenv("NO_PROXY");
	return v && *v ? v : NULL;
}

static int curl_rc(CURLcode cc, const char *what)
{
	if (cc == CURLE_OK)
		return 0;
	if (cc == CURLE_OUT_OF_MEMORY)
		return bg_error_oom();
	return bg_error_lib(BANGER_EINVALID, "curl", (int)cc, "%s: %s", what, curl_easy_strerror(cc));
}

int bg_http_proxy_apply(void *curl, const char *setting)
{
	CURL *h = curl;
	int rc = 0;
	if (setting && strcmp(setting, "none") == 0) {
		/* The empty string turns off libcurl's environment lookup too. */
		return curl_rc(curl_easy_setopt(h, CURLOPT_PROXY, ""), "cannot turn the proxy off");
	}
	if (setting && *setting &&
	    (rc = curl_rc(curl_easy_setopt(h, CURLOPT_PROXY, setting), "config key 'proxy'")))
		return rc;
	/* Fail rather than fall back: a request that should have gone
	 * direct must not reach the proxy because a list could not be made. */
	char *list = bg_http_noproxy_list(env_no_proxy());
	if (!list)
		return bg_error_oom();
	rc = curl_rc(curl_easy_setopt(h, CURLOPT_NOPROXY, list), "cannot set the no-proxy list");
	bg_free(list); /* libcurl keeps its own copy */
	return rc;
}
