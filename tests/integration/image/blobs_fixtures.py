#!/usr/bin/env python3
"""Fixtures for the blob cache tests (test-blob-cache.sh).

    blobs_fixtures.py OUTDIR

OUTDIR/layout        an OCI layout with the tags
                       small   two small layers
                       small2  small's first layer and one of its own
                       big     one 4 MiB layer of incompressible bytes
                       race    one 48 MiB layer of incompressible bytes
                       twice   one layer blob listed twice
OUTDIR/bomb.tar.zst  a zstd tar holding only 1 GiB of zeros (about 40 KB):
                     nothing an importer needs
OUTDIR/digests.tsv   tag, manifest, config and layer digests (one a line)

    blobs_fixtures.py mix IN.tar OUT.tar.zst

OUT.tar.zst          the same 1 GiB of zeros, then every member of IN.tar
                     (a docker save archive the test made with skopeo)
"""
import hashlib, json, os, random, subprocess, sys, tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures import Layout, Zeros, f, tar_bytes, ti  # noqa: E402


def noise(n, seed):
    return random.Random(seed).randbytes(n)


def zeros_tar_zst(path, name, size, then=None):
    """A zstd tar with one member of size zeros, then the members of the
    tar file then (if given), compressed by the zstd tool as it streams."""
    with open(path, 'wb') as out:
        z = subprocess.Popen(['zstd', '-q', '-19', '-c'], stdin=subprocess.PIPE, stdout=out)
        with tarfile.open(fileobj=z.stdin, mode='w|', format=tarfile.PAX_FORMAT) as t:
            t.addfile(ti(name, tarfile.REGTYPE, 0o644, size=size), Zeros(size))
            if then:
                with tarfile.open(then) as src:
                    for m in src:
                        t.addfile(m, src.extractfile(m) if m.isfile() else None)
        z.stdin.close()
        if z.wait() != 0:
            raise SystemExit('zstd failed')


def main():
    if sys.argv[1] == 'mix':
        # mix IN.tar OUT.tar.zst: the bomb's padding, then a real archive
        zeros_tar_zst(sys.argv[3], 'padding/zeros.bin', 1 << 30, then=sys.argv[2])
        return
    out = sys.argv[1]
    lay = Layout(os.path.join(out, 'layout'))
    shared = [f('etc/os-release', 'ID=fixture\n'), f('bin/sh', '#!fake\n', 0o755)]
    images = {
        'small': [shared, [f('small', 'small image\n')]],
        'small2': [shared, [f('small2', 'the second small image\n')]],
        'big': [[f('noise', noise(4 << 20, 1))]],
        'race': [[f('noise', noise(48 << 20, 2))]],
        # the same layer blob twice (images with identical empty layers)
        'twice': [[f('twice', 'same\n')], [f('twice', 'same\n')]],
    }
    rows = []
    for tag, layers in images.items():
        # level 1: the noise does not compress anyway
        desc = lay.image(layers, level=1)
        lay.tag(tag, desc)
        man = json.load(open(os.path.join(lay.path, 'blobs', 'sha256', desc['digest'][7:])))
        rows.append('\t'.join([tag, desc['digest'], man['config']['digest']] +
                              [l['digest'] for l in man['layers']]))
    lay.finish()
    with open(os.path.join(out, 'digests.tsv'), 'w') as fh:
        fh.write('\n'.join(rows) + '\n')
    zeros_tar_zst(os.path.join(out, 'bomb.tar.zst'), 'padding/zeros.bin', 1 << 30)


if __name__ == '__main__':
    main()
