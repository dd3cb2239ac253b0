#!/usr/bin/env python3
"""The module graph of libbanger, checked against the code.

ARCHITECTURE.md holds the allowed graph between the markers
"<!-- module-graph -->" and "<!-- /module-graph -->": one line per
rank, lowest first, "rank: module module ...".  A module may use only
modules of a lower rank.  Checked here:

  includes  every '#include "../<module>/..."' in libbanger/<module>/
  calls     every symbol an object file of a module needs (nm) that
            another module's object defines
  context   below the vm module, no code reaches into a banger_ctx
            ("ctx->"): those modules get their environment through
            bg_env_of() and know nothing of the VM handle cache
  cli       cli/ includes only <banger/...> and its own headers

Usage: check-layering.py ARCHITECTURE.md SRC_DIR OBJECT...
Exit 0 when every arrow points down, 1 with one line per violation.
"""
import os
import re
import subprocess
import sys


def read_graph(path):
    text = open(path, encoding="utf-8").read()
    m = re.search(r"<!-- module-graph -->(.*?)<!-- /module-graph -->", text, re.S)
    if not m:
        sys.exit(f"{path}: no module-graph block")
    rank = {}
    for line in m.group(1).splitlines():
        lm = re.match(r"\s*(\d+):\s*(.+?)\s*$", line)
        if lm:
            for mod in lm.group(2).split():
                rank[mod] = int(lm.group(1))
    if not rank:
        sys.exit(f"{path}: empty module-graph block")
    return rank


def module_of_object(path):
    # <build>/libbanger/CMakeFiles/banger_objects.dir/<module>/<file>.c.o
    return os.path.basename(os.path.dirname(path))


def main():
    arch, src = sys.argv[1], sys.argv[2]
    # one argument holding a CMake list, or one object per argument
    objects = [o for a in sys.argv[3:] for o in a.split(";") if o]
    rank = read_graph(arch)
    lib = os.path.join(src, "libbanger")
    errors = []
    mods = sorted(d for d in os.listdir(lib) if os.path.isdir(os.path.join(lib, d)))
    for mod in mods:
        if mod not in rank:
            errors.append(f"module {mod} is not in the graph of {os.path.basename(arch)}")

    def down(a, b):
        return a == b or (a in rank and b in rank and rank[b] < rank[a])

    below_vm = {m for m in rank if "vm" in rank and rank[m] < rank["vm"]}
    for mod in mods:
        d = os.path.join(lib, mod)
        for name in sorted(os.listdir(d)):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(d, name)
            for no, line in enumerate(open(path, encoding="utf-8"), 1):
                im = re.match(r'\s*#\s*include\s+"\.\./([A-Za-z_]+)/', line)
                if im and not down(mod, im.group(1)):
                    errors.append(f"libbanger/{mod}/{name}:{no}: includes {im.group(1)}/ (rank "
                                  f"{rank.get(im.group(1))} >= {mod}'s {rank.get(mod)})")
                if mod in below_vm and mod != "env" and re.search(r"\bctx->", line):
                    errors.append(f"libbanger/{mod}/{name}:{no}: reaches into banger_ctx "
                                  f"(use bg_env_of)")

    defined, needed = {}, {}
    for obj in objects:
        mod = module_of_object(obj)
        out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            f = line.split()
            if len(f) == 3 and f[1] in "TDBRC":
                defined[f[2]] = mod
            elif len(f) == 2 and f[0] == "U":
                needed.setdefault(mod, {}).setdefault(f[1], os.path.basename(obj))
    for mod, syms in sorted(needed.items()):
        for sym, obj in sorted(syms.items()):
            owner = defined.get(sym)
            if owner and not down(mod, owner):
                errors.append(f"libbanger/{mod} ({obj}) calls {sym} of {owner}/")

    cli = os.path.join(src, "cli")
    for name in sorted(os.listdir(cli)):
        if name.endswith((".c", ".h")):
            for no, line in enumerate(open(os.path.join(cli, name), encoding="utf-8"), 1):
                im = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                if im and "/" in im.group(1):
                    errors.append(f"cli/{name}:{no}: includes {im.group(1)} (the CLI uses <banger/...> only)")

    if not objects:
        errors.append("no object files given: the call check saw nothing")
    for e in errors:
        print(e)
    if errors:
        return 1
    print(f"layering: {len(mods)} modules, {len(objects)} objects, every arrow points down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
