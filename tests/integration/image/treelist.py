#!/usr/bin/env python3
"""Print a canonical listing of a directory tree, one line per entry:

    path kind mode uid:gid size detail xattrs link

kind is S_IFMT >> 12 in octal (10 file, 4 dir, 12 symlink, 2 char, 6 block,
1 fifo); detail is sha256 (first 16 digits) and mtime of files, the target
of symlinks, major:minor of devices; link names the group of hardlinks by
its smallest path, with the link count.  Two trees are equal when their
listings are.  --ignore PATH drops PATH and everything under it."""
import hashlib, os, stat, sys


def listing(root, ignore=()):
    rows, groups = [], {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if any(rel == i or rel.startswith(i + '/') for i in ignore):
                if name in dirnames:
                    dirnames.remove(name)
                continue
            st = os.lstat(full)
            detail = ''
            if stat.S_ISLNK(st.st_mode):
                detail = 'target=' + os.readlink(full)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                detail = 'dev=%d:%d' % (os.major(st.st_rdev), os.minor(st.st_rdev))
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(full, 'rb') as f:
                    for chunk in iter(lambda: f.read(1 << 20), b''):
                        h.update(chunk)
                detail = 'sha256=%s mtime=%d' % (h.hexdigest()[:16], st.st_mtime_ns // 1000000000)
            try:
                names = sorted(os.listxattr(full, follow_symlinks=False))
                xa = ','.join('%s=%s' % (x, os.getxattr(full, x, follow_symlinks=False).hex())
                              for x in names)
            except OSError:
                xa = ''
            key = None
            if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                groups.setdefault(key, []).append(rel)
            size = st.st_size if stat.S_ISREG(st.st_mode) else '-'
            rows.append((rel, '%o %04o %d:%d %s %s %s' % (
                stat.S_IFMT(st.st_mode) >> 12, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                size, detail, xa), key, st.st_nlink))
    out = []
    for rel, text, key, nlink in sorted(rows):
        link = 'link=%s nlink=%d' % (min(groups[key]), nlink) if key else ''
        out.append('%s %s %s' % (rel, text, link))
    return out


def row(rel, kind, mode, uid=0, gid=0, size='-', detail='', xattrs='', link=''):
    """One line as listing() prints it (for expected trees)."""
    return '%s %o %04o %d:%d %s %s %s %s' % (rel, kind, mode, uid, gid, size, detail, xattrs, link)


if __name__ == '__main__':
    args = sys.argv[1:]
    ignore = []
    while args and args[0] == '--ignore':
        ignore.append(args[1].strip('/'))
        args = args[2:]
    sys.stdout.write('\n'.join(listing(args[0], ignore)) + '\n')
