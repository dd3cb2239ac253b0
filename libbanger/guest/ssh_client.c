/* The libssh2 client: dial with a deadline, verify the host key through
 * banger's known_hosts before authenticating, authenticate with banger's
 * ed25519 key, run commands, upload files.
 *
 * libssh2 runs non-blocking; every wait is a poll() bounded by a
 * CLOCK_MONOTONIC deadline.  Writes go through our own send callback
 * with MSG_NOSIGNAL, so a dead peer can never raise SIGPIPE in the host
 * program. */
#include "guest.h"
#include "../env/env.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libssh2.h>

#define DEFAULT_CONNECT_MS 10000u
#define DEFAULT_IO_MS 30000u
#define DEFAULT_EXEC_MS 300000u

struct banger_ssh {
	LIBSSH2_SESSION *session;
	int fd;
	bg_env *env;
	char *host;
	uint16_t port;
	char *fingerprint;
	uint32_t io_timeout_ms;
	bg_ssh_tick tick;      /* while dialing only (bg_ssh_connect_ticking) */
	void *tick_payload;
};

struct banger_ssh_result {
	banger_exit_status exit;
	bg_buf out, err;
};

/* ---- libssh2 plumbing ---- */

static void *ssh_alloc(size_t n, void **abstract)
{
	(void)abstract;
	return bg_malloc(n);
}

static void ssh_free(void *p, void **abstract)
{
	(void)abstract;
	bg_free(p);
}

static void *ssh_realloc(void *p, size_t n, void **abstract)
{
	(void)abstract;
	return bg_realloc(p, n);
}

/* libssh2's callbacks return -errno on failure. */
static ssize_t ssh_send(libssh2_socket_t fd, const void *buf, size_t len, int flags, void **abstract)
{
	(void)abstract;
	ssize_t n = send(fd, buf, len, flags | MSG_NOSIGNAL);
	return n < 0 ? -errno : n;
}

static ssize_t ssh_recv(libssh2_socket_t fd, void *buf, size_t len, int flags, void **abstract)
{
	(void)abstract;
	ssize_t n = recv(fd, buf, len, flags);
	return n < 0 ? -errno : n;
}

/* Record libssh2's last error as ours. */
static int ssh_fail(banger_ssh *s, int code, const char *what)
{
	char *msg = NULL;
	int len = 0;
	int lib = s && s->session ? libssh2_session_last_error(s->session, &msg, &len, 0) : 0;
	if (lib == LIBSSH2_ERROR_TIMEOUT || code == BANGER_ETIMEOUT)
		code = BANGER_ETIMEOUT;
	else if (lib == LIBSSH2_ERROR_SOCKET_DISCONNECT || lib == LIBSSH2_ERROR_SOCKET_RECV ||
		 lib == LIBSSH2_ERROR_SOCKET_SEND || lib == LIBSSH2_ERROR_BANNER_RECV ||
		 lib == LIBSSH2_ERROR_BANNER_SEND || lib == LIBSSH2_ERROR_KEX_FAILURE)
		code = BANGER_ENETWORK;
	else if (lib == LIBSSH2_ERROR_ALLOC)
		code = BANGER_ENOMEM;
	return bg_error_lib(code, "libssh2", lib, "%s %s:%u: %s", what, s && s->host ? s->host : "?",
			    s ? (unsigned)s->port : 0u, msg && len ? msg : "failed");
}

/* Wait until libssh2 can make progress, or the deadline passes. */
static int wait_socket(banger_ssh *s, int64_t deadline, int extra_fd, bool *extra_ready)
{
	int dir = libssh2_session_block_directions(s->session);
	struct pollfd p[2] = { { s->fd, POLLIN, 0 }, { extra_fd, POLLIN, 0 } };
	if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		p[0].events |= POLLOUT;
	for (;;) {
		int rc = s->tick ? s->tick(s->tick_payload) : 0;
		if (rc)
			return rc;
		int64_t left = deadline - bg_now_ms();
		if (left <= 0)
			return bg_error(BANGER_ETIMEOUT, "timed out waiting for %s:%u", s->host, (unsigned)s->port);
		/* Capped so that data libssh2 queued internally is never
		 * waited on for long. */
		int r = poll(p, extra_fd >= 0 ? 2 : 1, left > 100 ? 100 : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return bg_error_os(BANGER_EIO, errno, "poll");
		if (extra_ready)
			*extra_ready = extra_fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR));
		return 0;
	}
}

/* Repeat a non-blocking libssh2 call until it stops asking to wait.
 * lr gets libssh2's result; werr a banger code when the wait failed
 * (deadline passed), else 0.  The two code spaces overlap: check werr
 * first. */
#define SSH_RETRY(s, deadline, call, lr, werr)                                   \
	do {                                                                     \
		(werr) = 0;                                                      \
		while (((lr) = (call)) == LIBSSH2_ERROR_EAGAIN)                  \
			if (((werr) = wait_socket((s), (deadline), -1, NULL)))   \
				break;                                           \
	} while (0)

/* ---- dialing ---- */

/* tick (may be NULL) is called at least every 100 ms while connecting;
 * its non-zero answer ends the dial with that code. */
