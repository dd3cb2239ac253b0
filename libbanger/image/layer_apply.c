/* Layers: a blob is decompressed (gzip, zstd or none, one level only) and
 * its tar stream parsed with libarchive into a list of entries, file data
 * going straight into the sink (the ext4 image's free blocks); then the
 * entries are applied in order to the in-memory tree with OCI layer
 * semantics:
 *
 *  - ".wh.NAME" deletes NAME from lower layers only; a directory of this
 *    layer under that name keeps what this layer put in it;
 *  - ".wh..wh..opq" hides every lower child of its directory, wherever in
 *    the layer it appears (children this layer added stay);
 *  - other ".wh..wh.*" names are reserved and ignored, ".wh." / ".wh.." /
 *    ".wh..." targets that name nothing valid are refused;
 *  - hardlinks may point into lower layers; symlink targets are data and
 *    the last component of a path is never followed; a directory replaces
 *    a symlink; the last entry for a path wins.
 *
 * Member names are normalized ("./" and leading "/" dropped, so absolute
 * names are confined to the image); ".." components are refused.  Parent
 * symlinks (bin -> usr/bin) are followed inside the tree only.  Every
 * budget (bytes, entries, path, symlink, header, xattr and sparse-map
 * sizes) is checked while streaming. */
#include "image.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <locale.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"
#define SRC_CHUNK (1u << 20)

void bg_limits_default(bg_limits *l)
{
	l->max_bytes = 64ull << 30;
	l->max_entries = 1000000;
	l->max_path = 4096;
	l->max_component = 255;
	l->max_symlink = 4095;
	l->max_header = 1u << 20;
	l->max_xattr_value = 64u << 10;
	l->max_xattrs = 64u << 10;
	l->max_sparse = 4096;
}

int bg_layer_normalize(char *out, const char *in, const bg_limits *lim)
{
	size_t n = 0;
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == 1 && p[0] == '.') {
			p += len;
			continue;
		}
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return bg_error(BANGER_EINVALID, "member '%.200s' has a '..' component (refused)", in);
		if (len > lim->max_component)
			return bg_error(BANGER_EINVALID, "member '%.100s...' has a component of %zu bytes "
					"(limit %u)", in, len, lim->max_component);
		if (n + (n ? 1 : 0) + len > lim->max_path)
			return bg_error(BANGER_EINVALID, "member '%.100s...' is longer than %u bytes", in,
					lim->max_path);
		if (n)
			out[n++] = '/';
		memcpy(out + n, p, len);
		n += len;
		p += len;
	}
	out[n] = '\0';
	return 0;
}

/* ---- reading ---- */

/* The blob is read in fixed chunks (not mapped): memory stays bounded
 * whatever the layer's size. */
typedef struct {
	int fd;
	uint64_t size, pos;
	unsigned char *buf;
	bg_sha256 *sha;
	atomic_uint_fast64_t *progress;
	int err;
} src_state;

static la_ssize_t src_read(struct archive *a, void *ud, const void **buf)
{
	src_state *s = ud;
	size_t n = s->size - s->pos > SRC_CHUNK ? SRC_CHUNK : (size_t)(s->size - s->pos);
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(s->fd, s->buf + got, n - got, (off_t)(s->pos + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			s->err = r < 0 ? errno : EIO;
			archive_set_error(a, s->err, "read error");
			return -1;
		}
		got += (size_t)r;
	}
	*buf = s->buf;
	bg_sha256_update(s->sha, s->buf, n);
	s->pos += n;
	if (s->progress)
		atomic_fetch_add(s->progress, n);
	return (la_ssize_t)n;
}

typedef struct {
	struct archive *raw;
	bg_sha256 *sha;
	uint64_t bytes;
	const bg_layer_read_opts *o;
	int err;          /* a banger code set by us, with the message recorded */
	bool eof;
} mid_state;

