/* device-mapper snapshot targets through the dm ioctls on
 * /dev/mapper/control (no libdevmapper dependency).  Not available on
 * every host (the CI kernels have no dm-mod): bg_dm_available() says. */
#include "host.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/dm-ioctl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define DM_BUF 16384

bool bg_dm_available(void)
{
	int fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static void dm_init(struct dm_ioctl *io, size_t size, const char *name)
{
	memset(io, 0, size);
	io->version[0] = DM_VERSION_MAJOR;
	io->version[1] = 0;
	io->version[2] = 0;
	io->data_size = (__u32)size;
	io->data_start = sizeof(struct dm_ioctl);
	if (name)
		snprintf(io->name, sizeof(io->name), "%s", name);
}

static int dm_call(unsigned long cmd, struct dm_ioctl *io)
{
	int fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = ioctl(fd, cmd, io);
	int e = errno;
	close(fd);
	return r == 0 ? 0 : -e;
}

int bg_dm_snapshot_create(const char *name, const char *origin, const char *cow, uint64_t sectors)
{
	union {
		struct dm_ioctl io;
		char buf[DM_BUF];
	} u;
	int r;
	dm_init(&u.io, sizeof(u), name);
	if ((r = dm_call(DM_DEV_CREATE, &u.io)) != 0 && r != -EBUSY)
		return bg_error_os(BANGER_EIO, -r, "dm create %s", name);

	dm_init(&u.io, sizeof(u), name);
	u.io.target_count = 1;
	struct dm_target_spec *t = (struct dm_target_spec *)(u.buf + sizeof(struct dm_ioctl));
	t->sector_start = 0;
	t->length = sectors;
	snprintf(t->target_type, sizeof(t->target_type), "snapshot");
	char *params = (char *)(t + 1);
	/* persistent COW, 4 KiB chunks */
	int n = snprintf(params, DM_BUF - sizeof(struct dm_ioctl) - sizeof(*t), "%s %s P 8", origin, cow);
	t->next = (__u32)(sizeof(*t) + (size_t)n + 1 + 7) & ~7u;
	if ((r = dm_call(DM_TABLE_LOAD, &u.io)) != 0) {
		bg_dm_remove(name);
		return bg_error_os(BANGER_EIO, -r, "dm load snapshot table for %s", name);
	}
	dm_init(&u.io, sizeof(u), name);
	if ((r = dm_call(DM_DEV_SUSPEND, &u.io)) != 0) { /* no SUSPEND flag: resume */
		bg_dm_remove(name);
		return bg_error_os(BANGER_EIO, -r, "dm resume %s", name);
	}
	return 0;
}

int bg_dm_remove(const char *name)
{
	struct dm_ioctl io;
	dm_init(&io, sizeof(io), name);
	int r = dm_call(DM_DEV_REMOVE, &io);
	if (r == 0 || r == -ENXIO || r == -ENOENT)
		return 0;
	return bg_error_os(r == -EBUSY ? BANGER_EBUSY : BANGER_EIO, -r, "dm remove %s", name);
}

int bg_dm_list(const char *prefix, char ***names, size_t *count)
{
	*names = NULL;
	*count = 0;
	if (!bg_dm_available())
		return 0;
	union {
		struct dm_ioctl io;
		char buf[DM_BUF];
	} u;
	dm_init(&u.io, sizeof(u), NULL);
	int r = dm_call(DM_LIST_DEVICES, &u.io);
	if (r != 0)
		return bg_error_os(BANGER_EIO, -r, "dm list");
	if (u.io.data_size <= u.io.data_start)
		return 0;
	size_t pl = strlen(prefix);
	int rc = 0;
	struct dm_name_list *nl = (struct dm_name_list *)(u.buf + u.io.data_start);
	if (nl->dev == 0)
		return 0;
	for (;;) {
		if (strncmp(nl->name, prefix, pl) == 0) {
			char **nv = bg_realloc(*names, (*count + 1) * sizeof(char *));
			char *dup = bg_strdup(nl->name);
			if (!nv || !dup) {
				if (nv)
					*names = nv;
				bg_free(dup);
				rc = bg_error_oom();
				break;
			}
			*names = nv;
			(*names)[(*count)++] = dup;
		}
		if (!nl->next)
			break;
		nl = (struct dm_name_list *)((char *)nl + nl->next);
	}
	if (rc) {
		bg_strv_free(*names, *count);
		*names = NULL;
		*count = 0;
	}
	return rc;
}
