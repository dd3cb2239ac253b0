/* banger vm ...: virtual machines. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static void vm_json(FILE *f, const banger_vm *vm)
{
	fprintf(f, "{\"id\": ");
	json_str(f, banger_vm_id(vm));
	fprintf(f, ", \"name\": ");
	json_str(f, banger_vm_name(vm));
	fprintf(f, ", \"state\": ");
	json_str(f, banger_vm_state(vm));
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
	if (strcmp(banger_vm_state(vm), "running") != 0 || banger_vm_started_at(vm) == 0) {
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
static const cli_cmd vm_list_cmd;

static int vm_list(cli_env *env, int argc, char **argv)
{
	const char **pos;
	int npos;
	int rc = cli_parse_or_usage("vm list", &vm_list_cmd, list_opts, argc, argv, &pos, &npos, NULL, NULL);
	free(pos);
	if (rc >= 0)
		return rc;
	banger_ctx *ctx = cli_ctx(env);
	if (!ctx)
		return EXIT_FAILURE_;
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
			const char *row[] = { banger_vm_name(vm), banger_vm_state(vm), banger_vm_guest_ip(vm),
					      banger_vm_image(vm), vcpus, mem, up };
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
static const cli_cmd vm_show_cmd;

static int vm_show(cli_env *env, int argc, char **argv)
{
	const char **pos;
	int npos;
	int rc = cli_parse_or_usage("vm show", &vm_show_cmd, show_opts, argc, argv, &pos, &npos, NULL, NULL);
	if (rc >= 0) {
		free(pos);
		return rc;
	}
	if (npos != 1) {
		free(pos);
		fprintf(stderr, "banger vm show: expected one VM name\n");
		return EXIT_USAGE;
	}
	const char *name = pos[0];
	free(pos);
	banger_ctx *ctx = cli_ctx(env);
	if (!ctx)
		return EXIT_FAILURE_;
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
		       banger_vm_name(vm), banger_vm_id(vm), banger_vm_state(vm),
		       banger_vm_image(vm) ? banger_vm_image(vm) : "-",
		       banger_vm_kernel(vm) ? banger_vm_kernel(vm) : "-", banger_vm_vmm(vm),
		       banger_vm_guest_ip(vm) ? banger_vm_guest_ip(vm) : "-",
		       banger_vm_mac(vm) ? banger_vm_mac(vm) : "-",
		       banger_vm_dns_name(vm) ? banger_vm_dns_name(vm) : "-", banger_vm_vcpus(vm),
		       banger_vm_memory_mib(vm), banger_vm_vsock_cid(vm), banger_vm_nat(vm) ? "yes" : "no", up);
		if (banger_vm_last_error(vm))
			printf("last error: %s\n", banger_vm_last_error(vm));
	}
	banger_vm_free(vm);
	return EXIT_OK;
}

static const cli_cmd vm_list_cmd = { "list", "list VMs (name, state, IP, image, vCPUs, memory, uptime)", "[--json]", vm_list, NULL };
static const cli_cmd vm_show_cmd = { "show", "show one VM", "NAME [--json]", vm_show, NULL };

static const cli_cmd vm_subs[] = {
	{ "list", "list VMs (name, state, IP, image, vCPUs, memory, uptime)", "[--json]", vm_list, NULL },
	{ "show", "show one VM", "NAME [--json]", vm_show, NULL },
	{ 0 },
};

const cli_cmd cli_vm_cmd = { "vm", "create, run and manage virtual machines", "<command> [args]", NULL, vm_subs };
