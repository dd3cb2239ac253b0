/*
 * Private declarations of the guest-access module: SSH public keys and
 * banger's own ed25519 keys (sshkey.c), the OpenSSH-compatible known_hosts
 * parser, matcher and writer (known_hosts.c), the libssh2 client
 * (ssh_client.c) and the ~/.ssh/config integration (ssh_config.c).
 *
 * What the VM lifecycle calls:
 *   - bg_sshkey_generate_ed25519()      a VM's host key, before first boot;
 *   - bg_known_hosts_pin()              pin it under the VM's names;
 *   - bg_known_hosts_remove()           drop every spelling of those names;
 *   - banger_ssh_wait() / banger_ssh_exec() / banger_ssh_upload()
 *     (public, include/banger/ssh.h) to reach the guest with verification.
 */
#ifndef BG_GUEST_H
#define BG_GUEST_H

#include "../core/core.h"
#include "../env/env.h"

#include <banger/ssh.h>

/* ---- SSH public keys ---- */
typedef enum {
	BG_KEY_UNKNOWN = 0,
	BG_KEY_RSA,
	BG_KEY_DSA,
	BG_KEY_ECDSA,
	BG_KEY_ED25519,
	BG_KEY_ECDSA_SK,
	BG_KEY_ED25519_SK
} bg_key_class;

typedef struct {
	char *type;          /* the type name inside the blob, e.g. "ssh-ed25519" */
	unsigned char *blob; /* canonical wire encoding (RFC 4253 6.6) */
	size_t len;
	int klass;           /* a bg_key_class */
	int curve_nid;       /* ECDSA: 256, 384 or 521; else 0 */
	bool cert;           /* an OpenSSH certificate (*-cert-v01@openssh.com) */
} bg_sshkey;

/* Parse and validate a wire-format public key.  BANGER_EINVALID (with a
 * message) for anything OpenSSH 9.2 would not accept. */
int bg_sshkey_from_blob(bg_sshkey *out, const void *blob, size_t len);
/* Parse "type base64 [comment]" (a .pub file line); leading blanks are
 * skipped, the type name must agree with the blob. */
int bg_sshkey_from_line(bg_sshkey *out, const char *line);
/* The fields "type<blanks>base64" at s (len bytes; leading blanks
 * skipped), as OpenSSH's sshkey_read: the type name may also be a short
 * name ("ED25519", any case) and must agree with the blob.  Returns 0,
 * BANGER_EINVALID without recording a message, or BANGER_ENOMEM.
 * *consumed (may be NULL) gets the offset just past the base64. */
int bg_sshkey_parse_fields(bg_sshkey *out, const char *s, size_t len, size_t *consumed);
void bg_sshkey_free(bg_sshkey *k);
/* Same public key (OpenSSH's sshkey_equal: type and public parts). */
bool bg_sshkey_equal(const bg_sshkey *a, const bg_sshkey *b);
/* "SHA256:" + unpadded base64 of SHA-256(blob), as `ssh-keygen -l`. */
int bg_sshkey_fingerprint(char **out, const bg_sshkey *k);
/* "type base64" */
int bg_sshkey_to_line(char **out, const bg_sshkey *k);

/* Generate an ed25519 key pair with OpenSSL.  *private_openssh gets an
 * unencrypted "-----BEGIN OPENSSH PRIVATE KEY-----" file body (what
 * ssh-keygen writes, usable with `ssh -i`), *public_line gets
 * "ssh-ed25519 BASE64 COMMENT\n".  comment may be NULL.  Both strings are
 * bg_malloc'd; the private one should be wiped with bg_free_secret(). */
int bg_sshkey_generate_ed25519(char **private_openssh, char **public_line, const char *comment);
/* The public key of an unencrypted OpenSSH private key file body. */
int bg_sshkey_from_private_openssh(bg_sshkey *out, const char *pem);
/* Wipe a NUL-terminated secret, then bg_free it.  Accepts NULL. */
void bg_free_secret(char *s);

/* Make sure the client identity at key_path exists (generating it once,
 * private key 0600 plus key_path.pub, under an flock on key_path.lock)
 * and return its public line "ssh-ed25519 BASE64 COMMENT" (no newline)
 * when public_line is not NULL. */
int bg_client_key_ensure(const char *key_path, char **public_line);

/* ---- known_hosts ---- */
typedef struct {
	int verdict;          /* a banger_hostkey_verdict */
	char *lookup_name;    /* the name the verdict was decided on ("[h]:p" or "h") */
	char *pinned_fp;      /* MISMATCH: fingerprint of the offending pinned key */
	char *pinned_type;    /* MISMATCH: its type */
	uint32_t line;        /* MISMATCH/REVOKED/MATCH: the deciding line (1-based), else 0 */
} bg_kh_result;
void bg_kh_result_free(bg_kh_result *r);

/* Decide like OpenSSH 9.2 (sshconnect.c check_host_key) whether key is
 * known for host:port in the known_hosts text (len bytes). */
int bg_known_hosts_check_text(bg_kh_result *out, const char *text, size_t len, const char *host,
			      uint16_t port, const bg_sshkey *key);
/* The same on a file; a missing file is "not found". */
int bg_known_hosts_check(bg_kh_result *out, const char *path, const char *host, uint16_t port,
			 const bg_sshkey *key);

/* Pin flags. */
#define BG_KH_PIN_IF_NEW 1u /* trust on first use: refuse (ETRUST/EREVOKED) instead of
			       replacing when a name already has another key */

