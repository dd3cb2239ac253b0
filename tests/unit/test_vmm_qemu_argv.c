/* QEMU's command line (bg_qemu_argv), a pure function of the VM spec. */
#include "helpers.h"

#include "../../libbanger/vmm/vmm.h"

static bg_vm_spec full_spec(void)
{
	bg_vm_spec s = {
		.id = "0a1b2c3d", .name = "dev", .vcpus = 2, .memory_mib = 1024,
		.kernel_path = "/k/vmlinuz", .kernel_format = "bzimage", .initrd_path = "/k/initrd.img",
		.cmdline = "console=ttyS0 reboot=k panic=1 root=/dev/vda rw",
		.system_disk = "/vms/0a1b2c3d/system.img", .work_disk = "/vms/0a1b2c3d/work.ext4",
		.identity_disk = "/vms/0a1b2c3d/identity.tar", .tap = "bg-0a1b2c3d", .mac = "06:00:ac:1e:00:02",
		.vsock_cid = 7, .vsock_path = "/vms/0a1b2c3d/v.sock", .api_sock = "/run/b/0a1b2c3d.qmp",
		.console_log = "/vms/0a1b2c3d/console.log",
	};
	return s;
}

static size_t argc_of(char **v)
{
	size_t n = 0;
	while (v[n])
		n++;
	return n;
}

static void expect_argv(char **got, const char *const *want)
{
	size_t i = 0;
	for (; want[i]; i++) {
		assert_non_null(got[i]);
		if (strcmp(got[i], want[i]) != 0)
			fail_msg("argv[%zu]: got \"%s\", want \"%s\"", i, got[i], want[i]);
	}
	if (got[i])
		fail_msg("argv[%zu]: unexpected extra \"%s\"", i, got[i]);
}

static void test_full_kvm(void **st)
{
	bg_vm_spec s = full_spec();
	char **v = NULL;
	assert_int_equal(bg_qemu_argv(&v, &s, "/usr/bin/qemu-system-x86_64", true, true), 0);
	const char *want[] = {
		"/usr/bin/qemu-system-x86_64", "-name", "guest=dev", "-M", "pc", "-accel", "kvm", "-cpu", "host",
		"-m", "1024", "-smp", "2", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-S",
		"-kernel", "/k/vmlinuz", "-initrd", "/k/initrd.img",
		"-append", "console=ttyS0 reboot=k panic=1 root=/dev/vda rw",
		"-chardev", "file,id=con0,path=/vms/0a1b2c3d/console.log,append=on", "-serial", "chardev:con0",
		"-drive", "if=none,id=vda,file=/vms/0a1b2c3d/system.img,format=raw", "-device", "virtio-blk-pci,drive=vda",
		"-drive", "if=none,id=vdb,file=/vms/0a1b2c3d/work.ext4,format=raw", "-device", "virtio-blk-pci,drive=vdb",
		"-drive", "if=none,id=vdc,file=/vms/0a1b2c3d/identity.tar,format=raw,readonly=on",
		"-device", "virtio-blk-pci,drive=vdc",
		"-netdev", "tap,id=n0,ifname=bg-0a1b2c3d,script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,mac=06:00:ac:1e:00:02",
		"-device", "vhost-vsock-pci,guest-cid=7",
		"-qmp", "unix:/run/b/0a1b2c3d.qmp,server=on,wait=off",
		NULL,
	};
	expect_argv(v, want);
	bg_argv_free(v);
}

static void test_minimal_tcg(void **st)
{
	bg_vm_spec s = { .vcpus = 1, .memory_mib = 256, .kernel_path = "/boot/vmlinuz", .api_sock = "/tmp/q.sock",
			 .console_log = "/tmp/c.log", .cmdline = "console=ttyS0" };
	char **v = NULL;
	assert_int_equal(bg_qemu_argv(&v, &s, "qemu", false, false), 0);
	const char *want[] = {
		"qemu", "-M", "pc", "-accel", "tcg", "-cpu", "max", "-m", "256", "-smp", "1", "-nodefaults",
		"-no-user-config", "-display", "none", "-no-reboot", "-S", "-kernel", "/boot/vmlinuz",
		"-append", "console=ttyS0", "-chardev", "file,id=con0,path=/tmp/c.log,append=on",
		"-serial", "chardev:con0", "-qmp", "unix:/tmp/q.sock,server=on,wait=off", NULL,
	};
	expect_argv(v, want);
	bg_argv_free(v);
}

