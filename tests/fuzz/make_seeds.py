#!/usr/bin/env python3
"""Regenerate the binary seeds of the fuzz corpus that are easier to build
than to write by hand (the text seeds are written directly):

  corpus/kernel_format/   tiny ELF64 vmlinux-like images (PT_LOAD, a PVH
                          note, a "Linux version" banner), ELF32, and
                          bzImages carrying them under each compressor
                          banger's extraction knows.
  corpus/kernel_unpack/   kernel artifacts: vmlinux + config (gzip, xz),
                          bzImage + initrd, and hostile members (a
                          symlink vmlinux, "../", a directory, a device,
                          an unexpected name, two initrds).
  corpus/import_archive/  archives `banger image import` reads: docker
                          save (legacy and Docker 25), OCI, gzip, a zstd
                          bomb, hostile, duplicate and missing names.
  corpus/layer/           small layer tarballs: ustar, GNU and PAX
                          headers, long names, xattrs, hardlinks,
                          symlinks (some pointing out of the tree),
                          devices, whiteouts and opaque directories, a
                          GNU sparse file; plain, gzip and zstd; a
                          chain of symlinks nesting ~6,000 directories.

  make_seeds.py CORPUS_DIR

Everything is small (a few hundred bytes) so that libFuzzer's mutations
stay fast.
"""
import bz2
import gzip
import io
import lzma
import os
import shutil
import struct
import subprocess
import sys
import tarfile

XEN_ELFNOTE_PHYS32_ENTRY = 18


def elf64(pvh=True, banner=b"Linux version 6.1.0-fuzz (fuzz@banger) #1 SMP\0", machine=62):
    body = bytearray()
    note = b""
    if pvh:
        name = b"Xen\0"
        desc = struct.pack("<I", 0x1000000)
        note = struct.pack("<III", len(name), len(desc), XEN_ELFNOTE_PHYS32_ENTRY) + name + desc
    phnum = 2 if pvh else 1
    ehsize, phentsize = 64, 56
    data_off = ehsize + phnum * phentsize
    note_off = data_off + len(banner)
    total = note_off + len(note)
    eh = bytearray(b"\x7fELF\x02\x01\x01" + b"\0" * 9)
    eh += struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, 0x1000000, ehsize, 0, 0, ehsize, phentsize,
                      phnum, 64, 0, 0)
    ph = struct.pack("<IIQQQQQQ", 1, 5, data_off, 0x1000000, 0x1000000, len(banner), len(banner), 0x1000)
    if pvh:
        ph += struct.pack("<IIQQQQQQ", 4, 4, note_off, 0, 0, len(note), len(note), 4)
    body = eh + ph + banner + note
    assert len(body) == total
    return bytes(body)


def elf32():
    eh = bytearray(b"\x7fELF\x01\x01\x01" + b"\0" * 9)
    eh += struct.pack("<HHIIIIIHHHHHH", 2, 3, 1, 0x100000, 52, 0, 0, 52, 32, 1, 40, 0, 0)
    ph = struct.pack("<IIIIIIII", 1, 52 + 32, 0x100000, 0x100000, 4, 4, 5, 0x1000)
    return bytes(eh + ph + b"\x90\x90\x90\xc3")


