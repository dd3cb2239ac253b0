/* The durable copies of records (vm.json, image.json, kernel.json) that
 * `banger store recover` reads back into SQL rows: written by banger, but
 * read after crashes and from state roots of other stores, so anything
 * may be in them.
 *
 * Checked: on success the store id is 32 lowercase hex digits, a VM's id
 * is 8, required fields are present, the paths are absolute and no field
 * holds a control character; on failure the result is all zeros. */
#include "fuzz.h"
#include "../../libbanger/store/store.h"

static void check_text(const char *s, bool path)
{
	if (!s)
		return;
	for (const char *p = s; *p; p++)
		FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
	if (path)
		FUZZ_CHECK(*s == '/');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bg_store_copy c;
	memset(&c, 0x5a, sizeof(c));
	int rc = bg_copy_parse(&c, (const char *)data, size, "fuzz");
	if (rc != 0) {
		FUZZ_CHECK(rc == BANGER_EINVALID || rc == BANGER_ENOMEM);
		static const bg_store_copy zero;
		FUZZ_CHECK(memcmp(&c, &zero, sizeof(c)) == 0);
		return 0;
	}
	FUZZ_CHECK(strlen(c.store_id) == BG_STORE_ID_LEN);
	FUZZ_CHECK(strspn(c.store_id, "0123456789abcdef") == BG_STORE_ID_LEN);
	switch (c.kind) {
	case BG_COPY_VM:
		FUZZ_CHECK(strlen(c.vm.id) == 8 && strspn(c.vm.id, "0123456789abcdef") == 8);
		FUZZ_CHECK(c.vm.name && c.vm.state && c.vm.vmm && c.vm.vm_dir);
		check_text(c.vm.name, false);
		check_text(c.vm.vm_dir, true);
		check_text(c.vm.work_disk, true);
		check_text(c.vm.api_sock, true);
		check_text(c.vm.guest_ip, false);
		FUZZ_CHECK(c.vm.nat == 0 || c.vm.nat == 1);
		break;
	case BG_COPY_IMAGE:
		FUZZ_CHECK(c.image.name && c.image.rootfs_path);
		check_text(c.image.name, false);
		check_text(c.image.rootfs_path, true);
		break;
	case BG_COPY_KERNEL:
		FUZZ_CHECK(c.kernel.name && c.kernel.kernel_path && c.kernel.arch && c.kernel.format);
		check_text(c.kernel.kernel_path, true);
		check_text(c.kernel.initrd_path, true);
		break;
	default:
		FUZZ_CHECK(!"unknown kind");
	}
	bg_store_copy_clear(&c);
	return 0;
}
