/* Another process holding one of banger's locks, for the tests of lock
 * waits (public API tier: libc only).  lock_holder_start returns once
 * the child holds an exclusive flock on path; lock_holder_stop ends it,
 * and with it the lock. */
#ifndef BANGER_TEST_LOCK_HOLDER_H
#define BANGER_TEST_LOCK_HOLDER_H

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t lock_holder_start(const char *path)
{
	int ready[2];
	if (pipe(ready) != 0)
		abort();
	pid_t pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		/* a test that fails (exit) takes its holder with it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int fd = open(path, O_RDWR | O_CREAT, 0600);
		char c = 1;
		if (fd < 0 || flock(fd, LOCK_EX) != 0 || write(ready[1], &c, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(ready[1]);
	char c;
	if (read(ready[0], &c, 1) != 1)
		abort();
	close(ready[0]);
	return pid;
}

static void lock_holder_stop(pid_t pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

#endif
