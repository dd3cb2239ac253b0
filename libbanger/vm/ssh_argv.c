/* banger_vm_ssh_argv: the system ssh into a VM, with banger's policy
 * (guest/ssh_policy.c) filled in from the VM's record. */
#include "vm_internal.h"
#include "../guest/guest.h"

BANGER_EXTERN(int) banger_vm_ssh_options_init(banger_vm_ssh_options *opts, unsigned int version)
{
	static const banger_vm_ssh_options def = BANGER_VM_SSH_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_vm_ssh_options", version,
			       BANGER_VM_SSH_OPTIONS_VERSION, BANGER_VM_SSH_OPTIONS_VERSION);
}

BANGER_EXTERN(int) banger_vm_ssh_argv(char ***out, banger_ctx *ctx, const char *name,
				      const banger_vm_ssh_options *opts)
{
	if (out)
		*out = NULL;
	if (!out || !ctx || !name)
		return bg_error(BANGER_EINVALID, "invalid argument");
	static const banger_vm_ssh_options def = BANGER_VM_SSH_OPTIONS_INIT;
	int rc = BG_OPTIONS_CHECK(opts, &def, banger_vm_ssh_options, BANGER_VM_SSH_OPTIONS_VERSION,
				  BANGER_VM_SSH_OPTIONS_VERSION);
	if (rc)
		return rc;
	bg_vm_record vm;
	rc = bg_store_vm_get(&ctx->env.store, &vm, name);
	if (rc)
		return rc;
	if (!vm.guest_ip || !*vm.guest_ip) {
		rc = bg_error(BANGER_ESTATE, "VM %s has no address", vm.name);
		goto out;
	}
	/* The argv must work as it is: ssh reads the key it names. */
	if ((rc = bg_client_key_ensure(ctx->env.layout.client_key, NULL)))
		goto out;
	/* The key is looked up under NAME.vm, the name it was pinned under
	 * before first boot (a guest IP is reused by later VMs). */
	bg_ssh_target t = { .identity = ctx->env.layout.client_key,
			    .known_hosts = ctx->env.layout.known_hosts,
			    .user = opts->user,
			    .host_name = vm.guest_ip,
			    .host_key_alias = vm.dns_name };
	rc = bg_ssh_argv(out, &t, opts->ssh_path ? opts->ssh_path : "ssh", vm.guest_ip, opts->command,
			 opts->command_count);
out:
	bg_vm_record_clear(&vm);
	return rc;
}
