/* Driver resolution, the kernels each driver boots, the Firecracker driver's
 * early checks and its request bodies / metrics parsing (pure parts). */
#include "helpers.h"

#include "../../libbanger/vmm/vmm.h"
#include "../../libbanger/host/probe.h"

#include <sys/stat.h>
#include <unistd.h>

static char *dir;

static int setup(void **st)
{
	dir = test_tmpdir();
	return 0;
}

static int teardown(void **st)
{
	test_rmrf(dir);
	free(dir);
	return 0;
}

static char *path_in(const char *name)
{
	static char buf[4][4300];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* A minimal ELF64 with one PT_NOTE segment, with or without the PVH note. */
static void write_elf(const char *path, bool pvh)
{
	unsigned char b[512] = { 0 };
	memcpy(b, "\x7f" "ELF", 4);
	b[4] = 2; /* 64-bit */
	b[5] = 1; /* little endian */
	b[6] = 1;
	put_le(b + 16, 2, 2);    /* ET_EXEC */
	put_le(b + 18, 62, 2);   /* x86_64 */
	put_le(b + 32, 64, 8);   /* e_phoff */
	put_le(b + 52, 64, 2);   /* e_ehsize */
	put_le(b + 54, 56, 2);   /* e_phentsize */
	put_le(b + 56, 1, 2);    /* e_phnum */
	unsigned char *ph = b + 64;
	put_le(ph, 4, 4);        /* PT_NOTE */
	put_le(ph + 8, 200, 8);  /* p_offset */
	unsigned char *n = b + 200;
	/* first a GNU build-id note, then (maybe) Xen's PHYS32_ENTRY */
	put_le(n, 4, 4);
	put_le(n + 4, 8, 4);
	put_le(n + 8, 3, 4);
	memcpy(n + 12, "GNU", 4);
	size_t len = 12 + 4 + 8;
	if (pvh) {
		unsigned char *x = n + len;
		put_le(x, 4, 4);
		put_le(x + 4, 4, 4);
		put_le(x + 8, 18, 4);
		memcpy(x + 12, "Xen", 4);
		put_le(x + 16, 0x1000000, 4);
		len += 20;
	}
	put_le(ph + 32, len, 8); /* p_filesz */
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fwrite(b, 1, sizeof(b), f);
	fclose(f);
}

static void write_bzimage(const char *path)
{
	unsigned char b[1024] = { 0 };
	b[0x1fe] = 0x55;
	b[0x1ff] = 0xaa;
	memcpy(b + 0x202, "HdrS", 4);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fwrite(b, 1, sizeof(b), f);
	fclose(f);
}

/* The one kernel parser (libbanger/kformat) as the drivers use it: the
 * file's format and PVH note decide, through each driver's capabilities;
 * a declared format stands in only for a file the parser cannot read as
 * a kernel. */
static void test_kernel_format(void **st)
{
	bg_kernel_info k;
	write_elf(path_in("plain.elf"), false);
	assert_int_equal(bg_kernel_detect_file(&k, path_in("plain.elf"), false), 0);
	assert_int_equal(k.format, BG_KFMT_ELF);
	assert_false(k.pvh);
	write_elf(path_in("pvh.elf"), true);
	assert_int_equal(bg_kernel_detect_file(&k, path_in("pvh.elf"), false), 0);
	assert_int_equal(k.format, BG_KFMT_ELF);
	assert_true(k.pvh);
	write_bzimage(path_in("bz"));
	assert_int_equal(bg_kernel_detect_file(&k, path_in("bz"), false), 0);
	assert_int_equal(k.format, BG_KFMT_BZIMAGE);
	assert_false(k.pvh);
	FILE *f = fopen(path_in("junk"), "w");
	fputs("#!/bin/sh\n", f);
	fclose(f);
	assert_int_equal(bg_kernel_detect_file(&k, path_in("junk"), false), BANGER_EINVALID);
	assert_int_equal(bg_kernel_detect_file(&k, path_in("missing"), false), BANGER_ENOTFOUND);

	bg_vmm_driver fc, q;
	assert_int_equal(bg_vmm_driver_init(&fc, "firecracker", NULL, true, false), 0);
	assert_int_equal(bg_vmm_driver_init(&q, "qemu", NULL, true, false), 0);
	assert_true(bg_vmm_boots(&fc, BG_KFMT_ELF, false));
	assert_false(bg_vmm_boots(&fc, BG_KFMT_BZIMAGE, false));
	assert_false(bg_vmm_boots(&q, BG_KFMT_ELF, false));
	assert_true(bg_vmm_boots(&q, BG_KFMT_ELF, true));
	assert_true(bg_vmm_boots(&q, BG_KFMT_BZIMAGE, false));
	assert_false(bg_vmm_boots(&q, BG_KFMT_UNKNOWN, true));
	assert_int_equal(bg_vmm_check_kernel(&fc, path_in("plain.elf"), NULL), 0);
	assert_int_equal(bg_vmm_check_kernel(&q, path_in("plain.elf"), "elf"), BANGER_EUNSUPPORTED);
	assert_non_null(strstr(banger_error_last()->message, "PVH"));
	assert_int_equal(bg_vmm_check_kernel(&q, path_in("pvh.elf"), NULL), 0);
	assert_int_equal(bg_vmm_check_kernel(&q, path_in("bz"), NULL), 0);
	assert_int_equal(bg_vmm_check_kernel(&fc, path_in("bz"), "elf"), BANGER_EUNSUPPORTED);
	assert_non_null(strstr(banger_error_last()->message, "a bzImage"));
	assert_int_equal(bg_vmm_check_kernel(&fc, path_in("junk"), NULL), BANGER_EINVALID);
	assert_int_equal(bg_vmm_check_kernel(&fc, path_in("junk"), "elf"), 0); /* the fakes' stub kernels */
	assert_int_equal(bg_vmm_check_kernel(&q, path_in("junk"), "elf"), BANGER_EUNSUPPORTED);
	assert_int_equal(bg_vmm_check_kernel(&q, path_in("missing"), "bzimage"), BANGER_ENOTFOUND);

	/* which drivers declare a capability, for messages */
	char names[64];
	bg_vmm_driver_names(names, sizeof(names), BG_VMM_CAP_KERNEL_BZIMAGE);
	assert_string_equal(names, "qemu");
	bg_vmm_driver_names(names, sizeof(names), BG_VMM_CAP_VSOCK);
	assert_string_equal(names, "firecracker or qemu");
	bg_vmm_driver_names(names, sizeof(names), BG_VMM_CAP_METRICS | BG_VMM_CAP_KERNEL_BZIMAGE);
	assert_string_equal(names, "");
	bg_vmm_driver_free(&fc);
	bg_vmm_driver_free(&q);
}

static bg_vm_spec fc_spec(void)
{
	bg_vm_spec s = { .id = "0a1b2c3d", .vcpus = 2, .memory_mib = 512, .kernel_path = path_in("pvh.elf"),
			 .kernel_format = "elf", .cmdline = "console=ttyS0", .system_disk = "/x/sys",
			 .api_sock = "/x/api.sock", .console_log = "/x/console.log" };
	return s;
}

static void test_firecracker_check(void **st)
{
	write_elf(path_in("pvh.elf"), true);
	write_bzimage(path_in("bz"));
	bg_vmm_driver d;
	assert_int_equal(bg_vmm_driver_init(&d, "firecracker", "/usr/bin/firecracker", true, false), 0);
	assert_string_equal(d.name, "firecracker");
	assert_true(d.caps & BG_VMM_CAP_VSOCK);
	assert_true(d.caps & BG_VMM_CAP_KERNEL_ELF);
	assert_false(d.caps & BG_VMM_CAP_KERNEL_BZIMAGE);
	assert_true(d.caps & BG_VMM_CAP_METRICS);
	assert_true(d.caps & BG_VMM_CAP_CTRL_ALT_DEL);
	assert_true(d.caps & BG_VMM_CAP_VSOCK_UDS);
	assert_string_equal(d.console, "ttyS0");
	assert_string_equal(d.kernel_args, "pci=off");
	assert_null(d.no_vsock);
	bg_vm_spec s = fc_spec();
	assert_int_equal(d.check(&d, &s), 0);

	/* a bzImage is refused early, saying why, whatever it is declared as */
	s.kernel_path = path_in("bz");
	s.kernel_format = "bzimage";
	assert_int_equal(d.check(&d, &s), BANGER_EUNSUPPORTED);
	assert_non_null(strstr(banger_error_last()->message, "ELF vmlinux"));
	s.kernel_format = "elf";
	assert_int_equal(d.check(&d, &s), BANGER_EUNSUPPORTED);

	s = fc_spec();
	s.vcpus = 3; /* "1 or even" is for SMT only */
	assert_int_equal(d.check(&d, &s), 0);
	s.vcpus = 0;
	assert_int_equal(d.check(&d, &s), BANGER_EINVALID);
	s.vcpus = 33;
	assert_int_equal(d.check(&d, &s), BANGER_EINVALID);
	s = fc_spec();
	s.system_disk = NULL;
	assert_int_equal(d.check(&d, &s), BANGER_EINVALID);
	s = fc_spec();
	s.vsock_cid = 2;
	s.vsock_path = "/x/v.sock";
	assert_int_equal(d.check(&d, &s), BANGER_EINVALID);
	s.vsock_cid = 3;
	assert_int_equal(d.check(&d, &s), 0);
	s.vsock_path = NULL;
	assert_int_equal(d.check(&d, &s), BANGER_EINVALID);
	s = fc_spec();
	s.tap = "tap0";
	assert_int_equal(d.check(&d, &s), BANGER_EINVALID);
	s.mac = "06:00:00:00:00:01";
	assert_int_equal(d.check(&d, &s), 0);
	s = fc_spec();
	s.kernel_path = path_in("missing");
	assert_int_equal(d.check(&d, &s), BANGER_ENOTFOUND);

	/* no metrics without a metrics path */
	s = fc_spec();
	char *m = (char *)1;
	assert_int_equal(d.metrics(&d, &s, &m), BANGER_EUNSUPPORTED);
	assert_null(m);
	bg_vmm_driver_free(&d);
	bg_vmm_driver_free(&d);
	bg_vmm_driver_free(NULL);

	d.check = NULL;
	d.binary = NULL;
	bg_vmm_firecracker_init(&d);
	assert_int_equal(d.check(&d, &s), BANGER_EUNSUPPORTED); /* no binary */
	assert_int_equal(bg_vmm_driver_init(&d, "xen", "/x", false, false), BANGER_EINVALID);
}

static void test_fc_bodies(void **st)
{
	bg_vm_spec s = fc_spec();
	s.kernel_path = "/k/vmlinux";
	char *b = NULL;
	assert_int_equal(bg_fc_body_boot_source(&b, &s), 0);
	assert_string_equal(b, "{\"kernel_image_path\":\"/k/vmlinux\",\"boot_args\":\"console=ttyS0\"}");
	bg_free(b);
	s.initrd_path = "/k/initrd";
	s.cmdline = "a \"quoted\" arg";
	assert_int_equal(bg_fc_body_boot_source(&b, &s), 0);
	assert_string_equal(b, "{\"kernel_image_path\":\"/k/vmlinux\",\"initrd_path\":\"/k/initrd\","
			       "\"boot_args\":\"a \\\"quoted\\\" arg\"}");
	bg_free(b);
	assert_int_equal(bg_fc_body_drive(&b, "identity", "/v/id.tar", false, true), 0);
	assert_string_equal(b, "{\"drive_id\":\"identity\",\"path_on_host\":\"/v/id.tar\",\"is_root_device\":false,"
			       "\"is_read_only\":true}");
	bg_free(b);
	/* not UTF-8: refused, not mangled */
	assert_int_equal(bg_fc_body_drive(&b, "rootfs", "/v/\xff\xfe", true, false), BANGER_EINVALID);
	assert_null(b);
}

static void test_fault_message(void **st)
{
	char *m = bg_fc_fault_message("{\"fault_message\":\"Invalid request method\"}");
	assert_string_equal(m, "Invalid request method");
	bg_free(m);
	assert_null(bg_fc_fault_message("{\"error\":\"x\"}"));
	assert_null(bg_fc_fault_message("not json"));
	assert_null(bg_fc_fault_message(""));
	assert_null(bg_fc_fault_message(NULL));
	assert_null(bg_fc_fault_message("[\"fault_message\"]"));
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_metrics_last_line(void **st)
{
	char *m = NULL;
	const char *p = path_in("metrics.json");
	write_text(p, "");
	assert_int_equal(bg_fc_metrics_last_line(&m, p), BANGER_ENOTFOUND);
	write_text(p, "{\"utc_timestamp_ms\":1,\"vcpu\":{\"exit_io_in\":0}}\n"
		      "{\"utc_timestamp_ms\":2,\"vcpu\":{\"exit_io_in\":5}}\n"
		      "{\"utc_timestamp_ms\":3,\"vc"); /* being written */
	assert_int_equal(bg_fc_metrics_last_line(&m, p), 0);
	assert_string_equal(m, "{\"utc_timestamp_ms\":2,\"vcpu\":{\"exit_io_in\":5}}");
	bg_free(m);
	write_text(p, "{\"utc_timestamp_ms\":1}\ngarbage line\n\n");
	assert_int_equal(bg_fc_metrics_last_line(&m, p), 0);
	assert_string_equal(m, "{\"utc_timestamp_ms\":1}");
	bg_free(m);
	/* a large file: only the tail is read */
	FILE *f = fopen(p, "w");
	for (int i = 0; i < 2000; i++)
		fprintf(f, "{\"utc_timestamp_ms\":%d,\"pad\":\"%0500d\"}\n", i, 0);
	fclose(f);
	assert_int_equal(bg_fc_metrics_last_line(&m, p), 0);
	assert_non_null(strstr(m, "\"utc_timestamp_ms\":1999,"));
	bg_free(m);
	assert_int_equal(bg_fc_metrics_last_line(&m, path_in("missing")), BANGER_ENOTFOUND);
}

static void test_allocation_failures(void **st)
{
	bg_vm_spec s = fc_spec();
	s.initrd_path = "/k/initrd";
	const char *p = path_in("metrics-oom.json");
	write_text(p, "{\"a\":1}\n{\"b\":2}\n");
	for (int what = 0; what < 3; what++)
		for (uint64_t n = 1; n < 30; n++) {
			char *out = NULL;
			bg_alloc_fail_at(n);
			int rc = what == 0 ? bg_fc_body_boot_source(&out, &s)
			       : what == 1 ? bg_fc_body_drive(&out, "rootfs", "/x", true, false)
					   : bg_fc_metrics_last_line(&out, p);
			bg_alloc_fail_at(0);
			if (rc == 0) {
				assert_non_null(out);
				bg_free(out);
				break;
			}
			assert_int_equal(rc, BANGER_ENOMEM);
			assert_null(out);
		}
}

static void test_resolve(void **st)
{
	bg_vmm_driver d;
	const char *notice = "x";
	assert_int_equal(bg_vmm_resolve(&d, "xen", NULL, NULL, &notice), BANGER_EINVALID);
	assert_null(notice);

	bg_host_probe p;
	assert_int_equal(bg_host_probe_run(&p, "/nonexistent/firecracker", NULL), 0);

	/* auto without Firecracker: QEMU, with a notice saying why */
	int rc = bg_vmm_resolve(&d, "auto", "/nonexistent/firecracker", NULL, &notice);
	if (p.qemu) {
		assert_int_equal(rc, 0);
		assert_string_equal(d.name, "qemu");
		assert_non_null(notice);
		assert_non_null(strstr(notice, "/nonexistent/firecracker not found"));
		assert_ptr_equal(notice, d.notice);
		assert_int_equal(d.kvm, p.kvm_usable);
		if (!p.kvm_usable)
			assert_non_null(strstr(notice, "TCG"));
		assert_int_equal(!!(d.caps & BG_VMM_CAP_VSOCK), p.vhost_vsock);
		assert_string_equal(d.binary, p.qemu);
		bg_vmm_driver_free(&d);

		assert_int_equal(bg_vmm_resolve(&d, "qemu", NULL, NULL, &notice), 0);
		assert_int_equal(notice != NULL, !p.kvm_usable);
		bg_vmm_driver_free(&d);
	} else {
		assert_int_equal(rc, BANGER_EUNSUPPORTED);
	}
	/* explicit firecracker needs its binary, not KVM */
	assert_int_equal(bg_vmm_resolve(&d, "firecracker", "/nonexistent/firecracker", NULL, NULL),
			 BANGER_EUNSUPPORTED);
	assert_non_null(strstr(banger_error_last()->message, "/nonexistent/firecracker"));
	const char *fake = path_in("firecracker");
	write_text(fake, "#!/bin/sh\n");
	chmod(fake, 0755);
	assert_int_equal(bg_vmm_resolve(&d, "firecracker", fake, NULL, &notice), 0);
	assert_string_equal(d.name, "firecracker");
	assert_string_equal(d.binary, fake);
	assert_null(notice);
	bg_vmm_driver_free(&d);
	/* auto picks Firecracker only when KVM can run guests */
	assert_int_equal(bg_vmm_resolve(&d, "auto", fake, "/nonexistent/qemu", &notice),
			 p.kvm_usable ? 0 : BANGER_EUNSUPPORTED);
	if (p.kvm_usable)
		assert_string_equal(d.name, "firecracker");
	else
		assert_non_null(strstr(banger_error_last()->message, "KVM"));
	bg_vmm_driver_free(&d);
	bg_host_probe_free(&p);
}

/* The rule of "auto" on probes made up here: every combination of the
 * binaries and KVM, the same answers bg_vmm_resolve and the doctor give. */
static void test_auto_pick(void **st)
{
	(void)st;
	bg_host_probe p;
	bg_vmm_auto au;
	memset(&p, 0, sizeof(p));
	p.firecracker = (char *)"/bin/fc";
	p.qemu = (char *)"/bin/q";
	p.kvm_usable = true;
	bg_vmm_auto_pick(&au, &p, NULL, NULL);
	assert_string_equal(au.name, "firecracker");
	assert_string_equal(au.binary, "/bin/fc");
	assert_true(au.kvm);
	assert_false(au.kvm_optional);
	assert_string_equal(au.why, "");

	p.kvm_usable = false; /* Firecracker needs KVM: QEMU with TCG */
	bg_vmm_auto_pick(&au, &p, NULL, NULL);
	assert_string_equal(au.name, "qemu");
	assert_string_equal(au.binary, "/bin/q");
	assert_false(au.kvm);
	assert_true(au.kvm_optional);
	assert_string_equal(au.why, "KVM cannot run guests here");

	p.kvm_usable = true;
	p.firecracker = NULL;
	bg_vmm_auto_pick(&au, &p, "/opt/fc", NULL);
	assert_string_equal(au.name, "qemu");
	assert_true(au.kvm);
	assert_string_equal(au.why, "/opt/fc not found");

	p.qemu = NULL;
	bg_vmm_auto_pick(&au, &p, NULL, NULL);
	assert_null(au.name);
	assert_null(au.binary);
	assert_string_equal(au.why, "firecracker not found, and qemu-system-x86_64 not found");
	p.firecracker = (char *)"/bin/fc";
	p.kvm_usable = false;
	bg_vmm_auto_pick(&au, &p, NULL, "/opt/q");
	assert_null(au.name);
	assert_string_equal(au.why, "KVM cannot run guests here, and /opt/q not found");

	/* very long configured names: cut, never overrun */
	char longname[400];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	p.firecracker = NULL;
	bg_vmm_auto_pick(&au, &p, longname, longname);
	assert_null(au.name);
	assert_true(strlen(au.why) < sizeof(au.why));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kernel_format),
		cmocka_unit_test(test_firecracker_check),
		cmocka_unit_test(test_fc_bodies),
		cmocka_unit_test(test_fault_message),
		cmocka_unit_test(test_metrics_last_line),
		cmocka_unit_test(test_allocation_failures),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_auto_pick),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
