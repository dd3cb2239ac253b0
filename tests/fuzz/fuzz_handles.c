/* handles.json: the per-VM scratch file that records kernel handles.  It
 * is written by banger but read back after crashes, so anything may be in
 * it (a torn write, another program's edits).
 *
 * Checked: on success every string field is NUL-terminated within its
 * array, holds no newline, and the path fields are absolute; the pid is
 * not negative; on failure the struct is all zeros. */
#include "fuzz.h"
#include "../../libbanger/vm/vm.h"

static void check_str(const char *s, size_t cap, bool path)
{
	FUZZ_CHECK(memchr(s, '\0', cap) != NULL);
	FUZZ_CHECK(strchr(s, '\n') == NULL);
	if (path && *s)
		FUZZ_CHECK(*s == '/');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bg_vm_handles h;
	memset(&h, 0x5a, sizeof(h));
	int rc = bg_handles_parse((const char *)data, size, &h);
	if (rc == 0) {
		FUZZ_CHECK(h.pid >= 0);
		check_str(h.tap, sizeof(h.tap), false);
		check_str(h.base_loop, sizeof(h.base_loop), true);
		check_str(h.cow_loop, sizeof(h.cow_loop), true);
		check_str(h.dm_name, sizeof(h.dm_name), false);
		check_str(h.dm_dev, sizeof(h.dm_dev), true);
		check_str(h.overlay, sizeof(h.overlay), false);
	} else {
		FUZZ_CHECK(rc == BANGER_EINVALID || rc == BANGER_ENOMEM);
		static const bg_vm_handles zero;
		FUZZ_CHECK(memcmp(&h, &zero, sizeof(h)) == 0);
	}
	return 0;
}
