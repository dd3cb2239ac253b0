/* The thread-local last error (banger_error_last) and its setters. */
#define BG_ERROR_IMPL /* the definitions below, not core.h's analyzer macros */
#include "core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Messages live in a fixed thread-local buffer: recording an error must
 * work when memory is exhausted.  Every message is made visible on the
 * way in (bg_visible_into, no allocation): many carry a member name, a
 * registry's text or a guest's output, and all of them end up on a
 * terminal or in a log. */
#define MSG_MAX 1024

static _Thread_local banger_error last;
static _Thread_local char last_msg[MSG_MAX];
static _Thread_local bool has_last;

static void set(int code, int os_errno, const char *lib, int lib_code,
		const char *fmt, va_list ap)
{
	char raw[MSG_MAX];
	vsnprintf(raw, sizeof(raw), fmt, ap);
	bg_visible_into(last_msg, sizeof(last_msg), raw, 0);
	last.code = code;
	last.os_errno = os_errno;
	last.lib = lib;
	last.lib_code = lib_code;
	last.message = last_msg;
	has_last = true;
}

int bg_error(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set(code, 0, NULL, 0, fmt, ap);
	va_end(ap);
	return code;
}

int bg_error_os(int code, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set(code, err, NULL, 0, fmt, ap);
	va_end(ap);
	size_t len = strlen(last_msg);
	if (len < sizeof(last_msg) - 1)
		snprintf(last_msg + len, sizeof(last_msg) - len, ": %s", strerror(err));
	return code;
}

int bg_error_lib(int code, const char *lib, int lib_code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set(code, 0, lib, lib_code, fmt, ap);
	va_end(ap);
	return code;
}

int bg_error_oom(void)
{
	return bg_error(BANGER_ENOMEM, "out of memory");
}

void bg_error_prefix(const char *fmt, ...)
{
	char raw[256], prefix[256], tmp[MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	bg_visible_into(prefix, sizeof(prefix), raw, 0);
	if (!has_last) {
		bg_error(BANGER_ERROR, "%s", prefix);
		return;
	}
	/* Build "prefix: message" by hand: the result is truncated on purpose
	 * when it does not fit. */
	size_t lp = strnlen(prefix, sizeof(tmp) - 3);
	memcpy(tmp, prefix, lp);
	memcpy(tmp + lp, ": ", 2);
	size_t room = sizeof(tmp) - lp - 3;
	size_t lm = strnlen(last_msg, room);
	memcpy(tmp + lp + 2, last_msg, lm);
	tmp[lp + 2 + lm] = '\0';
	memcpy(last_msg, tmp, sizeof(last_msg));
}

void bg_error_save(bg_error_saved *s)
{
	memset(s, 0, sizeof(*s));
	if (!has_last)
		return;
	s->code = last.code;
	s->os_errno = last.os_errno;
	s->lib_code = last.lib_code;
	s->lib = last.lib;
	s->message = strdup(last_msg); /* may fail: then the message is lost */
}

void bg_error_restore(bg_error_saved *s)
{
	if (s->code == 0) {
		free(s->message);
		return;
	}
	last.code = s->code;
	last.os_errno = s->os_errno;
	last.lib_code = s->lib_code;
	last.lib = s->lib;
	if (s->message)
		snprintf(last_msg, sizeof(last_msg), "%s", s->message);
	last.message = last_msg;
	has_last = true;
	free(s->message);
	s->message = NULL;
}

int bg_code_from_errno(int err)
{
	switch (err) {
	case ENOENT: return BANGER_ENOTFOUND;
	case EEXIST: return BANGER_EEXISTS;
	case EBUSY: case EAGAIN: return BANGER_EBUSY;
	case EINVAL: return BANGER_EINVALID;
	case EACCES: case EPERM: return BANGER_EPERM;
	case ENOMEM: return BANGER_ENOMEM;
	case ETIMEDOUT: return BANGER_ETIMEOUT;
	case ENOSYS: case EOPNOTSUPP: case ENODEV: return BANGER_EUNSUPPORTED;
	default: return BANGER_EIO;
	}
}

BANGER_EXTERN(const banger_error *) banger_error_last(void)
{
	return has_last ? &last : NULL;
}

BANGER_EXTERN(void) banger_error_clear(void)
{
	has_last = false;
	last_msg[0] = '\0';
}

BANGER_EXTERN(const char *) banger_error_name(int code)
{
	switch (code) {
	case BANGER_OK: return "ok";
	case BANGER_ERROR: return "error";
	case BANGER_ENOTFOUND: return "not found";
	case BANGER_EEXISTS: return "already exists";
	case BANGER_EBUSY: return "busy";
	case BANGER_EINVALID: return "invalid";
	case BANGER_ETRUST: return "host key mismatch";
	case BANGER_EREVOKED: return "host key revoked";
	case BANGER_EUNSUPPORTED: return "unsupported";
	case BANGER_EIO: return "i/o error";
	case BANGER_ENOMEM: return "out of memory";
	case BANGER_ETIMEOUT: return "timed out";
	case BANGER_EPERM: return "permission denied";
	case BANGER_ENETWORK: return "network error";
	case BANGER_EVERIFY: return "verification failed";
	case BANGER_ESTATE: return "wrong state";
	case BANGER_EVMM: return "vmm error";
	case BANGER_ESTORE: return "store needs recovery";
	case BANGER_ECANCELLED: return "cancelled";
	default: return "unknown error";
	}
}
