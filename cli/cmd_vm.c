/* banger vm ...: virtual machines. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

static void vm_json(FILE *f, const banger_vm *vm)
{
	fprintf(f, "{\"id\": ");
	json_str(f, banger_vm_id(vm));
	fprintf(f, ", \"name\": ");
	json_str(f, banger_vm_name(vm));
	fprintf(f, ", \"state\": ");
	json_str(f, banger_vm_state_name(banger_vm_state(vm)));
	fprintf(f, ", \"image\": ");
	json_str(f, banger_vm_image(vm));
	fprintf(f, ", \"kernel\": ");
	json_str(f, banger_vm_kernel(vm));
	fprintf(f, ", \"vmm\": ");
	json_str(f, banger_vm_vmm(vm));
	fprintf(f, ", \"ip\": ");
	json_str(f, banger_vm_guest_ip(vm));
	fprintf(f, ", \"mac\": ");
	json_str(f, banger_vm_mac(vm));
	fprintf(f, ", \"dns_name\": ");
	json_str(f, banger_vm_dns_name(vm));
	fprintf(f, ", \"vcpus\": %u, \"memory_mib\": %u, \"vsock_cid\": %u, \"nat\": %s",
		banger_vm_vcpus(vm), banger_vm_memory_mib(vm), banger_vm_vsock_cid(vm),
		banger_vm_nat(vm) ? "true" : "false");
	fprintf(f, ", \"created_at\": %lld, \"started_at\": %lld, \"last_error\": ",
		(long long)banger_vm_created_at(vm), (long long)banger_vm_started_at(vm));
	json_str(f, banger_vm_last_error(vm));
	fprintf(f, "}");
}

static void uptime(char *buf, size_t len, const banger_vm *vm)
{
	if (banger_vm_state(vm) != BANGER_VM_STATE_RUNNING || banger_vm_started_at(vm) == 0) {
		snprintf(buf, len, "-");
		return;
	}
	fmt_duration(buf, len, (long long)time(NULL) - banger_vm_started_at(vm));
}

/* ---- vm list ---- */
static bool list_json;
static const cli_opt list_opts[] = {
	{ "json", 0, OPT_FLAG, &list_json, "print JSON", NULL },
	{ 0 },
};

static int vm_list(cli_env *env, const cli_call *call)
{
	banger_ctx *ctx = call->ctx;
	int rc;
	banger_vm_list *l;
	if ((rc = banger_vm_list_all(&l, ctx)))
		return cli_fail("list VMs", rc);
	size_t n = banger_vm_list_count(l);
	if (list_json) {
		printf("[");
		for (size_t i = 0; i < n; i++) {
			printf("%s\n  ", i ? "," : "");
			vm_json(stdout, banger_vm_list_get(l, i));
		}
		printf("%s]\n", n ? "\n" : "");
	} else {
		cli_table *t = table_new(7);
		const char *hdr[] = { "NAME", "STATE", "IP", "IMAGE", "VCPUS", "MEMORY", "UPTIME" };
		table_row(t, hdr);
		for (size_t i = 0; i < n; i++) {
			const banger_vm *vm = banger_vm_list_get(l, i);
			char vcpus[16], mem[32], up[32];
			snprintf(vcpus, sizeof(vcpus), "%u", banger_vm_vcpus(vm));
			snprintf(mem, sizeof(mem), "%u MiB", banger_vm_memory_mib(vm));
			uptime(up, sizeof(up), vm);
			const char *row[] = { banger_vm_name(vm), banger_vm_state_name(banger_vm_state(vm)),
					      banger_vm_guest_ip(vm), banger_vm_image(vm), vcpus, mem, up };
			table_row(t, row);
		}
		table_print(t, stdout);
		table_free(t);
	}
	banger_vm_list_free(l);
	return EXIT_OK;
}

/* ---- vm show ---- */
static bool show_json;
static const cli_opt show_opts[] = {
	{ "json", 0, OPT_FLAG, &show_json, "print JSON", NULL },
	{ 0 },
};

