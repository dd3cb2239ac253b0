/* The session controller: where a session's guest side is, the SSH
 * connection to it (host key verified: the VM's pinned key, or for tests
 * the known_hosts file of the target), the guest helper and its verbs,
 * and bringing recorded state in line with what the guest says. */
#include "session.h"
#include "../vm/vm.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* How long a session may sit in "starting" with no directory in the
 * guest before it counts as lost (its starter died before the guest
 * heard of it). */
#define STARTING_GRACE_S 120

/* ---- targets ---- */

void bg_session_target_clear(bg_session_target *t)
{
	if (!t)
		return;
	char **s[] = { &t->vm_id, &t->vm_name, &t->host, &t->user, &t->known_hosts, &t->identity,
		       &t->pin_names[0], &t->pin_names[1], &t->root, &t->helper_dir };
	for (size_t i = 0; i < BG_ARRAY_SIZE(s); i++)
		bg_free(*s[i]);
	memset(t, 0, sizeof(*t));
}

static int dup_opt(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	return (*dst = bg_strdup(src)) ? 0 : bg_error_oom();
}

int bg_session_target_copy(bg_session_target *dst, const bg_session_target *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->is_vm = src->is_vm;
	dst->alive = src->alive;
	dst->port = src->port;
	dst->policy = src->policy;
	dst->pin_count = src->pin_count;
	int rc = 0;
	if (!rc)
		rc = dup_opt(&dst->vm_id, src->vm_id);
	if (!rc)
		rc = dup_opt(&dst->vm_name, src->vm_name);
	if (!rc)
		rc = dup_opt(&dst->host, src->host);
	if (!rc)
		rc = dup_opt(&dst->user, src->user);
	if (!rc)
		rc = dup_opt(&dst->known_hosts, src->known_hosts);
	if (!rc)
		rc = dup_opt(&dst->identity, src->identity);
	for (size_t i = 0; i < 2 && !rc; i++)
		rc = dup_opt(&dst->pin_names[i], src->pin_names[i]);
	if (!rc)
		rc = dup_opt(&dst->root, src->root);
	if (!rc)
		rc = dup_opt(&dst->helper_dir, src->helper_dir);
	if (rc)
		bg_session_target_clear(dst);
	return rc;
}

static pthread_mutex_t test_mu = PTHREAD_MUTEX_INITIALIZER;
static bg_session_target *test_target;

int bg_session_set_test_target(const bg_session_target *t)
{
	bg_session_target *copy = NULL;
	if (t) {
		if (!t->vm_id || !t->vm_name || !t->host || !t->root || !t->helper_dir)
			return bg_error(BANGER_EINVALID, "a test target needs vm_id, vm_name, host, root, helper_dir");
		copy = bg_calloc(1, sizeof(*copy));
		if (!copy)
			return bg_error_oom();
		int rc = bg_session_target_copy(copy, t);
		if (rc) {
			bg_free(copy);
			return rc;
		}
		copy->is_vm = false;
		copy->alive = true;
	}
	pthread_mutex_lock(&test_mu);
	bg_session_target *old = test_target;
	test_target = copy;
	pthread_mutex_unlock(&test_mu);
	bg_session_target_clear(old);
	bg_free(old);
	return 0;
}

/* Copy the test target when key names it; 1 when it did. */
static int test_target_for(bg_session_target *t, const char *key, int *rc)
{
	*rc = 0;
	pthread_mutex_lock(&test_mu);
	int hit = test_target && key && (strcmp(key, test_target->vm_name) == 0 || strcmp(key, test_target->vm_id) == 0);
	if (hit)
		*rc = bg_session_target_copy(t, test_target);
	pthread_mutex_unlock(&test_mu);
	return hit;
}

