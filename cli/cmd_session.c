/* banger session ...: long-running commands in a VM that survive
 * disconnects, with logs, attach, stop and wait. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* ---- signals by name ---- */
static const struct {
	const char *name;
	int sig;
} sigs[] = { { "HUP", SIGHUP },   { "INT", SIGINT },   { "QUIT", SIGQUIT }, { "ABRT", SIGABRT },
	     { "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV }, { "USR2", SIGUSR2 },
	     { "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "CONT", SIGCONT },
	     { "STOP", SIGSTOP }, { "WINCH", SIGWINCH } };

static int signal_number(const char *s)
{
	if (!s || !*s)
		return -1;
	if (*s >= '0' && *s <= '9') {
		char *end;
		long v = strtol(s, &end, 10);
		return *end || v <= 0 || v > 64 ? -1 : (int)v;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (strcasecmp(s, sigs[i].name) == 0)
			return sigs[i].sig;
	return -1;
}

static void signal_name(char *buf, size_t len, int sig)
{
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigs[i].sig == sig) {
			snprintf(buf, len, "SIG%s", sigs[i].name);
			return;
		}
	snprintf(buf, len, "signal %d", sig);
}

/* "running", "exited(3)", "exited(SIGTERM)", "lost" */
static void state_text(char *buf, size_t len, const banger_session *s)
{
	int st = banger_session_state(s);
	if (st == BANGER_SESSION_STATE_EXITED) {
		char sig[32];
		if (banger_session_exit_signal(s) > 0) {
			signal_name(sig, sizeof(sig), banger_session_exit_signal(s));
			snprintf(buf, len, "exited(%s)", sig);
		} else {
			snprintf(buf, len, "exited(%d)", (int)banger_session_exit_code(s));
		}
	} else {
		snprintf(buf, len, "%s", banger_session_state_name(st));
	}
}

static void session_json(FILE *f, const banger_session *s)
{
	fprintf(f, "{\"id\": ");
	json_str(f, banger_session_id(s));
	fprintf(f, ", \"name\": ");
	json_str(f, banger_session_name(s));
	fprintf(f, ", \"vm_id\": ");
	json_str(f, banger_session_vm_id(s));
	fprintf(f, ", \"vm\": ");
	json_str(f, banger_session_vm_name(s));
	fprintf(f, ", \"command\": ");
	json_str(f, banger_session_command(s));
	fprintf(f, ", \"state\": ");
	json_str(f, banger_session_state_name(banger_session_state(s)));
	fprintf(f, ", \"exit_code\": ");
	if (banger_session_exit_code(s) >= 0)
		fprintf(f, "%d", (int)banger_session_exit_code(s));
	else
		fprintf(f, "null");
	fprintf(f, ", \"exit_signal\": ");
	if (banger_session_exit_signal(s) > 0)
		fprintf(f, "%d", (int)banger_session_exit_signal(s));
	else
		fprintf(f, "null");
	fprintf(f, ", \"tty\": %s, \"created_at\": %lld", banger_session_tty(s) ? "true" : "false",
		(long long)banger_session_created_at(s));
	if (banger_session_log_size(s) >= 0)
		fprintf(f, ", \"log_size\": %lld", (long long)banger_session_log_size(s));
	fprintf(f, "}");
}

static int parse_seconds_ms(const char *what, const char *s, uint32_t *out)
{
	char *end;
	errno = 0;
	double v = s ? strtod(s, &end) : -1;
	if (!s || !*s || *end || errno || v < 0 || v > 4000000) {
		fprintf(stderr, "banger: invalid %s '%s' (seconds)\n", what, s ? s : "");
		return EXIT_USAGE;
	}
	*out = (uint32_t)(v * 1000 + 0.5);
	return 0;
}

/* ---- start ---- */
static struct {
	const char *name, *cwd;
	cli_list env;
	bool tty;
} st_o;
static const cli_opt start_opts[] = {
	{ "name", 'n', OPT_STRING, &st_o.name, "a name for the session (unique in the VM)", "NAME" },
	{ "cwd", 0, OPT_STRING, &st_o.cwd, "working directory in the guest (default: the user's home)", "DIR" },
	{ "env", 'e', OPT_LIST, &st_o.env, "set an environment variable (repeatable)", "K=V" },
	{ "tty", 't', OPT_FLAG, &st_o.tty, "give the command a pseudo-terminal (interactive programs)", NULL },
	{ 0 },
};

static int session_start(cli_env *env, const cli_call *call)
{
	const char *vm = call->pos[0];
	banger_ctx *ctx = call->ctx;
	char **rest = call->rest;
	int nrest = call->nrest, rc;
	/* With a terminal: the caller's terminal type and size to begin with. */
	const char **envs = calloc((size_t)st_o.env.count + 2, sizeof(*envs));
	char term[256] = "";
	size_t nenv = 0;
	bool has_term = false;
	for (int i = 0; envs && i < st_o.env.count; i++) {
		envs[nenv++] = st_o.env.items[i];
		has_term = has_term || strncmp(st_o.env.items[i], "TERM=", 5) == 0;
	}
	const char *term_env = getenv("TERM");
	if (envs && st_o.tty && !has_term && term_env && *term_env) {
		snprintf(term, sizeof(term), "TERM=%s", term_env);
		envs[nenv++] = term;
	}
	banger_session_start_options o;
	banger_session_start_options_init(&o, BANGER_SESSION_START_OPTIONS_VERSION);
	o.name = st_o.name;
	o.cwd = st_o.cwd;
	o.env = envs;
	o.env_count = nenv;
	o.tty = st_o.tty;
	struct winsize ws;
	if (st_o.tty && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
		o.rows = ws.ws_row;
		o.cols = ws.ws_col;
	}
	char *id = NULL;
	rc = envs ? banger_session_start(&id, ctx, vm, (const char *const *)rest, (size_t)nrest, &o) : BANGER_ENOMEM;
	free(envs);
	if (rc)
		return cli_fail("session start", rc);
	printf("%s\n", id);
	fflush(stdout);
	banger_free(id);
	return EXIT_OK;
}

/* ---- list, show ---- */
static bool list_json, no_refresh;
static const cli_opt list_opts[] = {
	{ "json", 0, OPT_FLAG, &list_json, "print JSON", NULL },
	{ "no-refresh", 0, OPT_FLAG, &no_refresh, "show the last recorded state without asking the guests", NULL },
	{ 0 },
};

static void age(char *buf, size_t len, int64_t t)
{
	long long d = (long long)time(NULL) - t;
	if (d < 0)
		d = 0;
	char dur[32];
	fmt_duration(dur, sizeof(dur), d);
	snprintf(buf, len, "%s ago", dur);
}

static int session_list(cli_env *env, const cli_call *call)
{
	const char *vm = call->npos ? call->pos[0] : NULL;
	banger_ctx *ctx = call->ctx;
	int rc;
	banger_session_list *l;
	if ((rc = banger_session_list_all(&l, ctx, vm, no_refresh ? 0 : BANGER_SESSION_REFRESH)))
		return cli_fail("session list", rc);
	size_t n = banger_session_list_count(l);
	if (list_json) {
		printf("[");
		for (size_t i = 0; i < n; i++) {
			printf("%s\n  ", i ? "," : "");
			session_json(stdout, banger_session_list_get(l, i));
		}
		printf("%s]\n", n ? "\n" : "");
	} else {
		cli_table *t = table_new(6);
		const char *hdr[] = { "ID", "NAME", "VM", "STATE", "STARTED", "COMMAND" };
		table_row(t, hdr);
		for (size_t i = 0; i < n; i++) {
			const banger_session *s = banger_session_list_get(l, i);
			char state[48], started[48], cmd[64];
			state_text(state, sizeof(state), s);
			age(started, sizeof(started), banger_session_created_at(s));
			const char *c = banger_session_command(s);
			snprintf(cmd, sizeof(cmd), "%.56s%s", c, strlen(c) > 56 ? "..." : "");
			const char *row[] = { banger_session_id(s),
					      banger_session_name(s) ? banger_session_name(s) : "-",
					      banger_session_vm_name(s) ? banger_session_vm_name(s) : banger_session_vm_id(s),
					      state, started, cmd };
			table_row(t, row);
		}
		table_print(t, stdout);
		table_free(t);
	}
	banger_session_list_free(l);
	return EXIT_OK;
}

static bool show_json;
static const cli_opt show_opts[] = {
	{ "json", 0, OPT_FLAG, &show_json, "print JSON", NULL },
	{ "no-refresh", 0, OPT_FLAG, &no_refresh, "show the last recorded state without asking the guest", NULL },
	{ 0 },
};

static int session_show(cli_env *env, const cli_call *call)
{
	const char *id = call->pos[0];
	banger_ctx *ctx = call->ctx;
	int rc;
	banger_session *s;
	if ((rc = banger_session_lookup(&s, ctx, id, no_refresh ? 0 : BANGER_SESSION_REFRESH)))
		return cli_fail(id, rc);
	if (show_json) {
		session_json(stdout, s);
		printf("\n");
	} else {
		char state[48], started[48], created[64];
		state_text(state, sizeof(state), s);
		age(started, sizeof(started), banger_session_created_at(s));
		time_t c = (time_t)banger_session_created_at(s);
		struct tm tm;
		strftime(created, sizeof(created), "%Y-%m-%d %H:%M:%S", localtime_r(&c, &tm));
		printf("id:        %s\nname:      %s\nvm:        %s (%s)\nstate:     %s\ncommand:   %s\n"
		       "tty:       %s\nstarted:   %s (%s)\n",
		       banger_session_id(s), banger_session_name(s) ? banger_session_name(s) : "-",
		       banger_session_vm_name(s) ? banger_session_vm_name(s) : "(deleted)", banger_session_vm_id(s),
		       state, vis(banger_session_command(s)), banger_session_tty(s) ? "yes" : "no", created, started);
		if (banger_session_log_size(s) >= 0)
			printf("output:    %lld bytes\n", (long long)banger_session_log_size(s));
	}
	banger_session_free(s);
	return EXIT_OK;
}

/* ---- logs ---- */
static bool logs_follow, logs_raw;
static const char *logs_from;
static const cli_opt logs_opts[] = {
	{ "follow", 'f', OPT_FLAG, &logs_follow, "keep streaming until the session ends (reconnects resume)", NULL },
	{ "raw", 0, OPT_FLAG, &logs_raw, "escape sequences unchanged even to a terminal", NULL },
	{ "from", 0, OPT_STRING, &logs_from, "start at this byte offset of the output", "OFFSET" },
	{ 0 },
};

static int write_fd(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Where session output goes.  To a terminal it is made visible (the
 * guest wrote it) unless --raw; into a pipe or a file it is the user's
 * data and passes unchanged. */
typedef struct {
	bool visible;
	char carry[4];
	size_t ncarry;
} output_sink;

static int print_output(const char *data, size_t len, uint64_t offset, void *payload)
{
	(void)offset;
	output_sink *o = payload;
	if (o && o->visible) {
		int rc = write_visible(stdout, data, len, o->carry, &o->ncarry);
		return rc ? rc : fflush(stdout) ? BANGER_EIO : 0;
	}
	return write_fd(STDOUT_FILENO, data, len) ? BANGER_EIO : 0;
}

static uint64_t logs_from_offset;

static int logs_check(const cli_call *call)
{
	if (logs_from) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(logs_from, &end, 10);
		if (!*logs_from || *end || errno || logs_from[0] == '-') {
			fprintf(stderr, "banger session logs: invalid offset '%s'\n", logs_from);
			return EXIT_USAGE;
		}
		logs_from_offset = v;
	}
	return 0;
}

static int session_logs(cli_env *env, const cli_call *call)
{
	const char *id = call->pos[0];
	const uint64_t from = logs_from_offset;
	int rc;
	uint64_t next = from;
	output_sink sink = { .visible = !logs_raw && isatty(STDOUT_FILENO) };
	banger_session_logs_options o;
	banger_session_logs_options_init(&o, BANGER_SESSION_LOGS_OPTIONS_VERSION);
	o.from = from;
	o.flags = logs_follow ? BANGER_SESSION_LOGS_FOLLOW : 0;
	o.output_cb = print_output;
	o.output_payload = &sink;
	rc = banger_session_logs(&next, call->ctx, id, &o);
	if (sink.visible) { /* the held-back tail belongs before "next" */
		(void)write_visible(stdout, NULL, 0, sink.carry, &sink.ncarry);
		fflush(stdout);
	}
	if (rc) {
		int code = cli_fail("session logs", rc);
		if (next > 0)
			fprintf(stderr, "banger: resume with: banger session logs %s --from %llu%s\n", id,
				(unsigned long long)next, logs_follow ? " --follow" : "");
		return code;
	}
	return EXIT_OK;
}

/* ---- attach ---- */
static const char *attach_from;
static const cli_opt attach_opts[] = {
	{ "from", 0, OPT_STRING, &attach_from, "first replay the output from this byte offset", "OFFSET" },
	{ 0 },
};

/* Ctrl-] then 'd' */
static const char detach_keys[] = { 0x1d, 'd' };

static struct termios saved_tio;
static bool raw_on;
static int winch_pipe[2] = { -1, -1 };

static void restore_terminal(void)
{
	if (raw_on) {
		tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_tio);
		raw_on = false;
	}
}

static void on_winch(int sig)
{
	(void)sig;
	int e = errno;
	if (write(winch_pipe[1], "w", 1) < 0) {
		/* full: a resize is already pending */
	}
	errno = e;
}

static void on_fatal(int sig)
{
	if (raw_on)
		tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_tio);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int term_size(uint16_t *rows, uint16_t *cols, void *payload)
{
	(void)payload;
	struct winsize ws;
	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) != 0 && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0)
		return -1;
	*rows = ws.ws_row;
	*cols = ws.ws_col;
	return 0;
}