static int tcp_connect(int *out, const char *host, uint16_t port, int64_t deadline, bg_ssh_tick tick,
		       void *tick_payload)
{
	*out = -1;
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
	struct addrinfo hints = { 0 }, *res = NULL;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_NUMERICHOST;
	int g = getaddrinfo(host, portstr, &hints, &res);
	if (g == EAI_NONAME) {
		/* A name, not an address: the system resolver (no deadline of
		 * ours; guests are dialed by address). */
		hints.ai_flags = AI_NUMERICSERV;
		g = getaddrinfo(host, portstr, &hints, &res);
	}
	if (g != 0)
		return bg_error_lib(BANGER_ENETWORK, "getaddrinfo", g, "cannot resolve %s: %s", host, gai_strerror(g));
	int rc = bg_error(BANGER_ENETWORK, "no address for %s", host);
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0) {
			rc = bg_error_os(BANGER_EIO, errno, "socket");
			continue;
		}
		int err = 0;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			err = errno;
			if (err == EINPROGRESS) {
				struct pollfd p = { fd, POLLOUT, 0 };
				const int64_t slice = tick ? 100 : INT32_MAX;
				for (;;) {
					int64_t left = deadline - bg_now_ms();
					if (left <= 0) {
						err = ETIMEDOUT;
						break;
					}
					if (tick && (rc = tick(tick_payload))) {
						close(fd);
						freeaddrinfo(res);
						return rc;
					}
					int r = poll(&p, 1, (int)(left > slice ? slice : left));
					if (r < 0 && errno == EINTR)
						continue;
					if (r < 0) {
						err = errno;
						break;
					}
					if (r == 0)
						continue;
					socklen_t sl = sizeof(err);
					if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0)
						err = errno;
					break;
				}
			}
		}
		if (err == 0) {
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			*out = fd;
			rc = 0;
			break;
		}
		close(fd);
		if (err == ETIMEDOUT)
			rc = bg_error(BANGER_ETIMEOUT, "connect to %s port %u timed out", host, (unsigned)port);
		else
			rc = bg_error_os(BANGER_ENETWORK, err, "connect to %s port %u", host, (unsigned)port);
	}
	freeaddrinfo(res);
	return rc;
}

/* Host key algorithms, ed25519 first. */
static const char *const hostkey_prefs =
	"ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa";

/* Offer only what this libssh2 supports: 1.10 strips unsupported names
 * with an overlapping memcpy (and has no rsa-sha2-*). */
static int prefer_hostkeys(banger_ssh *s)
{
	const char **algs = NULL;
	int n = libssh2_session_supported_algs(s->session, LIBSSH2_METHOD_HOSTKEY, &algs);
	if (n <= 0)
		return ssh_fail(s, BANGER_ERROR, "no host key algorithms for");
	char pref[256] = "";
	const char *p = hostkey_prefs;
	while (*p) {
		size_t len = strcspn(p, ",");
		for (int i = 0; i < n; i++)
			if (strlen(algs[i]) == len && strncmp(algs[i], p, len) == 0 &&
			    strlen(pref) + len + 2 < sizeof(pref)) {
				if (*pref) /* NOLINTNEXTLINE(clang-analyzer-security.insecureAPI.strcpy): room checked above */
					strcat(pref, ",");
				strncat(pref, p, len);
			}
		p += len + (p[len] == ',');
	}
	libssh2_free(s->session, algs);
	if (!*pref || libssh2_session_method_pref(s->session, LIBSSH2_METHOD_HOSTKEY, pref) != 0)
		return ssh_fail(s, BANGER_ERROR, "host key preferences for");
	return 0;
}

