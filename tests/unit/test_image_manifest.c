/* Registry documents: WWW-Authenticate challenges, manifests and indexes
 * (OCI and Docker), platform selection, image configs, Docker credentials. */
#include "helpers.h"
#include "../../libbanger/image/image.h"

#include <unistd.h>

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static void test_challenge(void **state)
{
	(void)state;
	bg_auth_challenge c;
	assert_int_equal(bg_auth_challenge_parse(&c, "Bearer realm=\"https://auth.docker.io/token\","
						 "service=\"registry.docker.io\",scope=\"repository:library/debian:pull\""), 0);
	assert_string_equal(c.scheme, "bearer");
	assert_string_equal(c.realm, "https://auth.docker.io/token");
	assert_string_equal(c.service, "registry.docker.io");
	assert_string_equal(c.scope, "repository:library/debian:pull");
	bg_auth_challenge_free(&c);
	/* Basic first, Bearer preferred; spaces, escapes, unquoted values, odd case */
	assert_int_equal(bg_auth_challenge_parse(&c, "Basic realm=\"x\" , BEARER Realm=http://127.0.0.1:5001/t , "
						 "service = \"a \\\"q\\\" b\", error=insufficient_scope"), 0);
	assert_string_equal(c.scheme, "bearer");
	assert_string_equal(c.realm, "http://127.0.0.1:5001/t");
	assert_string_equal(c.service, "a \"q\" b");
	assert_string_equal(c.error, "insufficient_scope");
	assert_null(c.scope);
	bg_auth_challenge_free(&c);
	assert_int_equal(bg_auth_challenge_parse(&c, "Basic realm=\"Registry Realm\""), 0);
	assert_string_equal(c.scheme, "basic");
	bg_auth_challenge_free(&c);
	assert_int_equal(bg_auth_challenge_parse(&c, "Negotiate"), BANGER_EUNSUPPORTED);
	assert_int_equal(bg_auth_challenge_parse(&c, "Bearer service=\"x\""), BANGER_ENETWORK);
	assert_int_equal(bg_auth_challenge_parse(&c, NULL), BANGER_ENETWORK);
	assert_int_equal(bg_auth_challenge_parse(&c, "Bearer realm=\"unterminated"), BANGER_EUNSUPPORTED);
}

static const char oci_manifest[] =
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	"\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D1 "\",\"size\":100},"
	"\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" D2 "\",\"size\":5},"
	"{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"" D3 "\",\"size\":6},"
	"{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" D3 "\",\"size\":7}]}";