static int64_t attach_from_offset = -1;

static int attach_check(const cli_call *call)
{
	if (attach_from) {
		char *end;
		errno = 0;
		long long v = strtoll(attach_from, &end, 10);
		if (!*attach_from || *end || errno || v < 0) {
			fprintf(stderr, "banger session attach: invalid offset '%s'\n", attach_from);
			return EXIT_USAGE;
		}
		attach_from_offset = v;
	}
	return 0;
}

static int session_attach(cli_env *env, const cli_call *call)
{
	const char *id = call->pos[0];
	banger_ctx *ctx = call->ctx;
	int rc;
	bool tty = isatty(STDIN_FILENO);
	if (pipe2(winch_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		perror("banger session attach: pipe");
		return EXIT_FAILURE_;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_winch;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGWINCH, &sa, NULL);
	if (tty && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		signal(SIGTERM, on_fatal);
		signal(SIGHUP, on_fatal);
		struct termios raw = saved_tio;
		cfmakeraw(&raw);
		if (tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) == 0)
			raw_on = true;
		atexit(restore_terminal);
		fprintf(stderr, "[attached to session %s; detach with Ctrl-] d]\r\n", id);
	}
	banger_session_attach_options o;
	banger_session_attach_options_init(&o, BANGER_SESSION_ATTACH_OPTIONS_VERSION);
	o.in_fd = STDIN_FILENO;
	o.out_fd = STDOUT_FILENO;
	o.detach_keys = detach_keys;
	o.detach_keys_len = sizeof(detach_keys);
	o.resize_fd = winch_pipe[0];
	o.size_cb = term_size;
	o.replay_from = attach_from_offset;
	int why = 0;
	rc = banger_session_attach(&why, ctx, id, &o);
	restore_terminal();
	signal(SIGWINCH, SIG_DFL);
	if (rc)
		return cli_fail("session attach", rc);
	if (why == BANGER_SESSION_DETACHED) {
		fprintf(stderr, "%s[detached from session %s]\n", tty ? "\r\n" : "", id);
		return EXIT_OK;
	}
	if (why == BANGER_SESSION_ENDED) {
		banger_session *s;
		if (banger_session_lookup(&s, ctx, id, 0) == 0) {
			char state[48];
			state_text(state, sizeof(state), s);
			fprintf(stderr, "%s[session %s %s]\n", tty ? "\r\n" : "", id, state);
			banger_exit_status st = { banger_session_exit_code(s), banger_session_exit_signal(s) };
			banger_session_free(s);
			return cli_exit_status(st);
		}
	}
	return EXIT_OK;
}

