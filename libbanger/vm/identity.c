/* The per-VM identity: its SSH host key (generated here on the host and
 * pinned before first boot, so the first dial is already a verified
 * match), hostname, network settings and authorized keys, written as a
 * ustar disk the guest's first-boot reads (docs/guest-identity.md;
 * identity_disk.c writes the archive). */
#include "vm_internal.h"

#include "../guest/guest.h"
#include "../../guest/include/banger-guest/first_boot.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* Name servers for the guest: the host's, minus loopback ones (a guest
 * cannot reach the host's 127.0.0.53). */
static void host_dns(char *out, size_t len)
{
	out[0] = '\0';
	char *text = NULL;
	if (bg_read_file(&text, NULL, "/etc/resolv.conf", 1 << 16) != 0) {
		banger_error_clear();
		return;
	}
	size_t used = 0;
	char *save = NULL; /* strtok_r: contexts may be used from several threads */
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char ns[64];
		if (sscanf(line, " nameserver %63s", ns) != 1)
			continue;
		struct in_addr a;
		if (inet_pton(AF_INET, ns, &a) != 1 || (ntohl(a.s_addr) >> 24) == 127)
			continue;
		int n = snprintf(out + used, len - used, "%s%s", used ? " " : "", ns);
		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
	}
	bg_free(text);
}

int bg_vm_identity_write(banger_ctx *ctx, const bg_vm_record *vm, const char *host_ip,
			 const char *private_key, const char *public_line)
{
	bg_vm_paths p;
	int rc = bg_layout_vm_paths(&p, &ctx->env.layout, vm->id);
	if (rc)
		return rc;
	char *client = NULL;
	bg_buf tar = BG_BUF_INIT, env = BG_BUF_INIT;
	char dns[256];
	host_dns(dns, sizeof(dns));
	if ((rc = bg_client_key_ensure(ctx->env.layout.client_key, &client)))
		goto out;
	bg_buf_printf(&env,
		      "# written by banger for VM %s\n"
		      BG_FB_NET_IP "='%s'\n" BG_FB_NET_PREFIX "='%d'\n" BG_FB_NET_GATEWAY "='%s'\n"
		      BG_FB_NET_DNS "='%s'\n" BG_FB_NET_IFACE "='eth0'\n" BG_FB_NET_NAT "='%d'\n",
		      vm->id, vm->guest_ip, BG_SLOT_PREFIX, host_ip, vm->nat ? dns : "", vm->nat ? 1 : 0);
	char hostname[80];
	snprintf(hostname, sizeof(hostname), "%s\n", vm->name);
	char *auth = bg_sprintf("%s\n", client);
	if (!auth || env.oom) {
		rc = bg_error_oom();
		goto out_auth;
	}
	const bg_identity_file files[] = {
		{ BG_FB_ID_DIR, 0755, NULL, 0 },
		{ BG_FB_ID_HOSTNAME, 0644, hostname, strlen(hostname) },
		{ BG_FB_ID_NETWORK, 0644, env.data, env.len },
		{ BG_FB_ID_HOST_KEY, 0600, private_key, strlen(private_key) },
		{ BG_FB_ID_HOST_KEY_PUB, 0644, public_line, strlen(public_line) },
		{ BG_FB_ID_AUTHORIZED_KEYS, 0644, auth, strlen(auth) },
	};
	if ((rc = bg_identity_archive(&tar, files, BG_ARRAY_SIZE(files))))
		goto out_auth;
	rc = bg_write_file_atomic(p.identity_disk, tar.data, tar.len, 0600);
out_auth:
	bg_free(auth);
out:
	bg_free(client);
	/* the archive holds the private host key */
	if (tar.data)
		memset(tar.data, 0, tar.cap);
	bg_buf_free(&tar);
	bg_buf_free(&env);
	bg_vm_paths_free(&p);
	return rc;
}