int bg_session_target_for_vm(bg_session_target *t, banger_ctx *ctx, const char *key)
{
	memset(t, 0, sizeof(*t));
	int rc;
	if (test_target_for(t, key, &rc))
		return rc;
	bg_vm_record vm;
	if ((rc = bg_store_vm_get(&ctx->env.store, &vm, key)))
		return rc;
	t->is_vm = true;
	t->alive = bg_vm_alive(ctx, &vm, NULL);
	/* As `vm exec`: trust on first use under the VM's names, so the key
	 * banger pinned before first boot must match (a mismatch fails as
	 * a possible MITM). */
	t->policy = BANGER_SSH_HOSTKEY_TOFU;
	t->port = 22;
	const char *user = bg_config_get(&ctx->env.config, "ssh_user");
	const char *names[2];
	bg_vm_pin_names(&vm, names);
	rc = dup_opt(&t->vm_id, vm.id);
	if (!rc)
		rc = dup_opt(&t->vm_name, vm.name);
	if (!rc)
		rc = dup_opt(&t->host, vm.guest_ip);
	if (!rc)
		rc = dup_opt(&t->user, user && *user ? user : "root");
	for (size_t i = 0; i < 2 && !rc; i++)
		if (names[i] && !(rc = dup_opt(&t->pin_names[t->pin_count], names[i])))
			t->pin_count++;
	if (!rc)
		rc = dup_opt(&t->root, BG_SESSION_GUEST_ROOT);
	if (!rc)
		rc = dup_opt(&t->helper_dir, BG_SESSION_GUEST_HELPER_DIR);
	bg_vm_record_clear(&vm);
	if (rc)
		bg_session_target_clear(t);
	return rc;
}

int bg_session_target_for(bg_session_target *t, banger_ctx *ctx, const bg_session_record *r)
{
	int rc = bg_session_target_for_vm(t, ctx, r->vm_id);
	if (rc == BANGER_ENOTFOUND)
		rc = bg_error(BANGER_ENOTFOUND, "the VM of session %s (%s) no longer exists", r->id, r->vm_id);
	return rc;
}

char *bg_session_dir(const bg_session_target *t, const char *id)
{
	return bg_path_join(t->root, id);
}

/* ---- the helper on the host ---- */

static pthread_mutex_t helper_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char *path;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	char name[64];
} helper_cache;

static int helper_hash(char name[64], const char *path)
{
	char *data = NULL;
	size_t len = 0;
	int rc = bg_read_file(&data, &len, path, 64u << 20);
	if (rc)
		return rc;
	char hex[BG_SHA256_HEX_SIZE];
	rc = bg_sha256_of_hex(hex, data, len);
	bg_free(data);
	if (rc) {
		bg_error_prefix("hash %s", path);
		return rc;
	}
	snprintf(name, 64, "%s-%.16s", BG_SESSION_PROTO_NAME, hex);
	return 0;
}

int bg_session_local_helper(char **path, char **guest_name)
{
	*path = NULL;
	if (guest_name)
		*guest_name = NULL;
	char *found = NULL;
	struct stat st;
	int rc = bg_guest_file(&found, BG_SESSION_HELPER_NAME);
	if (rc == BANGER_ENOTFOUND)
		bg_error_prefix("the guest session helper (set BANGER_SESSION_HELPER)");
	if (!rc && stat(found, &st) != 0)
		rc = bg_error_os(bg_code_from_errno(errno), errno, "stat %s", found);
	if (!rc) {
		pthread_mutex_lock(&helper_mu);
		bool fresh = helper_cache.path && strcmp(helper_cache.path, found) == 0 &&
			     helper_cache.dev == st.st_dev && helper_cache.ino == st.st_ino &&
			     helper_cache.size == st.st_size && helper_cache.mtime.tv_sec == st.st_mtim.tv_sec &&
			     helper_cache.mtime.tv_nsec == st.st_mtim.tv_nsec;
		char name[64];
		if (fresh) {
			memcpy(name, helper_cache.name, sizeof(name));
		} else if ((rc = helper_hash(name, found)) == 0) {
			char *p = bg_strdup(found);
			if (p) {
				bg_free(helper_cache.path);
				helper_cache.path = p;
				helper_cache.dev = st.st_dev;
				helper_cache.ino = st.st_ino;
				helper_cache.size = st.st_size;
				helper_cache.mtime = st.st_mtim;
				memcpy(helper_cache.name, name, sizeof(name));
			}
		}
		pthread_mutex_unlock(&helper_mu);
		if (!rc && guest_name && !(*guest_name = bg_strdup(name)))
			rc = bg_error_oom();
		if (!rc) {
			*path = found;
			found = NULL;
		}
	}
	bg_free(found);
	return rc;
}

/* ---- connection ---- */

