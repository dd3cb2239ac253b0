/* The ext4 writer.  The image is a sparse file formatted by mkfs.ext4
 * (no journal yet).  While layers stream, file data goes straight into
 * its free blocks (a bump allocator over the free ranges, shared by the
 * layer threads; pwrite on our own descriptor).  Once the tree is final,
 * its metadata is written with libext2fs: inodes (numeric owners, full
 * modes, nanosecond mtimes, extents), directory blocks, symlinks, device
 * numbers, hardlink counts and xattrs.  Blocks written for data the tree
 * dropped are punched out.  Then the filesystem is resized to what the
 * tree uses plus headroom (resize2fs), a journal is added and the file
 * synced.  Nothing from the image ever exists as a host file. */
#include "image.h"

#include <dirent.h>
#include <errno.h>
#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>
#include <ext2fs/ext3_extents.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_EXTENT_LEN 32768u
#define BG_EXT4_INODES_PER_GROUP 16384u
#define DIR_TAIL_SIZE ((unsigned)sizeof(struct ext2_dir_entry_tail))

typedef struct {
	uint64_t start, len;
} range;

struct bg_ext4 {
	bg_sink sink; /* first: the sink callbacks get a bg_ext4 */
	char *path;
	int fd;
	ext2_filsys fs;
	uint32_t bs;
	pthread_mutex_t lock;
	range *free;
	size_t nfree, cur;
	uint64_t first_free, high; /* data blocks handed out lie in [first_free, high) */
	uint64_t overflow;         /* blocks asked for that did not fit */
	bool write_failed;
	int write_errno;
	uint32_t next_ino;
	bool has_csum, has_extents;
};

static int fs_error(errcode_t err, const char *what)
{
	return bg_error_lib(BANGER_EIO, "ext2fs", (int)err, "%s: %s", what, error_message(err));
}

/* ---- the data allocator (several threads) ---- */

/* Caller holds the lock. */
static bool take(bg_ext4 *e, uint64_t want, uint64_t *start, uint32_t *got)
{
	while (e->cur < e->nfree && e->free[e->cur].len == 0)
		e->cur++;
	if (e->cur >= e->nfree)
		return false;
	range *f = &e->free[e->cur];
	uint64_t n = want < f->len ? want : f->len;
	if (n > MAX_EXTENT_LEN)
		n = MAX_EXTENT_LEN;
	*start = f->start;
	*got = (uint32_t)n;
	f->start += n;
	f->len -= n;
	if (f->start > e->high)
		e->high = f->start;
	return true;
}

/* Allocate nblocks as extents into the arena.  On overflow *out_ext is
 * NULL (and the overflow is counted). */
static int alloc_extents(bg_ext4 *e, bg_arena *arena, uint64_t nblocks, bg_extent **out_ext,
			 uint32_t *out_n)
{
	bg_extent local[8], *list = local, *heap = NULL;
	size_t n = 0, cap = BG_ARRAY_SIZE(local);
	int rc = 0;
	*out_ext = NULL;
	*out_n = 0;
	pthread_mutex_lock(&e->lock);
	uint64_t left = nblocks;
	while (left) {
		uint64_t s;
		uint32_t got;
		if (!take(e, left, &s, &got)) {
			e->overflow += left;
			n = 0;
			break;
		}
		if (n > 0 && list[n - 1].start + list[n - 1].len == s &&
		    list[n - 1].len + (uint64_t)got <= MAX_EXTENT_LEN) {
			list[n - 1].len += got;
		} else {
			if (n == cap) {
				size_t ncap = cap * 2;
				bg_extent *nh = bg_realloc(heap, ncap * sizeof(*nh));
				if (!nh) {
					rc = bg_error_oom();
					break;
				}
				if (!heap)
					memcpy(nh, local, sizeof(local));
				heap = list = nh;
				cap = ncap;
			}
			list[n].start = s;
			list[n].len = got;
			n++;
		}
		left -= got;
	}
	pthread_mutex_unlock(&e->lock);
	if (!rc && n) {
		bg_extent *x = bg_arena_alloc(arena, n * sizeof(*x));
		if (!x)
			rc = bg_error_oom();
		else {
			memcpy(x, list, n * sizeof(*x));
			*out_ext = x;
			*out_n = (uint32_t)n;
		}
	}
	bg_free(heap);
	return rc;
}

