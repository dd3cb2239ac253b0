/*
 * Private declarations of the session module: commands started in guests
 * that outlive the connection (public API: include/banger/session.h).
 *
 *   controller.c  where a session's guest side is (a "target": a VM, or
 *                 for tests any SSH endpoint), the connection, the guest
 *                 helper (found on the host, uploaded on first use at a
 *                 versioned path) and running its verbs; refresh of
 *                 recorded state from the guest; the VM lifecycle hook
 *   lifecycle.c   start, list, lookup, stop, wait, remove
 *   stream.c      logs, with resumption after a dropped connection
 *   attach.c      interactive attach: the framing of guest/include/
 *                 banger-guest/session.h over the SSH channel, detach
 *                 keys, window sizes
 *
 * The guest side is guest/session/banger-session.c.
 */
#ifndef BG_SESSION_H
#define BG_SESSION_H

#include "../env/env.h"
/* The helper's contract: names, exit codes, status words, attach frames. */
#include "../../guest/include/banger-guest/session.h"

#include <banger/session.h>
#include <banger/ssh.h>

#define BG_SESSION_STARTING "starting"
#define BG_SESSION_RUNNING "running"
#define BG_SESSION_EXITED "exited"
#define BG_SESSION_LOST "lost"

/* Where a session's guest side is reached. */
typedef struct {
	char *vm_id;       /* the owner recorded with sessions */
	char *vm_name;     /* for messages */
	bool is_vm;        /* a banger VM (liveness is known without dialing) */
	bool alive;        /* is_vm: the VM runs now */
	char *host;
	uint16_t port;     /* 0: 22 */
	char *user;        /* NULL: root */
	int policy;        /* a banger_ssh_hostkey_policy */
	char *known_hosts; /* NULL: the context's */
	char *identity;    /* NULL: banger's client key */
	char *pin_names[2];
	size_t pin_count;
	char *root;        /* sessions directory in the guest */
	char *helper_dir;  /* the helper's directory in the guest */
} bg_session_target;

void bg_session_target_clear(bg_session_target *t);
int bg_session_target_copy(bg_session_target *dst, const bg_session_target *src);

/* Test seam: route sessions of the VM named t->vm_name (id t->vm_id) to
 * the endpoint in t instead of a VM (tests point it at an sshd on
 * 127.0.0.1).  Process-wide; NULL removes it.  Not exported. */
int bg_session_set_test_target(const bg_session_target *t);

/* The target of a VM (name or id).  Not running is not an error here:
 * t->alive says. */
int bg_session_target_for_vm(bg_session_target *t, banger_ctx *ctx, const char *vm);
/* The target of a recorded session (its VM may be gone: then
 * BANGER_ENOTFOUND). */
int bg_session_target_for(bg_session_target *t, banger_ctx *ctx, const bg_session_record *r);

/* The session directory in the guest (bg_free). */
char *bg_session_dir(const bg_session_target *t, const char *id);

/* An SSH connection to a target. */
typedef struct {
	banger_ctx *ctx;
	const bg_session_target *t;
	banger_ssh *ssh;
	bool helper_checked; /* uploaded or found during this connection */
} bg_session_conn;

int bg_session_connect(bg_session_conn *c, banger_ctx *ctx, const bg_session_target *t);
void bg_session_disconnect(bg_session_conn *c);

/* Run `banger-session VERB ARGS...` in the guest.  When the guest has no
 * helper it is uploaded and the command run again (so VERB must not
 * have consumed stdin by then: call bg_session_ensure_helper first for
 * commands fed from stdin).  eo may be NULL.  Without an output callback
 * the helper's answer is collected, at most BG_SESSION_HELPER_MAX_OUTPUT
 * bytes of it (a guest that sends more fails the call with BANGER_EIO). */
#define BG_SESSION_HELPER_MAX_OUTPUT (1u << 20)
int bg_session_helper_exec(banger_ssh_result **out, bg_session_conn *c, const char *verb,
			   const char *const *args, size_t nargs, const banger_ssh_exec_options *eo);
/* Make sure the helper is in the guest (runs its `version`). */
int bg_session_ensure_helper(bg_session_conn *c);
/* An error naming what the helper said on stderr (first line). */
int bg_session_helper_error(int code, const banger_ssh_result *r, const char *what, const char *id);

/* The helper on the host and the name it gets in guests:
 * "banger-session-p<proto>-<16 hex of its sha256>".  Found by the rule of
 * bg_guest_file (layout.h: $BANGER_SESSION_HELPER first).
 * BANGER_ENOTFOUND when absent. */
int bg_session_local_helper(char **path, char **guest_name);

/* Parse a status line "exit N" / "signal N": 1 when valid. */
int bg_session_parse_status(const char *line, int32_t *exit_code, int32_t *exit_signal);

/* Parse one line of `banger-session status`: "ID STATE CODE SIZE". */
typedef struct {
	char id[64];
	char state[16];   /* running, exited, signaled, lost, missing */
	int code;         /* -1 when "-" */
	int64_t log_size; /* -1 when "-" */
} bg_session_status_line;
int bg_session_parse_status_line(bg_session_status_line *out, const char *line, size_t len);

/* Ask the guests about the sessions in recs that are starting or running
 * (all of them with every_state) and record what they say; recs are
 * updated in place.  Unreachable running VMs leave their sessions as
 * they were (a warning is logged). */
int bg_session_refresh(banger_ctx *ctx, bg_session_record *recs, size_t n, bool every_state);

/* Record the final status of a session (state exited) in the store and
 * in r. */
int bg_session_record_end(banger_ctx *ctx, bg_session_record *r, int32_t exit_code, int32_t exit_signal);
/* Record a session lost. */
int bg_session_record_lost(banger_ctx *ctx, bg_session_record *r);


/* Look a session up (and with BANGER_SESSION_REFRESH ask its guest). */
int bg_session_get(bg_session_record *out, banger_ctx *ctx, const char *id_or_name, uint32_t flags);

/* The public objects (lifecycle.c): snapshots the caller owns, not the
 * store's rows, so either can change alone. */
struct banger_session {
	bg_session_record rec;
};

struct banger_session_list {
	banger_session *v;
	size_t n;
};

#endif
