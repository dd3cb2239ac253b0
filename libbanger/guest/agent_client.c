/* Host side of the vsock agent (docs/vsock-agent.md): one request line,
 * one reply line, every read and write under a deadline; connections go
 * through Firecracker's hybrid vsock or AF_VSOCK (vmm/vsock.c). */
#include "agent.h"

#include "../layout/layout.h"
#include "../vmm/vmm.h"

#include <errno.h>
#include <ext2fs/ext2fs.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CMD_MAX 64

/* poll one fd until deadline: 1 ready, 0 timeout, -1 error (errno). */
static int wait_fd(int fd, short ev, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - bg_now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = { fd, ev, 0 };
		int n = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

int bg_agent_request(char **reply, int fd, const char *cmd, int timeout_ms)
{
	*reply = NULL;
	size_t clen = cmd ? strlen(cmd) : 0;
	if (clen == 0 || clen > CMD_MAX)
		return bg_error(BANGER_EINVALID, "agent: bad command");
	for (size_t i = 0; i < clen; i++)
		if (cmd[i] < 0x20 || cmd[i] > 0x7e)
			return bg_error(BANGER_EINVALID, "agent: bad command");
	char req[CMD_MAX + 2];
	memcpy(req, cmd, clen);
	req[clen] = '\n';
	size_t len = clen + 1, off = 0;
	int64_t deadline = bg_now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);

	while (off < len) {
		int r = wait_fd(fd, POLLOUT, deadline);
		if (r == 0)
			return bg_error(BANGER_ETIMEOUT, "agent: could not send %s within %d ms", cmd, timeout_ms);
		if (r < 0)
			return bg_error_os(BANGER_EIO, errno, "agent: poll");
		ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (n < 0)
			return bg_error_os(BANGER_EIO, errno, "agent: sending %s", cmd);
		off += (size_t)n;
	}

	char line[BG_AGENT_LINE_MAX + 1];
	size_t ln = 0;
	for (;;) {
		int r = wait_fd(fd, POLLIN, deadline);
		if (r == 0)
			return bg_error(BANGER_ETIMEOUT, "agent: no answer to %s within %d ms", cmd, timeout_ms);
		if (r < 0)
			return bg_error_os(BANGER_EIO, errno, "agent: poll");
		char c;
		ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (n < 0)
			return bg_error_os(BANGER_EIO, errno, "agent: reading the answer to %s", cmd);
		if (n == 0)
			return bg_error(BANGER_EIO, "agent: connection closed before the answer to %s", cmd);
		if (c == '\n')
			break;
		if (c == '\0')
			return bg_error(BANGER_EVMM, "agent: the answer to %s contains a NUL byte", cmd);
		if (ln >= BG_AGENT_LINE_MAX)
			return bg_error(BANGER_EVMM, "agent: the answer to %s is longer than %d bytes", cmd,
					BG_AGENT_LINE_MAX);
		line[ln++] = c;
	}
	if (ln > 0 && line[ln - 1] == '\r')
		ln--;
	line[ln] = '\0';
	*reply = bg_strndup(line, ln);
	return *reply ? 0 : bg_error_oom();
}

int bg_agent_connect(int *fd, const bg_agent_addr *addr, int timeout_ms)
{
	*fd = -1;
	if (!addr)
		return bg_error(BANGER_EINVALID, "agent: no address");
	uint32_t port = addr->port ? addr->port : BG_AGENT_PORT;
	if (addr->uds_path)
		return bg_vsock_connect_hybrid(fd, addr->uds_path, port, timeout_ms);
	if (addr->cid < 3)
		return bg_error(BANGER_EINVALID, "agent: no vsock path or guest CID");
	return bg_vsock_connect_cid(fd, addr->cid, port, timeout_ms);
}

int bg_agent_parse_ready(bg_agent_report *out, const char *line)
{
	memset(out, 0, sizeof(*out));
	static const char ok[] = BG_AGENT_OK " ";
	if (!line || strncmp(line, ok, strlen(ok)) != 0)
		return bg_error(BANGER_EVMM, "agent: READY answered \"%.100s\"", line ? line : "");
	bool have_systemd = false, have_sshd = false;
	const char *p = line + strlen(ok);
	while (*p) {
		p += strspn(p, " ");
		size_t wl = strcspn(p, " ");
		if (wl == 0)
			break;
		const char *eq = memchr(p, '=', wl);
		if (eq) {
			size_t kl = (size_t)(eq - p), vl = wl - kl - 1;
			const char *v = eq + 1;
			if (kl == strlen(BG_AGENT_KEY_SYSTEMD) && memcmp(p, BG_AGENT_KEY_SYSTEMD, kl) == 0) {
				if (vl == 0 || vl >= sizeof(out->systemd) ||
				    strspn(v, "abcdefghijklmnopqrstuvwxyz-") < vl)
					return bg_error(BANGER_EVMM, "agent: bad systemd state in \"%.100s\"", line);
				memcpy(out->systemd, v, vl);
				out->systemd[vl] = '\0';
				have_systemd = true;
			} else if (kl == strlen(BG_AGENT_KEY_SSHD) && memcmp(p, BG_AGENT_KEY_SSHD, kl) == 0) {
				if (vl == strlen(BG_AGENT_SSHD_LISTENING) && memcmp(v, BG_AGENT_SSHD_LISTENING, vl) == 0)
					out->sshd_listening = true;
				else if (vl == strlen(BG_AGENT_SSHD_NOT_LISTENING) &&
					 memcmp(v, BG_AGENT_SSHD_NOT_LISTENING, vl) == 0)
					out->sshd_listening = false;
				else
					return bg_error(BANGER_EVMM, "agent: bad sshd state in \"%.100s\"", line);
				have_sshd = true;
			}
		}
		p += wl;
	}
	if (!have_systemd || !have_sshd)
		return bg_error(BANGER_EVMM, "agent: READY answer lacks %s: \"%.100s\"",
				have_systemd ? BG_AGENT_KEY_SSHD "=" : BG_AGENT_KEY_SYSTEMD "=", line);
	return 0;
}

