/* Linked into banger-session-test only (never into banger): routes the
 * sessions of one made-up VM to an SSH endpoint named in the environment,
 * so the real CLI code can be driven against a real sshd on 127.0.0.1
 * that stands in for the guest.
 *
 *   BANGER_TEST_SESSION_TARGET="vm=NAME host=H port=P user=U
 *       known_hosts=FILE identity=KEY root=DIR helper_dir=DIR"
 *
 * The host key is checked against known_hosts with the PINNED policy: the
 * test pins sshd's key beforehand, exactly as banger pins a VM's. */
#include "../../../libbanger/session/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *field(const char *spec, const char *key)
{
	size_t klen = strlen(key);
	for (const char *p = spec; p && *p;) {
		while (*p == ' ')
			p++;
		size_t len = strcspn(p, " ");
		if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=')
			return strndup(p + klen + 1, len - klen - 1);
		p += len;
	}
	return NULL;
}

__attribute__((constructor)) static void install_target(void)
{
	const char *spec = getenv("BANGER_TEST_SESSION_TARGET");
	if (!spec || !*spec)
		return;
	bg_session_target t;
	memset(&t, 0, sizeof(t));
	t.vm_name = field(spec, "vm");
	t.vm_id = t.vm_name ? strdup(t.vm_name) : NULL;
	t.host = field(spec, "host");
	char *port = field(spec, "port");
	t.port = port ? (uint16_t)atoi(port) : 22;
	free(port);
	t.user = field(spec, "user");
	t.known_hosts = field(spec, "known_hosts");
	t.identity = field(spec, "identity");
	t.root = field(spec, "root");
	t.helper_dir = field(spec, "helper_dir");
	t.policy = BANGER_SSH_HOSTKEY_PINNED;
	if (bg_session_set_test_target(&t) != 0) {
		fprintf(stderr, "banger-session-test: bad BANGER_TEST_SESSION_TARGET: %s\n",
			banger_error_last() ? banger_error_last()->message : "?");
		exit(2);
	}
	char **s[] = { &t.vm_name, &t.vm_id, &t.host, &t.user, &t.known_hosts, &t.identity, &t.root, &t.helper_dir };
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		free(*s[i]);
}
