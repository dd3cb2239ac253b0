/* The in-memory tree of an image: inodes (shared by hardlinks) and
 * dentries in one hash table keyed by (parent, name).  Nothing here ever
 * touches the host's filesystem; symlink targets are data and are only
 * interpreted, confined to the tree, by bg_tree_resolve_parent.  No walk
 * here recurses with the depth of the tree (bg_tree_next keeps no stack),
 * and directories nest at most BG_TREE_MAX_DEPTH levels. */
#include "image.h"

#include <string.h>
#include <sys/stat.h>

#define MAX_HOPS 40

struct bg_arena_chunk {
	bg_arena_chunk *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
};

void *bg_arena_alloc(bg_arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	bg_arena_chunk *c = a->head;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > (64u << 10) ? n : (64u << 10);
		c = bg_malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->next = a->head;
		c->used = 0;
		c->cap = cap;
		a->head = c;
		a->bytes += cap;
	}
	void *p = c->data + c->used;
	c->used += n;
	memset(p, 0, n);
	return p;
}

char *bg_arena_strndup(bg_arena *a, const char *s, size_t n)
{
	char *p = bg_arena_alloc(a, n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

void bg_arena_free(bg_arena *a)
{
	bg_arena_chunk *c = a->head;
	while (c) {
		bg_arena_chunk *next = c->next;
		bg_free(c);
		c = next;
	}
	a->head = NULL;
	a->bytes = 0;
}

struct bg_tree {
	bg_arena arena;
	bg_inode *root;
	bg_dentry **buckets;
	size_t nbuckets, count;
	bg_tree_release_cb release;
	void *release_payload;
};

static uint32_t hash_of(const bg_inode *dir, const char *name, size_t len)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)(uintptr_t)dir;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 1099511628211ull;
	}
	h ^= h >> 29;
	return (uint32_t)h;
}

bg_inode *bg_tree_new_inode(bg_tree *t, uint32_t mode)
{
	bg_inode *i = bg_arena_alloc(&t->arena, sizeof(*i));
	if (i)
		i->mode = mode;
	return i;
}

int bg_tree_new(bg_tree **out)
{
	*out = NULL;
	bg_tree *t = bg_calloc(1, sizeof(*t));
	if (!t)
		return bg_error_oom();
	t->nbuckets = 1024;
	t->buckets = bg_calloc(t->nbuckets, sizeof(bg_dentry *));
	t->root = t->buckets ? bg_tree_new_inode(t, S_IFDIR | 0755) : NULL;
	if (!t->root) {
		bg_tree_free(t);
		return bg_error_oom();
	}
	t->root->nlink = 1;
	*out = t;
	return 0;
}

void bg_tree_free(bg_tree *t)
{
	if (!t)
		return;
	bg_arena_free(&t->arena);
	bg_free(t->buckets);
	bg_free(t);
}

bg_inode *bg_tree_root(bg_tree *t)
{
	return t->root;
}

bg_arena *bg_tree_arena(bg_tree *t)
{
	return &t->arena;
}

void bg_tree_on_release(bg_tree *t, bg_tree_release_cb cb, void *payload)
{
	t->release = cb;
	t->release_payload = payload;
}

bg_dentry *bg_tree_lookup(bg_tree *t, bg_inode *dir, const char *name, size_t len)
{
	if (!dir || !S_ISDIR(dir->mode))
		return NULL;
	uint32_t h = hash_of(dir, name, len);
	for (bg_dentry *d = t->buckets[h & (t->nbuckets - 1)]; d; d = d->hnext)
		if (d->hash == h && d->parent == dir && d->namelen == len && memcmp(d->name, name, len) == 0)
			return d;
	return NULL;
}

static int grow(bg_tree *t)
{
	size_t nb = t->nbuckets * 2;
	bg_dentry **b = bg_calloc(nb, sizeof(bg_dentry *));
	if (!b)
		return bg_error_oom();
	for (size_t i = 0; i < t->nbuckets; i++) {
		bg_dentry *d = t->buckets[i];
		while (d) {
			bg_dentry *next = d->hnext;
			d->hnext = b[d->hash & (nb - 1)];
			b[d->hash & (nb - 1)] = d;
			d = next;
		}
	}
	bg_free(t->buckets);
	t->buckets = b;
	t->nbuckets = nb;
	return 0;
}

