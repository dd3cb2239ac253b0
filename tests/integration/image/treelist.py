#!/usr/bin/env python3
"""Print a canonical listing of a directory tree, one line per entry:
path, type, mode, uid:gid, size, link target / device numbers, xattrs,
content sha256 and a hardlink group id.  Two trees are equal when their
listings are.  Used to compare banger's ext4 (mounted or dumped) with a
reference unpack.  --ignore PATH drops a path and everything under it."""
import hashlib, os, stat, sys

def main():
    args = sys.argv[1:]
    ignore = set()
    while args and args[0] == '--ignore':
        ignore.add(args[1].strip('/'))
        args = args[2:]
    root = args[0]
    inodes = {}
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if any(rel == i or rel.startswith(i + '/') for i in ignore):
                if name in dirnames:
                    dirnames.remove(name)
                continue
            st = os.lstat(full)
            kind = stat.S_IFMT(st.st_mode)
            extra = ''
            if stat.S_ISLNK(st.st_mode):
                extra = 'target=' + os.readlink(full)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                extra = 'dev=%d:%d' % (os.major(st.st_rdev), os.minor(st.st_rdev))
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(full, 'rb') as f:
                    for chunk in iter(lambda: f.read(1 << 20), b''):
                        h.update(chunk)
                extra = 'sha256=' + h.hexdigest()[:16]
            try:
                xs = sorted(os.listxattr(full, follow_symlinks=False))
                xa = ','.join('%s=%s' % (x, os.getxattr(full, x, follow_symlinks=False).hex()) for x in xs)
            except OSError:
                xa = ''
            link = ''
            if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                inodes.setdefault(key, rel)
                link = 'link=' + inodes[key] + ' nlink=%d' % st.st_nlink
            size = st.st_size if stat.S_ISREG(st.st_mode) else '-'
            out.append('%s %o %04o %d:%d %s %s %s %s' % (rel, kind >> 12, stat.S_IMODE(st.st_mode),
                       st.st_uid, st.st_gid, size, extra, xa, link))
    sys.stdout.write('\n'.join(out) + '\n')

main()