/* ---- stop, wait, rm ---- */
static const char *stop_signal, *stop_timeout;
static const cli_opt stop_opts[] = {
	{ "signal", 's', OPT_STRING, &stop_signal, "signal to send first (default TERM)", "SIG" },
	{ "timeout", 't', OPT_STRING, &stop_timeout, "seconds to wait before SIGKILL (default 10)", "SECS" },
	{ 0 },
};

static int stop_sig;
static uint32_t stop_timeout_ms;

static int stop_check(const cli_call *call)
{
	stop_sig = stop_signal ? signal_number(stop_signal) : SIGTERM;
	if (stop_sig < 0) {
		fprintf(stderr, "banger session stop: unknown signal '%s'\n", stop_signal);
		return EXIT_USAGE;
	}
	stop_timeout_ms = 10000;
	if (stop_timeout && parse_seconds_ms("timeout", stop_timeout, &stop_timeout_ms))
		return EXIT_USAGE;
	if (stop_timeout_ms == 0)
		stop_timeout_ms = 1;
	return 0;
}

static int session_stop(cli_env *env, const cli_call *call)
{
	const char *id = call->pos[0];
	banger_ctx *ctx = call->ctx;
	int rc;
	int escalated = 0;
	banger_session_stop_options so = BANGER_SESSION_STOP_OPTIONS_INIT;
	so.signal = stop_sig;
	so.timeout_ms = stop_timeout_ms;
	if ((rc = banger_session_stop(&escalated, ctx, id, &so)))
		return cli_fail("session stop", rc);
	banger_session *s;
	if (banger_session_lookup(&s, ctx, id, 0) == 0) {
		char state[48];
		state_text(state, sizeof(state), s);
		printf("%s %s%s\n", banger_session_id(s), state, escalated ? " (SIGKILL after the timeout)" : "");
		banger_session_free(s);
	}
	return EXIT_OK;
}