int bg_tree_add(bg_tree *t, bg_inode *dir, const char *name, size_t len, bg_inode *inode,
		uint32_t layer, bg_dentry **out)
{
	if (S_ISDIR(inode->mode) && dir->u.dir.depth >= BG_TREE_MAX_DEPTH)
		return bg_error(BANGER_EINVALID, "directory tree too deep: more than %u levels (refused)",
				BG_TREE_MAX_DEPTH);
	if (t->count >= t->nbuckets) {
		int rc = grow(t);
		if (rc)
			return rc;
	}
	bg_dentry *d = bg_arena_alloc(&t->arena, sizeof(*d));
	char *nm = d ? bg_arena_strndup(&t->arena, name, len) : NULL;
	if (!nm)
		return bg_error_oom();
	d->name = nm;
	d->namelen = (uint32_t)len;
	d->parent = dir;
	d->inode = inode;
	d->layer = layer;
	d->hash = hash_of(dir, name, len);
	size_t b = d->hash & (t->nbuckets - 1);
	d->hnext = t->buckets[b];
	t->buckets[b] = d;
	d->prev = dir->u.dir.last;
	if (dir->u.dir.last)
		dir->u.dir.last->next = d;
	else
		dir->u.dir.first = d;
	dir->u.dir.last = d;
	dir->u.dir.count++;
	if (S_ISDIR(inode->mode)) {
		dir->u.dir.nsubdirs++;
		inode->u.dir.self = d;
		inode->u.dir.depth = dir->u.dir.depth + 1;
	}
	inode->nlink++;
	t->count++;
	if (out)
		*out = d;
	return 0;
}

static void unhash(bg_tree *t, bg_dentry *d)
{
	bg_dentry **pp = &t->buckets[d->hash & (t->nbuckets - 1)];
	while (*pp && *pp != d)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = d->hnext;
	t->count--;
}

/* Take one dentry out of its directory (a directory must be empty). */
static void detach(bg_tree *t, bg_dentry *d)
{
	bg_inode *ino = d->inode;
	bg_inode *dir = d->parent;
	if (d->prev)
		d->prev->next = d->next;
	else
		dir->u.dir.first = d->next;
	if (d->next)
		d->next->prev = d->prev;
	else
		dir->u.dir.last = d->prev;
	dir->u.dir.count--;
	if (S_ISDIR(ino->mode))
		dir->u.dir.nsubdirs--;
	unhash(t, d);
	if (--ino->nlink == 0 && S_ISREG(ino->mode) && ino->u.file && t->release)
		t->release(ino->u.file, t->release_payload);
}

void bg_tree_remove(bg_tree *t, bg_dentry *d)
{
	/* Children first, without recursion: go down to an entry with no
	 * children, detach it, continue with its parent's next child or, when
	 * that parent is empty now, with the parent itself (a directory has
	 * exactly one dentry, u.dir.self), until d itself goes. */
	bg_dentry *cur = d;
	for (;;) {
		while (S_ISDIR(cur->inode->mode) && cur->inode->u.dir.first)
			cur = cur->inode->u.dir.first;
		if (cur == d) {
			detach(t, d);
			return;
		}
		bg_inode *parent = cur->parent;
		detach(t, cur);
		cur = parent->u.dir.first ? parent->u.dir.first : parent->u.dir.self;
	}
}

bg_dentry *bg_tree_next(const bg_inode *top, bg_dentry *d, bool descend)
{
	if (descend && S_ISDIR(d->inode->mode) && d->inode->u.dir.first)
		return d->inode->u.dir.first;
	while (d) {
		if (d->next)
			return d->next;
		if (d->parent == top)
			return NULL;
		d = d->parent->u.dir.self;
	}
	return NULL;
}

bg_dentry *bg_tree_lookup_path(bg_tree *t, const char *path)
{
	bg_inode *cur = t->root;
	bg_dentry *d = NULL;
	const char *p = path;
	while (*p == '/')
		p++;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n) {
			d = bg_tree_lookup(t, cur, p, n);
			if (!d)
				return NULL;
			cur = d->inode;
		}
		p += n;
		while (*p == '/')
			p++;
		if (*p && !S_ISDIR(cur->mode))
			return NULL;
	}
	return d;
}

static bg_inode *parent_of(bg_tree *t, bg_inode *dir)
{
	return dir->u.dir.self ? dir->u.dir.self->parent : t->root;
}