static int budget_error(const bg_layer_read_opts *o)
{
	return bg_error(BANGER_EINVALID, "layer %u: uncompressed content exceeds the limit of %llu bytes "
			"(decompression bomb?)", o->index + 1, (unsigned long long)o->limits->max_bytes);
}

static la_ssize_t mid_read(struct archive *a, void *ud, const void **buf)
{
	mid_state *m = ud;
	if (m->eof)
		return 0;
	if (m->o->cancel && atomic_load(m->o->cancel)) {
		m->err = bg_error(BANGER_ERROR, "cancelled");
		archive_set_error(a, ECANCELED, "cancelled");
		return -1;
	}
	const void *b;
	size_t len;
	la_int64_t off;
	int r = archive_read_data_block(m->raw, &b, &len, &off);
	if (r == ARCHIVE_EOF) {
		m->eof = true;
		return 0;
	}
	if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
		m->err = bg_error_lib(BANGER_EINVALID, "libarchive", archive_errno(m->raw),
				      "layer %u: decompression failed: %s", m->o->index + 1,
				      archive_error_string(m->raw) ? archive_error_string(m->raw) : "?");
		archive_set_error(a, EINVAL, "decompression failed");
		return -1;
	}
	bg_sha256_update(m->sha, b, len);
	m->bytes += len;
	uint64_t total = atomic_fetch_add(m->o->total_bytes, len) + len;
	if (total > m->o->limits->max_bytes) {
		m->err = budget_error(m->o);
		archive_set_error(a, EFBIG, "size limit");
		return -1;
	}
	*buf = b;
	return (la_ssize_t)len;
}

static int add_entry(bg_layer *l, bg_entry **out)
{
	if (l->count == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 256;
		bg_entry *ne = bg_realloc(l->entries, ncap * sizeof(*ne));
		if (!ne)
			return bg_error_oom();
		l->entries = ne;
		l->cap = ncap;
	}
	*out = &l->entries[l->count++];
	memset(*out, 0, sizeof(**out));
	return 0;
}

static int copy_xattrs(bg_layer *l, bg_entry *e, struct archive_entry *ae, const bg_layer_read_opts *o,
		       const char *path)
{
	int n = archive_entry_xattr_reset(ae);
	if (n <= 0)
		return 0;
	e->xattrs = bg_arena_alloc(&l->arena, (size_t)n * sizeof(bg_xattr));
	if (!e->xattrs)
		return bg_error_oom();
	uint64_t total = 0;
	const char *name;
	const void *value;
	size_t size;
	while (archive_entry_xattr_next(ae, &name, &value, &size) == ARCHIVE_OK) {
		if ((int)e->nxattrs >= n)
			break;
		size_t nl = strlen(name);
		if (nl == 0 || nl > 255)
			return bg_error(BANGER_EINVALID, "layer %u: '%.200s' has an xattr with a %zu byte name",
					o->index + 1, path, nl);
		if (size > o->limits->max_xattr_value)
			return bg_error(BANGER_EINVALID, "layer %u: xattr %.100s of '%.200s' is %zu bytes "
					"(limit %u)", o->index + 1, name, path, size, o->limits->max_xattr_value);
		total += nl + size;
		if (total > o->limits->max_xattrs)
			return bg_error(BANGER_EINVALID, "layer %u: xattrs of '%.200s' exceed %u bytes",
					o->index + 1, path, o->limits->max_xattrs);
		/* bsdtar writes each xattr twice (LIBARCHIVE.xattr and
		 * SCHILY.xattr): one name, the last value */
		bg_xattr *x = NULL;
		for (uint32_t k = 0; k < e->nxattrs && !x; k++)
			if (strcmp(e->xattrs[k].name, name) == 0)
				x = &e->xattrs[k];
		if (!x)
			x = &e->xattrs[e->nxattrs++];
		x->name = bg_arena_strndup(&l->arena, name, nl);
		x->value = bg_arena_alloc(&l->arena, size ? size : 1);
		if (!x->name || !x->value)
			return bg_error_oom();
		if (size)
			memcpy(x->value, value, size);
		x->len = (uint32_t)size;
	}
	return 0;
}