static int verify_host_key(banger_ssh *s, const banger_ssh_options *o, const char *kh_path)
{
	size_t len = 0;
	int type = 0;
	const char *blob = libssh2_session_hostkey(s->session, &len, &type);
	if (!blob || len == 0)
		return ssh_fail(s, BANGER_ENETWORK, "no host key from");
	bg_sshkey key;
	int rc = bg_sshkey_from_blob(&key, blob, len);
	if (rc) {
		bg_error_prefix("host key of %s:%u", s->host, (unsigned)s->port);
		return rc;
	}
	if ((rc = bg_sshkey_fingerprint(&s->fingerprint, &key)))
		goto out;
	if (o->hostkey_policy == BANGER_SSH_INSECURE_ACCEPT_ANY) {
		bg_warn(s->env, "INSECURE: accepting the %s host key %s of %s:%u without verification", key.type,
			s->fingerprint, s->host, (unsigned)s->port);
		goto out;
	}
	bg_kh_result r;
	if ((rc = bg_known_hosts_check(&r, kh_path, s->host, s->port, &key)))
		goto out;
	switch (r.verdict) {
	case BANGER_HOSTKEY_MATCH:
		bg_debug(s->env, "host key of %s %s matches %s line %u", r.lookup_name, s->fingerprint, kh_path, r.line);
		break;
	case BANGER_HOSTKEY_MISMATCH:
		rc = bg_error(BANGER_ETRUST,
			      "possible MITM: the host key of %s has changed: %s pinned %s %s (line %u), the server "
			      "presented %s %s; refusing to connect. If the guest was rebuilt, forget the old key "
			      "with: banger known-hosts forget %s",
			      r.lookup_name, kh_path, r.pinned_type, r.pinned_fp, r.line, key.type, s->fingerprint,
			      r.lookup_name);
		break;
	case BANGER_HOSTKEY_REVOKED:
		rc = bg_error(BANGER_EREVOKED,
			      "possible MITM: the %s host key %s presented by %s is marked @revoked in %s (line %u); "
			      "refusing to connect",
			      key.type, s->fingerprint, r.lookup_name, kh_path, r.line);
		break;
	default:
		if (o->hostkey_policy == BANGER_SSH_HOSTKEY_PINNED) {
			rc = bg_error(BANGER_ETRUST,
				      "no host key is pinned for %s in %s and the policy requires one; the server "
				      "presented %s %s; refusing to connect",
				      r.lookup_name, kh_path, key.type, s->fingerprint);
			break;
		}
		/* OpenSSH calls a key revoked only under the bare name "not
		 * found" for a non-22 port (and accept-new would pin it);
		 * banger refuses to pin it. */
		if (s->port != 22) {
			bg_kh_result bare;
			if ((rc = bg_known_hosts_check(&bare, kh_path, s->host, 22, &key)))
				break;
			int bv = bare.verdict;
			bg_kh_result_free(&bare);
			if (bv == BANGER_HOSTKEY_REVOKED) {
				rc = bg_error(BANGER_EREVOKED,
					      "possible MITM: the %s host key %s presented by %s is marked @revoked "
					      "for %s in %s; refusing to pin it",
					      key.type, s->fingerprint, r.lookup_name, s->host, kh_path);
				break;
			}
		}
		/* Trust on first use, under the host and the extra names; the
		 * pin re-checks under the lock, so a concurrent pin with
		 * another key fails here instead of being overwritten. */
		if ((rc = bg_known_hosts_pin(kh_path, (const char *const[]){ s->host }, 1, s->port, &key,
					     BG_KH_PIN_IF_NEW)))
			break;
		if (o->pin_names_count &&
		    (rc = bg_known_hosts_pin(kh_path, o->pin_names, o->pin_names_count, 22, &key, BG_KH_PIN_IF_NEW)))
			break;
		bg_info(s->env, "pinned %s host key %s for %s in %s", key.type, s->fingerprint, r.lookup_name, kh_path);
	}
	bg_kh_result_free(&r);
out:
	bg_sshkey_free(&key);
	return rc;
}

BANGER_EXTERN(int) banger_ssh_options_init(banger_ssh_options *opts, unsigned int version)
{
	static const banger_ssh_options def = BANGER_SSH_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_ssh_options", version, BANGER_SSH_OPTIONS_VERSION,
			       BANGER_SSH_OPTIONS_VERSION);
}

/* Bytes of a version 1 banger_ssh_exec_options: everything before
 * max_output.  A program built against version 1 passes a struct this
 * long, so nothing past it may be read or written. */
#define EXEC_OPTIONS_V1_SIZE offsetof(banger_ssh_exec_options, max_output)

BANGER_EXTERN(int) banger_ssh_exec_options_init(banger_ssh_exec_options *opts, unsigned int version)
{
	static const banger_ssh_exec_options def = BANGER_SSH_EXEC_OPTIONS_INIT;
	return bg_options_init(opts, &def, version == 1 ? EXEC_OPTIONS_V1_SIZE : sizeof(def),
			       "banger_ssh_exec_options", version, 1, BANGER_SSH_EXEC_OPTIONS_VERSION);
}

BANGER_EXTERN(void) banger_ssh_close(banger_ssh *s)
{
	if (!s)
		return;
	if (s->session) {
		/* Best effort, briefly: the peer may be gone. */
		int64_t deadline = bg_now_ms() + 1000;
		bg_error_saved saved;
		bg_error_save(&saved);
		while (libssh2_session_disconnect(s->session, "bye") == LIBSSH2_ERROR_EAGAIN &&
		       wait_socket(s, deadline, -1, NULL) == 0)
			;
		/* In non-blocking mode libssh2_session_free frees nothing and
		 * answers EAGAIN while one of its channels still waits for the
		 * peer's CLOSE (a command cut off by its deadline, a peer that
		 * stopped answering): the session, its channels and its crypto
		 * state leaked.  Once the socket is shut down every read and
		 * write fails at once, so libssh2 drops those channels without
		 * waiting and the free goes through; the bound only keeps a
		 * libssh2 that behaved otherwise from spinning here. */
		if (s->fd >= 0)
			shutdown(s->fd, SHUT_RDWR);
		for (int i = 0; i < 100 && libssh2_session_free(s->session) == LIBSSH2_ERROR_EAGAIN; i++)
			;
		bg_error_restore(&saved);
	}
	if (s->fd >= 0)
		close(s->fd);
	bg_free(s->host);
	bg_free(s->fingerprint);
	bg_free(s);
}

static int check_options(const banger_ssh_options *o, bg_env *env)
{
	int rc = BG_OPTIONS_CHECK(o, NULL, banger_ssh_options, BANGER_SSH_OPTIONS_VERSION,
				  BANGER_SSH_OPTIONS_VERSION);
	if (rc)
		return rc;
	if (!o->host || !*o->host)
		return bg_error(BANGER_EINVALID, "SSH options: host is required");
	if (o->hostkey_policy != BANGER_SSH_HOSTKEY_TOFU && o->hostkey_policy != BANGER_SSH_HOSTKEY_PINNED &&
	    o->hostkey_policy != BANGER_SSH_INSECURE_ACCEPT_ANY)
		return bg_error(BANGER_EINVALID, "SSH options: unknown host-key policy %d", o->hostkey_policy);
	if (o->hostkey_policy != BANGER_SSH_INSECURE_ACCEPT_ANY && !o->known_hosts_path && !env)
		return bg_error(BANGER_EINVALID,
				"SSH options: no known_hosts path and no context to take it from; refusing to "
				"connect without host-key verification");
	if (!o->identity_path && !env)
		return bg_error(BANGER_EINVALID, "SSH options: no identity and no context to take banger's key from");
	if (o->pin_names_count && !o->pin_names)
		return bg_error(BANGER_EINVALID, "SSH options: pin_names is NULL");
	return 0;
}

