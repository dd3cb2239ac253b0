/* The patch step: what makes an image bootable under banger, applied to
 * the in-memory tree before the ext4 is written (the registry's image is
 * untouched):
 *   - the first-boot init at /usr/local/libexec/banger-first-boot (and its
 *     oneshot unit when available);
 *   - /etc/fstab mounting the work disk: /dev/vdb /root ext4 defaults,nofail 0 2;
 *   - /etc/resolv.conf from the host's, loopback nameservers dropped;
 *   - the vsock agent and its unit, when they are available;
 *   - the image's own SSH host keys removed (each VM gets its own).
 * Host-side edits never follow the image's symlinks: a symlinked /etc,
 * /etc/ssh or /usr/local is refused, and a symlinked file (say
 * /etc/resolv.conf) is replaced, never written through. */
#include "image.h"
#include "../env/env.h"
/* Names and paths the guest programs expect (one header per program). */
#include "../../guest/include/banger-guest/agent.h"
#include "../../guest/include/banger-guest/first_boot.h"
#include "../../guest/include/banger-guest/session.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Tree paths are relative to the image's root: the guest paths without
 * their leading '/'. */
#define FIRST_BOOT_DIR (BG_FB_GUEST_DIR + 1)
#define AGENT_DIR (BG_AGENT_GUEST_DIR + 1)
#define UNIT_DIR "etc/systemd/system"
#define WANTS_DIR "etc/systemd/system/multi-user.target.wants"
/* Guest sessions look for "<dir>/banger-session-p<protocol>" first
 * (libbanger/session), so an image that carries it needs no upload. */
#define SESSION_DIR (BG_SESSION_GUEST_HELPER_DIR + 1)
#define FSTAB_LINE BG_FB_WORK_DISK " " BG_FB_WORK_MOUNT " ext4 defaults,nofail 0 2"
#define HOST_FILE_MAX (16u << 20)

/* Guest files by the one rule (bg_guest_files, layout.h), copied into
 * in->buf[first..]: all of names from one place, or none of them.  What
 * is missing is left out (or refused by bg_image_patch), not an error of
 * its own; only running out of memory is. */
static int find_guest_files(bg_patch_inputs *in, const char **out[], const char *const *names, size_t n,
			    size_t first)
{
	char *paths[2] = { NULL, NULL };
	bg_error_saved saved;
	bg_error_save(&saved);
	int rc = bg_guest_files(paths, names, n);
	if (rc == BANGER_ENOMEM) {
		free(saved.message); /* strdup'ed by bg_error_save */
		return rc;
	}
	bg_error_restore(&saved);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		snprintf(in->buf[first + i], sizeof(in->buf[first + i]), "%s", paths[i]);
		*out[i] = in->buf[first + i];
		bg_free(paths[i]);
	}
	return 0;
}

int bg_patch_inputs_default(bg_patch_inputs *in)
{
	memset(in, 0, sizeof(*in));
	in->resolv_conf = "/etc/resolv.conf";
	const char *const fb[] = { BG_FB_NAME }, *const fb_unit[] = { BG_FB_UNIT_NAME },
			  *const agent[] = { BG_AGENT_NAME, BG_AGENT_UNIT_NAME },
			  *const session[] = { BG_SESSION_HELPER_NAME };
	int rc;
	if ((rc = find_guest_files(in, (const char **[]){ &in->first_boot }, fb, 1, 0)) ||
	    (rc = find_guest_files(in, (const char **[]){ &in->first_boot_unit }, fb_unit, 1, 1)) ||
	    (rc = find_guest_files(in, (const char **[]){ &in->agent, &in->agent_unit }, agent, 2, 2)) ||
	    (rc = find_guest_files(in, (const char **[]){ &in->session_helper }, session, 1, 4)))
		return rc;
	return 0;
}

/* ---- text edits ---- */

