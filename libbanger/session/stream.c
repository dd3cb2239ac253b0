/* Session output: `banger-session logs` in the guest copies the log from
 * a byte offset; the offset of every byte is its offset in that file.  The
 * host counts what it delivered, so after a dropped connection it asks
 * again from exactly the next byte: nothing is lost and nothing repeats. */
#include "session.h"

#include <stdio.h>
#include <string.h>

/* Give up following when reconnecting has failed for this long without a
 * byte getting through. */
#define RECONNECT_BUDGET_MS 60000

typedef struct {
	banger_session_output_cb cb;
	void *payload;
	uint64_t off;
	int cb_rc;
	bg_buf err;
} stream_state;

static int on_output(int stream, const char *data, size_t len, void *payload)
{
	stream_state *s = payload;
	if (stream == 2) {
		if (s->err.len < 4096)
			bg_buf_put(&s->err, data, len);
		return 0;
	}
	if (s->cb) {
		int rc = s->cb(data, len, s->off, s->payload);
		if (rc) {
			s->cb_rc = rc;
			return rc;
		}
	}
	s->off += len;
	return 0;
}

static bool retryable(int rc)
{
	return rc == BANGER_ENETWORK || rc == BANGER_ETIMEOUT;
}

/* A log stream being read: the session and where it lives, what was
 * delivered, and when a byte last got through (for reconnecting). */
typedef struct {
	banger_ctx *ctx;
	bg_session_record r;
	bg_session_target t;
	char *dir;
	stream_state s;
	bool follow;
	int64_t last_progress;
	int delay;
} log_stream;

/* The session's target, resolved again on every connection (a VM may
 * have stopped meanwhile), and the session's directory in it. */
static int locate(log_stream *ls)
{
	banger_ctx *ctx = ls->ctx;
	int rc;
	bg_session_target_clear(&ls->t);
	if ((rc = bg_session_target_for(&ls->t, ctx, &ls->r)))
		return rc;
	if (ls->t.is_vm && !ls->t.alive) {
		if (bg_streq(ls->r.state, BG_SESSION_RUNNING) || bg_streq(ls->r.state, BG_SESSION_STARTING))
			bg_session_record_lost(ctx, &ls->r);
		return bg_error(BANGER_ESTATE, "session %s: VM %s is not running (output up to offset %llu was delivered)",
				ls->r.id, ls->t.vm_name, (unsigned long long)ls->s.off);
	}
	bg_free(ls->dir);
	if (!(ls->dir = bg_session_dir(&ls->t, ls->r.id)))
		return bg_error_oom();
	return 0;
}

/* One connection running `banger-session logs` from the next byte. */
static int run_logs(log_stream *ls, banger_ssh_result **res)
{
	bool follow = ls->follow;
	char offs[24];
	snprintf(offs, sizeof(offs), "%llu", (unsigned long long)ls->s.off);
	const char *args[] = { "--dir", ls->dir, "--from", offs, "--follow" };
	banger_ssh_exec_options eo = BANGER_SSH_EXEC_OPTIONS_INIT;
	eo.output_cb = on_output;
	eo.output_payload = &ls->s;
	eo.timeout_ms = follow ? UINT32_MAX : 600000;
	ls->s.err.len = 0;
	uint64_t before = ls->s.off;
	bg_session_conn c;
	int rc = bg_session_connect(&c, ls->ctx, &ls->t);
	if (rc == 0)
		rc = bg_session_helper_exec(res, &c, "logs", args, follow ? 5 : 4, &eo);
	if (ls->s.off != before) {
		ls->last_progress = bg_now_ms();
		ls->delay = 100;
	}
	bg_session_disconnect(&c);
	return rc;
}

/* What the end of one connection means.  *done unless it is worth
 * connecting again: the stream broke rather than ended, was stopped by
 * the callback, or found the session ended, lost or refusing. */