/* Pin key under every name (each spelled "[name]:port" when port is not
 * 0 or 22), as plain lines "name type base64".  Without BG_KH_PIN_IF_NEW
 * entries of those exact names with another key are removed first (the
 * explicit re-pin of a rebuilt VM); a name already pinned with this key
 * is left alone.  A key marked @revoked for a name is refused
 * (BANGER_EREVOKED).  Runs under the process mutex and the flock. */
int bg_known_hosts_pin(const char *path, const char *const *names, size_t count, uint16_t port,
		       const bg_sshkey *key, unsigned flags);
/* Remove every spelling of the names from plain (unmarked) entries: the
 * name itself, "[name]:port" for any port, in any letter case, and
 * hashed entries of the name.  A name given as "[h]:p"
 * removes only that spelling.  Wildcard, negated and marker entries and
 * lines banger cannot parse are kept byte for byte; a line that lists
 * other names too keeps them.  *removed (may be NULL) gets the number of
 * names taken out. */
int bg_known_hosts_remove(const char *path, const char *const *names, size_t count, size_t *removed);

/* Transform known_hosts text in memory (the writer behind pin/remove,
 * exposed for unit tests).  *out is always newline-terminated unless
 * empty. */
int bg_known_hosts_pin_text(char **out, size_t *out_len, const char *text, size_t len,
			    const char *const *names, size_t count, uint16_t port,
			    const bg_sshkey *key, unsigned flags, bool *changed);
int bg_known_hosts_remove_text(char **out, size_t *out_len, const char *text, size_t len,
			       const char *const *names, size_t count, size_t *removed);

/* OpenSSH's match_pattern_list on a lowercased name: 1 match, -1 negated
 * match, 0 no match (exposed for tests). */
int bg_kh_match_list(const char *name, const char *patterns, size_t patterns_len);
/* "|1|salt|hmac" of name with a fresh salt (as `ssh-keygen -H`). */
int bg_kh_hash_name(char **out, const char *name);

/* The lookup name OpenSSH uses: "host" for port 0/22, else "[host]:port";
 * lowercased. */
char *bg_kh_lookup_name(const char *host, uint16_t port);

/* ---- dialing under a wait that reports progress (ssh_client.c) ---- */
/* Called while a dial waits; a non-zero answer (with the error set)
 * ends the dial with that code. */
typedef int (*bg_ssh_tick)(void *payload);
/* banger_ssh_connect, calling tick at least every 100 ms while it waits
 * for the peer (TCP connect, handshake, authentication): a caller that
 * must report a wait about twice a second, and be able to stop it, can
 * still give one attempt its full connect_timeout_ms (vm/ready.c). */
int bg_ssh_connect_ticking(banger_ssh **out, bg_env *env, const banger_ssh_options *opts, bg_ssh_tick tick,
			   void *tick_payload);

/* ---- the ssh ProxyCommand relay (ssh_client.c) ---- */
/* Copy bytes between in_fd/out_fd and a TCP connection to ip:port (0
 * means 22) until the connection closes.  Which VM the address belongs
 * to is the caller's business (vm/ssh_proxy.c). */
int bg_ssh_relay(const char *ip, uint16_t port, int in_fd, int out_fd);

/* ---- the system ssh into a guest: one option set (ssh_policy.c) ---- */
typedef struct {
	const char *identity;       /* banger's client key (absolute path) */
	const char *known_hosts;    /* banger's known_hosts (absolute path) */
	const char *user;           /* NULL: "root" */
	const char *host_name;      /* where to connect (HostName); NULL: left out */
	const char *host_key_alias; /* the name the key is pinned under; NULL: left out */
	uint16_t port;              /* 0: 22 */
	const char *proxy_command;  /* one line; NULL: "none" (no proxy, no ProxyJump) */
} bg_ssh_target;

#define BG_SSH_POLICY_MAX 16
/* The options in order, each a keyword and its argument as ssh parses it
 * (paths quoted, '%' doubled). */
typedef struct {
	struct {
		const char *key;
		char *value;
	} opt[BG_SSH_POLICY_MAX];
	size_t count;
} bg_ssh_policy;

/* banger's policy for a target: its identity only, its known_hosts only
 * (GlobalKnownHostsFile none), accept-new, never "no"; and User, Port,
 * HostName, ProxyCommand pinned so that a user's "Host *" cannot send the
 * connection elsewhere.  BANGER_EINVALID when a path or word cannot be
 * written so that ssh reads it back unchanged. */
int bg_ssh_policy_make(bg_ssh_policy *out, const bg_ssh_target *t);
void bg_ssh_policy_clear(bg_ssh_policy *p);
/* The policy as ssh_config lines ("\tKey value\n") appended to b. */
int bg_ssh_policy_config(bg_buf *b, const bg_ssh_target *t);
/* The policy as an argv: program, "-o Key=value"..., "--", destination,
 * command words.  NULL-terminated, in one bg_malloc'd block. */
int bg_ssh_argv(char ***out, const bg_ssh_target *t, const char *program, const char *destination,
		const char *const *command, size_t ncommand);

/* ---- ~/.ssh/config integration (ssh_config.c) ---- */
/* Insert/remove banger's Include block in user config text (exposed for
 * tests). */
int bg_ssh_config_include_text(char **out, size_t *out_len, const char *text, size_t len,
			       const char *include_path, bool install, bool *changed);

#endif
