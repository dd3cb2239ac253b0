#!/usr/bin/env python3
"""Write a tiny OCI image layout for the hardening tests' pulls:

    mkimage.py DIR TAG

Two gzip layers (a few directories, files, a symlink, a hardlink; the
second replaces one file and whites out another) and an image config,
for this machine's architecture.  Small on purpose: the
allocation-failure test pulls it once per failing allocation.
"""
import gzip, hashlib, io, json, os, platform, sys, tarfile

GOARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def layer(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, data, link in entries:
            ti = tarfile.TarInfo(name)
            ti.type = kind
            ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            ti.mtime = 1600000000
            ti.linkname = link or ""
            ti.size = len(data) if kind == tarfile.REGTYPE else 0
            t.addfile(ti, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    raw = buf.getvalue()
    return raw, gzip.compress(raw, mtime=0)


def blob(d, data):
    h = hashlib.sha256(data).hexdigest()
    with open(os.path.join(d, "blobs", "sha256", h), "wb") as f:
        f.write(data)
    return "sha256:" + h


def main():
    out, tag = sys.argv[1], sys.argv[2]
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
    D, F, L, H = tarfile.DIRTYPE, tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
    l1 = layer([
        ("etc", D, b"", None), ("etc/hostname", F, b"tiny\n", None),
        ("etc/fstab", F, b"proc /proc proc defaults 0 0\n", None),
        ("etc/os-release", F, b"ID=tiny\n", None),
        ("usr", D, b"", None), ("usr/bin", D, b"", None), ("usr/bin/sh", F, b"\x7fELF", None),
        ("usr/bin/bash", H, b"", "usr/bin/sh"), ("bin", L, b"", "usr/bin"),
        ("tmp", D, b"", None), ("var/lib/old", F, b"gone", None),
    ])
    l2 = layer([("etc/hostname", F, b"tiny2\n", None), ("var/lib/.wh.old", F, b"", None),
                ("srv", D, b"", None), ("srv/data", F, b"x" * 3000, None)])
    layers = [(blob(out, gz), len(gz), "sha256:" + hashlib.sha256(raw).hexdigest()) for raw, gz in (l1, l2)]
    config = json.dumps({
        "architecture": GOARCH, "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [l[2] for l in layers]},
    }).encode()
    cdig = blob(out, config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdig, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n}
                   for d, n, _ in layers],
    }).encode()
    mdig = blob(out, manifest)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdig, "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": tag}}]}, f)


if __name__ == "__main__":
    main()