static int dial(banger_ssh **out, bg_env *env, const banger_ssh_options *o, bg_ssh_tick tick,
		void *tick_payload)
{
	if (!out)
		return bg_error(BANGER_EINVALID, "out must not be NULL");
	*out = NULL;
	int rc = check_options(o, env);
	if (rc || (rc = bg_global_init()))
		return rc;
	const char *kh_path = o->known_hosts_path ? o->known_hosts_path : env ? env->layout.known_hosts : NULL;
	const char *identity = o->identity_path ? o->identity_path : env->layout.client_key;
	if (!o->identity_path && (rc = bg_client_key_ensure(identity, NULL)))
		return rc;
	const char *user = o->user ? o->user : "root";
	int64_t deadline = bg_now_ms() + (o->connect_timeout_ms ? o->connect_timeout_ms : DEFAULT_CONNECT_MS);

	banger_ssh *s = bg_calloc(1, sizeof(*s));
	if (!s)
		return bg_error_oom();
	s->fd = -1;
	s->env = env;
	s->tick = tick;
	s->tick_payload = tick_payload;
	s->port = o->port ? o->port : 22;
	s->io_timeout_ms = o->io_timeout_ms ? o->io_timeout_ms : DEFAULT_IO_MS;
	if (!(s->host = bg_strdup(o->host))) {
		rc = bg_error_oom();
		goto fail;
	}
	if ((rc = tcp_connect(&s->fd, s->host, s->port, deadline, tick, tick_payload)))
		goto fail;
	s->session = libssh2_session_init_ex(ssh_alloc, ssh_free, ssh_realloc, s);
	if (!s->session) {
		rc = bg_error(BANGER_ENOMEM, "cannot create an SSH session");
		goto fail;
	}
	libssh2_session_callback_set(s->session, LIBSSH2_CALLBACK_SEND, (void *)ssh_send);
	libssh2_session_callback_set(s->session, LIBSSH2_CALLBACK_RECV, (void *)ssh_recv);
	libssh2_session_set_blocking(s->session, 0);
	if ((rc = prefer_hostkeys(s)))
		goto fail;
	int lr, werr;
	SSH_RETRY(s, deadline, libssh2_session_handshake(s->session, s->fd), lr, werr);
	if (werr || lr) {
		if (werr == BANGER_ETIMEOUT)
			rc = bg_error(BANGER_ETIMEOUT, "SSH handshake with %s:%u timed out", s->host, (unsigned)s->port);
		else
			rc = werr ? werr : ssh_fail(s, BANGER_ENETWORK, "SSH handshake with");
		goto fail;
	}
	/* The host key is verified before anything is sent in our name. */
	if ((rc = verify_host_key(s, o, kh_path)))
		goto fail;
	SSH_RETRY(s, deadline,
		  libssh2_userauth_publickey_fromfile_ex(s->session, user, (unsigned)strlen(user), NULL, identity, NULL),
		  lr, werr);
	if (werr || lr) {
		if (werr == BANGER_ETIMEOUT)
			rc = bg_error(BANGER_ETIMEOUT, "SSH authentication to %s:%u timed out", s->host, (unsigned)s->port);
		else if (werr)
			rc = werr;
		else if (lr == LIBSSH2_ERROR_AUTHENTICATION_FAILED || lr == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED)
			rc = bg_error_lib(BANGER_EPERM, "libssh2", lr,
					  "%s:%u refused the key %s for user %s", s->host, (unsigned)s->port, identity, user);
		else if (lr == LIBSSH2_ERROR_FILE || lr == LIBSSH2_ERROR_PUBLICKEY_UNRECOGNIZED)
			rc = ssh_fail(s, BANGER_EINVALID, "cannot use the identity for");
		else
			rc = ssh_fail(s, BANGER_ENETWORK, "SSH authentication to");
		goto fail;
	}
	bg_debug(env, "ssh: connected to %s@%s:%u (%s)", user, s->host, (unsigned)s->port, s->fingerprint);
	s->tick = NULL;
	*out = s;
	return 0;
fail:
	{
		bg_error_saved saved;
		bg_error_save(&saved);
		s->tick = NULL; /* closing is not part of the wait */
		banger_ssh_close(s);
		bg_error_restore(&saved);
	}
	return rc;
}

BANGER_EXTERN(int) banger_ssh_connect(banger_ssh **out, banger_ctx *ctx, const banger_ssh_options *o)
{
	return dial(out, bg_env_of(ctx), o, NULL, NULL);
}

int bg_ssh_connect_ticking(banger_ssh **out, bg_env *env, const banger_ssh_options *o, bg_ssh_tick tick,
			   void *tick_payload)
{
	return dial(out, env, o, tick, tick_payload);
}

