/* Firecracker's hybrid vsock handshake: the host sends "CONNECT <port>\n"
 * on the VM's vsock Unix socket and reads back "OK <host port>\n" from
 * Firecracker; whatever follows belongs to the guest's stream.
 *
 * The input is what the peer answers (then it closes).  Checked: success
 * exactly when the answer starts with a line "OK <digits>", and then the
 * descriptor is connected and reads the rest of the input unchanged
 * (nothing past the newline is swallowed). */
#include "fuzz.h"
#include "../../libbanger/vmm/vmm.h"

#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char sock_path[108];
static int listen_fd = -1;

struct peer {
	const uint8_t *data;
	size_t size;
	char request[64];
	size_t request_len;
};

static void *serve(void *arg)
{
	struct peer *p = arg;
	int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return NULL;
	/* read the CONNECT line first, as Firecracker does */
	while (p->request_len < sizeof(p->request) - 1) {
		char ch;
		if (recv(c, &ch, 1, 0) != 1)
			break;
		p->request[p->request_len++] = ch;
		if (ch == '\n')
			break;
	}
	size_t off = 0;
	while (off < p->size) {
		ssize_t n = send(c, p->data + off, p->size - off, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(c);
	return NULL;
}

static void cleanup(void)
{
	unlink(sock_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(sock_path, sizeof(sock_path), "/tmp/banger-fuzz-vsock-%d.sock", (int)getpid());
	unlink(sock_path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(listen_fd, 4) != 0)
		abort();
	atexit(cleanup);
	return 0;
}

static bool answer_ok(const uint8_t *data, size_t size, size_t *line_len)
{
	const uint8_t *nl = size ? memchr(data, '\n', size) : NULL;
	if (!nl)
		return false;
	size_t n = (size_t)(nl - data);
	*line_len = n + 1;
	if (n < 4 || n >= 40 || memcmp(data, "OK ", 3) != 0)
		return false;
	for (size_t i = 3; i < n; i++)
		if (data[i] < '0' || data[i] > '9')
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 32 * 1024)
		return 0;
	struct peer p = { .data = data, .size = size };
	pthread_t t;
	FUZZ_CHECK(pthread_create(&t, NULL, serve, &p) == 0);
	int fd = -1;
	/* A short deadline: an answer without a newline makes banger retry
	 * (the peer closed), and each retry then waits for an answer that
	 * never comes, until the deadline. */
	int rc = bg_vsock_connect_hybrid(&fd, sock_path, 52, 100);
	size_t line_len = 0;
	bool ok = answer_ok(data, size, &line_len);
	if (rc == 0) {
		FUZZ_CHECK(ok && fd >= 0);
		/* the rest of the input is the guest's stream, unchanged */
		size_t want = size - line_len, got = 0;
		uint8_t *buf = malloc(want + 1);
		FUZZ_CHECK(buf);
		for (;;) {
			ssize_t n = recv(fd, buf + got, want + 1 - got, 0);
			if (n <= 0)
				break;
			got += (size_t)n;
			if (got > want)
				break;
		}
		FUZZ_CHECK(got == want && memcmp(buf, data + line_len, want) == 0);
		free(buf);
		close(fd);
	} else {
		FUZZ_CHECK(fd == -1);
		/* an "OK <port>" answer within the deadline must succeed; a slow
		 * scheduler may time the one attempt out, which is ETIMEOUT */
		FUZZ_CHECK(!ok || rc == BANGER_ETIMEOUT);
	}
	pthread_join(t, NULL);
	/* retries left connections in the backlog: drop them before the next
	 * input, whose server would otherwise answer a dead client */
	for (;;) {
		struct pollfd pf = { listen_fd, POLLIN, 0 };
		if (poll(&pf, 1, 0) <= 0)
			break;
		int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			break;
		close(c);
	}
	FUZZ_CHECK(strcmp(p.request, "CONNECT 52\n") == 0);
	return 0;
}
