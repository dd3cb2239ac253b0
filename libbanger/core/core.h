/*
 * Private declarations of the core module: allocation, errors, logging,
 * strings and buffers, files, locks, process spawning.  Internal names
 * start with bg_ and are never exported.
 */
#ifndef BG_CORE_H
#define BG_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <banger/banger.h>

#define BG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define BG_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define BG_UNUSED __attribute__((unused))

/* ---- allocation (every library allocation goes through these, so the
 *      allocation-failure test mode can fail the Nth one) ---- */
void *bg_malloc(size_t n);
void *bg_calloc(size_t n, size_t size);
void *bg_realloc(void *p, size_t n);
char *bg_strdup(const char *s);
char *bg_strndup(const char *s, size_t n);
void bg_free(void *p);
char *bg_sprintf(const char *fmt, ...) BG_PRINTF(1, 2);
char *bg_vsprintf(const char *fmt, va_list ap) BG_PRINTF(1, 0);
/* Test hook: fail the nth allocation from now (1-based); 0 disables.
 * Also armed from $BANGER_TEST_FAIL_ALLOC=N at first use.  Only in builds
 * with BANGER_TEST_HOOKS (BANGER_TESTS=ON); elsewhere they do nothing. */
void bg_alloc_fail_at(uint64_t n);
uint64_t bg_alloc_count(void);

/* ---- errors: set the thread's last error, return the code ---- */
int bg_error(int code, const char *fmt, ...) BG_PRINTF(2, 3);
/* Like bg_error, with errno recorded and strerror appended. */
int bg_error_os(int code, int err, const char *fmt, ...) BG_PRINTF(3, 4);
/* Record an underlying library's code and name. */
int bg_error_lib(int code, const char *lib, int lib_code, const char *fmt, ...) BG_PRINTF(4, 5);
int bg_error_oom(void);
/* Prefix the current message with "what: " (for context). */
void bg_error_prefix(const char *fmt, ...) BG_PRINTF(1, 2);
/* Save/restore around cleanup code that may overwrite the error. */
typedef struct { int code, os_errno, lib_code; const char *lib; char *message; } bg_error_saved;
void bg_error_save(bg_error_saved *s);
void bg_error_restore(bg_error_saved *s);
/* Map errno values to the closest banger code. */
int bg_code_from_errno(int err);
#if defined(__clang_analyzer__) && !defined(BG_ERROR_IMPL)
/* Let the static analyzer (clang-tidy, scripts/static-analysis.sh) see
 * what these return, across translation units: the code they are given,
 * never 0.  Without it every "if ((rc = f())) goto out;" after an
 * allocation failure looks like a success that goes on with NULL. */
#define bg_error(code, ...) (bg_error(code, __VA_ARGS__), (code))
#define bg_error_os(code, err, ...) (bg_error_os(code, err, __VA_ARGS__), (code))
#define bg_error_lib(code, lib, lib_code, ...) (bg_error_lib(code, lib, lib_code, __VA_ARGS__), (code))
#define bg_error_oom() (bg_error_oom(), BANGER_ENOMEM)
#endif

/* ---- options structs (options.c) ----
 * Every entry point that takes an options struct checks it with
 * BG_OPTIONS_CHECK and every *_options_init() is bg_options_init, so NULL
 * and unknown versions are refused alike everywhere (BANGER_EINVALID
 * naming the struct): an old library never misreads a newer struct. */
int bg_options_check(const char *type, bool present, unsigned int version, unsigned int oldest,
		     unsigned int newest);
/* Copy size bytes of defaults into opts and set its version. */
int bg_options_init(void *opts, const void *defaults, size_t size, const char *type, unsigned int version,
		    unsigned int oldest, unsigned int newest);
/* opts is the entry point's parameter (a pointer variable): NULL becomes
 * defaults, or is refused when defaults is NULL (the struct has a
 * required field).  Versions oldest..newest are accepted. */
