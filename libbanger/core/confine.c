/* Running a tool on a file that someone less trusted wrote.
 *
 * `vm set --disk` runs e2fsck and resize2fs on a work disk the guest has
 * written; a crafted filesystem that exploits one of them must not own
 * the host.  banger often runs as root, so the child gives up what root
 * has before it execs the tool: no_new_privs, every capability (the
 * bounding set too, so exec does not hand root's back), every inherited
 * descriptor above stderr, and, where the kernel has Landlock, the file
 * system except the one file it works on (writable), the system's
 * program and library directories, /proc and /sys (readable).  A root
 * process without capabilities still owns root's files, which is why
 * Landlock carries the weight; without it (kernels before 5.13) the tool
 * runs with the rest and the caller is told.
 *
 * posix_spawn cannot do the dropping, so this is fork + exec: everything
 * the child needs (paths, the Landlock ruleset, descriptors) is prepared
 * before the fork and the child makes only system calls, since the host
 * program may be threaded. */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Landlock's ABI, written out here: the installed UAPI header may be
 * older than the kernel (the values never change). */
#define LL_CREATE_RULESET_VERSION (1u << 0)
#define LL_RULE_PATH_BENEATH 1
#define LL_FS_EXECUTE (1ull << 0)
#define LL_FS_WRITE_FILE (1ull << 1)
#define LL_FS_READ_FILE (1ull << 2)
#define LL_FS_READ_DIR (1ull << 3)
#define LL_FS_V1_ALL ((1ull << 13) - 1) /* EXECUTE .. MAKE_SYM */
#define LL_FS_REFER (1ull << 13)        /* ABI 2 */
#define LL_FS_TRUNCATE (1ull << 14)     /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ull << 15)    /* ABI 5 */
#define LL_NET_BIND_TCP (1ull << 0)     /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ull << 1)
#define LL_SCOPE_ABSTRACT_UNIX (1ull << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ull << 1)

struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

struct ll_path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1u << 2)
#endif

/* Allow access beneath path (a directory, or one file); a path that does
 * not exist is skipped when optional. */
static int ll_allow(int ruleset, const char *path, uint64_t access, bool optional)
{
	int fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		if (optional && errno == ENOENT)
			return 0;
		return bg_error_os(BANGER_EIO, errno, "confine: open %s", path);
	}
	struct stat st;
	if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
		access &= LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV;
	struct ll_path_beneath_attr rule = { access, fd };
	long r = syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &rule, 0);
	int e = errno;
	close(fd);
	return r == 0 ? 0 : bg_error_os(BANGER_EIO, e, "confine: Landlock rule for %s", path);
}

/* A Landlock ruleset for a tool that works on rw_path; *out -1 when the
 * kernel has no Landlock. */
static int ll_ruleset(int *out, const char *rw_path, const char *program)
{
	*out = -1;
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
	if (abi < 1)
		return 0; /* ENOSYS, EOPNOTSUPP: not built in or disabled */
	struct ll_ruleset_attr attr = { LL_FS_V1_ALL, 0, 0 };
	size_t size = sizeof(attr.handled_access_fs);
	uint64_t truncate = 0;
	if (abi >= 2)
		attr.handled_access_fs |= LL_FS_REFER;
	if (abi >= 3)
		attr.handled_access_fs |= truncate = LL_FS_TRUNCATE;
	if (abi >= 4) {
		attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
		size = offsetof(struct ll_ruleset_attr, scoped);
	}
	if (abi >= 5)
		attr.handled_access_fs |= LL_FS_IOCTL_DEV;
	if (abi >= 6) {
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
		size = sizeof(attr);
	}
	int fd = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	if (fd < 0)
		return bg_error_os(BANGER_EIO, errno, "confine: create a Landlock ruleset");
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC); /* it is created O_CLOEXEC; be sure */
	static const char *const code_dirs[] = { "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32" };
	static const char *const read_files[] = { "/etc/ld.so.cache", "/etc/e2fsck.conf", "/etc/mke2fs.conf",
						  "/etc/localtime" };
	const uint64_t rx = LL_FS_EXECUTE | LL_FS_READ_FILE | LL_FS_READ_DIR;
	int rc = 0;
	for (size_t i = 0; !rc && i < BG_ARRAY_SIZE(code_dirs); i++)
		rc = ll_allow(fd, code_dirs[i], rx, true);
	for (size_t i = 0; !rc && i < BG_ARRAY_SIZE(read_files); i++)
		rc = ll_allow(fd, read_files[i], LL_FS_READ_FILE, true);
	if (!rc)
		rc = ll_allow(fd, "/proc", LL_FS_READ_FILE | LL_FS_READ_DIR, true);
	if (!rc)
		rc = ll_allow(fd, "/sys", LL_FS_READ_FILE | LL_FS_READ_DIR, true);
	if (!rc)
		rc = ll_allow(fd, "/dev/null", LL_FS_READ_FILE | LL_FS_WRITE_FILE, false);
	if (!rc) /* the program itself, wherever PATH found it */
		rc = ll_allow(fd, program, LL_FS_EXECUTE | LL_FS_READ_FILE, false);
	if (!rc)
		rc = ll_allow(fd, rw_path, LL_FS_READ_FILE | LL_FS_WRITE_FILE | truncate, false);
	if (rc) {
		close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

/* What the child reports when a step before exec fails. */
struct confine_report {
	int step, err;
};

enum { STEP_STDIO = 1, STEP_NO_NEW_PRIVS, STEP_CAPS, STEP_LANDLOCK, STEP_EXEC };

static const char *step_name(int step)
{
	switch (step) {
	case STEP_STDIO: return "set up stdio";
	case STEP_NO_NEW_PRIVS: return "set no_new_privs";
	case STEP_CAPS: return "drop capabilities";
	case STEP_LANDLOCK: return "enter the Landlock domain";
	default: return "exec";
	}
}

struct confine_plan {
	const char *path;
	char *const *argv;
	int devnull, out_w, err_w, report_w, ruleset;
	const sigset_t *none;
};

_Noreturn static void child_fail(int report_w, int step)
{
	struct confine_report r = { step, errno };
	ssize_t w;
	do
		w = write(report_w, &r, sizeof(r));
	while (w < 0 && errno == EINTR);
	_exit(127);
}

/* In the child: system calls only. */
_Noreturn static void child(const struct confine_plan *p)
{
	if (dup2(p->devnull, 0) < 0 || dup2(p->out_w, 1) < 0 || dup2(p->err_w, 2) < 0)
		child_fail(p->report_w, STEP_STDIO);
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		(void)sigaction(sig, &dfl, NULL);
	(void)sigprocmask(SIG_SETMASK, p->none, NULL);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		child_fail(p->report_w, STEP_NO_NEW_PRIVS);
	/* Root regains nothing at exec: an empty bounding set and no ambient
	 * capabilities (these need CAP_SETPCAP, which only root has to lose). */
	(void)prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
					       SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED,
		    0, 0, 0);
	for (int cap = 0; cap < 64; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno == EINVAL)
			break; /* past the last capability */
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) != 0)
		child_fail(p->report_w, STEP_CAPS);
	if (p->ruleset >= 0 && syscall(SYS_landlock_restrict_self, p->ruleset, 0) != 0)
		child_fail(p->report_w, STEP_LANDLOCK);
	/* Nothing of the host program's reaches the tool: every descriptor
	 * above stderr closes at exec (the report pipe stays until then). */
	if (syscall(SYS_close_range, 3, ~0u, CLOSE_RANGE_CLOEXEC) != 0)
		for (int fd = 3; fd < 4096; fd++)
			(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	execve(p->path, p->argv, environ);
	child_fail(p->report_w, STEP_EXEC);
}

