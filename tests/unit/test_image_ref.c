/* Image references (Docker normalization), digests, platforms, the
 * plain-HTTP rule. */
#include "helpers.h"
#include "../../libbanger/image/image.h"
#include "../../libbanger/host/host.h"

static void check_ref(const char *in, const char *domain, const char *path, const char *tag,
		      const char *digest, const char *full)
{
	bg_image_ref r;
	int rc = bg_image_ref_parse(&r, in);
	if (rc)
		fail_msg("'%s' rejected: %s", in, banger_error_last()->message);
	assert_string_equal(r.domain, domain);
	assert_string_equal(r.path, path);
	if (tag)
		assert_string_equal(r.tag, tag);
	else
		assert_null(r.tag);
	if (digest)
		assert_string_equal(r.digest, digest);
	else
		assert_null(r.digest);
	char *s = bg_image_ref_string(&r);
	assert_string_equal(s, full);
	bg_free(s);
	bg_image_ref_free(&r);
}

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_ref_normalize(void **state)
{
	(void)state;
	check_ref("debian", "docker.io", "library/debian", "latest", NULL,
		  "docker.io/library/debian:latest");
	check_ref("debian:bookworm", "docker.io", "library/debian", "bookworm", NULL,
		  "docker.io/library/debian:bookworm");
	check_ref("docker.io/library/debian:bookworm", "docker.io", "library/debian", "bookworm", NULL,
		  "docker.io/library/debian:bookworm");
	check_ref("index.docker.io/debian", "docker.io", "library/debian", "latest", NULL,
		  "docker.io/library/debian:latest");
	check_ref("user/app", "docker.io", "user/app", "latest", NULL, "docker.io/user/app:latest");
	check_ref("localhost/app", "localhost", "app", "latest", NULL, "localhost/app:latest");
	check_ref("localhost:5000/a/b:v1.2_3-x", "localhost:5000", "a/b", "v1.2_3-x", NULL,
		  "localhost:5000/a/b:v1.2_3-x");
	check_ref("127.0.0.1:5000/test/debian@sha256:" D64, "127.0.0.1:5000", "test/debian", NULL,
		  "sha256:" D64, "127.0.0.1:5000/test/debian@sha256:" D64);
	check_ref("quay.io/a/b:t@sha256:" D64, "quay.io", "a/b", "t", "sha256:" D64,
		  "quay.io/a/b:t@sha256:" D64);
	check_ref("Registry/app", "Registry", "app", "latest", NULL, "Registry/app:latest");
	check_ref("[::1]:5000/x", "[::1]:5000", "x", "latest", NULL, "[::1]:5000/x:latest");
	check_ref("a/b__c/d-e--f.g", "docker.io", "a/b__c/d-e--f.g", "latest", NULL,
		  "docker.io/a/b__c/d-e--f.g:latest");
	check_ref("debian:Latest", "docker.io", "library/debian", "Latest", NULL,
		  "docker.io/library/debian:Latest");

	bg_image_ref r;
	assert_int_equal(bg_image_ref_parse(&r, "debian:bookworm"), 0);
	assert_string_equal(bg_image_ref_api_host(&r), "registry-1.docker.io");
	assert_string_equal(bg_image_ref_object(&r), "bookworm");
	char *name = bg_image_ref_default_name(&r);
	assert_string_equal(name, "debian-bookworm");
	bg_free(name);
	bg_image_ref_free(&r);
	assert_int_equal(bg_image_ref_parse(&r, "localhost:5000/a/b:t@sha256:" D64), 0);
	assert_string_equal(bg_image_ref_api_host(&r), "localhost:5000");
	assert_string_equal(bg_image_ref_object(&r), "sha256:" D64);
	bg_image_ref_free(&r);
	assert_int_equal(bg_image_ref_parse(&r, "x/app@sha256:" D64), 0);
	name = bg_image_ref_default_name(&r);
	assert_string_equal(name, "app-0123456789ab");
	bg_free(name);
	bg_image_ref_free(&r);
	assert_int_equal(bg_image_ref_parse(&r, "x/App-Thing:V_2"), BANGER_EINVALID); /* capitals in path */
	assert_int_equal(bg_image_ref_parse(&r, "x/app:V_2"), 0);
	name = bg_image_ref_default_name(&r);
	assert_string_equal(name, "app-v_2");
	bg_free(name);
	bg_image_ref_free(&r);

	/* public API */
	char *out = NULL;
	assert_int_equal(banger_image_ref_normalize(&out, "busybox"), 0);
	assert_string_equal(out, "docker.io/library/busybox:latest");
	banger_free(out);
	assert_int_equal(banger_image_ref_normalize(&out, "UPPER"), BANGER_EINVALID);
	assert_null(out);
}

