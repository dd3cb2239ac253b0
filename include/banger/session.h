/*
 * libbanger — guest sessions: long-running commands in a VM that outlive
 * the SSH connection and the process that started them.
 *
 * A session runs under banger-session, a small static helper in the guest
 * (uploaded over SSH on first use unless the image carries it), with its
 * own pseudo-terminal or pipes.  Every byte of its output is appended to a
 * log in the guest, so an offset into the output is a byte offset into
 * that log: `logs` resumes from any offset without loss or duplication.
 * The host keeps durable facts only (id, VM, name, command, created, the
 * last state seen and the exit status); what runs now is asked of the
 * guest, over SSH with the VM's pinned host key.
 *
 * States: starting (being started), running, exited (see
 * banger_session_exit_code / banger_session_exit_signal), lost (the VM
 * was stopped or deleted, or the guest lost track of it).
 */
#ifndef BANGER_SESSION_H
#define BANGER_SESSION_H

#include "common.h"
#include "context.h"

BANGER_BEGIN_DECL

/* A session's state as last seen.  (The type has the _t suffix because
 * its plain name is the accessor's.) */
typedef enum {
	/* A state this library does not know: a newer library wrote it.
	 * Treat any value not listed here as this one. */
	BANGER_SESSION_STATE_UNKNOWN = 0,
	BANGER_SESSION_STATE_STARTING = 1,
	BANGER_SESSION_STATE_RUNNING = 2,
	BANGER_SESSION_STATE_EXITED = 3,
	BANGER_SESSION_STATE_LOST = 4
} banger_session_state_t;

/* The state's name as the CLI prints it ("running"); "unknown" for
 * BANGER_SESSION_STATE_UNKNOWN and any value not listed.  Static, never
 * NULL. */
BANGER_EXTERN(const char *) banger_session_state_name(int state);

/* A snapshot of one session.  Opaque; read with accessors.  Strings live
 * as long as the object. */
typedef struct banger_session banger_session;
typedef struct banger_session_list banger_session_list;

#define BANGER_SESSION_START_OPTIONS_VERSION 1

typedef struct {
	unsigned int version;    /* BANGER_SESSION_START_OPTIONS_VERSION */
	const char *name;        /* NULL: none; unique among the VM's sessions */
	const char *cwd;         /* working directory; NULL: the guest user's home */
	const char *const *env;  /* "KEY=VALUE" entries added to the environment */
	size_t env_count;
	int tty;                 /* give the command its own pseudo-terminal */
	uint16_t rows, cols;     /* its initial size; 0: 24 x 80 */
} banger_session_start_options;

#define BANGER_SESSION_START_OPTIONS_INIT { BANGER_SESSION_START_OPTIONS_VERSION, NULL, NULL, NULL, 0, 0, 0, 0 }

BANGER_EXTERN(int) banger_session_start_options_init(banger_session_start_options *opts, unsigned int version);

/* Start argv (argc words, run directly, not through a shell: pass
 * "sh", "-c", "..." for one) in the running VM vm (name or id), detached.
 * Returns once the command runs; *out gets the session id (banger_free).
 * A command that cannot be started (not found, bad cwd) is an error and
 * leaves no session behind. */
BANGER_EXTERN(int) banger_session_start(char **out, banger_ctx *ctx, const char *vm,
					const char *const *argv, size_t argc,
					const banger_session_start_options *opts);

/* Ask the guests what runs now and record it (list and lookup), instead
 * of reporting the last state banger saw.  Sessions of VMs that are not
 * running become "lost" without a connection. */
#define BANGER_SESSION_REFRESH (1u << 0)

/* Sessions of one VM (name or id) or, with vm NULL, of every VM, oldest
 * first. */
BANGER_EXTERN(int) banger_session_list_all(banger_session_list **out, banger_ctx *ctx, const char *vm,
					   uint32_t flags);
BANGER_EXTERN(size_t) banger_session_list_count(const banger_session_list *list);
/* Borrowed, valid until the list is freed; NULL past the end. */
BANGER_EXTERN(const banger_session *) banger_session_list_get(const banger_session_list *list, size_t i);
BANGER_EXTERN(void) banger_session_list_free(banger_session_list *list);

/* By id, name, or a unique id prefix (at least 4 characters). */
BANGER_EXTERN(int) banger_session_lookup(banger_session **out, banger_ctx *ctx, const char *id_or_name,
					 uint32_t flags);