def bzimage(payload, proto=0x020F, use_header=True, release=b"6.1.0-fuzz"):
    setup_sects = 1
    pm = (setup_sects + 1) * 512
    img = bytearray(pm)
    img[0x1F1] = setup_sects
    img[0x1FE:0x200] = b"\x55\xaa"
    img[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", img, 0x206, proto)
    struct.pack_into("<H", img, 0x236, 1)
    ver = release + b" (fuzz@banger) #1 SMP\0"
    img[0x300:0x300 + len(ver)] = ver
    struct.pack_into("<H", img, 0x20E, 0x300 - 0x200)
    stub = b"\x90" * 16
    if use_header:
        struct.pack_into("<I", img, 0x248, len(stub))
        struct.pack_into("<I", img, 0x24C, len(payload))
    return bytes(img + stub + payload + b"\0" * 8)


def tool(cmd, data):
    if not shutil.which(cmd[0]):
        return None
    return subprocess.run(cmd, input=data, stdout=subprocess.PIPE, check=True).stdout


def tar_bytes(members, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for m in members:
            info = tarfile.TarInfo(m["name"])
            info.type = m.get("type", tarfile.REGTYPE)
            info.mode = m.get("mode", 0o644)
            info.uid = m.get("uid", 0)
            info.gid = m.get("gid", 0)
            info.mtime = 1700000000
            info.linkname = m.get("link", "")
            info.devmajor, info.devminor = m.get("dev", (0, 0))
            if "pax" in m:
                info.pax_headers = m["pax"]
            data = m.get("data", b"")
            info.size = len(data) if info.type == tarfile.REGTYPE else 0
            t.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    # drop the padding to a 10 KiB record: two zero blocks end an archive
    raw = buf.getvalue().rstrip(b"\0")
    raw += b"\0" * (-len(raw) % 512)
    return raw + b"\0" * 1024


def gnu_sparse():
    """A GNU 'S' (old-style sparse) member: 2 data regions of a 1 MiB file."""
    hdr = bytearray(512)
    def put(off, val):
        hdr[off:off + len(val)] = val
    put(0, b"sparse.bin")
    put(100, b"0000644\0")
    put(108, b"0000000\0")
    put(116, b"0000000\0")
    put(124, b"%011o\0" % 1024)            # stored bytes
    put(136, b"%011o\0" % 1700000000)
    put(156, b"S")
    put(257, b"ustar  \0")
    # sparse map at 386: (offset, numbytes) x 4, then isextended, realsize
    put(386, b"%011o\0" % 0 + b"%011o\0" % 512)
    put(386 + 24, b"%011o\0" % (1 << 19) + b"%011o\0" % 512)
    put(482, b"\0")
    put(483, b"%011o\0" % (1 << 20))
    put(148, b"        ")
    csum = sum(hdr)
    put(148, b"%06o\0 " % csum)
    return bytes(hdr) + b"A" * 512 + b"B" * 512 + b"\0" * 1024


def layer_seeds():
    D, L, H, C, B, F = tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE
    basic = [
        {"name": "./", "type": D, "mode": 0o755},
        {"name": "./etc/", "type": D, "mode": 0o755},
        {"name": "./etc/hostname", "data": b"box\n"},
        {"name": "./usr/bin/su", "mode": 0o4755, "data": b"su"},
        {"name": "./usr/bin/ping", "mode": 0o755, "data": b"ping",
         "pax": {"SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}},
        {"name": "./usr/bin/su2", "type": H, "link": "./usr/bin/su"},
        {"name": "./sbin", "type": L, "link": "usr/bin"},
        {"name": "./dev/null", "type": C, "mode": 0o666, "dev": (1, 3)},
        {"name": "./dev/sda", "type": B, "mode": 0o660, "dev": (8, 0)},
        {"name": "./run/fifo", "type": F},
    ]
    whiteouts = [
        {"name": "etc/.wh.hostname"},
        {"name": "usr/bin/.wh..wh..opq"},
        {"name": "usr/bin/new", "data": b"new"},
        {"name": "lib", "type": L, "link": "/usr/lib"},
        {"name": "etc/ssh/ssh_host_rsa_key", "mode": 0o600, "data": b"k"},
    ]
    hostile = [
        {"name": "usr/local", "type": L, "link": "../../../../tmp"},
        {"name": "etc", "type": L, "link": "/proc/self"},
        {"name": "../escape", "data": b"x"},
        {"name": "/abs/path", "data": b"y"},
        {"name": "a/./b//c/../d", "data": b"z"},
        {"name": "root", "data": b"not a dir"},
        {"name": "hl", "type": H, "link": "../../etc/shadow"},
        {"name": "x/" + "n" * 300, "data": b"long"},
        {"name": "etc/resolv.conf", "type": D},
    ]
    # a directory 2,000 levels deep and symlinks chained onto its end, each
    # extended by 1,999 more: ~6,000 levels (past banger's 2,048 limit)
    down = "/".join(["a"] * 2000)
    more = down[2:]
    deep = [{"name": down, "type": D, "mode": 0o755}, {"name": "l1", "type": L, "link": down}]
    for k in (1, 2, 3):
        deep.append({"name": "l%d/%s" % (k, more), "type": D, "mode": 0o755})
        if k < 3:
            deep.append({"name": "l%d" % (k + 1), "type": L, "link": "l%d/%s" % (k, more)})
    seeds = {
        "deep-symlink-chain.tar.gz": gzip.compress(tar_bytes(deep), mtime=0),
        "basic.tar": tar_bytes(basic),
        "basic-gnu.tar": tar_bytes(basic[:4] + basic[5:], fmt=tarfile.GNU_FORMAT),
        "basic-ustar.tar": tar_bytes(basic[:4] + basic[5:], fmt=tarfile.USTAR_FORMAT),
        "basic.tar.gz": gzip.compress(tar_bytes(basic), mtime=0),
        "whiteouts.tar": tar_bytes(whiteouts),
        "hostile.tar": tar_bytes(hostile, fmt=tarfile.GNU_FORMAT),
        "sparse.tar": gnu_sparse(),
        "empty.tar": b"\0" * 1024,
    }
    z = tool(["zstd", "-q", "-c"], tar_bytes(whiteouts))
    if z:
        seeds["whiteouts.tar.zst"] = z
    return seeds


def kernel_unpack_seeds():
    e = elf64()
    F, D, L, H, C = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE
    ok = tar_bytes([{"name": "vmlinux", "data": e, "mode": 0o755}, {"name": "config", "data": b"CONFIG_X=y\n"}])
    seeds = {
        "vmlinux-config.tar.gz": gzip.compress(ok, mtime=0),
        "vmlinux-config.tar.xz": lzma.compress(ok),
        "bzimage-initrd.tar": tar_bytes([{"name": "./bzImage", "data": bzimage(gzip.compress(e, mtime=0))},
                                         {"name": "initrd.img", "data": b"070701"}]),
        "symlink.tar": tar_bytes([{"name": "vmlinux", "type": L, "link": "/etc/passwd"}]),
        "hardlink.tar": tar_bytes([{"name": "config", "data": b"x"}, {"name": "vmlinux", "type": H, "link": "config"}]),
        "traversal.tar": tar_bytes([{"name": "../vmlinux", "data": e}]),
        "directory.tar": tar_bytes([{"name": "vmlinux", "type": D}]),
        "device.tar": tar_bytes([{"name": "config", "type": C, "dev": (1, 3)}]),
        "unexpected.tar": tar_bytes([{"name": "vmlinux", "data": e}, {"name": "README", "data": b"hi"}]),
        "two-initrds.tar": tar_bytes([{"name": "initrd-a", "data": b"a"}, {"name": "initrd-b", "data": b"b"}]),
        "duplicate.tar": tar_bytes([{"name": "vmlinux", "data": e}, {"name": "vmlinux", "data": e}]),
    }
    return seeds


def import_archive_seeds():
    """`docker save` and OCI archives as `banger image import` reads them,
    and the ones it must refuse: a zstd bomb whose padding nothing needs,
    members that lie about their size, hostile and duplicate names."""
    import hashlib
    import json

    def dg(b):
        return "sha256:" + hashlib.sha256(b).hexdigest()

    layer = tar_bytes([{"name": "etc/hostname", "data": b"fuzz\n"}])
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": [dg(layer)]}}).encode()
    chex = hashlib.sha256(cfg).hexdigest()
    legacy = [{"name": chex + ".json", "data": cfg},
              {"name": "abc/layer.tar", "data": layer},
              {"name": "manifest.json", "data": json.dumps(
                  [{"Config": chex + ".json", "RepoTags": ["fuzz:1"], "Layers": ["abc/layer.tar"]}]).encode()},
              {"name": "repositories", "data": b"{}"}]
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": dg(cfg), "size": len(cfg)},
                      "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                  "digest": dg(layer), "size": len(layer)}]}).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": dg(man), "size": len(man),
         "annotations": {"org.opencontainers.image.ref.name": "fuzz"}}]}).encode()
    oci = [{"name": "oci-layout", "data": b'{"imageLayoutVersion": "1.0.0"}'},
           {"name": "blobs/sha256/" + dg(cfg)[7:], "data": cfg},
           {"name": "blobs/sha256/" + dg(layer)[7:], "data": layer},
           {"name": "blobs/sha256/" + dg(man)[7:], "data": man},
           {"name": "index.json", "data": index}]
    seeds = {
        "docker-save.tar": tar_bytes(legacy),
        "docker-save.tar.gz": gzip.compress(tar_bytes(legacy), mtime=0),
        "oci-archive.tar": tar_bytes(oci),
        "docker25.tar": tar_bytes(oci + [legacy[2]]),
        "hostile-names.tar": tar_bytes([{"name": "../../etc/passwd", "data": b"x"},
                                        {"name": "/abs/manifest.json", "data": b"[]"},
                                        {"name": "./blobs/sha256/" + "0" * 64, "data": b"y"},
                                        {"name": "blobs", "type": tarfile.SYMTYPE, "link": "/"}]),
        "duplicates.tar": tar_bytes([legacy[1], {"name": "abc/layer.tar", "data": b"second"}] + legacy),
        "manifest-names-missing.tar": tar_bytes([{"name": "manifest.json", "data": json.dumps(
            [{"Config": "nope.json", "Layers": ["../x", 7]}]).encode()}]),
    }
    # the padding first, as a `docker save` of many images has it: 1 MiB
    # of zeros here (the bomb the tests use is 1 GiB)
    bomb = tar_bytes([{"name": "padding/zeros.bin", "data": b"\0" * (1 << 20)}] + legacy)
    z = tool(["zstd", "-q", "-c", "-19"], bomb)
    if z:
        seeds["bomb.tar.zst"] = z
    return seeds