/* Consume an entry's data, writing it to d (or dropping it when d is
 * NULL).  *returned gets the bytes libarchive handed over. */
static int read_data(struct archive *tar, mid_state *m, bg_fdata *d, const bg_layer_read_opts *o,
		     const char *path, uint64_t *returned)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	*returned = 0;
	for (;;) {
		int r = archive_read_data_block(tar, &buf, &len, &off);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			if (m->err)
				return m->err;
			return bg_error_lib(BANGER_EINVALID, "libarchive", archive_errno(tar),
					    "layer %u: reading '%.200s': %s", o->index + 1, path,
					    archive_error_string(tar) ? archive_error_string(tar) : "?");
		}
		*returned += len;
		if (!d || !len)
			continue;
		if (off < 0 || (uint64_t)off + len > d->size)
			return bg_error(BANGER_EINVALID, "layer %u: '%.200s' has data beyond its size",
					o->index + 1, path);
		int rc = o->sink->write(o->sink, d, (uint64_t)off, buf, len);
		if (rc)
			return rc;
	}
}

/* One tar member being parsed: where it is read from, its normalized
 * path, and where the count of data bytes read goes. */
typedef struct {
	bg_layer *l;
	struct archive *tar;
	struct archive_entry *ae;
	mid_state *m;
	const bg_layer_read_opts *o;
	const char *path;
	uint64_t *data_returned;
} member;

/* Read (and drop) what is left of the member's data. */
static int skip_data(member *mb)
{
	return read_data(mb->tar, mb->m, NULL, mb->o, mb->path, mb->data_returned);
}

/* A whiteout or an opaque marker: the name is all that counts; content
 * is dropped. */
static int parse_whiteout(member *mb, const char *base)
{
	bg_layer *l = mb->l;
	size_t plen = strlen(mb->path);
	bg_entry *e = NULL;
	int rc;
	if ((rc = skip_data(mb)))
		return rc;
	if (strcmp(base, WH_OPAQUE) == 0) {
		if ((rc = add_entry(l, &e)))
			return rc;
		e->kind = BG_ENT_OPAQUE;
		e->path = bg_arena_strndup(&l->arena, mb->path, plen);
		return e->path ? 0 : bg_error_oom();
	}
	if (strncmp(base, WH_PREFIX WH_PREFIX, 8) == 0)
		return 0; /* reserved (.wh..wh.plnk, aufs metadata): ignored */
	const char *target = base + 4;
	if (!*target || strcmp(target, ".") == 0 || strcmp(target, "..") == 0)
		return bg_error(BANGER_EINVALID, "layer %u: whiteout '%.200s' names no valid entry",
				mb->o->index + 1, mb->path);
	if ((rc = add_entry(l, &e)))
		return rc;
	e->kind = BG_ENT_WHITEOUT;
	e->path = bg_arena_strndup(&l->arena, mb->path, plen);
	return e->path ? 0 : bg_error_oom();
}

/* Owner, mode, modification time and extended attributes. */
static int parse_attrs(member *mb, bg_entry *e)
{
	struct archive_entry *ae = mb->ae;
	la_int64_t uid = archive_entry_uid(ae), gid = archive_entry_gid(ae);
	if (uid < 0 || uid > UINT32_MAX - 1 || gid < 0 || gid > UINT32_MAX - 1)
		return bg_error(BANGER_EINVALID, "layer %u: '%.200s' has owner %lld:%lld out of range",
				mb->o->index + 1, mb->path, (long long)uid, (long long)gid);
	e->uid = (uint32_t)uid;
	e->gid = (uint32_t)gid;
	e->mode = (uint32_t)archive_entry_mode(ae) & 07777;
	e->mtime = (int64_t)archive_entry_mtime(ae);
	long ns = archive_entry_mtime_nsec(ae);
	e->mtime_ns = ns >= 0 && ns < 1000000000 ? (uint32_t)ns : 0;
	return copy_xattrs(mb->l, e, ae, mb->o, mb->path);
}