static int vm_show(cli_env *env, const cli_call *call)
{
	const char *name = call->pos[0];
	banger_ctx *ctx = call->ctx;
	int rc;
	banger_vm *vm;
	if ((rc = banger_vm_lookup(&vm, ctx, name)))
		return cli_fail(name, rc);
	if (show_json) {
		vm_json(stdout, vm);
		printf("\n");
	} else {
		char up[32];
		uptime(up, sizeof(up), vm);
		printf("name:       %s\nid:         %s\nstate:      %s\nimage:      %s\nkernel:     %s\n"
		       "vmm:        %s\nip:         %s\nmac:        %s\ndns name:   %s\nvcpus:      %u\n"
		       "memory:     %u MiB\nvsock cid:  %u\nnat:        %s\nuptime:     %s\n",
		       banger_vm_name(vm), banger_vm_id(vm), banger_vm_state_name(banger_vm_state(vm)),
		       banger_vm_image(vm) ? vis(banger_vm_image(vm)) : "-",
		       banger_vm_kernel(vm) ? vis(banger_vm_kernel(vm)) : "-", banger_vm_vmm(vm),
		       banger_vm_guest_ip(vm) ? banger_vm_guest_ip(vm) : "-",
		       banger_vm_mac(vm) ? banger_vm_mac(vm) : "-",
		       banger_vm_dns_name(vm) ? banger_vm_dns_name(vm) : "-", banger_vm_vcpus(vm),
		       banger_vm_memory_mib(vm), banger_vm_vsock_cid(vm), banger_vm_nat(vm) ? "yes" : "no", up);
		if (banger_vm_last_error(vm))
			printf("last error: %s\n", vis(banger_vm_last_error(vm)));
	}
	banger_vm_free(vm);
	return EXIT_OK;
}


/* ---- shared helpers ---- */
static int progress(const banger_progress *p, void *payload)
{
	(void)payload;
	/* the steps, and a wait for another process once; other waits and
	 * the final report add nothing to read */
	if (!cli_progress_tell_wait(p) && p->event == BANGER_PROGRESS_STEP)
		fprintf(stderr, "%-9s %s\n", p->stage, p->detail ? p->detail : "");
	/* Ctrl-C: the library undoes what it made and returns ECANCELLED */
	return cli_interrupted();
}

static int write_stream(int stream, const char *data, size_t len, void *payload)
{
	(void)payload;
	FILE *f = stream == 2 ? stderr : stdout;
	fwrite(data, 1, len, f);
	fflush(f);
	return 0;
}

/* ---- vm create ---- */
static struct {
	const char *name, *image, *kernel, *vcpus, *memory, *disk, *vmm, *timeout;
	bool nat, no_start, no_wait, keep, json;
} cr;
static const cli_opt create_opts[] = {
	{ "image", 0, OPT_STRING_REQUIRED, &cr.image, "image to boot (see `banger image list`)", "IMG" },
	{ "name", 'n', OPT_STRING, &cr.name, "VM name (default: generated)", "NAME" },
	{ "kernel", 0, OPT_STRING, &cr.kernel, "kernel (default: the image's)", "KERNEL" },
	{ "vcpus", 0, OPT_STRING, &cr.vcpus, "virtual CPUs", "N" },
	{ "memory", 0, OPT_STRING, &cr.memory, "memory in MiB", "MIB" },
	{ "disk", 0, OPT_STRING, &cr.disk, "work disk size (e.g. 8G)", "SIZE" },
	{ "nat", 0, OPT_FLAG, &cr.nat, "give the guest outbound network (NAT)", NULL },
	{ "vmm", 0, OPT_STRING, &cr.vmm, "auto, firecracker or qemu", "VMM" },
	{ "no-start", 0, OPT_FLAG, &cr.no_start, "create only; boot later with `vm start`", NULL },
	{ "no-wait", 0, OPT_FLAG, &cr.no_wait, "do not wait for SSH", NULL },
	{ "keep-on-failure", 0, OPT_FLAG, &cr.keep,
	  "keep the VM record (with its error) if boot fails; a cancel (Ctrl-C) never keeps it", NULL },
	{ "timeout", 0, OPT_STRING, &cr.timeout, "seconds to wait for SSH", "SECS" },
	{ "json", 0, OPT_FLAG, &cr.json, "print the VM as JSON", NULL },
	{ 0 },
};

