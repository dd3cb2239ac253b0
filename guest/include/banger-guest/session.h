/*
 * The contract of banger-session, the guest side of sessions: shared by
 * the helper (guest/session/banger-session.c), the host library
 * (libbanger/session) and the tests.  libc only, so the helper still
 * links statically.
 *
 * 1. Names.  The helper is built and installed as BG_SESSION_HELPER_NAME.
 *    In a guest it lives in BG_SESSION_GUEST_HELPER_DIR as
 *    BG_SESSION_PROTO_NAME ("banger-session-p<protocol>"; images carry
 *    it there) or as "<that>-<16 hex digits of its sha256>" (the host
 *    uploads its own build on first use).  Sessions live under
 *    BG_SESSION_GUEST_ROOT/<id>.
 *
 * 2. Exit codes of the helper (BG_SH_*), and the words of its `status`
 *    lines ("ID STATE CODE LOG_SIZE", BG_SH_STATE_*).  `version` prints
 *    BG_SH_VERSION_FORMAT: "banger-session proto <SP_VERSION>".
 *
 * 3. The attach protocol: every message is a frame: one type byte, a
 * 32-bit big-endian payload length, the payload.  The same byte stream
 * runs end to end: the host writes frames into the SSH channel, `banger-
 * session attach` in the guest copies the channel to the session's Unix
 * socket and back without looking at it, and the supervisor that holds
 * the session's terminal reads and writes the frames.
 *
 * client -> supervisor
 *   'H' hello   u32 protocol version, i64 replay offset: the log from
 *               that offset is sent first (-1: only new output).  Must be
 *               the first frame; the supervisor sends nothing before it.
 *   'I' input   bytes for the session's terminal (or its stdin pipe)
 *   'W' winsize u16 rows, u16 cols (ignored without a terminal)
 *   'S' signal  u32 signal number, sent to the session's process group
 * supervisor -> client
 *   'O' output  u64 log offset of the first byte, then the bytes; every
 *               attacher gets every byte, in order, with no gap
 *   'E' end     the final status, "exit N" or "signal N"; then EOF
 *   'R' refused a message (e.g. protocol version); then EOF
 *
 * Frames longer than SP_MAX_PAYLOAD, unknown types and a missing hello
 * are protocol errors: the peer is disconnected.
 */
#ifndef BANGER_GUEST_SESSION_H
#define BANGER_GUEST_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- 1. names ---- */
/* The protocol number, bare: it is spelled into the helper's guest name. */
#define BG_SESSION_PROTOCOL 1
#define BG_SESSION_HELPER_NAME "banger-session"
#define BG_SESSION_GUEST_HELPER_DIR "/usr/local/libexec/banger"
#define BG_SESSION_GUEST_ROOT "/var/lib/banger/sessions"
#define BG_SESSION_STR_(x) #x
#define BG_SESSION_STR(x) BG_SESSION_STR_(x)
#define BG_SESSION_PROTO_NAME BG_SESSION_HELPER_NAME "-p" BG_SESSION_STR(BG_SESSION_PROTOCOL)

/* ---- 2. exit codes and status words ---- */
#define BG_SH_OK 0
#define BG_SH_ERR 1
#define BG_SH_USAGE 2
#define BG_SH_LOST 3      /* the session's supervisor died without a status */
#define BG_SH_MISSING 4   /* no such session */
#define BG_SH_TIMEOUT 5
#define BG_SH_RUNNING 6   /* still running (remove without --force) */
#define BG_SH_ENDED 7     /* already ended (attach) */
/* Not the helper's: the host's shell prefix that looks for the helper
 * exits with this (and BG_SH_NOT_INSTALLED on stderr) when the guest has
 * none, so the host uploads it and tries again. */
#define BG_SH_NO_HELPER 121
/* Every message the helper writes on stderr starts with this. */
#define BG_SH_ERROR_PREFIX BG_SESSION_HELPER_NAME ": "
#define BG_SH_NOT_INSTALLED BG_SH_ERROR_PREFIX "not installed"

/* What `version` prints (with SP_VERSION). */
#define BG_SH_VERSION_FORMAT BG_SESSION_HELPER_NAME " proto %u"

#define BG_SH_STATE_RUNNING "running"
#define BG_SH_STATE_EXITED "exited"
#define BG_SH_STATE_SIGNALED "signaled"
#define BG_SH_STATE_LOST "lost"     /* the supervisor died without a status */
#define BG_SH_STATE_MISSING "missing"

/* ---- 3. the attach protocol ---- */
#define SP_VERSION ((unsigned)BG_SESSION_PROTOCOL)
#define SP_HEADER 5u
#define SP_MAX_PAYLOAD 65536u
/* Output is sent in pieces of at most this many bytes (+8 for the offset). */
#define SP_OUTPUT_CHUNK (SP_MAX_PAYLOAD - 8u)

