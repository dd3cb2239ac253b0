/* A banger state root wired to the Firecracker fake, inside a private
 * network namespace, with a kernel and an image recorded. */
#ifndef BG_VM_FIXTURE_H
#define BG_VM_FIXTURE_H

#include "../../unit/helpers.h"

#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../../libbanger/vm/vm.h"
#include "../../../libbanger/kernel/kernel.h"

typedef struct {
	char *dir, *state, *run, *config;
	banger_ctx *ctx;
} vm_fixture;

static void fx_sh(const char *fmt, const char *a, const char *b)
{
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), fmt, a, b ? b : "");
	assert_int_equal(system(cmd), 0);
}

/* Enter a fresh network namespace: taps and nftables stay in it. */
static int fx_enter_netns(void)
{
	if (geteuid() != 0) {
		printf("SKIP: needs root (tap devices, nftables)\n");
		return 77;
	}
	if (unshare(CLONE_NEWNET) != 0) {
		printf("SKIP: cannot create a network namespace\n");
		return 77;
	}
	return system("ip link set lo up") == 0 ? 0 : 1;
}

static banger_ctx *fx_open(vm_fixture *f, uint32_t flags)
{
	banger_ctx_options o = BANGER_CTX_OPTIONS_INIT;
	o.state_dir = f->state;
	o.config_path = f->config;
	o.flags = flags;
	banger_ctx *ctx = NULL;
	int rc = banger_ctx_open(&ctx, &o);
	if (rc)
		fail_msg("open: %s", banger_error_last()->message);
	return ctx;
}

static void fx_setup(vm_fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->dir = test_tmpdir();
	f->state = bg_path_join(f->dir, "state");
	f->run = bg_path_join(f->dir, "run");
	f->config = bg_path_join(f->dir, "config");
	setenv("BANGER_RUNTIME_DIR", f->run, 1);
	const char *src = getenv("BANGER_SOURCE_DIR");
	assert_non_null(src);
	char cfg[4096];
	snprintf(cfg, sizeof(cfg),
		 "vmm = firecracker\nfirecracker_bin = %s/tests/fakes/firecracker/firecracker\n"
		 "subnet = 172.29.0.0/24\nvcpus = 1\nmemory_mib = 128\ndisk_size = 16M\nready_timeout = 5\n", src);
	assert_int_equal(bg_mkdir_p(f->dir, 0700), 0);
	assert_int_equal(bg_write_file_atomic(f->config, cfg, strlen(cfg), 0600), 0);
	f->ctx = fx_open(f, 0);

	/* a kernel: any x86_64 ELF passes import and the fake (no guest runs) */
	char *k = bg_path_join(f->dir, "vmlinux");
	fx_sh("cp /bin/true %s%s", k, NULL);
	bg_kernel_record kr;
	memset(&kr, 0, sizeof(kr));
	if (bg_kernel_import(&f->ctx->env, "testk", k, NULL, NULL, NULL, &kr) != 0)
		fail_msg("kernel import: %s", banger_error_last()->message);
	bg_kernel_record_clear(&kr);
	free(k);

	/* an image: a small ext4 rootfs recorded as prepared */
	char *img = bg_path_join(f->dir, "rootfs.ext4");
	fx_sh("truncate -s 32M %s && mkfs.ext4 -q -F %s", img, img);
	bg_image_record ir;
	memset(&ir, 0, sizeof(ir));
	ir.name = (char *)"testimg";
	ir.ref = (char *)"test";
	ir.kernel_name = (char *)"testk";
	ir.rootfs_path = img;
	ir.rootfs_bytes = 32 << 20;
	ir.prepared = 1;
	ir.created_at = 1;
	assert_int_equal(bg_store_image_insert(&f->ctx->env.store, &ir), 0);
	free(img);
}

static void fx_teardown(vm_fixture *f)
{
	banger_ctx_close(f->ctx);
	char cmd[8192];
	/* nothing of ours may survive: kill by socket path, then remove */
	snprintf(cmd, sizeof(cmd), "pkill -9 -f '%s/' 2>/dev/null; rm -rf '%s'", f->run, f->dir);
	/* best effort, both: what they leave fails the next test's checks */
	int ignored = system(cmd);
	/* a failed test must not leave objects for the next one (private netns) */
	ignored = system("for l in $(ip -o link show | awk -F': ' '/: bg/ {print $2}'); do ip link del \"${l%@*}\"; done; "
			 "nft flush ruleset");
	(void)ignored;
	free(f->dir);
	free(f->state);
	free(f->run);
	free(f->config);
}

/* Kernel truth, not banger's records: taps, processes, NAT rules, loops. */
static int fx_count(const char *cmd_fmt, const char *arg)
{
	char cmd[8192], buf[64] = "";
	snprintf(cmd, sizeof(cmd), cmd_fmt, arg);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	if (!fgets(buf, sizeof(buf), p))
		buf[0] = '\0';
	pclose(p);
	return atoi(buf);
}

static int fx_taps(void)
{
	return fx_count("ip -o link show 2>/dev/null | grep -c ': bg%s' || true", "");
}

/* VMM processes naming a socket in our runtime dir, read from /proc
 * (pgrep through a shell would count the shell itself). */
static int fx_procs(const vm_fixture *f)
{
	char *needle = bg_sprintf("%s/", f->run);
	pid_t *pids = NULL;
	size_t n = 0;
	assert_int_equal(bg_proc_find(&pids, &n, needle), 0);
	free(pids);
	free(needle);
	return (int)n;
}

static int fx_nat_rules(void)
{
	return fx_count("nft list ruleset 2>/dev/null | grep -c 'banger-vm:%s' || true", "");
}

static int fx_loops(const vm_fixture *f)
{
	return fx_count("grep -ls '^%s/' /sys/block/loop*/loop/backing_file 2>/dev/null | wc -l", f->state);
}

static void fx_assert_clean(const vm_fixture *f)
{
	assert_int_equal(fx_taps(), 0);
	assert_int_equal(fx_procs(f), 0);
	assert_int_equal(fx_nat_rules(), 0);
	assert_int_equal(fx_loops(f), 0);
}

#endif