static pid_t fork_child(void)
{
	/* _Fork runs no atfork handlers (glibc >= 2.34): nothing of the host
	 * program's runs in the child. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
	return _Fork();
#else
	return fork();
#endif
}

int bg_run_confined(int *status, char **out, char **err, const char *const argv[], int timeout_ms,
		    const char *rw_path, bool *landlocked)
{
	if (out)
		*out = NULL;
	if (err)
		*err = NULL;
	if (landlocked)
		*landlocked = false;
	if (!argv || !argv[0] || !rw_path)
		return bg_error(BANGER_EINVALID, "confine: a program and a file are required");
	char *path = bg_which(argv[0]);
	if (!path)
		return errno == ENOMEM ? bg_error_oom() : bg_error_os(BANGER_EUNSUPPORTED, ENOENT, "run %s", argv[0]);
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, pr[2] = { -1, -1 };
	int devnull = -1, ruleset = -1, rc = 0;
	if ((rc = ll_ruleset(&ruleset, rw_path, path)))
		goto out;
	if ((devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0 || pipe2(po, O_CLOEXEC) != 0 ||
	    pipe2(pe, O_CLOEXEC) != 0 || pipe2(pr, O_CLOEXEC) != 0) {
		rc = bg_error_os(BANGER_EIO, errno, "confine: descriptors for %s", argv[0]);
		goto out;
	}
	sigset_t none;
	sigemptyset(&none);
	struct confine_plan plan = { path, (char *const *)argv, devnull, po[1], pe[1], pr[1], ruleset, &none };
	pid_t pid = fork_child();
	if (pid < 0) {
		rc = bg_error_os(BANGER_EIO, errno, "confine: fork");
		goto out;
	}
	if (pid == 0)
		child(&plan);
	close(po[1]);
	close(pe[1]);
	close(pr[1]);
	po[1] = pe[1] = pr[1] = -1;
	/* The report pipe closes at exec; a report means a step failed. */
	struct confine_report r = { 0, 0 };
	ssize_t n;
	do
		n = read(pr[0], &r, sizeof(r));
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		int ws;
		while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
			;
		rc = bg_error_os(r.step == STEP_EXEC && r.err == ENOENT ? BANGER_EUNSUPPORTED : BANGER_EIO, r.err,
				 "run %s confined: %s", argv[0], step_name(r.step));
		goto out;
	}
	rc = bg_run_collect(status, out, err, pid, po[0], pe[0], argv[0], timeout_ms);
	if (!rc && landlocked)
		*landlocked = ruleset >= 0;
out:
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
		if (pr[i] >= 0)
			close(pr[i]);
	}
	if (devnull >= 0)
		close(devnull);
	if (ruleset >= 0)
		close(ruleset);
	bg_free(path);
	return rc;
}