#define SP_HELLO 'H'
#define SP_INPUT 'I'
#define SP_WINSIZE 'W'
#define SP_SIGNAL 'S'
#define SP_OUTPUT 'O'
#define SP_END 'E'
#define SP_REFUSED 'R'

static inline int sp_known_type(unsigned char t)
{
	return t == SP_HELLO || t == SP_INPUT || t == SP_WINSIZE || t == SP_SIGNAL || t == SP_OUTPUT ||
	       t == SP_END || t == SP_REFUSED;
}

static inline void sp_put_u16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static inline void sp_put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (24 - 8 * i));
}

static inline void sp_put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (56 - 8 * i));
}

static inline uint16_t sp_get_u16(const unsigned char *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t sp_get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t sp_get_u64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* Write a frame header into out[SP_HEADER]. */
static inline void sp_header(unsigned char *out, unsigned char type, uint32_t len)
{
	out[0] = type;
	sp_put_u32(out + 1, len);
}

/* A parsed frame: payload points into the caller's buffer. */
typedef struct {
	unsigned char type;
	uint32_t len;
	const unsigned char *payload;
} sp_frame;

/* Take one frame from the front of buf (len bytes).  Returns 1 and sets
 * *f and *used when a whole frame is there, 0 when more bytes are
 * needed, -1 on a protocol error (unknown type, payload too long). */
static inline int sp_parse(const unsigned char *buf, size_t len, sp_frame *f, size_t *used)
{
	if (len < 1)
		return 0;
	if (!sp_known_type(buf[0]))
		return -1;
	if (len < SP_HEADER)
		return 0;
	uint32_t n = sp_get_u32(buf + 1);
	if (n > SP_MAX_PAYLOAD)
		return -1;
	if (len - SP_HEADER < n)
		return 0;
	f->type = buf[0];
	f->len = n;
	f->payload = buf + SP_HEADER;
	*used = SP_HEADER + (size_t)n;
	return 1;
}

/* Check the payload size a frame type needs.  1 when well-formed. */
static inline int sp_valid(const sp_frame *f)
{
	switch (f->type) {
	case SP_HELLO: return f->len == 12;
	case SP_WINSIZE: return f->len == 4;
	case SP_SIGNAL: return f->len == 4;
	case SP_OUTPUT: return f->len >= 8;
	default: return 1;
	}
}

/* Encoders into out (at least SP_HEADER + payload bytes); return the
 * frame length. */
static inline size_t sp_encode_hello(unsigned char *out, int64_t replay_from)
{
	sp_header(out, SP_HELLO, 12);
	sp_put_u32(out + 5, SP_VERSION);
	sp_put_u64(out + 9, (uint64_t)replay_from);
	return 17;
}

static inline size_t sp_encode_winsize(unsigned char *out, uint16_t rows, uint16_t cols)
{
	sp_header(out, SP_WINSIZE, 4);
	sp_put_u16(out + 5, rows);
	sp_put_u16(out + 7, cols);
	return 9;
}

static inline size_t sp_encode_signal(unsigned char *out, uint32_t sig)
{
	sp_header(out, SP_SIGNAL, 4);
	sp_put_u32(out + 5, sig);
	return 9;
}

/* Frame with a byte payload (input, end, refused). */
static inline size_t sp_encode_bytes(unsigned char *out, unsigned char type, const void *data, uint32_t len)
{
	sp_header(out, type, len);
	if (len)
		memcpy(out + SP_HEADER, data, len);
	return SP_HEADER + (size_t)len;
}

static inline size_t sp_encode_output(unsigned char *out, uint64_t offset, const void *data, uint32_t len)
{
	sp_header(out, SP_OUTPUT, len + 8);
	sp_put_u64(out + 5, offset);
	if (len)
		memcpy(out + 13, data, len);
	return 13 + (size_t)len;
}

/* Final status text as the helper writes it to D/status: "exit N" or
 * "signal N".  Parses *kind ('e' or 's') and *code.  1 when valid. */
static inline int sp_parse_status(const char *s, size_t len, char *kind, int *code)
{
	const char *p;
	size_t plen;
	if (len >= 5 && memcmp(s, "exit ", 5) == 0) {
		*kind = 'e';
		p = s + 5;
		plen = len - 5;
	} else if (len >= 7 && memcmp(s, "signal ", 7) == 0) {
		*kind = 's';
		p = s + 7;
		plen = len - 7;
	} else {
		return 0;
	}
	while (plen && (p[plen - 1] == '\n' || p[plen - 1] == '\r'))
		plen--;
	if (plen == 0 || plen > 3)
		return 0;
	int v = 0;
	for (size_t i = 0; i < plen; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		v = v * 10 + (p[i] - '0');
	}
	if (v > 255)
		return 0;
	*code = v;
	return 1;
}

#endif