BANGER_EXTERN(void) banger_session_free(banger_session *session);

BANGER_EXTERN(const char *) banger_session_id(const banger_session *session);
BANGER_EXTERN(const char *) banger_session_name(const banger_session *session);    /* NULL if none */
BANGER_EXTERN(const char *) banger_session_vm_id(const banger_session *session);
BANGER_EXTERN(const char *) banger_session_vm_name(const banger_session *session); /* NULL once the VM is gone */
/* The command as shell words ('a b' c). */
BANGER_EXTERN(const char *) banger_session_command(const banger_session *session);
/* A banger_session_state_t. */
BANGER_EXTERN(int) banger_session_state(const banger_session *session);
/* How the command ended, as banger_exit_status (common.h) says: the exit
 * code 0..255, else -1; the number of the signal that killed it, else 0.
 * Both are -1/0 while it runs and once it is lost. */
BANGER_EXTERN(int32_t) banger_session_exit_code(const banger_session *session);
BANGER_EXTERN(int32_t) banger_session_exit_signal(const banger_session *session);
BANGER_EXTERN(int) banger_session_tty(const banger_session *session);
BANGER_EXTERN(int64_t) banger_session_created_at(const banger_session *session); /* unix seconds */
/* Bytes of output so far when the record was just refreshed, else -1. */
BANGER_EXTERN(int64_t) banger_session_log_size(const banger_session *session);

/* ---- output ---- */

/* A piece of output: len bytes that start at byte offset in the log.
 * A non-zero return stops the stream and is returned. */
typedef int (*banger_session_output_cb)(const char *data, size_t len, uint64_t offset, void *payload);

/* Keep streaming until the session has ended and all of its output was
 * delivered, reconnecting after a dropped connection. */
#define BANGER_SESSION_LOGS_FOLLOW (1u << 0)

#define BANGER_SESSION_LOGS_OPTIONS_VERSION 1

typedef struct {
	unsigned int version;               /* BANGER_SESSION_LOGS_OPTIONS_VERSION */
	uint64_t from;                      /* the byte offset to start at; 0: the beginning */
	uint32_t flags;                     /* BANGER_SESSION_LOGS_* */
	banger_session_output_cb output_cb; /* NULL: the output is counted, not delivered */
	void *output_payload;
} banger_session_logs_options;

#define BANGER_SESSION_LOGS_OPTIONS_INIT { BANGER_SESSION_LOGS_OPTIONS_VERSION, 0, 0, NULL, NULL }

BANGER_EXTERN(int) banger_session_logs_options_init(banger_session_logs_options *opts, unsigned int version);

/* Stream the output from byte offset from.  Every byte is delivered once,
 * in order: after a dropped connection the stream resumes at the offset
 * after the last byte delivered.  *out (may be NULL) gets that offset —
 * also on failure, so a caller can resume from it later (0 when opts was
 * refused).  Without FOLLOW it returns at the end of what is there now.
 * An offset past the end is BANGER_EINVALID (without FOLLOW).  opts may
 * be NULL (from the beginning, no follow, output dropped). */
BANGER_EXTERN(int) banger_session_logs(uint64_t *out, banger_ctx *ctx, const char *id,
				       const banger_session_logs_options *opts);

/* ---- attach ---- */

/* Why banger_session_attach returned. */
typedef enum {
	BANGER_SESSION_DETACHED = 1,    /* the detach sequence was typed */
	BANGER_SESSION_ENDED = 2,       /* the session's command ended */
	BANGER_SESSION_INPUT_CLOSED = 3 /* in_fd reached end of file */
} banger_session_attach_end;

/* The terminal size, asked when attaching and whenever resize_fd is
 * readable.  Return non-zero when unknown. */
typedef int (*banger_session_size_cb)(uint16_t *rows, uint16_t *cols, void *payload);

#define BANGER_SESSION_ATTACH_OPTIONS_VERSION 1

