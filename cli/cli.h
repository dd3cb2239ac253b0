/*
 * The banger CLI: argument parsing, output, and one file per noun.
 * Only <banger/...> headers are used: everything the CLI does is a
 * public libbanger call.
 */
#ifndef BANGER_CLI_H
#define BANGER_CLI_H

#include <stdbool.h>
#include <stdio.h>
#include <banger/banger.h>

/* Documented exit codes (see `banger --help` and the README). */
enum {
	EXIT_OK = 0,
	EXIT_FAILURE_ = 1,  /* generic failure */
	EXIT_USAGE = 2,     /* bad command line */
	EXIT_NOTFOUND = 3,  /* named object does not exist */
	EXIT_TRUST = 4,     /* host key mismatch / revoked: possible MITM */
	EXIT_UNSUPPORTED = 5, /* not available on this host */
	EXIT_BUSY = 6,      /* in use / locked / exists */
	EXIT_TIMEOUT = 7,
	EXIT_STORE = 8      /* database lost or damaged: run `banger store recover` */
};

/* ---- option parsing ---- */
typedef enum {
	OPT_FLAG,            /* --name */
	OPT_STRING,          /* --name VALUE, at most once (the last one counts) */
	OPT_LIST,            /* --name VALUE, repeatable */
	OPT_STRING_REQUIRED  /* --name VALUE, which the command cannot do without */
} cli_opt_kind;

typedef struct {
	const char *name;   /* long name without "--" */
	char short_name;    /* 0 when none */
	cli_opt_kind kind;
	void *dest;         /* bool*, const char**, or cli_list* */
	const char *help;
	const char *metavar;
} cli_opt;

typedef struct {
	const char **items;
	int count;
} cli_list;

/* Parse argv[0..argc) against opts; positionals are collected in order.
 * Everything after "--" is collected into *rest (may be NULL: then "--"
 * is an error).  Returns 0, or EXIT_USAGE after printing the problem
 * into err (size errlen).  "--help"/"-h" sets *help. */
int cli_parse(const cli_opt *opts, int argc, char **argv, const char ***pos, int *npos,
	      char ***rest, int *nrest, bool *help, char *err, size_t errlen);

/* ---- commands ----
 *
 * Every command is an entry of a table (one per noun, in its cmd_*.c):
 * name, summary, options, positionals and flags are data, so help and
 * usage are printed from them (and completion or man pages can be).  The
 * dispatcher (command.c) parses a verb's words against its entry, prints
 * help, refuses unknown options and a missing or stray positional (exit
 * 2), runs the entry's check of its option values, all before anything
 * is opened, then opens the context as the entry's flags say and runs
 * the verb with what it parsed.  No verb opens the context itself. */
typedef struct cli_env {
	banger_ctx *ctx;        /* opened lazily by cli_ctx() */
	const char *state_dir;
	const char *config_path;
	int verbose;
	bool color;
	uint32_t ctx_flags;     /* BANGER_CTX_* for cli_ctx() */
	int open_exit;          /* exit code of a failed cli_ctx(), which wins */
} cli_env;

/* How many words a positional takes. */
typedef enum {
	ARG_ONE,           /* exactly one */
	ARG_OPTIONAL,      /* zero or one */
	ARG_SOME,          /* one or more (the last positional) */
	ARG_ANY,           /* zero or more (the last positional) */
	ARG_REST,          /* the words after "--", at least one */
	ARG_REST_OPTIONAL  /* the words after "--", maybe none */
} cli_arg_kind;

typedef struct {
	const char *name;   /* as in the usage line: "NAME", "CMD" */
	cli_arg_kind kind;
	const char *help;
} cli_arg;

/* The context a verb needs; without any of these it needs none.  It is
 * opened after the entry's check, so a usage error never touches the
 * state. */
enum {
	/* Opened before the verb runs; the verb does not run without it. */
	CLI_CTX = 1 << 0,
	/* ... opened for recovery (BANGER_CTX_RECOVER); implies CLI_CTX. */
	CLI_CTX_RECOVER = 1 << 1,
	/* Opened when it can be: when not, the reason is printed (and is the
	 * exit code) and the verb runs with call->ctx NULL. */
	CLI_CTX_OPTIONAL = 1 << 2,
	/* CLI_CTX unless the verb's --file option was given: the verb then
	 * works on that file and needs no state. */
	CLI_CTX_UNLESS_FILE = 1 << 3
};

/* What a verb is run with.  Option values are in the variables its
 * table's options point to. */
typedef struct {
	const char *path;       /* "vm show", for messages */
	const char **pos;       /* the positionals, as many as the table allows */
	int npos;
	char **rest;            /* the words after "--" (NULL when none) */
	int nrest;
	banger_ctx *ctx;        /* as the entry's CLI_CTX* flags say, else NULL */
} cli_call;