static void test_manifest(void **state)
{
	(void)state;
	bg_manifest m;
	assert_int_equal(bg_manifest_parse(&m, oci_manifest, strlen(oci_manifest), NULL), 0);
	assert_int_equal(m.kind, BG_MANIFEST_IMAGE);
	assert_int_equal(m.count, 3);
	assert_string_equal(m.config.digest, D1);
	assert_int_equal(m.config.size, 100);
	assert_int_equal(m.layers[0].compression, BG_COMP_GZIP);
	assert_int_equal(m.layers[1].compression, BG_COMP_ZSTD);
	assert_int_equal(m.layers[2].compression, BG_COMP_NONE);
	bg_manifest_free(&m);

	/* umoci writes no mediaType: the Content-Type says what it is */
	const char *nomt = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
			   "\"digest\":\"" D1 "\",\"size\":1},\"layers\":[]}";
	assert_int_equal(bg_manifest_parse(&m, nomt, strlen(nomt), "application/vnd.oci.image.manifest.v1+json"), 0);
	assert_int_equal(m.kind, BG_MANIFEST_IMAGE);
	bg_manifest_free(&m);
	/* ... or, with a generic Content-Type, the shape */
	assert_int_equal(bg_manifest_parse(&m, nomt, strlen(nomt), "application/octet-stream"), 0);
	assert_int_equal(m.kind, BG_MANIFEST_IMAGE);
	bg_manifest_free(&m);

	/* Docker schema 2 */
	const char *d2 = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
			 "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":\"" D1 "\",\"size\":1},"
			 "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":\"" D2 "\",\"size\":9}]}";
	assert_int_equal(bg_manifest_parse(&m, d2, strlen(d2), "application/vnd.docker.distribution.manifest.v2+json"), 0);
	assert_int_equal(m.count, 1);
	bg_manifest_free(&m);

	static const char *const bad[] = {
		"", "[]", "{", "{\"schemaVersion\":2}",
		"{\"schemaVersion\":1,\"fsLayers\":[]}",
		"{\"schemaVersion\":2,\"schemaVersion\":2,\"layers\":[]}",          /* duplicate key */
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		"\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:../../x\",\"size\":1},\"layers\":[]}",
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		"\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D1 "\",\"size\":-1},\"layers\":[]}",
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		"\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D1 "\",\"size\":1},"
		"\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\",\"digest\":\"" D2 "\",\"size\":1}]}",
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		"\"config\":{\"mediaType\":\"application/vnd.cncf.helm.config.v1+json\",\"digest\":\"" D1 "\",\"size\":1},\"layers\":[]}",
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		"\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D1 "\",\"size\":99999999999},\"layers\":[]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = bg_manifest_parse(&m, bad[i], strlen(bad[i]), NULL);
		if (rc == 0)
			fail_msg("bad manifest %zu accepted", i);
	}
	/* mediaType and Content-Type disagreeing */
	assert_int_equal(bg_manifest_parse(&m, oci_manifest, strlen(oci_manifest),
					   "application/vnd.docker.distribution.manifest.v2+json"), BANGER_EINVALID);
	/* size cap */
	char *big = malloc(BG_MANIFEST_MAX + 2);
	memset(big, ' ', BG_MANIFEST_MAX + 1);
	big[BG_MANIFEST_MAX + 1] = '\0';
	assert_int_equal(bg_manifest_parse(&m, big, BG_MANIFEST_MAX + 1, NULL), BANGER_EINVALID);
	free(big);
}

static const char index_doc[] =
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":["
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1 "\",\"size\":1,"
	" \"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},"
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D3 "\",\"size\":1,"
	" \"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"}},"
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D2 "\",\"size\":1,"
	" \"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D3 "\",\"size\":1,"
	" \"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v6\"}},"
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1 "\",\"size\":1,"
	" \"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"}}]}";

static void test_index(void **state)
{
	(void)state;
	bg_manifest m;
	assert_int_equal(bg_manifest_parse(&m, index_doc, strlen(index_doc), NULL), 0);
	assert_int_equal(m.kind, BG_MANIFEST_INDEX);
	assert_int_equal(m.count, 5);
	bg_platform p;
	size_t i;
	bg_platform_parse(&p, "linux/amd64");
	assert_int_equal(bg_manifest_select(&m, &p, &i), 0);
	assert_int_equal(i, 2);
	bg_platform_parse(&p, "linux/arm64");
	assert_int_equal(bg_manifest_select(&m, &p, &i), 0);
	assert_int_equal(i, 0);
	bg_platform_parse(&p, "linux/arm64/v8");
	assert_int_equal(bg_manifest_select(&m, &p, &i), 0);
	assert_int_equal(i, 0);
	bg_platform_parse(&p, "linux/arm/v7");
	assert_int_equal(bg_manifest_select(&m, &p, &i), 0);
	assert_int_equal(i, 4);
	bg_platform_parse(&p, "linux/s390x");
	assert_int_equal(bg_manifest_select(&m, &p, &i), BANGER_ENOTFOUND);
	const char *msg = banger_error_last()->message;
	assert_non_null(strstr(msg, "linux/amd64"));
	assert_null(strstr(msg, "unknown"));
	bg_platform_parse(&p, "unknown/unknown");
	assert_int_equal(bg_manifest_select(&m, &p, &i), BANGER_ENOTFOUND);
	bg_manifest_free(&m);

	/* a Docker manifest list */
	const char *dl = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.list.v2+json\","
			 "\"manifests\":[{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
			 "\"digest\":\"" D2 "\",\"size\":1,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}]}";
	assert_int_equal(bg_manifest_parse(&m, dl, strlen(dl), NULL), 0);
	assert_int_equal(m.kind, BG_MANIFEST_INDEX);
	assert_string_equal(m.layers[0].media_type, "application/vnd.docker.distribution.manifest.v2+json");
	bg_manifest_free(&m);
}