static int parse_u32(const char *what, const char *s, uint32_t *out)
{
	char *end;
	unsigned long v = s ? strtoul(s, &end, 10) : 0;
	if (!s || !*s || *end || v > 0xffffffffUL) {
		fprintf(stderr, "banger: invalid %s '%s'\n", what, s ? s : "");
		return EXIT_USAGE;
	}
	*out = (uint32_t)v;
	return 0;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	}
	if (*end == 'i')
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (end == s || *end) {
		fprintf(stderr, "banger: invalid size '%s'\n", s);
		return EXIT_USAGE;
	}
	*out = (uint64_t)v << shift;
	return 0;
}

static int fill_create(banger_vm_create_options *o)
{
	banger_vm_create_options_init(o, BANGER_VM_CREATE_OPTIONS_VERSION);
	o->name = cr.name;
	o->image = cr.image;
	o->kernel = cr.kernel;
	o->nat = cr.nat;
	o->vmm = cr.vmm;
	o->no_start = cr.no_start;
	o->no_wait = cr.no_wait;
	o->keep_on_failure = cr.keep;
	o->progress = progress;
	if (cr.vcpus && parse_u32("vcpus", cr.vcpus, &o->vcpus))
		return EXIT_USAGE;
	if (cr.memory && parse_u32("memory", cr.memory, &o->memory_mib))
		return EXIT_USAGE;
	if (cr.timeout && parse_u32("timeout", cr.timeout, &o->ready_timeout_s))
		return EXIT_USAGE;
	if (cr.disk && parse_size(cr.disk, &o->disk_bytes))
		return EXIT_USAGE;
	return 0;
}

static banger_vm_create_options create_o;

static int create_check(const cli_call *call)
{
	return fill_create(&create_o) ? EXIT_USAGE : 0;
}

static int vm_create(cli_env *env, const cli_call *call)
{
	int rc;
	banger_vm *vm = NULL;
	cli_interrupt_catch();
	rc = banger_vm_create(&vm, call->ctx, &create_o);
	cli_interrupt_release();
	if (rc)
		return cli_fail("vm create", rc);
	if (cr.json) {
		vm_json(stdout, vm);
		printf("\n");
	} else {
		printf("VM %s is %s at %s (%s)\n", banger_vm_name(vm), banger_vm_state_name(banger_vm_state(vm)),
		       banger_vm_guest_ip(vm), banger_vm_dns_name(vm));
		printf("  banger vm ssh %s\n", banger_vm_name(vm));
	}
	banger_vm_free(vm);
	return EXIT_OK;
}

/* ---- start / stop / restart / delete ---- */
static bool force_flag, no_wait_flag;
static const cli_opt start_opts[] = {
	{ "no-wait", 0, OPT_FLAG, &no_wait_flag, "do not wait for SSH", NULL },
	{ 0 },
};
static const cli_opt stop_opts[] = {
	{ "force", 'f', OPT_FLAG, &force_flag, "kill the VMM instead of a graceful shutdown", NULL },
	{ 0 },
};
static const cli_opt delete_opts[] = {
	{ "force", 'f', OPT_FLAG, &force_flag, "delete even while running", NULL },
	{ 0 },
};