/* A hard link: its target is a member name, normalized the same way. */
static int parse_hardlink(member *mb, bg_entry *e, const char *hl)
{
	const bg_limits *lim = mb->o->limits;
	size_t hlen = strlen(hl);
	if (hlen > (size_t)lim->max_path * 2 + 16)
		return bg_error(BANGER_EINVALID, "layer %u: hardlink target of '%.200s' is too long",
				mb->o->index + 1, mb->path);
	char *t = bg_arena_alloc(&mb->l->arena, hlen + 1);
	if (!t)
		return bg_error_oom();
	int rc;
	if ((rc = bg_layer_normalize(t, hl, lim))) {
		bg_error_prefix("layer %u: hardlink '%.200s'", mb->o->index + 1, mb->path);
		return rc;
	}
	if (!*t)
		return bg_error(BANGER_EINVALID, "layer %u: hardlink '%.200s' points at the root",
				mb->o->index + 1, mb->path);
	e->kind = BG_ENT_HARDLINK;
	e->target = t;
	e->target_len = (uint32_t)strlen(t);
	return skip_data(mb);
}

/* A regular file: its data goes to the sink as it is read. */
static int parse_file(member *mb, bg_entry *e)
{
	const bg_layer_read_opts *o = mb->o;
	const bg_limits *lim = o->limits;
	e->kind = BG_ENT_FILE;
	la_int64_t size = archive_entry_size(mb->ae);
	if (size < 0 || (uint64_t)size > lim->max_bytes)
		return bg_error(BANGER_EINVALID, "layer %u: '%.200s' has size %lld (limit %llu)",
				o->index + 1, mb->path, (long long)size,
				(unsigned long long)lim->max_bytes);
	int sparse = archive_entry_sparse_count(mb->ae);
	if (sparse > 0 && (uint32_t)sparse > lim->max_sparse)
		return bg_error(BANGER_EINVALID, "layer %u: '%.200s' has %d sparse regions (limit %u)",
				o->index + 1, mb->path, sparse, lim->max_sparse);
	int rc;
	if ((rc = o->sink->begin(o->sink, &mb->l->arena, (uint64_t)size, &e->data)))
		return rc;
	if ((rc = read_data(mb->tar, mb->m, e->data, o, mb->path, mb->data_returned)))
		return rc;
	/* holes count against the budget too: they get blocks */
	if ((uint64_t)size > *mb->data_returned) {
		uint64_t extra = (uint64_t)size - *mb->data_returned;
		uint64_t total = atomic_fetch_add(o->total_bytes, extra) + extra;
		if (total > lim->max_bytes)
			return budget_error(o);
	}
	return 0;
}

static int parse_symlink(member *mb, bg_entry *e)
{
	const char *s = archive_entry_symlink(mb->ae);
	size_t sl = s ? strlen(s) : 0;
	if (sl == 0)
		return bg_error(BANGER_EINVALID, "layer %u: symlink '%.200s' has an empty target",
				mb->o->index + 1, mb->path);
	if (sl > mb->o->limits->max_symlink)
		return bg_error(BANGER_EINVALID, "layer %u: symlink '%.200s' has a %zu byte target "
				"(limit %u)", mb->o->index + 1, mb->path, sl, mb->o->limits->max_symlink);
	e->kind = BG_ENT_SYMLINK;
	e->target = bg_arena_strndup(&mb->l->arena, s, sl);
	e->target_len = (uint32_t)sl;
	return e->target ? 0 : bg_error_oom();
}

/* A character or block device: numbers ext4 can hold. */
static int parse_device(member *mb, bg_entry *e)
{
	struct archive_entry *ae = mb->ae;
	e->kind = archive_entry_filetype(ae) == AE_IFCHR ? BG_ENT_CHR : BG_ENT_BLK;
	e->major = (uint32_t)archive_entry_rdevmajor(ae);
	e->minor = (uint32_t)archive_entry_rdevminor(ae);
	if (e->major > 0xfff || e->minor > 0xfffff)
		return bg_error(BANGER_EINVALID, "layer %u: device '%.200s' has number %u:%u out of "
				"range", mb->o->index + 1, mb->path, e->major, e->minor);
	return 0;
}