static void test_config(void **state)
{
	(void)state;
	const char *cfg = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"PATH=/bin\"],"
			  "\"Cmd\":[\"/bin/bash\"],\"Entrypoint\":null,\"User\":\"app\",\"WorkingDir\":\"/srv\"},"
			  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\",\"" D2 "\"]},\"history\":[]}";
	bg_image_config c;
	assert_int_equal(bg_image_config_parse(&c, cfg, strlen(cfg)), 0);
	assert_string_equal(c.platform.arch, "amd64");
	assert_int_equal(c.ndiff, 2);
	assert_string_equal(c.diff_ids[1], D2);
	assert_string_equal(c.summary_json, "{\"entrypoint\":null,\"cmd\":[\"/bin/bash\"],\"env\":[\"PATH=/bin\"],"
					    "\"user\":\"app\",\"workdir\":\"/srv\"}");
	bg_image_config_free(&c);
	const char *bad = "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:nothex\"]}}";
	assert_int_equal(bg_image_config_parse(&c, bad, strlen(bad)), BANGER_EINVALID);
	const char *nofs = "{\"architecture\":\"amd64\"}";
	assert_int_equal(bg_image_config_parse(&c, nofs, strlen(nofs)), BANGER_EINVALID);
}

static void test_docker_config(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char *path = bg_path_join(dir, "config.json");
	const char *cfg = "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"aHViOnB3\"},"
			  "\"127.0.0.1:5000\":{\"auth\":\"dTpw\"},"
			  "\"reg.example\":{\"username\":\"bob\",\"password\":\"s3cret\"}},\"credsStore\":\"desktop\"}";
	assert_int_equal(bg_write_file_atomic(path, cfg, strlen(cfg), 0600), 0);
	setenv("DOCKER_CONFIG", dir, 1);
	char *a = NULL;
	assert_int_equal(bg_docker_config_auth(&a, "docker.io"), 0);
	assert_string_equal(a, "aHViOnB3");
	bg_free(a);
	assert_int_equal(bg_docker_config_auth(&a, "127.0.0.1:5000"), 0);
	assert_string_equal(a, "dTpw");
	bg_free(a);
	assert_int_equal(bg_docker_config_auth(&a, "reg.example"), 0);
	assert_string_equal(a, "Ym9iOnMzY3JldA==");
	bg_free(a);
	assert_int_equal(bg_docker_config_auth(&a, "other.example"), 0);
	assert_null(a);
	assert_int_equal(bg_write_file_atomic(path, "{nope", 5, 0600), 0);
	assert_int_equal(bg_docker_config_auth(&a, "docker.io"), BANGER_EINVALID);
	unsetenv("DOCKER_CONFIG");
	char *b64 = bg_base64_encode("user:pass", 9, true);
	assert_string_equal(b64, "dXNlcjpwYXNz");
	bg_free(b64);
	free(path);
	test_rmrf(dir);
	free(dir);
}