static int simple(const cli_call *call, int which)
{
	const char *path = call->path, *name = call->pos[0];
	banger_ctx *ctx = call->ctx;
	int rc;
	banger_vm_start_options so;
	banger_vm_start_options_init(&so, BANGER_VM_START_OPTIONS_VERSION);
	so.no_wait = no_wait_flag;
	so.progress = progress;
	banger_vm_stop_options to = BANGER_VM_STOP_OPTIONS_INIT;
	to.force = force_flag;
	banger_vm_delete_options dop = BANGER_VM_DELETE_OPTIONS_INIT;
	dop.force = force_flag;
	if (which == 0 || which == 2)
		cli_interrupt_catch(); /* their callback turns Ctrl-C into a cancel */
	switch (which) {
	case 0: rc = banger_vm_start(ctx, name, &so); break;
	case 1: rc = banger_vm_stop(ctx, name, &to); break;
	case 2: rc = banger_vm_restart(ctx, name, &so); break;
	default: rc = banger_vm_delete(ctx, name, &dop); break;
	}
	cli_interrupt_release();
	if (rc)
		return cli_fail(path, rc);
	return EXIT_OK;
}

static int vm_start(cli_env *e, const cli_call *call) { return simple(call, 0); }
static int vm_stop(cli_env *e, const cli_call *call) { return simple(call, 1); }
static int vm_restart(cli_env *e, const cli_call *call) { return simple(call, 2); }
static int vm_delete(cli_env *e, const cli_call *call) { return simple(call, 3); }

/* ---- exec ---- */
static bool exec_stdin;
static const cli_opt exec_opts[] = {
	{ "stdin", 'i', OPT_FLAG, &exec_stdin, "send this terminal's stdin to the command", NULL },
	{ 0 },
};

static int run_in(banger_ctx *ctx, const char *name, char **cmd, int ncmd, bool with_stdin)
{
	/* the guest's shell runs it: every word quoted by the library */
	char *command = NULL;
	int rc = banger_text_shell_quote(&command, (const char *const *)cmd, (size_t)ncmd);
	if (rc)
		return cli_fail(name, rc);
	banger_exit_status status;
	banger_vm_exec_options eo = BANGER_VM_EXEC_OPTIONS_INIT;
	eo.stdin_fd = with_stdin ? 0 : -1;
	eo.output_cb = write_stream;
	rc = banger_vm_exec(&status, ctx, name, command, &eo);
	banger_free(command);
	if (rc)
		return cli_fail(name, rc);
	return cli_exit_status(status);
}

static int vm_exec(cli_env *env, const cli_call *call)
{
	return run_in(call->ctx, call->pos[0], call->rest, call->nrest, exec_stdin);
}

/* ---- ssh: exec the system ssh with banger's files, checking on ---- */
static const cli_opt ssh_opts[] = { { 0 } };

static int vm_ssh(cli_env *env, const cli_call *call)
{
	const char *name = call->pos[0];
	banger_ctx *ctx = call->ctx;
	char **rest = call->rest;
	int nrest = call->nrest, rc;
	banger_vm *vm;
	if ((rc = banger_vm_lookup(&vm, ctx, name)))
		return cli_fail(name, rc);
	if (banger_vm_is_alive(ctx, vm) != 1) {
		fprintf(stderr, "banger vm ssh: VM %s is not running (banger vm start %s)\n", name, name);
		banger_vm_free(vm);
		return EXIT_FAILURE_;
	}
	/* Verify the host key with banger's own checker first, so a mismatch
	 * is reported the same way on every path ("possible MITM"). */
	banger_ssh_options so;
	banger_ssh_options_init(&so, BANGER_SSH_OPTIONS_VERSION);
	char dns[160];
	snprintf(dns, sizeof(dns), "%s", banger_vm_dns_name(vm) ? banger_vm_dns_name(vm) : "");
	const char *names[] = { dns };
	so.host = banger_vm_guest_ip(vm);
	so.pin_names = names;
	so.pin_names_count = dns[0] ? 1 : 0;
	so.connect_timeout_ms = 15000;
	banger_ssh *check = NULL;
	rc = banger_ssh_connect(&check, ctx, &so);
	banger_ssh_close(check);
	if (rc == BANGER_ETRUST || rc == BANGER_EREVOKED) {
		banger_vm_free(vm);
		return cli_fail("vm ssh", rc);
	}
	banger_vm_free(vm);
	banger_vm_ssh_options o;
	banger_vm_ssh_options_init(&o, BANGER_VM_SSH_OPTIONS_VERSION);
	o.command = (const char *const *)rest;
	o.command_count = (size_t)nrest;
	char **args = NULL;
	if ((rc = banger_vm_ssh_argv(&args, ctx, name, &o)))
		return cli_fail("vm ssh", rc);
	fflush(NULL);
	execvp(args[0], args);
	fprintf(stderr, "banger vm ssh: cannot run %s: %s\n", args[0], strerror(errno));
	banger_free(args);
	return EXIT_FAILURE_;
}