static bool retryable(int rc)
{
	return rc == BANGER_ENETWORK || rc == BANGER_ETIMEOUT;
}

BANGER_EXTERN(int) banger_ssh_wait(banger_ssh **out, banger_ctx *ctx, const banger_ssh_options *opts,
				   uint32_t timeout_ms)
{
	bg_env *env = bg_env_of(ctx);
	if (!out)
		return bg_error(BANGER_EINVALID, "out must not be NULL");
	*out = NULL;
	int rc = check_options(opts, env);
	if (rc)
		return rc;
	int64_t start = bg_now_ms(), deadline = start + timeout_ms;
	int delay = 50, attempts = 0;
	for (;;) {
		banger_ssh_options o = *opts;
		int64_t left = deadline - bg_now_ms();
		uint32_t per = o.connect_timeout_ms ? o.connect_timeout_ms : DEFAULT_CONNECT_MS;
		if (left < 1)
			left = 1;
		if ((int64_t)per > left)
			per = (uint32_t)left;
		o.connect_timeout_ms = per;
		attempts++;
		rc = banger_ssh_connect(out, ctx, &o);
		if (rc == 0) {
			bg_debug(env, "ssh: %s:%u up after %d attempt(s), %lld ms", opts->host,
				 (unsigned)(opts->port ? opts->port : 22), attempts, (long long)(bg_now_ms() - start));
			return 0;
		}
		/* A host-key verdict, a refused key or bad options: at once. */
		if (!retryable(rc))
			return rc;
		int64_t now = bg_now_ms();
		if (now >= deadline) {
			const banger_error *e = banger_error_last();
			char last[512];
			snprintf(last, sizeof(last), "%s", e ? e->message : "?");
			return bg_error(BANGER_ETIMEOUT, "%s:%u not reachable over SSH after %d attempts in %u ms: %s",
					opts->host, (unsigned)(opts->port ? opts->port : 22), attempts, timeout_ms, last);
		}
		bg_debug(env, "ssh: %s not ready (%s), retrying", opts->host,
			 banger_error_last() ? banger_error_last()->message : "?");
		int sleep_ms = delay;
		if (now + sleep_ms > deadline)
			sleep_ms = (int)(deadline - now);
		bg_sleep_ms(sleep_ms);
		if (delay < 1000)
			delay *= 2;
	}
}

BANGER_EXTERN(const char *) banger_ssh_host_fingerprint(const banger_ssh *s)
{
	return s ? s->fingerprint : NULL;
}

/* ---- exec ---- */

BANGER_EXTERN(void) banger_ssh_result_free(banger_ssh_result *r)
{
	if (!r)
		return;
	bg_buf_free(&r->out);
	bg_buf_free(&r->err);
	bg_free(r);
}

BANGER_EXTERN(int32_t) banger_ssh_result_exit_code(const banger_ssh_result *r)
{
	return r ? r->exit.code : -1;
}

BANGER_EXTERN(int32_t) banger_ssh_result_exit_signal(const banger_ssh_result *r)
{
	return r ? r->exit.signal : 0;
}

/* An exit-signal name as SSH servers send it ("KILL", no "SIG") as a
 * number.  Guests are Linux on this host's architecture, so this host's
 * numbering is theirs.  -1 for a name not in the list (OpenSSH sends
 * "SIG@openssh.com" for signals RFC 4254 does not name). */
