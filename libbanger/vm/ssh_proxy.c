/* banger_ssh_proxy: the ProxyCommand of banger's ssh_config block.  The
 * VM is looked up here, where VMs are known; the relay itself is the
 * guest module's (bg_ssh_relay). */
#include "vm_internal.h"

#include "../guest/guest.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

BANGER_EXTERN(int) banger_ssh_proxy(banger_ctx *ctx, const char *host, uint16_t port, int in_fd, int out_fd)
{
	if (!ctx || !host || !*host || in_fd < 0 || out_fd < 0)
		return bg_error(BANGER_EINVALID, "invalid argument");
	char *name = bg_strdup(host);
	if (!name)
		return bg_error_oom();
	size_t nl = strlen(name);
	if (nl > 3 && strcasecmp(name + nl - 3, ".vm") == 0)
		name[nl - 3] = '\0';
	bg_vm_record vm;
	int rc = bg_store_vm_get(&ctx->env.store, &vm, name);
	bg_free(name);
	if (rc) {
		bg_error_prefix("ssh-proxy %s", host);
		return rc;
	}
	if (!vm.guest_ip || !*vm.guest_ip) {
		rc = bg_error(BANGER_ESTATE, "VM %s has no guest IP (state %s)", vm.name, vm.state);
		bg_vm_record_clear(&vm);
		return rc;
	}
	char ip[64];
	snprintf(ip, sizeof(ip), "%s", vm.guest_ip);
	bg_vm_record_clear(&vm);
	return bg_ssh_relay(ip, port, in_fd, out_fd);
}