/* ---- run ---- */
static struct {
	bool rm;
} run_o;
static const cli_opt run_opts[] = {
	{ "image", 0, OPT_STRING, &cr.image, "image (needed when the VM does not exist)", "IMG" },
	{ "name", 'n', OPT_STRING, &cr.name, "VM name: reused when it exists", "NAME" },
	{ "kernel", 0, OPT_STRING, &cr.kernel, "kernel (default: the image's)", "KERNEL" },
	{ "vcpus", 0, OPT_STRING, &cr.vcpus, "virtual CPUs", "N" },
	{ "memory", 0, OPT_STRING, &cr.memory, "memory in MiB", "MIB" },
	{ "disk", 0, OPT_STRING, &cr.disk, "work disk size", "SIZE" },
	{ "nat", 0, OPT_FLAG, &cr.nat, "outbound network (NAT)", NULL },
	{ "vmm", 0, OPT_STRING, &cr.vmm, "auto, firecracker or qemu", "VMM" },
	{ "timeout", 0, OPT_STRING, &cr.timeout, "seconds to wait for SSH", "SECS" },
	{ "rm", 0, OPT_FLAG, &run_o.rm, "delete the VM afterwards", NULL },
	{ "stdin", 'i', OPT_FLAG, &exec_stdin, "send stdin to the command", NULL },
	{ 0 },
};

static int vm_run(cli_env *env, const cli_call *call)
{
	banger_ctx *ctx = call->ctx;
	char **rest = call->rest;
	int nrest = call->nrest, rc;
	banger_vm *vm = NULL;
	if (cr.name && banger_vm_lookup(&vm, ctx, cr.name) == 0) {
		if (banger_vm_is_alive(ctx, vm) != 1) {
			banger_vm_start_options so;
			banger_vm_start_options_init(&so, BANGER_VM_START_OPTIONS_VERSION);
			so.progress = progress;
			cli_interrupt_catch();
			rc = banger_vm_start(ctx, cr.name, &so);
			cli_interrupt_release();
			if (rc) {
				banger_vm_free(vm);
				return cli_fail("vm run", rc);
			}
		}
	} else {
		if (!cr.image) {
			fprintf(stderr, "banger vm run: --image is required to create the VM\n");
			return EXIT_USAGE;
		}
		banger_vm_create_options o;
		if (fill_create(&o))
			return EXIT_USAGE;
		cli_interrupt_catch();
		rc = banger_vm_create(&vm, ctx, &o);
		cli_interrupt_release();
		if (rc)
			return cli_fail("vm run", rc);
	}
	char name[128];
	snprintf(name, sizeof(name), "%s", banger_vm_name(vm));
	banger_vm_free(vm);
	int status = run_in(ctx, name, rest, nrest, exec_stdin);
	banger_vm_delete_options dop = BANGER_VM_DELETE_OPTIONS_INIT;
	dop.force = 1;
	if (run_o.rm && (rc = banger_vm_delete(ctx, name, &dop)))
		cli_fail("vm run --rm", rc);
	return status;
}

