/* The proxy rule every banger curl handle gets (libbanger/core/http_proxy.c):
 * the no-proxy list it builds, and that a list it could not build is an
 * error rather than a handle left to the environment's proxy.  What the
 * rule does to real requests is tests/integration/proxy. */
#include "helpers.h"
#include "../../libbanger/core/core.h"

#include <curl/curl.h>

static void expect_list(const char *env, const char *want)
{
	char *l = bg_http_noproxy_list(env);
	assert_non_null(l);
	assert_string_equal(l, want);
	bg_free(l);
}

static void test_noproxy_list(void **state)
{
	(void)state;
	const char *lo = "localhost,127.0.0.1,127.0.0.0/8,::1";
	expect_list(NULL, lo);
	expect_list("", lo);
	expect_list(" , ", lo);
	expect_list("example.org", "localhost,127.0.0.1,127.0.0.0/8,::1,example.org");
	expect_list(".corp,10.0.0.0/8", "localhost,127.0.0.1,127.0.0.0/8,::1,.corp,10.0.0.0/8");
	/* "*" alone means nothing is proxied; libcurl reads it only alone */
	expect_list("*", "*");
	expect_list(" * ", "*");
	expect_list("*.corp", "localhost,127.0.0.1,127.0.0.0/8,::1,*.corp");
}

static void test_apply(void **state)
{
	(void)state;
	assert_int_equal(bg_global_init(), 0);
	CURL *h = curl_easy_init();
	assert_non_null(h);
	assert_int_equal(bg_http_proxy_apply(h, NULL), 0);
	assert_int_equal(bg_http_proxy_apply(h, ""), 0);
	assert_int_equal(bg_http_proxy_apply(h, "none"), 0);
	assert_int_equal(bg_http_proxy_apply(h, "http://proxy.example:3128"), 0);
	/* Out of memory for the list: an error, never a handle that would
	 * send a loopback request to the environment's proxy. */
	setenv("http_proxy", "http://127.0.0.1:9", 1);
	bg_alloc_fail_at(1);
	assert_int_equal(bg_http_proxy_apply(h, NULL), BANGER_ENOMEM);
	bg_alloc_fail_at(0);
	unsetenv("http_proxy");
	curl_easy_cleanup(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_noproxy_list),
		cmocka_unit_test(test_apply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