typedef struct cli_cmd {
	const char *name;
	const char *summary;        /* one line (in lists of commands); lines after
				       it add to the command's own help */
	const cli_opt *opts;        /* NULL or terminated by name == NULL */
	const cli_arg *args;        /* positionals in order; NULL or terminated by name == NULL */
	unsigned flags;             /* CLI_CTX* */
	int (*run)(cli_env *env, const cli_call *call);
	const struct cli_cmd *subs; /* a noun's verbs, terminated by name == NULL */
	/* Checks (and converts, into the verb's own variables) the option
	 * values and the words before the context is opened; reads what the
	 * verb needs from the user.  0 to go on, else the exit code (the
	 * problem was printed).  NULL: nothing to check. */
	int (*check)(const cli_call *call);
} cli_cmd;

/* Every noun, NULL-terminated (nouns.c). */
extern const cli_cmd *const cli_nouns[];

/* Run "noun [verb] args" through the tables (command.c): path is the
 * command path so far ("vm"), argv the words after it. */
int cli_dispatch(cli_env *env, const cli_cmd *cmd, const char *path, int argc, char **argv);
/* Print a command's help (usage line, summary, its verbs or its
 * arguments and options) from its table entry. */
void cli_usage(FILE *f, const char *path, const cli_cmd *cmd);
/* The usage line after the command path ("NAME [options] -- CMD..."). */
void cli_usage_line(char *buf, size_t len, const cli_cmd *cmd);

/* Open the context on first use; prints the error and returns NULL.
 * The dispatcher calls it for the entries that ask (main.c). */
banger_ctx *cli_ctx(cli_env *env);
/* Print the last library error as "banger: what: message" and map it to
 * an exit code. */
int cli_fail(const char *what, int rc);
int cli_exit_code(int rc);

/* ---- what progress callbacks share (progress.c) ---- */
/* From catch to release, the first SIGINT only sets a flag, which a
 * progress callback turns into a cancel (return cli_interrupted()); the
 * second one kills as usual. */
void cli_interrupt_catch(void);
void cli_interrupt_release(void);
bool cli_interrupted(void);
/* A WAITING report of stage "lock": its detail goes to stderr the first
 * time of a wait; true for every such report. */
bool cli_progress_tell_wait(const banger_progress *p);
/* A progress callback for reconcile and store recover: every STEP (an
 * object acted on) as "subject: what was done" on stdout. */
int cli_progress_print_step(const banger_progress *p, void *payload);

/* ---- output ---- */
/* JSON string literal with escapes (controls, C1, bidi overrides as
 * \uNNNN; invalid UTF-8 as U+FFFD). */
void json_str(FILE *f, const char *s);
/* s made visible for a terminal (banger_text_visible): escape sequences
 * spelled out.  Use it for every string that came from an image, a
 * registry, a catalog or a guest.  The result lives until 16 more calls;
 * NULL for NULL. */
const char *vis(const char *s);
/* Write a chunk of a stream (a console log, session output) to f made
 * visible with its line structure kept.  carry (room for 4 bytes) and
 * *ncarry hold an unfinished tail between calls; data NULL flushes it. */
int write_visible(FILE *f, const char *data, size_t len, char *carry, size_t *ncarry);
/* A simple left-aligned table: call table_row for each row (including the
 * header) then table_print. */
typedef struct cli_table cli_table;
cli_table *table_new(int ncols);
void table_row(cli_table *t, const char *const *cells);
void table_print(cli_table *t, FILE *f);
void table_free(cli_table *t);
/* How a guest command ended (banger_exit_status), as the exit status a
 * shell gives it: its code, or 128 + the signal that killed it; 1 when it
 * did not end or the signal is not known.  banger's own exit for vm exec,
 * vm run, session attach and session wait. */
int cli_exit_status(banger_exit_status st);
/* "3m", "2h5m", "4d" */
void fmt_duration(char *buf, size_t len, long long seconds);
void fmt_bytes(char *buf, size_t len, unsigned long long bytes);

/* Noun tables, one per cmd_*.c file. */
extern const cli_cmd cli_vm_cmd;
extern const cli_cmd cli_session_cmd;
extern const cli_cmd cli_known_hosts_cmd;
extern const cli_cmd cli_ssh_config_cmd;
extern const cli_cmd cli_ssh_proxy_cmd;
extern const cli_cmd cli_store_cmd;
extern const cli_cmd cli_gc_cmd;
extern const cli_cmd cli_kernel_cmd;
extern const cli_cmd cli_image_cmd;
extern const cli_cmd cli_doctor_cmd;
extern const cli_cmd cli_version_cmd;

/* `banger gc`'s blob cache step (cmd_image.c): prune unused blobs, print
 * what went; returns exit_code unless the prune failed. */
int cli_gc_blobs(banger_ctx *ctx, int exit_code);

#endif
