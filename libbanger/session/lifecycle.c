/* Session lifecycle: start, list and look up, stop, wait, remove. */
#include "session.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

BANGER_EXTERN(int) banger_session_start_options_init(banger_session_start_options *opts, unsigned int version)
{
	static const banger_session_start_options def = BANGER_SESSION_START_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_session_start_options", version, BANGER_SESSION_START_OPTIONS_VERSION,
			       BANGER_SESSION_START_OPTIONS_VERSION);
}

static int check_start(const char *vm, const char *const *argv, size_t argc, const banger_session_start_options *o)
{
	if (!vm || !*vm)
		return bg_error(BANGER_EINVALID, "no VM given");
	if (!argv || argc == 0 || !argv[0] || !*argv[0])
		return bg_error(BANGER_EINVALID, "no command given");
	for (size_t i = 0; i < argc; i++)
		if (!argv[i])
			return bg_error(BANGER_EINVALID, "command word %zu is NULL", i);
	if (o->name) {
		size_t n = strlen(o->name);
		if (n == 0 || n > 64 || strspn(o->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n ||
		    o->name[0] == '-' || o->name[0] == '.')
			return bg_error(BANGER_EINVALID,
					"invalid session name '%s': 1 to 64 letters, digits, '_', '.', '-', not starting "
					"with '-' or '.'", o->name);
	}
	if (o->env_count && !o->env)
		return bg_error(BANGER_EINVALID, "env is NULL");
	for (size_t i = 0; i < o->env_count; i++) {
		const char *e = o->env[i];
		if (!e || !strchr(e, '=') || e[0] == '=')
			return bg_error(BANGER_EINVALID, "environment entry '%s' is not KEY=VALUE", e ? e : "(null)");
	}
	if (o->cwd && !*o->cwd)
		return bg_error(BANGER_EINVALID, "empty working directory");
	return 0;
}

static int new_id(char out[13])
{
	unsigned char b[6];
	int rc = bg_random_bytes(b, sizeof(b));
	if (rc)
		return rc;
	bg_hex(out, b, sizeof(b));
	return 0;
}

/* Start on a resolved target.  The row is recorded "starting" first, so
 * a starter killed at any point leaves a record the next refresh
 * settles. */
static int start_on(char **out, banger_ctx *ctx, const bg_session_target *t, const char *const *argv, size_t argc,
		    const banger_session_start_options *o)
{
	char id[13];
	int rc = new_id(id);
	if (rc)
		return rc;
	bg_session_record r;
	memset(&r, 0, sizeof(r));
	r.id = id;
	r.vm_id = t->vm_id;
	r.name = (char *)o->name;
	r.command = bg_shell_join(argv, argc, BG_SHELL_BARE);
	r.state = (char *)BG_SESSION_STARTING;
	r.tty = o->tty ? 1 : 0;
	r.exit_code = -1;
	r.created_at = bg_wall_seconds();
	if (!r.command)
		return bg_error_oom();
	rc = bg_store_session_insert(&ctx->env.store, &r);
	bg_free(r.command);
	if (rc)
		return rc;
	bg_fault_point("session:recorded");

	/* banger-session start --dir D [--cwd C] [--env K=V]... [--tty --rows R --cols C] -- argv */
	size_t max = 12 + 2 * o->env_count + argc;
	const char **args = bg_calloc(max, sizeof(*args));
	char *dir = bg_session_dir(t, id);
	char rows[8], cols[8];
	size_t n = 0;
	bg_session_conn c = { 0 };
	banger_ssh_result *res = NULL;
	if (!args || !dir) {
		rc = bg_error_oom();
		goto fail;
	}
	args[n++] = "--dir";
	args[n++] = dir;
	if (o->cwd) {
		args[n++] = "--cwd";
		args[n++] = o->cwd;
	}
	for (size_t i = 0; i < o->env_count; i++) {
		args[n++] = "--env";
		args[n++] = o->env[i];
	}
	if (o->tty) {
		snprintf(rows, sizeof(rows), "%u", (unsigned)(o->rows ? o->rows : 24));
		snprintf(cols, sizeof(cols), "%u", (unsigned)(o->cols ? o->cols : 80));
		args[n++] = "--tty";
		args[n++] = "--rows";
		args[n++] = rows;
		args[n++] = "--cols";
		args[n++] = cols;
	}
	args[n++] = "--";
	for (size_t i = 0; i < argc; i++)
		args[n++] = argv[i];
	if ((rc = bg_session_connect(&c, ctx, t)))
		goto fail;
	if ((rc = bg_session_helper_exec(&res, &c, "start", args, n, NULL))) {
		if (rc == BANGER_ENETWORK || rc == BANGER_ETIMEOUT) {
			/* The guest may have started it before the connection
			 * broke: the record stays "starting" and the next
			 * refresh asks the guest. */
			bg_error_prefix("session %s may or may not have started (see `banger session list`)", id);
			goto fail_recorded;
		}
		goto fail;
	}
	if (banger_ssh_result_exit_code(res) != 0) {
		rc = bg_session_helper_error(banger_ssh_result_exit_code(res) == BG_SH_USAGE ? BANGER_EINVALID : BANGER_ERROR, res,
					     "start", id);
		goto fail;
	}
	bg_fault_point("session:started");
	if ((rc = bg_store_session_set_state(&ctx->env.store, id, BG_SESSION_RUNNING, -1, 0)))
		goto fail_recorded;
	if (!(*out = bg_strdup(id)))
		rc = bg_error_oom(); /* it runs and is recorded: list finds it */
	bg_info(ctx, "session %s started in %s: %s", id, t->vm_name, argv[0]);
	goto done;
fail: {
	/* Nothing runs: forget it. */
	bg_error_saved saved;
	bg_error_save(&saved);
	bg_store_session_delete(&ctx->env.store, id);
	bg_error_restore(&saved);
}
fail_recorded:
done:
	banger_ssh_result_free(res);
	bg_session_disconnect(&c);
	bg_free(dir);
	bg_free(args);
	return rc;
}

BANGER_EXTERN(int) banger_session_start(char **out, banger_ctx *ctx, const char *vm, const char *const *argv,
					size_t argc, const banger_session_start_options *opts)
{
	banger_session_start_options def = BANGER_SESSION_START_OPTIONS_INIT;
	if (!out)
		return bg_error(BANGER_EINVALID, "out must not be NULL");
	*out = NULL;
	if (!ctx)
		return bg_error(BANGER_EINVALID, "no context");
	int rc = BG_OPTIONS_CHECK(opts, &def, banger_session_start_options, BANGER_SESSION_START_OPTIONS_VERSION,
				  BANGER_SESSION_START_OPTIONS_VERSION);
	if (rc || (rc = check_start(vm, argv, argc, opts)))
		return rc;
	bg_session_target t;
	if ((rc = bg_session_target_for_vm(&t, ctx, vm)))
		return rc;
	if (t.is_vm && !t.alive)
		rc = bg_error(BANGER_ESTATE, "VM %s is not running", t.vm_name);
	else
		rc = start_on(out, ctx, &t, argv, argc, opts);
	bg_session_target_clear(&t);
	return rc;
}

/* ---- list, lookup, accessors ---- */

int bg_session_get(bg_session_record *out, banger_ctx *ctx, const char *key, uint32_t flags)
{
	int rc = bg_store_session_get(&ctx->env.store, out, key);
	if (rc)
		return rc;
	if ((flags & BANGER_SESSION_REFRESH) && (rc = bg_session_refresh(ctx, out, 1, true)))
		bg_session_record_clear(out);
	return rc;
}

BANGER_EXTERN(int) banger_session_list_all(banger_session_list **out, banger_ctx *ctx, const char *vm, uint32_t flags)
{
	if (!out)
		return bg_error(BANGER_EINVALID, "out must not be NULL");
	*out = NULL;
	if (!ctx)
		return bg_error(BANGER_EINVALID, "no context");
	char *vm_id = NULL;
	int rc = 0;
	bool deleted_vm = false;
	if (vm) {
		bg_session_target t;
		rc = bg_session_target_for_vm(&t, ctx, vm);
		if (rc == BANGER_ENOTFOUND) {
			/* a deleted VM's sessions are still listed under its id */
			if (!(vm_id = bg_strdup(vm)))
				return bg_error_oom();
			deleted_vm = true;
		} else if (rc) {
			return rc;
		} else {
			vm_id = t.vm_id;
			t.vm_id = NULL;
			bg_session_target_clear(&t);
		}
	}
	bg_session_record *recs = NULL;
	size_t n = 0;
	rc = bg_store_session_list(&ctx->env.store, vm_id, &recs, &n);
	if (!rc && deleted_vm && n == 0)
		rc = bg_error(BANGER_ENOTFOUND, "no VM named '%s'", vm);
	if (!rc && (flags & BANGER_SESSION_REFRESH))
		rc = bg_session_refresh(ctx, recs, n, false);
	bg_free(vm_id);
	banger_session_list *l = rc ? NULL : bg_calloc(1, sizeof(*l));
	banger_session *v = rc ? NULL : bg_calloc(n ? n : 1, sizeof(*v));
	if (!rc && (!l || !v))
		rc = bg_error_oom();
	if (rc) {
		bg_free(l);
		bg_free(v);
		bg_session_records_free(recs, n);
		return rc;
	}
	for (size_t i = 0; i < n; i++)
		v[i].rec = recs[i];
	bg_free(recs); /* the strings moved */
	l->v = v;
	l->n = n;
	*out = l;
	return 0;
}

BANGER_EXTERN(size_t) banger_session_list_count(const banger_session_list *l)
{
	return l ? l->n : 0;
}

BANGER_EXTERN(const banger_session *) banger_session_list_get(const banger_session_list *l, size_t i)
{
	return l && i < l->n ? &l->v[i] : NULL;
}

BANGER_EXTERN(void) banger_session_list_free(banger_session_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		bg_session_record_clear(&l->v[i].rec);
	bg_free(l->v);
	bg_free(l);
}

BANGER_EXTERN(int) banger_session_lookup(banger_session **out, banger_ctx *ctx, const char *key, uint32_t flags)
{
	if (!out)
		return bg_error(BANGER_EINVALID, "out must not be NULL");
	*out = NULL;
	if (!ctx || !key)
		return bg_error(BANGER_EINVALID, "invalid argument");
	banger_session *s = bg_calloc(1, sizeof(*s));
	if (!s)
		return bg_error_oom();
	int rc = bg_session_get(&s->rec, ctx, key, flags);
	if (rc) {
		bg_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

BANGER_EXTERN(void) banger_session_free(banger_session *s)
{
	if (!s)
		return;
	bg_session_record_clear(&s->rec);
	bg_free(s);
}

BANGER_EXTERN(const char *) banger_session_id(const banger_session *s)
{
	return s ? s->rec.id : NULL;
}

BANGER_EXTERN(const char *) banger_session_name(const banger_session *s)
{
	return s ? s->rec.name : NULL;
}

BANGER_EXTERN(const char *) banger_session_vm_id(const banger_session *s)
{
	return s ? s->rec.vm_id : NULL;
}

BANGER_EXTERN(const char *) banger_session_vm_name(const banger_session *s)
{
	return s ? s->rec.vm_name : NULL;
}

BANGER_EXTERN(const char *) banger_session_command(const banger_session *s)
{
	return s ? s->rec.command : NULL;
}

/* The record keeps the state as text (the store's column); the API gives
 * numbers, in banger_session_state_t's order. */
static const char *const state_names[] = {
	[BANGER_SESSION_STATE_STARTING] = BG_SESSION_STARTING, [BANGER_SESSION_STATE_RUNNING] = BG_SESSION_RUNNING,
	[BANGER_SESSION_STATE_EXITED] = BG_SESSION_EXITED, [BANGER_SESSION_STATE_LOST] = BG_SESSION_LOST,
};

BANGER_EXTERN(int) banger_session_state(const banger_session *s)
{
	for (size_t i = 1; s && i < BG_ARRAY_SIZE(state_names); i++)
		if (bg_streq(s->rec.state, state_names[i]))
			return (int)i;
	return BANGER_SESSION_STATE_UNKNOWN;
}

BANGER_EXTERN(const char *) banger_session_state_name(int state)
{
	return state > 0 && (size_t)state < BG_ARRAY_SIZE(state_names) ? state_names[state] : "unknown";
}

BANGER_EXTERN(int32_t) banger_session_exit_code(const banger_session *s)
{
	return s ? s->rec.exit_code : -1;
}

BANGER_EXTERN(int32_t) banger_session_exit_signal(const banger_session *s)
{
	return s ? s->rec.exit_signal : 0;
}

BANGER_EXTERN(int) banger_session_tty(const banger_session *s)
{
	return s ? s->rec.tty : 0;
}

BANGER_EXTERN(int64_t) banger_session_created_at(const banger_session *s)
{
	return s ? s->rec.created_at : 0;
}

BANGER_EXTERN(int64_t) banger_session_log_size(const banger_session *s)
{
	return s ? s->rec.log_size : -1;
}

/* ---- stop, wait, remove ---- */

/* Look up a session that is expected to run, and connect to its guest.
 * A recorded end is reported through *ended (when not NULL) without
 * connecting. */
typedef struct {
	bg_session_record r;
	bg_session_target t;
	bg_session_conn c;
	char *dir;
} op;

static void op_end(op *o)
{
	bg_session_disconnect(&o->c);
	bg_session_target_clear(&o->t);
	bg_session_record_clear(&o->r);
	bg_free(o->dir);
}

/* Find the session; unless its record is final, resolve and reach its
 * guest (a VM that is no longer running makes it lost). */
static int op_begin(op *o, banger_ctx *ctx, const char *key, bool *final)
{
	memset(o, 0, sizeof(*o));
	*final = false;
	int rc = bg_store_session_get(&ctx->env.store, &o->r, key);
	if (rc)
		return rc;
	if (bg_streq(o->r.state, BG_SESSION_EXITED) || bg_streq(o->r.state, BG_SESSION_LOST)) {
		*final = true;
		return 0;
	}
	if ((rc = bg_session_target_for(&o->t, ctx, &o->r)) == BANGER_ENOTFOUND || (rc == 0 && o->t.is_vm && !o->t.alive)) {
		banger_error_clear();
		*final = true;
		return bg_session_record_lost(ctx, &o->r);
	}
	if (rc)
		return rc;
	if (!(o->dir = bg_session_dir(&o->t, o->r.id)))
		return bg_error_oom();
	return bg_session_connect(&o->c, ctx, &o->t);
}

static int lost_error(const bg_session_record *r)
{
	return bg_error(BANGER_ESTATE, "session %s is lost: its VM was stopped or deleted, or the guest lost track of it",
			r->id);
}

/* Record what the helper printed as the final status ("exit N" or
 * "signal N" on its first line). */
static int take_status(banger_ctx *ctx, bg_session_record *r, const banger_ssh_result *res)
{
	int32_t code, sig;
	if (!bg_session_parse_status(banger_ssh_result_stdout(res, NULL), &code, &sig))
		return bg_error(BANGER_EIO, "session %s: unexpected answer from the session helper: %.80s", r->id,
				banger_ssh_result_stdout(res, NULL));
	return bg_session_record_end(ctx, r, code, sig);
}

/* Map the helper's "lost"/"missing" exits. */
static int helper_gone(banger_ctx *ctx, op *o, const banger_ssh_result *res, const char *what)
{
	int st = banger_ssh_result_exit_code(res);
	if (st == BG_SH_LOST || st == BG_SH_MISSING) {
		int rc = bg_session_record_lost(ctx, &o->r);
		return rc ? rc : lost_error(&o->r);
	}
	return bg_session_helper_error(st == BG_SH_USAGE ? BANGER_EINVALID : BANGER_ERROR, res, what, o->r.id);
}

BANGER_EXTERN(int) banger_session_stop_options_init(banger_session_stop_options *opts, unsigned int version)
{
	static const banger_session_stop_options def = BANGER_SESSION_STOP_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_session_stop_options", version,
			       BANGER_SESSION_STOP_OPTIONS_VERSION, BANGER_SESSION_STOP_OPTIONS_VERSION);
}

BANGER_EXTERN(int) banger_session_stop(int *escalated, banger_ctx *ctx, const char *id,
				       const banger_session_stop_options *opts)
{
	banger_session_stop_options def = BANGER_SESSION_STOP_OPTIONS_INIT;
	if (escalated)
		*escalated = 0;
	if (!ctx || !id)
		return bg_error(BANGER_EINVALID, "invalid argument");
	int rc = BG_OPTIONS_CHECK(opts, &def, banger_session_stop_options, BANGER_SESSION_STOP_OPTIONS_VERSION,
				  BANGER_SESSION_STOP_OPTIONS_VERSION);
	if (rc)
		return rc;
	const int32_t signal = opts->signal;
	if (signal < 0 || signal > 64)
		return bg_error(BANGER_EINVALID, "invalid signal %d", (int)signal);
	op o;
	bool final;
	rc = op_begin(&o, ctx, id, &final);
	if (rc || final) {
		if (!rc && bg_streq(o.r.state, BG_SESSION_LOST))
			rc = lost_error(&o.r);
		op_end(&o);
		return rc;
	}
	char sig[16], tmo[24];
	snprintf(sig, sizeof(sig), "%d", (int)(signal ? signal : SIGTERM));
	uint32_t ms = opts->timeout_ms ? opts->timeout_ms : 10000;
	snprintf(tmo, sizeof(tmo), "%u", (unsigned)((ms + 999) / 1000));
	const char *args[] = { "--dir", o.dir, "--signal", sig, "--timeout", tmo };
	banger_ssh_exec_options eo = BANGER_SSH_EXEC_OPTIONS_INIT;
	eo.timeout_ms = ms + 60000;
	banger_ssh_result *res = NULL;
	if ((rc = bg_session_helper_exec(&res, &o.c, "stop", args, BG_ARRAY_SIZE(args), &eo)) == 0) {
		if (banger_ssh_result_exit_code(res) != 0) {
			rc = helper_gone(ctx, &o, res, "stop");
		} else if ((rc = take_status(ctx, &o.r, res)) == 0) {
			bool esc = strstr(banger_ssh_result_stdout(res, NULL), "\nescalated") != NULL;
			if (escalated)
				*escalated = esc;
			bg_info(ctx, "session %s stopped%s", o.r.id, esc ? " (SIGKILL after the timeout)" : "");
		}
	}
	banger_ssh_result_free(res);
	op_end(&o);
	return rc;
}

static banger_exit_status exit_of(const bg_session_record *r)
{
	banger_exit_status e = { r->exit_code, r->exit_signal };
	return e;
}

BANGER_EXTERN(int) banger_session_wait_options_init(banger_session_wait_options *opts, unsigned int version)
{
	static const banger_session_wait_options def = BANGER_SESSION_WAIT_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_session_wait_options", version,
			       BANGER_SESSION_WAIT_OPTIONS_VERSION, BANGER_SESSION_WAIT_OPTIONS_VERSION);
}

BANGER_EXTERN(int) banger_session_wait(banger_exit_status *out, banger_ctx *ctx, const char *id,
				       const banger_session_wait_options *opts)
{
	banger_session_wait_options def = BANGER_SESSION_WAIT_OPTIONS_INIT;
	if (!out)
		return bg_error(BANGER_EINVALID, "out must not be NULL");
	out->code = -1;
	out->signal = 0;
	if (!ctx || !id)
		return bg_error(BANGER_EINVALID, "invalid argument");
	int vrc = BG_OPTIONS_CHECK(opts, &def, banger_session_wait_options, BANGER_SESSION_WAIT_OPTIONS_VERSION,
				   BANGER_SESSION_WAIT_OPTIONS_VERSION);
	if (vrc)
		return vrc;
	const uint32_t timeout_ms = opts->timeout_ms;
	int64_t deadline = timeout_ms ? bg_now_ms() + timeout_ms : INT64_MAX;
	int delay = 250;
	for (;;) {
		op o;
		bool final;
		int rc = op_begin(&o, ctx, id, &final);
		if (!rc && final) {
			if (bg_streq(o.r.state, BG_SESSION_LOST))
				rc = lost_error(&o.r);
			else
				*out = exit_of(&o.r);
			op_end(&o);
			return rc;
		}
		bool retry = false;
		if (!rc) {
			int64_t left = deadline - bg_now_ms();
			char tmo[24] = "";
			if (timeout_ms)
				snprintf(tmo, sizeof(tmo), "%lld", (long long)(left > 0 ? (left + 999) / 1000 : 0));
			const char *args[] = { "--dir", o.dir, "--timeout", tmo };
			banger_ssh_exec_options eo = BANGER_SSH_EXEC_OPTIONS_INIT;
			eo.timeout_ms = timeout_ms ? (uint32_t)(left > 0 ? left : 0) + 30000 : UINT32_MAX;
			banger_ssh_result *res = NULL;
			rc = bg_session_helper_exec(&res, &o.c, "wait", args, timeout_ms ? 4 : 2, &eo);
			if (rc == 0) {
				int st = banger_ssh_result_exit_code(res);
				if (st == 0 && (rc = take_status(ctx, &o.r, res)) == 0)
					*out = exit_of(&o.r);
				else if (st == BG_SH_TIMEOUT)
					rc = bg_error(BANGER_ETIMEOUT, "session %s is still running after %u ms", o.r.id,
						      (unsigned)timeout_ms);
				else if (st != 0)
					rc = helper_gone(ctx, &o, res, "wait for");
			}
			banger_ssh_result_free(res);
		}
		/* A dropped connection: try again while there is time (the VM
		 * going away turns the session lost on the next round). */
		retry = (rc == BANGER_ENETWORK || rc == BANGER_ETIMEOUT) && bg_now_ms() < deadline;
		op_end(&o);
		if (!retry)
			return rc;
		bg_debug(ctx, "session %s: waiting again after: %s", id,
			 banger_error_last() ? banger_error_last()->message : "?");
		bg_sleep_ms(delay);
		if (delay < 4000)
			delay *= 2;
	}
}

BANGER_EXTERN(int) banger_session_remove_options_init(banger_session_remove_options *opts, unsigned int version)
{
	static const banger_session_remove_options def = BANGER_SESSION_REMOVE_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_session_remove_options", version,
			       BANGER_SESSION_REMOVE_OPTIONS_VERSION, BANGER_SESSION_REMOVE_OPTIONS_VERSION);
}

