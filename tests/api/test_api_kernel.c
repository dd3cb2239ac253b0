/* Public API only: the kernel catalog (file://), pull with a progress
 * callback (and cancelled at each of its stages), import (the same, and
 * in a wait for the kernels lock), list, lookup, VMM checks, remove,
 * options versions and NULL handling. */
#include <banger/banger.h>

#include "lock_holder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "%s:%d: check failed: %s (%s)\n", __FILE__, __LINE__, #cond, \
	banger_error_last() ? banger_error_last()->message : "-"); exit(1); } } while (0)

typedef struct {
	int calls, last_event, operation;
	uint64_t last_done, last_total;
	char stages[256];     /* each stage once, in order: "catalog download ..." */
	const char *stop_at;  /* cancel at this stage (NULL: never) ... */
	int stop_event;       /* ... at this event of it (0: the first) */
	char detail[256];     /* of the last report */
} progress;

static int on_progress(const banger_progress *r, void *payload)
{
	progress *p = payload;
	CHECK(r->version == BANGER_PROGRESS_VERSION && r->stage && r->subject);
	p->calls++;
	p->last_event = r->event;
	snprintf(p->detail, sizeof(p->detail), "%s", r->detail ? r->detail : "");
	p->operation = r->operation;
	if (r->event == BANGER_PROGRESS_DOWNLOAD) {
		p->last_done = r->done;
		p->last_total = r->total;
	}
	const char *last = strrchr(p->stages, ' ');
	if (strcmp(last ? last + 1 : p->stages, r->stage) != 0)
		snprintf(p->stages + strlen(p->stages), sizeof(p->stages) - strlen(p->stages), "%s%s",
			 p->stages[0] ? " " : "", r->stage);
	return p->stop_at && strcmp(r->stage, p->stop_at) == 0 && (!p->stop_event || r->event == p->stop_event);
}

static void sh(const char *cmd)
{
	CHECK(system(cmd) == 0);
}