static const char *wait_timeout;
static const cli_opt wait_opts[] = {
	{ "timeout", 't', OPT_STRING, &wait_timeout, "give up after this many seconds (exit 7)", "SECS" },
	{ 0 },
};

static uint32_t wait_timeout_ms;

static int wait_check(const cli_call *call)
{
	if (wait_timeout && parse_seconds_ms("timeout", wait_timeout, &wait_timeout_ms))
		return EXIT_USAGE;
	return 0;
}

static int session_wait(cli_env *env, const cli_call *call)
{
	const char *id = call->pos[0];
	int rc;
	banger_exit_status status;
	banger_session_wait_options wo = BANGER_SESSION_WAIT_OPTIONS_INIT;
	wo.timeout_ms = wait_timeout_ms;
	if ((rc = banger_session_wait(&status, call->ctx, id, &wo)))
		return cli_fail("session wait", rc);
	return cli_exit_status(status);
}

static bool rm_force;
static const cli_opt rm_opts[] = {
	{ "force", 'f', OPT_FLAG, &rm_force, "kill a running session first", NULL },
	{ 0 },
};

static int session_rm(cli_env *env, const cli_call *call)
{
	const char *const *pos = call->pos;
	int npos = call->npos, rc;
	banger_ctx *ctx = call->ctx;
	int code = EXIT_OK;
	banger_session_remove_options o;
	banger_session_remove_options_init(&o, BANGER_SESSION_REMOVE_OPTIONS_VERSION);
	o.force = rm_force;
	for (int i = 0; i < npos; i++) {
		if ((rc = banger_session_remove(ctx, pos[i], &o)))
			code = cli_fail(pos[i], rc);
	}
	return code;
}