int bg_session_connect(bg_session_conn *c, banger_ctx *ctx, const bg_session_target *t)
{
	memset(c, 0, sizeof(*c));
	c->ctx = ctx;
	c->t = t;
	if (t->is_vm && !t->alive)
		return bg_error(BANGER_ESTATE, "VM %s is not running", t->vm_name);
	if (!t->host || !*t->host)
		return bg_error(BANGER_ESTATE, "VM %s has no guest address", t->vm_name);
	banger_ssh_options so = BANGER_SSH_OPTIONS_INIT;
	so.host = t->host;
	so.port = t->port;
	so.user = t->user;
	so.hostkey_policy = t->policy;
	so.known_hosts_path = t->known_hosts;
	so.identity_path = t->identity;
	so.pin_names = (const char *const *)t->pin_names;
	so.pin_names_count = t->pin_count;
	int rc = banger_ssh_connect(&c->ssh, ctx, &so);
	if (rc)
		bg_error_prefix("session controller: VM %s", t->vm_name);
	return rc;
}

void bg_session_disconnect(bg_session_conn *c)
{
	if (!c)
		return;
	banger_ssh_close(c->ssh);
	c->ssh = NULL;
}

/* ---- the helper in the guest ---- */

/* The shell prefix that finds the helper: this build's exact helper,
 * else one of the same protocol that the image carries, else exit
 * BG_SH_NO_HELPER. */
static char *helper_prefix(const bg_session_target *t, const char *guest_name)
{
	char *dir = bg_shell_quote(t->helper_dir);
	if (!dir)
		return NULL;
	char *s;
	if (guest_name)
		s = bg_sprintf("d=%s; h=\"$d\"/%s; [ -x \"$h\" ] || h=\"$d\"/" BG_SESSION_PROTO_NAME "; "
			       "[ -x \"$h\" ] || { echo '" BG_SH_NOT_INSTALLED "' >&2; exit %d; }; exec \"$h\"",
			       dir, guest_name, BG_SH_NO_HELPER);
	else
		s = bg_sprintf("h=%s/" BG_SESSION_PROTO_NAME "; "
			       "[ -x \"$h\" ] || { echo '" BG_SH_NOT_INSTALLED "' >&2; exit %d; }; exec \"$h\"",
			       dir, BG_SH_NO_HELPER);
	bg_free(dir);
	return s;
}

static int upload_helper(bg_session_conn *c, const char *local, const char *guest_name)
{
	const bg_session_target *t = c->t;
	char *dir = bg_shell_quote(t->helper_dir);
	char *mk = dir ? bg_sprintf("umask 022 && mkdir -p %s", dir) : NULL;
	char *remote = bg_path_join(t->helper_dir, guest_name);
	bg_free(dir);
	int rc = 0;
	banger_ssh_result *r = NULL;
	if (!mk || !remote)
		rc = bg_error_oom();
	if (!rc && (rc = banger_ssh_exec(&r, c->ssh, mk, NULL)) == 0 && banger_ssh_result_exit_code(r) != 0)
		rc = bg_session_helper_error(BANGER_EIO, r, "create the helper directory", NULL);
	banger_ssh_result_free(r);
	if (!rc) {
		bg_info(c->ctx, "session: uploading %s to %s:%s", local, t->vm_name, remote);
		banger_ssh_upload_options uo = BANGER_SSH_UPLOAD_OPTIONS_INIT;
		uo.mode = 0755;
		uo.timeout_ms = 120000;
		rc = banger_ssh_upload(c->ssh, local, remote, &uo);
		if (rc)
			bg_error_prefix("upload the session helper to %s", t->vm_name);
	}
	bg_free(mk);
	bg_free(remote);
	return rc;
}

static bool no_helper(const banger_ssh_result *r)
{
	const char *err = banger_ssh_result_stderr(r, NULL);
	return banger_ssh_result_exit_code(r) == BG_SH_NO_HELPER && strstr(err, BG_SH_NOT_INSTALLED);
}

