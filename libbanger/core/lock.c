/* flock-based locks.  The descriptor is O_CLOEXEC: a VMM spawned while a
 * lock is held must not inherit it (it would hold the lock until it dies).
 *
 * A wait for a lock another process holds can be long (an image lock is
 * held for a whole pull).  Given the caller's progress, the wait says
 * so (WAITING at stage "lock", naming the holder when /proc/locks does)
 * and stops when the callback asks; without one it waits silently. */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* The holder a line of /proc/locks names for the file st describes, or
 * 0.  "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF": id, kind,
 * advisory, access, pid, major:minor:inode (hex, hex, decimal).  Waiters
 * are listed as "1: -> FLOCK ..." and hold nothing. */
static pid_t holder_in_line(char *line, const struct stat *st)
{
	char *save = NULL, *word[6];
	int n = 0;
	for (char *w = strtok_r(line, " \t\n", &save); w && n < 6; w = strtok_r(NULL, " \t\n", &save))
		word[n++] = w;
	if (n < 6 || strcmp(word[1], "FLOCK") != 0)
		return 0;
	char *end;
	long pid = strtol(word[4], &end, 10);
	if (*end || pid <= 0)
		return 0;
	unsigned long maj = strtoul(word[5], &end, 16);
	if (*end != ':')
		return 0;
	unsigned long min = strtoul(end + 1, &end, 16);
	if (*end != ':')
		return 0;
	unsigned long long ino = strtoull(end + 1, &end, 10);
	if (*end || maj != major(st->st_dev) || min != minor(st->st_dev) || ino != (unsigned long long)st->st_ino)
		return 0;
	return (pid_t)pid;
}

/* Who holds a flock on the file fd is open on, by /proc/locks; 0 when
 * it does not say (another pid namespace, a file system whose device
 * numbers differ from the superblock's, no /proc). */
static pid_t lock_holder(int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return 0;
	FILE *f = fopen("/proc/locks", "re");
	if (!f)
		return 0;
	char line[256];
	pid_t found = 0;
	while (!found && fgets(line, sizeof(line), f))
		found = holder_in_line(line, &st);
	fclose(f);
	return found;
}

typedef struct {
	const bg_progress *progress; /* NULL, or no callback: a silent wait */
	const char *what;            /* "the lock of image alpine" */
	bg_progress_pace pace;       /* from the first wait on */
} lock_wait;

/* The lock is held elsewhere: tell the caller, now and then; its "stop"
 * becomes BANGER_ECANCELLED. */
static int report_wait(lock_wait *w, int fd)
{
	if (!bg_progress_due(&w->pace))
		return 0;
	char detail[512];
	pid_t pid = lock_holder(fd);
	if (pid > 0)
		snprintf(detail, sizeof(detail), "waiting for %s held by pid %d", w->what, (int)pid);
	else
		snprintf(detail, sizeof(detail), "waiting for %s, held by another process", w->what);
	banger_progress r = { .event = BANGER_PROGRESS_WAITING, .stage = "lock", .detail = detail };
	return bg_progress_report(w->progress, &r);
}

static int lock_fd(bg_lock *lock, int fd, const char *path, int timeout_ms, int mode, lock_wait *w)
{
	bool reporting = w && w->progress && w->progress->cb;
	/* a wait that reports cannot sleep in flock(): it polls */
	bool blocking = timeout_ms < 0 && !reporting;
	int64_t deadline = timeout_ms < 0 ? INT64_MAX : bg_now_ms() + timeout_ms;
	int delay = 5, rc;
	for (;;) {
		if (flock(fd, mode | (blocking ? 0 : LOCK_NB)) == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			int err = errno;
			close(fd);
			return bg_error_os(BANGER_EIO, err, "lock %s", path);
		}
		if (bg_now_ms() >= deadline) {
			close(fd);
			return bg_error(BANGER_EBUSY, "%s is locked by another banger process", path);
		}
		if (reporting && (rc = report_wait(w, fd))) {
			close(fd);
			return rc;
		}
		bg_sleep_ms(delay);
		if (delay < 100)
			delay *= 2;
	}
	lock->fd = fd;
	return 0;
}

static int acquire(bg_lock *lock, const char *path, int timeout_ms, int mode, lock_wait *w)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return bg_error_os(bg_code_from_errno(errno), errno, "open lock %s", path);
	return lock_fd(lock, fd, path, timeout_ms, mode, w);
}

int bg_lock_acquire(bg_lock *lock, const char *path, int timeout_ms)
{
	return acquire(lock, path, timeout_ms, LOCK_EX, NULL);
}

int bg_lock_acquire_reporting(bg_lock *lock, const char *path, int timeout_ms, const bg_progress *progress,
			      const char *what)
{
	lock_wait w = { progress, what ? what : path, BG_PROGRESS_PACE_INIT };
	return acquire(lock, path, timeout_ms, LOCK_EX, &w);
}

int bg_lock_acquire_shared_reporting(bg_lock *lock, const char *path, int timeout_ms, const bg_progress *progress,
				     const char *what)
{
	lock_wait w = { progress, what ? what : path, BG_PROGRESS_PACE_INIT };
	return acquire(lock, path, timeout_ms, LOCK_SH, &w);
}

int bg_lock_acquire_dir(bg_lock *lock, const char *dir, int timeout_ms)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return bg_error_os(bg_code_from_errno(errno), errno, "open %s to lock it", dir);
	return lock_fd(lock, fd, dir, timeout_ms, LOCK_EX, NULL);
}

bg_lock_try bg_lock_try_existing(bg_lock *lock, const char *path)
{
	lock->fd = -1;
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? BG_LOCK_ABSENT : BG_LOCK_BUSY;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		return BG_LOCK_BUSY;
	}
	lock->fd = fd;
	return BG_LOCK_TAKEN;
}

bool bg_lock_is_current(const bg_lock *lock, const char *path)
{
	struct stat held, now;
	return lock && lock->fd >= 0 && fstat(lock->fd, &held) == 0 && held.st_nlink > 0 &&
	       stat(path, &now) == 0 && held.st_ino == now.st_ino && held.st_dev == now.st_dev;
}

void bg_lock_release(bg_lock *lock)
{
	if (lock && lock->fd >= 0) {
		close(lock->fd); /* closing drops the flock */
		lock->fd = -1;
	}
}
