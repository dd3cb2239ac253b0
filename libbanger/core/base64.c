/* Base64 (RFC 4648), the library's only codec: OpenSSH's rules (keys,
 * known_hosts hashes, fingerprints) and HTTP Basic credentials share it. */
#include "core.h"

#include <ctype.h>

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *bg_base64_encode(const void *data, size_t n, bool pad)
{
	const unsigned char *in = data;
	char *out = bg_malloc((n + 2) / 3 * 4 + 1);
	if (!out)
		return NULL;
	size_t o = 0, i = 0;
	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64chars[v >> 18];
		out[o++] = b64chars[(v >> 12) & 63];
		out[o++] = b64chars[(v >> 6) & 63];
		out[o++] = b64chars[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
		out[o++] = b64chars[v >> 18];
		out[o++] = b64chars[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = b64chars[(v >> 6) & 63];
		else if (pad)
			out[o++] = '=';
		if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int bg_base64_decode(unsigned char **out, size_t *out_len, const char *in, size_t in_len)
{
	*out = NULL;
	*out_len = 0;
	unsigned char *buf = bg_malloc(in_len / 4 * 3 + 3);
	if (!buf)
		return bg_error_oom();
	size_t o = 0, i = 0;
	int state = 0;
	uint32_t acc = 0;
	for (; i < in_len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (isspace(c))
			continue;
		if (c == '=')
			break;
		int v = b64val(c);
		if (v < 0)
			goto bad;
		acc = acc << 6 | (uint32_t)v;
		if (++state == 4) {
			buf[o++] = (unsigned char)(acc >> 16);
			buf[o++] = (unsigned char)(acc >> 8);
			buf[o++] = (unsigned char)acc;
			state = 0;
			acc = 0;
		}
	}
	if (i < in_len) { /* at a pad character */
		if (state < 2)
			goto bad;
		i++;
		if (state == 2) { /* needs a second '=' */
			while (i < in_len && isspace((unsigned char)in[i]))
				i++;
			if (i >= in_len || in[i] != '=')
				goto bad;
			i++;
		}
		for (; i < in_len; i++)
			if (!isspace((unsigned char)in[i]))
				goto bad;
		/* The unused low bits must be zero. */
		if (state == 2) {
			if (acc & 0xf)
				goto bad;
			buf[o++] = (unsigned char)(acc >> 4);
		} else {
			if (acc & 0x3)
				goto bad;
			buf[o++] = (unsigned char)(acc >> 10);
			buf[o++] = (unsigned char)(acc >> 2);
		}
	} else if (state != 0) {
		goto bad;
	}
	*out = buf;
	*out_len = o;
	return 0;
bad:
	bg_free(buf);
	return BANGER_EINVALID;
}
