/* The copy-on-write system disk where device-mapper is absent: a reflink
 * clone (FICLONE: instant, shares blocks) when the filesystem supports
 * it, else a sparse copy that keeps holes. */
#include "host.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

const char *bg_overlay_kind_name(bg_overlay_kind k)
{
	switch (k) {
	case BG_OVERLAY_DM_SNAPSHOT: return "dm-snapshot";
	case BG_OVERLAY_REFLINK: return "reflink";
	case BG_OVERLAY_COPY: return "copy";
	}
	return "unknown";
}

int bg_overlay_kind_parse(bg_overlay_kind *out, const char *s)
{
	if (bg_streq(s, "dm-snapshot"))
		*out = BG_OVERLAY_DM_SNAPSHOT;
	else if (bg_streq(s, "reflink"))
		*out = BG_OVERLAY_REFLINK;
	else if (bg_streq(s, "copy"))
		*out = BG_OVERLAY_COPY;
	else
		return bg_error(BANGER_EINVALID, "unknown overlay strategy '%s'", s ? s : "");
	return 0;
}

static int copy_range(int in, int out, off_t start, off_t end)
{
	off_t off_in = start, off_out = start;
	while (off_in < end) {
		ssize_t n = copy_file_range(in, &off_in, out, &off_out, (size_t)(end - off_in), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP) {
				/* fall back to read/write */
				char buf[1 << 16];
				while (off_in < end) {
					size_t want = (size_t)(end - off_in) < sizeof(buf) ? (size_t)(end - off_in) : sizeof(buf);
					ssize_t r = pread(in, buf, want, off_in);
					if (r <= 0)
						return r == 0 ? 0 : -1;
					if (pwrite(out, buf, (size_t)r, off_out) != r)
						return -1;
					off_in += r;
					off_out += r;
				}
				return 0;
			}
			return -1;
		}
		if (n == 0)
			break;
	}
	return 0;
}

/* Copy only the data extents: holes stay holes. */
static int sparse_copy(int in, int out, off_t size)
{
	if (ftruncate(out, size) != 0)
		return -1;
	off_t pos = 0;
	while (pos < size) {
		off_t data = lseek(in, pos, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO)
				return 0; /* only a hole remains */
			return copy_range(in, out, pos, size); /* no SEEK_DATA: copy all */
		}
		off_t hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			hole = size;
		if (copy_range(in, out, data, hole) != 0)
			return -1;
		pos = hole;
	}
	return 0;
}

int bg_overlay_clone(const char *src, const char *dst, bg_overlay_kind *kind)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return bg_error_os(bg_code_from_errno(errno), errno, "open %s", src);
	struct stat st;
	if (fstat(in, &st) != 0) {
		int e = errno;
		close(in);
		return bg_error_os(BANGER_EIO, e, "stat %s", src);
	}
	int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0) {
		int e = errno;
		close(in);
		return bg_error_os(bg_code_from_errno(e), e, "create %s", dst);
	}
	int rc = 0;
	if (ioctl(out, FICLONE, in) == 0) {
		*kind = BG_OVERLAY_REFLINK;
	} else if (sparse_copy(in, out, st.st_size) == 0) {
		*kind = BG_OVERLAY_COPY;
	} else {
		rc = bg_error_os(BANGER_EIO, errno, "copy %s to %s", src, dst);
	}
	if (!rc && fsync(out) != 0)
		rc = bg_error_os(BANGER_EIO, errno, "fsync %s", dst);
	close(in);
	close(out);
	if (rc)
		unlink(dst);
	return rc;
}

bg_overlay_kind bg_overlay_probe(const char *dir)
{
	if (bg_dm_available())
		return BG_OVERLAY_DM_SNAPSHOT;
	char *a = bg_sprintf("%s/.overlay-probe-%ld-a", dir, (long)getpid());
	char *b = bg_sprintf("%s/.overlay-probe-%ld-b", dir, (long)getpid());
	bg_overlay_kind kind = BG_OVERLAY_COPY;
	int fa = a ? open(a, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
	int fb = b ? open(b, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
	if (fa >= 0 && fb >= 0) {
		char block[4096];
		memset(block, 0x5a, sizeof(block));
		if (write(fa, block, sizeof(block)) == (ssize_t)sizeof(block) && fsync(fa) == 0 &&
		    ioctl(fb, FICLONE, fa) == 0)
			kind = BG_OVERLAY_REFLINK;
	}
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	if (a)
		unlink(a);
	if (b)
		unlink(b);
	bg_free(a);
	bg_free(b);
	return kind;
}
