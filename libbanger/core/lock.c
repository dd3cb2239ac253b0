/* flock-based locks.  The descriptor is O_CLOEXEC: a VMM spawned while a
 * lock is held must not inherit it (it would hold the lock until it dies). */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static int lock_fd(bg_lock *lock, int fd, const char *path, int timeout_ms, int mode)
{
	int64_t deadline = timeout_ms < 0 ? 0 : bg_now_ms() + timeout_ms;
	int delay = 5;
	for (;;) {
		if (flock(fd, mode | (timeout_ms < 0 ? 0 : LOCK_NB)) == 0)
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
		bg_sleep_ms(delay);
		if (delay < 100)
			delay *= 2;
	}
	lock->fd = fd;
	return 0;
}

static int acquire(bg_lock *lock, const char *path, int timeout_ms, int mode)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return bg_error_os(bg_code_from_errno(errno), errno, "open lock %s", path);
	return lock_fd(lock, fd, path, timeout_ms, mode);
}

int bg_lock_acquire(bg_lock *lock, const char *path, int timeout_ms)
{
	return acquire(lock, path, timeout_ms, LOCK_EX);
}

int bg_lock_acquire_shared(bg_lock *lock, const char *path, int timeout_ms)
{
	return acquire(lock, path, timeout_ms, LOCK_SH);
}

int bg_lock_acquire_dir(bg_lock *lock, const char *dir, int timeout_ms)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return bg_error_os(bg_code_from_errno(errno), errno, "open %s to lock it", dir);
	return lock_fd(lock, fd, dir, timeout_ms, LOCK_EX);
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
