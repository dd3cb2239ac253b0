/* What the CLI's progress callbacks share.
 *
 * Ctrl-C during a long operation (vm create, start, restart, run): the
 * first one is turned into a cancel through the operation's progress
 * callback, so the library undoes what it made (a cancelled create
 * leaves no VM) and returns BANGER_ECANCELLED; a second one ends the
 * process at once, as Ctrl-C always does.  Outside those operations
 * Ctrl-C keeps its default.
 *
 * A wait for a lock another process holds is told once, so a command
 * that waits does not look hung.
 *
 * Reconcile and recovery print each object they acted on. */
#include "cli.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

void cli_interrupt_catch(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_interrupt;
	/* once: the second Ctrl-C gets the default action */
	sa.sa_flags = SA_RESETHAND | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	interrupted = 0;
	sigaction(SIGINT, &sa, NULL);
}

void cli_interrupt_release(void)
{
	signal(SIGINT, SIG_DFL);
}

bool cli_interrupted(void)
{
	return interrupted != 0;
}

bool cli_progress_tell_wait(const banger_progress *p)
{
	static bool told; /* this wait was told already */
	bool lock = p->event == BANGER_PROGRESS_WAITING && p->stage && strcmp(p->stage, "lock") == 0;
	if (lock && !told)
		fprintf(stderr, "%s\n", p->detail ? vis(p->detail) : "waiting for another banger process");
	told = lock;
	return lock;
}

int cli_progress_print_step(const banger_progress *p, void *payload)
{
	(void)payload;
	if (p->event == BANGER_PROGRESS_STEP)
		printf("%s: %s\n", p->subject ? vis(p->subject) : "", p->detail ? vis(p->detail) : "");
	return 0;
}
