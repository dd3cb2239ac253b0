/*
 * libbanger — SSH into guests with verified host keys.
 *
 * banger keeps its own OpenSSH-compatible known_hosts file
 * (banger_ssh_known_hosts_path(): <state>/ssh/known_hosts) and never reads
 * or writes ~/.ssh/known_hosts.  Verdicts are those OpenSSH 9.2 reaches on
 * the same file: "[host]:port" first for a non-22 port, then the bare host
 * (where only an exact key match counts); any pinned plain key that differs
 * is a mismatch whatever its type; @revoked wins; @cert-authority lines
 * never vouch for a plain key; comma lists, wildcards, negation, hashed
 * names, CRLF and unparseable lines are handled as OpenSSH does.
 *
 * Functions taking a known_hosts path are thread-safe; writes hold a
 * process-wide mutex and an flock on "<path>.lock" and replace the file
 * atomically, so concurrent processes never lose a pin.
 */
#ifndef BANGER_SSH_H
#define BANGER_SSH_H

#include "common.h"
#include "context.h"

BANGER_BEGIN_DECL

/* ---- known_hosts ---- */

typedef enum {
	BANGER_HOSTKEY_MATCH = 0,     /* the key is pinned for this host */
	BANGER_HOSTKEY_MISMATCH = 1,  /* another key is pinned: possible MITM */
	BANGER_HOSTKEY_NOT_FOUND = 2, /* nothing pinned for this host */
	BANGER_HOSTKEY_REVOKED = 3    /* the key is marked @revoked */
} banger_hostkey_verdict;

/* Check a host key, given as its wire-format blob (what an SSH server
 * sends), against the known_hosts file at path.  port 0 means 22.  *out
 * gets a banger_hostkey_verdict.  A missing file gives NOT_FOUND.
 * Certificates are not verified: BANGER_EUNSUPPORTED. */
BANGER_EXTERN(int) banger_known_hosts_check(int *out, const char *path, const char *host,
					    uint16_t port, const void *key_blob, size_t key_len);

/* The same with the key as a public key line "type base64 [comment]"
 * (the contents of a .pub file). */
BANGER_EXTERN(int) banger_known_hosts_check_line(int *out, const char *path, const char *host,
						 uint16_t port, const char *pubkey_line);

/* Pin a key (a public key line "type base64 [comment]") under each of
 * names, as plain lines; each name is spelled "[name]:port" when port is
 * neither 0 nor 22 (a name written "[host]:port" is taken as is).  Existing entries of exactly these names that hold
 * another key are replaced; lines banger did not write are kept byte for
 * byte.  A key marked @revoked for one of the names is refused with
 * BANGER_EREVOKED.  The file is created (0600) when missing. */
BANGER_EXTERN(int) banger_known_hosts_pin(const char *path, const char *const *names,
					  size_t count, uint16_t port, const char *pubkey_line);

/* Forget names: remove every spelling of each (the name, "[name]:port"
 * for any port, any letter case, the hashed form of the name) from plain
 * entries.  A name given as "[host]:port" removes
 * only that spelling.  Wildcard, negated and @marker lines are never
 * dropped.  *out (may be NULL) gets how many names were removed. */
BANGER_EXTERN(int) banger_known_hosts_remove(uint32_t *out, const char *path,
					     const char *const *names, size_t count);

/* The entries of a known_hosts file (valid lines only, in file order). */
typedef struct banger_known_host banger_known_host;
typedef struct banger_known_hosts_list banger_known_hosts_list;

/* A missing file gives an empty list. */
BANGER_EXTERN(int) banger_known_hosts_list_load(banger_known_hosts_list **out, const char *path);
BANGER_EXTERN(size_t) banger_known_hosts_list_count(const banger_known_hosts_list *list);
/* Borrowed, valid until the list is freed; NULL past the end. */
BANGER_EXTERN(const banger_known_host *) banger_known_hosts_list_get(const banger_known_hosts_list *list,
								   size_t i);