/* ---- logs ---- */
static bool follow, logs_raw;
static const cli_opt logs_opts[] = {
	{ "follow", 'f', OPT_FLAG, &follow, "keep printing as the console writes", NULL },
	{ "raw", 0, OPT_FLAG, &logs_raw, "escape sequences unchanged even to a terminal", NULL },
	{ 0 },
};

static int vm_logs(cli_env *env, const cli_call *call)
{
	const char *name = call->pos[0];
	banger_ctx *ctx = call->ctx;
	int rc;
	banger_vm *vm;
	if ((rc = banger_vm_lookup(&vm, ctx, name)))
		return cli_fail(name, rc);
	/* The log is rotated to "<log>.1" at console_log_max: the older part
	 * first, then the log, followed across later rotations. */
	const char *log = banger_vm_console_log(vm);
	char older[4200];
	snprintf(older, sizeof(older), "%s.1", log);
	char buf[8192];
	FILE *o = fopen(older, "r");
	FILE *f = fopen(log, "r");
	if (!f && !o) {
		fprintf(stderr, "banger: %s has no console log yet\n", name);
		banger_vm_free(vm);
		return EXIT_NOTFOUND;
	}
	/* The guest wrote the console: to a terminal its escape sequences
	 * are spelled out unless --raw; into a pipe or file the bytes are the
	 * user's data and pass unchanged. */
	bool visible = !logs_raw && isatty(STDOUT_FILENO);
	char carry[4];
	size_t ncarry = 0;
	for (size_t n; o && (n = fread(buf, 1, sizeof(buf), o)) > 0;) {
		if (visible)
			(void)write_visible(stdout, buf, n, carry, &ncarry);
		else
			fwrite(buf, 1, n, stdout);
	}
	if (o)
		fclose(o);
	bool rotated = false;
	for (; f;) {
		size_t n = fread(buf, 1, sizeof(buf), f);
		if (n > 0) {
			if (visible)
				(void)write_visible(stdout, buf, n, carry, &ncarry);
			else
				fwrite(buf, 1, n, stdout);
			continue;
		}
		if (!follow)
			break;
		fflush(stdout);
		clearerr(f);
		if (rotated) { /* the old one read to its very end: on to the new */
			fclose(f);
			f = fopen(log, "r");
			rotated = false;
			continue;
		}
		struct stat now, open_one;
		if (stat(log, &now) == 0 && fstat(fileno(f), &open_one) == 0 &&
		    (now.st_ino != open_one.st_ino || now.st_dev != open_one.st_dev)) {
			rotated = true; /* one more read: what came before the rename */
			continue;
		}
		usleep(200000);
	}
	if (visible)
		(void)write_visible(stdout, NULL, 0, carry, &ncarry);
	if (f)
		fclose(f);
	banger_vm_free(vm);
	return EXIT_OK;
}

/* ---- set ---- */
static struct {
	const char *vcpus, *memory, *disk;
	bool nat, no_nat;
} setv;
static const cli_opt set_opts[] = {
	{ "vcpus", 0, OPT_STRING, &setv.vcpus, "virtual CPUs", "N" },
	{ "memory", 0, OPT_STRING, &setv.memory, "memory in MiB", "MIB" },
	{ "disk", 0, OPT_STRING, &setv.disk, "grow the work disk to SIZE", "SIZE" },
	{ "nat", 0, OPT_FLAG, &setv.nat, "enable outbound NAT", NULL },
	{ "no-nat", 0, OPT_FLAG, &setv.no_nat, "disable outbound NAT", NULL },
	{ 0 },
};

static int vm_set(cli_env *env, const cli_call *call)
{
	const char *name = call->pos[0];
	banger_ctx *ctx = call->ctx;
	int rc;
	uint32_t vcpus = 0, mem = 0;
	uint64_t disk = 0;
	if ((setv.vcpus && parse_u32("vcpus", setv.vcpus, &vcpus)) ||
	    (setv.memory && parse_u32("memory", setv.memory, &mem)) || (setv.disk && parse_size(setv.disk, &disk)))
		return EXIT_USAGE;
	banger_vm_set_options so = BANGER_VM_SET_OPTIONS_INIT;
	so.vcpus = vcpus;
	so.memory_mib = mem;
	so.disk_bytes = disk;
	so.nat = setv.nat ? 1 : setv.no_nat ? 0 : -1;
	if ((rc = banger_vm_set(ctx, name, &so)))
		return cli_fail("vm set", rc);
	return EXIT_OK;
}