def main():
    ia = os.path.join(sys.argv[1], "import_archive")
    os.makedirs(ia, exist_ok=True)
    for name, data in import_archive_seeds().items():
        with open(os.path.join(ia, name), "wb") as f:
            f.write(data)

    ku = os.path.join(sys.argv[1], "kernel_unpack")
    os.makedirs(ku, exist_ok=True)
    for name, data in kernel_unpack_seeds().items():
        with open(os.path.join(ku, name), "wb") as f:
            f.write(data)

    lay = os.path.join(sys.argv[1], "layer")
    os.makedirs(lay, exist_ok=True)
    for name, data in layer_seeds().items():
        with open(os.path.join(lay, name), "wb") as f:
            f.write(data)

    out = os.path.join(sys.argv[1], "kernel_format")
    os.makedirs(out, exist_ok=True)
    e = elf64()
    seeds = {
        "elf64-pvh": e,
        "elf64-nopvh": elf64(pvh=False),
        "elf64-arm64": elf64(pvh=False, machine=183),
        "elf32": elf32(),
        "bzimage-empty": bzimage(b""),
        "bzimage-uncompressed": bzimage(e),
        "bzimage-gzip": bzimage(gzip.compress(e, mtime=0)),
        "bzimage-gzip-scan": bzimage(gzip.compress(e, mtime=0), proto=0x0206, use_header=False),
        "bzimage-xz": bzimage(lzma.compress(e, check=lzma.CHECK_CRC32) + struct.pack("<I", len(e))),
        "bzimage-lzma": bzimage(lzma.compress(e, format=lzma.FORMAT_ALONE) + struct.pack("<I", len(e))),
        "bzimage-bzip2": bzimage(bz2.compress(e) + struct.pack("<I", len(e))),
    }
    z = tool(["zstd", "-q", "-c", "-19"], e)
    if z:
        seeds["bzimage-zstd"] = bzimage(z + struct.pack("<I", len(e)))
    l4 = tool(["lz4", "-q", "-l", "-c"], e)
    if l4:
        seeds["bzimage-lz4-legacy"] = bzimage(l4 + struct.pack("<I", len(e)))
    arm = bytearray(64)
    arm[0x38:0x3C] = b"ARM\x64"
    seeds["arm64-image"] = bytes(arm)
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
