/* Host side of vsock.
 *
 * Firecracker (hybrid vsock): the guest's vsock ports are reached through
 * one Unix socket; after connecting, the host writes "CONNECT <port>\n"
 * and Firecracker answers "OK <host port>\n" once the guest accepted, or
 * closes the connection when nothing listens.  A guest that is still
 * booting refuses, so we retry every ~100 ms up to the caller's deadline,
 * and every read has its own deadline (Firecracker <= 1.16.1 can leave a
 * CONNECT unanswered forever after a pause/resume).
 *
 * QEMU (vhost-vsock): a plain AF_VSOCK stream to cid:port. */
#include "vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define RETRY_MS 100
#define ACK_MS 1000   /* one CONNECT's answer */
#define STEP_MS 1000  /* one connect() */

/* hybrid_attempt: 0 connected, RETRY, or a negative banger code (fatal). */
#define RETRY 1

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* poll one fd until deadline: 1 ready, 0 timeout, -1 error (errno). */
static int wait_fd(int fd, short ev, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - bg_now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = { fd, ev, 0 };
		int n = poll(&p, 1, (int)left);
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

static int set_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		return -1;
	return 0;
}

static int hybrid_attempt(int *out, const char *uds, uint32_t port, int64_t deadline, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, uds, strlen(uds) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		return bg_error_os(BANGER_EIO, errno, "vsock: socket");
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		close(fd);
		if (e == ENOENT || e == ECONNREFUSED || e == EAGAIN || e == EINTR) {
			snprintf(why, whylen, "cannot connect to %s: %s", uds, strerror(e));
			return RETRY;
		}
		return bg_error_os(bg_code_from_errno(e), e, "vsock: connect %s", uds);
	}

	char req[32];
	int len = snprintf(req, sizeof(req), "CONNECT %u\n", port);
	int off = 0;
	while (off < len) {
		int r = wait_fd(fd, POLLOUT, min64(deadline, bg_now_ms() + ACK_MS));
		if (r <= 0) {
			snprintf(why, whylen, "could not send CONNECT %u", port);
			close(fd);
			return RETRY;
		}
		ssize_t n = send(fd, req + off, (size_t)(len - off), MSG_NOSIGNAL);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			snprintf(why, whylen, "sending CONNECT %u: %s", port, strerror(errno));
			close(fd);
			return RETRY;
		}
		off += (int)n;
	}

	/* Read the answer byte by byte: nothing past the newline belongs to
	 * us, it is the guest's stream. */
	char line[40] = "";
	size_t ln = 0;
	int64_t ack_deadline = min64(deadline, bg_now_ms() + ACK_MS);
	for (;;) {
		int r = wait_fd(fd, POLLIN, ack_deadline);
		if (r <= 0) {
			snprintf(why, whylen, "no answer to CONNECT %u within %d ms", port, ACK_MS);
			close(fd);
			return RETRY;
		}
		char c;
		ssize_t n = recv(fd, &c, 1, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			snprintf(why, whylen, "the guest is not listening on vsock port %u (connection %s)", port,
				 n == 0 ? "closed" : "reset");
			close(fd);
			return RETRY;
		}
		if (c == '\n')
			break;
		if (ln + 1 >= sizeof(line)) {
			close(fd);
			return bg_error(BANGER_EVMM, "vsock: over-long answer to CONNECT %u on %s", port, uds);
		}
		line[ln++] = c;
	}
	line[ln] = '\0';
	const char *p = line + 3;
	/* strlen(line) != ln: a NUL byte would hide the rest of the answer */
	if (strlen(line) != ln || strncmp(line, "OK ", 3) != 0 || !*p || strspn(p, "0123456789") != strlen(p)) {
		close(fd);
		return bg_error(BANGER_EVMM, "vsock: unexpected answer to CONNECT %u on %s: \"%s\"", port, uds, line);
	}
	if (set_blocking(fd) != 0) {
		int e = errno;
		close(fd);
		return bg_error_os(BANGER_EIO, e, "vsock: fcntl");
	}
	*out = fd;
	return 0;
}

int bg_vsock_connect_hybrid(int *fd, const char *uds_path, uint32_t port, int timeout_ms)
{
	*fd = -1;
	struct sockaddr_un sa;
	if (!uds_path || !*uds_path || strlen(uds_path) >= sizeof(sa.sun_path))
		return bg_error(BANGER_EINVALID, "vsock: bad uds path");
	int64_t start = bg_now_ms(), deadline = start + (timeout_ms < 0 ? 0 : timeout_ms);
	char why[256] = "no attempt made";
	unsigned attempts = 0;
	for (;;) {
		attempts++;
		int r = hybrid_attempt(fd, uds_path, port, deadline, why, sizeof(why));
		if (r <= 0)
			return r;
		int64_t left = deadline - bg_now_ms();
		if (left <= 0)
			break;
		bg_sleep_ms((int)min64(left, RETRY_MS));
		if (deadline - bg_now_ms() <= 0)
			break;
	}
	return bg_error(BANGER_ETIMEOUT, "vsock port %u via %s: %s (gave up after %lld ms, %u attempts)", port,
			uds_path, why, (long long)(bg_now_ms() - start), attempts);
}

int bg_vsock_connect_cid(int *fd, uint32_t cid, uint32_t port, int timeout_ms)
{
	*fd = -1;
	int64_t start = bg_now_ms(), deadline = start + (timeout_ms < 0 ? 0 : timeout_ms);
	int last = 0;
	unsigned attempts = 0;
	for (;;) {
		attempts++;
		int s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (s < 0) {
			if (errno == EAFNOSUPPORT)
				return bg_error_os(BANGER_EUNSUPPORTED, errno, "vsock: this host has no AF_VSOCK");
			return bg_error_os(BANGER_EIO, errno, "vsock: socket");
		}
		struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
		int e = 0;
		if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			e = errno;
			if (e == EINPROGRESS || e == EINTR) {
				int r = wait_fd(s, POLLOUT, min64(deadline, bg_now_ms() + STEP_MS));
				socklen_t sl = sizeof(e);
				if (r == 1 && getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &sl) != 0)
					e = errno;
				else if (r == 0)
					e = ETIMEDOUT;
				else if (r < 0)
					e = errno;
			}
		}
		if (e == 0) {
			if (set_blocking(s) != 0) {
				e = errno;
				close(s);
				return bg_error_os(BANGER_EIO, e, "vsock: fcntl");
			}
			*fd = s;
			return 0;
		}
		close(s);
		last = e;
		if (e == EAFNOSUPPORT)
			return bg_error_os(BANGER_EUNSUPPORTED, e, "vsock: this host has no AF_VSOCK");
		if (e != ECONNRESET && e != ECONNREFUSED && e != ETIMEDOUT && e != EHOSTUNREACH && e != ENODEV &&
		    e != EAGAIN && e != EINTR && e != ENETUNREACH)
			return bg_error_os(bg_code_from_errno(e), e, "vsock: connect cid %u port %u", cid, port);
		int64_t left = deadline - bg_now_ms();
		if (left <= 0)
			break;
		bg_sleep_ms((int)min64(left, RETRY_MS));
		if (deadline - bg_now_ms() <= 0)
			break;
	}
	return bg_error_os(BANGER_ETIMEOUT, last, "vsock cid %u port %u: not reachable after %lld ms (%u attempts)",
			   cid, port, (long long)(bg_now_ms() - start), attempts);
}