static bool loopback_ns(const char *a, size_t n)
{
	char buf[64];
	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, a, n);
	buf[n] = '\0';
	char *pct = strchr(buf, '%');
	if (pct)
		*pct = '\0';
	struct in_addr v4;
	struct in6_addr v6;
	if (inet_pton(AF_INET, buf, &v4) == 1) {
		uint32_t h = ntohl(v4.s_addr);
		return (h >> 24) == 127 || h == 0;
	}
	if (inet_pton(AF_INET6, buf, &v6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&v6) || IN6_IS_ADDR_UNSPECIFIED(&v6) ||
		       (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
	return strcmp(buf, "localhost") == 0;
}

char *bg_resolv_conf_filter(const char *host)
{
	bg_buf b = BG_BUF_INIT;
	bg_buf_puts(&b, "# Written by banger from the host's resolv.conf (loopback servers dropped).\n");
	const char *p = host ? host : "";
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		const char *s = p, *e = p + len;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		bool keep = true;
		if ((size_t)(e - s) > 10 && strncmp(s, "nameserver", 10) == 0 && (s[10] == ' ' || s[10] == '\t')) {
			const char *a = s + 10;
			while (a < e && (*a == ' ' || *a == '\t'))
				a++;
			const char *ae = a;
			while (ae < e && !isspace((unsigned char)*ae))
				ae++;
			keep = !loopback_ns(a, (size_t)(ae - a));
		}
		if (keep && len) {
			bg_buf_put(&b, p, len);
			bg_buf_puts(&b, "\n");
		}
		p = eol ? eol + 1 : p + len;
	}
	if (b.oom) {
		bg_buf_free(&b);
		return NULL;
	}
	return bg_buf_detach(&b);
}

char *bg_fstab_patch(const char *old)
{
	bg_buf b = BG_BUF_INIT;
	const char *p = old ? old : "";
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		/* the second field of the line, if any */
		const char *s = p, *e = p + len;
		while (s < e && isspace((unsigned char)*s))
			s++;
		bool drop = false;
		if (s < e && *s != '#') {
			while (s < e && !isspace((unsigned char)*s))
				s++;
			while (s < e && isspace((unsigned char)*s))
				s++;
			const char *f = s;
			while (s < e && !isspace((unsigned char)*s))
				s++;
			size_t fl = (size_t)(s - f);
			drop = (fl == 5 && strncmp(f, "/root", 5) == 0) || (fl == 6 && strncmp(f, "/root/", 6) == 0);
		}
		if (!drop) {
			bg_buf_put(&b, p, len);
			bg_buf_puts(&b, "\n");
		}
		p = eol ? eol + 1 : p + len;
	}
	bg_buf_puts(&b, "# banger: the VM's work disk\n" FSTAB_LINE "\n");
	if (b.oom) {
		bg_buf_free(&b);
		return NULL;
	}
	return bg_buf_detach(&b);
}

/* ---- tree edits that never follow the image's symlinks ---- */

/* The directory at path (relative, '/'-separated), each component a real
 * directory; missing ones are created (0755 root) when create is set. */
static int strict_dir(bg_tree *t, const char *path, bool create, int64_t now, bg_inode **out)
{
	bg_inode *cur = bg_tree_root(t);
	const char *p = path;
	*out = NULL;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		bg_dentry *d = bg_tree_lookup(t, cur, p, n);
		if (!d) {
			if (!create)
				return BANGER_ENOTFOUND;
			bg_inode *ni = bg_tree_new_inode(t, S_IFDIR | 0755);
			if (!ni)
				return bg_error_oom();
			ni->mtime = now;
			int rc = bg_tree_add(t, cur, p, n, ni, UINT32_MAX, &d);
			if (rc)
				return rc;
		}
		if (S_ISLNK(d->inode->mode))
			return bg_error(BANGER_EINVALID, "the image's /%.*s is a symbolic link; banger does not "
					"follow the image's symlinks when it patches it", (int)(p - path + n), path);
		if (!S_ISDIR(d->inode->mode))
			return bg_error(BANGER_EINVALID, "the image's /%.*s is not a directory",
					(int)(p - path + n), path);
		cur = d->inode;
		p += n;
		if (*p == '/')
			p++;
	}
	*out = cur;
	return 0;
}