typedef struct {
	unsigned int version;        /* BANGER_SESSION_ATTACH_OPTIONS_VERSION */
	int in_fd;                   /* read and sent to the session; -1: none */
	int out_fd;                  /* the session's output is written here (required) */
	/* Typed on in_fd, this sequence detaches (it is not sent).  NULL: no
	 * detach sequence.  The banger CLI uses Ctrl-] then 'd'. */
	const char *detach_keys;
	size_t detach_keys_len;
	/* Readable when the terminal size changed (e.g. a self-pipe a
	 * SIGWINCH handler writes to); drained by the library.  -1: none. */
	int resize_fd;
	banger_session_size_cb size_cb; /* NULL: sizes are never sent */
	void *size_payload;
	/* Replay the output from this byte offset first; -1: only output
	 * produced from now on. */
	int64_t replay_from;
} banger_session_attach_options;

#define BANGER_SESSION_ATTACH_OPTIONS_INIT { BANGER_SESSION_ATTACH_OPTIONS_VERSION, -1, -1, NULL, 0, -1, NULL, NULL, -1 }

BANGER_EXTERN(int) banger_session_attach_options_init(banger_session_attach_options *opts,
						      unsigned int version);

/* Attach to a running session: in_fd to the session, its output to
 * out_fd, the terminal size passed on; several attachers at once all see
 * the same output.  Returns 0 with *out (may be NULL) set to a
 * banger_session_attach_end.  A session that has already ended is
 * BANGER_ESTATE. */
BANGER_EXTERN(int) banger_session_attach(int *out, banger_ctx *ctx, const char *id,
					 const banger_session_attach_options *opts);

/* ---- ending ---- */

#define BANGER_SESSION_STOP_OPTIONS_VERSION 1

typedef struct {
	unsigned int version; /* BANGER_SESSION_STOP_OPTIONS_VERSION */
	int32_t signal;       /* sent first, 1..64; 0: SIGTERM */
	uint32_t timeout_ms;  /* how long the command has to end before SIGKILL; 0: 10000 */
} banger_session_stop_options;

#define BANGER_SESSION_STOP_OPTIONS_INIT { BANGER_SESSION_STOP_OPTIONS_VERSION, 0, 0 }

BANGER_EXTERN(int) banger_session_stop_options_init(banger_session_stop_options *opts, unsigned int version);

/* Send the signal to the session's process group, wait up to the timeout
 * for it to end, then send SIGKILL.  *escalated (may be NULL) gets 1 when
 * SIGKILL was needed.  Stopping an ended session does nothing.  opts may
 * be NULL (SIGTERM, 10 s). */
BANGER_EXTERN(int) banger_session_stop(int *escalated, banger_ctx *ctx, const char *id,
				       const banger_session_stop_options *opts);

#define BANGER_SESSION_WAIT_OPTIONS_VERSION 1

typedef struct {
	unsigned int version; /* BANGER_SESSION_WAIT_OPTIONS_VERSION */
	uint32_t timeout_ms;  /* give up after this long; 0: wait as long as it runs */
} banger_session_wait_options;

#define BANGER_SESSION_WAIT_OPTIONS_INIT { BANGER_SESSION_WAIT_OPTIONS_VERSION, 0 }

BANGER_EXTERN(int) banger_session_wait_options_init(banger_session_wait_options *opts, unsigned int version);

/* Wait for the session to end.  *out gets how it ended
 * (banger_exit_status, common.h).  A lost session is BANGER_ESTATE;
 * running past the timeout is BANGER_ETIMEOUT.  opts may be NULL (no
 * timeout). */
BANGER_EXTERN(int) banger_session_wait(banger_exit_status *out, banger_ctx *ctx, const char *id,
				       const banger_session_wait_options *opts);

#define BANGER_SESSION_REMOVE_OPTIONS_VERSION 1

typedef struct {
	unsigned int version; /* BANGER_SESSION_REMOVE_OPTIONS_VERSION */
	int force;            /* remove a running session too (it is killed first) */
} banger_session_remove_options;

#define BANGER_SESSION_REMOVE_OPTIONS_INIT { BANGER_SESSION_REMOVE_OPTIONS_VERSION, 0 }

BANGER_EXTERN(int) banger_session_remove_options_init(banger_session_remove_options *opts,
						      unsigned int version);

/* Forget a session and delete its log in the guest.  A running session
 * is refused (BANGER_ESTATE) unless force, which kills it first.  A lost
 * session is only forgotten (its VM is gone or was restarted).  opts may
 * be NULL (no force). */
BANGER_EXTERN(int) banger_session_remove(banger_ctx *ctx, const char *id,
					 const banger_session_remove_options *opts);

BANGER_END_DECL

#endif
