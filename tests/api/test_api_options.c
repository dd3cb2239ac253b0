/* Public API only: every entry point that takes an options struct refuses
 * a version it does not know (before looking at anything else), and every
 * *_options_init() fills in defaults for its version and refuses others. */
#include <banger/banger.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); exit(1); } } while (0)

/* rc is BANGER_EINVALID and the message names the struct's type. */
static void refused(int rc, const char *type)
{
	CHECK(rc == BANGER_EINVALID);
	CHECK(banger_error_last() && strstr(banger_error_last()->message, type));
	banger_error_clear();
}

int main(int argc, char **argv)
{
	CHECK(argc == 2);
	banger_ctx_options co = BANGER_CTX_OPTIONS_INIT;
	co.state_dir = argv[1];
	banger_ctx *ctx = NULL;
	CHECK(banger_ctx_open(&ctx, &co) == 0);

	/* init: the version asked for, or a refusal */
	banger_vm_start_options so;
	memset(&so, 0xff, sizeof(so));
	CHECK(banger_vm_start_options_init(&so, BANGER_VM_START_OPTIONS_VERSION) == 0);
	CHECK(so.version == BANGER_VM_START_OPTIONS_VERSION && so.no_wait == 0 && so.progress == NULL);
	refused(banger_vm_start_options_init(&so, BANGER_VM_START_OPTIONS_VERSION + 1), "banger_vm_start_options");
	refused(banger_vm_start_options_init(NULL, BANGER_VM_START_OPTIONS_VERSION), "banger_vm_start_options");

	/* entry points: a version from the future is refused first (the VM
	 * "missing" does not exist: a lookup would say not found) */
	banger_ctx_options bad_ctx = co;
	bad_ctx.version = 0;
	banger_ctx *other = NULL;
	refused(banger_ctx_open(&other, &bad_ctx), "banger_ctx_options");

	so.version = 99;
	refused(banger_vm_start(ctx, "missing", &so), "banger_vm_start_options");
	refused(banger_vm_restart(ctx, "missing", &so), "banger_vm_start_options");

	banger_vm_create_options cr = BANGER_VM_CREATE_OPTIONS_INIT;
	cr.image = "none";
	cr.version = 99;
	refused(banger_vm_create(NULL, ctx, &cr), "banger_vm_create_options");
	/* create has a required field: NULL options are refused too */
	refused(banger_vm_create(NULL, ctx, NULL), "banger_vm_create_options");

	/* stop, delete, exec and set take options too; set's are required */
	banger_vm_stop_options st;
	CHECK(banger_vm_stop_options_init(&st, BANGER_VM_STOP_OPTIONS_VERSION) == 0 && st.force == 0);
	st.version = 99;
	refused(banger_vm_stop(ctx, "missing", &st), "banger_vm_stop_options");
	banger_vm_delete_options de;
	CHECK(banger_vm_delete_options_init(&de, BANGER_VM_DELETE_OPTIONS_VERSION) == 0 && de.force == 0);
	de.version = 99;
	refused(banger_vm_delete(ctx, "missing", &de), "banger_vm_delete_options");
	banger_vm_exec_options ex;
	CHECK(banger_vm_exec_options_init(&ex, BANGER_VM_EXEC_OPTIONS_VERSION) == 0 && ex.stdin_fd == -1);
	ex.version = 99;
	banger_exit_status status;
	refused(banger_vm_exec(&status, ctx, "missing", "true", &ex), "banger_vm_exec_options");
	banger_vm_set_options se;
	CHECK(banger_vm_set_options_init(&se, BANGER_VM_SET_OPTIONS_VERSION) == 0 && se.nat == -1 && se.vcpus == 0);
	se.version = 99;
	refused(banger_vm_set(ctx, "missing", &se), "banger_vm_set_options");
	refused(banger_vm_set(ctx, "missing", NULL), "banger_vm_set_options");
	/* with a good version, the VM is looked up */
	CHECK(banger_vm_stop(ctx, "missing", NULL) == BANGER_ENOTFOUND);
	CHECK(banger_vm_delete(ctx, "missing", NULL) == BANGER_ENOTFOUND);
	banger_ssh_upload_options up;
	CHECK(banger_ssh_upload_options_init(&up, BANGER_SSH_UPLOAD_OPTIONS_VERSION) == 0 && up.mode == 0644);
	refused(banger_ssh_upload_options_init(&up, 2), "banger_ssh_upload_options");

	banger_vm_reconcile_options vr = BANGER_VM_RECONCILE_OPTIONS_INIT;
	CHECK(banger_vm_reconcile_options_init(&vr, BANGER_VM_RECONCILE_OPTIONS_VERSION) == 0 && vr.flags == 0 &&
	      vr.progress == NULL);
	refused(banger_vm_reconcile_options_init(&vr, BANGER_VM_RECONCILE_OPTIONS_VERSION + 1),
		"banger_vm_reconcile_options");
	vr.version = 99;
	refused(banger_vm_reconcile(ctx, &vr), "banger_vm_reconcile_options");
	/* NULL: no sweep, no reports; an empty store has nothing to correct */
	CHECK(banger_vm_reconcile(ctx, NULL) == 0);

	banger_store_recover_options ro;
	CHECK(banger_store_recover_options_init(&ro, BANGER_STORE_RECOVER_OPTIONS_VERSION) == 0 && ro.flags == 0 &&
	      ro.progress == NULL);
	ro.version = 99;
	refused(banger_store_recover(ctx, &ro), "banger_store_recover_options");

	banger_image_pull_options ip = BANGER_IMAGE_PULL_OPTIONS_INIT;
	ip.version = 99;
	refused(banger_image_pull(NULL, ctx, "localhost:1/none", &ip), "banger_image_pull_options");
	refused(banger_image_import(NULL, ctx, "/nonexistent", &ip), "banger_image_pull_options");
	banger_image_prune_options pr = BANGER_IMAGE_PRUNE_OPTIONS_INIT;
	pr.version = 99;
	refused(banger_image_prune(NULL, ctx, &pr), "banger_image_prune_options");

	banger_kernel_pull_options kp = BANGER_KERNEL_PULL_OPTIONS_INIT;
	kp.version = 99;
	refused(banger_kernel_pull(NULL, ctx, "k", &kp), "banger_kernel_pull_options");
	banger_kernel_import_options ki = BANGER_KERNEL_IMPORT_OPTIONS_INIT;
	ki.version = 99;
	refused(banger_kernel_import(NULL, ctx, "k", "/nonexistent", &ki), "banger_kernel_import_options");

	banger_session_start_options ss = BANGER_SESSION_START_OPTIONS_INIT;
	ss.version = 99;
	const char *cmd[] = { "true" };
	char *sid = NULL;
	refused(banger_session_start(&sid, ctx, "missing", cmd, 1, &ss), "banger_session_start_options");
	banger_session_attach_options sa = BANGER_SESSION_ATTACH_OPTIONS_INIT;
	sa.version = 99;
	refused(banger_session_attach(NULL, ctx, "missing", &sa), "banger_session_attach_options");
	refused(banger_session_attach(NULL, ctx, "missing", NULL), "banger_session_attach_options");
	banger_session_logs_options sl;
	CHECK(banger_session_logs_options_init(&sl, BANGER_SESSION_LOGS_OPTIONS_VERSION) == 0 && sl.from == 0 &&
	      sl.flags == 0 && sl.output_cb == NULL);
	refused(banger_session_logs_options_init(&sl, 2), "banger_session_logs_options");
	sl.version = 99;
	uint64_t next = 1;
	refused(banger_session_logs(&next, ctx, "missing", &sl), "banger_session_logs_options");
	CHECK(next == 0);
	CHECK(banger_session_logs(&next, ctx, "missing", NULL) == BANGER_ENOTFOUND);
	banger_session_remove_options sr;
	CHECK(banger_session_remove_options_init(&sr, BANGER_SESSION_REMOVE_OPTIONS_VERSION) == 0 && sr.force == 0);
	refused(banger_session_remove_options_init(NULL, BANGER_SESSION_REMOVE_OPTIONS_VERSION),
		"banger_session_remove_options");
	sr.version = 99;
	refused(banger_session_remove(ctx, "missing", &sr), "banger_session_remove_options");
	CHECK(banger_session_remove(ctx, "missing", NULL) == BANGER_ENOTFOUND);
	banger_session_stop_options sst;
	CHECK(banger_session_stop_options_init(&sst, BANGER_SESSION_STOP_OPTIONS_VERSION) == 0 && sst.signal == 0 &&
	      sst.timeout_ms == 0);
	refused(banger_session_stop_options_init(&sst, 2), "banger_session_stop_options");
	sst.version = 99;
	int escalated = 7;
	refused(banger_session_stop(&escalated, ctx, "missing", &sst), "banger_session_stop_options");
	CHECK(escalated == 0);
	CHECK(banger_session_stop(NULL, ctx, "missing", NULL) == BANGER_ENOTFOUND);
	banger_session_wait_options sw;
	CHECK(banger_session_wait_options_init(&sw, BANGER_SESSION_WAIT_OPTIONS_VERSION) == 0 && sw.timeout_ms == 0);
	refused(banger_session_wait_options_init(&sw, 2), "banger_session_wait_options");
	sw.version = 99;
	status.code = 5;
	refused(banger_session_wait(&status, ctx, "missing", &sw), "banger_session_wait_options");
	CHECK(status.code == -1 && status.signal == 0);
	CHECK(banger_session_wait(&status, ctx, "missing", NULL) == BANGER_ENOTFOUND);

	banger_ssh_options sh = BANGER_SSH_OPTIONS_INIT;
	sh.host = "127.0.0.1";
	sh.version = 99;
	banger_ssh *ssh = NULL;
	refused(banger_ssh_connect(&ssh, ctx, &sh), "banger_ssh_options");
	refused(banger_ssh_connect(&ssh, ctx, NULL), "banger_ssh_options");

	banger_ctx_close(ctx);
	puts("api options: ok");
	return 0;
}
