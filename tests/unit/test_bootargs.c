/* The guest kernel command line (libbanger/vmm/bootargs.c). */
#include "helpers.h"

#include "../../libbanger/vmm/vmm.h"

/* A driver's declarations (console, kernel_args), by name; NULL for a
 * name banger has no driver for. */
static const bg_vmm_driver *drv(const char *name)
{
	static bg_vmm_driver d[2];
	static const char *names[2] = { "firecracker", "qemu" };
	for (size_t i = 0; name && i < 2; i++)
		if (strcmp(name, names[i]) == 0) {
			if (!d[i].name)
				assert_int_equal(bg_vmm_driver_init(&d[i], name, NULL, true, true), 0);
			return &d[i];
		}
	return NULL;
}

static char *build_ok(const bg_bootargs *a)
{
	char *s = NULL;
	assert_int_equal(bg_bootargs_build(&s, a), 0);
	assert_non_null(s);
	return s;
}

static void expect(const bg_bootargs *a, const char *want)
{
	char *s = build_ok(a);
	assert_string_equal(s, want);
	bg_free(s);
}

static void test_firecracker_full(void **st)
{
	bg_bootargs a = { .driver = drv("firecracker"), .guest_ip = "172.30.0.2", .gateway = "172.30.0.1",
			  .netmask = "255.255.255.252", .hostname = "dev", .iface = "eth0", .has_initrd = false };
	expect(&a, "console=ttyS0 reboot=k panic=1 pci=off "
		   "ip=172.30.0.2::172.30.0.1:255.255.255.252:dev:eth0:off "
		   "init=/usr/local/libexec/banger-first-boot");
}

static void test_firecracker_with_initrd(void **st)
{
	bg_bootargs a = { .driver = drv("firecracker"), .guest_ip = "172.30.0.6", .gateway = "172.30.0.5",
			  .netmask = "255.255.255.252", .hostname = "web-1", .has_initrd = true };
	expect(&a, "console=ttyS0 reboot=k panic=1 pci=off ip=172.30.0.6::172.30.0.5:255.255.255.252:web-1:eth0:off");
}

static void test_qemu_root_and_no_pci_off(void **st)
{
	bg_bootargs a = { .driver = drv("qemu"), .guest_ip = "10.0.0.2", .gateway = "10.0.0.1", .netmask = "255.255.255.0",
			  .hostname = "q", .iface = "eth0" };
	expect(&a, "console=ttyS0 reboot=k panic=1 root=/dev/vda rw ip=10.0.0.2::10.0.0.1:255.255.255.0:q:eth0:off "
		   "init=/usr/local/libexec/banger-first-boot");
}

static void test_no_network(void **st)
{
	bg_bootargs a = { .driver = drv("qemu"), .has_initrd = true };
	expect(&a, "console=ttyS0 reboot=k panic=1 root=/dev/vda rw");
	bg_bootargs b = { .driver = drv("firecracker"), .has_initrd = true };
	expect(&b, "console=ttyS0 reboot=k panic=1 pci=off");
}

static void test_optional_ip_fields(void **st)
{
	bg_bootargs a = { .driver = drv("firecracker"), .guest_ip = "192.168.1.9", .has_initrd = true };
	expect(&a, "console=ttyS0 reboot=k panic=1 pci=off ip=192.168.1.9:::::eth0:off");
	bg_bootargs b = { .driver = drv("firecracker"), .guest_ip = "192.168.1.9", .iface = "ens3", .has_initrd = true };
	expect(&b, "console=ttyS0 reboot=k panic=1 pci=off ip=192.168.1.9:::::ens3:off");
}

static void test_extra_appended(void **st)
{
	bg_bootargs a = { .driver = drv("firecracker"), .has_initrd = true, .extra = "quiet loglevel=3" };
	expect(&a, "console=ttyS0 reboot=k panic=1 pci=off quiet loglevel=3");
	bg_bootargs b = { .driver = drv("firecracker"), .has_initrd = true, .extra = "" };
	expect(&b, "console=ttyS0 reboot=k panic=1 pci=off");
	/* masking other units is the user's business */
	bg_bootargs c = { .driver = drv("qemu"), .has_initrd = true, .extra = "systemd.mask=getty@tty1.service" };
	expect(&c, "console=ttyS0 reboot=k panic=1 root=/dev/vda rw systemd.mask=getty@tty1.service");
}

