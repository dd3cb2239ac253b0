/* The guest side of the vsock agent protocol: the request lines
 * banger-vsock-agent reads from the host (guest/agent/, compiled in here
 * with its main renamed).  Requests reach it from any process on the
 * host that can open the VM's vsock socket, so anything may arrive.
 *
 * The input is what a client sends (then it closes); the agent's
 * connection code reads it from a socket pair as it would from vsock.
 * Checked: every reply is one line starting with "OK", "PONG" or "ERR";
 * the agent asks for a power-off only after a POWEROFF line; the
 * connection's buffer never holds more than a line.  The agent runs with
 * --sysroot pointing at an empty directory, so READY runs no program and
 * a power-off request is only reported, never carried out. */
#include "fuzz.h"

#define main banger_vsock_agent_main
#include "../../guest/agent/banger-vsock-agent.c"
#undef main

static char sysroot[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(sysroot, sizeof(sysroot), "/tmp/banger-fuzz-agent-%d", (int)getpid());
	mkdir(sysroot, 0700);
	opt.sysroot = sysroot;
	return 0;
}

static bool has_line(const uint8_t *data, size_t size, const char *cmd)
{
	size_t n = strlen(cmd);
	for (size_t i = 0; i + n <= size; i++)
		if ((i == 0 || data[i - 1] == '\n') && memcmp(data + i, cmd, n) == 0 &&
		    (i + n == size || data[i + n] == '\n' || data[i + n] == '\r'))
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 16384)
		return 0;
	int sv[2];
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	int big = 256 * 1024;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	if (size)
		FUZZ_CHECK(send(sv[1], data, size, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)size);
	shutdown(sv[1], SHUT_WR);

	client c = { .fd = sv[0], .len = 0, .deadline = now_ms() + 1000 };
	bool poweroff = false;
	for (int rounds = 0; c.fd >= 0 && rounds < 4096; rounds++) {
		FUZZ_CHECK(c.len <= sizeof(c.buf));
		if (client_readable(&c)) {
			poweroff = true;
			break;
		}
	}
	if (c.fd >= 0)
		client_close(&c);
	if (poweroff)
		FUZZ_CHECK(has_line(data, size, "POWEROFF"));

	/* every reply is a whole line of the protocol */
	char buf[65536];
	size_t got = 0;
	for (;;) {
		ssize_t n = recv(sv[1], buf + got, sizeof(buf) - 1 - got, MSG_DONTWAIT);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == sizeof(buf) - 1)
			break;
	}
	buf[got] = '\0';
	for (char *line = buf; *line;) {
		char *nl = strchr(line, '\n');
		FUZZ_CHECK(nl != NULL);
		*nl = '\0';
		FUZZ_CHECK(strncmp(line, "OK", 2) == 0 || strcmp(line, "PONG") == 0 || strncmp(line, "ERR ", 4) == 0);
		line = nl + 1;
	}
	close(sv[1]);
	return 0;
}
