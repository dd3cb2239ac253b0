/* Loop devices through the kernel interface: LOOP_CTL_GET_FREE, then
 * LOOP_CONFIGURE (Linux 5.8+) or LOOP_SET_FD + LOOP_SET_STATUS64. */
#include "host.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#ifndef LOOP_CONFIGURE
#define LOOP_CONFIGURE 0x4C0A
struct loop_config {
	__u32 fd;
	__u32 block_size;
	struct loop_info64 info;
	__u64 __reserved[8];
};
#endif

static int configure(int loopfd, int filefd, const char *file, bool read_only, bool autoclear)
{
	struct loop_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.fd = (__u32)filefd;
	cfg.info.lo_flags = (autoclear ? LO_FLAGS_AUTOCLEAR : 0) | (read_only ? LO_FLAGS_READ_ONLY : 0);
	snprintf((char *)cfg.info.lo_file_name, sizeof(cfg.info.lo_file_name), "%s", file);
	if (ioctl(loopfd, LOOP_CONFIGURE, &cfg) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOTTY)
		return -1;
	/* Older kernels: two steps. */
	if (ioctl(loopfd, LOOP_SET_FD, filefd) != 0)
		return -1;
	if (ioctl(loopfd, LOOP_SET_STATUS64, &cfg.info) != 0) {
		int e = errno;
		ioctl(loopfd, LOOP_CLR_FD, 0);
		errno = e;
		return -1;
	}
	return 0;
}

int bg_loop_attach(const char *file, bool read_only, char **dev, int *keep_fd)
{
	*dev = NULL;
	if (keep_fd)
		*keep_fd = -1;
	int filefd = open(file, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (filefd < 0)
		return bg_error_os(bg_code_from_errno(errno), errno, "open %s", file);
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		int e = errno;
		close(filefd);
		return bg_error_os(BANGER_EUNSUPPORTED, e, "open /dev/loop-control");
	}
	int rc = 0;
	/* Another process may grab the same free device between GET_FREE and
	 * CONFIGURE: retry on EBUSY. */
	for (int attempt = 0; attempt < 16; attempt++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0) {
			rc = bg_error_os(BANGER_EIO, errno, "LOOP_CTL_GET_FREE");
			break;
		}
		char path[32];
		snprintf(path, sizeof(path), "/dev/loop%d", n);
		int lfd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (lfd < 0) {
			rc = bg_error_os(BANGER_EIO, errno, "open %s", path);
			break;
		}
		int r = configure(lfd, filefd, file, read_only, keep_fd != NULL);
		int e = errno;
		if (r == 0) {
			*dev = bg_strdup(path);
			rc = *dev ? 0 : bg_error_oom();
			if (rc)
				bg_loop_detach(path);
			if (rc || !keep_fd)
				close(lfd);
			else
				*keep_fd = lfd;
			break;
		}
		close(lfd);
		if (e != EBUSY) {
			rc = bg_error_os(BANGER_EIO, e, "attach %s to %s", file, path);
			break;
		}
		rc = bg_error_os(BANGER_EBUSY, e, "attach %s", file);
	}
	close(ctl);
	close(filefd);
	return rc;
}

int bg_loop_detach(const char *dev)
{
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : bg_error_os(BANGER_EIO, errno, "open %s", dev);
	int rc = 0;
	if (ioctl(fd, LOOP_CLR_FD, 0) != 0 && errno != ENXIO)
		rc = bg_error_os(errno == EBUSY ? BANGER_EBUSY : BANGER_EIO, errno, "detach %s", dev);
	close(fd);
	return rc;
}

int bg_loop_list_under(const char *dir, char ***devs, size_t *count)
{
	*devs = NULL;
	*count = 0;
	DIR *d = opendir("/sys/block");
	if (!d)
		return 0;
	size_t dl = strlen(dir);
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d)) && !rc) {
		if (strncmp(e->d_name, "loop", 4) != 0)
			continue;
		char path[300], backing[4096];
		snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file", e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, backing, sizeof(backing) - 1);
		close(fd);
		if (n <= 0)
			continue;
		backing[n] = '\0';
		backing[strcspn(backing, "\n")] = '\0';
		if (strncmp(backing, dir, dl) != 0 || backing[dl] != '/')
			continue;
		char **nv = bg_realloc(*devs, (*count + 1) * sizeof(char *));
		char *dev = bg_sprintf("/dev/%s", e->d_name);
		if (!nv || !dev) {
			if (nv)
				*devs = nv;
			bg_free(dev);
			rc = bg_error_oom();
			break;
		}
		*devs = nv;
		(*devs)[(*count)++] = dev;
	}
	closedir(d);
	if (rc) {
		bg_strv_free(*devs, *count);
		*devs = NULL;
		*count = 0;
	}
	return rc;
}