int bg_session_helper_exec(banger_ssh_result **out, bg_session_conn *c, const char *verb,
			   const char *const *args, size_t nargs, const banger_ssh_exec_options *eo)
{
	*out = NULL;
	char *local = NULL, *guest_name = NULL;
	int lrc = bg_session_local_helper(&local, &guest_name);
	if (lrc == BANGER_ENOMEM)
		return lrc;
	if (lrc)
		banger_error_clear(); /* only matters if the guest has none either */
	bg_buf cmd = BG_BUF_INIT;
	char *prefix = helper_prefix(c->t, guest_name);
	if (prefix)
		bg_buf_printf(&cmd, "%s %s", prefix, verb);
	bg_free(prefix);
	for (size_t i = 0; i < nargs; i++) {
		char *q = bg_shell_quote(args[i]);
		if (!q) {
			cmd.oom = true;
			break;
		}
		bg_buf_printf(&cmd, " %s", q);
		bg_free(q);
	}
	/* The helper answers in a few lines; the guest decides what it really
	 * sends, so what is collected of it is bounded well below the
	 * library's general default. */
	banger_ssh_exec_options bounded = BANGER_SSH_EXEC_OPTIONS_INIT;
	if (eo && eo->version == BANGER_SSH_EXEC_OPTIONS_VERSION)
		bounded = *eo;
	if (!bounded.output_cb && (!bounded.max_output || bounded.max_output > BG_SESSION_HELPER_MAX_OUTPUT))
		bounded.max_output = BG_SESSION_HELPER_MAX_OUTPUT;
	int rc = 0;
	if (eo && eo->version != BANGER_SSH_EXEC_OPTIONS_VERSION)
		rc = bg_error(BANGER_EINVALID, "unsupported banger_ssh_exec_options version %u", eo->version);
	if (!rc && (!prefix || cmd.oom))
		rc = bg_error_oom();
	for (int attempt = 0; !rc; attempt++) {
		banger_ssh_result *r = NULL;
		if ((rc = banger_ssh_exec(&r, c->ssh, cmd.data, &bounded)))
			break;
		if (!no_helper(r) || attempt > 0) {
			if (no_helper(r))
				rc = bg_error(BANGER_EIO, "the session helper is still missing in %s after uploading it",
					      c->t->vm_name);
			if (rc)
				banger_ssh_result_free(r);
			else
				*out = r;
			break;
		}
		banger_ssh_result_free(r);
		if (!local) {
			rc = bg_error(BANGER_ENOTFOUND,
				      "VM %s has no session helper and none was found on this host to upload: %s",
				      c->t->vm_name, "set BANGER_SESSION_HELPER to the banger-session program");
			break;
		}
		if ((rc = upload_helper(c, local, guest_name)))
			break;
		c->helper_checked = true;
	}
	bg_buf_free(&cmd);
	bg_free(local);
	bg_free(guest_name);
	return rc;
}

int bg_session_ensure_helper(bg_session_conn *c)
{
	if (c->helper_checked)
		return 0;
	banger_ssh_result *r = NULL;
	int rc = bg_session_helper_exec(&r, c, "version", NULL, 0, NULL);
	if (rc)
		return rc;
	const char *outs = banger_ssh_result_stdout(r, NULL);
	char want[64];
	snprintf(want, sizeof(want), BG_SH_VERSION_FORMAT, SP_VERSION);
	if (banger_ssh_result_exit_code(r) != 0 || strncmp(outs, want, strlen(want)) != 0)
		rc = bg_error(BANGER_EUNSUPPORTED, "the session helper in %s does not speak protocol %u (it said: %.80s)",
			      c->t->vm_name, SP_VERSION, outs);
	else
		c->helper_checked = true;
	banger_ssh_result_free(r);
	return rc;
}

int bg_session_helper_error(int code, const banger_ssh_result *r, const char *what, const char *id)
{
	static const char prefix[] = BG_SH_ERROR_PREFIX;
	/* The prefix is only looked for in a real stderr: with "" on that
	 * path too, gcc -O2 (12) follows the skip into the 1-byte literal and
	 * fails -Werror=array-bounds. */
	const char *p = r ? banger_ssh_result_stderr(r, NULL) : NULL;
	if (!p)
		p = "";
	else if (bg_startswith(p, prefix))
		p += sizeof(prefix) - 1;
	int len = (int)strcspn(p, "\n");
	int st = r ? banger_ssh_result_exit_code(r) : -1;
	if (id)
		return bg_error(code, "%s session %s: %.*s%s(exit %d)", what, id, len, p, len ? " " : "", (int)st);
	return bg_error(code, "%s: %.*s%s(exit %d)", what, len, p, len ? " " : "", (int)st);
}

/* ---- parsing what the helper prints ---- */

