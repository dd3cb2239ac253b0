/* HTTP(S)/file downloads with libcurl: redirects followed (http/https
 * only), no signals, a connect timeout, a stall timeout and an overall
 * deadline; the body is hashed (SHA-256, core/sha256.c) as it streams and
 * checked against the size and digest the caller expects. */
#include "kernel.h"

#include <curl/curl.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS 30000L
#define STALL_SECONDS 60L       /* abort when below 1 byte/s for this long */
#define DEFAULT_TIMEOUT_MS (3600LL * 1000)
#define MAX_REDIRECTS 10L

typedef struct {
	bg_download_req *d;
	bg_sha256 *md;
	bool too_big, cancelled, md_failed, refused, url_checked;
	int write_errno;
	CURL *h;
} xfer;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	xfer *x = userdata;
	bg_download_req *d = x->d;
	size_t n = size * nmemb;
	if (d->transport_integrity && !x->url_checked) {
		/* where redirects led: the same rule as for the first URL */
		char *eff = NULL;
		x->url_checked = true;
		if (curl_easy_getinfo(x->h, CURLINFO_EFFECTIVE_URL, &eff) != CURLE_OK || !eff ||
		    bg_plain_http_check(eff, d->insecure_list, "redirect") != 0) {
			x->refused = true;
			return 0;
		}
	}
	uint64_t limit = d->expected_size ? d->expected_size : d->max_size;
	if (limit && d->bytes + n > limit) {
		x->too_big = true;
		return 0; /* CURLE_WRITE_ERROR */
	}
	if (bg_sha256_update(x->md, ptr, n)) {
		x->md_failed = true;
		return 0;
	}
	if (d->buf) {
		if (bg_buf_put(d->buf, ptr, n)) {
			x->write_errno = ENOMEM;
			return 0;
		}
	} else {
		size_t off = 0;
		while (off < n) {
			ssize_t w = write(d->fd, ptr + off, n - off);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				x->write_errno = errno;
				return 0;
			}
			off += (size_t)w;
		}
	}
	d->bytes += n;
	return n;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	xfer *x = userdata;
	bg_download_req *d = x->d;
	(void)ultotal;
	(void)ulnow;
	if (!d->progress)
		return 0;
	uint64_t total = d->expected_size ? d->expected_size : (dltotal > 0 ? (uint64_t)dltotal : 0);
	if (d->progress((uint64_t)(dlnow > 0 ? dlnow : 0), total, d->payload) != 0) {
		x->cancelled = true;
		return 1; /* CURLE_ABORTED_BY_CALLBACK */
	}
	return 0;
}

static int map_curl_error(CURLcode cc, CURL *h, const xfer *x, const char *url, const char *errbuf)
{
	const bg_download_req *d = x->d;
	const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(cc);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	switch (cc) {
	case CURLE_HTTP_RETURNED_ERROR:
		if (status == 404 || status == 410)
			return bg_error_lib(BANGER_ENOTFOUND, "curl", (int)cc, "GET %s: HTTP %ld: not found", url, status);
		return bg_error_lib(BANGER_ENETWORK, "curl", (int)cc, "GET %s: HTTP %ld", url, status);
	case CURLE_PARTIAL_FILE:
		return bg_error_lib(BANGER_ENETWORK, "curl", (int)cc,
				    "download of %s truncated: the connection closed after %llu bytes%s", url,
				    (unsigned long long)d->bytes, d->expected_size ? "" : " (short of the announced length)");
	case CURLE_OPERATION_TIMEDOUT:
		return bg_error_lib(BANGER_ETIMEOUT, "curl", (int)cc, "download of %s timed out after %llu bytes: %s",
				    url, (unsigned long long)d->bytes, detail);
	case CURLE_ABORTED_BY_CALLBACK:
		if (x->cancelled)
			return bg_progress_cancelled("download");
		break;
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		if (x->too_big || cc == CURLE_FILESIZE_EXCEEDED) {
			if (d->expected_size)
				return bg_error(BANGER_EVERIFY, "%s is larger than the %llu bytes the catalog states",
						url, (unsigned long long)d->expected_size);
			return bg_error(BANGER_EINVALID, "%s is larger than %llu bytes", url,
					(unsigned long long)d->max_size);
		}
		if (x->write_errno == ENOMEM)
			return bg_error_oom();
		if (x->write_errno)
			return bg_error_os(BANGER_EIO, x->write_errno, "write the download of %s", url);
		if (x->md_failed)
			return bg_error_lib(BANGER_ERROR, "openssl", 0, "sha256 of %s failed", url);
		break;
	case CURLE_FILE_COULDNT_READ_FILE:
		return bg_error_lib(BANGER_ENOTFOUND, "curl", (int)cc, "%s: %s", url, detail);
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		return bg_error_lib(BANGER_EINVALID, "curl", (int)cc, "%s: %s", url, detail);
	case CURLE_OUT_OF_MEMORY:
		return bg_error_oom();
	case CURLE_TOO_MANY_REDIRECTS:
		return bg_error_lib(BANGER_ENETWORK, "curl", (int)cc, "%s: more than %ld redirects", url, MAX_REDIRECTS);
	default:
		break;
	}
	return bg_error_lib(BANGER_ENETWORK, "curl", (int)cc, "download of %s failed: %s", url, detail);
}