#define SESSION_ID { "ID", ARG_ONE, "the session's id or name" }

static const cli_arg start_args[] = { { "VM", ARG_ONE, "the VM's name or id" },
				      { "CMD", ARG_REST, "the command and its arguments" }, { 0 } };
static const cli_arg list_args[] = { { "VM", ARG_OPTIONAL, "only this VM's sessions" }, { 0 } };
static const cli_arg id_arg[] = { SESSION_ID, { 0 } };
static const cli_arg rm_args[] = { { "ID", ARG_SOME, "ids or names of sessions" }, { 0 } };

static const cli_cmd session_subs[] = {
	{ "start", "start a command in a VM that outlives this connection; prints its id", start_opts, start_args,
	  CLI_CTX, session_start, NULL, NULL },
	{ "list", "list sessions (id, name, VM, state, start time, command)", list_opts, list_args, CLI_CTX,
	  session_list, NULL, NULL },
	{ "show", "show one session", show_opts, id_arg, CLI_CTX, session_show, NULL, NULL },
	{ "logs", "print a session's output (from a byte offset; --follow resumes after drops)", logs_opts, id_arg,
	  CLI_CTX, session_logs, NULL, logs_check },
	{ "attach", "attach this terminal to a session (detach: Ctrl-] then d)", attach_opts, id_arg, CLI_CTX,
	  session_attach, NULL, attach_check },
	{ "stop", "stop a session: a signal (TERM), then KILL after the timeout", stop_opts, id_arg, CLI_CTX,
	  session_stop, NULL, stop_check },
	{ "wait", "wait for a session to end; exits with its status", wait_opts, id_arg, CLI_CTX, session_wait, NULL,
	  wait_check },
	{ "rm", "forget ended sessions and delete their output in the guest", rm_opts, rm_args, CLI_CTX, session_rm,
	  NULL, NULL },
	{ 0 },
};

const cli_cmd cli_session_cmd = { "session", "long-running commands in VMs: start, attach, logs, stop, wait", NULL,
				  NULL, 0, NULL, session_subs, NULL };
