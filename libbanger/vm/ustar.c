/* A minimal POSIX ustar writer for the identity disk: regular files and
 * directories, owner root, in memory. */
#include "ustar.h"

#include <stdio.h>
#include <string.h>

static void octal(char *field, size_t width, uint64_t v)
{
	/* width-1 digits and a NUL, zero-padded */
	snprintf(field, width, "%0*llo", (int)width - 1, (unsigned long long)v);
}

static int header(bg_buf *b, const char *name, char type, mode_t mode, uint64_t size)
{
	if (strlen(name) >= 100)
		return bg_error(BANGER_EINVALID, "tar member name too long: %s", name);
	unsigned char h[512];
	memset(h, 0, sizeof(h));
	memcpy(h, name, strlen(name));
	octal((char *)h + 100, 8, mode & 07777);
	octal((char *)h + 108, 8, 0);
	octal((char *)h + 116, 8, 0);
	octal((char *)h + 124, 12, size);
	octal((char *)h + 136, 12, 0);
	memset(h + 148, ' ', 8);
	h[156] = (unsigned char)type;
	memcpy(h + 257, "ustar", 6); /* "ustar\0" */
	memcpy(h + 263, "00", 2);
	memcpy(h + 265, "root", 4);
	memcpy(h + 297, "root", 4);
	unsigned sum = 0;
	for (size_t i = 0; i < sizeof(h); i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
	return bg_buf_put(b, h, sizeof(h));
}

int bg_ustar_dir(bg_buf *b, const char *name)
{
	return header(b, name, '5', 0755, 0);
}

int bg_ustar_file(bg_buf *b, const char *name, mode_t mode, const void *data, size_t len)
{
	int rc = header(b, name, '0', mode, len);
	if (rc)
		return rc;
	if ((rc = bg_buf_put(b, data, len)))
		return rc;
	static const char zeros[512];
	size_t pad = (512 - len % 512) % 512;
	return bg_buf_put(b, zeros, pad);
}

int bg_ustar_finish(bg_buf *b)
{
	static const char zeros[1024];
	return bg_buf_put(b, zeros, sizeof(zeros));
}