static int sink_begin(bg_sink *s, bg_arena *arena, uint64_t size, bg_fdata **out)
{
	bg_ext4 *e = (bg_ext4 *)s;
	bg_fdata *d = bg_arena_alloc(arena, sizeof(*d));
	if (!d)
		return bg_error_oom();
	d->size = size;
	uint64_t nb = (size + e->bs - 1) / e->bs;
	int rc = nb ? alloc_extents(e, arena, nb, &d->ext, &d->next) : 0;
	if (rc)
		return rc;
	*out = d;
	return 0;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (n == 0) {
			memset(p, 0, len);
			return 0;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Map a byte range of a file onto its extents and do io on each piece. */
static int extents_io(bg_ext4 *e, const bg_fdata *d, uint64_t off, void *buf, size_t len, bool wr)
{
	char *p = buf;
	uint64_t base = 0;
	for (uint32_t i = 0; i < d->next && len; i++) {
		uint64_t ebytes = (uint64_t)d->ext[i].len * e->bs;
		if (off < base + ebytes) {
			uint64_t in = off - base;
			size_t n = (size_t)(ebytes - in < len ? ebytes - in : len);
			uint64_t disk = d->ext[i].start * e->bs + in;
			int err = wr ? pwrite_all(e->fd, p, n, disk) : pread_all(e->fd, p, n, disk);
			if (err)
				return err;
			p += n;
			off += n;
			len -= n;
		}
		base += ebytes;
	}
	return len ? EINVAL : 0;
}

static int sink_write(bg_sink *s, bg_fdata *d, uint64_t off, const void *buf, size_t len)
{
	bg_ext4 *e = (bg_ext4 *)s;
	if (!d->ext)
		return 0; /* out of room: the build starts over with a larger image */
	int err = extents_io(e, d, off, (void *)buf, len, true);
	if (err)
		return bg_error_os(err == ENOSPC ? BANGER_EIO : bg_code_from_errno(err), err,
				   "write into %s", e->path);
	return 0;
}

static int sink_read(bg_sink *s, const bg_fdata *d, size_t max, char **out, size_t *len)
{
	bg_ext4 *e = (bg_ext4 *)s;
	*out = NULL;
	*len = 0;
	if (d->size > max)
		return bg_error(BANGER_EINVALID, "file of %llu bytes is larger than %zu",
				(unsigned long long)d->size, max);
	char *p = bg_malloc((size_t)d->size + 1);
	if (!p)
		return bg_error_oom();
	int err = 0;
	if (d->mem)
		memcpy(p, d->mem, (size_t)d->size);
	else if (d->size && (!d->ext || (err = extents_io(e, d, 0, p, (size_t)d->size, false)))) {
		bg_free(p);
		return err ? bg_error_os(BANGER_EIO, err, "read from %s", e->path)
			   : bg_error(BANGER_EIO, "file data was not kept");
	}
	p[d->size] = '\0';
	*out = p;
	*len = (size_t)d->size;
	return 0;
}

bg_sink *bg_ext4_sink(bg_ext4 *e)
{
	return &e->sink;
}

uint64_t bg_ext4_overflow_blocks(bg_ext4 *e)
{
	pthread_mutex_lock(&e->lock);
	uint64_t n = e->overflow;
	pthread_mutex_unlock(&e->lock);
	return n;
}

void bg_ext4_release(bg_ext4 *e, const bg_fdata *d)
{
	(void)e;
	(void)d; /* dropped data is punched out in bg_ext4_finish */
}

/* libext2fs allocations (extent index blocks, xattr blocks) come from the
 * same bump allocator, so everything stays packed low for the resize. */
static errcode_t alloc_cb(ext2_filsys fs, blk64_t goal, blk64_t *ret)
{
	(void)goal;
	bg_ext4 *e = fs->priv_data;
	uint64_t s;
	uint32_t got;
	pthread_mutex_lock(&e->lock);
	bool ok = take(e, 1, &s, &got);
	pthread_mutex_unlock(&e->lock);
	if (!ok)
		return EXT2_ET_BLOCK_ALLOC_FAIL;
	*ret = s;
	return 0;
}

/* libext2fs opens the image without O_CLOEXEC: mark its descriptors. */
static void cloexec_fds_of(const char *path)
{
	struct stat want;
	if (stat(path, &want) != 0)
		return;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		int fd = (int)strtol(de->d_name, NULL, 10); /* "." and ".." give 0: skipped below */
		struct stat st;
		if (fd > 2 && fstat(fd, &st) == 0 && st.st_dev == want.st_dev && st.st_ino == want.st_ino) {
			int fl = fcntl(fd, F_GETFD);
			if (fl >= 0 && !(fl & FD_CLOEXEC))
				fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
		}
	}
	closedir(d);
}

static int open_fs(bg_ext4 *e)
{
	errcode_t err = ext2fs_open2(e->path, NULL, EXT2_FLAG_RW | EXT2_FLAG_64BITS, 0, 0,
				     unix_io_manager, &e->fs);
	if (err) {
		e->fs = NULL;
		return fs_error(err, "open the new filesystem");
	}
	cloexec_fds_of(e->path);
	e->fs->priv_data = e;
	if ((err = ext2fs_read_bitmaps(e->fs)))
		return fs_error(err, "read bitmaps");
	e->bs = e->fs->blocksize;
	e->has_csum = ext2fs_has_feature_metadata_csum(e->fs->super);
	e->has_extents = ext2fs_has_feature_extents(e->fs->super);
	return 0;
}

int bg_ext4_create(bg_ext4 **out, const char *path, uint64_t size, uint64_t inodes)
{
	*out = NULL;
	bg_ext4 *e = bg_calloc(1, sizeof(*e));
	if (!e)
		return bg_error_oom();
	e->fd = -1;
	e->sink.begin = sink_begin;
	e->sink.write = sink_write;
	e->sink.read = sink_read;
	pthread_mutex_init(&e->lock, NULL);
	int rc = 0;
	if (!(e->path = bg_strdup(path))) {
		rc = bg_error_oom();
		goto fail;
	}
	size &= ~(uint64_t)((1u << 20) - 1);
	if (size < (16u << 20))
		size = 16u << 20;
	/* The inode count follows the size (BG_EXT4_INODES_PER_GROUP in each
	 * group of 32768 blocks): room for more inodes is more groups. */
	uint64_t igroups = (inodes + EXT2_GOOD_OLD_FIRST_INO + BG_EXT4_INODES_PER_GROUP - 1) /
			   BG_EXT4_INODES_PER_GROUP;
	if (inodes && size < igroups * (32768ull << 12))
		size = igroups * (32768ull << 12);
	e->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (e->fd < 0) {
		rc = bg_error_os(bg_code_from_errno(errno), errno, "create %s", path);
		goto fail;
	}
	if (ftruncate(e->fd, (off_t)size) != 0) {
		rc = bg_error_os(BANGER_EIO, errno, "size %s", path);
		goto fail;
	}
	/* 4 KiB blocks and 256-byte inodes whatever the size class; 16384
	 * inodes in every group of 128 MiB, one per 8 KiB (the tables stay
	 * sparse until used, and the count per group survives the resize); no
	 * reserved blocks; the journal comes after the final resize. */
	uint64_t groups = ((size >> 12) + 32767) / 32768;
	char ninodes[32];
	uint64_t ninodes_n = groups * BG_EXT4_INODES_PER_GROUP;
	snprintf(ninodes, sizeof(ninodes), "%llu", (unsigned long long)ninodes_n);
	const char *argv[] = { "mkfs.ext4", "-q", "-F", "-b", "4096", "-I", "256", "-N", ninodes,
			       "-m", "0", "-O", "^has_journal", "-E",
			       "lazy_itable_init=1,nodiscard,root_owner=0:0", path, NULL };
	if ((rc = bg_run_checked(argv, 120000)))
		goto fail;
	if ((rc = open_fs(e)))
		goto fail;
	ext2fs_set_alloc_block_callback(e->fs, alloc_cb, NULL);
	/* the free ranges, in block order */
	ext2fs_block_bitmap bm = e->fs->block_map;
	blk64_t start = e->fs->super->s_first_data_block, end = ext2fs_blocks_count(e->fs->super) - 1;
	size_t cap = 0;
	while (start <= end) {
		blk64_t z, s;
		if (ext2fs_find_first_zero_block_bitmap2(bm, start, end, &z))
			break;
		if (ext2fs_find_first_set_block_bitmap2(bm, z, end, &s))
			s = end + 1;
		if (e->nfree == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			range *nf = bg_realloc(e->free, ncap * sizeof(*nf));
			if (!nf) {
				rc = bg_error_oom();
				goto fail;
			}
			e->free = nf;
			cap = ncap;
		}
		e->free[e->nfree].start = z;
		e->free[e->nfree].len = s - z;
		e->nfree++;
		start = s;
	}
	if (!e->nfree) {
		rc = bg_error(BANGER_EIO, "the new filesystem has no free blocks");
		goto fail;
	}
	e->first_free = e->high = e->free[0].start;
	e->next_ino = e->fs->super->s_first_ino + 1;
	*out = e;
	return 0;
fail:
	bg_ext4_discard(e);
	return rc;
}

static void release(bg_ext4 *e, bool unlink_file)
{
	if (!e)
		return;
	if (e->fs)
		ext2fs_close_free(&e->fs);
	if (e->fd >= 0)
		close(e->fd);
	if (unlink_file && e->path)
		unlink(e->path);
	pthread_mutex_destroy(&e->lock);
	bg_free(e->free);
	bg_free(e->path);
	bg_free(e);
}

void bg_ext4_discard(bg_ext4 *e)
{
	release(e, true);
}

void bg_ext4_free(bg_ext4 *e)
{
	release(e, false);
}

/* ---- writing the tree ---- */

static void set_time(uint32_t *lo, uint32_t *extra, int64_t sec, uint32_t ns)
{
	/* ext4: 32 signed bits plus 2 epoch bits: 1901 .. 2446 */
	const int64_t min = -(1ll << 31), max = (1ll << 34) - (1ll << 31) - 1;
	if (sec < min)
		sec = min;
	if (sec > max)
		sec = max;
	*lo = (uint32_t)sec;
	/* sec - low is a whole multiple of 2^32: divide (no shift of a
	 * negative value) */
	int64_t epoch = (sec - (int64_t)(int32_t)(uint32_t)sec) / ((int64_t)1 << 32);
	if (extra)
		*extra = (ns << 2) | ((uint32_t)epoch & 3);
}

static void base_inode(bg_ext4 *e, struct ext2_inode_large *in, const bg_inode *n)
{
	memset(in, 0, sizeof(*in));
	in->i_mode = (uint16_t)n->mode;
	in->i_uid = (uint16_t)(n->uid & 0xffff);
	in->osd2.linux2.l_i_uid_high = (uint16_t)(n->uid >> 16);
	in->i_gid = (uint16_t)(n->gid & 0xffff);
	in->osd2.linux2.l_i_gid_high = (uint16_t)(n->gid >> 16);
	bool large = EXT2_INODE_SIZE(e->fs->super) > EXT2_GOOD_OLD_INODE_SIZE;
	if (large)
		in->i_extra_isize = (uint16_t)(sizeof(struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE);
	set_time(&in->i_mtime, large ? &in->i_mtime_extra : NULL, n->mtime, n->mtime_ns);
	set_time(&in->i_atime, large ? &in->i_atime_extra : NULL, n->mtime, n->mtime_ns);
	set_time(&in->i_ctime, large ? &in->i_ctime_extra : NULL, n->mtime, n->mtime_ns);
	if (large)
		set_time(&in->i_crtime, &in->i_crtime_extra, n->mtime, n->mtime_ns);
}

static void inline_extents(struct ext2_inode_large *in, const bg_extent *x, uint32_t n)
{
	struct ext3_extent_header *h = (struct ext3_extent_header *)in->i_block;
	h->eh_magic = ext2fs_cpu_to_le16(EXT3_EXT_MAGIC);
	h->eh_entries = ext2fs_cpu_to_le16((uint16_t)n);
	h->eh_max = ext2fs_cpu_to_le16(4);
	h->eh_depth = 0;
	h->eh_generation = 0;
	struct ext3_extent *ee = (struct ext3_extent *)(h + 1);
	uint32_t lblk = 0;
	for (uint32_t i = 0; i < n; i++) {
		ee[i].ee_block = ext2fs_cpu_to_le32(lblk);
		ee[i].ee_len = ext2fs_cpu_to_le16((uint16_t)x[i].len);
		ee[i].ee_start_hi = ext2fs_cpu_to_le16((uint16_t)(x[i].start >> 32));
		ee[i].ee_start = ext2fs_cpu_to_le32((uint32_t)x[i].start);
		lblk += x[i].len;
	}
	in->i_flags |= EXT4_EXTENTS_FL;
}

static int mark_used(bg_ext4 *e, const bg_extent *x, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		ext2fs_block_alloc_stats_range(e->fs, x[i].start, x[i].len, +1);
	return 0;
}

/* Write inode ino with data in extents x (marked used here). */
static int write_with_extents(bg_ext4 *e, uint32_t ino, struct ext2_inode_large *in, const bg_extent *x,
			      uint32_t n, const char *what)
{
	uint64_t nblocks = 0;
	for (uint32_t i = 0; i < n; i++)
		nblocks += x[i].len;
	mark_used(e, x, n);
	errcode_t err;
	if (n <= 4) {
		inline_extents(in, x, n);
		ext2fs_iblk_set(e->fs, (struct ext2_inode *)in, nblocks);
		if ((err = ext2fs_write_inode_full(e->fs, ino, (struct ext2_inode *)in, sizeof(*in))))
			return fs_error(err, what);
		return 0;
	}
	/* More than fits in the inode: let libext2fs build the extent tree. */
	in->i_flags |= EXT4_EXTENTS_FL;
	ext2fs_iblk_set(e->fs, (struct ext2_inode *)in, nblocks);
	if ((err = ext2fs_write_inode_full(e->fs, ino, (struct ext2_inode *)in, sizeof(*in))))
		return fs_error(err, what);
	ext2_extent_handle_t h;
	if ((err = ext2fs_extent_open2(e->fs, ino, NULL, &h)))
		return fs_error(err, what);
	uint64_t lblk = 0;
	for (uint32_t i = 0; i < n && !err; i++) {
		struct ext2fs_extent ex = { .e_pblk = x[i].start, .e_lblk = lblk, .e_len = x[i].len, .e_flags = 0 };
		err = ext2fs_extent_insert(h, i ? EXT2_EXTENT_INSERT_AFTER : 0, &ex);
		if (!err)
			err = ext2fs_extent_fix_parents(h);
		lblk += x[i].len;
	}
	ext2fs_extent_free(h);
	return err ? fs_error(err, what) : 0;
}

/* Blocks for content that only exists in memory (patch files, dirs, long
 * symlinks): allocated now, written with pwrite. */
static int place_bytes(bg_ext4 *e, bg_arena *arena, const void *data, uint64_t len, bg_extent **x,
		       uint32_t *n)
{
	uint64_t nb = (len + e->bs - 1) / e->bs;
	*x = NULL;
	*n = 0;
	if (!nb)
		return 0;
	int rc = alloc_extents(e, arena, nb, x, n);
	if (rc)
		return rc;
	if (!*x)
		return bg_error(BANGER_EIO, "the image ran out of room while writing metadata");
	bg_fdata tmp = { .size = len, .ext = *x, .next = *n };
	int err = extents_io(e, &tmp, 0, (void *)data, (size_t)len, true);
	if (err)
		return bg_error_os(BANGER_EIO, err, "write into %s", e->path);
	return 0;
}

static int write_xattrs(bg_ext4 *e, uint32_t ino, const bg_inode *n, const char *name)
{
	if (!n->nxattrs)
		return 0;
	struct ext2_xattr_handle *h;
	errcode_t err = ext2fs_xattrs_open(e->fs, ino, &h);
	if (err)
		return fs_error(err, "xattrs");
	err = ext2fs_xattrs_read(h);
	for (uint32_t i = 0; i < n->nxattrs && !err; i++)
		err = ext2fs_xattr_set(h, n->xattrs[i].name, n->xattrs[i].value, n->xattrs[i].len);
	errcode_t err2 = ext2fs_xattrs_close(&h);
	if (!err)
		err = err2;
	if (err)
		return bg_error_lib(BANGER_EINVALID, "ext2fs", (int)err, "xattrs of '%.200s' cannot be stored "
				    "in ext4: %s", name, error_message(err));
	return 0;
}

static uint8_t ftype(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return EXT2_FT_REG_FILE;
	case S_IFDIR: return EXT2_FT_DIR;
	case S_IFCHR: return EXT2_FT_CHRDEV;
	case S_IFBLK: return EXT2_FT_BLKDEV;
	case S_IFIFO: return EXT2_FT_FIFO;
	case S_IFSOCK: return EXT2_FT_SOCK;
	case S_IFLNK: return EXT2_FT_SYMLINK;
	default: return EXT2_FT_UNKNOWN;
	}
}

static int write_nondir(bg_ext4 *e, bg_arena *arena, bg_inode *n, const char *name)
{
	struct ext2_inode_large in;
	base_inode(e, &in, n);
	in.i_links_count = (uint16_t)(n->nlink > 65000 ? 65000 : n->nlink);
	uint32_t ino = n->ino;
	errcode_t err;
	int rc;
	switch (n->mode & S_IFMT) {
	case S_IFREG: {
		bg_fdata *d = n->u.file;
		uint64_t size = d ? d->size : 0;
		in.i_size = (uint32_t)size;
		in.i_size_high = (uint32_t)(size >> 32);
		bg_extent *x = d ? d->ext : NULL;
		uint32_t nx = d ? d->next : 0;
		if (d && d->mem && size && (rc = place_bytes(e, arena, d->mem, size, &x, &nx)))
			return rc;
		if (size && !x)
			return bg_error(BANGER_EIO, "data of '%.200s' was not written", name);
		if ((rc = write_with_extents(e, ino, &in, x, nx, name)))
			return rc;
		break;
	}
	case S_IFLNK: {
		uint32_t len = n->u.link.len;
		in.i_size = len;
		if (len < sizeof(in.i_block)) {
			memcpy(in.i_block, n->u.link.target, len);
			if ((err = ext2fs_write_inode_full(e->fs, ino, (struct ext2_inode *)&in, sizeof(in))))
				return fs_error(err, name);
		} else {
			bg_extent *x;
			uint32_t nx;
			if ((rc = place_bytes(e, arena, n->u.link.target, len, &x, &nx)) ||
			    (rc = write_with_extents(e, ino, &in, x, nx, name)))
				return rc;
		}
		break;
	}
	case S_IFCHR:
	case S_IFBLK:
	default:
		if (S_ISCHR(n->mode) || S_ISBLK(n->mode)) {
			uint32_t ma = n->u.dev.major, mi = n->u.dev.minor;
			if (ma < 256 && mi < 256) {
				in.i_block[0] = ext2fs_cpu_to_le32(ma * 256 + mi);
			} else {
				in.i_block[0] = 0;
				in.i_block[1] = ext2fs_cpu_to_le32((mi & 0xff) | (ma << 8) | ((mi & ~0xffu) << 12));
			}
		}
		if ((err = ext2fs_write_inode_full(e->fs, ino, (struct ext2_inode *)&in, sizeof(in))))
			return fs_error(err, name);
		break;
	}
	return write_xattrs(e, ino, n, name);
}

typedef struct {
	uint32_t ino;
	uint8_t type;
	const char *name;
	uint32_t len;
} dent;

static unsigned rec_len(uint32_t namelen)
{
	return (8 + namelen + 3) & ~3u;
}

/* The k-th entry of a directory: ".", "..", the children, then extra. */
static dent dir_entry(size_t k, uint32_t ino, uint32_t parent, const bg_dentry *d, const dent *extra,
		      size_t count)
{
	if (k == 0)
		return (dent){ ino, EXT2_FT_DIR, ".", 1 };
	if (k == 1)
		return (dent){ parent, EXT2_FT_DIR, "..", 2 };
	if (k < 2 + count)
		/* d is the (k-2)th of the directory's count children */
		return (dent){ d->inode->ino, ftype(d->inode->mode), d->name, d->namelen }; // NOLINT(clang-analyzer-core.NullDereference)
	return *extra;
}

/* Bytes of a directory block that entries may use (the rest is the
 * checksum tail). */
static unsigned dir_usable(const bg_ext4 *e)
{
	return e->bs - (e->has_csum ? DIR_TAIL_SIZE : 0);
}

/* Blocks a directory's entries take: ".", "..", the children and, when
 * extra_len is not 0, one more entry of that name length (lost+found in
 * the root), laid out as write_dir lays them out (no entry spans blocks). */
static uint64_t dir_blocks(const bg_ext4 *e, const bg_inode *dir, uint32_t extra_len)
{
	unsigned usable = dir_usable(e), pos = rec_len(1) + rec_len(2);
	uint64_t nblocks = 1;
	const bg_dentry *d = dir->u.dir.first;
	for (bool more = true; more;) {
		uint32_t len;
		if (d) {
			len = d->namelen;
			d = d->next;
		} else {
			more = false;
			if (!extra_len)
				break;
			len = extra_len;
		}
		if (pos + rec_len(len) > usable) {
			nblocks++;
			pos = 0;
		}
		pos += rec_len(len);
	}
	return nblocks;
}

static int write_dir(bg_ext4 *e, bg_arena *arena, bg_inode *dir, uint32_t ino, uint32_t parent,
		     const dent *extra, const char *name)
{
	unsigned usable = dir_usable(e);
	size_t count = dir->u.dir.count, total = 2 + count + (extra ? 1 : 0);
	uint64_t nblocks = dir_blocks(e, dir, extra ? extra->len : 0);
	bg_extent *x;
	uint32_t nx;
	int rc = alloc_extents(e, arena, nblocks, &x, &nx);
	if (rc)
		return rc;
	if (!x)
		return bg_error(BANGER_EIO, "the image ran out of room while writing directories");
	/* the inode first: directory block checksums read it */
	struct ext2_inode_large in;
	base_inode(e, &in, dir);
	uint32_t links = 2 + dir->u.dir.nsubdirs + (extra && extra->type == EXT2_FT_DIR ? 1 : 0);
	in.i_links_count = (uint16_t)(links > 65000 ? 1 : links);
	uint64_t size = nblocks * e->bs;
	in.i_size = (uint32_t)size;
	in.i_size_high = (uint32_t)(size >> 32);
	if ((rc = write_with_extents(e, ino, &in, x, nx, name)))
		return rc;

	char *buf = bg_malloc(e->bs);
	if (!buf)
		return bg_error_oom();
	uint32_t xi = 0, xoff = 0;
	size_t k = 0;
	const bg_dentry *d = dir->u.dir.first;
	for (uint64_t b = 0; b < nblocks && !rc; b++) {
		memset(buf, 0, e->bs);
		unsigned pos = 0;
		struct ext2_dir_entry *last = NULL;
		while (k < total) {
			dent de = dir_entry(k, ino, parent, d, extra, count);
			unsigned rl = rec_len(de.len);
			if (pos + rl > usable)
				break;
			struct ext2_dir_entry *ent = (struct ext2_dir_entry *)(buf + pos);
			ent->inode = ext2fs_cpu_to_le32(de.ino);
			ext2fs_dirent_set_name_len(ent, (int)de.len);
			ext2fs_dirent_set_file_type(ent, de.type);
			memcpy(ent->name, de.name, de.len);
			ent->rec_len = (uint16_t)rl;
			last = ent;
			pos += rl;
			if (k >= 2 && k < 2 + count)
				d = d->next;
			k++;
		}
		if (!last) {
			rc = bg_error(BANGER_EIO, "directory '%.200s': internal layout error", name);
			break;
		}
		errcode_t err = ext2fs_set_rec_len(e->fs, usable - (unsigned)((char *)last - buf), last);
		if (!err && e->has_csum)
			ext2fs_initialize_dirent_tail(e->fs, EXT2_DIRENT_TAIL(buf, e->bs));
		/* logical block b lives in extent xi at offset xoff */
		blk64_t phys = x[xi].start + xoff;
		if (++xoff == x[xi].len) {
			xi++;
			xoff = 0;
		}
		if (!err)
			err = ext2fs_write_dir_block4(e->fs, phys, buf, 0, ino);
		if (err)
			rc = fs_error(err, name);
	}
	bg_free(buf);
	if (!rc && k != total)
		rc = bg_error(BANGER_EIO, "directory '%.200s': internal layout error", name);
	if (!rc)
		rc = write_xattrs(e, ino, dir, name);
	return rc;
}

static int assign(bg_ext4 *e, bg_inode *n)
{
	if (n->ino)
		return 0;
	if (e->next_ino > e->fs->super->s_inodes_count)
		return bg_error(BANGER_EIO, "the image ran out of inodes");
	n->ino = e->next_ino++;
	ext2fs_inode_alloc_stats2(e->fs, n->ino, +1, S_ISDIR(n->mode) ? 1 : 0);
	return 0;
}

/* Free what mkfs put in an inode (root, lost+found) before rewriting it. */
static int clear_inode(bg_ext4 *e, uint32_t ino)
{
	struct ext2_inode in;
	errcode_t err = ext2fs_read_inode(e->fs, ino, &in);
	if (!err)
		err = ext2fs_punch(e->fs, ino, &in, NULL, 0, ~0ULL);
	return err ? fs_error(err, "reset a directory made by mkfs") : 0;
}

typedef struct {
	bg_ext4 *e;
	bg_arena *arena;
	bool lf_in_tree;
} wctx;

/* One directory: numbers for its children, then its blocks (which hold
 * those numbers). */
static int write_one_dir(wctx *w, bg_inode *dir, uint32_t parent, const char *name, bool is_root)
{
	bg_ext4 *e = w->e;
	int rc;
	for (bg_dentry *d = dir->u.dir.first; d; d = d->next)
		if ((rc = assign(e, d->inode)))
			return rc;
	dent lf = { EXT2_GOOD_OLD_FIRST_INO, EXT2_FT_DIR, "lost+found", 10 };
	return write_dir(e, w->arena, dir, dir->ino, parent, is_root && !w->lf_in_tree ? &lf : NULL, name);
}

/* Parents before children, without recursion (bg_tree_next): when an
 * entry is reached, its directory has been written and has given it its
 * number. */
static int write_dir_tree(wctx *w, bg_inode *root)
{
	int rc = write_one_dir(w, root, EXT2_ROOT_INO, "/", true);
	for (bg_dentry *d = root->u.dir.first; d && !rc; d = bg_tree_next(root, d, true)) {
		bg_inode *n = d->inode;
		if (S_ISDIR(n->mode)) {
			rc = write_one_dir(w, n, d->parent->ino, d->name, false);
		} else if (!n->written) {
			n->written = true;
			rc = write_nondir(w->e, w->arena, n, d->name);
		}
	}
	return rc;
}

/* Blocks libext2fs may add for an extent tree over n extents: the inode
 * holds 4; leaves hold 340 and split half full as extents are inserted. */
static uint64_t extent_tree_blocks(uint64_t n)
{
	return n <= 4 ? 0 : 2 * ((n + 339) / 340) + 1;
}

/* Blocks a non-directory inode takes when its metadata is written (its
 * data placed while the layers streamed is not counted: it is there). */
static uint64_t nondir_blocks(const bg_ext4 *e, const bg_inode *n)
{
	uint64_t b = n->nxattrs ? 1 : 0; /* an xattr block, if they do not fit the inode */
	if (S_ISREG(n->mode) && n->u.file) {
		const bg_fdata *d = n->u.file;
		if (d->mem && d->size) {
			uint64_t nb = (d->size + e->bs - 1) / e->bs;
			b += nb + extent_tree_blocks(1 + nb / 1024);
		} else {
			b += extent_tree_blocks(d->next);
		}
	} else if (S_ISLNK(n->mode) && n->u.link.len >= sizeof(((struct ext2_inode *)0)->i_block)) {
		b += (n->u.link.len + e->bs - 1) / e->bs;
	}
	return b;
}

bool bg_ext4_fits(bg_ext4 *e, bg_tree *t, uint64_t *need_inodes, uint64_t *short_blocks)
{
	bg_inode *root = bg_tree_root(t);
	bg_dentry *lf = bg_tree_lookup(t, root, "lost+found", 10);
	uint64_t inodes = 0, blocks = dir_blocks(e, root, lf ? 0 : 10);
	/* a non-directory is counted once however many names it has: marked
	 * with a temporary ino of 1 (numbers are assigned later), cleared below */
	for (bg_dentry *d = root->u.dir.first; d; d = bg_tree_next(root, d, true)) {
		bg_inode *n = d->inode;
		if (S_ISDIR(n->mode)) {
			uint64_t nb = dir_blocks(e, n, 0);
			inodes++;
			blocks += nb + extent_tree_blocks(1 + nb / 1024) + (n->nxattrs ? 1 : 0);
		} else if (n->ino != 1) {
			n->ino = 1;
			inodes++;
			blocks += nondir_blocks(e, n);
		}
	}
	for (bg_dentry *d = root->u.dir.first; d; d = bg_tree_next(root, d, true))
		if (!S_ISDIR(d->inode->mode))
			d->inode->ino = 0;
	/* a margin for what the count cannot see (extents split at group
	 * boundaries, libext2fs's own choices) */
	blocks += blocks / 16 + 256;

	uint64_t free_inodes = e->fs->super->s_inodes_count + 1 - e->next_ino;
	uint64_t free_blocks = 0;
	pthread_mutex_lock(&e->lock);
	for (size_t i = e->cur; i < e->nfree; i++)
		free_blocks += e->free[i].len;
	pthread_mutex_unlock(&e->lock);
	*need_inodes = inodes;
	*short_blocks = blocks > free_blocks ? blocks - free_blocks : 0;
	return inodes <= free_inodes && !*short_blocks;
}

int bg_ext4_write_tree(bg_ext4 *e, bg_tree *t)
{
	bg_inode *root = bg_tree_root(t);
	wctx w = { e, bg_tree_arena(t), false };
	int rc;
	root->ino = EXT2_ROOT_INO;
	if ((rc = clear_inode(e, EXT2_ROOT_INO)))
		return rc;
	bg_dentry *lf = bg_tree_lookup(t, root, "lost+found", 10);
	if (lf && S_ISDIR(lf->inode->mode)) {
		/* the image has its own: it takes mkfs's inode */
		w.lf_in_tree = true;
		lf->inode->ino = EXT2_GOOD_OLD_FIRST_INO;
		if ((rc = clear_inode(e, EXT2_GOOD_OLD_FIRST_INO)))
			return rc;
	} else if (lf) {
		/* a non-directory named lost+found: mkfs's directory goes */
		w.lf_in_tree = true;
		if ((rc = clear_inode(e, EXT2_GOOD_OLD_FIRST_INO)))
			return rc;
		ext2fs_inode_alloc_stats2(e->fs, EXT2_GOOD_OLD_FIRST_INO, -1, 1);
		struct ext2_inode_large z;
		memset(&z, 0, sizeof(z));
		ext2fs_write_inode_full(e->fs, EXT2_GOOD_OLD_FIRST_INO, (struct ext2_inode *)&z, sizeof(z));
	}
	return write_dir_tree(&w, root);
}

/* ---- finishing ---- */

static int punch(int fd, uint64_t off, uint64_t len)
{
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
		return 0;
	return errno;
}

/* Data the tree dropped (and blocks freed from mkfs's directories):
 * every free block below the high-water mark, as ranges to punch. */
static int free_ranges(bg_ext4 *e, range **out, size_t *count)
{
	ext2_filsys fs = e->fs;
	range *holes = NULL;
	size_t nholes = 0, cap = 0;
	blk64_t s = e->first_free;
	while (s < e->high) {
		blk64_t z, n;
		if (ext2fs_find_first_zero_block_bitmap2(fs->block_map, s, e->high - 1, &z))
			break;
		if (ext2fs_find_first_set_block_bitmap2(fs->block_map, z, e->high - 1, &n))
			n = e->high;
		if (nholes == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			range *nh = bg_realloc(holes, ncap * sizeof(*nh));
			if (!nh) {
				bg_free(holes);
				return bg_error_oom();
			}
			holes = nh;
			cap = ncap;
		}
		holes[nholes].start = z;
		holes[nholes].len = n - z;
		nholes++;
		s = n;
	}
	*out = holes;
	*count = nholes;
	return 0;
}

/* What the filesystem holds once its metadata is written. */
typedef struct {
	uint64_t used, inodes_used, ipg, bpg;
	uint32_t bs;
} fs_usage;

/* The final size in blocks: what is used, the journal, the headroom;
 * enough block groups for the inodes in use plus a reserve.  A fixed
 * size replaces it, when the image fits. */
static int final_blocks(const fs_usage *u, uint64_t headroom, uint64_t fixed_size, uint64_t *target_out,
			uint64_t *jblocks_out)
{
	uint64_t used = u->used, ipg = u->ipg, bpg = u->bpg, inodes_used = u->inodes_used;
	uint32_t bs = u->bs;
	uint64_t head = (headroom + bs - 1) / bs;
	uint64_t target = used + head;
	int j = ext2fs_default_journal_size(target);
	uint64_t jblocks = j > 0 ? (uint64_t)j : 0;
	target += jblocks;
	uint64_t want_inodes = inodes_used + (inodes_used / 4 > 8192 ? inodes_used / 4 : 8192);
	/* every group, the last (partial) one too, has ipg inodes */
	uint64_t groups = (want_inodes + ipg - 1) / ipg;
	if ((target + bpg - 1) / bpg < groups)
		target = (groups - 1) * bpg + bpg / 2;
	target = (target + 255) & ~(uint64_t)255;
	if (fixed_size) {
		uint64_t fixed = fixed_size / bs;
		uint64_t need = used + jblocks + 256;
		if (fixed < need)
			return bg_error(BANGER_EINVALID, "the requested size of %llu bytes is too small: the "
					"image needs at least %llu", (unsigned long long)fixed_size,
					(unsigned long long)(need * bs));
		target = fixed;
	}
	*target_out = target;
	*jblocks_out = jblocks;
	return 0;
}

/* The journal, and inode tables marked zeroed: the file was sparse, so
 * they read as zeros and the guest need not zero them (and write them
 * into its copy-on-write layer). */
static int add_journal(bg_ext4 *e, uint64_t jblocks)
{
	ext2_filsys fs = e->fs;
	errcode_t err;
	if (jblocks) {
		struct ext2fs_journal_params jp;
		if (!(err = ext2fs_get_journal_params(&jp, fs)))
			err = ext2fs_add_journal_inode3(fs, &jp, ~0ULL,
							EXT2_MKJOURNAL_LAZYINIT | EXT2_MKJOURNAL_NO_MNT_CHECK);
		if (err)
			return fs_error(err, "add the journal");
	}
	for (dgrp_t g = 0; g < fs->group_desc_count; g++) {
		ext2fs_bg_flags_set(fs, g, EXT2_BG_INODE_ZEROED);
		ext2fs_group_desc_csum_set(fs, g);
	}
	ext2fs_mark_super_dirty(fs);
	return 0;
}

int bg_ext4_finish(bg_ext4 *e, uint64_t fixed_size, uint64_t headroom, uint64_t *bytes)
{
	*bytes = 0;
	ext2_filsys fs = e->fs;
	int rc = 0;
	errcode_t err;
	range *holes = NULL;
	size_t nholes = 0;
	if ((rc = free_ranges(e, &holes, &nholes)))
		return rc;
	uint64_t blocks = ext2fs_blocks_count(fs->super);
	fs_usage u = {
		.used = blocks - ext2fs_free_blocks_count(fs->super),
		.inodes_used = fs->super->s_inodes_count - fs->super->s_free_inodes_count,
		.ipg = fs->super->s_inodes_per_group,
		.bpg = fs->super->s_blocks_per_group,
		.bs = e->bs,
	};
	uint32_t bs = e->bs;
	err = ext2fs_close_free(&e->fs);
	if (err) {
		bg_free(holes);
		return fs_error(err, "write the filesystem metadata");
	}
	for (size_t i = 0; i < nholes; i++)
		punch(e->fd, holes[i].start * bs, holes[i].len * bs);
	bg_free(holes);

	uint64_t target = 0, jblocks = 0; /* set by final_size(); zero keeps -O2 from doubting it */
	if ((rc = final_blocks(&u, headroom, fixed_size, &target, &jblocks)))
		return rc;
	if (target != blocks) {
		char num[32];
		snprintf(num, sizeof(num), "%llu", (unsigned long long)target);
		const char *argv[] = { "resize2fs", "-f", e->path, num, NULL };
		if ((rc = bg_run_checked(argv, 600000))) {
			bg_error_prefix("resize the image to %llu blocks", (unsigned long long)target);
			return rc;
		}
	}
	if ((rc = open_fs(e)) || (rc = add_journal(e, jblocks)))
		return rc;
	if ((err = ext2fs_close_free(&e->fs)))
		return fs_error(err, "finish the filesystem");
	if (fsync(e->fd) != 0)
		return bg_error_os(BANGER_EIO, errno, "fsync %s", e->path);
	close(e->fd);
	e->fd = -1;
	*bytes = target * bs;
	return 0;
}

