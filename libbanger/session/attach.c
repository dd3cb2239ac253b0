/* Interactive attach.  `banger-session attach` in the guest relays the SSH
 * channel to the session's Unix socket unchanged, so the frames of
 * guest/include/banger-guest/session.h run end to end between this file
 * and the session's supervisor.
 *
 * banger_ssh_exec drives the channel and reads the command's stdin from
 * one descriptor; a small thread turns the caller's input (in_fd, detach
 * keys, resize notifications) into frames on a socketpair that is that
 * descriptor.  A detach (or in_fd's end) shuts the socketpair down: the
 * channel gets EOF, the relay in the guest closes its connection, the
 * supervisor forgets the attacher, and the command ends.  Nothing here
 * raises SIGPIPE: socket writes use MSG_NOSIGNAL. */
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

BANGER_EXTERN(int) banger_session_attach_options_init(banger_session_attach_options *opts, unsigned int version)
{
	static const banger_session_attach_options def = BANGER_SESSION_ATTACH_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_session_attach_options", version, BANGER_SESSION_ATTACH_OPTIONS_VERSION,
			       BANGER_SESSION_ATTACH_OPTIONS_VERSION);
}

typedef struct {
	const banger_session_attach_options *o;
	int tx;        /* our end of the socketpair: frames for the channel */
	int stop_rd;   /* readable: the thread ends */
	int end;       /* a banger_session_attach_end, or 0 */
	int err;       /* errno of a failed read of in_fd */
	size_t matched; /* bytes of the detach sequence seen so far */
} input_state;

static int send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_input(input_state *s, const char *data, size_t len)
{
	unsigned char hdr[SP_HEADER];
	while (len > 0) {
		uint32_t n = len > SP_MAX_PAYLOAD ? SP_MAX_PAYLOAD : (uint32_t)len;
		sp_header(hdr, SP_INPUT, n);
		int rc = send_all(s->tx, hdr, sizeof(hdr));
		if (!rc)
			rc = send_all(s->tx, data, n);
		if (rc)
			return rc;
		data += n;
		len -= n;
	}
	return 0;
}

static int send_size(input_state *s)
{
	const banger_session_attach_options *o = s->o;
	uint16_t rows = 0, cols = 0;
	if (!o->size_cb || o->size_cb(&rows, &cols, o->size_payload) != 0 || !rows || !cols)
		return 0;
	unsigned char f[16];
	return send_all(s->tx, f, sp_encode_winsize(f, rows, cols));
}

/* Pass input on, holding back what may be the start of the detach
 * sequence (the held bytes are always its first `matched` bytes).
 * Returns 1 when the sequence was completed (what follows it in buf is
 * dropped), -1 when the channel is gone. */
static int filter_input(input_state *s, const char *buf, size_t n)
{
	const banger_session_attach_options *o = s->o;
	const char *keys = o->detach_keys;
	size_t klen = keys ? o->detach_keys_len : 0;
	if (klen == 0)
		return send_input(s, buf, n) ? -1 : 0;
	size_t start = 0; /* pending bytes: buf[start..i) */
	for (size_t i = 0; i < n; i++) {
		if (s->matched > 0 && buf[i] != keys[s->matched]) {
			/* not the sequence after all: what was held goes out */
			size_t held = s->matched;
			s->matched = 0;
			if (send_input(s, keys, held))
				return -1;
		}
		if (buf[i] == keys[s->matched]) {
			if (s->matched == 0 && i > start && send_input(s, buf + start, i - start))
				return -1;
			start = i + 1;
			if (++s->matched == klen)
				return 1;
		}
	}
	if (start < n && send_input(s, buf + start, n - start))
		return -1;
	return 0;
}

static void *input_thread(void *arg)
{
	input_state *s = arg;
	const banger_session_attach_options *o = s->o;
	int in_fd = o->in_fd, resize_fd = o->resize_fd;
	char buf[16384];
	for (;;) {
		struct pollfd p[3] = { { s->stop_rd, POLLIN, 0 }, { in_fd, POLLIN, 0 }, { resize_fd, POLLIN, 0 } };
		int r = poll(p, 3, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || p[0].revents)
			break;
		if (p[2].revents) {
			char drain[256];
			ssize_t n = read(resize_fd, drain, sizeof(drain));
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				resize_fd = -1; /* nothing more will come from it */
			if (send_size(s))
				break;
		}
		if (p[1].revents) {
			ssize_t n = read(in_fd, buf, sizeof(buf));
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) {
				if (n < 0)
					s->err = errno;
				s->end = BANGER_SESSION_INPUT_CLOSED;
				break;
			}
			int f = filter_input(s, buf, (size_t)n);
			if (f < 0)
				break; /* the channel is gone */
			if (f > 0) {
				s->end = BANGER_SESSION_DETACHED;
				break;
			}
		}
	}
	/* EOF for the guest: the relay lets go of the session. */
	shutdown(s->tx, SHUT_WR);
	return NULL;
}

