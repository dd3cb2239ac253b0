/* QMP, QEMU's JSON protocol: single messages, and the client reading a
 * stream of them from a socket (line splitting, events skipped, errors
 * turned into messages).
 *
 * The input is parsed as one line, then written to one end of a socket
 * pair whose other end a QMP client executes a command on.  Checked: a
 * parsed message has the fields of its kind; a command either returns a
 * JSON value or fails with a VMM / I/O error, never hangs (the peer is
 * closed, so every read ends). */
#include "fuzz.h"
#include "../../libbanger/vmm/vmm.h"

#include <jansson.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* QMP messages are bounded lines; the socket buffer must hold it all */
	if (size > 64 * 1024)
		return 0;
	char *line = fuzz_cstr(data, size);
	bg_qmp_msg m;
	int rc = bg_qmp_parse(&m, line);
	if (rc == 0) {
		switch (m.kind) {
		case BG_QMP_MSG_RETURN: {
			FUZZ_CHECK(m.ret != NULL);
			json_t *j = json_loads(m.ret, JSON_DECODE_ANY, NULL);
			FUZZ_CHECK(j != NULL);
			json_decref(j);
			break;
		}
		case BG_QMP_MSG_ERROR:
			FUZZ_CHECK(m.cls && m.desc);
			break;
		case BG_QMP_MSG_EVENT:
			FUZZ_CHECK(m.cls != NULL);
			break;
		case BG_QMP_MSG_GREETING:
			break;
		default:
			FUZZ_CHECK(!"unknown message kind");
		}
		bg_qmp_msg_free(&m);
	} else {
		FUZZ_CHECK(rc == BANGER_EVMM || rc == BANGER_ENOMEM);
	}
	free(line);

	int sv[2];
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	int big = 256 * 1024;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	size_t off = 0;
	while (off < size) {
		ssize_t n = send(sv[1], data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n <= 0)
			break; /* does not fit: the client sees a truncated stream */
		off += (size_t)n;
	}
	shutdown(sv[1], SHUT_WR);
	bg_qmp q = BG_QMP_INIT;
	q.fd = sv[0];
	char *ret = NULL;
	rc = bg_qmp_execute(&q, &ret, "query-status", NULL, 2000);
	if (rc == 0) {
		FUZZ_CHECK(ret != NULL);
		bg_free(ret);
	} else {
		FUZZ_CHECK(ret == NULL);
		FUZZ_CHECK(rc == BANGER_EVMM || rc == BANGER_EIO || rc == BANGER_ENOMEM);
	}
	bg_qmp_close(&q); /* closes sv[0] */
	close(sv[1]);
	return 0;
}