static int32_t signal_number(const char *name, size_t len)
{
	static const struct {
		const char *name;
		int number;
	} known[] = {
		{ "ABRT", SIGABRT }, { "ALRM", SIGALRM }, { "BUS", SIGBUS }, { "CHLD", SIGCHLD },
		{ "CONT", SIGCONT }, { "FPE", SIGFPE }, { "HUP", SIGHUP }, { "ILL", SIGILL },
		{ "INT", SIGINT }, { "IO", SIGIO }, { "KILL", SIGKILL }, { "PIPE", SIGPIPE },
		{ "PROF", SIGPROF }, { "PWR", SIGPWR }, { "QUIT", SIGQUIT }, { "SEGV", SIGSEGV },
		{ "STOP", SIGSTOP }, { "SYS", SIGSYS }, { "TERM", SIGTERM }, { "TRAP", SIGTRAP },
		{ "TSTP", SIGTSTP }, { "TTIN", SIGTTIN }, { "TTOU", SIGTTOU }, { "URG", SIGURG },
		{ "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "VTALRM", SIGVTALRM }, { "WINCH", SIGWINCH },
		{ "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
	};
	for (size_t i = 0; i < BG_ARRAY_SIZE(known); i++)
		if (strlen(known[i].name) == len && memcmp(known[i].name, name, len) == 0)
			return known[i].number;
	return -1;
}

BANGER_EXTERN(const char *) banger_ssh_result_stdout(const banger_ssh_result *r, size_t *len)
{
	if (len)
		*len = r ? r->out.len : 0;
	return r ? (r->out.data ? r->out.data : "") : NULL;
}

BANGER_EXTERN(const char *) banger_ssh_result_stderr(const banger_ssh_result *r, size_t *len)
{
	if (len)
		*len = r ? r->err.len : 0;
	return r ? (r->err.data ? r->err.data : "") : NULL;
}

static LIBSSH2_CHANNEL *open_channel(banger_ssh *s, int64_t deadline, int *rc)
{
	LIBSSH2_CHANNEL *ch;
	*rc = 0;
	while (!(ch = libssh2_channel_open_session(s->session))) {
		if (libssh2_session_last_errno(s->session) != LIBSSH2_ERROR_EAGAIN) {
			*rc = ssh_fail(s, BANGER_ENETWORK, "cannot open a session channel on");
			return NULL;
		}
		if ((*rc = wait_socket(s, deadline, -1, NULL)))
			return NULL;
	}
	return ch;
}

static void close_channel(banger_ssh *s, LIBSSH2_CHANNEL *ch, int64_t deadline)
{
	int lr, werr;
	SSH_RETRY(s, deadline, libssh2_channel_close(ch), lr, werr);
	if (lr == 0 && werr == 0)
		SSH_RETRY(s, deadline, libssh2_channel_wait_closed(ch), lr, werr);
	libssh2_channel_free(ch);
}

/* libssh2 1.12 and later say whether an exit-status came.  Older ones
 * (Debian 12 has 1.10) read 0 for none, which cannot be told from a
 * command that exited 0; they lack the function, and this weak reference
 * is then NULL. */
extern int libssh2_channel_has_exit_status(LIBSSH2_CHANNEL *channel) __attribute__((weak));

/* How the command ended, from what the server sent before it closed the
 * channel, as banger_exit_status (common.h) says: an exit-signal, an
 * exit-status, or neither (the server closed the channel without saying:
 * not ended, as far as anyone knows). */
static void read_exit(banger_ssh *s, LIBSSH2_CHANNEL *ch, banger_exit_status *status)
{
	char *sig = NULL;
	size_t siglen = 0;
	int src = libssh2_channel_get_exit_signal(ch, &sig, &siglen, NULL, NULL, NULL, NULL);
	status->code = -1;
	status->signal = 0;
	if (src != 0) {
		/* A signal was named, but libssh2 could not copy its name (no
		 * memory): killed, by a signal not known here. */
		status->signal = -1;
	} else if (sig) {
		status->signal = signal_number(sig, siglen);
		libssh2_free(s->session, sig);
	} else if (!libssh2_channel_has_exit_status || libssh2_channel_has_exit_status(ch)) {
		status->code = libssh2_channel_get_exit_status(ch);
	}
}

/* Close the channel of a finished command and read how it ended; the
 * channel is freed in every case. */
static int collect_exit(banger_ssh *s, LIBSSH2_CHANNEL *ch, int64_t deadline, banger_exit_status *status)
{
	int lr, werr, rc = 0;
	SSH_RETRY(s, deadline, libssh2_channel_close(ch), lr, werr);
	if (lr == 0 && werr == 0)
		SSH_RETRY(s, deadline, libssh2_channel_wait_closed(ch), lr, werr);
	if (werr || lr)
		rc = werr ? werr : ssh_fail(s, BANGER_ENETWORK, "closing the command channel on");
	else
		read_exit(s, ch, status);
	libssh2_channel_free(ch);
	return rc;
}

/* One command's channel while it runs: stdin going out (from a buffer or
 * a descriptor), stdout and stderr coming in (to the callback or
 * collected). */
typedef struct {
	banger_ssh *s;
	LIBSSH2_CHANNEL *ch;
	const banger_ssh_exec_options *o;
	banger_ssh_result *r;
	uint64_t max_output; /* collected output never grows past this */
	int64_t deadline;
	const char *in;      /* stdin not sent yet */
	size_t in_left;
	int in_fd;           /* read when in_left is 0; -1: none */
	bool in_eof, eof_sent;
	char inbuf[32768];
	char buf[32768];
} exec_pump;

/* Refill stdin from the descriptor when it has something, without
 * waiting. */
static int read_stdin(exec_pump *p, bool *progress)
{
	struct pollfd pfd = { p->in_fd, POLLIN, 0 };
	if (poll(&pfd, 1, 0) <= 0)
		return 0;
	ssize_t n = read(p->in_fd, p->inbuf, sizeof(p->inbuf));
	if (n > 0) {
		p->in = p->inbuf;
		p->in_left = (size_t)n;
		*progress = true;
	} else if (n == 0) {
		p->in_eof = true;
	} else if (errno != EINTR && errno != EAGAIN) {
		return bg_error_os(BANGER_EIO, errno, "read stdin for the remote command");
	}
	return 0;
}

/* Send what stdin has, and its end once it has no more. */
static int pump_stdin(exec_pump *p, bool *progress)
{
	int rc;
	if (p->eof_sent)
		return 0;
	if (p->in_left == 0 && !p->in_eof && (rc = read_stdin(p, progress)))
		return rc;
	if (p->in_left > 0) {
		ssize_t n = libssh2_channel_write_ex(p->ch, 0, p->in, p->in_left);
		if (n > 0) {
			p->in += n;
			p->in_left -= (size_t)n;
			*progress = true;
		} else if (n != LIBSSH2_ERROR_EAGAIN && n < 0) {
			/* The command stopped reading (exited): drop stdin. */
			p->in_left = 0;
			p->in_eof = true;
		}
	}
	if (p->in_left == 0 && p->in_eof && libssh2_channel_send_eof(p->ch) != LIBSSH2_ERROR_EAGAIN) {
		p->eof_sent = true;
		*progress = true;
	}
	return 0;
}

/* A piece of stream 0 (stdout) or 1 (stderr) to the callback, or kept in
 * the result while it stays under the bound. */
static int take_output(exec_pump *p, int stream, size_t n)
{
	banger_ssh_result *r = p->r;
	if (p->o->output_cb)
		return p->o->output_cb(stream + 1, p->buf, n, p->o->output_payload);
	if ((uint64_t)n > p->max_output - (r->out.len + r->err.len))
		/* Stop the command rather than keep what the guest chose to
		 * send without limit. */
		return bg_error(BANGER_EIO, "guest output exceeded %llu bytes (command on %s)",
				(unsigned long long)p->max_output, p->s->host);
	return bg_buf_put(stream ? &r->err : &r->out, p->buf, n) ? bg_error_oom() : 0;
}

/* Read what stdout and stderr have. */
static int pump_output(exec_pump *p, bool *progress)
{
	for (int stream = 0; stream < 2; stream++) {
		for (;;) {
			ssize_t n = libssh2_channel_read_ex(p->ch, stream, p->buf, sizeof(p->buf));
			if (n == LIBSSH2_ERROR_EAGAIN || n == 0)
				break;
			if (n < 0)
				return ssh_fail(p->s, BANGER_ENETWORK, "reading command output from");
			*progress = true;
			int rc = take_output(p, stream, (size_t)n);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* Move bytes both ways until the command's output has ended. */
static int pump(exec_pump *p)
{
	int rc;
	for (;;) {
		bool progress = false;
		if ((rc = pump_stdin(p, &progress)) || (rc = pump_output(p, &progress)))
			return rc;
		if (libssh2_channel_eof(p->ch))
			return 0;
		if (progress)
			continue;
		/* stdin's descriptor is watched only while it is read */
		bool reading = !p->eof_sent && p->in_left == 0 && !p->in_eof;
		bool ready = false;
		if ((rc = wait_socket(p->s, p->deadline, reading ? p->in_fd : -1, &ready))) {
			bg_error_prefix("command on %s", p->s->host);
			return rc;
		}
	}
}

/* Start command on a new channel and run it to its end. */
static int run_command(exec_pump *p, const char *command)
{
	banger_ssh *s = p->s;
	int rc, lr, werr;
	if (!(p->ch = open_channel(s, p->deadline, &rc)))
		return rc;
	SSH_RETRY(s, p->deadline,
		  libssh2_channel_process_startup(p->ch, "exec", 4, command, (unsigned)strlen(command)), lr, werr);
	if (werr || lr)
		rc = werr ? werr : ssh_fail(s, BANGER_ENETWORK, "cannot start a command on");
	else
		rc = pump(p);
	if (rc == 0)
		return collect_exit(s, p->ch, p->deadline, &p->r->exit);
	/* Shortly: the command failed or was stopped, the peer may be gone. */
	bg_error_saved saved;
	bg_error_save(&saved);
	close_channel(s, p->ch, bg_now_ms() + 2000);
	bg_error_restore(&saved);
	return rc;
}

BANGER_EXTERN(int) banger_ssh_exec(banger_ssh_result **out, banger_ssh *s, const char *command,
				   const banger_ssh_exec_options *opts)
{
	banger_ssh_exec_options o = BANGER_SSH_EXEC_OPTIONS_INIT;
	if (!out)
		return bg_error(BANGER_EINVALID, "out must not be NULL");
	*out = NULL;
	if (!s || !command)
		return bg_error(BANGER_EINVALID, "a connection and a command are required");
	int rc = BG_OPTIONS_CHECK(opts, &o, banger_ssh_exec_options, 1, BANGER_SSH_EXEC_OPTIONS_VERSION);
	if (rc)
		return rc;
	/* a version 1 struct ends before max_output, which keeps the default */
	if (opts != &o)
		memcpy(&o, opts, opts->version == 1 ? EXEC_OPTIONS_V1_SIZE : sizeof(o));
	banger_ssh_result *r = bg_calloc(1, sizeof(*r));
	if (!r)
		return bg_error_oom();
	r->exit = (banger_exit_status){ -1, 0 };
	const int in_fd = o.stdin_data ? -1 : o.stdin_fd;
	exec_pump p = {
		.s = s,
		.o = &o,
		.r = r,
		.max_output = o.max_output ? o.max_output : BANGER_SSH_EXEC_DEFAULT_MAX_OUTPUT,
		.deadline = bg_now_ms() + (o.timeout_ms ? o.timeout_ms : DEFAULT_EXEC_MS),
		.in = o.stdin_data,
		.in_left = o.stdin_data ? o.stdin_len : 0,
		.in_fd = in_fd,
		.in_eof = in_fd < 0,
	};
	if ((rc = run_command(&p, command))) {
		banger_ssh_result_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

BANGER_EXTERN(int) banger_ssh_upload_options_init(banger_ssh_upload_options *opts, unsigned int version)
{
	static const banger_ssh_upload_options def = BANGER_SSH_UPLOAD_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_ssh_upload_options", version,
			       BANGER_SSH_UPLOAD_OPTIONS_VERSION, BANGER_SSH_UPLOAD_OPTIONS_VERSION);
}

BANGER_EXTERN(int) banger_ssh_upload(banger_ssh *s, const char *local_path, const char *remote_path,
				     const banger_ssh_upload_options *opts)
{
	banger_ssh_upload_options def = BANGER_SSH_UPLOAD_OPTIONS_INIT;
	if (!s || !local_path || !remote_path || !*remote_path)
		return bg_error(BANGER_EINVALID, "a connection, a local and a remote path are required");
	int rc = BG_OPTIONS_CHECK(opts, &def, banger_ssh_upload_options, BANGER_SSH_UPLOAD_OPTIONS_VERSION,
				  BANGER_SSH_UPLOAD_OPTIONS_VERSION);
	if (rc)
		return rc;
	const uint32_t mode = opts->mode;
	if (mode > 07777)
		return bg_error(BANGER_EINVALID, "invalid file mode %o", (unsigned)mode);
	int fd = open(local_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bg_error_os(bg_code_from_errno(errno), errno, "open %s", local_path);
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return bg_error(BANGER_EINVALID, "%s is not a regular file", local_path);
	}
	char *q = bg_shell_quote(remote_path);
	char *cmd = q ? bg_sprintf("t=%s.banger-upload.$$; umask 077; "
				   "if cat > \"$t\" && chmod %o \"$t\" && mv -f \"$t\" %s; then exit 0; fi; "
				   "rm -f \"$t\"; exit 1",
				   q, (unsigned)mode, q)
		      : NULL;
	bg_free(q);
	if (!cmd) {
		close(fd);
		return bg_error_oom();
	}
	banger_ssh_exec_options o = BANGER_SSH_EXEC_OPTIONS_INIT;
	o.stdin_fd = fd;
	o.timeout_ms = opts->timeout_ms;
	banger_ssh_result *r = NULL;
	rc = banger_ssh_exec(&r, s, cmd, &o);
	close(fd);
	bg_free(cmd);
	if (rc == 0 && banger_ssh_result_exit_code(r) != 0) {
		const char *err = banger_ssh_result_stderr(r, NULL);
		rc = bg_error(BANGER_EIO, "upload of %s to %s:%s failed (exit %d)%s%.*s", local_path, s->host,
			      remote_path, (int)banger_ssh_result_exit_code(r), *err ? ": " : "",
			      (int)strcspn(err, "\n"), err);
	}
	banger_ssh_result_free(r);
	return rc;
}

/* ---- client key, paths ---- */

BANGER_EXTERN(const char *) banger_ssh_known_hosts_path(const banger_ctx *ctx)
{
	const bg_env *env = bg_env_of_const(ctx);
	return env ? env->layout.known_hosts : NULL;
}

BANGER_EXTERN(const char *) banger_ssh_client_key_path(const banger_ctx *ctx)
{
	const bg_env *env = bg_env_of_const(ctx);
	return env ? env->layout.client_key : NULL;
}

BANGER_EXTERN(int) banger_ssh_client_key(char **out, banger_ctx *ctx)
{
	bg_env *env = bg_env_of(ctx);
	if (!out || !env)
		return bg_error(BANGER_EINVALID, "invalid argument");
	return bg_client_key_ensure(env->layout.client_key, out);
}

/* ---- ProxyCommand relay ---- */

static int write_all_nosig(int fd, const char *p, size_t n, bool is_socket)
{
	while (n > 0) {
		ssize_t w = is_socket ? send(fd, p, n, MSG_NOSIGNAL) : write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pf = { fd, POLLOUT, 0 };
			poll(&pf, 1, 1000);
			continue;
		}
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int bg_ssh_relay(const char *ip, uint16_t port, int in_fd, int out_fd)
{
	int rc;
	int sock;
	if ((rc = tcp_connect(&sock, ip, port ? port : 22, bg_now_ms() + DEFAULT_CONNECT_MS, NULL, NULL)))
		return rc;
	/* Keep a closed reader of out_fd from killing us with SIGPIPE:
	 * block it on this thread and swallow a pending one. */
	sigset_t pipe_set, old;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	struct stat st;
	bool out_is_sock = fstat(out_fd, &st) == 0 && S_ISSOCK(st.st_mode);
	bool in_open = true, sock_open = true;
	char buf[65536];
	while (sock_open) {
		struct pollfd p[2] = { { sock, POLLIN, 0 }, { in_open ? in_fd : -1, POLLIN, 0 } };
		int r = poll(p, 2, -1); /* a relay: idles as long as ssh does */
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = bg_error_os(BANGER_EIO, errno, "poll");
			break;
		}
		if (p[1].revents) {
			ssize_t n = read(in_fd, buf, sizeof(buf));
			if (n > 0) {
				int w = write_all_nosig(sock, buf, (size_t)n, true);
				if (w) {
					rc = bg_error_os(BANGER_ENETWORK, -w, "send to %s", ip);
					break;
				}
			} else if (n == 0 || errno != EINTR) {
				in_open = false;
				shutdown(sock, SHUT_WR);
			}
		}
		if (p[0].revents) {
			ssize_t n = recv(sock, buf, sizeof(buf), 0);
			if (n > 0) {
				int w = write_all_nosig(out_fd, buf, (size_t)n, out_is_sock);
				if (w) {
					if (w == -EPIPE) {
						struct timespec zero = { 0, 0 };
						sigtimedwait(&pipe_set, NULL, &zero);
					}
					break; /* ssh went away */
				}
			} else if (n == 0 || errno != EINTR) {
				sock_open = false;
			}
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(sock);
	return rc;
}