/* The QMP socket path must be on the command line: liveness and
 * rediscovery look for it in /proc/PID/cmdline. */
static void test_api_socket_named(void **st)
{
	bg_vm_spec s = full_spec();
	char **v = NULL;
	assert_int_equal(bg_qemu_argv(&v, &s, "/q", false, true), 0);
	bool found = false;
	for (char **p = v; *p; p++)
		if (strstr(*p, s.api_sock))
			found = true;
	assert_true(found);
	/* no stdio serial or monitor that would fight over the terminal */
	for (char **p = v; *p; p++) {
		assert_null(strstr(*p, "stdio"));
		assert_string_not_equal(*p, "-nographic");
	}
	bg_argv_free(v);
}

static void test_no_vsock_without_vhost(void **st)
{
	bg_vm_spec s = full_spec();
	char **v = NULL;
	assert_int_equal(bg_qemu_argv(&v, &s, "/q", false, false), 0);
	for (char **p = v; *p; p++)
		assert_null(strstr(*p, "vsock"));
	bg_argv_free(v);
	s.vsock_cid = 0;
	assert_int_equal(bg_qemu_argv(&v, &s, "/q", false, true), 0);
	for (char **p = v; *p; p++)
		assert_null(strstr(*p, "vsock"));
	bg_argv_free(v);
}

static void test_drive_order_and_gaps(void **st)
{
	/* without a work disk the identity disk keeps its own id */
	bg_vm_spec s = full_spec();
	s.work_disk = NULL;
	s.tap = NULL;
	char **v = NULL;
	assert_int_equal(bg_qemu_argv(&v, &s, "/q", false, false), 0);
	int vda = -1, vdc = -1;
	for (int i = 0; v[i]; i++) {
		if (strstr(v[i], "id=vda,"))
			vda = i;
		if (strstr(v[i], "id=vdc,"))
			vdc = i;
		assert_null(strstr(v[i], "id=vdb,"));
		assert_null(strstr(v[i], "netdev"));
	}
	assert_true(vda > 0 && vdc > vda);
	bg_argv_free(v);
}

static void test_comma_escaping(void **st)
{
	bg_vm_spec s = full_spec();
	s.system_disk = "/odd,dir/sys.img";
	s.console_log = "/odd,dir/console.log";
	s.name = "a,b";
	char **v = NULL;
	assert_int_equal(bg_qemu_argv(&v, &s, "/q", false, false), 0);
	bool drive = false, log = false, name = false;
	for (char **p = v; *p; p++) {
		drive |= strcmp(*p, "if=none,id=vda,file=/odd,,dir/sys.img,format=raw") == 0;
		log |= strcmp(*p, "file,id=con0,path=/odd,,dir/console.log,append=on") == 0;
		name |= strcmp(*p, "guest=a,,b") == 0;
	}
	assert_true(drive && log && name);
	bg_argv_free(v);

	s = full_spec();
	s.api_sock = "/run/x,y.qmp";
	assert_int_equal(bg_qemu_argv(&v, &s, "/q", false, false), BANGER_EINVALID);
	assert_null(v);
	s = full_spec();
	s.tap = "tap,vhost=on";
	assert_int_equal(bg_qemu_argv(&v, &s, "/q", false, false), BANGER_EINVALID);
	s = full_spec();
	s.mac = NULL;
	assert_int_equal(bg_qemu_argv(&v, &s, "/q", false, false), BANGER_EINVALID);
	s = full_spec();
	s.kernel_path = NULL;
	assert_int_equal(bg_qemu_argv(&v, &s, "/q", false, false), BANGER_EINVALID);
}

static void test_allocation_failures(void **st)
{
	bg_vm_spec s = full_spec();
	size_t want = 0;
	{
		char **v = NULL;
		assert_int_equal(bg_qemu_argv(&v, &s, "/q", true, true), 0);
		want = argc_of(v);
		bg_argv_free(v);
	}
	for (uint64_t n = 1; n < 200; n++) {
		char **v = NULL;
		bg_alloc_fail_at(n);
		int rc = bg_qemu_argv(&v, &s, "/q", true, true);
		bg_alloc_fail_at(0);
		if (rc == 0) {
			assert_int_equal(argc_of(v), want);
			bg_argv_free(v);
			break;
		}
		assert_int_equal(rc, BANGER_ENOMEM);
		assert_null(v);
	}
}

