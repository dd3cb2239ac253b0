/* Public API only: known_hosts check/pin/list/remove, SSH options. */
#include <banger/banger.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); exit(1); } } while (0)

#define KEY_A "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOqJeE9zBxWgE7nveVEKZGojDXDJcEnn3GdrEoY+GMcv"
#define KEY_B "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKdwtqM0oiKXvUejaChzmgpgWddZH/V7KV01r/8oSkyD"

int main(int argc, char **argv)
{
	CHECK(argc == 2);
	banger_ctx_options o;
	CHECK(banger_ctx_options_init(&o, BANGER_CTX_OPTIONS_VERSION) == 0);
	o.state_dir = argv[1];
	o.flags = BANGER_CTX_NO_RECONCILE;
	banger_ctx *ctx;
	CHECK(banger_ctx_open(&ctx, &o) == 0);
	const char *kh = banger_ssh_known_hosts_path(ctx);
	CHECK(kh && strstr(kh, "/ssh/known_hosts"));
	CHECK(strstr(banger_ssh_client_key_path(ctx), "/ssh/id_ed25519"));

	int v = -1;
	CHECK(banger_known_hosts_check_line(&v, kh, "box.vm", 22, KEY_A) == 0 && v == BANGER_HOSTKEY_NOT_FOUND);
	const char *names[] = { "box.vm", "10.0.0.2" };
	CHECK(banger_known_hosts_pin(kh, names, 2, 22, KEY_A " box") == 0);
	CHECK(banger_known_hosts_check_line(&v, kh, "BOX.vm", 22, KEY_A) == 0 && v == BANGER_HOSTKEY_MATCH);
	CHECK(banger_known_hosts_check_line(&v, kh, "10.0.0.2", 22, KEY_B) == 0 && v == BANGER_HOSTKEY_MISMATCH);
	CHECK(banger_known_hosts_check_line(&v, kh, "10.0.0.2", 2222, KEY_A) == 0 && v == BANGER_HOSTKEY_MATCH);
	CHECK(banger_known_hosts_check_line(&v, kh, "x", 22, "not a key") == BANGER_EINVALID);

	banger_known_hosts_list *l;
	CHECK(banger_known_hosts_list_load(&l, kh) == 0);
	CHECK(banger_known_hosts_list_count(l) == 2);
	const banger_known_host *e = banger_known_hosts_list_get(l, 0);
	CHECK(strcmp(banger_known_host_hosts(e), "box.vm") == 0);
	CHECK(strcmp(banger_known_host_key_type(e), "ssh-ed25519") == 0);
	CHECK(strcmp(banger_known_host_fingerprint(e), "SHA256:9aa4q5H5/44DqBODRYXuCagf+Q+F0+PB0iaTFPltTaI") == 0);
	CHECK(strcmp(banger_known_host_marker(e), "") == 0);
	CHECK(banger_known_host_hashed(e) == 0 && banger_known_host_line(e) == 1);
	CHECK(banger_known_hosts_list_get(l, 2) == NULL);
	banger_known_hosts_list_free(l);
	banger_known_hosts_list_free(NULL);

	uint32_t removed = 0;
	CHECK(banger_known_hosts_remove(&removed, kh, names, 2) == 0 && removed == 2);
	CHECK(banger_known_hosts_check_line(&v, kh, "box.vm", 22, KEY_A) == 0 && v == BANGER_HOSTKEY_NOT_FOUND);

	char *pub = NULL;
	CHECK(banger_ssh_client_key(&pub, ctx) == 0 && strncmp(pub, "ssh-ed25519 ", 12) == 0);
	banger_free(pub);

	banger_ssh_options so;
	CHECK(banger_ssh_options_init(&so, 99) == BANGER_EINVALID);
	CHECK(banger_ssh_options_init(&so, BANGER_SSH_OPTIONS_VERSION) == 0);
	CHECK(so.hostkey_policy == BANGER_SSH_HOSTKEY_TOFU);
	banger_ssh *s = (banger_ssh *)1;
	CHECK(banger_ssh_connect(&s, NULL, &so) == BANGER_EINVALID && s == NULL); /* no host */
	so.host = "127.0.0.1";
	CHECK(banger_ssh_connect(&s, NULL, &so) == BANGER_EINVALID); /* no known_hosts: refused */
	so.version = 0;
	CHECK(banger_ssh_connect(&s, ctx, &so) == BANGER_EINVALID);
	banger_ssh_exec_options eo;
	CHECK(banger_ssh_exec_options_init(&eo, BANGER_SSH_EXEC_OPTIONS_VERSION) == 0 && eo.stdin_fd == -1);
	CHECK(eo.max_output == 0); /* 0: BANGER_SSH_EXEC_DEFAULT_MAX_OUTPUT */
	/* A program built against version 1 has a shorter struct: init
	 * writes none of version 2's fields. */
	eo.max_output = 7;
	CHECK(banger_ssh_exec_options_init(&eo, 1) == 0 && eo.version == 1 && eo.max_output == 7);
	CHECK(banger_ssh_exec_options_init(&eo, 3) == BANGER_EINVALID);
	banger_vm_ssh_options vo;
	CHECK(banger_vm_ssh_options_init(&vo, 2) == BANGER_EINVALID);
	CHECK(banger_vm_ssh_options_init(&vo, BANGER_VM_SSH_OPTIONS_VERSION) == 0 && vo.ssh_path == NULL);
	char **sargv = (char **)1;
	CHECK(banger_vm_ssh_argv(&sargv, ctx, "ghost", &vo) == BANGER_ENOTFOUND && sargv == NULL);
	vo.version = 0;
	CHECK(banger_vm_ssh_argv(&sargv, ctx, "ghost", &vo) == BANGER_EINVALID);
	banger_ssh_close(NULL);
	banger_ssh_result_free(NULL);
	banger_ctx_close(ctx);
	return 0;
}
