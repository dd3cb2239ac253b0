/* Allocation-failure driver shared by the hardening tests.
 *
 * af_run() calls op once per N = 1, 2, ... with the Nth library
 * allocation from the start of op failing (bg_alloc_fail_at), each time
 * in a forked child, until op makes fewer than N allocations (then it
 * ran without a failure and the loop is done).  In the child:
 *
 *   setup (not armed)  ->  arm N  ->  rc = op()  ->  disarm
 *   -> check(rc): a failure must be a negative BANGER_E* code whose
 *      banger_error_last() has that code and a message; a success after
 *      the failed allocation is allowed (the allocation was optional),
 *      and the result is checked like any other
 *   -> verify(): the state the call left must be consistent (the test
 *      decides what that means: no half-created rows, files intact, ...)
 *   -> teardown, then exit(), where LeakSanitizer (in the sanitizer
 *      build) fails the child on any leak.
 *
 * A crash, an abort, a sanitizer report, a leak or a failed check in
 * the child fails that N; the parent goes on with the next N and reports
 * every bad N at the end.
 *
 * Expensive calls (a VM create spawns a VMM, a pull runs mkfs) cannot
 * try every N within a CI budget: af_opts.max_runs caps the number of
 * children; the N tried are then 1..dense, and after that an even
 * stride over the rest, and always the last 10.  $BANGER_ALLOC_FULL=1
 * tries every N regardless (for runs recorded in docs/hardening.md);
 * $BANGER_ALLOC_ONLY=N runs only that N, without forking (to debug it).
 *
 * Only allocations that go through bg_malloc & co. fail: libbanger's
 * own.  SQLite, libcurl, jansson, libssh2, libarchive, OpenSSL and libc
 * allocate with their own malloc and are not failed by this hook (see
 * docs/hardening.md). */
#ifndef BG_ALLOC_FAIL_H
#define BG_ALLOC_FAIL_H

#include "../../libbanger/core/core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
	const char *name;
	/* In the child before arming (may be NULL).  Returns 0 or fails. */
	int (*setup)(void *arg);
	/* The call under test. */
	int (*op)(void *arg);
	/* After op, disarmed: rc is op's result.  Return 0 when the outcome
	 * and the state left behind are acceptable; print why not. */
	int (*verify)(void *arg, int rc);
	/* Free what setup and op left (may be NULL). */
	void (*teardown)(void *arg);
	void *arg;
	unsigned max_runs; /* 0: every N */
	unsigned dense;    /* with max_runs: every N up to this one */
} af_opts;

typedef struct {
	uint64_t total;     /* allocations of one undisturbed call */
	unsigned runs;      /* children run */
	unsigned failed;    /* children that returned an error */
	unsigned tolerated; /* children that succeeded despite the failure */
	unsigned bad;       /* children that crashed, leaked or failed a check */
	int other_codes;    /* errors other than BANGER_ENOMEM */
} af_result;

/* Child exit codes. */
enum { AF_ERRORED = 0, AF_SUCCEEDED = 10, AF_NOT_REACHED = 11, AF_BAD = 1, AF_OTHER_CODE = 12 };

static int af_child(const af_opts *o, uint64_t n)
{
	if (o->setup && o->setup(o->arg) != 0) {
		fprintf(stderr, "%s: N=%llu: setup failed: %s\n", o->name, (unsigned long long)n,
			banger_error_last()->message);
		return AF_BAD;
	}
	banger_error_clear();
	uint64_t before = bg_alloc_count();
	bg_alloc_fail_at(n);
	int rc = o->op(o->arg);
	bg_alloc_fail_at(0);
	bool reached = n && bg_alloc_count() - before >= n;
	int code = rc == 0 ? (reached ? AF_SUCCEEDED : AF_NOT_REACHED) : AF_ERRORED;
	if (rc > 0) {
		fprintf(stderr, "%s: N=%llu: positive return code %d\n", o->name, (unsigned long long)n, rc);
		code = AF_BAD;
	} else if (rc < 0) {
		const banger_error *e = banger_error_last();
		if (!e || e->code != rc || !e->message || !*e->message) {
			fprintf(stderr, "%s: N=%llu: returned %d but banger_error_last() says %d \"%s\"\n", o->name,
				(unsigned long long)n, rc, e ? e->code : 0, e && e->message ? e->message : "(none)");
			code = AF_BAD;
		} else if (rc != BANGER_ENOMEM) {
			fprintf(stderr, "%s: N=%llu: error %d instead of BANGER_ENOMEM: %s\n", o->name,
				(unsigned long long)n, rc, e->message);
			code = AF_OTHER_CODE;
		}
		if (!reached) {
			fprintf(stderr, "%s: N=%llu: failed (%d: %s) without reaching the failing allocation\n",
				o->name, (unsigned long long)n, rc, e ? e->message : "");
			code = AF_BAD;
		}
	}
	if (o->verify && o->verify(o->arg, rc) != 0) {
		fprintf(stderr, "%s: N=%llu: inconsistent state after rc=%d (%s)\n", o->name, (unsigned long long)n,
			rc, rc ? banger_error_last()->message : "success");
		code = AF_BAD;
	}
	if (o->teardown)
		o->teardown(o->arg);
	return code;
}