/* ---- stats ---- */
static bool stats_json;
static const cli_opt stats_opts[] = {
	{ "json", 0, OPT_FLAG, &stats_json, "print JSON (the default; kept for symmetry)", NULL },
	{ 0 },
};

static int vm_stats(cli_env *env, const cli_call *call)
{
	const char *name = call->pos[0];
	banger_ctx *ctx = call->ctx;
	int rc;
	char *json = NULL;
	if ((rc = banger_vm_stats(&json, ctx, name)))
		return cli_fail("vm stats", rc);
	printf("%s\n", json);
	banger_free(json);
	return EXIT_OK;
}

/* ---- disk: the work disk (info, grow) ---- */
static const char *grow_to;
static const cli_opt disk_opts[] = {
	{ "grow", 0, OPT_STRING, &grow_to, "grow the work disk to SIZE (VM stopped)", "SIZE" },
	{ 0 },
};

static int vm_disk(cli_env *env, const cli_call *call)
{
	const char *name = call->pos[0];
	banger_ctx *ctx = call->ctx;
	int rc;
	uint64_t bytes = 0;
	if (grow_to && parse_size(grow_to, &bytes))
		return EXIT_USAGE;
	banger_vm_set_options so = BANGER_VM_SET_OPTIONS_INIT;
	so.disk_bytes = bytes;
	if (grow_to && (rc = banger_vm_set(ctx, name, &so)))
		return cli_fail("vm disk --grow", rc);
	/* The figures come from the stats call: one source for disk usage. */
	char *json = NULL;
	if ((rc = banger_vm_stats(&json, ctx, name)))
		return cli_fail("vm disk", rc);
	const char *w = strstr(json, "\"work_disk\"");
	unsigned long long size = 0, alloc = 0;
	const char *p = w ? strstr(w, "\"size_bytes\":") : NULL;
	const char *a = w ? strstr(w, "\"allocated_bytes\":") : NULL;
	if (p)
		size = strtoull(p + strlen("\"size_bytes\":"), NULL, 10);
	if (a)
		alloc = strtoull(a + strlen("\"allocated_bytes\":"), NULL, 10);
	char sz[32], al[32];
	fmt_bytes(sz, sizeof(sz), size);
	fmt_bytes(al, sizeof(al), alloc);
	printf("work disk of %s: /dev/vdb in the guest, mounted at /root\n  size:      %s\n  allocated: %s\n",
	       name, sz, al);
	banger_free(json);
	return EXIT_OK;
}

/* ---- authsync ---- */
static const cli_opt no_opts[] = { { 0 } };

static int vm_authsync(cli_env *env, const cli_call *call)
{
	const char *name = call->pos[0];
	banger_ctx *ctx = call->ctx;
	int rc;
	if ((rc = banger_vm_authsync(ctx, name)))
		return cli_fail("vm authsync", rc);
	return EXIT_OK;
}

/* ---- reconcile (and `banger gc`) ---- */
static bool sweep_flag;
static const cli_opt reconcile_opts[] = {
	{ "sweep", 0, OPT_FLAG, &sweep_flag, "also remove kernel objects no VM owns", NULL },
	{ 0 },
};

static int reconcile_run(banger_ctx *ctx, uint32_t flags)
{
	banger_vm_reconcile_options o;
	banger_vm_reconcile_options_init(&o, BANGER_VM_RECONCILE_OPTIONS_VERSION);
	o.flags = flags;
	o.progress = cli_progress_print_step;
	int n = banger_vm_reconcile(ctx, &o);
	if (n < 0)
		return cli_fail("reconcile", n);
	if (n == 0)
		printf("nothing to do\n");
	return EXIT_OK;
}

