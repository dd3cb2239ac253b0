#!/usr/bin/env python3
"""Write a small x86 boot image for tests: "HdrS" at 0x202, boot protocol
2.15, a kernel_version string, and (unless --empty) the given ELF file
gzip-compressed as the payload, where payload_offset/payload_length say.

  make_bzimage.py ELF OUT [--empty] [--release 6.1.0-test]
"""
import argparse
import gzip
import struct


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("elf")
    ap.add_argument("out")
    ap.add_argument("--empty", action="store_true", help="no payload: only the header")
    ap.add_argument("--release", default="6.1.0-banger-test")
    a = ap.parse_args()
    setup_sects = 1
    pm = (setup_sects + 1) * 512
    img = bytearray(pm)
    img[0x1F1] = setup_sects
    img[0x1FE:0x200] = b"\x55\xaa"
    img[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", img, 0x206, 0x020F)
    struct.pack_into("<H", img, 0x236, 1)  # XLF_KERNEL_64
    ver = a.release.encode() + b" (test@banger) #1 SMP\0"
    img[0x300:0x300 + len(ver)] = ver
    struct.pack_into("<H", img, 0x20E, 0x300 - 0x200)
    stub = b"\x90" * 64
    payload = b"" if a.empty else gzip.compress(open(a.elf, "rb").read())
    struct.pack_into("<I", img, 0x248, len(stub))
    struct.pack_into("<I", img, 0x24C, len(payload))
    img += stub + payload + b"\0" * 32
    with open(a.out, "wb") as f:
        f.write(img)


if __name__ == "__main__":
    main()
