/* Image manifests and indexes (OCI and Docker v2 schemas) as registries
 * serve them, and the platform selection over an index.
 *
 * The input is parsed with each Content-Type banger may see.  Checked: an
 * accepted document is an index or an image; every descriptor digest is
 * valid; layers carry a known compression; selecting the host platform
 * (and linux/arm64/v8) gives an index entry or a clean "not found". */
#include "fuzz.h"
#include "../../libbanger/image/image.h"

static const char *const content_types[] = {
	NULL, BG_MT_OCI_INDEX, BG_MT_OCI_MANIFEST, BG_MT_DOCKER_LIST, BG_MT_DOCKER_V2,
	BG_MT_DOCKER_V1_SIGNED, "application/json", "text/html; charset=utf-8",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t pick = fuzz_take_byte(&data, &size);
	const char *ct = content_types[pick % (sizeof(content_types) / sizeof(content_types[0]))];
	bg_manifest m;
	int rc = bg_manifest_parse(&m, (const char *)data, size, ct);
	if (rc != 0) {
		FUZZ_CHECK(rc == BANGER_EINVALID || rc == BANGER_EUNSUPPORTED || rc == BANGER_ENOMEM);
		FUZZ_CHECK(m.layers == NULL && m.count == 0 && m.media_type == NULL);
		return 0;
	}
	FUZZ_CHECK(m.kind == BG_MANIFEST_INDEX || m.kind == BG_MANIFEST_IMAGE);
	FUZZ_CHECK(m.count == 0 || m.layers);
	for (size_t i = 0; i < m.count; i++) {
		FUZZ_CHECK(bg_digest_valid(m.layers[i].digest));
		if (m.kind == BG_MANIFEST_IMAGE)
			FUZZ_CHECK(m.layers[i].compression == BG_COMP_NONE || m.layers[i].compression == BG_COMP_GZIP ||
				   m.layers[i].compression == BG_COMP_ZSTD);
	}
	if (m.kind == BG_MANIFEST_IMAGE)
		FUZZ_CHECK(bg_digest_valid(m.config.digest));
	if (m.kind == BG_MANIFEST_INDEX) {
		bg_platform want[2];
		bg_platform_host(&want[0]);
		FUZZ_CHECK(bg_platform_parse(&want[1], "linux/arm64/v8") == 0);
		for (int w = 0; w < 2; w++) {
			size_t at = (size_t)-1;
			int s = bg_manifest_select(&m, &want[w], &at);
			if (s == 0)
				FUZZ_CHECK(at < m.count);
			else
				FUZZ_CHECK(s == BANGER_ENOTFOUND || s == BANGER_ENOMEM);
		}
	}
	bg_manifest_free(&m);
	return 0;
}
