/* Running commands in a guest through the library's SSH client, with the
 * host key verified against banger's known_hosts. */
#include "vm_internal.h"

#include "../../guest/include/banger-guest/first_boot.h"

#include <banger/ssh.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Connect to a running VM, trusting on first use under its names: the key
 * banger pinned before first boot must match; after an explicit
 * `known-hosts forget` the next dial pins again. */
static int vm_connect(banger_ssh **ssh, banger_ctx *ctx, const bg_vm_record *vm)
{
	if (!bg_vm_alive(ctx, vm, NULL))
		return bg_error(BANGER_ESTATE, "VM %s is not running", vm->name);
	const char *names[2];
	bg_vm_pin_names(vm, names);
	banger_ssh_options so = BANGER_SSH_OPTIONS_INIT;
	so.host = vm->guest_ip;
	so.known_hosts_path = ctx->env.layout.known_hosts;
	so.hostkey_policy = BANGER_SSH_HOSTKEY_TOFU;
	so.pin_names = names;
	so.pin_names_count = 2;
	return banger_ssh_connect(ssh, ctx, &so);
}

/* The output is the caller's to keep or drop, never collected here. */
static int drop_output(int stream, const char *data, size_t len, void *payload)
{
	(void)stream;
	(void)data;
	(void)len;
	(void)payload;
	return 0;
}

BANGER_EXTERN(int) banger_vm_exec_options_init(banger_vm_exec_options *opts, unsigned int version)
{
	static const banger_vm_exec_options def = BANGER_VM_EXEC_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_vm_exec_options", version,
			       BANGER_VM_EXEC_OPTIONS_VERSION, BANGER_VM_EXEC_OPTIONS_VERSION);
}

BANGER_EXTERN(int) banger_vm_exec(banger_exit_status *out, banger_ctx *ctx, const char *name,
				  const char *command, const banger_vm_exec_options *opts)
{
	banger_vm_exec_options def = BANGER_VM_EXEC_OPTIONS_INIT;
	if (!out || !ctx || !name || !command)
		return bg_error(BANGER_EINVALID, "invalid argument");
	out->code = -1;
	out->signal = 0;
	int rc = BG_OPTIONS_CHECK(opts, &def, banger_vm_exec_options, BANGER_VM_EXEC_OPTIONS_VERSION,
				  BANGER_VM_EXEC_OPTIONS_VERSION);
	if (rc)
		return rc;
	bg_vm_record vm;
	if ((rc = bg_store_vm_get(&ctx->env.store, &vm, name)))
		return rc;
	banger_ssh *ssh = NULL;
	if ((rc = vm_connect(&ssh, ctx, &vm)))
		goto out;
	banger_ssh_exec_options eo = BANGER_SSH_EXEC_OPTIONS_INIT;
	eo.stdin_fd = opts->stdin_fd;
	eo.output_cb = opts->output_cb ? opts->output_cb : drop_output;
	eo.output_payload = opts->output_payload;
	eo.timeout_ms = opts->timeout_ms ? opts->timeout_ms : 24u * 3600 * 1000;
	banger_ssh_result *res = NULL;
	if ((rc = banger_ssh_exec(&res, ssh, command, &eo)) == 0) {
		out->code = banger_ssh_result_exit_code(res);
		out->signal = banger_ssh_result_exit_signal(res);
	}
	banger_ssh_result_free(res);
out:
	banger_ssh_close(ssh);
	bg_vm_record_clear(&vm);
	return rc;
}

/* The host user's public keys and banger's own, one per line. */
static int collect_keys(bg_buf *b, banger_ctx *ctx)
{
	char *mine = NULL;
	int rc = banger_ssh_client_key(&mine, ctx);
	if (rc)
		return rc;
	bg_buf_printf(b, "%s\n", mine);
	banger_free(mine);
	const char *home = getenv("HOME");
	char *dir = home ? bg_path_join(home, ".ssh") : NULL;
	DIR *d = dir ? opendir(dir) : NULL;
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (!bg_endswith(e->d_name, ".pub"))
				continue;
			char *path = bg_path_join(dir, e->d_name);
			char *text = NULL;
			if (path && bg_read_file(&text, NULL, path, 16384) == 0 && bg_startswith(text, "ssh-"))
				bg_buf_printf(b, "%s%s", text, bg_endswith(text, "\n") ? "" : "\n");
			bg_free(text);
			bg_free(path);
		}
		closedir(d);
	}
	bg_free(dir);
	banger_error_clear();
	return b->oom ? bg_error_oom() : 0;
}

BANGER_EXTERN(int) banger_vm_authsync(banger_ctx *ctx, const char *name)
{
	if (!ctx || !name)
		return bg_error(BANGER_EINVALID, "invalid argument");
	bg_vm_record vm;
	int rc = bg_store_vm_get(&ctx->env.store, &vm, name);
	if (rc)
		return rc;
	bg_buf keys = BG_BUF_INIT;
	banger_ssh *ssh = NULL;
	banger_ssh_result *res = NULL;
	if ((rc = collect_keys(&keys, ctx)) || (rc = vm_connect(&ssh, ctx, &vm)))
		goto out;
	banger_ssh_exec_options eo = BANGER_SSH_EXEC_OPTIONS_INIT;
	eo.stdin_data = keys.data;
	eo.stdin_len = keys.len;
	/* Written where the guest's sshd looks (see first-boot): /root is
	 * the work disk, so the file lives under /etc/banger. */
	rc = banger_ssh_exec(&res, ssh,
			     "umask 077 && mkdir -p " BG_FB_GUEST_CONF_DIR " && cat > " BG_FB_AUTHORIZED_KEYS
			     ".tmp && chmod 644 " BG_FB_AUTHORIZED_KEYS ".tmp && mv " BG_FB_AUTHORIZED_KEYS
			     ".tmp " BG_FB_AUTHORIZED_KEYS,
			     &eo);
	if (rc == 0 && banger_ssh_result_exit_code(res) != 0)
		rc = bg_error(BANGER_ERROR, "writing authorized_keys in %s failed: %s", vm.name,
			      banger_ssh_result_stderr(res, NULL));
out:
	banger_ssh_result_free(res);
	banger_ssh_close(ssh);
	bg_buf_free(&keys);
	bg_vm_record_clear(&vm);
	return rc;
}