BANGER_EXTERN(void) banger_known_hosts_list_free(banger_known_hosts_list *list);

/* The host field as written: a comma list of patterns, or "|1|salt|hmac". */
BANGER_EXTERN(const char *) banger_known_host_hosts(const banger_known_host *entry);
BANGER_EXTERN(const char *) banger_known_host_key_type(const banger_known_host *entry);
/* "SHA256:..." as `ssh-keygen -l` prints it. */
BANGER_EXTERN(const char *) banger_known_host_fingerprint(const banger_known_host *entry);
/* "" for a plain entry, "@revoked" or "@cert-authority". */
BANGER_EXTERN(const char *) banger_known_host_marker(const banger_known_host *entry);
/* 1 when the host field is hashed, else 0. */
BANGER_EXTERN(int) banger_known_host_hashed(const banger_known_host *entry);
/* 1-based line number in the file. */
BANGER_EXTERN(uint32_t) banger_known_host_line(const banger_known_host *entry);

/* ---- banger's own files: known_hosts and the client identity ---- */

/* Path of banger's known_hosts file (<state>/ssh/known_hosts), owned by
 * the context. */
BANGER_EXTERN(const char *) banger_ssh_known_hosts_path(const banger_ctx *ctx);

/* Path of banger's ed25519 client key (<state>/ssh/id_ed25519), owned by
 * the context. */
BANGER_EXTERN(const char *) banger_ssh_client_key_path(const banger_ctx *ctx);

/* Make sure banger's client key exists (generated once: OpenSSH private
 * key format, mode 0600, plus id_ed25519.pub) and give its public line
 * "ssh-ed25519 BASE64 COMMENT" (free with banger_free). */
BANGER_EXTERN(int) banger_ssh_client_key(char **out, banger_ctx *ctx);

/* ---- SSH client ---- */

typedef enum {
	/* Trust on first use against known_hosts_path: the first dial pins
	 * the key (under the host and pin_names), later dials need an exact
	 * match; a mismatch fails with BANGER_ETRUST ("possible MITM"). */
	BANGER_SSH_HOSTKEY_TOFU = 0,
	/* The key must already be pinned (e.g. generated and pinned before
	 * first boot): NOT_FOUND fails with BANGER_ETRUST too. */
	BANGER_SSH_HOSTKEY_PINNED = 1,
	/* INSECURE: accept any host key and pin nothing.  For tests and
	 * throwaway tools only; anyone on the path can impersonate the host.
	 * The banger CLI never uses it. */
	BANGER_SSH_INSECURE_ACCEPT_ANY = 2
} banger_ssh_hostkey_policy;

#define BANGER_SSH_OPTIONS_VERSION 1

typedef struct {
	unsigned int version;         /* BANGER_SSH_OPTIONS_VERSION */
	const char *host;             /* address to dial (IP or name); required */
	uint16_t port;                /* 0: 22 */
	const char *user;             /* NULL: "root" */
	int hostkey_policy;           /* a banger_ssh_hostkey_policy */
	const char *known_hosts_path; /* NULL: the context's; required without a context
					 unless the policy is INSECURE_ACCEPT_ANY */
	const char *const *pin_names; /* extra names to pin under on first use
					 (e.g. "box.vm"), with port 22; may be NULL */
	size_t pin_names_count;
	const char *identity_path;    /* OpenSSH private key; NULL: banger's client key
					 (created on first use; needs a context) */
	uint32_t connect_timeout_ms;  /* TCP connect + handshake + authentication; 0: 10000 */
	uint32_t io_timeout_ms;       /* longest wait for the peer in later calls; 0: 30000 */
} banger_ssh_options;

#define BANGER_SSH_OPTIONS_INIT { BANGER_SSH_OPTIONS_VERSION, NULL, 0, NULL, BANGER_SSH_HOSTKEY_TOFU, NULL, NULL, 0, NULL, 0, 0 }

BANGER_EXTERN(int) banger_ssh_options_init(banger_ssh_options *opts, unsigned int version);

/* An authenticated SSH connection. */
typedef struct banger_ssh banger_ssh;