static void test_refuses_masking_work_disk_and_console(void **st)
{
	const char *bad[] = { "systemd.mask=dev-vdb.device", "quiet systemd.mask=dev-ttyS0.device",
			      "systemd.mask=foo.service systemd.mask=dev-vdb.device",
			      "systemd.mask=a.service,dev-ttyS0.device" };
	for (size_t i = 0; i < BG_ARRAY_SIZE(bad); i++) {
		bg_bootargs a = { .driver = drv("firecracker"), .has_initrd = true, .extra = bad[i] };
		char *s = (char *)1;
		assert_int_equal(bg_bootargs_build(&s, &a), BANGER_EINVALID);
		assert_null(s);
		assert_non_null(strstr(banger_error_last()->message, "dev-vdb.device"));
	}
}

/* The guard: no combination of the builder's own inputs ever yields a
 * mask of the work disk or the serial console, and never root= for
 * Firecracker (it appends root= itself for the root drive). */
static void test_guard_never_masks(void **st)
{
	const char *vmms[] = { "firecracker", "qemu" };
	const char *ips[] = { NULL, "172.30.0.2" };
	for (size_t v = 0; v < 2; v++)
		for (size_t i = 0; i < 2; i++)
			for (int initrd = 0; initrd < 2; initrd++) {
				bg_bootargs a = { .driver = drv(vmms[v]), .guest_ip = ips[i], .gateway = "172.30.0.1",
						  .netmask = "255.255.255.252", .hostname = "h", .has_initrd = initrd };
				char *s = build_ok(&a);
				assert_null(strstr(s, "systemd.mask"));
				assert_null(strstr(s, "dev-vdb"));
				assert_null(strstr(s, "dev-ttyS0"));
				assert_non_null(strstr(s, "console=ttyS0"));
				assert_non_null(strstr(s, "reboot=k"));
				assert_non_null(strstr(s, "panic=1"));
				if (v == 0) {
					assert_null(strstr(s, "root="));
					assert_non_null(strstr(s, " pci=off"));
				} else {
					assert_null(strstr(s, "pci=off"));
				}
				assert_int_equal(strstr(s, "init=") != NULL, !initrd);
				assert_int_equal(strstr(s, " ip=") != NULL, ips[i] != NULL);
				bg_free(s);
			}
}

static void test_invalid(void **st)
{
	char *s = NULL;
	assert_int_equal(bg_bootargs_build(&s, NULL), BANGER_EINVALID);
	bg_bootargs a = { .driver = drv("xen") };
	assert_int_equal(bg_bootargs_build(&s, &a), BANGER_EINVALID);
	bg_bootargs b = { .driver = drv(NULL) };
	assert_int_equal(bg_bootargs_build(&s, &b), BANGER_EINVALID);
	bg_bootargs c = { .driver = drv("qemu"), .guest_ip = "10.0.0.2", .hostname = "a:b" };
	assert_int_equal(bg_bootargs_build(&s, &c), BANGER_EINVALID);
	bg_bootargs d = { .driver = drv("qemu"), .guest_ip = "10.0.0.2", .hostname = "has space" };
	assert_int_equal(bg_bootargs_build(&s, &d), BANGER_EINVALID);
	bg_bootargs e = { .driver = drv("qemu"), .guest_ip = "10.0.0.2", .hostname = "bad_host!" };
	assert_int_equal(bg_bootargs_build(&s, &e), BANGER_EINVALID);
	bg_bootargs f = { .driver = drv("qemu"), .guest_ip = "" };
	assert_int_equal(bg_bootargs_build(&s, &f), BANGER_EINVALID);
	bg_bootargs g = { .driver = drv("qemu"), .guest_ip = "10.0.0.2", .gateway = "10.0.0.1 init=/bin/sh" };
	assert_int_equal(bg_bootargs_build(&s, &g), BANGER_EINVALID);
	assert_null(s);
}

static void test_allocation_failures(void **st)
{
	bg_bootargs a = { .driver = drv("firecracker"), .guest_ip = "172.30.0.2", .gateway = "172.30.0.1",
			  .netmask = "255.255.255.252", .hostname = "dev", .extra = "quiet" };
	for (uint64_t n = 1; n < 50; n++) {
		char *s = NULL;
		bg_alloc_fail_at(n);
		int rc = bg_bootargs_build(&s, &a);
		bg_alloc_fail_at(0);
		if (rc == 0) {
			bg_free(s);
			break;
		}
		assert_int_equal(rc, BANGER_ENOMEM);
		assert_null(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_firecracker_full),
		cmocka_unit_test(test_firecracker_with_initrd),
		cmocka_unit_test(test_qemu_root_and_no_pci_off),
		cmocka_unit_test(test_no_network),
		cmocka_unit_test(test_optional_ip_fields),
		cmocka_unit_test(test_extra_appended),
		cmocka_unit_test(test_refuses_masking_work_disk_and_console),
		cmocka_unit_test(test_guard_never_masks),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_allocation_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