/* One member: its name checked and normalized into pathbuf, then an
 * entry of its kind. */
static int parse_entry(bg_layer *l, struct archive *tar, struct archive_entry *ae, mid_state *m,
		       const bg_layer_read_opts *o, char *pathbuf, uint64_t *data_returned)
{
	const bg_limits *lim = o->limits;
	const char *raw = archive_entry_pathname(ae);
	*data_returned = 0;
	if (!raw || !*raw)
		return bg_error(BANGER_EINVALID, "layer %u: member without a name", o->index + 1);
	if (strlen(raw) > (size_t)lim->max_path * 2 + 16)
		return bg_error(BANGER_EINVALID, "layer %u: member name of %zu bytes (limit %u)",
				o->index + 1, strlen(raw), lim->max_path);
	int rc = bg_layer_normalize(pathbuf, raw, lim);
	if (rc) {
		bg_error_prefix("layer %u", o->index + 1);
		return rc;
	}
	member mb = { l, tar, ae, m, o, pathbuf, data_returned };
	const char *base = strrchr(pathbuf, '/');
	base = base ? base + 1 : pathbuf;
	if (strncmp(base, WH_PREFIX, 4) == 0)
		return parse_whiteout(&mb, base);

	bg_entry *e = NULL;
	if ((rc = add_entry(l, &e)))
		return rc;
	e->path = bg_arena_strndup(&l->arena, pathbuf, strlen(pathbuf));
	if (!e->path)
		return bg_error_oom();
	if ((rc = parse_attrs(&mb, e)))
		return rc;
	const char *hl = archive_entry_hardlink(ae);
	if (hl)
		return parse_hardlink(&mb, e, hl);
	switch (archive_entry_filetype(ae)) {
	case AE_IFREG:
		return parse_file(&mb, e);
	case AE_IFDIR:
		e->kind = BG_ENT_DIR;
		break;
	case AE_IFLNK:
		rc = parse_symlink(&mb, e);
		break;
	case AE_IFCHR:
	case AE_IFBLK:
		rc = parse_device(&mb, e);
		break;
	case AE_IFIFO:
		e->kind = BG_ENT_FIFO;
		break;
	case AE_IFSOCK:
		e->kind = BG_ENT_SOCK;
		break;
	default:
		return bg_error(BANGER_EINVALID, "layer %u: '%.200s' has an unknown file type",
				o->index + 1, pathbuf);
	}
	return rc ? rc : skip_data(&mb);
}

void bg_layer_free(bg_layer *l)
{
	if (!l)
		return;
	bg_arena_free(&l->arena);
	bg_free(l->entries);
	memset(l, 0, sizeof(*l));
}

/* What a layer is read through: the blob (one decompression level, the
 * "raw" format), the tar stream inside it, their hashing states, the
 * buffer member names are normalized into, and the thread's locale. */
typedef struct {
	struct archive *raw, *tar;
	src_state src;
	mid_state mid;
	char *pathbuf;
	locale_t loc, old;
} layer_reader;

static int reader_init(layer_reader *rd, int fd, uint64_t size, const bg_layer_read_opts *o)
{
	int rc = 0;
	/* Our own thread-local locale: libarchive converts names through the
	 * current locale; C.UTF-8 keeps UTF-8 bytes as they are.  The host
	 * program's locale is not touched. */
	rd->loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	rd->old = rd->loc ? uselocale(rd->loc) : (locale_t)0;

	rd->src.fd = fd;
	rd->src.size = size;
	rd->src.progress = o->progress;
	rd->src.buf = bg_malloc(SRC_CHUNK);
	rd->pathbuf = bg_malloc((size_t)o->limits->max_path * 2 + 32);
	if (!rd->src.buf || !rd->pathbuf || (rc = bg_sha256_new(&rd->src.sha)) ||
	    (rc = bg_sha256_new(&rd->mid.sha)))
		return rc ? rc : bg_error_oom();
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	rd->mid.o = o;
	return 0;
}

