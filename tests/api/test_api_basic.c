/* Public API only: version, options, context, VM listing, errors, shell
 * words. */
#include <banger/banger.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); exit(1); } } while (0)

static int logged;
static void on_log(int level, const char *msg, void *payload)
{
	(void)level;
	(void)msg;
	CHECK(payload == &logged);
	logged++;
}

int main(int argc, char **argv)
{
	CHECK(argc == 2);
	CHECK(strcmp(banger_version(), BANGER_VERSION) == 0);
	int ma, mi, pa;
	CHECK(banger_version_numbers(&ma, &mi, &pa) == 0 && ma == BANGER_VERSION_MAJOR);

	banger_ctx_options o;
	CHECK(banger_ctx_options_init(&o, 99) == BANGER_EINVALID);
	CHECK(banger_error_last() && banger_error_last()->code == BANGER_EINVALID);
	CHECK(banger_ctx_options_init(&o, BANGER_CTX_OPTIONS_VERSION) == 0);
	o.state_dir = argv[1];
	o.log_cb = on_log;
	o.log_payload = &logged;
	o.log_level = BANGER_LOG_DEBUG;

	banger_ctx *ctx = NULL;
	banger_ctx_options bad = o;
	bad.version = 0;
	CHECK(banger_ctx_open(&ctx, &bad) == BANGER_EINVALID && ctx == NULL);
	CHECK(banger_ctx_open(&ctx, &o) == 0 && ctx);
	CHECK(logged > 0);
	CHECK(strcmp(banger_ctx_state_dir(ctx), argv[1]) == 0);
	CHECK(strstr(banger_ssh_known_hosts_path(ctx), "/ssh/known_hosts"));

	char *v = NULL;
	CHECK(banger_ctx_config_get(&v, ctx, "vmm") == 0 && strcmp(v, "auto") == 0);
	banger_free(v);
	CHECK(banger_ctx_config_get(&v, ctx, "nope") == BANGER_ENOTFOUND);

	banger_vm_list *l = NULL;
	CHECK(banger_vm_list_all(&l, ctx) == 0);
	CHECK(banger_vm_list_count(l) == 0);
	CHECK(banger_vm_list_get(l, 0) == NULL);
	banger_vm_list_free(l);

	banger_vm *vm = NULL;
	CHECK(banger_vm_lookup(&vm, ctx, "missing") == BANGER_ENOTFOUND);
	CHECK(vm == NULL);
	CHECK(strstr(banger_error_last()->message, "missing"));
	banger_error_clear();
	CHECK(banger_error_last() == NULL);

	uint32_t f = 0;
	CHECK(banger_host_features(&f) == 0);

	/* words for a shell: every one quoted, a quote closed and escaped */
	const char *words[] = { "echo", "it's", "" };
	char *q = NULL;
	CHECK(banger_text_shell_quote(&q, words, 3) == 0 && strcmp(q, "'echo' 'it'\\''s' ''") == 0);
	banger_free(q);
	CHECK(banger_text_shell_quote(&q, NULL, 0) == 0 && strcmp(q, "") == 0);
	banger_free(q);
	const char *hole[] = { "a", NULL };
	CHECK(banger_text_shell_quote(&q, hole, 2) == BANGER_EINVALID && q == NULL);
	CHECK(banger_text_shell_quote(NULL, words, 1) == BANGER_EINVALID);

	/* every free accepts NULL */
	banger_vm_free(NULL);
	banger_vm_list_free(NULL);
	banger_free(NULL);
	banger_ctx_close(NULL);
	banger_ctx_close(ctx);

	/* a second context on the same root works (no migration rerun issue) */
	CHECK(banger_ctx_open(&ctx, &o) == 0);
	banger_ctx_close(ctx);
	puts("api basic: ok");
	return 0;
}