/* Put a regular file at dir/name (replacing a file or symlink there,
 * never writing through it).  keep_meta: keep the owner and mode of a
 * regular file being replaced. */
static int put_file(bg_tree *t, const char *dirpath, const char *name, const void *data, size_t len,
		    uint32_t mode, bool keep_meta, int64_t now)
{
	bg_inode *dir;
	int rc = strict_dir(t, dirpath, true, now, &dir);
	if (rc)
		return rc;
	bg_dentry *old = bg_tree_lookup(t, dir, name, strlen(name));
	if (old && S_ISDIR(old->inode->mode))
		return bg_error(BANGER_EINVALID, "the image's /%s/%s is a directory", dirpath, name);
	bg_arena *a = bg_tree_arena(t);
	bg_inode *ino = bg_tree_new_inode(t, S_IFREG | mode);
	bg_fdata *fd = ino ? bg_arena_alloc(a, sizeof(*fd)) : NULL;
	if (!fd || (len && !(fd->mem = bg_arena_alloc(a, len))))
		return bg_error_oom();
	if (len)
		memcpy(fd->mem, data, len);
	fd->size = len;
	ino->u.file = fd;
	ino->mtime = now;
	if (keep_meta && old && S_ISREG(old->inode->mode)) {
		ino->mode = S_IFREG | (old->inode->mode & 07777);
		ino->uid = old->inode->uid;
		ino->gid = old->inode->gid;
	}
	if (old)
		bg_tree_remove(t, old);
	return bg_tree_add(t, dir, name, strlen(name), ino, UINT32_MAX, NULL);
}

static int install_host_file(bg_tree *t, const char *host_path, const char *dirpath, const char *name,
			     uint32_t mode, int64_t now)
{
	char *data = NULL;
	size_t len = 0;
	int rc = bg_read_file(&data, &len, host_path, HOST_FILE_MAX);
	if (rc) {
		bg_error_prefix("patch: read %s", host_path);
		return rc;
	}
	rc = put_file(t, dirpath, name, data, len, mode, false, now);
	bg_free(data);
	return rc;
}

static int patch_fstab(bg_tree *t, bg_sink *sink, int64_t now)
{
	bg_inode *etc;
	int rc = strict_dir(t, "etc", true, now, &etc);
	if (rc)
		return rc;
	bg_dentry *d = bg_tree_lookup(t, etc, "fstab", 5);
	char *old = NULL;
	size_t len = 0;
	if (d && S_ISREG(d->inode->mode) && d->inode->u.file) {
		if ((rc = sink->read(sink, d->inode->u.file, 1u << 20, &old, &len))) {
			bg_error_prefix("patch: read the image's /etc/fstab");
			return rc;
		}
		if (strlen(old) != len) { /* NUL bytes: not a text file; start over */
			bg_free(old);
			old = NULL;
		}
	}
	char *text = bg_fstab_patch(old);
	bg_free(old);
	if (!text)
		return bg_error_oom();
	rc = put_file(t, "etc", "fstab", text, strlen(text), 0644, true, now);
	bg_free(text);
	return rc;
}

static int patch_resolv(bg_tree *t, const char *host_path, int64_t now)
{
	char *host = NULL;
	size_t len = 0;
	if (host_path && bg_path_exists(host_path)) {
		int rc = bg_read_file(&host, &len, host_path, 1u << 20);
		if (rc) {
			bg_error_prefix("patch: read %s", host_path);
			return rc;
		}
	}
	char *text = bg_resolv_conf_filter(host);
	bg_free(host);
	if (!text)
		return bg_error_oom();
	int rc = put_file(t, "etc", "resolv.conf", text, strlen(text), 0644, false, now);
	bg_free(text);
	return rc;
}

/* Enable a unit the way `systemctl enable` would for WantedBy=
 * multi-user.target: a symlink in the .wants directory, so it starts on
 * the very first boot even when first-boot runs as a oneshot (images with
 * an initrd) and could only enable it too late. */