/* Open the blob and the tar stream in it. */
static int reader_open(layer_reader *rd, const bg_layer_read_opts *o)
{
	struct archive *raw = rd->raw = archive_read_new();
	struct archive *tar = rd->tar = archive_read_new();
	if (!raw || !tar)
		return bg_error_oom();
	archive_read_support_filter_gzip(raw);
	archive_read_support_filter_zstd(raw);
	archive_read_support_format_raw(raw);
	struct archive_entry *ae;
	if (archive_read_open(raw, &rd->src, NULL, src_read, NULL) != ARCHIVE_OK ||
	    archive_read_next_header(raw, &ae) != ARCHIVE_OK)
		return bg_error_lib(BANGER_EINVALID, "libarchive", archive_errno(raw),
				    "layer %u: cannot read the blob: %s", o->index + 1,
				    archive_error_string(raw) ? archive_error_string(raw) : "empty or unreadable");
	/* one compression level at most: gzip inside gzip is not a layer */
	if (archive_filter_count(raw) > 2)
		return bg_error(BANGER_EINVALID, "layer %u: nested compression (%s over %s) is not a valid "
				"layer", o->index + 1, archive_filter_name(raw, 0), archive_filter_name(raw, 1));
	rd->mid.raw = raw;
	archive_read_support_format_tar(tar);
	if (archive_read_open(tar, &rd->mid, NULL, mid_read, NULL) != ARCHIVE_OK)
		return rd->mid.err ? rd->mid.err
				   : bg_error_lib(BANGER_EINVALID, "libarchive", archive_errno(tar),
						  "layer %u: not a tar archive: %s", o->index + 1,
						  archive_error_string(tar) ? archive_error_string(tar) : "?");
	return 0;
}

/* Every member into l, within the budgets of entries and of extended
 * header bytes in front of one entry. */
static int read_members(bg_layer *l, layer_reader *rd, const bg_layer_read_opts *o)
{
	struct archive *tar = rd->tar;
	struct archive_entry *ae;
	la_int64_t prev_pos = -1;
	uint64_t prev_data = 0;
	for (;;) {
		int r = archive_read_next_header(tar, &ae);
		la_int64_t pos = archive_read_header_position(tar);
		if (prev_pos >= 0 && r != ARCHIVE_EOF) {
			/* bytes of PAX/GNU headers in front of this entry */
			int64_t hdr = (int64_t)(pos - prev_pos) - 512 - (int64_t)((prev_data + 511) & ~511ull);
			if (hdr > (int64_t)o->limits->max_header)
				return bg_error(BANGER_EINVALID, "layer %u: %lld bytes of extended headers before "
						"one entry (limit %u)", o->index + 1, (long long)hdr,
						o->limits->max_header);
		}
		if (r == ARCHIVE_EOF)
			return 0;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			return rd->mid.err ? rd->mid.err
					   : bg_error_lib(BANGER_EINVALID, "libarchive", archive_errno(tar),
							  "layer %u: malformed tar: %s", o->index + 1,
							  archive_error_string(tar) ? archive_error_string(tar) : "?");
		if (l->count >= o->limits->max_entries)
			return bg_error(BANGER_EINVALID, "layer %u has more than %llu entries", o->index + 1,
					(unsigned long long)o->limits->max_entries);
		int rc = parse_entry(l, tar, ae, &rd->mid, o, rd->pathbuf, &prev_data);
		if (rc)
			return rc;
		prev_pos = pos;
	}
}

/* The rest of the stream (end-of-archive blocks, padding) is part of
 * the diff_id; the rest of the blob part of the digest. */