static int vm_reconcile(cli_env *env, const cli_call *call)
{
	return reconcile_run(call->ctx, sweep_flag ? BANGER_RECONCILE_SWEEP : 0);
}

static int gc_run(cli_env *env, const cli_call *call)
{
	int rc = reconcile_run(call->ctx, BANGER_RECONCILE_SWEEP);
	return cli_gc_blobs(call->ctx, rc);
}

#define LIST_SUMMARY "list VMs (name, state, IP, image, vCPUs, memory, uptime)"
#define VM_NAME { "NAME", ARG_ONE, "the VM's name or id" }

static const cli_arg name_arg[] = { VM_NAME, { 0 } };
static const cli_arg run_args[] = { { "CMD", ARG_REST, "the command and its arguments" }, { 0 } };
static const cli_arg exec_args[] = { VM_NAME, { "CMD", ARG_REST, "the command and its arguments" }, { 0 } };
static const cli_arg ssh_args[] = { VM_NAME, { "CMD", ARG_REST_OPTIONAL, "a command instead of a login shell" }, { 0 } };

static const cli_cmd vm_subs[] = {
	{ "create", "create a VM and boot it", create_opts, NULL, CLI_CTX, vm_create, NULL, create_check },
	{ "run", "create (or reuse) a VM and run a command in it", run_opts, run_args, CLI_CTX, vm_run, NULL, NULL },
	{ "list", LIST_SUMMARY, list_opts, NULL, CLI_CTX, vm_list, NULL, NULL },
	{ "show", "show one VM", show_opts, name_arg, CLI_CTX, vm_show, NULL, NULL },
	{ "start", "boot a stopped VM", start_opts, name_arg, CLI_CTX, vm_start, NULL, NULL },
	{ "stop", "shut a VM down", stop_opts, name_arg, CLI_CTX, vm_stop, NULL, NULL },
	{ "restart", "stop and start a VM", start_opts, name_arg, CLI_CTX, vm_restart, NULL, NULL },
	{ "delete", "delete a VM and everything it owns", delete_opts, name_arg, CLI_CTX, vm_delete, NULL, NULL },
	{ "ssh", "open ssh to a VM (host key verified against banger's known_hosts)", ssh_opts, ssh_args, CLI_CTX,
	  vm_ssh, NULL, NULL },
	{ "exec", "run a command in a VM over SSH", exec_opts, exec_args, CLI_CTX, vm_exec, NULL, NULL },
	{ "logs", "print a VM's console log (escapes spelled out on a terminal)", logs_opts, name_arg, CLI_CTX, vm_logs,
	  NULL, NULL },
	{ "set", "change a stopped VM", set_opts, name_arg, CLI_CTX, vm_set, NULL, NULL },
	{ "stats", "VMM CPU and memory, disk usage, VMM metrics", stats_opts, name_arg, CLI_CTX, vm_stats, NULL, NULL },
	{ "disk", "the work disk: size and use; --grow SIZE (VM stopped)", disk_opts, name_arg, CLI_CTX, vm_disk, NULL,
	  NULL },
	{ "authsync", "copy your SSH public keys into a VM", no_opts, name_arg, CLI_CTX, vm_authsync, NULL, NULL },
	{ "reconcile", "bring recorded VMs in line with the host", reconcile_opts, NULL, CLI_CTX, vm_reconcile, NULL,
	  NULL },
	{ 0 },
};

const cli_cmd cli_vm_cmd = { "vm", "create, run and manage virtual machines", NULL, NULL, 0, NULL, vm_subs, NULL };
const cli_cmd cli_gc_cmd = { "gc", "reconcile VMs, remove kernel objects no VM owns and blobs no image uses",
			     no_opts, NULL, CLI_CTX, gc_run, NULL, NULL };