static int enable_unit(bg_tree *t, const char *unit, int64_t now)
{
	bg_inode *wants;
	int rc = strict_dir(t, WANTS_DIR, true, now, &wants);
	if (rc)
		return rc;
	size_t n = strlen(unit);
	bg_dentry *d = bg_tree_lookup(t, wants, unit, n);
	if (d)
		bg_tree_remove(t, d);
	static const char prefix[] = "/" UNIT_DIR "/";
	char *target = bg_arena_alloc(bg_tree_arena(t), sizeof(prefix) + n);
	bg_inode *ln = bg_tree_new_inode(t, S_IFLNK | 0777);
	if (!target || !ln)
		return bg_error_oom();
	memcpy(target, prefix, sizeof(prefix) - 1);
	memcpy(target + sizeof(prefix) - 1, unit, n + 1);
	ln->u.link.target = target;
	ln->u.link.len = (uint32_t)strlen(target);
	ln->mtime = now;
	return bg_tree_add(t, wants, unit, n, ln, UINT32_MAX, NULL);
}

static int remove_host_keys(bg_tree *t, int64_t now)
{
	bg_inode *ssh;
	int rc = strict_dir(t, "etc/ssh", false, now, &ssh);
	if (rc == BANGER_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	bg_dentry *d = ssh->u.dir.first;
	while (d) {
		bg_dentry *next = d->next;
		if (d->namelen > 9 && memcmp(d->name, "ssh_host_", 9) == 0)
			bg_tree_remove(t, d);
		d = next;
	}
	return 0;
}

int bg_image_patch(bg_tree *t, bg_sink *sink, const bg_patch_inputs *in)
{
	int64_t now = bg_wall_seconds();
	int rc;
	if (!in->first_boot)
		return bg_error(BANGER_ENOTFOUND, "patch: the first-boot init (banger-first-boot) was not "
				"found next to banger; reinstall banger");
	if ((rc = install_host_file(t, in->first_boot, FIRST_BOOT_DIR, BG_FB_NAME, 0755, now)))
		return rc;
	if (in->first_boot_unit &&
	    ((rc = install_host_file(t, in->first_boot_unit, UNIT_DIR, BG_FB_UNIT_NAME, 0644, now)) ||
	     (rc = enable_unit(t, BG_FB_UNIT_NAME, now))))
		return rc;
	if (in->agent && in->agent_unit) {
		if ((rc = install_host_file(t, in->agent, AGENT_DIR, BG_AGENT_NAME, 0755, now)) ||
		    (rc = install_host_file(t, in->agent_unit, UNIT_DIR, BG_AGENT_UNIT_NAME, 0644, now)) ||
		    (rc = enable_unit(t, BG_AGENT_UNIT_NAME, now)))
			return rc;
	} else {
		bg_debug(in->env, "patch: no vsock agent available; images get none");
	}
	if (in->session_helper) {
		bg_inode *sd;
		if ((rc = strict_dir(t, SESSION_DIR, true, now, &sd)) ||
		    (rc = install_host_file(t, in->session_helper, SESSION_DIR, BG_SESSION_PROTO_NAME, 0755, now)))
			return rc;
	}
	if ((rc = patch_fstab(t, sink, now)) || (rc = patch_resolv(t, in->resolv_conf, now)) ||
	    (rc = remove_host_keys(t, now)))
		return rc;
	/* the work disk's mount point */
	bg_inode *root = bg_tree_root(t);
	bg_dentry *r = bg_tree_lookup(t, root, "root", 4);
	if (!r) {
		bg_inode *ni = bg_tree_new_inode(t, S_IFDIR | 0700);
		if (!ni)
			return bg_error_oom();
		ni->mtime = now;
		if ((rc = bg_tree_add(t, root, "root", 4, ni, UINT32_MAX, NULL)))
			return rc;
	} else if (!S_ISDIR(r->inode->mode)) {
		return bg_error(BANGER_EINVALID, "the image's /root is not a directory (the work disk is "
				"mounted there)");
	}
	return 0;
}
