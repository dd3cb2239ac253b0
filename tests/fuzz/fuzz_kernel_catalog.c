/* Kernel catalogs (JSON from a URL) and the URL resolution their entries
 * go through.
 *
 * The input is parsed as a catalog fetched over https, as one read from a
 * file:// URL and as one without a base; its first line is also resolved
 * as a URL reference.  Checked for every accepted catalog: each entry has
 * a valid name, 64 lowercase hex digits of sha256, a positive size, an
 * http/https/file URL (never file: when the catalog came over the
 * network), names are unique and found by bg_catalog_find; a resolved URL
 * resolves again to itself. */
#include "fuzz.h"
#include "../../libbanger/kernel/kernel.h"

#include <ctype.h>

static const char *const bases[] = {
	"https://kernels.example.invalid/banger/catalog.json",
	"file:///srv/catalog/catalog.json",
	NULL,
};

static void check_url(const char *url, bool network)
{
	FUZZ_CHECK(strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0 ||
		   strncmp(url, "file://", 7) == 0);
	if (network)
		FUZZ_CHECK(strncmp(url, "file:", 5) != 0);
	for (const char *p = url; *p; p++)
		FUZZ_CHECK((unsigned char)*p > 0x20 && *p != 0x7f);
}

static void check_catalog(const bg_catalog *c, const char *base)
{
	bool network = base && strncmp(base, "file:", 5) != 0;
	for (size_t i = 0; i < c->count; i++) {
		const bg_catalog_entry *e = &c->entries[i];
		FUZZ_CHECK(e->name && bg_kernel_name_valid(e->name));
		FUZZ_CHECK(e->version && *e->version && e->arch && *e->arch && e->description);
		FUZZ_CHECK(e->sha256 && strlen(e->sha256) == 64);
		for (const char *p = e->sha256; *p; p++)
			FUZZ_CHECK(isdigit((unsigned char)*p) || (*p >= 'a' && *p <= 'f'));
		FUZZ_CHECK(e->size > 0 && e->size <= BG_ARTIFACT_MAX_BYTES);
		FUZZ_CHECK(e->vmms && *e->vmms);
		FUZZ_CHECK(!e->format || strcmp(e->format, "elf") == 0 || strcmp(e->format, "bzimage") == 0);
		FUZZ_CHECK(e->url);
		check_url(e->url, network);
		FUZZ_CHECK(bg_catalog_find(c, e->name) == e);
	}
	if (base)
		FUZZ_CHECK(c->url && strcmp(c->url, base) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (size_t b = 0; b < sizeof(bases) / sizeof(bases[0]); b++) {
		bg_catalog c;
		int rc = bg_catalog_parse(&c, (const char *)data, size, bases[b]);
		if (rc == 0) {
			check_catalog(&c, bases[b]);
			bg_catalog_clear(&c);
		} else {
			FUZZ_CHECK(rc == BANGER_EINVALID || rc == BANGER_EUNSUPPORTED || rc == BANGER_ENOMEM);
			FUZZ_CHECK(c.count == 0 && c.entries == NULL);
		}
	}

	const uint8_t *p = data;
	size_t n = size;
	char *ref = fuzz_take_line(&p, &n);
	for (size_t b = 0; b < sizeof(bases) / sizeof(bases[0]); b++) {
		char *url = NULL;
		if (bg_url_resolve(&url, bases[b], ref) == 0) {
			check_url(url, false);
			/* a resolved URL resolves to itself */
			char *again = NULL;
			int rc2 = bg_url_resolve(&again, NULL, url);
			FUZZ_CHECK(rc2 == 0 || rc2 == BANGER_ENOMEM);
			if (rc2 == 0) {
				FUZZ_CHECK(strcmp(again, url) == 0);
				bg_free(again);
			}
			bg_free(url);
		}
	}
	char *norm = NULL;
	if (bg_catalog_url_normalize(&norm, ref) == 0) {
		check_url(norm, false);
		bg_free(norm);
	}
	free(ref);
	return 0;
}