#define BG_OPTIONS_CHECK(opts, defaults, type, oldest, newest)                                      \
	((opts) = (opts) ? (opts) : (defaults),                                                      \
	 bg_options_check(#type, (opts) != NULL, (opts) ? (opts)->version : 0, (oldest), (newest)))

/* ---- progress reports (progress.c; include/banger/progress.h) ---- */
typedef struct {
	banger_progress_cb cb; /* NULL: no reports */
	void *payload;
	int operation;         /* a banger_progress_op */
	const char *subject;   /* default subject of reports (a name), or NULL */
} bg_progress;
/* Send r (version, operation and a missing subject are filled in).  0 to
 * go on; BANGER_ECANCELLED, with the error set, when the callback asked
 * to stop (never for DONE and UP_TO_DATE): the caller fails as on any
 * error, undoing what it did. */
int bg_progress_report(const bg_progress *p, banger_progress *r);
/* Send r where stopping is not possible (rolling back, stopping a VM):
 * the callback's answer is ignored. */
void bg_progress_tell(const bg_progress *p, banger_progress *r);
/* A STEP report (bg_progress_report). */
int bg_progress_step(const bg_progress *p, const char *stage, const char *detail);
/* The DONE report: the operation succeeded (total: bytes, or 0). */
void bg_progress_done(const bg_progress *p, const char *subject, uint64_t total);
/* The error of a cancel: BANGER_ECANCELLED, set as bg_progress_report
 * sets it.  For code that hears the callback's "stop" through a layer of
 * its own (a download's callback) and must fail with the same error. */
int bg_progress_cancelled(const char *stage);

/* A wait reports WAITING about twice a second and never a second apart
 * (progress.h): at most every BG_PROGRESS_WAIT_MS, so a wait that gets
 * a chance to report at least that often meets both. */
#define BG_PROGRESS_WAIT_MS 400
typedef struct {
	int64_t next; /* bg_now_ms() when the next report is due; 0: at once */
} bg_progress_pace;
#define BG_PROGRESS_PACE_INIT { 0 }
/* Is a WAITING report due?  When it is, the next one is due a period later. */
bool bg_progress_due(bg_progress_pace *pace);
/* Something else was just reported (a STEP): the next WAITING is due a
 * period from now. */
void bg_progress_pace_restart(bg_progress_pace *pace);

/* ---- logging ---- */
/* The owner is anything that begins with a bg_logger (core/logger.h):
 * a bg_env or a banger_ctx; NULL logs nothing. */
void bg_log(const void *owner, int level, const char *fmt, ...) BG_PRINTF(3, 4);
#define bg_debug(owner, ...) bg_log(owner, BANGER_LOG_DEBUG, __VA_ARGS__)
#define bg_info(owner, ...) bg_log(owner, BANGER_LOG_INFO, __VA_ARGS__)
#define bg_warn(owner, ...) bg_log(owner, BANGER_LOG_WARN, __VA_ARGS__)

/* ---- growable byte buffer, always NUL-terminated ---- */
typedef struct {
	char *data;
	size_t len, cap;
	bool oom; /* sticky: an append failed */
} bg_buf;
#define BG_BUF_INIT { NULL, 0, 0, false }
int bg_buf_grow(bg_buf *b, size_t extra);
int bg_buf_put(bg_buf *b, const void *data, size_t len);
int bg_buf_puts(bg_buf *b, const char *s);
int bg_buf_printf(bg_buf *b, const char *fmt, ...) BG_PRINTF(2, 3);
/* Hand the contents over (never NULL on success) and reset the buffer. */
char *bg_buf_detach(bg_buf *b);
void bg_buf_free(bg_buf *b);

/* ---- strings ---- */
bool bg_streq(const char *a, const char *b); /* NULL-safe */
bool bg_startswith(const char *s, const char *prefix);
bool bg_endswith(const char *s, const char *suffix);
char *bg_path_join(const char *a, const char *b);
/* An IPv4 guest subnet "a.b.c.d/len", len 8..28 (room for /30 slots):
 * the one rule for the config check and the address allocator. */
int bg_subnet_cidr_parse(uint32_t *base, int *prefix, const char *cidr);
/* Parse a size like "512", "10G", "256M", "4k" into bytes. */
int bg_parse_size(uint64_t *out, const char *s);
void bg_hex(char *out, const unsigned char *in, size_t n); /* out: 2n+1 */
int bg_random_bytes(void *buf, size_t n);

/* ---- base64 (base64.c: RFC 4648, as OpenSSH's b64_ntop/b64_pton) ---- */
/* Encode n bytes; with pad=false the trailing '=' are dropped (as in
 * SHA256 fingerprints).  Returns a bg_malloc'd string or NULL (OOM). */
char *bg_base64_encode(const void *in, size_t n, bool pad);
/* Decode like OpenSSH's b64_pton: whitespace is skipped, padding is
 * required and must be exact, unused bits must be zero.  Returns 0 or
 * BANGER_EINVALID / BANGER_ENOMEM (no error message recorded for
 * EINVALID: callers decide how to report it). */
int bg_base64_decode(unsigned char **out, size_t *out_len, const char *in, size_t in_len);

/* ---- POSIX shell words (shell.c) ---- */
/* word in single quotes, for any POSIX shell.  NULL on allocation failure. */
char *bg_shell_quote(const char *word);
/* Leave words made only of characters no shell treats specially
 * unquoted: easier to read, for commands shown to people.  Not for a
 * command a shell runs: a bare first word could be an assignment or a
 * reserved word there. */
#define BG_SHELL_BARE 1u
/* n words, each quoted (see BG_SHELL_BARE), separated by one blank. */
char *bg_shell_join(const char *const *words, size_t n, unsigned flags);

/* ---- SHA-256 (sha256.c): the only one in the library ---- */
#define BG_SHA256_LEN 32
#define BG_SHA256_HEX_SIZE (2 * BG_SHA256_LEN + 1) /* lowercase hex + NUL */
typedef struct bg_sha256 bg_sha256;
int bg_sha256_new(bg_sha256 **out);
/* A failed update is remembered: bg_sha256_final reports it too, so a
 * streaming caller may ignore this return and check only the final. */
int bg_sha256_update(bg_sha256 *h, const void *data, size_t len);
/* The digest of everything since new or reset; reset before reusing. */
int bg_sha256_final(bg_sha256 *h, unsigned char md[BG_SHA256_LEN]);
int bg_sha256_final_hex(bg_sha256 *h, char hex[BG_SHA256_HEX_SIZE]);
int bg_sha256_reset(bg_sha256 *h);
void bg_sha256_free(bg_sha256 *h);
/* One-shot. */
int bg_sha256_of(unsigned char md[BG_SHA256_LEN], const void *data, size_t len);
int bg_sha256_of_hex(char hex[BG_SHA256_HEX_SIZE], const void *data, size_t len);

/* ---- untrusted text made visible (visible.c) ----
 * Printable UTF-8 is kept; C0/C1 controls, DEL, bidi overrides and
 * invalid UTF-8 are spelled out (\x1b, \u009b, \xff).  Used for every
 * string from an image, a registry or a guest before it reaches a message,
 * a log line or a terminal; bg_error and bg_log apply it to every message. */
#define BG_VIS_LINES 1u   /* keep \n and \t, and \r when a \n follows */
#define BG_VIS_JSON 2u    /* JSON string syntax: \uNNNN, \" and \\, U+FFFD for bad bytes */
#define BG_VIS_PARTIAL 4u /* a chunk of a stream: leave an unfinished tail unconsumed */
/* Into a fixed buffer (no allocation, safe under memory exhaustion); the
 * result ends before the first escape or character that does not fit. */
size_t bg_visible_into(char *dst, size_t cap, const char *src, unsigned flags);
/* Append the visible form of data; *consumed (may be NULL) gets the bytes
 * used (all of them unless BG_VIS_PARTIAL). */
int bg_buf_put_visible(bg_buf *b, const void *data, size_t len, unsigned flags, size_t *consumed);
/* A visible copy of s on one line (bg_free it); NULL on allocation failure. */
char *bg_str_visible(const char *s);

/* ---- the plain-HTTP rule (plainhttp.c), shared by registries and
 *      kernel catalogs ---- */
/* host[:port] is loopback: localhost, 127.0.0.0/8, ::1. */
bool bg_host_is_loopback(const char *hostport);
/* Plain HTTP is allowed for hostport: loopback, or listed (comma list of
 * host or host:port) in insecure_list (the insecure_registries key). */
bool bg_registry_insecure(const char *hostport, const char *insecure_list);
/* host[:port] of a URL as written (bg_malloc'ed), NULL when malformed. */
char *bg_url_hostport(const char *url);
/* 0 unless url is plain http:// to a host the rule does not allow: then
 * BANGER_ENETWORK "what: refusing plain HTTP to host" (nothing is sent). */
int bg_plain_http_check(const char *url, const char *insecure_list, const char *what);

/* ---- files ---- */
/* mkdir -p with the given mode for every created component. */
int bg_mkdir_p(const char *path, mode_t mode);
/* Read a whole file (up to max bytes; larger is BANGER_EINVALID). */
int bg_read_file(char **out, size_t *len, const char *path, size_t max);
/* Write atomically: temp file in the same directory, fsync, rename,
 * fsync the directory. */
int bg_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* The same, with the new file given this owner (uid/gid -1: the caller's);
 * a chown that is not permitted is an error, never a silent change of
 * owner. */
int bg_write_file_atomic_owned(const char *path, const void *data, size_t len, mode_t mode, uid_t uid,
			       gid_t gid);
/* rm -rf; tolerates a missing path; never follows symlinks. */
int bg_remove_tree(const char *path);
bool bg_path_exists(const char *path);
int bg_fsync_dir(const char *dir);

/* ---- locks: flock on a file, always O_CLOEXEC ---- */
typedef struct { int fd; } bg_lock;
#define BG_LOCK_INIT { -1 }
/* Take an exclusive flock on path (created 0600), waiting up to
 * timeout_ms (-1: forever, 0: try once). */
int bg_lock_acquire(bg_lock *lock, const char *path, int timeout_ms);
/* The same for an operation that reports progress: while another process
 * holds the lock, a WAITING report at stage "lock" (detail: "waiting for
 * <what> held by pid N") goes to progress at once and then about twice a
 * second, and a callback's "stop" ends the wait with BANGER_ECANCELLED.
 * progress NULL or without a callback: bg_lock_acquire. */
int bg_lock_acquire_reporting(bg_lock *lock, const char *path, int timeout_ms, const bg_progress *progress,
			      const char *what);
/* The same, shared: any number of shared holders, no exclusive one (whose
 * hold is the wait reported). */
int bg_lock_acquire_shared_reporting(bg_lock *lock, const char *path, int timeout_ms, const bg_progress *progress,
				     const char *what);
/* The same on an existing directory (flock works on directory
 * descriptors): a lock that leaves no file behind, for files that are
 * replaced by rename and live in directories banger does not own. */
int bg_lock_acquire_dir(bg_lock *lock, const char *dir, int timeout_ms);
void bg_lock_release(bg_lock *lock);
/* Take the lock of an existing file at once, never creating it: a lock
 * file made in a directory another process is removing would make its
 * rmdir fail.  ABSENT (no file: no one can be at work under it, nothing
 * held), TAKEN (held in *lock) or BUSY (someone holds it, or the file
 * cannot be opened: treat it as in use). */
typedef enum { BG_LOCK_ABSENT, BG_LOCK_TAKEN, BG_LOCK_BUSY } bg_lock_try;
bg_lock_try bg_lock_try_existing(bg_lock *lock, const char *path);
/* Is the file we hold locked still the one at path?  A lock file can be
 * removed (its directory deleted) and made again while someone waits for
 * or holds the old one: a lock on an unlinked file protects nothing. */
bool bg_lock_is_current(const bg_lock *lock, const char *path);

/* ---- time ---- */
int64_t bg_now_ms(void);          /* CLOCK_MONOTONIC */
int64_t bg_wall_seconds(void);    /* CLOCK_REALTIME */
void bg_sleep_ms(int ms);

/* ---- processes ---- */
/* Locate an executable on PATH (or an absolute path); NULL if absent,
 * with errno ENOMEM when that was for want of memory. */
char *bg_which(const char *name);
/* Run argv (argv[0] looked up on PATH), wait for it, capture stdout and
 * stderr (each may be NULL).  Returns 0 when the program ran; *status
 * gets the exit code (128+signal when killed).  stdin is /dev/null.  A
 * program killed by SIGINT was stopped by Ctrl-C at the terminal (the
 * library sends none): that is BANGER_ECANCELLED, as the caller's own
 * progress callback will say next. */
int bg_run(int *status, char **out, char **err, const char *const argv[], int timeout_ms);
/* Like bg_run but a non-zero exit is an error naming the command and
 * quoting the first line of its stderr. */
int bg_run_checked(const char *const argv[], int timeout_ms);

/* bg_run's second half: read the child's stdout (out_fd) and stderr
 * (err_fd) until both close, then reap pid (SIGKILL at the deadline).
 * The descriptors stay the caller's to close. */
int bg_run_collect(int *status, char **out, char **err, pid_t pid, int out_fd, int err_fd, const char *name,
		   int timeout_ms);
/* Like bg_run (stdout and stderr kept), for a tool that reads and writes
 * a file someone less trusted wrote (e2fsck on a guest's disk): the
 * child runs with no_new_privs, no capabilities (an empty bounding set,
 * so exec gives root none back either), no descriptor above 2 and,
 * where the kernel has Landlock, write access to rw_path alone and read
 * access to the system's program and library directories, /proc and
 * /sys, nothing else (no TCP, no signals or abstract sockets beyond
 * itself).  *landlocked (may be NULL) tells whether Landlock applied. */
int bg_run_confined(int *status, char **out, char **err, const char *const argv[], int timeout_ms,
		    const char *rw_path, bool *landlocked);

/* Does pid exist and is it not a zombie? */
bool bg_proc_alive(pid_t pid);
/* Is pid alive (not a zombie) and does its command line contain needle
 * as one whole argument or inside one? */
bool bg_proc_cmdline_has(pid_t pid, const char *needle);
/* Scan /proc for processes whose command line contains needle (the
 * equivalent of pgrep -f).  *pids is bg_malloc'ed. */
int bg_proc_find(pid_t **pids, size_t *count, const char *needle);

/* Crash-test hook: when $BANGER_FAULT names this step ("create:tap"),
 * the process kills itself with SIGKILL right here.  These two read the
 * environment only in builds with BANGER_TEST_HOOKS (see CMakeLists.txt);
 * the installed library has neither variable name in it. */
void bg_fault_point(const char *step);
/* Rollback-test hook: when $BANGER_FAULT_FAIL names this step, return an
 * error as if the step had failed; else 0.  Also runs bg_fault_point. */
int bg_fault_step(const char *step);

/* One-time global initialisation of the libraries we depend on. */
int bg_global_init(void);

/* ---- HTTP proxy rule for libcurl handles (http_proxy.c) ---- */
/* Apply banger's proxy rule to the CURL easy handle curl: loopback never
 * proxied, NO_PROXY/no_proxy honoured, setting (the "proxy" config value)
 * NULL or "" = the environment's proxy, "none" = no proxy, else the proxy
 * URL.  Call after curl_easy_reset.  0, BANGER_ENOMEM or BANGER_EINVALID;
 * on failure the handle must not be used (it could reach the proxy). */
int bg_http_proxy_apply(void *curl, const char *setting);
/* The no-proxy list handed to libcurl for the environment's list env
 * (may be NULL): loopback names and ranges, then env; "*" stays "*".
 * bg_free the result; NULL when out of memory. */
char *bg_http_noproxy_list(const char *env);

#endif
