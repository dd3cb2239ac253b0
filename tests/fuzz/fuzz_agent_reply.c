/* What the vsock agent answers, as the host reads it: the guest is not
 * trusted, so its reply line and the READY report are outside input.
 *
 * The input is the peer's whole output (then it hangs up).  Checked:
 * bg_agent_request succeeds exactly when the input holds a newline within
 * 257 bytes and no NUL before it; the reply is that line (one trailing CR
 * dropped); nothing past the newline is consumed.  When
 * bg_agent_parse_ready accepts the reply, the report is sane. */
#include "fuzz.h"
#include "../../libbanger/guest/agent.h"

#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 32 * 1024)
		return 0;
	int sv[2];
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	size_t off = 0;
	while (off < size) {
		ssize_t n = send(sv[1], data + off, size - off, MSG_NOSIGNAL);
		FUZZ_CHECK(n > 0);
		off += (size_t)n;
	}
	shutdown(sv[1], SHUT_WR);

	const uint8_t *nl = size ? memchr(data, '\n', size) : NULL;
	size_t n = nl ? (size_t)(nl - data) : size;
	bool ok = nl && n <= BG_AGENT_LINE_MAX && !memchr(data, '\0', n);

	char *reply = NULL;
	int rc = bg_agent_request(&reply, sv[0], "READY", 1000);
	if (rc == 0) {
		FUZZ_CHECK(ok && reply);
		size_t want = n > 0 && data[n - 1] == '\r' ? n - 1 : n;
		FUZZ_CHECK(strlen(reply) == want && memcmp(reply, data, want) == 0);
		/* the rest is still there, unread */
		size_t rest = size - n - 1, got = 0;
		uint8_t *buf = malloc(rest + 1);
		FUZZ_CHECK(buf);
		for (;;) {
			ssize_t r = recv(sv[0], buf + got, rest + 1 - got, 0);
			if (r <= 0)
				break;
			got += (size_t)r;
			if (got > rest)
				break;
		}
		FUZZ_CHECK(got == rest && memcmp(buf, data + n + 1, rest) == 0);
		free(buf);

		bg_agent_report rep;
		if (bg_agent_parse_ready(&rep, reply) == 0) {
			size_t sl = strlen(rep.systemd);
			FUZZ_CHECK(sl > 0 && sl < sizeof(rep.systemd));
			FUZZ_CHECK(strspn(rep.systemd, "abcdefghijklmnopqrstuvwxyz-") == sl);
			FUZZ_CHECK(strncmp(reply, "OK ", 3) == 0);
			FUZZ_CHECK(strstr(reply, rep.sshd_listening ? "sshd=listening" : "sshd=not-listening"));
		}
		bg_free(reply);
	} else {
		FUZZ_CHECK(reply == NULL);
		FUZZ_CHECK(!ok);
		FUZZ_CHECK(rc == BANGER_EIO || rc == BANGER_EVMM);
	}
	close(sv[0]);
	close(sv[1]);
	return 0;
}