/* Dial, verify the host key (before authenticating) and authenticate
 * with the identity.  ctx may be NULL when every path is given.  Errors:
 * BANGER_ENETWORK (refused, reset, unreachable), BANGER_ETIMEOUT,
 * BANGER_ETRUST (mismatch: the message names the host, both fingerprints
 * and `banger known-hosts forget HOST`), BANGER_EREVOKED, BANGER_EPERM
 * (authentication refused). */
BANGER_EXTERN(int) banger_ssh_connect(banger_ssh **out, banger_ctx *ctx, const banger_ssh_options *opts);

/* banger_ssh_connect, retried with backoff while the peer refuses or
 * resets the connection (a booting guest) until timeout_ms has passed;
 * host-key failures (BANGER_ETRUST, BANGER_EREVOKED) and authentication
 * refusals stop it at once. */
BANGER_EXTERN(int) banger_ssh_wait(banger_ssh **out, banger_ctx *ctx, const banger_ssh_options *opts,
				   uint32_t timeout_ms);

/* Disconnect and free.  Accepts NULL. */
BANGER_EXTERN(void) banger_ssh_close(banger_ssh *ssh);

/* SHA256 fingerprint of the server's host key ("SHA256:..."), owned by
 * the connection. */
BANGER_EXTERN(const char *) banger_ssh_host_fingerprint(const banger_ssh *ssh);

/* Output of a command: stream 1 is stdout, 2 is stderr.  A non-zero
 * return stops the command (the channel is closed) and is returned. */
typedef int (*banger_ssh_output_cb)(int stream, const char *data, size_t len, void *payload);

/* Version 2 added max_output; a version 1 struct (without it) is still
 * accepted and gets the default bound. */
#define BANGER_SSH_EXEC_OPTIONS_VERSION 2

/* The default bound on collected output (stdout and stderr together):
 * 16 MiB.  What a guest prints is the guest's to choose, so collecting it
 * has a limit; pass an output callback to stream more. */
#define BANGER_SSH_EXEC_DEFAULT_MAX_OUTPUT (16u * 1024u * 1024u)

typedef struct {
	unsigned int version;        /* BANGER_SSH_EXEC_OPTIONS_VERSION */
	const void *stdin_data;      /* sent to the command, then EOF; NULL: see stdin_fd */
	size_t stdin_len;
	int stdin_fd;                /* read until EOF when stdin_data is NULL; -1: none */
	banger_ssh_output_cb output_cb; /* NULL: output is collected into the result */
	void *output_payload;
	uint32_t timeout_ms;         /* the whole command; 0: 300000 */
	/* Since version 2.  Most bytes of stdout and stderr together that are
	 * collected (without output_cb); one more stops the command and the
	 * call fails with BANGER_EIO ("guest output exceeded N bytes"), having
	 * kept no more than N.  0: BANGER_SSH_EXEC_DEFAULT_MAX_OUTPUT;
	 * UINT64_MAX: no bound.  Ignored when output_cb is set. */
	uint64_t max_output;
} banger_ssh_exec_options;

#define BANGER_SSH_EXEC_OPTIONS_INIT { BANGER_SSH_EXEC_OPTIONS_VERSION, NULL, 0, -1, NULL, NULL, 0, 0 }

BANGER_EXTERN(int) banger_ssh_exec_options_init(banger_ssh_exec_options *opts, unsigned int version);

/* The outcome of a command. */
typedef struct banger_ssh_result banger_ssh_result;

/* Run command (through the remote user's shell).  A command that ran and
 * failed is not an error: read how it ended from the result.  opts may
 * be NULL (no stdin, output collected up to the default bound).  Errors:
 * those of the connection, BANGER_ETIMEOUT, BANGER_EIO when collected
 * output passed max_output (the command is stopped, no result). */
BANGER_EXTERN(int) banger_ssh_exec(banger_ssh_result **out, banger_ssh *ssh, const char *command,
				   const banger_ssh_exec_options *opts);