/* check(): kernel formats and capabilities, before anything is created. */
static void test_check(void **st)
{
	char *dir = test_tmpdir();
	char elf[4200], bz[4200], junk[4200];
	snprintf(elf, sizeof(elf), "%s/vmlinux", dir);
	snprintf(bz, sizeof(bz), "%s/bzImage", dir);
	snprintf(junk, sizeof(junk), "%s/junk", dir);
	unsigned char buf[0x300] = { 0 };
	memcpy(buf, "\x7f" "ELF\x02\x01\x01", 7);
	/* one program header (a PT_LOAD, no notes): the kernel parser needs
	 * at least one to call the file an ELF kernel */
	buf[32] = 64; /* e_phoff */
	buf[54] = 56; /* e_phentsize */
	buf[56] = 1;  /* e_phnum */
	buf[64] = 1;  /* p_type PT_LOAD */
	FILE *f = fopen(elf, "wb");
	assert_non_null(f);
	fwrite(buf, 1, sizeof(buf), f);
	fclose(f);
	memset(buf, 0, sizeof(buf));
	buf[0x1fe] = 0x55;
	buf[0x1ff] = 0xaa;
	memcpy(buf + 0x202, "HdrS", 4);
	f = fopen(bz, "wb");
	fwrite(buf, 1, sizeof(buf), f);
	fclose(f);
	f = fopen(junk, "wb");
	fputs("not a kernel", f);
	fclose(f);

	bg_vmm_driver d;
	assert_int_equal(bg_vmm_driver_init(&d, "qemu", "/usr/bin/qemu-system-x86_64", false, false), 0);
	assert_string_equal(d.name, "qemu");
	assert_true(d.caps & BG_VMM_CAP_KERNEL_BZIMAGE);
	assert_false(d.caps & BG_VMM_CAP_VSOCK);
	/* an ELF only with the PVH note; its ACPI stop needs guest userland */
	assert_true(d.caps & BG_VMM_CAP_KERNEL_PVH);
	assert_false(d.caps & BG_VMM_CAP_KERNEL_ELF);
	assert_false(d.caps & (BG_VMM_CAP_CTRL_ALT_DEL | BG_VMM_CAP_VSOCK_UDS));
	assert_string_equal(d.kernel_args, "root=/dev/vda rw");
	assert_non_null(strstr(d.no_vsock, "vhost-vsock"));
	bg_vm_spec s = { .vcpus = 1, .memory_mib = 256, .kernel_path = bz, .api_sock = "/tmp/q.sock",
			 .console_log = "/tmp/c.log" };
	assert_int_equal(d.check(&d, &s), 0);
	s.kernel_path = elf; /* ELF without a PVH note */
	assert_int_equal(d.check(&d, &s), BANGER_EUNSUPPORTED);
	assert_non_null(strstr(banger_error_last()->message, "PVH"));
	s.kernel_path = junk;
	assert_int_equal(d.check(&d, &s), BANGER_EINVALID);
	s.kernel_path = bz;
	s.vsock_cid = 5;
	assert_int_equal(d.check(&d, &s), BANGER_EUNSUPPORTED);
	assert_non_null(strstr(banger_error_last()->message, "vhost-vsock"));
	bg_vmm_driver_free(&d);

	assert_int_equal(bg_vmm_driver_init(&d, "qemu", "/q", true, true), 0);
	assert_true(d.caps & BG_VMM_CAP_VSOCK);
	assert_int_equal(d.check(&d, &s), 0);
	bg_vmm_driver_free(&d);
	test_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_kvm),
		cmocka_unit_test(test_minimal_tcg),
		cmocka_unit_test(test_api_socket_named),
		cmocka_unit_test(test_no_vsock_without_vhost),
		cmocka_unit_test(test_drive_order_and_gaps),
		cmocka_unit_test(test_comma_escaping),
		cmocka_unit_test(test_allocation_failures),
		cmocka_unit_test(test_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
