#!/usr/bin/env python3
"""Build the OCI image layouts banger's image tests pull (through a real
registry) and import, with the trees they must produce.

    fixtures.py OUTDIR PROBE

OUTDIR/layout      one OCI layout, one tag per image (see TAGS below)
OUTDIR/expected/   TAG.txt: the tree banger must build (treelist format,
                   unpatched), for the images that must succeed
OUTDIR/cases.tsv   tag, expected outcome (ok/fail), error text or paths
                   that must exist inside the image, one case a line

PROBE is a directory outside everything the tests pull into: hostile
layers aim at it, and the tests check it is never touched.

Layers are written with Python's tarfile (pax), gzip-compressed, by hand:
every name, link target and whiteout is exactly what the test wants,
hostile ones included.
"""
import gzip, hashlib, io, json, os, platform, shutil, subprocess, sys, tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from treelist import row  # noqa: E402

MT = 1600000000
GOARCH = {'x86_64': 'amd64', 'aarch64': 'arm64'}.get(platform.machine(), platform.machine())
CAP = b'\x01\x00\x00\x02\x00\x20\x00\x00' + b'\x00' * 12   # cap_net_raw+ep, v2
LONG = 'n' * 255
DEEP = 'data/deep/' + '/'.join(['d%02d-%s' % (i, 'x' * 20) for i in range(8)]) + '/file'

# ---------------------------------------------------------------- tar

def ti(name, kind, mode, uid=0, gid=0, mtime=MT, size=0, link='', major=0, minor=0, pax=None):
    t = tarfile.TarInfo(name)
    t.type, t.mode, t.uid, t.gid, t.mtime, t.size = kind, mode, uid, gid, mtime, size
    t.linkname = link
    t.devmajor, t.devminor = major, minor
    t.uname = t.gname = ''
    if pax:
        t.pax_headers = dict(pax)
    return t


def f(name, data=b'', mode=0o644, uid=0, gid=0, mtime=MT, xattrs=None, pax=None):
    if isinstance(data, str):
        data = data.encode()
    p = dict(pax or {})
    for k, v in (xattrs or {}).items():
        p['SCHILY.xattr.' + k] = v.decode('utf-8', 'surrogateescape')
    return (ti(name, tarfile.REGTYPE, mode, uid, gid, mtime, len(data), pax=p), data)


def d(name, mode=0o755, uid=0, gid=0):
    return (ti(name, tarfile.DIRTYPE, mode, uid, gid), None)


def sym(name, target):
    return (ti(name, tarfile.SYMTYPE, 0o777, link=target), None)


def hard(name, target):
    return (ti(name, tarfile.LNKTYPE, 0o644, link=target), None)


def dev(name, kind, major, minor, mode, gid=0):
    return (ti(name, kind, mode, gid=gid, major=major, minor=minor), None)


def wh(name):
    return f(name, b'', 0o600)


class Zeros(io.RawIOBase):
    def __init__(self, n):
        self.left = n

    def readinto(self, b):
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def tar_bytes(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as t:
        for info, data in entries:
            if isinstance(data, Zeros):
                t.addfile(info, data)
            else:
                t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def gz(raw, level=6):
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode='wb', mtime=0, compresslevel=level) as g:
        g.write(raw)
    return out.getvalue()

# ---------------------------------------------------------------- layout

