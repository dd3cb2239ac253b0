/* banger's configuration file ("key = value" lines, '#' comments).
 *
 * The input is parsed over the built-in defaults.  Checked: on success
 * every known key can be read back, numbers through bg_config_get_u32
 * either parse or fail cleanly, and parsing the same text again gives
 * the same values (last one wins, stably). */
#include "fuzz.h"
#include "../../libbanger/config/config.h"

static const char *const keys[] = {
	"vmm", "firecracker_bin", "qemu_bin", "subnet", "vcpus", "memory_mib", "disk_size",
	"ready_timeout", "kernel_catalog", "default_kernel", "insecure_registries", "image_headroom",
	"ssh_user",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	bg_config c, d;
	int rc = bg_config_load(&c, NULL, false); /* defaults only */
	if (rc) {
		FUZZ_CHECK(rc == BANGER_ENOMEM);
		free(text);
		return 0;
	}
	rc = bg_config_parse(&c, text, "fuzz.conf");
	if (rc == 0) {
		FUZZ_CHECK(bg_config_load(&d, NULL, false) == 0);
		FUZZ_CHECK(bg_config_parse(&d, text, "fuzz.conf") == 0);
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			if (!bg_config_known_key(keys[i]))
				continue;
			const char *a = bg_config_get(&c, keys[i]), *b = bg_config_get(&d, keys[i]);
			FUZZ_CHECK((a == NULL) == (b == NULL));
			if (a)
				FUZZ_CHECK(strcmp(a, b) == 0);
			uint32_t u = 0;
			(void)bg_config_get_u32(&c, keys[i], &u);
			(void)bg_config_get_bool(&c, keys[i]);
		}
		for (size_t i = 0; i < c.count; i++)
			FUZZ_CHECK(c.entries[i].key && c.entries[i].value && bg_config_known_key(c.entries[i].key));
		bg_config_free(&d);
	} else {
		FUZZ_CHECK(rc == BANGER_EINVALID || rc == BANGER_ENOMEM);
	}
	bg_config_free(&c);
	free(text);
	return 0;
}
