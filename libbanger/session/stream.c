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

BANGER_EXTERN(int) banger_session_logs(uint64_t *out, banger_ctx *ctx, const char *id, uint64_t from,
				       uint32_t flags, banger_session_output_cb cb, void *payload)
{
	if (out)
		*out = from;
	if (!ctx || !id)
		return bg_error(BANGER_EINVALID, "invalid argument");
	if (from > (uint64_t)INT64_MAX)
		return bg_error(BANGER_EINVALID, "offset %llu is too large", (unsigned long long)from);
	bool follow = (flags & BANGER_SESSION_LOGS_FOLLOW) != 0;
	bg_session_record r;
	int rc = bg_store_session_get(&ctx->store, &r, id);
	if (rc)
		return rc;
	stream_state s = { cb, payload, from, 0, BG_BUF_INIT };
	bg_session_target t;
	memset(&t, 0, sizeof(t));
	char *dir = NULL;
	int64_t last_progress = bg_now_ms();
	int delay = 100;
	for (;;) {
		bg_session_target_clear(&t);
		if ((rc = bg_session_target_for(&t, ctx, &r)))
			break;
		if (t.is_vm && !t.alive) {
			if (bg_streq(r.state, BG_SESSION_RUNNING) || bg_streq(r.state, BG_SESSION_STARTING))
				bg_session_record_lost(ctx, &r);
			rc = bg_error(BANGER_ESTATE, "session %s: VM %s is not running (output up to offset %llu was delivered)",
				      r.id, t.vm_name, (unsigned long long)s.off);
			break;
		}
		bg_free(dir);
		if (!(dir = bg_session_dir(&t, r.id))) {
			rc = bg_error_oom();
			break;
		}
		char offs[24];
		snprintf(offs, sizeof(offs), "%llu", (unsigned long long)s.off);
		const char *args[] = { "--dir", dir, "--from", offs, "--follow" };
		banger_ssh_exec_options eo = BANGER_SSH_EXEC_OPTIONS_INIT;
		eo.output_cb = on_output;
		eo.output_payload = &s;
		eo.timeout_ms = follow ? UINT32_MAX : 600000;
		s.err.len = 0;
		uint64_t before = s.off;
		bg_session_conn c;
		banger_ssh_result *res = NULL;
		rc = bg_session_connect(&c, ctx, &t);
		if (rc == 0)
			rc = bg_session_helper_exec(&res, &c, "logs", args, follow ? 5 : 4, &eo);
		if (s.off != before) {
			last_progress = bg_now_ms();
			delay = 100;
		}
		int st = res ? banger_ssh_result_exit_code(res) : -1;
		int32_t sig = res ? banger_ssh_result_exit_signal(res) : 0;
		bg_session_disconnect(&c);
		banger_ssh_result_free(res);
		if (s.cb_rc) {
			rc = s.cb_rc;
			break;
		}
		if (rc == 0 && st == 0) {
			if (follow && !bg_streq(r.state, BG_SESSION_EXITED)) {
				/* the guest only ends a follow at the session's end */
				bg_session_record rr;
				if (bg_session_get(&rr, ctx, r.id, BANGER_SESSION_REFRESH) == 0)
					bg_session_record_clear(&rr);
				banger_error_clear();
			}
			break;
		}
		if (rc == 0 && (st == BG_SH_LOST || st == BG_SH_MISSING)) {
			bg_session_record_lost(ctx, &r);
			rc = bg_error(BANGER_ESTATE, "session %s is lost (output up to offset %llu was delivered)", r.id,
				      (unsigned long long)s.off);
			break;
		}
		if (rc == 0 && st == 2) {
			const char *e = s.err.data ? s.err.data : "";
			if (bg_startswith(e, "banger-session: "))
				e += strlen("banger-session: ");
			rc = bg_error(BANGER_EINVALID, "session %s: %.*s", r.id, (int)strcspn(e, "\n"), e);
			break;
		}
		if (rc == 0 && sig)
			/* the guest side was killed mid-stream */
			rc = bg_error(BANGER_ENETWORK, "session %s: the log stream ended early (signal %d)", r.id, (int)sig);
		else if (rc == 0)
			rc = bg_error(BANGER_ENETWORK, "session %s: the log stream ended early (exit %d)", r.id, st);
		if (!follow || !retryable(rc) || bg_now_ms() - last_progress > RECONNECT_BUDGET_MS)
			break;
		bg_debug(ctx, "session %s: stream dropped at offset %llu (%s); resuming", r.id, (unsigned long long)s.off,
			 banger_error_last() ? banger_error_last()->message : "?");
		banger_error_clear();
		bg_sleep_ms(delay);
		if (delay < 2000)
			delay *= 2;
	}
	if (out)
		*out = s.off;
	bg_buf_free(&s.err);
	bg_free(dir);
	bg_session_target_clear(&t);
	bg_session_record_clear(&r);
	return rc;
}
