/* The memory sink: file data kept in memory.  Used by the unit tests and
 * for small trees; the ext4 sink (ext4_write.c) is what pulls use. */
#include "image.h"

#include <string.h>

static int mem_begin(bg_sink *s, bg_arena *arena, uint64_t size, bg_fdata **out)
{
	(void)s;
	if (size > (256u << 20))
		return bg_error(BANGER_EINVALID, "file of %llu bytes is too large for the memory sink",
				(unsigned long long)size);
	bg_fdata *d = bg_arena_alloc(arena, sizeof(*d));
	if (!d)
		return bg_error_oom();
	d->size = size;
	if (size && !(d->mem = bg_arena_alloc(arena, (size_t)size)))
		return bg_error_oom();
	*out = d;
	return 0;
}

static int mem_write(bg_sink *s, bg_fdata *d, uint64_t off, const void *buf, size_t len)
{
	(void)s;
	if (off + len > d->size || !d->mem)
		return bg_error(BANGER_EINVALID, "write beyond the end of a file");
	memcpy(d->mem + off, buf, len);
	return 0;
}

static int mem_read(bg_sink *s, const bg_fdata *d, size_t max, char **out, size_t *len)
{
	(void)s;
	*out = NULL;
	*len = 0;
	if (d->size > max)
		return bg_error(BANGER_EINVALID, "file of %llu bytes is larger than %zu",
				(unsigned long long)d->size, max);
	char *p = bg_malloc((size_t)d->size + 1);
	if (!p)
		return bg_error_oom();
	if (d->size)
		memcpy(p, d->mem, (size_t)d->size);
	p[d->size] = '\0';
	*out = p;
	*len = (size_t)d->size;
	return 0;
}

static bg_sink mem_sink = { mem_begin, mem_write, mem_read };

bg_sink *bg_mem_sink(void)
{
	return &mem_sink;
}