int bg_download(bg_env *env, const char *url, bg_download_req *d)
{
	d->bytes = 0;
	d->sha256[0] = '\0';
	int rc = bg_global_init();
	if (rc)
		return rc;
	if (d->transport_integrity &&
	    (rc = bg_plain_http_check(url, d->insecure_list, "kernel catalog (it carries the kernels' sha256)")))
		return rc; /* before any connection: nothing is sent */
	xfer x = { .d = d };
	if ((rc = bg_sha256_new(&x.md)))
		return rc;
	CURL *h = curl_easy_init();
	if (!h) {
		bg_sha256_free(x.md);
		return bg_error_oom();
	}
	x.h = h;
	char errbuf[CURL_ERROR_SIZE] = "";
	int64_t timeout = d->timeout_ms > 0 ? d->timeout_ms : DEFAULT_TIMEOUT_MS;
	uint64_t limit = d->expected_size ? d->expected_size : d->max_size;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https,file");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
	curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, STALL_SECONDS);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "banger/" BANGER_VERSION);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	if (limit)
		curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)limit);
	if ((rc = bg_http_proxy_apply(h, env ? bg_config_get(&env->config, "proxy") : NULL)))
		goto out;
	bg_debug(env, "GET %s", url);
	CURLcode cc = curl_easy_perform(h);
	if (x.refused) {
		if (!banger_error_last() || banger_error_last()->code != BANGER_ENETWORK)
			bg_error(BANGER_ENETWORK, "%s: refusing where its redirects lead", url);
		rc = BANGER_ENETWORK; /* the message says which host */
		goto out;
	}
	if (cc != CURLE_OK) {
		rc = map_curl_error(cc, h, &x, url, errbuf);
		goto out;
	}
	if (bg_sha256_final_hex(x.md, d->sha256)) {
		rc = bg_error_lib(BANGER_ERROR, "openssl", 0, "sha256 of %s failed", url);
		goto out;
	}
	if (d->expected_size && d->bytes != d->expected_size) {
		if (d->bytes < d->expected_size)
			rc = bg_error(BANGER_ENETWORK, "download of %s truncated: received %llu of the %llu bytes "
				      "the catalog states", url, (unsigned long long)d->bytes,
				      (unsigned long long)d->expected_size);
		else
			rc = bg_error(BANGER_EVERIFY, "%s is %llu bytes, the catalog states %llu", url,
				      (unsigned long long)d->bytes, (unsigned long long)d->expected_size);
		goto out;
	}
	if (d->expected_sha256 && strcmp(d->sha256, d->expected_sha256) != 0) {
		rc = bg_error(BANGER_EVERIFY, "sha256 mismatch for %s: the catalog states %s, the download is %s",
			      url, d->expected_sha256, d->sha256);
		goto out;
	}
	if (d->progress)
		d->progress(d->bytes, d->expected_size ? d->expected_size : d->bytes, d->payload);
out:
	curl_easy_cleanup(h);
	bg_sha256_free(x.md);
	return rc;
}
