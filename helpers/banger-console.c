/* banger-console: the bounded writer of a VM's console log.
 *
 * A VMM writes the guest's serial console (and its own messages) to its
 * stdout; left to append to a file it would fill the disk for a guest
 * that prints without end.  So banger gives the VMM a pipe and this
 * program the other end: it appends what it reads to the log, and when
 * the log reaches its bound the log becomes <log>.1 (replacing the one
 * before) and a new log starts.  At most twice the bound is on disk, and
 * the latest output is always at the end of <log>.
 *
 * It never stops reading while the VMM writes: a write that fails (a
 * full disk) drops that output, so the VMM never blocks on the pipe.  It
 * ends when the pipe does, i.e. when the VMM is gone; killed earlier, the
 * VMM's writes fail with EPIPE (banger starts it with SIGPIPE ignored)
 * and the guest runs on without a console log.
 *
 *   banger-console --log PATH --max BYTES     (stdin: the VMM's pipe)
 *
 * Its command line names the log, which is how banger finds it again
 * (libbanger/vmm/relay.c).  libc only; no allocation after startup. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIN_MAX 4096ull

static int open_log(const char *path, off_t *size)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	struct stat st;
	*size = fd >= 0 && fstat(fd, &st) == 0 ? st.st_size : 0;
	return fd;
}

/* <log> becomes <log>.1; a fresh <log> is opened. */
static int rotate(int fd, const char *path, const char *older, off_t *size)
{
	if (fd >= 0)
		close(fd);
	if (rename(path, older) != 0) {
		/* Cannot keep the old part: drop it rather than grow.  If that
		 * fails too, the log grows until the next rotation; a relay has
		 * no one to tell.  (A (void) cast does not silence glibc's
		 * warn_unused_result under _FORTIFY_SOURCE.) */
		int ignored = truncate(path, 0);
		(void)ignored;
	}
	return open_log(path, size);
}

static int usage(void)
{
	fprintf(stderr, "usage: banger-console --log PATH --max BYTES  (reads stdin)\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	unsigned long long max = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--log") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--max") == 0 && i + 1 < argc) {
			char *end;
			errno = 0;
			max = strtoull(argv[++i], &end, 10);
			if (errno || *end || end == argv[i])
				return usage();
		} else {
			return usage();
		}
	}
	if (!path || !*path || max < MIN_MAX || max > (unsigned long long)LLONG_MAX)
		return usage();
	char older[PATH_MAX];
	if ((size_t)snprintf(older, sizeof(older), "%s.1", path) >= sizeof(older))
		return usage();
	signal(SIGPIPE, SIG_IGN);

	off_t size;
	int fd = open_log(path, &size);
	static char buf[65536];
	for (;;) {
		ssize_t n = read(0, buf, sizeof(buf));
		if (n == 0)
			break; /* the VMM (every writer) is gone */
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		const char *p = buf;
		size_t left = (size_t)n;
		while (left > 0) {
			if ((unsigned long long)size >= max)
				fd = rotate(fd, path, older, &size);
			size_t room = (size_t)(max - (unsigned long long)size);
			size_t chunk = left < room ? left : room;
			ssize_t w = fd >= 0 ? write(fd, p, chunk) : -1;
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				/* Dropped (no log, disk full): keep draining the pipe.
				 * Counting it moves on to a rotation, which frees space. */
				w = (ssize_t)chunk;
				if (fd < 0)
					fd = open_log(path, &size);
			}
			size += w;
			p += w;
			left -= (size_t)w;
		}
	}
	if (fd >= 0)
		close(fd);
	return 0;
}
