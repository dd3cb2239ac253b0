/* Progress reports of long operations (include/banger/progress.h): one
 * place fills in what every report carries, turns a callback's "stop"
 * into BANGER_ECANCELLED, so every operation cancels the same way, and
 * paces the WAITING reports of a wait. */
#include "core.h"

static int deliver(const bg_progress *p, banger_progress *r)
{
	if (!p || !p->cb)
		return 0;
	r->version = BANGER_PROGRESS_VERSION;
	r->operation = p->operation;
	if (!r->subject)
		r->subject = p->subject;
	if (!r->stage)
		r->stage = "";
	return p->cb(r, p->payload);
}

int bg_progress_cancelled(const char *stage)
{
	return bg_error(BANGER_ECANCELLED, "cancelled by the progress callback (at %s)", stage ? stage : "?");
}

int bg_progress_report(const bg_progress *p, banger_progress *r)
{
	int answer = deliver(p, r);
	/* the last reports come once the outcome is settled: nothing to stop */
	if (answer == 0 || r->event == BANGER_PROGRESS_DONE || r->event == BANGER_PROGRESS_UP_TO_DATE)
		return 0;
	return bg_progress_cancelled(r->stage);
}

void bg_progress_tell(const bg_progress *p, banger_progress *r)
{
	(void)deliver(p, r);
}

int bg_progress_step(const bg_progress *p, const char *stage, const char *detail)
{
	banger_progress r = { .event = BANGER_PROGRESS_STEP, .stage = stage, .detail = detail };
	return bg_progress_report(p, &r);
}

void bg_progress_done(const bg_progress *p, const char *subject, uint64_t total)
{
	banger_progress r = { .event = BANGER_PROGRESS_DONE, .stage = "done", .subject = subject,
			      .total = total };
	bg_progress_tell(p, &r);
}

bool bg_progress_due(bg_progress_pace *pace)
{
	int64_t now = bg_now_ms();
	if (now < pace->next)
		return false;
	pace->next = now + BG_PROGRESS_WAIT_MS;
	return true;
}

void bg_progress_pace_restart(bg_progress_pace *pace)
{
	pace->next = bg_now_ms() + BG_PROGRESS_WAIT_MS;
}
