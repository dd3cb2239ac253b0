#!/usr/bin/env python3
"""Build an OCI layout of images whose trouble is their shape, not their
bytes (see shapes.sh):

    shapes.py OUTDIR

tags:
  files   20,000 files of 100 bytes in 20 directories
  dirs    30,000 empty directories (in 30 parents)
  farm    a Nix-style symlink farm: 20,000 symlinks whose targets are too
          long to live in the inode (each needs a block of its own)
  deep    a hostile layer: a directory 2,000 levels deep, then symlinks
          chained onto its end, each extended by another 2,000 levels;
          followed 40 hops deep that is about 80,000 levels from a few
          hundred kilobytes of tar, and a whiteout that walks them

OUTDIR/expect.tsv: tag, outcome (ok or fail), the number of entries the
layer holds, and a few paths that must exist in the built image (or the
error it must fail with).
"""
import gzip, hashlib, io, json, os, sys, tarfile

MT = 1600000000


def entry(name, kind, size=0, link=''):
    t = tarfile.TarInfo(name)
    t.type, t.size, t.linkname, t.mtime = kind, size, link, MT
    t.mode = 0o777 if kind == tarfile.SYMTYPE else 0o755 if kind == tarfile.DIRTYPE else 0o644
    t.uname = t.gname = ''
    return t


def layer(entries):
    """entries: (name, kind, data-or-link); returns the gzip'd tar and its
    diff_id."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode='w', format=tarfile.PAX_FORMAT) as t:
        for name, kind, x in entries:
            if kind == tarfile.REGTYPE:
                t.addfile(entry(name, kind, len(x)), io.BytesIO(x))
            else:
                t.addfile(entry(name, kind, link=x or ''))
    data = raw.getvalue()
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode='wb', mtime=0) as g:
        g.write(data)
    return out.getvalue(), 'sha256:' + hashlib.sha256(data).hexdigest()


class Layout:
    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, 'blobs', 'sha256'), exist_ok=True)
        with open(os.path.join(path, 'oci-layout'), 'w') as fh:
            json.dump({'imageLayoutVersion': '1.0.0'}, fh)
        self.manifests = []

    def blob(self, data):
        h = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.path, 'blobs', 'sha256', h), 'wb') as fh:
            fh.write(data)
        return {'digest': 'sha256:' + h, 'size': len(data)}

    def image(self, tag, entries):
        blob, diff = layer(entries)
        cfg = {'architecture': 'amd64', 'os': 'linux', 'config': {'Cmd': ['/bin/sh']},
               'rootfs': {'type': 'layers', 'diff_ids': [diff]}}
        man = {'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
               'config': dict(self.blob(json.dumps(cfg).encode()),
                              mediaType='application/vnd.oci.image.config.v1+json'),
               'layers': [dict(self.blob(blob), mediaType='application/vnd.oci.image.layer.v1.tar+gzip')]}
        desc = dict(self.blob(json.dumps(man).encode()),
                    mediaType='application/vnd.oci.image.manifest.v1+json',
                    annotations={'org.opencontainers.image.ref.name': tag})
        self.manifests.append(desc)

    def finish(self):
        with open(os.path.join(self.path, 'index.json'), 'w') as fh:
            json.dump({'schemaVersion': 2, 'manifests': self.manifests}, fh)


def deep_chain(levels=2000, links=40):
    """A directory levels deep, then symlink k pointing at the end of
    what link k-1 reached, extended by another levels-1 directories."""
    down = '/'.join(['a'] * levels)
    ents = [(down, tarfile.DIRTYPE, None), ('l1', tarfile.SYMTYPE, down)]
    more = '/'.join(['a'] * (levels - 1))
    for k in range(1, links + 1):
        ents.append(('l%d/%s' % (k, more), tarfile.DIRTYPE, None))
        if k < links:
            ents.append(('l%d' % (k + 1), tarfile.SYMTYPE, 'l%d/%s' % (k, more)))
    # a whiteout of the chain's top in the same layer: applying it walks
    # the whole chain (what this layer added stays)
    ents.append(('.wh.a', tarfile.REGTYPE, b''))
    return ents


def main():
    out = sys.argv[1]
    lay = Layout(os.path.join(out, 'layout'))
    F, D, L = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE
    expect = []

    files = [('f%02d/' % (i % 20) + 'file%05d' % i, F, (b'%05d' % i) * 20) for i in range(20000)]
    lay.image('files', files)
    expect.append('files\tok\t20000\t/f00/file00000 /f19/file19999 /f07/file10007')

    dirs = [('d%02d/dir%05d/' % (i % 30, i), D, None) for i in range(30000)]
    lay.image('dirs', dirs)
    expect.append('dirs\tok\t30000\t/d00/dir00000 /d29/dir29999 /d13/dir12343')

    store = '/nix/store/%s-pkg-%05d/bin/tool%05d'
    farm = [('profile/bin/tool%05d' % i, L, store % (hashlib.sha1(b'%d' % i).hexdigest()[:32], i, i))
            for i in range(20000)]
    lay.image('farm', farm)
    expect.append('farm\tok\t20000\t/profile/bin/tool00000 /profile/bin/tool19999')

    lay.image('deep', deep_chain())
    expect.append('deep\tfail\t0\ttoo deep: more than 2048 levels')

    lay.finish()
    with open(os.path.join(out, 'expect.tsv'), 'w') as fh:
        fh.write('\n'.join(expect) + '\n')


main()