typedef struct {
	int out_fd;
	bg_buf in;        /* partial frames from the guest */
	bool ended;
	bool refused;
	char status[32];
	char refusal[256];
	int write_err;
	uint64_t next;    /* offset after the last byte written */
} output_state;

/* Write to the caller's descriptor.  A closed pipe must not kill the
 * host program: SIGPIPE is blocked on this thread for the write, and one
 * it raised is taken back. */
static int write_out(int fd, const unsigned char *p, size_t n)
{
	sigset_t pipe_set, old;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	int err = 0;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pf = { fd, POLLOUT, 0 };
			poll(&pf, 1, 1000);
			continue;
		}
		if (w < 0) {
			err = errno;
			break;
		}
		p += w;
		n -= (size_t)w;
	}
	if (err == EPIPE) {
		struct timespec zero = { 0, 0 };
		sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

static int on_output(int stream, const char *data, size_t len, void *payload)
{
	output_state *s = payload;
	if (stream == 2)
		return 0; /* the relay's own complaints: its exit status says enough */
	if (bg_buf_put(&s->in, data, len))
		return bg_error_oom();
	size_t pos = 0;
	int rc = 0;
	for (;;) {
		sp_frame f;
		size_t used;
		int r = sp_parse((const unsigned char *)s->in.data + pos, s->in.len - pos, &f, &used);
		if (r == 0)
			break;
		if (r < 0 || !sp_valid(&f)) {
			rc = bg_error(BANGER_EIO, "session attach: protocol error from the guest");
			break;
		}
		if (f.type == SP_OUTPUT) {
			uint64_t off = sp_get_u64(f.payload);
			int e = write_out(s->out_fd, f.payload + 8, f.len - 8);
			s->next = off + (f.len - 8);
			if (e) {
				s->write_err = e;
				rc = bg_error_os(BANGER_EIO, e, "session attach: write output");
				break;
			}
		} else if (f.type == SP_END) {
			snprintf(s->status, sizeof(s->status), "%.*s", (int)f.len, (const char *)f.payload);
			s->ended = true;
		} else if (f.type == SP_REFUSED) {
			snprintf(s->refusal, sizeof(s->refusal), "%.*s", (int)f.len, (const char *)f.payload);
			s->refused = true;
		}
		pos += used;
	}
	if (pos) {
		memmove(s->in.data, s->in.data + pos, s->in.len - pos);
		s->in.len -= pos;
	}
	return rc;
}

/* One attach: the session and where it lives, the connection, the
 * input thread with its socketpair (sp[1] its end, sp[0] the channel's
 * stdin) and stop pipe, and what the channel's output said. */
typedef struct {
	banger_ctx *ctx;
	bg_session_record r;
	bg_session_target t;
	bg_session_conn c;
	char *dir;
	int sp[2], stop[2];
	bool thread_started;
	pthread_t th;
	input_state in;
	output_state os;
	banger_ssh_result *res;
} attachment;

/* A session that still runs, on a target that is up, connected with its
 * helper in place: the helper must be there before the channel starts
 * eating input. */
static int reach_session(attachment *a)
{
	banger_ctx *ctx = a->ctx;
	bg_session_record *r = &a->r;
	int rc;
	if (bg_streq(r->state, BG_SESSION_EXITED) || bg_streq(r->state, BG_SESSION_LOST))
		return bg_error(BANGER_ESTATE, "session %s has %s", r->id,
				bg_streq(r->state, BG_SESSION_LOST) ? "been lost" : "ended");
	if ((rc = bg_session_target_for(&a->t, ctx, r)))
		return rc;
	if (a->t.is_vm && !a->t.alive) {
		bg_session_record_lost(ctx, r);
		return bg_error(BANGER_ESTATE, "session %s is lost: VM %s is not running", r->id, a->t.vm_name);
	}
	if (!(a->dir = bg_session_dir(&a->t, r->id)))
		return bg_error_oom();
	if ((rc = bg_session_connect(&a->c, ctx, &a->t)) || (rc = bg_session_ensure_helper(&a->c)))
		return rc;
	return 0;
}

/* The socketpair with the greeting and the first size queued, and the
 * input thread when there is input to turn into frames. */
static int start_input(attachment *a, const banger_session_attach_options *opts)
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a->sp) != 0 || pipe2(a->stop, O_CLOEXEC) != 0)
		return bg_error_os(BANGER_EIO, errno, "socketpair");
	a->in.tx = a->sp[1];
	a->in.stop_rd = a->stop[0];
	unsigned char hello[32];
	if (send_all(a->in.tx, hello, sp_encode_hello(hello, opts->replay_from < 0 ? -1 : opts->replay_from)) ||
	    send_size(&a->in))
		return bg_error_os(BANGER_EIO, errno, "session attach: queue the greeting");
	if (opts->in_fd >= 0 || opts->resize_fd >= 0) {
		int e = pthread_create(&a->th, NULL, input_thread, &a->in);
		if (e)
			return bg_error_os(BANGER_EIO, e, "session attach: start the input thread");
		a->thread_started = true;
	}
	return 0;
}

