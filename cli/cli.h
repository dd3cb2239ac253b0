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
typedef enum { OPT_FLAG, OPT_STRING, OPT_LIST } cli_opt_kind;

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

/* ---- commands ---- */
typedef struct cli_env {
	banger_ctx *ctx;        /* opened lazily by cli_ctx() */
	const char *state_dir;
	const char *config_path;
	int verbose;
	bool color;
	uint32_t ctx_flags;     /* BANGER_CTX_* for cli_ctx() */
	int open_exit;          /* exit code of a failed cli_ctx(), which wins */
} cli_env;

typedef struct cli_cmd {
	const char *name;
	const char *summary;
	const char *usage;          /* "NAME [--json]" */
	int (*run)(cli_env *env, int argc, char **argv);
	const struct cli_cmd *subs; /* NULL-terminated (name == NULL) */
} cli_cmd;

/* Open the context on first use; prints the error and returns NULL. */
banger_ctx *cli_ctx(cli_env *env);
/* Print the last library error as "banger: what: message" and map it to
 * an exit code. */
int cli_fail(const char *what, int rc);
int cli_exit_code(int rc);
/* Print usage of a command with its options. */
void cli_usage(FILE *f, const char *path, const cli_cmd *cmd, const cli_opt *opts);
/* Parse and handle --help/usage errors in one go.  Returns -1 to go on,
 * else the exit code to return. */
int cli_parse_or_usage(const char *path, const cli_cmd *cmd, const cli_opt *opts, int argc,
		       char **argv, const char ***pos, int *npos, char ***rest, int *nrest);

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
int cli_gc_blobs(cli_env *env, int exit_code);

#endif
