/* OCI image references, digests, platforms and registry host names, all
 * of which come from users or registries.
 *
 * The first line is parsed as a reference, digest, platform and host; the
 * second line (if any) is the insecure-registries list.  Checked: a parsed
 * reference prints as a string that parses to the same reference (the
 * normalised form is a fixed point); its default image name is a valid
 * image name; a digest that bg_digest_valid accepts passes
 * bg_digest_check and is "sha256:" + 64 lowercase hex; a parsed platform
 * formats to a string that parses to the same platform. */
#include "fuzz.h"
#include "../../libbanger/image/image.h"

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_take_line(&data, &size);
	char *list = fuzz_take_line(&data, &size);

	bg_image_ref r;
	int rc = bg_image_ref_parse(&r, s);
	if (rc == 0) {
		FUZZ_CHECK(r.domain && *r.domain && r.path && *r.path);
		FUZZ_CHECK(r.tag || r.digest);
		if (r.digest)
			FUZZ_CHECK(bg_digest_valid(r.digest));
		FUZZ_CHECK(bg_image_ref_api_host(&r) != NULL);
		FUZZ_CHECK(bg_image_ref_object(&r) != NULL);
		char *str = bg_image_ref_string(&r);
		if (str) {
			bg_image_ref r2;
			int rc2 = bg_image_ref_parse(&r2, str);
			FUZZ_CHECK(rc2 == 0 || rc2 == BANGER_ENOMEM);
			if (rc2 == 0) {
				FUZZ_CHECK(str_eq(r.domain, r2.domain) && str_eq(r.path, r2.path) &&
					   str_eq(r.tag, r2.tag) && str_eq(r.digest, r2.digest));
				char *str2 = bg_image_ref_string(&r2);
				FUZZ_CHECK(!str2 || strcmp(str, str2) == 0);
				bg_free(str2);
				bg_image_ref_free(&r2);
			}
			bg_free(str);
		}
		char *name = bg_image_ref_default_name(&r);
		if (name) {
			FUZZ_CHECK(bg_image_name_valid(name));
			bg_free(name);
		}
		(void)bg_host_is_loopback(r.domain);
		(void)bg_registry_insecure(r.domain, list);
		bg_image_ref_free(&r);
	} else {
		/* EUNSUPPORTED: a well-formed digest of another algorithm */
		FUZZ_CHECK(rc == BANGER_EINVALID || rc == BANGER_EUNSUPPORTED || rc == BANGER_ENOMEM);
	}

	if (bg_digest_valid(s)) {
		FUZZ_CHECK(bg_digest_check(s, "fuzz") == 0);
		FUZZ_CHECK(strlen(s) == BG_DIGEST_LEN && strncmp(s, "sha256:", 7) == 0);
		for (const char *p = s + 7; *p; p++)
			FUZZ_CHECK((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
	} else {
		rc = bg_digest_check(s, "fuzz");
		FUZZ_CHECK(rc == BANGER_EINVALID || rc == BANGER_EUNSUPPORTED);
	}

	bg_platform p;
	if (bg_platform_parse(&p, s) == 0) {
		char buf[128];
		bg_platform_format(&p, buf, sizeof(buf));
		bg_platform p2;
		FUZZ_CHECK(bg_platform_parse(&p2, buf) == 0);
		FUZZ_CHECK(strcmp(p.os, p2.os) == 0 && strcmp(p.arch, p2.arch) == 0 &&
			   strcmp(p.variant, p2.variant) == 0);
	}

	(void)bg_image_name_valid(s);
	(void)bg_host_is_loopback(s);
	(void)bg_registry_insecure(s, list);
	free(s);
	free(list);
	return 0;
}