/* "OK banger-vsock-agent <n>" with n >= BG_AGENT_PROTOCOL */
static int check_version(const char *line)
{
	const char *pfx = BG_AGENT_VERSION_PREFIX;
	size_t pl = strlen(pfx);
	if (strncmp(line, pfx, pl) == 0) {
		const char *v = line + pl;
		size_t dl = strspn(v, "0123456789");
		if (dl > 0 && dl < 10 && (v[dl] == '\0' || v[dl] == ' ') && strtol(v, NULL, 10) >= BG_AGENT_PROTOCOL)
			return 0;
	}
	return bg_error(BANGER_EVMM, "agent: unexpected answer to VERSION: \"%.100s\"", line);
}

/* Connect, then run cmds in order within one deadline; the last reply
 * goes to *last (bg_free). */
static int session(char **last, const bg_agent_addr *addr, const char *const *cmds, size_t n, int timeout_ms)
{
	*last = NULL;
	int64_t deadline = bg_now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
	int fd = -1;
	int rc = bg_agent_connect(&fd, addr, timeout_ms);
	if (rc)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		int64_t left = deadline - bg_now_ms();
		/* the connect may have used it all: a short last chance */
		if (left < 200)
			left = 200;
		char *r = NULL;
		rc = bg_agent_request(&r, fd, cmds[i], (int)left);
		if (rc == 0 && i + 1 < n && bg_streq(cmds[i], BG_AGENT_CMD_VERSION))
			rc = check_version(r);
		if (rc == 0 && i + 1 == n)
			*last = r;
		else
			bg_free(r);
	}
	close(fd);
	return rc;
}

int bg_agent_ready(bg_agent_report *out, const bg_agent_addr *addr, int timeout_ms)
{
	memset(out, 0, sizeof(*out));
	static const char *const cmds[] = { BG_AGENT_CMD_VERSION, BG_AGENT_CMD_READY };
	char *r = NULL;
	int rc = session(&r, addr, cmds, 2, timeout_ms);
	if (rc == 0) {
		rc = bg_agent_parse_ready(out, r);
		bg_free(r);
	}
	return rc;
}

int bg_agent_poweroff(const bg_agent_addr *addr, int timeout_ms)
{
	static const char *const cmds[] = { BG_AGENT_CMD_VERSION, BG_AGENT_CMD_POWEROFF };
	char *r = NULL;
	int rc = session(&r, addr, cmds, 2, timeout_ms);
	if (rc == 0 && !bg_streq(r, BG_AGENT_OK))
		rc = bg_error(BANGER_EVMM, "agent: POWEROFF answered \"%.100s\"", r);
	bg_free(r);
	return rc;
}

/* ---- the image side ---- */

static bool ext2_regular(ext2_filsys fs, const char *path)
{
	ext2_ino_t ino = 0;
	struct ext2_inode inode;
	return ext2fs_namei_follow(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path, &ino) == 0 &&
	       ext2fs_read_inode(fs, ino, &inode) == 0 && LINUX_S_ISREG(inode.i_mode);
}

bool bg_agent_image_has(const char *rootfs_path)
{
	if (!rootfs_path)
		return false;
	ext2_filsys fs = NULL;
	if (ext2fs_open(rootfs_path, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs) != 0)
		return false;
	static const char *const units[] = { BG_AGENT_GUEST_UNIT,
					     "/usr/lib/systemd/system/" BG_AGENT_UNIT_NAME,
					     "/lib/systemd/system/" BG_AGENT_UNIT_NAME };
	bool has = ext2_regular(fs, BG_AGENT_GUEST_BIN);
	bool unit = false;
	for (size_t i = 0; has && !unit && i < BG_ARRAY_SIZE(units); i++)
		unit = ext2_regular(fs, units[i]);
	ext2fs_close_free(&fs);
	return has && unit;
}

int bg_agent_host_files(char **agent, char **unit)
{
	const char *const names[] = { BG_AGENT_NAME, BG_AGENT_UNIT_NAME };
	char *paths[2];
	*agent = *unit = NULL;
	int rc = bg_guest_files(paths, names, 2);
	if (rc) {
		bg_error_prefix("the vsock agent");
		return rc;
	}
	*agent = paths[0];
	*unit = paths[1];
	return 0;
}