static int read_rest(layer_reader *rd, const bg_layer_read_opts *o)
{
	while (!rd->mid.eof) {
		const void *b;
		if (mid_read(rd->tar, &rd->mid, &b) < 0)
			return rd->mid.err ? rd->mid.err
					   : bg_error(BANGER_EINVALID, "layer %u: trailing data unreadable",
						      o->index + 1);
	}
	while (rd->src.pos < rd->src.size) {
		const void *b;
		if (src_read(rd->raw, &rd->src, &b) < 0)
			return bg_error_os(BANGER_EIO, rd->src.err, "layer %u: read blob", o->index + 1);
	}
	return 0;
}

static void reader_close(layer_reader *rd)
{
	if (rd->tar)
		archive_read_free(rd->tar);
	if (rd->raw)
		archive_read_free(rd->raw);
	bg_free(rd->src.buf);
	bg_sha256_free(rd->src.sha);
	bg_sha256_free(rd->mid.sha);
	bg_free(rd->pathbuf);
	if (rd->loc) {
		uselocale(rd->old);
		freelocale(rd->loc);
	}
}

int bg_layer_read(bg_layer *l, int fd, uint64_t size, const bg_layer_read_opts *o)
{
	memset(l, 0, sizeof(*l));
	layer_reader rd;
	memset(&rd, 0, sizeof(rd));
	int rc = reader_init(&rd, fd, size, o);
	if (rc == 0 && (rc = reader_open(&rd, o)) == 0 && (rc = read_members(l, &rd, o)) == 0 &&
	    (rc = read_rest(&rd, o)) == 0 && (rc = bg_digest_final(rd.src.sha, l->digest)) == 0 &&
	    (rc = bg_digest_final(rd.mid.sha, l->diff_id)) == 0)
		l->bytes = rd.mid.bytes;
	reader_close(&rd);
	if (rc)
		bg_layer_free(l);
	return rc;
}

/* ---- applying ---- */

/* Hide what lower layers put under dir (its whole subtree), keeping what
 * layer index added.  Iterative: an image's tree can be deep. */
static void hide_lower(bg_tree *t, bg_inode *dir, uint32_t index)
{
	bg_dentry *d = dir->u.dir.first;
	while (d) {
		if (d->layer < index) {
			bg_dentry *next = bg_tree_next(dir, d, false);
			bg_tree_remove(t, d);
			d = next;
		} else {
			d = bg_tree_next(dir, d, true);
		}
	}
}

static uint32_t type_bits(int kind)
{
	switch (kind) {
	case BG_ENT_FILE: return S_IFREG;
	case BG_ENT_DIR: return S_IFDIR;
	case BG_ENT_SYMLINK: return S_IFLNK;
	case BG_ENT_CHR: return S_IFCHR;
	case BG_ENT_BLK: return S_IFBLK;
	case BG_ENT_FIFO: return S_IFIFO;
	case BG_ENT_SOCK: return S_IFSOCK;
	default: return 0;
	}
}

static void set_meta(bg_inode *i, const bg_entry *e)
{
	i->mode = type_bits(e->kind) | (e->mode & 07777);
	i->uid = e->uid;
	i->gid = e->gid;
	i->mtime = e->mtime;
	i->mtime_ns = e->mtime_ns;
	i->xattrs = e->xattrs;
	i->nxattrs = e->nxattrs;
}

/* Mark the directories on the way to path as touched by this layer, so a
 * later opaque marker or whiteout of this layer keeps what it added. */
static void touch_parents(bg_tree *t, const char *path, uint32_t index)
{
	bg_inode *cur = bg_tree_root(t);
	const char *p = path;
	for (;;) {
		const char *e = strchr(p, '/');
		if (!e)
			return;
		bg_dentry *d = bg_tree_lookup(t, cur, p, (size_t)(e - p));
		if (!d || !S_ISDIR(d->inode->mode))
			return;
		if (d->layer < index)
			d->layer = index;
		cur = d->inode;
		p = e + 1;
	}
}