int main(int argc, char **argv)
{
	CHECK(argc == 2);
	char www[4096], cmd[36000], sha[65] = "";
	snprintf(www, sizeof(www), "%s.www", argv[1]);

	banger_ctx_options o;
	CHECK(banger_ctx_options_init(&o, BANGER_CTX_OPTIONS_VERSION) == 0);
	o.state_dir = argv[1];
	banger_ctx *ctx = NULL;
	CHECK(banger_ctx_open(&ctx, &o) == 0);

	/* options versions */
	banger_kernel_pull_options po;
	banger_kernel_import_options io;
	CHECK(banger_kernel_pull_options_init(&po, 99) == BANGER_EINVALID);
	CHECK(banger_kernel_import_options_init(&io, 0) == BANGER_EINVALID);
	CHECK(banger_kernel_pull_options_init(&po, BANGER_KERNEL_PULL_OPTIONS_VERSION) == 0);
	CHECK(banger_kernel_import_options_init(&io, BANGER_KERNEL_IMPORT_OPTIONS_VERSION) == 0);
	banger_kernel_pull_options stale = po;
	stale.version = 1; /* its progress callback had another shape */
	banger_kernel *k = (banger_kernel *)1;
	CHECK(banger_kernel_pull(&k, ctx, "x", &stale) == BANGER_EINVALID && k == NULL);

	/* no catalog configured */
	banger_kernel_catalog *cat = (banger_kernel_catalog *)1;
	CHECK(banger_kernel_catalog_fetch(&cat, ctx, NULL) == BANGER_EINVALID && cat == NULL);
	CHECK(strstr(banger_error_last()->message, "kernel_catalog"));

	/* an empty store */
	banger_kernel_list *l;
	CHECK(banger_kernel_list_all(&l, ctx) == 0 && banger_kernel_list_count(l) == 0);
	CHECK(banger_kernel_list_get(l, 0) == NULL);
	banger_kernel_list_free(l);

	/* a file:// catalog with a relative artifact URL */
	snprintf(cmd, sizeof(cmd),
		 "set -e; mkdir -p '%s/a'; cp /bin/true '%s/a/vmlinux'; tar -C '%s/a' -czf '%s/k.tar.gz' vmlinux; "
		 "sha256sum '%s/k.tar.gz' | cut -c1-64 > '%s/sha'; stat -c %%s '%s/k.tar.gz' > '%s/size'",
		 www, www, www, www, www, www, www, www);
	sh(cmd);
	char path[4200];
	snprintf(path, sizeof(path), "%s/sha", www);
	FILE *f = fopen(path, "r");
	CHECK(f && fscanf(f, "%64s", sha) == 1);
	fclose(f);
	snprintf(path, sizeof(path), "%s/size", www);
	unsigned long long size = 0;
	f = fopen(path, "r");
	CHECK(f && fscanf(f, "%llu", &size) == 1);
	fclose(f);
	snprintf(path, sizeof(path), "%s/catalog.json", www);
	f = fopen(path, "w");
	CHECK(f);
	fprintf(f, "{\"schema_version\": 1, \"kernels\": [{\"name\": \"tiny\", \"version\": \"0.1\", "
		   "\"arch\": \"x86_64\", \"url\": \"k.tar.gz\", \"size\": %llu, \"sha256\": \"%s\", "
		   "\"description\": \"a test\", \"vmms\": [\"firecracker\", \"qemu\"]}]}\n", size, sha);
	fclose(f);

	CHECK(banger_kernel_catalog_fetch(&cat, ctx, path) == 0);
	CHECK(strncmp(banger_kernel_catalog_url(cat), "file://", 7) == 0);
	CHECK(banger_kernel_catalog_count(cat) == 1);
	const banger_kernel_catalog_entry *e = banger_kernel_catalog_get(cat, 0);
	CHECK(e && banger_kernel_catalog_get(cat, 1) == NULL);
	CHECK(strcmp(banger_kernel_catalog_entry_name(e), "tiny") == 0);
	CHECK(strcmp(banger_kernel_catalog_entry_version(e), "0.1") == 0);
	CHECK(strcmp(banger_kernel_catalog_entry_arch(e), "x86_64") == 0);
	CHECK(strcmp(banger_kernel_catalog_entry_sha256(e), sha) == 0);
	CHECK(strcmp(banger_kernel_catalog_entry_vmms(e), "firecracker,qemu") == 0);
	CHECK(strcmp(banger_kernel_catalog_entry_description(e), "a test") == 0);
	CHECK(banger_kernel_catalog_entry_format(e) == NULL);
	CHECK(banger_kernel_catalog_entry_size(e) == size);
	CHECK(strstr(banger_kernel_catalog_entry_url(e), "/k.tar.gz"));
	banger_kernel_catalog_free(cat);

	/* a pull cancelled at any of its stages leaves nothing: no record,
	 * nothing under kernels/ but the lock */
	static const struct {
		const char *stage;
		int event;
	} stops[] = { { "catalog", 0 },
		      { "download", BANGER_PROGRESS_DOWNLOAD },
		      { "download", BANGER_PROGRESS_DOWNLOADED },
		      { "unpack", 0 },
		      { "install", 0 } };
	po.catalog_url = path;
	po.progress = on_progress;
	char left[9000];
	snprintf(left, sizeof(left), "test -z \"$(ls -A '%s/kernels' | grep -v '^\\.lock$')\"", argv[1]);
	for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++) {
		progress c;
		memset(&c, 0, sizeof(c));
		c.stop_at = stops[i].stage;
		c.stop_event = stops[i].event;
		po.progress_payload = &c;
		CHECK(banger_kernel_pull(&k, ctx, "tiny", &po) == BANGER_ECANCELLED && k == NULL);
		CHECK(strstr(banger_error_last()->message, "cancelled"));
		CHECK(c.operation == BANGER_PROGRESS_OP_KERNEL_PULL);
		CHECK(banger_kernel_lookup(&k, ctx, "tiny") == BANGER_ENOTFOUND && k == NULL);
		sh(left);
	}

	/* pull with progress: every stage, the bytes, and DONE last */
	progress p;
	memset(&p, 0, sizeof(p));
	po.progress_payload = &p;
	CHECK(banger_kernel_pull(&k, ctx, "tiny", &po) == 0 && k);
	CHECK(p.calls >= 1 && p.last_done == size && p.last_total == size);
	CHECK(strcmp(p.stages, "catalog download unpack install done") == 0);
	CHECK(p.last_event == BANGER_PROGRESS_DONE);
	CHECK(strcmp(banger_kernel_name(k), "tiny") == 0);
	CHECK(strcmp(banger_kernel_version(k), "0.1") == 0);
	CHECK(strcmp(banger_kernel_arch(k), "x86_64") == 0);
	CHECK(strcmp(banger_kernel_format(k), "elf") == 0);
	CHECK(strstr(banger_kernel_path(k), "/kernels/tiny/vmlinux"));
	CHECK(banger_kernel_initrd_path(k) == NULL && banger_kernel_config_path(k) == NULL);
	CHECK(strncmp(banger_kernel_source(k), "file://", 7) == 0);
	CHECK(strcmp(banger_kernel_sha256(k), sha) == 0);
	CHECK(banger_kernel_created_at(k) > 0);
	CHECK(banger_kernel_check_vmm(k, "firecracker") == 0);
	CHECK(banger_kernel_check_vmm(k, "qemu") == BANGER_EUNSUPPORTED); /* no PVH, no bzImage */
	char *boot = NULL;
	CHECK(banger_kernel_boot_path(&boot, k, "firecracker") == 0 && strcmp(boot, banger_kernel_path(k)) == 0);
	banger_free(boot);
	banger_kernel_free(k);
	CHECK(banger_kernel_pull(NULL, ctx, "tiny", &po) == BANGER_EEXISTS);

	/* an import cancelled at its stages leaves nothing either */
	static const char *const import_stops[] = { "copy", "install" };
	io.progress = on_progress;
	for (size_t i = 0; i < 2; i++) {
		progress c;
		memset(&c, 0, sizeof(c));
		c.stop_at = import_stops[i];
		io.progress_payload = &c;
		CHECK(banger_kernel_import(&k, ctx, "imported", "/bin/true", &io) == BANGER_ECANCELLED && k == NULL);
		CHECK(c.operation == BANGER_PROGRESS_OP_KERNEL_IMPORT);
		CHECK(banger_kernel_lookup(&k, ctx, "imported") == BANGER_ENOTFOUND && k == NULL);
	}
	progress ip;
	memset(&ip, 0, sizeof(ip));
	io.progress_payload = &ip;
	CHECK(banger_kernel_import(NULL, ctx, "imported2", "/bin/true", &io) == 0);
	CHECK(strcmp(ip.stages, "copy install done") == 0);
	CHECK(banger_kernel_remove(ctx, "imported2") == 0);

	/* another process holds the kernels lock: the wait is reported
	 * (WAITING at "lock", naming the holder) and a cancel in it installs
	 * nothing */
	char lock[4200], held[64];
	snprintf(lock, sizeof(lock), "%s/kernels/.lock", argv[1]);
	pid_t holder = lock_holder_start(lock);
	snprintf(held, sizeof(held), "held by pid %d", (int)holder);
	memset(&ip, 0, sizeof(ip));
	ip.stop_at = "lock";
	ip.stop_event = BANGER_PROGRESS_WAITING;
	CHECK(banger_kernel_import(&k, ctx, "imported2", "/bin/true", &io) == BANGER_ECANCELLED && k == NULL);
	CHECK(strcmp(ip.stages, "copy install lock") == 0 && ip.last_event == BANGER_PROGRESS_WAITING);
	CHECK(strstr(ip.detail, "waiting for the kernels lock") && strstr(ip.detail, held));
	CHECK(strstr(banger_error_last()->message, "cancelled"));
	CHECK(banger_kernel_lookup(&k, ctx, "imported2") == BANGER_ENOTFOUND && k == NULL);
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s/kernels' | grep -v -e '^\\.lock$' -e '^tiny$')\"", argv[1]);
	sh(cmd); /* no staging directory left */
	lock_holder_stop(holder);
	io.progress = NULL;

	/* import with default options, out not wanted */
	CHECK(banger_kernel_import(NULL, ctx, "imported", "/bin/true", NULL) == 0);
	CHECK(banger_kernel_import(&k, ctx, "bad", path, &io) == BANGER_EINVALID && k == NULL);

	CHECK(banger_kernel_list_all(&l, ctx) == 0 && banger_kernel_list_count(l) == 2);
	CHECK(strcmp(banger_kernel_name(banger_kernel_list_get(l, 0)), "imported") == 0);
	CHECK(strcmp(banger_kernel_source(banger_kernel_list_get(l, 0)), "import") == 0);
	CHECK(strcmp(banger_kernel_name(banger_kernel_list_get(l, 1)), "tiny") == 0);
	banger_kernel_list_free(l);

	CHECK(banger_kernel_remove(ctx, "imported") == 0);
	CHECK(banger_kernel_remove(ctx, "imported") == BANGER_ENOTFOUND);
	CHECK(banger_kernel_lookup(&k, ctx, "imported") == BANGER_ENOTFOUND && k == NULL);
	CHECK(banger_kernel_remove(ctx, "tiny") == 0);

	/* NULL everywhere it is allowed */
	banger_kernel_free(NULL);
	banger_kernel_list_free(NULL);
	banger_kernel_catalog_free(NULL);
	CHECK(banger_kernel_name(NULL) == NULL && banger_kernel_created_at(NULL) == 0);
	CHECK(banger_kernel_catalog_count(NULL) == 0 && banger_kernel_catalog_entry_size(NULL) == 0);
	CHECK(banger_kernel_lookup(NULL, ctx, "x") == BANGER_EINVALID);
	CHECK(banger_kernel_boot_path(NULL, NULL, "qemu") == BANGER_EINVALID);

	banger_ctx_close(ctx);
	printf("ok\n");
	return 0;
}