static int judge(log_stream *ls, int rc, const banger_ssh_result *res, bool *done)
{
	banger_ctx *ctx = ls->ctx;
	bg_session_record *r = &ls->r;
	int st = res ? banger_ssh_result_exit_code(res) : -1;
	int32_t sig = res ? banger_ssh_result_exit_signal(res) : 0;
	*done = true;
	if (ls->s.cb_rc)
		return ls->s.cb_rc;
	if (rc == 0 && st == 0) {
		if (ls->follow && !bg_streq(r->state, BG_SESSION_EXITED)) {
			/* the guest only ends a follow at the session's end */
			bg_session_record rr;
			if (bg_session_get(&rr, ctx, r->id, BANGER_SESSION_REFRESH) == 0)
				bg_session_record_clear(&rr);
			banger_error_clear();
		}
		return 0;
	}
	if (rc == 0 && (st == BG_SH_LOST || st == BG_SH_MISSING)) {
		bg_session_record_lost(ctx, r);
		return bg_error(BANGER_ESTATE, "session %s is lost (output up to offset %llu was delivered)", r->id,
				(unsigned long long)ls->s.off);
	}
	if (rc == 0 && st == BG_SH_USAGE) {
		const char *e = ls->s.err.data ? ls->s.err.data : "";
		if (bg_startswith(e, BG_SH_ERROR_PREFIX))
			e += strlen(BG_SH_ERROR_PREFIX);
		return bg_error(BANGER_EINVALID, "session %s: %.*s", r->id, (int)strcspn(e, "\n"), e);
	}
	*done = false;
	if (rc == 0 && sig)
		/* the guest side was killed mid-stream */
		rc = bg_error(BANGER_ENETWORK, "session %s: the log stream ended early (signal %d)", r->id, (int)sig);
	else if (rc == 0)
		rc = bg_error(BANGER_ENETWORK, "session %s: the log stream ended early (exit %d)", r->id, st);
	return rc;
}

BANGER_EXTERN(int) banger_session_logs_options_init(banger_session_logs_options *opts, unsigned int version)
{
	static const banger_session_logs_options def = BANGER_SESSION_LOGS_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_session_logs_options", version,
			       BANGER_SESSION_LOGS_OPTIONS_VERSION, BANGER_SESSION_LOGS_OPTIONS_VERSION);
}

BANGER_EXTERN(int) banger_session_logs(uint64_t *out, banger_ctx *ctx, const char *id,
				       const banger_session_logs_options *opts)
{
	banger_session_logs_options def = BANGER_SESSION_LOGS_OPTIONS_INIT;
	if (out)
		*out = 0;
	int rc = BG_OPTIONS_CHECK(opts, &def, banger_session_logs_options, BANGER_SESSION_LOGS_OPTIONS_VERSION,
				  BANGER_SESSION_LOGS_OPTIONS_VERSION);
	if (rc)
		return rc;
	const uint64_t from = opts->from;
	/* from here on *out is where a caller resumes, whatever happens */
	if (out)
		*out = from;
	if (!ctx || !id)
		return bg_error(BANGER_EINVALID, "invalid argument");
	if (from > (uint64_t)INT64_MAX)
		return bg_error(BANGER_EINVALID, "offset %llu is too large", (unsigned long long)from);
	log_stream ls;
	memset(&ls, 0, sizeof(ls));
	if ((rc = bg_store_session_get(&ctx->env.store, &ls.r, id)))
		return rc;
	ls.ctx = ctx;
	ls.s = (stream_state){ opts->output_cb, opts->output_payload, from, 0, BG_BUF_INIT };
	ls.follow = (opts->flags & BANGER_SESSION_LOGS_FOLLOW) != 0;
	ls.last_progress = bg_now_ms();
	ls.delay = 100;
	for (;;) {
		bool done = true;
		banger_ssh_result *res = NULL;
		if ((rc = locate(&ls)) == 0) {
			rc = run_logs(&ls, &res);
			rc = judge(&ls, rc, res, &done);
		}
		banger_ssh_result_free(res);
		if (done || !ls.follow || !retryable(rc) || bg_now_ms() - ls.last_progress > RECONNECT_BUDGET_MS)
			break;
		bg_debug(ctx, "session %s: stream dropped at offset %llu (%s); resuming", ls.r.id,
			 (unsigned long long)ls.s.off, banger_error_last() ? banger_error_last()->message : "?");
		banger_error_clear();
		bg_sleep_ms(ls.delay);
		if (ls.delay < 2000)
			ls.delay *= 2;
	}
	if (out)
		*out = ls.s.off;
	bg_buf_free(&ls.s.err);
	bg_free(ls.dir);
	bg_session_target_clear(&ls.t);
	bg_session_record_clear(&ls.r);
	return rc;
}
