/* Firecracker's API: HTTP/1.1 over its Unix socket, through libcurl.
 * One easy handle per request (the API is a handful of calls per VM
 * lifetime); no signals (CURLOPT_NOSIGNAL), a deadline on every call. */
#include "vmm.h"

#include <curl/curl.h>
#include <jansson.h>
#include <string.h>

#define RESPONSE_MAX (1u << 20)

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	bg_buf *b = userdata;
	size_t n = size * nmemb;
	if (b->len + n > RESPONSE_MAX)
		return 0; /* curl reports CURLE_WRITE_ERROR */
	if (bg_buf_put(b, ptr, n) != 0)
		return 0;
	return n;
}

char *bg_fc_fault_message(const char *body)
{
	if (!body || !*body)
		return NULL;
	json_error_t jerr;
	json_t *j = json_loads(body, JSON_DISABLE_EOF_CHECK, &jerr);
	if (!j)
		return NULL;
	char *msg = NULL;
	json_t *fm = json_is_object(j) ? json_object_get(j, "fault_message") : NULL;
	if (json_is_string(fm))
		msg = bg_strdup(json_string_value(fm));
	json_decref(j);
	return msg;
}

/* A short printable excerpt of a body that is not the Error shape. */
static void excerpt(char *out, size_t outlen, const char *body)
{
	size_t i = 0;
	for (; body && body[i] && i + 1 < outlen && i < 200; i++)
		out[i] = (body[i] >= 0x20 && body[i] < 0x7f) ? body[i] : ' ';
	out[i] = '\0';
}

int bg_fc_request(char **out_body, long *out_status, const char *api_sock, const char *method,
		  const char *path, const char *body, int timeout_ms)
{
	if (out_body)
		*out_body = NULL;
	if (out_status)
		*out_status = 0;
	int rc = bg_global_init();
	if (rc)
		return rc;

	CURL *c = curl_easy_init();
	if (!c)
		return bg_error(BANGER_ENOMEM, "curl_easy_init failed");
	struct curl_slist *hdrs = NULL, *tmp;
	bg_buf resp = BG_BUF_INIT;
	char *url = bg_sprintf("http://localhost%s", path);
	char errbuf[CURL_ERROR_SIZE] = "";
	if (!url) {
		rc = bg_error_oom();
		goto out;
	}
	/* Firecracker's micro_http has no 100-continue: never send Expect. */
	const char *hv[] = { "Accept: application/json", "Content-Type: application/json", "Expect:" };
	for (size_t i = 0; i < BG_ARRAY_SIZE(hv); i++) {
		if (i == 1 && !body)
			continue;
		if (!(tmp = curl_slist_append(hdrs, hv[i]))) {
			rc = bg_error_oom();
			goto out;
		}
		hdrs = tmp;
	}
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, api_sock);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
	if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
	}

	CURLcode cc = curl_easy_perform(c);
	if (resp.oom) {
		rc = bg_error_oom();
		goto out;
	}
	if (cc != CURLE_OK) {
		int code = cc == CURLE_OPERATION_TIMEDOUT ? BANGER_ETIMEOUT
			 : cc == CURLE_OUT_OF_MEMORY      ? BANGER_ENOMEM
							  : BANGER_EIO;
		rc = bg_error_lib(code, "curl", (int)cc, "Firecracker API %s %s on %s: %s", method, path,
				  api_sock, *errbuf ? errbuf : curl_easy_strerror(cc));
		goto out;
	}
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (out_status)
		*out_status = status;
	if (status < 200 || status > 299) {
		char *fm = bg_fc_fault_message(resp.data);
		if (fm) {
			rc = bg_error_lib(BANGER_EVMM, "firecracker", (int)status,
					  "Firecracker rejected %s %s (%ld): %s", method, path, status, fm);
			bg_free(fm);
		} else {
			char ex[256];
			excerpt(ex, sizeof(ex), resp.data);
			rc = bg_error_lib(BANGER_EVMM, "firecracker", (int)status,
					  "Firecracker rejected %s %s (%ld)%s%s", method, path, status,
					  *ex ? ": " : "", ex);
		}
		goto out;
	}
	if (out_body) {
		if (!(*out_body = bg_buf_detach(&resp)))
			rc = bg_error_oom();
	}
out:
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	bg_buf_free(&resp);
	bg_free(url);
	return rc;
}