static int apply_one(bg_tree *t, const bg_entry *e, uint32_t index)
{
	bg_inode *dir;
	const char *name;
	int rc;

	if (e->kind == BG_ENT_WHITEOUT || e->kind == BG_ENT_OPAQUE) {
		rc = bg_tree_resolve_parent(t, e->path, 0, index, 0, &dir, &name);
		if (rc == BANGER_ENOTFOUND)
			return 0; /* nothing below to hide */
		if (rc)
			return rc;
		if (e->kind == BG_ENT_OPAQUE) {
			hide_lower(t, dir, index);
			return 0;
		}
		name += 4; /* ".wh." */
		bg_dentry *d = bg_tree_lookup(t, dir, name, strlen(name));
		if (!d)
			return 0;
		if (d->layer < index)
			bg_tree_remove(t, d);
		else if (S_ISDIR(d->inode->mode))
			hide_lower(t, d->inode, index);
		return 0;
	}

	if (!*e->path) {
		/* the root itself: only a directory may describe it */
		if (e->kind != BG_ENT_DIR)
			return bg_error(BANGER_EINVALID, "entry for the root directory is not a directory "
					"(refused)");
		bg_inode *root = bg_tree_root(t);
		set_meta(root, e);
		root->implicit = false;
		return 0;
	}
	if ((rc = bg_tree_resolve_parent(t, e->path, BG_RESOLVE_CREATE, index, e->mtime, &dir, &name)))
		return rc;
	touch_parents(t, e->path, index);
	size_t nlen = strlen(name);
	bg_dentry *old = bg_tree_lookup(t, dir, name, nlen);

	if (e->kind == BG_ENT_DIR && old && S_ISDIR(old->inode->mode)) {
		/* directories merge: metadata from this layer, children stay */
		set_meta(old->inode, e);
		old->inode->implicit = false;
		old->layer = index;
		return 0;
	}
	bg_inode *ino;
	if (e->kind == BG_ENT_HARDLINK) {
		bg_inode *tdir;
		const char *tname;
		rc = bg_tree_resolve_parent(t, e->target, 0, index, 0, &tdir, &tname);
		bg_dentry *td = rc ? NULL : bg_tree_lookup(t, tdir, tname, strlen(tname));
		if (rc && rc != BANGER_ENOTFOUND)
			return rc;
		if (!td)
			return bg_error(BANGER_EINVALID, "hardlink '%.200s' points at '%.200s', which does not "
					"exist", e->path, e->target);
		if (S_ISDIR(td->inode->mode))
			return bg_error(BANGER_EINVALID, "hardlink '%.200s' points at directory '%.200s' "
					"(refused)", e->path, e->target);
		if (td == old)
			return 0; /* a link to itself */
		ino = td->inode;
		/* hold the inode while the old name goes */
		ino->nlink++;
		if (old)
			bg_tree_remove(t, old);
		rc = bg_tree_add(t, dir, name, nlen, ino, index, NULL);
		ino->nlink--;
		return rc;
	}
	ino = bg_tree_new_inode(t, 0);
	if (!ino)
		return bg_error_oom();
	set_meta(ino, e);
	switch (e->kind) {
	case BG_ENT_FILE:
		ino->u.file = e->data;
		break;
	case BG_ENT_SYMLINK:
		ino->u.link.target = e->target;
		ino->u.link.len = e->target_len;
		break;
	case BG_ENT_CHR:
	case BG_ENT_BLK:
		ino->u.dev.major = e->major;
		ino->u.dev.minor = e->minor;
		break;
	default:
		break;
	}
	if (old)
		bg_tree_remove(t, old);
	return bg_tree_add(t, dir, name, nlen, ino, index, NULL);
}

int bg_layer_apply(bg_tree *t, const bg_layer *layer, uint32_t index)
{
	for (size_t i = 0; i < layer->count; i++) {
		int rc = apply_one(t, &layer->entries[i], index);
		if (rc) {
			bg_error_prefix("layer %u: '%.200s'", index + 1, layer->entries[i].path);
			return rc;
		}
	}
	return 0;
}