/* How the command ended, as banger_exit_status (common.h) says: its exit
 * code 0..255, or -1 when a signal ended it; the signal's number, or 0
 * (-1 when the server named a signal this library does not know).  A
 * server that closed the channel without saying (OpenSSH's ChannelTimeout
 * leaves the command running) gives -1 and 0, not ended; with a libssh2
 * older than 1.12 the library cannot tell that from exit 0. */
BANGER_EXTERN(int32_t) banger_ssh_result_exit_code(const banger_ssh_result *result);
BANGER_EXTERN(int32_t) banger_ssh_result_exit_signal(const banger_ssh_result *result);
/* Collected output (empty when an output callback was given); *len may
 * be NULL.  NUL-terminated; may contain NULs. */
BANGER_EXTERN(const char *) banger_ssh_result_stdout(const banger_ssh_result *result, size_t *len);
BANGER_EXTERN(const char *) banger_ssh_result_stderr(const banger_ssh_result *result, size_t *len);
BANGER_EXTERN(void) banger_ssh_result_free(banger_ssh_result *result);

#define BANGER_SSH_UPLOAD_OPTIONS_VERSION 1

typedef struct {
	unsigned int version; /* BANGER_SSH_UPLOAD_OPTIONS_VERSION */
	uint32_t mode;        /* the remote file's mode; default 0644 */
	uint32_t timeout_ms;  /* the whole upload; 0: 300000 */
} banger_ssh_upload_options;

#define BANGER_SSH_UPLOAD_OPTIONS_INIT { BANGER_SSH_UPLOAD_OPTIONS_VERSION, 0644, 0 }

BANGER_EXTERN(int) banger_ssh_upload_options_init(banger_ssh_upload_options *opts, unsigned int version);

/* Copy a local file to remote_path: it is written to a temporary name
 * beside it, given its mode and renamed, through the remote shell, so a
 * guest needs neither scp nor sftp.  opts may be NULL. */
BANGER_EXTERN(int) banger_ssh_upload(banger_ssh *ssh, const char *local_path, const char *remote_path,
				     const banger_ssh_upload_options *opts);

/* ---- plain ssh into guests ---- */

/* Relay in_fd/out_fd to port on the guest whose DNS name is host
 * ("NAME.vm" or the VM name): the ProxyCommand behind
 * `banger ssh-config install`.  Returns when both directions are closed. */
BANGER_EXTERN(int) banger_ssh_proxy(banger_ctx *ctx, const char *host, uint16_t port, int in_fd,
				    int out_fd);

/* The text of banger's ssh_config file (a "Host *.vm" block with the
 * options banger_vm_ssh_argv passes, using banger's known_hosts, identity
 * and `proxy_command`), and its path.  proxy_command is the command line
 * ssh runs to reach a guest, e.g. "/usr/bin/banger ssh-proxy %h %p"; NULL
 * gives "ProxyCommand none".  Refused (BANGER_EINVALID) when a path
 * cannot be written so that ssh reads it back unchanged. */
BANGER_EXTERN(int) banger_ssh_config_render(char **out, banger_ctx *ctx, const char *proxy_command);
BANGER_EXTERN(int) banger_ssh_config_path(char **out, banger_ctx *ctx);

/* Write banger's ssh_config file and put "Include <it>" first in the
 * user's config (user_config NULL: $HOME/.ssh/config), keeping every
 * other byte of it; atomic and idempotent.  *out (may be NULL) gets 1
 * when the user's file changed. */
BANGER_EXTERN(int) banger_ssh_config_install(int *out, banger_ctx *ctx, const char *user_config,
					     const char *proxy_command);
/* Remove the Include block again (banger's own file stays). */
BANGER_EXTERN(int) banger_ssh_config_uninstall(int *out, banger_ctx *ctx, const char *user_config);
/* *out: 1 when the user's config includes banger's file, else 0. */
BANGER_EXTERN(int) banger_ssh_config_installed(int *out, banger_ctx *ctx, const char *user_config);

BANGER_END_DECL

#endif
