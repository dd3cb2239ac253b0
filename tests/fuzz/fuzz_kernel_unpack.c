/* Kernel artifacts: the tar (gzip, xz, zstd, ...) a catalog entry points
 * at, unpacked into a staging directory where only the expected regular
 * files (vmlinux, bzImage, config, one initrd*) may appear.
 *
 * Checked: after an unpack that succeeds the staging tree holds exactly
 * the files reported, all regular files; whether it succeeds or not,
 * nothing was written outside the staging directory, and dropping the
 * staging directory leaves the kernels directory empty. */
#include "fuzz.h"
#include "../../libbanger/kernel/kernel.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[64];
static bg_layout layout;

static void cleanup(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", base);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(base, sizeof(base), "/tmp/banger-fuzz-kunpack-XXXXXX");
	if (!mkdtemp(base))
		abort();
	memset(&layout, 0, sizeof(layout));
	layout.kernels_dir = bg_path_join(base, "kernels");
	atexit(cleanup);
	return 0;
}

/* Entries of dir (not "." / ".."), -1 if it cannot be read. */
static int count(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void check_tree(const bg_kernel_staging *st, const bg_kernel_files *f)
{
	int want = f->vmlinux + f->bzimage + f->config + (f->initrd[0] != '\0');
	FUZZ_CHECK(count(st->tree) == want);
	const char *names[] = { f->vmlinux ? "vmlinux" : NULL, f->bzimage ? "bzImage" : NULL,
				f->config ? "config" : NULL, f->initrd[0] ? f->initrd : NULL };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!names[i])
			continue;
		FUZZ_CHECK(!strchr(names[i], '/'));
		struct stat sb;
		FUZZ_CHECK(fstatat(st->tree_fd, names[i], &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode));
	}
	if (f->initrd[0])
		FUZZ_CHECK(strncmp(f->initrd, "initrd", 6) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-artifact", MFD_CLOEXEC);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

	bg_kernel_staging st;
	FUZZ_CHECK(bg_kernel_staging_new(&st, &layout) == 0);
	bg_kernel_files files;
	int rc = bg_kernel_unpack(&st, path, &files);
	if (rc == 0)
		check_tree(&st, &files);
	else
		FUZZ_CHECK(rc == BANGER_EINVALID || rc == BANGER_EUNSUPPORTED || rc == BANGER_ENOMEM ||
			   rc == BANGER_EIO);
	/* nothing beside the staging directory, in the kernels dir or above */
	FUZZ_CHECK(count(base) == 1 && count(layout.kernels_dir) == 1);
	bg_kernel_staging_drop(&st);
	FUZZ_CHECK(count(layout.kernels_dir) == 0);
	close(fd);
	return 0;
}
