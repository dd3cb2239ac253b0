/* A small QMP client: newline-delimited JSON over QEMU's Unix socket.
 * Every read and write has a deadline; writes use MSG_NOSIGNAL. */
#include "vmm.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define QMP_LINE_MAX (1u << 20)

/* ---- parsing (pure) ---- */

static char *dump_any(json_t *j)
{
	size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
	char *s = bg_malloc(n + 1);
	if (!s)
		return NULL;
	if (n)
		json_dumpb(j, s, n, JSON_COMPACT | JSON_ENCODE_ANY);
	s[n] = '\0';
	return s;
}

void bg_qmp_msg_free(bg_qmp_msg *m)
{
	if (!m)
		return;
	bg_free(m->ret);
	bg_free(m->cls);
	bg_free(m->desc);
	memset(m, 0, sizeof(*m));
}

int bg_qmp_parse(bg_qmp_msg *m, const char *line)
{
	memset(m, 0, sizeof(*m));
	json_error_t jerr;
	json_t *j = json_loads(line, 0, &jerr);
	if (!j)
		return bg_error(BANGER_EVMM, "QMP: malformed message (%s): %.80s", jerr.text, line);
	int rc = 0;
	json_t *v;
	if (!json_is_object(j)) {
		rc = bg_error(BANGER_EVMM, "QMP: message is not an object: %.80s", line);
	} else if ((v = json_object_get(j, "return"))) {
		m->kind = BG_QMP_MSG_RETURN;
		if (!(m->ret = dump_any(v)))
			rc = bg_error_oom();
	} else if ((v = json_object_get(j, "error"))) {
		m->kind = BG_QMP_MSG_ERROR;
		json_t *c = json_is_object(v) ? json_object_get(v, "class") : NULL;
		json_t *d = json_is_object(v) ? json_object_get(v, "desc") : NULL;
		m->cls = bg_strdup(json_is_string(c) ? json_string_value(c) : "GenericError");
		m->desc = bg_strdup(json_is_string(d) ? json_string_value(d) : "(no description)");
		if (!m->cls || !m->desc)
			rc = bg_error_oom();
	} else if ((v = json_object_get(j, "event"))) {
		m->kind = BG_QMP_MSG_EVENT;
		if (!json_is_string(v))
			rc = bg_error(BANGER_EVMM, "QMP: event without a name: %.80s", line);
		else if (!(m->cls = bg_strdup(json_string_value(v))))
			rc = bg_error_oom();
	} else if (json_is_object(json_object_get(j, "QMP"))) {
		m->kind = BG_QMP_MSG_GREETING;
	} else {
		rc = bg_error(BANGER_EVMM, "QMP: unrecognised message: %.80s", line);
	}
	json_decref(j);
	if (rc)
		bg_qmp_msg_free(m);
	return rc;
}

/* ---- transport ---- */

static int wait_fd(int fd, short events, int64_t deadline, const char *what)
{
	for (;;) {
		int64_t left = deadline - bg_now_ms();
		if (left <= 0)
			return bg_error(BANGER_ETIMEOUT, "QMP: timed out %s", what);
		struct pollfd p = { fd, events, 0 };
		int n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return bg_error_os(BANGER_EIO, errno, "QMP: poll");
	}
}