static void test_blobcache(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char d[BG_DIGEST_SIZE];
	bg_digest_of(d, "blob", 4);
	assert_false(bg_blob_cached(dir, d));
	assert_int_equal(bg_blob_put(dir, D1, "blob", 4), BANGER_EVERIFY); /* wrong digest: refused */
	assert_false(bg_blob_cached(dir, D1));
	assert_int_equal(bg_blob_put(dir, d, "blob", 4), 0);
	assert_true(bg_blob_cached(dir, d));
	char *out;
	size_t len;
	assert_int_equal(bg_blob_read(dir, d, 100, &out, &len), 0);
	assert_int_equal(len, 4);
	bg_free(out);
	/* a corrupted entry is dropped when read */
	char *p = bg_blob_path(dir, d);
	assert_int_equal(bg_write_file_atomic(p, "bad!", 4, 0644), 0);
	assert_int_equal(bg_blob_read(dir, d, 100, &out, &len), BANGER_ENOTFOUND);
	assert_false(bg_blob_cached(dir, d));
	assert_null(bg_blob_path(dir, "sha256:../../etc/passwd"));
	free(p);
	test_rmrf(dir);
	free(dir);
}

static void test_scheme(void **state)
{
	(void)state;
	static const struct {
		const char *ref, *list;
		bool insecure;
		const char *origin;
	} cases[] = {
		{ "debian", NULL, false, "https://registry-1.docker.io" },
		{ "example.com/x", NULL, false, "https://example.com" },
		{ "example.com:5000/x", "", false, "https://example.com:5000" },
		{ "localhost:5000/x", NULL, false, "http://localhost:5000" },
		{ "127.0.0.1:5000/x", NULL, false, "http://127.0.0.1:5000" },
		{ "[::1]:5000/x", NULL, false, "http://[::1]:5000" },
		{ "reg.lan:5000/x", "other,reg.lan:5000", false, "http://reg.lan:5000" },
		{ "reg.lan:5000/x", NULL, true, "http://reg.lan:5000" },
		{ "reg.lan.evil:5000/x", "reg.lan", false, "https://reg.lan.evil:5000" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bg_image_ref r;
		assert_int_equal(bg_image_ref_parse(&r, cases[i].ref), 0);
		bg_registry_opts o = { .ref = &r, .insecure = cases[i].insecure, .insecure_list = cases[i].list };
		bg_registry *reg;
		assert_int_equal(bg_registry_open(&reg, &o), 0);
		assert_string_equal(bg_registry_origin(reg), cases[i].origin);
		bg_registry_close(reg);
		bg_image_ref_free(&r);
	}
}

/* Parsers and the layer reader fail cleanly (no crash, no leak) when any
 * allocation fails. */
static void test_alloc_failures(void **state)
{
	(void)state;
	for (uint64_t n = 1; n < 200; n++) {
		bg_alloc_fail_at(n);
		bg_manifest m;
		int rc = bg_manifest_parse(&m, index_doc, strlen(index_doc), NULL);
		bg_alloc_fail_at(0);
		if (rc == 0) {
			bg_manifest_free(&m);
			break;
		}
		assert_int_equal(rc, BANGER_ENOMEM);
	}
	for (uint64_t n = 1; n < 200; n++) {
		bg_alloc_fail_at(n);
		bg_image_ref r;
		int rc = bg_image_ref_parse(&r, "localhost:5000/a/b:t");
		bg_alloc_fail_at(0);
		if (rc == 0) {
			bg_image_ref_free(&r);
			break;
		}
		assert_int_equal(rc, BANGER_ENOMEM);
	}
	const char *cfg = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"sh\"]},"
			  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\",\"" D2 "\"]}}";
	for (uint64_t n = 1; n < 200; n++) {
		bg_alloc_fail_at(n);
		bg_image_config c;
		int rc = bg_image_config_parse(&c, cfg, strlen(cfg));
		bg_alloc_fail_at(0);
		if (rc == 0) {
			bg_image_config_free(&c);
			break;
		}
		assert_int_equal(rc, BANGER_ENOMEM);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_challenge),
		cmocka_unit_test(test_manifest),
		cmocka_unit_test(test_index),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_docker_config),
		cmocka_unit_test(test_blobcache),
		cmocka_unit_test(test_scheme),
		cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