static void test_ref_invalid(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "Debian", "debian:", ":tag", "debian@", "debian@sha256:" "abc",
		"debian@sha256:" "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
		"debian@sha256:" D64 "0", "debian@md5:abcd", "a//b", "a/b/", "/a", "a/-b", "a/b-",
		"a/b..c", "a/b___c", "debian:-tag", "debian:.tag", "deb ian", "debian\n", "a@b@c",
		"localhost:/x", "local_host.com/x", "-bad.com/x", "bad-.com/x", "h:99999999/x",
		"debian:" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		D64,
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bg_image_ref r;
		int rc = bg_image_ref_parse(&r, bad[i]);
		if (rc == 0)
			fail_msg("'%s' accepted", bad[i]);
		assert_true(rc == BANGER_EINVALID || rc == BANGER_EUNSUPPORTED);
	}
	bg_image_ref r;
	assert_int_equal(bg_image_ref_parse(&r, "debian@sha512:" D64 D64), BANGER_EUNSUPPORTED);
	/* over-long names */
	char big[400];
	memset(big, 'a', sizeof(big));
	big[399] = '\0';
	big[100] = '/';
	big[200] = '/';
	assert_int_equal(bg_image_ref_parse(&r, big), BANGER_EINVALID);
}

static void test_digest(void **state)
{
	(void)state;
	assert_true(bg_digest_valid("sha256:" D64));
	assert_false(bg_digest_valid(NULL));
	assert_false(bg_digest_valid("sha256:" D64 "\n"));
	assert_false(bg_digest_valid("SHA256:" D64));
	assert_false(bg_digest_valid("sha256:../../../../etc/passwd"));
	assert_false(bg_digest_valid("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeF"));
	assert_false(bg_digest_valid("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"));
	assert_int_equal(bg_digest_check("sha512:abc", "x"), BANGER_EUNSUPPORTED);
	assert_int_equal(bg_digest_check("sha256:xyz", "x"), BANGER_EINVALID);
	assert_int_equal(bg_digest_check("sha256/" D64, "x"), BANGER_EINVALID);

	char d[BG_DIGEST_SIZE];
	assert_int_equal(bg_digest_of(d, "abc", 3), 0);
	assert_string_equal(d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	bg_sha256 *h;
	assert_int_equal(bg_sha256_new(&h), 0);
	bg_sha256_update(h, "a", 1);
	bg_sha256_update(h, "bc", 2);
	char d2[BG_DIGEST_SIZE];
	assert_int_equal(bg_digest_final(h, d2), 0);
	assert_string_equal(d, d2);
	assert_int_equal(bg_sha256_reset(h), 0);
	assert_int_equal(bg_digest_final(h, d2), 0);
	assert_string_equal(d2, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	bg_sha256_free(h);
}

static void test_platform(void **state)
{
	(void)state;
	bg_platform p;
	char buf[100];
	assert_int_equal(bg_platform_parse(&p, "linux/amd64"), 0);
	bg_platform_format(&p, buf, sizeof(buf));
	assert_string_equal(buf, "linux/amd64");
	assert_int_equal(bg_platform_parse(&p, "linux/arm/v7"), 0);
	bg_platform_format(&p, buf, sizeof(buf));
	assert_string_equal(buf, "linux/arm/v7");
	assert_int_equal(bg_platform_parse(&p, "linux/aarch64/v8"), 0);
	bg_platform_format(&p, buf, sizeof(buf));
	assert_string_equal(buf, "linux/arm64");
	assert_int_equal(bg_platform_parse(&p, "linux"), BANGER_EINVALID);
	assert_int_equal(bg_platform_parse(&p, "linux/amd64/v1/x"), BANGER_EINVALID);
	assert_int_equal(bg_platform_parse(&p, "linux//v1"), BANGER_EINVALID);
	assert_int_equal(bg_platform_parse(&p, "Linux/amd64"), BANGER_EINVALID);
	bg_platform_host(&p);
	assert_string_equal(p.os, "linux");
	assert_true(p.arch[0] != '\0');

	/* the host's platform is the host module's one detection, named as
	 * Go names architectures */
	static const char *const machines[][2] = {
		{ "x86_64", "linux/amd64" }, { "aarch64", "linux/arm64" }, { "arm64", "linux/arm64" },
		{ "armv7l", "linux/arm/v7" }, { "armv6l", "linux/arm/v6" }, { "i686", "linux/386" },
		{ "riscv64", "linux/riscv64" },
	};
	for (size_t i = 0; i < sizeof(machines) / sizeof(machines[0]); i++) {
		bg_platform_of_machine(&p, machines[i][0]);
		bg_platform_format(&p, buf, sizeof(buf));
		assert_string_equal(buf, machines[i][1]);
	}
	bg_platform q;
	bg_platform_host(&p);
	bg_platform_of_machine(&q, bg_host_machine());
	assert_memory_equal(&p, &q, sizeof(p));
	if (strcmp(bg_host_arch(), "x86_64") == 0)
		assert_string_equal(p.arch, "amd64");
	else if (strcmp(bg_host_arch(), "aarch64") == 0)
		assert_string_equal(p.arch, "arm64");
}

/* The one rule pull and import apply to an image's own platform. */
static void test_platform_check(void **state)
{
	(void)state;
	bg_platform want, have;
	char rec[100];
	bg_platform_parse(&want, "linux/arm/v7");
	/* the image does not say: what was wanted is recorded */
	assert_int_equal(bg_platform_check(rec, sizeof(rec), NULL, &want, true, "pull"), 0);
	assert_string_equal(rec, "linux/arm/v7");
	bg_platform_parse(&have, "linux/arm/v6");
	/* another variant: refused when named, tolerated otherwise */
	assert_int_equal(bg_platform_check(rec, sizeof(rec), &have, &want, true, "import"), BANGER_EUNSUPPORTED);
	assert_string_equal(banger_error_last()->message, "the image is for linux/arm/v6, not linux/arm/v7");
	assert_int_equal(bg_platform_check(rec, sizeof(rec), &have, &want, false, "import"), 0);
	assert_string_equal(rec, "linux/arm/v6");
	/* a variant missing on either side passes */
	bg_platform_parse(&have, "linux/arm");
	assert_int_equal(bg_platform_check(rec, sizeof(rec), &have, &want, true, "pull"), 0);
	assert_string_equal(rec, "linux/arm");
	/* another architecture never does; the hint names the verb */
	bg_platform_parse(&have, "linux/amd64");
	assert_int_equal(bg_platform_check(rec, sizeof(rec), &have, &want, false, "import"), BANGER_EUNSUPPORTED);
	assert_string_equal(banger_error_last()->message,
			    "the image is for linux/amd64, not linux/arm/v7 (use --platform to import it anyway)");
	bg_platform_parse(&have, "windows/arm/v7");
	assert_int_equal(bg_platform_check(rec, sizeof(rec), &have, &want, true, "pull"), BANGER_EUNSUPPORTED);
}

static void test_insecure(void **state)
{
	(void)state;
	assert_true(bg_host_is_loopback("localhost"));
	assert_true(bg_host_is_loopback("localhost:5000"));
	assert_true(bg_host_is_loopback("127.0.0.1:5000"));
	assert_true(bg_host_is_loopback("127.1.2.3"));
	assert_true(bg_host_is_loopback("[::1]:5000"));
	assert_true(bg_host_is_loopback("::1"));
	assert_false(bg_host_is_loopback("128.0.0.1"));
	assert_false(bg_host_is_loopback("localhost.evil.com"));
	assert_false(bg_host_is_loopback("127.0.0.1.nip.io:5000"));
	assert_false(bg_host_is_loopback("registry-1.docker.io"));
	assert_false(bg_host_is_loopback("[::2]:5000"));
	assert_true(bg_registry_insecure("reg.lan:5000", "other, reg.lan:5000"));
	assert_true(bg_registry_insecure("reg.lan:5000", "reg.lan"));
	assert_true(bg_registry_insecure("reg.lan", "http://reg.lan/"));
	assert_false(bg_registry_insecure("reg.lan:5001", "reg.lan:5000"));
	assert_false(bg_registry_insecure("reg.lan", ""));
	assert_false(bg_registry_insecure("reg.lan", NULL));
	assert_false(bg_registry_insecure("reg.lan.evil", "reg.lan"));
}

static void test_names(void **state)
{
	(void)state;
	assert_true(bg_image_name_valid("debian-bookworm"));
	assert_true(bg_image_name_valid("a.b_c-1"));
	assert_false(bg_image_name_valid(""));
	assert_false(bg_image_name_valid(".hidden"));
	assert_false(bg_image_name_valid("a/b"));
	assert_false(bg_image_name_valid("Upper"));
	assert_false(bg_image_name_valid("-x"));
	char big[80];
	memset(big, 'a', sizeof(big));
	big[79] = '\0';
	assert_false(bg_image_name_valid(big));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ref_normalize),
		cmocka_unit_test(test_ref_invalid),
		cmocka_unit_test(test_digest),
		cmocka_unit_test(test_platform),
		cmocka_unit_test(test_platform_check),
		cmocka_unit_test(test_insecure),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