int bg_session_parse_status(const char *line, int32_t *exit_code, int32_t *exit_signal)
{
	char kind;
	int code;
	size_t len = strcspn(line, "\n");
	if (!sp_parse_status(line, len, &kind, &code))
		return 0;
	*exit_code = kind == 'e' ? code : -1;
	*exit_signal = kind == 's' ? code : 0;
	return 1;
}

int bg_session_parse_status_line(bg_session_status_line *out, const char *line, size_t len)
{
	memset(out, 0, sizeof(*out));
	char buf[256], code[24], size[32];
	if (len >= sizeof(buf))
		return 0;
	memcpy(buf, line, len);
	buf[len] = '\0';
	char extra;
	if (sscanf(buf, "%63s %15s %23s %31s %c", out->id, out->state, code, size, &extra) != 4)
		return 0;
	static const char *const states[] = { BG_SH_STATE_RUNNING, BG_SH_STATE_EXITED, BG_SH_STATE_SIGNALED,
					      BG_SH_STATE_LOST, BG_SH_STATE_MISSING };
	bool ok = false;
	for (size_t i = 0; i < BG_ARRAY_SIZE(states); i++)
		ok = ok || strcmp(out->state, states[i]) == 0;
	if (!ok)
		return 0;
	char *end;
	if (strcmp(code, "-") == 0) {
		out->code = -1;
	} else {
		long v = strtol(code, &end, 10);
		if (*end || v < 0 || v > 255)
			return 0;
		out->code = (int)v;
	}
	if (strcmp(size, "-") == 0) {
		out->log_size = -1;
	} else {
		long long v = strtoll(size, &end, 10);
		if (*end || v < 0)
			return 0;
		out->log_size = v;
	}
	if ((strcmp(out->state, BG_SH_STATE_EXITED) == 0 || strcmp(out->state, BG_SH_STATE_SIGNALED) == 0) &&
	    out->code < 0)
		return 0;
	return 1;
}

/* ---- recording ---- */

static int set_state(banger_ctx *ctx, bg_session_record *r, const char *state, int32_t code, int32_t sig)
{
	int rc = bg_store_session_set_state(&ctx->env.store, r->id, state, code, sig);
	if (rc)
		return rc;
	char *s = bg_strdup(state);
	if (!s)
		return bg_error_oom();
	bg_free(r->state);
	r->state = s;
	r->exit_code = code;
	r->exit_signal = sig;
	return 0;
}

int bg_session_record_end(banger_ctx *ctx, bg_session_record *r, int32_t exit_code, int32_t exit_signal)
{
	return set_state(ctx, r, BG_SESSION_EXITED, exit_code, exit_signal);
}

int bg_session_record_lost(banger_ctx *ctx, bg_session_record *r)
{
	if (bg_streq(r->state, BG_SESSION_LOST))
		return 0;
	bg_info(ctx, "session %s is lost", r->id);
	return set_state(ctx, r, BG_SESSION_LOST, -1, 0);
}

static bool active(const bg_session_record *r)
{
	return bg_streq(r->state, BG_SESSION_STARTING) || bg_streq(r->state, BG_SESSION_RUNNING);
}

/* Apply one status line to a record. */
static int apply_status(banger_ctx *ctx, bg_session_record *r, const bg_session_status_line *l)
{
	r->log_size = l->log_size;
	if (strcmp(l->state, BG_SH_STATE_RUNNING) == 0)
		return bg_streq(r->state, BG_SESSION_RUNNING) ? 0 : set_state(ctx, r, BG_SESSION_RUNNING, -1, 0);
	if (strcmp(l->state, BG_SH_STATE_EXITED) == 0)
		return bg_streq(r->state, BG_SESSION_EXITED) && r->exit_code == l->code ? 0
			: set_state(ctx, r, BG_SESSION_EXITED, l->code, 0);
	if (strcmp(l->state, BG_SH_STATE_SIGNALED) == 0)
		return bg_streq(r->state, BG_SESSION_EXITED) && r->exit_signal == l->code ? 0
			: set_state(ctx, r, BG_SESSION_EXITED, -1, l->code);
	if (strcmp(l->state, BG_SH_STATE_MISSING) == 0 && bg_streq(r->state, BG_SESSION_STARTING) &&
	    bg_wall_seconds() - r->created_at < STARTING_GRACE_S)
		return 0; /* its starter may be talking to the guest right now */
	if (strcmp(l->state, BG_SH_STATE_MISSING) == 0 && bg_streq(r->state, BG_SESSION_EXITED))
		return 0; /* removed in the guest; what we know stays */
	return active(r) ? bg_session_record_lost(ctx, r) : 0;
}