/* Walk path (n bytes) from start as a directory path, following symlinks
 * within the tree.  Creates missing directories with create.  A symlink is
 * followed by a recursive call, but every call first counts a hop in the
 * one counter of this resolution: at most MAX_HOPS + 1 frames, and a loop
 * of links ends as "too many levels". */
static int walk(bg_tree *t, bg_inode *start, const char *path, size_t n, int flags, uint32_t layer,
		int64_t mtime, int *hops, bg_inode **out)
{
	bg_inode *cur = start;
	size_t i = 0;
	while (i < n) {
		while (i < n && path[i] == '/')
			i++;
		if (i >= n)
			break;
		size_t s = i;
		while (i < n && path[i] != '/')
			i++;
		const char *c = path + s;
		size_t len = i - s;
		if (len == 1 && c[0] == '.')
			continue;
		if (len == 2 && c[0] == '.' && c[1] == '.') {
			cur = parent_of(t, cur);
			continue;
		}
		bg_dentry *d = bg_tree_lookup(t, cur, c, len);
		if (!d) {
			if (!(flags & BG_RESOLVE_CREATE))
				return BANGER_ENOTFOUND;
			if (len > 255)
				return bg_error(BANGER_EINVALID, "path component longer than 255 bytes");
			bg_inode *ni = bg_tree_new_inode(t, S_IFDIR | 0755);
			if (!ni)
				return bg_error_oom();
			ni->implicit = true;
			ni->mtime = mtime;
			int rc = bg_tree_add(t, cur, c, len, ni, layer, &d);
			if (rc)
				return rc;
		}
		bg_inode *ino = d->inode;
		if (S_ISDIR(ino->mode)) {
			cur = ino;
		} else if (S_ISLNK(ino->mode)) {
			if (++*hops > MAX_HOPS)
				return bg_error(BANGER_EINVALID, "too many levels of symbolic links");
			const char *tg = ino->u.link.target;
			size_t tl = ino->u.link.len;
			bg_inode *from = (tl && tg[0] == '/') ? t->root : cur;
			int rc = walk(t, from, tg, tl, flags, layer, mtime, hops, &cur);
			if (rc)
				return rc;
		} else {
			return bg_error(BANGER_EINVALID, "'%.*s' is not a directory", (int)len, c);
		}
	}
	*out = cur;
	return 0;
}

int bg_tree_resolve_parent(bg_tree *t, const char *path, int flags, uint32_t layer, int64_t mtime,
			   bg_inode **dir, const char **last)
{
	const char *slash = strrchr(path, '/');
	*last = slash ? slash + 1 : path;
	*dir = NULL;
	int hops = 0;
	return walk(t, t->root, path, slash ? (size_t)(slash - path) : 0, flags, layer, mtime, &hops, dir);
}

/* Bytes of a directory's ext4 entries: 8 + name rounded to 4 each, plus
 * "." and "..", in whole blocks. */
static uint64_t dir_bytes(const bg_inode *dir)
{
	uint64_t dbytes = 24;
	for (const bg_dentry *d = dir->u.dir.first; d; d = d->next)
		dbytes += 8 + ((d->namelen + 3) & ~3u);
	return (dbytes + 4095) & ~(uint64_t)4095;
}

void bg_tree_stats(bg_tree *t, uint64_t *inodes, uint64_t *bytes)
{
	bg_inode *root = t->root;
	*inodes = 1;
	*bytes = dir_bytes(root);
	/* count each non-directory inode once (hardlinks): mark it with a
	 * temporary ino of 1, cleared by a second walk */
	for (bg_dentry *d = root->u.dir.first; d; d = bg_tree_next(root, d, true)) {
		bg_inode *i = d->inode;
		if (S_ISDIR(i->mode)) {
			(*inodes)++;
			*bytes += dir_bytes(i);
		} else if (i->ino != 1) {
			i->ino = 1;
			(*inodes)++;
			if (S_ISREG(i->mode) && i->u.file)
				*bytes += (i->u.file->size + 4095) & ~(uint64_t)4095;
			else if (S_ISLNK(i->mode) && i->u.link.len >= 60)
				*bytes += 4096;
		}
	}
	for (bg_dentry *d = root->u.dir.first; d; d = bg_tree_next(root, d, true))
		if (!S_ISDIR(d->inode->mode))
			d->inode->ino = 0;
}
