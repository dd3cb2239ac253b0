/* The user's Docker credentials file ($DOCKER_CONFIG/config.json), read
 * for registry Basic auth.  Its "auth" value ends up in an HTTP header.
 *
 * Checked: a credential found is non-empty base64 (so nothing but
 * base64 characters can reach the Authorization header: no CR, LF or
 * spaces); a file that is not JSON is an error naming it. */
#include "fuzz.h"
#include "../../libbanger/image/image.h"

#include <sys/stat.h>
#include <unistd.h>

static char dir[64], file[96];

static void cleanup(void)
{
	unlink(file);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "/tmp/banger-fuzz-docker-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(file, sizeof(file), "%s/config.json", dir);
	setenv("DOCKER_CONFIG", dir, 1);
	atexit(cleanup);
	return 0;
}

static const char *const registries[] = {
	"docker.io", "registry-1.docker.io", "localhost:5000", "127.0.0.1:5000", "ghcr.io", "[::1]:5000",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f = fopen(file, "wb");
	FUZZ_CHECK(f);
	FUZZ_CHECK(size == 0 || fwrite(data, 1, size, f) == size);
	fclose(f);
	for (size_t i = 0; i < sizeof(registries) / sizeof(registries[0]); i++) {
		char *auth = NULL;
		int rc = bg_docker_config_auth(&auth, registries[i]);
		if (rc == 0 && auth) {
			FUZZ_CHECK(*auth);
			for (const char *p = auth; *p; p++)
				FUZZ_CHECK((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
					   *p == '+' || *p == '/' || *p == '=');
		} else if (rc != 0) {
			FUZZ_CHECK(auth == NULL);
			FUZZ_CHECK(rc == BANGER_EINVALID || rc == BANGER_ENOMEM || rc == BANGER_EIO);
		}
		bg_free(auth);
	}
	return 0;
}