/* Run the child for N and classify its end. */
static int af_fork(const af_opts *o, uint64_t n)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return AF_BAD;
	}
	if (pid == 0)
		exit(af_child(o, n)); /* exit(), not _exit(): LeakSanitizer runs at exit */
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(st)) {
		fprintf(stderr, "%s: N=%llu: child killed by signal %d\n", o->name, (unsigned long long)n,
			WTERMSIG(st));
		return AF_BAD;
	}
	int code = WEXITSTATUS(st);
	if (code != AF_ERRORED && code != AF_SUCCEEDED && code != AF_NOT_REACHED && code != AF_OTHER_CODE) {
		if (code != AF_BAD)
			fprintf(stderr, "%s: N=%llu: child exited %d (a sanitizer or leak report above)\n", o->name,
				(unsigned long long)n, code);
		return AF_BAD;
	}
	return code;
}

/* Every N, or a bounded sample of them. */
static bool af_pick(const af_opts *o, uint64_t n, uint64_t total)
{
	const char *full = getenv("BANGER_ALLOC_FULL");
	if (!o->max_runs || (full && *full == '1') || total <= o->max_runs)
		return true;
	if (n <= o->dense || n + 10 > total)
		return true;
	uint64_t rest = total - o->dense, budget = o->max_runs > o->dense + 10 ? o->max_runs - o->dense - 10 : 1;
	uint64_t stride = (rest + budget - 1) / budget;
	return (n - o->dense) % stride == 0;
}

static af_result af_run(const af_opts *o)
{
	af_result r;
	memset(&r, 0, sizeof(r));
	/* $BANGER_ALLOC_ONLY=N: just that N, in this process (for a debugger) */
	const char *only = getenv("BANGER_ALLOC_ONLY");
	if (only && *only) {
		int code = af_child(o, strtoull(only, NULL, 10));
		r.runs = 1;
		r.bad = code == AF_BAD;
		r.other_codes = code == AF_OTHER_CODE;
		printf("%s: N=%s only: child code %d\n", o->name, only, code);
		return r;
	}
	/* N = 0: nothing fails; how many allocations does the call make? */
	int code = af_fork(o, 0);
	if (code != AF_NOT_REACHED) {
		fprintf(stderr, "%s: the call fails even without an allocation failure\n", o->name);
		r.bad = 1;
		return r;
	}
	/* learn the total in a child too: the parent must stay untouched */
	int fds[2];
	if (pipe(fds) != 0)
		abort();
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		uint64_t total = 0;
		if (!o->setup || o->setup(o->arg) == 0) {
			uint64_t before = bg_alloc_count();
			o->op(o->arg);
			total = bg_alloc_count() - before;
			if (o->verify)
				o->verify(o->arg, 0);
			if (o->teardown)
				o->teardown(o->arg);
		}
		if (write(fds[1], &total, sizeof(total)) != (ssize_t)sizeof(total))
			_exit(1);
		exit(0);
	}
	close(fds[1]);
	if (read(fds[0], &r.total, sizeof(r.total)) != (ssize_t)sizeof(r.total))
		r.total = 0;
	close(fds[0]);
	waitpid(pid, NULL, 0);

	/* allocation counts can vary a little between runs (timing-dependent
	 * paths); keep going past the measured total until a run is not
	 * reached */
	for (uint64_t n = 1;; n++) {
		if (n <= r.total && !af_pick(o, n, r.total))
			continue;
		code = af_fork(o, n);
		r.runs++;
		if (code == AF_NOT_REACHED)
			break;
		if (code == AF_ERRORED)
			r.failed++;
		else if (code == AF_OTHER_CODE)
			r.failed++, r.other_codes++;
		else if (code == AF_SUCCEEDED)
			r.tolerated++;
		else
			r.bad++;
		if (n > r.total + 1000) {
			fprintf(stderr, "%s: still reaching allocation %llu, 1000 past the measured total\n", o->name,
				(unsigned long long)n);
			r.bad++;
			break;
		}
	}
	printf("%s: %llu allocations; %u runs: %u clean errors (%d not ENOMEM), %u tolerated, %u bad\n", o->name,
	       (unsigned long long)r.total, r.runs, r.failed, r.other_codes, r.tolerated, r.bad);
	fflush(stdout);
	return r;
}

#endif