/* Refresh the sessions of one VM: recs[idx[0..n)]. */
static int refresh_vm(banger_ctx *ctx, bg_session_record *recs, const size_t *idx, size_t n)
{
	bg_session_target t;
	int rc = bg_session_target_for(&t, ctx, &recs[idx[0]]);
	if (rc == BANGER_ENOTFOUND) {
		banger_error_clear();
		for (size_t i = 0; i < n && !rc; i++)
			if (active(&recs[idx[i]]))
				rc = bg_session_record_lost(ctx, &recs[idx[i]]);
		return rc;
	}
	if (rc)
		return rc;
	if (t.is_vm && !t.alive) {
		for (size_t i = 0; i < n && !rc; i++)
			if (active(&recs[idx[i]]))
				rc = bg_session_record_lost(ctx, &recs[idx[i]]);
		bg_session_target_clear(&t);
		return rc;
	}
	const char **args = bg_calloc(2 * n, sizeof(*args));
	char **dirs = bg_calloc(n, sizeof(*dirs));
	bg_session_conn c = { 0 };
	banger_ssh_result *res = NULL;
	if (!args || !dirs) {
		rc = bg_error_oom();
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (!(dirs[i] = bg_session_dir(&t, recs[idx[i]].id))) {
			rc = bg_error_oom();
			goto out;
		}
		args[2 * i] = "--dir";
		args[2 * i + 1] = dirs[i];
	}
	if (!(rc = bg_session_connect(&c, ctx, &t)) &&
	    !(rc = bg_session_helper_exec(&res, &c, "status", args, 2 * n, NULL)) &&
	    banger_ssh_result_exit_code(res) != 0)
		rc = bg_session_helper_error(BANGER_EIO, res, "ask about sessions", NULL);
	if (rc) {
		/* Unreachable now: what we knew stays. */
		if (rc != BANGER_ENOMEM) {
			const banger_error *e = banger_error_last();
			bg_warn(ctx, "cannot refresh the sessions of VM %s: %s", t.vm_name, e ? e->message : "?");
			banger_error_clear();
			rc = 0;
		}
		goto out;
	}
	size_t len;
	const char *text = banger_ssh_result_stdout(res, &len);
	for (const char *p = text; p < text + len && !rc;) {
		size_t l = strcspn(p, "\n");
		bg_session_status_line sl;
		if (bg_session_parse_status_line(&sl, p, l)) {
			for (size_t i = 0; i < n; i++)
				if (strcmp(recs[idx[i]].id, sl.id) == 0)
					rc = apply_status(ctx, &recs[idx[i]], &sl);
		} else if (l) {
			bg_warn(ctx, "session helper in %s: unexpected status line '%.*s'", t.vm_name, (int)l, p);
		}
		p += l + (p[l] == '\n');
	}
out:
	banger_ssh_result_free(res);
	bg_session_disconnect(&c);
	if (dirs)
		for (size_t i = 0; i < n; i++)
			bg_free(dirs[i]);
	bg_free(dirs);
	bg_free(args);
	bg_session_target_clear(&t);
	return rc;
}

int bg_session_refresh(banger_ctx *ctx, bg_session_record *recs, size_t n, bool every_state)
{
	size_t *idx = n ? bg_calloc(n, sizeof(*idx)) : NULL;
	bool *done = n ? bg_calloc(n, sizeof(*done)) : NULL;
	int rc = 0;
	if (n && (!idx || !done)) {
		bg_free(idx);
		bg_free(done);
		return bg_error_oom();
	}
	for (size_t i = 0; i < n && !rc; i++) {
		if (done[i] || (!every_state && !active(&recs[i])) || bg_streq(recs[i].state, BG_SESSION_LOST))
			continue;
		size_t k = 0;
		for (size_t j = i; j < n; j++) {
			if (!done[j] && strcmp(recs[j].vm_id, recs[i].vm_id) == 0 &&
			    (every_state || active(&recs[j])) && !bg_streq(recs[j].state, BG_SESSION_LOST)) {
				idx[k++] = j;
				done[j] = true;
			}
		}
		rc = refresh_vm(ctx, recs, idx, k);
	}
	bg_free(idx);
	bg_free(done);
	return rc;
}