class Layout:
    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, 'blobs', 'sha256'), exist_ok=True)
        with open(os.path.join(path, 'oci-layout'), 'w') as fh:
            json.dump({'imageLayoutVersion': '1.0.0'}, fh)
        self.index = []

    def blob(self, data):
        h = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.path, 'blobs', 'sha256', h), 'wb') as fh:
            fh.write(data)
        return 'sha256:' + h, len(data)

    def image(self, layers, arch=GOARCH, variant=None, os_='linux', level=6, comp=None):
        """layers: lists of entries, or bytes (a ready tar); comp: per layer
        'gzip' (default), 'gzip2' (two gzip members, the second tiny: its
        trailer tells nothing of the first), 'zstd' or 'none'."""
        descs, diffs = [], []
        for i, entries in enumerate(layers):
            raw = entries if isinstance(entries, bytes) else tar_bytes(entries)
            diffs.append('sha256:' + hashlib.sha256(raw).hexdigest())
            kind = comp[i] if comp else 'gzip'
            if kind == 'gzip':
                blob, mt = gz(raw, level), 'tar+gzip'
            elif kind == 'gzip2':
                cut = len(raw) - 1024
                blob, mt = gz(raw[:cut], 1) + gz(raw[cut:]), 'tar+gzip'
            elif kind == 'zstd':
                blob = subprocess.run(['zstd', '-q', '-c', '-3'], input=raw, stdout=subprocess.PIPE,
                                      check=True).stdout
                mt = 'tar+zstd'
            else:
                blob, mt = raw, 'tar'
            dg, size = self.blob(blob)
            descs.append({'mediaType': 'application/vnd.oci.image.layer.v1.' + mt,
                          'digest': dg, 'size': size})
        cfg = {'architecture': arch, 'os': os_,
               'config': {'Cmd': ['/bin/sh'], 'Env': ['PATH=/usr/bin:/bin'], 'WorkingDir': '/'},
               'rootfs': {'type': 'layers', 'diff_ids': diffs}}
        if variant:
            cfg['variant'] = variant
        cd, cs = self.blob(json.dumps(cfg).encode())
        man = {'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
               'config': {'mediaType': 'application/vnd.oci.image.config.v1+json',
                          'digest': cd, 'size': cs},
               'layers': descs}
        md, ms = self.blob(json.dumps(man).encode())
        return {'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'digest': md, 'size': ms}

    def tag(self, name, desc):
        e = dict(desc)
        e['annotations'] = {'org.opencontainers.image.ref.name': name}
        self.index.append(e)

    def finish(self):
        with open(os.path.join(self.path, 'index.json'), 'w') as fh:
            json.dump({'schemaVersion': 2, 'manifests': self.index}, fh)

# ---------------------------------------------------------------- features

def features():
    l1 = [
        d('etc/'), f('etc/hostname', 'base\n'), f('etc/motd', 'hello\n'), f('etc/gone.conf', 'x'),
        sym('etc/alt', '/usr/bin/tool'), sym('etc/rel', '../usr/bin/tool'),
        d('usr/'), d('usr/bin/'), d('usr/lib/'), d('usr/sbin/'),
        f('usr/bin/tool', 'tool v1', 0o755), f('usr/bin/passwd', 'passwd', 0o4755),
        f('usr/bin/wall', 'wall', 0o2755, gid=5),
        f('usr/bin/ping', 'ping', 0o755, xattrs={'security.capability': CAP}),
        f('usr/lib/libx.so.1', 'lib'), sym('usr/lib/libx.so', 'libx.so.1'),
        sym('bin', 'usr/bin'), sym('lib', 'usr/lib'), sym('sbin', 'usr/sbin'),
        d('dev/'), dev('dev/null', tarfile.CHRTYPE, 1, 3, 0o666),
        dev('dev/sda', tarfile.BLKTYPE, 8, 0, 0o660, gid=6),
        dev('dev/big', tarfile.CHRTYPE, 259, 70000, 0o600),
        d('tmp/', 0o1777), d('home/'), d('home/alice/', 0o700, 1000, 1000),
        f('home/alice/.profile', 'profile', uid=1000, gid=1000),
        d('data/'), f('data/hl-src', 'shared content'), f('data/file-then-dir', 'file'),
        d('data/dir-then-link/'), f('data/dir-then-link/child', 'child'),
        f('data/noted', 'noted', xattrs={'user.comment': b'hi'}),
        f('data/empty', '', 0o600), f('data/bigid', 'big ids', uid=100000, gid=200000),
        f('data/nsec', 'ns', pax={'mtime': '1700000000.123456789'}),
        f('data/caf\u00e9.txt', 'utf8'), f('data/' + LONG, 'long name'), f(DEEP, 'deep'),
        d('opq/'), f('opq/old1', 'o1'), d('opq/sub/'), f('opq/sub/old2', 'o2'),
        d('wh/'), f('wh/a', 'a1'), f('wh/b', 'b'), d('wh/dir/'), f('wh/dir/x', 'x'),
        d('run/'), (ti('run/fifo', tarfile.FIFOTYPE, 0o600), None),
    ]
    l2 = [
        hard('data/hl-link', 'data/hl-src'), hard('data/hl-link2', '/data/hl-src'),
        d('data/file-then-dir/', 0o750), f('data/file-then-dir/inner', 'inner'),
        sym('data/dir-then-link', '/etc'),
        f('opq/new1', 'new1'), d('opq/sub/', 0o700), f('opq/sub/new2', 'new2'),
        wh('opq/.wh..wh..opq'),                 # the marker after its new children
        wh('wh/.wh.a'), wh('wh/.wh.dir'),
        f('usr/bin/tool', 'tool v2', 0o755),
        f('bin/newtool', 'via merged usr', 0o755),   # through bin -> usr/bin
        wh('etc/.wh.gone.conf'), wh('.wh..wh.plnk'),
    ]
    l3 = [
        f('etc/hostname', 'final\n'), f('wh/a', 'a again'), f('data/hl-src', 'replaced'),
        d('etc/ssh/'), f('etc/ssh/ssh_host_ed25519_key', 'key', 0o600), f('etc/ssh/sshd_config', 'cfg'),
    ]
    return [l1, l2, l3]


def sha(s):
    return hashlib.sha256(s.encode() if isinstance(s, str) else s).hexdigest()[:16]


def features_expected():
    F, D, L, C, B, P = 0o10, 0o4, 0o12, 0o2, 0o6, 0o1

    def fr(path, data, mode=0o644, uid=0, gid=0, mtime=MT, xa='', link=''):
        return row(path, F, mode, uid, gid, len(data.encode()),
                   'sha256=%s mtime=%d' % (sha(data), mtime), xa, link)
    deep_dirs = []
    parts = DEEP.split('/')
    for i in range(2, len(parts)):
        deep_dirs.append(row('/'.join(parts[:i]), D, 0o755))
    rows = [
        row('bin', L, 0o777, detail='target=usr/bin'),
        row('data', D, 0o755),
        fr('data/' + LONG, 'long name'),
        fr('data/bigid', 'big ids', uid=100000, gid=200000),
        fr('data/caf\u00e9.txt', 'utf8'),
        *deep_dirs, fr(DEEP, 'deep'),
        row('data/dir-then-link', L, 0o777, detail='target=/etc'),
        fr('data/empty', '', 0o600),
        row('data/file-then-dir', D, 0o750),
        fr('data/file-then-dir/inner', 'inner'),
        fr('data/hl-link', 'shared content', link='link=data/hl-link nlink=2'),
        fr('data/hl-link2', 'shared content', link='link=data/hl-link nlink=2'),
        fr('data/hl-src', 'replaced'),
        fr('data/noted', 'noted', xa='user.comment=' + b'hi'.hex()),
        fr('data/nsec', 'ns', mtime=1700000000),
        row('dev', D, 0o755),
        row('dev/big', C, 0o600, detail='dev=259:70000'),
        row('dev/null', C, 0o666, detail='dev=1:3'),
        row('dev/sda', B, 0o660, 0, 6, detail='dev=8:0'),
        row('etc', D, 0o755),
        row('etc/alt', L, 0o777, detail='target=/usr/bin/tool'),
        fr('etc/hostname', 'final\n'),
        fr('etc/motd', 'hello\n'),
        row('etc/rel', L, 0o777, detail='target=../usr/bin/tool'),
        row('etc/ssh', D, 0o755),
        fr('etc/ssh/ssh_host_ed25519_key', 'key', 0o600),
        fr('etc/ssh/sshd_config', 'cfg'),
        row('home', D, 0o755),
        row('home/alice', D, 0o700, 1000, 1000),
        fr('home/alice/.profile', 'profile', uid=1000, gid=1000),
        row('lib', L, 0o777, detail='target=usr/lib'),
        row('opq', D, 0o755),
        fr('opq/new1', 'new1'),
        row('opq/sub', D, 0o700),
        fr('opq/sub/new2', 'new2'),
        row('run', D, 0o755),
        row('run/fifo', P, 0o600),
        row('sbin', L, 0o777, detail='target=usr/sbin'),
        row('tmp', D, 0o1777),
        row('usr', D, 0o755),
        row('usr/bin', D, 0o755),
        fr('usr/bin/newtool', 'via merged usr', 0o755),
        fr('usr/bin/passwd', 'passwd', 0o4755),
        fr('usr/bin/ping', 'ping', 0o755, xa='security.capability=' + CAP.hex()),
        fr('usr/bin/tool', 'tool v2', 0o755),
        fr('usr/bin/wall', 'wall', 0o2755, gid=5),
        row('usr/lib', D, 0o755),
        row('usr/lib/libx.so', L, 0o777, detail='target=libx.so.1'),
        fr('usr/lib/libx.so.1', 'lib'),
        row('usr/sbin', D, 0o755),
        row('wh', D, 0o755),
        fr('wh/a', 'a again'),
        fr('wh/b', 'b'),
    ]
    return sorted(rows)

# ---------------------------------------------------------------- main

def main():
    out, probe = sys.argv[1], os.path.abspath(sys.argv[2])
    prel = probe.lstrip('/')
    lay = Layout(os.path.join(out, 'layout'))
    os.makedirs(os.path.join(out, 'expected'), exist_ok=True)
    cases = []

    def case(tag, desc, outcome, detail=''):
        lay.tag(tag, desc)
        cases.append('%s\t%s\t%s' % (tag, outcome, detail))

    feat = lay.image(features())
    case('features', feat, 'ok')
    with open(os.path.join(out, 'expected', 'features.txt'), 'w') as fh:
        fh.write('\n'.join(features_expected()) + '\n')

    # a multi-platform index: this host's image, arm64/v8 (or amd64), and an
    # attestation manifest (unknown/unknown) that must be skipped
    other = 'arm64' if GOARCH != 'arm64' else 'amd64'
    mine = lay.image([[f('arch', GOARCH + '\n')]])
    theirs = lay.image([[f('arch', other + '\n')]], arch=other, variant='v8' if other == 'arm64' else None)
    att = lay.image([[f('attestation.json', '{}')]], arch='unknown', os_='unknown')
    plat = lambda a, v=None, o='linux': dict({'architecture': a, 'os': o}, **({'variant': v} if v else {}))
    idx = {'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.index.v1+json', 'manifests': [
        dict(att, platform=plat('unknown', o='unknown'),
             annotations={'vnd.docker.reference.type': 'attestation-manifest'}),
        dict(theirs, platform=plat(other, 'v8' if other == 'arm64' else None)),
        dict(mine, platform=plat(GOARCH)),
    ]}
    idd, ids = lay.blob(json.dumps(idx).encode())
    case('multi', {'mediaType': 'application/vnd.oci.image.index.v1+json', 'digest': idd, 'size': ids},
         'ok', 'arch=' + GOARCH + ' other=' + other)

    # every layer format: plain tar, zstd (when the zstd tool is there),
    # and two gzip members whose trailer understates the size by 150 MiB
    # (banger's size estimate falls short and it starts over)
    fmts = [[f('fmt/plain', 'plain tar')], [f('fmt/zstd', 'zstd layer')],
            [(ti('fmt/zeros', tarfile.REGTYPE, 0o644, size=150 << 20), Zeros(150 << 20)),
             f('fmt/after', 'after the zeros')]]
    comps = ['none', 'zstd', 'gzip2']
    if not shutil.which('zstd'):
        fmts, comps = [fmts[0], fmts[2]], ['none', 'gzip2']
    case('formats', lay.image(fmts, comp=comps), 'ok', ' '.join(comps))

    # a layer whose blob the test corrupts in the registry's storage
    case('corrupt', lay.image([[f('unique-corrupt-' + sha(out), 'c' * 4096)]]), 'fail', 'digest')

    # hostile layers: refused, or confined to the image
    def hostile(tag, layers, outcome, detail=''):
        case(tag, lay.image(layers), outcome, detail)
    hostile('h-dotdot', [[f('../../../../../../../../' + prel + '/escaped', 'x')]], 'fail', "'..'")
    hostile('h-dotdot-mid', [[f('a/../../../../../../../../' + prel + '/escaped', 'x')]], 'fail', "'..'")
    hostile('h-absolute', [[f(probe + '/abs-escaped', 'abs')]], 'ok', prel + '/abs-escaped')
    hostile('h-symlink-abs', [[sym('out', probe)], [f('out/pwned', 'p')]], 'ok', prel + '/pwned')
    hostile('h-symlink-rel', [[sym('out', '../' * 12 + prel), f('out/pwned2', 'p')]], 'ok',
            prel + '/pwned2')
    hostile('h-symlink-chain', [[sym('a', 'b'), sym('b', probe + '/../' + os.path.basename(probe))],
                                [f('a/secret', 'overwritten?')]], 'ok', prel + '/secret')
    hostile('h-hardlink-abs', [[hard('leak', probe + '/secret')]], 'fail', 'does not exist')
    hostile('h-hardlink-rel', [[hard('leak', '../../../../../../' + prel + '/secret')]], 'fail', "'..'")
    hostile('h-whiteout-symlink', [[sym('out', probe), sym('up', '..')],
                                   [wh('out/.wh.secret'), wh('up/up/up/.wh.tmp'), wh('.wh.etc')]], 'ok', '')
    hostile('h-dot-symlink', [[sym('.', probe)]], 'fail', 'root')
    hostile('h-slash-symlink', [[sym('/', probe)]], 'fail', 'root')
    hostile('h-dir-over-symlink', [[sym('etc', probe)], [d('etc/'), f('etc/passwd', 'root:x:0:0')]], 'ok',
            'etc/passwd')
    hostile('h-patch-etc-symlink', [[sym('etc', probe)]], 'fail-patched', 'symbolic link')
    hostile('h-wh-dotdot', [[wh('a/.wh..')]], 'fail', 'whiteout')
    # 160 files of 2 MiB zeros: each under the limit, together over it
    bomb = tar_bytes([(ti('zeros%03d' % i, tarfile.REGTYPE, 0o644, size=2 << 20), Zeros(2 << 20))
                      for i in range(160)])
    hostile('h-bomb', [bomb], 'fail-budget', 'limit')

    lay.finish()
    with open(os.path.join(out, 'cases.tsv'), 'w') as fh:
        fh.write('\n'.join(cases) + '\n')


if __name__ == '__main__':
    main()