static int send_all(bg_qmp *q, const char *data, size_t len, int64_t deadline)
{
	size_t off = 0;
	while (off < len) {
		int rc = wait_fd(q->fd, POLLOUT, deadline, "sending a command");
		if (rc)
			return rc;
		ssize_t n = send(q->fd, data + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return bg_error_os(BANGER_EIO, errno, "QMP: send");
		off += (size_t)n;
	}
	return 0;
}

/* Next line (without the newline) into *line (bg_free). */
static int read_line(bg_qmp *q, char **line, int64_t deadline)
{
	*line = NULL;
	for (;;) {
		char *nl = q->in.data ? memchr(q->in.data, '\n', q->in.len) : NULL;
		if (nl) {
			size_t n = (size_t)(nl - q->in.data);
			if (!(*line = bg_strndup(q->in.data, n)))
				return bg_error_oom();
			memmove(q->in.data, nl + 1, q->in.len - n - 1);
			q->in.len -= n + 1;
			q->in.data[q->in.len] = '\0';
			return 0;
		}
		if (q->in.len > QMP_LINE_MAX)
			return bg_error(BANGER_EVMM, "QMP: message longer than %u bytes", QMP_LINE_MAX);
		int rc = wait_fd(q->fd, POLLIN, deadline, "waiting for a reply");
		if (rc)
			return rc;
		char tmp[4096];
		ssize_t n = recv(q->fd, tmp, sizeof(tmp), MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return bg_error_os(BANGER_EIO, errno, "QMP: recv");
		if (n == 0)
			return bg_error(BANGER_EIO, "QMP: QEMU closed the connection");
		if ((rc = bg_buf_put(&q->in, tmp, (size_t)n)))
			return rc;
	}
}

/* Read messages until one of the wanted kinds; skip events. */
static int read_reply(bg_qmp *q, bg_qmp_msg *m, int64_t deadline, const char *command)
{
	for (;;) {
		char *line = NULL;
		int rc = read_line(q, &line, deadline);
		if (rc)
			return rc;
		rc = bg_qmp_parse(m, line);
		bg_free(line);
		if (rc)
			return rc;
		if (m->kind == BG_QMP_MSG_EVENT || (command && m->kind == BG_QMP_MSG_GREETING)) {
			bg_qmp_msg_free(m);
			continue;
		}
		return 0;
	}
}

static int exec_at(bg_qmp *q, char **out_return, const char *command, const char *args_json,
		   int64_t deadline)
{
	if (out_return)
		*out_return = NULL;
	json_t *msg = json_pack("{s:s}", "execute", command);
	if (!msg)
		return bg_error(BANGER_EINVALID, "QMP: bad command name");
	if (args_json) {
		json_error_t jerr;
		json_t *a = json_loads(args_json, 0, &jerr);
		if (!json_is_object(a) || json_object_set_new(msg, "arguments", a) != 0) {
			if (!json_is_object(a))
				json_decref(a);
			json_decref(msg);
			return bg_error(BANGER_EINVALID, "QMP: arguments of %s are not a JSON object", command);
		}
	}
	char *text = dump_any(msg);
	json_decref(msg);
	if (!text)
		return bg_error_oom();
	/* One write with the newline: QEMU runs a command as soon as its JSON
	 * object is complete, and after "quit" nothing more can be sent. */
	size_t len = strlen(text);
	char *line = bg_realloc(text, len + 2);
	if (!line) {
		bg_free(text);
		return bg_error_oom();
	}
	line[len] = '\n';
	line[len + 1] = '\0';
	int rc = send_all(q, line, len + 1, deadline);
	bg_free(line);
	bool quit = strcmp(command, "quit") == 0;
	bg_qmp_msg m;
	if (!rc)
		rc = read_reply(q, &m, deadline, command);
	if (rc && quit && rc == BANGER_EIO)
		return 0; /* QEMU went away before (or instead of) answering: done */
	if (rc)
		return rc;
	if (m.kind == BG_QMP_MSG_ERROR) {
		rc = bg_error_lib(BANGER_EVMM, "qmp", 0, "QEMU refused %s: %s: %s", command, m.cls, m.desc);
	} else if (out_return) {
		*out_return = m.ret;
		m.ret = NULL;
	}
	bg_qmp_msg_free(&m);
	return rc;
}

int bg_qmp_open(bg_qmp *q, const char *path, int timeout_ms)
{
	q->fd = -1;
	q->in = (bg_buf)BG_BUF_INIT;
	int64_t deadline = bg_now_ms() + timeout_ms;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return bg_error(BANGER_EINVALID, "QMP socket path too long: %s", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int rc;
	for (;;) {
		q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (q->fd < 0)
			return bg_error_os(BANGER_EIO, errno, "QMP: socket");
		if (connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		int e = errno;
		close(q->fd);
		q->fd = -1;
		if (e != EAGAIN && e != EINTR)
			return bg_error_os(e == ENOENT || e == ECONNREFUSED ? BANGER_EIO : bg_code_from_errno(e), e,
					   "QMP: connect %s", path);
		if (bg_now_ms() >= deadline)
			return bg_error_os(BANGER_ETIMEOUT, e, "QMP: connect %s", path);
		bg_sleep_ms(10);
	}
	bg_qmp_msg m;
	if ((rc = read_reply(q, &m, deadline, NULL)))
		goto fail;
	bool greeting = m.kind == BG_QMP_MSG_GREETING;
	bg_qmp_msg_free(&m);
	if (!greeting) {
		rc = bg_error(BANGER_EVMM, "QMP: %s did not greet", path);
		goto fail;
	}
	if ((rc = exec_at(q, NULL, "qmp_capabilities", NULL, deadline)))
		goto fail;
	return 0;
fail:
	bg_qmp_close(q);
	return rc;
}

int bg_qmp_execute(bg_qmp *q, char **out_return, const char *command, const char *args_json, int timeout_ms)
{
	return exec_at(q, out_return, command, args_json, bg_now_ms() + timeout_ms);
}

void bg_qmp_close(bg_qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	bg_buf_free(&q->in);
}

int bg_qmp_command(const char *path, const char *command, int timeout_ms)
{
	int64_t deadline = bg_now_ms() + timeout_ms;
	bg_qmp q;
	int rc = bg_qmp_open(&q, path, timeout_ms);
	if (rc)
		return rc;
	rc = exec_at(&q, NULL, command, NULL, deadline);
	bg_qmp_close(&q);
	return rc;
}

int bg_qmp_query_status(char **status, const char *path, int timeout_ms)
{
	*status = NULL;
	int64_t deadline = bg_now_ms() + timeout_ms;
	bg_qmp q;
	char *ret = NULL;
	int rc = bg_qmp_open(&q, path, timeout_ms);
	if (rc)
		return rc;
	rc = exec_at(&q, &ret, "query-status", NULL, deadline);
	bg_qmp_close(&q);
	if (rc)
		return rc;
	json_error_t jerr;
	json_t *j = json_loads(ret, 0, &jerr);
	json_t *s = json_is_object(j) ? json_object_get(j, "status") : NULL;
	if (!json_is_string(s))
		rc = bg_error(BANGER_EVMM, "QMP: query-status returned no status: %.80s", ret);
	else if (!(*status = bg_strdup(json_string_value(s))))
		rc = bg_error_oom();
	json_decref(j);
	bg_free(ret);
	return rc;
}