BANGER_EXTERN(int) banger_session_remove(banger_ctx *ctx, const char *id,
					 const banger_session_remove_options *opts)
{
	banger_session_remove_options def = BANGER_SESSION_REMOVE_OPTIONS_INIT;
	if (!ctx || !id)
		return bg_error(BANGER_EINVALID, "invalid argument");
	int rc = BG_OPTIONS_CHECK(opts, &def, banger_session_remove_options, BANGER_SESSION_REMOVE_OPTIONS_VERSION,
				  BANGER_SESSION_REMOVE_OPTIONS_VERSION);
	if (rc)
		return rc;
	const bool force = opts->force != 0;
	bg_session_record r;
	if ((rc = bg_session_get(&r, ctx, id, BANGER_SESSION_REFRESH)))
		return rc;
	if ((bg_streq(r.state, BG_SESSION_RUNNING) || bg_streq(r.state, BG_SESSION_STARTING)) && !force) {
		rc = bg_error(BANGER_ESTATE, "session %s is %s: stop it first, or remove it with force", r.id, r.state);
		bg_session_record_clear(&r);
		return rc;
	}
	/* Delete its directory in the guest when the guest is there. */
	bg_session_target t;
	memset(&t, 0, sizeof(t));
	int trc = bg_session_target_for(&t, ctx, &r);
	if (trc == 0 && (!t.is_vm || t.alive)) {
		bg_session_conn c;
		char *dir = bg_session_dir(&t, r.id);
		banger_ssh_result *res = NULL;
		if (!dir) {
			rc = bg_error_oom();
		} else if ((rc = bg_session_connect(&c, ctx, &t)) == 0) {
			const char *args[] = { "--dir", dir, "--force" };
			rc = bg_session_helper_exec(&res, &c, "remove", args, force ? 3 : 2, NULL);
			if (rc == 0 && banger_ssh_result_exit_code(res) != 0)
				rc = bg_session_helper_error(banger_ssh_result_exit_code(res) == BG_SH_RUNNING ? BANGER_ESTATE
											       : BANGER_ERROR,
							     res, "remove", r.id);
			banger_ssh_result_free(res);
			bg_session_disconnect(&c);
		}
		bg_free(dir);
		/* A lost session's guest may be unreachable: forget it anyway. */
		if (rc && bg_streq(r.state, BG_SESSION_LOST) && rc != BANGER_ENOMEM) {
			bg_warn(ctx, "session %s: its directory in the guest stays: %s", r.id,
				banger_error_last() ? banger_error_last()->message : "?");
			banger_error_clear();
			rc = 0;
		}
	} else {
		banger_error_clear();
	}
	bg_session_target_clear(&t);
	if (rc == 0)
		rc = bg_store_session_delete(&ctx->env.store, r.id);
	bg_session_record_clear(&r);
	return rc;
}
