/* Image configuration blobs (the JSON a manifest's config descriptor
 * points at: platform, rootfs.diff_ids, entrypoint/cmd/env/user/workdir).
 *
 * Checked: every diff_id is a valid digest; the summary banger records is
 * a JSON object. */
#include "fuzz.h"
#include "../../libbanger/image/image.h"

#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bg_image_config c;
	int rc = bg_image_config_parse(&c, (const char *)data, size);
	if (rc != 0) {
		FUZZ_CHECK(rc == BANGER_EINVALID || rc == BANGER_EUNSUPPORTED || rc == BANGER_ENOMEM);
		return 0;
	}
	FUZZ_CHECK(c.ndiff == 0 || c.diff_ids);
	for (size_t i = 0; i < c.ndiff; i++)
		FUZZ_CHECK(c.diff_ids[i] && bg_digest_valid(c.diff_ids[i]));
	FUZZ_CHECK(c.summary_json);
	json_t *j = json_loads(c.summary_json, 0, NULL);
	FUZZ_CHECK(json_is_object(j));
	json_decref(j);
	bg_image_config_free(&c);
	return 0;
}