static void stop_input(attachment *a)
{
	if (!a->thread_started)
		return;
	if (write(a->stop[1], "x", 1) < 0)
		bg_debug(a->ctx, "session attach: wake the input thread: %s", strerror(errno));
	pthread_join(a->th, NULL);
	a->thread_started = false;
}

/* Run `banger-session attach` with the socketpair as its stdin until the
 * channel ends.  Without input the write end stays open: a watcher
 * leaves when the session ends. */
static int relay(attachment *a)
{
	const char *args[] = { "--dir", a->dir };
	banger_ssh_exec_options eo = BANGER_SSH_EXEC_OPTIONS_INIT;
	eo.stdin_fd = a->sp[0];
	eo.output_cb = on_output;
	eo.output_payload = &a->os;
	eo.timeout_ms = UINT32_MAX;
	int rc = bg_session_helper_exec(&a->res, &a->c, "attach", args, 2, &eo);
	/* Nobody reads the frames any more: a send blocked on a full
	 * socketpair fails now instead of holding the thread. */
	close(a->sp[0]);
	a->sp[0] = -1;
	stop_input(a);
	return rc;
}

/* What the channel's end means: the session ended, refused us, was
 * lost, or we detached (*out says how). */
static int outcome(attachment *a, int *out)
{
	banger_ctx *ctx = a->ctx;
	bg_session_record *r = &a->r;
	int rc = 0;
	int st = banger_ssh_result_exit_code(a->res);
	if (a->os.refused) {
		rc = bg_error(BANGER_ESTATE, "session %s refused the attach: %s", r->id, a->os.refusal);
	} else if (a->os.ended) {
		int32_t code, sig;
		if (bg_session_parse_status(a->os.status, &code, &sig))
			rc = bg_session_record_end(ctx, r, code, sig);
		if (out && !rc)
			*out = BANGER_SESSION_ENDED;
	} else if (st == BG_SH_ENDED) {
		/* it ended before we got in */
		bg_session_record rr;
		if (bg_session_get(&rr, ctx, r->id, BANGER_SESSION_REFRESH) == 0)
			bg_session_record_clear(&rr);
		rc = bg_error(BANGER_ESTATE, "session %s has ended", r->id);
	} else if (st == BG_SH_LOST || st == BG_SH_MISSING) {
		bg_session_record_lost(ctx, r);
		rc = bg_error(BANGER_ESTATE, "session %s is lost", r->id);
	} else if (st != 0) {
		rc = bg_session_helper_error(BANGER_ERROR, a->res, "attach to", r->id);
	} else if (a->in.end) {
		if (out)
			*out = a->in.end;
		if (a->in.err)
			bg_debug(ctx, "session attach: input ended: %s", strerror(a->in.err));
	} else {
		/* the relay ended without an end frame or our EOF: the
		 * supervisor dropped us */
		rc = bg_error(BANGER_EIO, "session %s: the guest closed the attach", r->id);
	}
	return rc;
}

static void attachment_close(attachment *a)
{
	stop_input(a);
	banger_ssh_result_free(a->res);
	bg_session_disconnect(&a->c);
	for (int i = 0; i < 2; i++) {
		if (a->sp[i] >= 0)
			close(a->sp[i]);
		if (a->stop[i] >= 0)
			close(a->stop[i]);
	}
	bg_buf_free(&a->os.in);
	bg_free(a->dir);
	bg_session_target_clear(&a->t);
	bg_session_record_clear(&a->r);
}

BANGER_EXTERN(int) banger_session_attach(int *out, banger_ctx *ctx, const char *id,
					 const banger_session_attach_options *opts)
{
	if (out)
		*out = 0;
	if (!ctx || !id)
		return bg_error(BANGER_EINVALID, "a context and a session are required");
	int rc = BG_OPTIONS_CHECK(opts, NULL, banger_session_attach_options, BANGER_SESSION_ATTACH_OPTIONS_VERSION,
				  BANGER_SESSION_ATTACH_OPTIONS_VERSION);
	if (rc)
		return rc;
	if (opts->out_fd < 0)
		return bg_error(BANGER_EINVALID, "attach needs an output descriptor");
	if (opts->detach_keys && opts->detach_keys_len == 0)
		return bg_error(BANGER_EINVALID, "empty detach sequence");
	attachment a;
	memset(&a, 0, sizeof(a));
	rc = bg_store_session_get(&ctx->env.store, &a.r, id);
	if (rc)
		return rc;
	a.ctx = ctx;
	a.sp[0] = a.sp[1] = a.stop[0] = a.stop[1] = -1;
	a.in = (input_state){ opts, -1, -1, 0, 0, 0 };
	a.os = (output_state){ opts->out_fd, BG_BUF_INIT, false, false, "", "", 0, 0 };
	if ((rc = reach_session(&a)) == 0 && (rc = start_input(&a, opts)) == 0 && (rc = relay(&a)) == 0)
		rc = outcome(&a, out);
	attachment_close(&a);
	return rc;
}
