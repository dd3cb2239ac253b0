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
            ("ctx->") or names the VM handle cache (bg_vm_cache*)
            except env/, which declares it opaque: those modules get
            their environment through bg_env_of()
  contracts the guest contract headers (guest/include/banger-guest/),
            which both the library and the guest programs include, take
            nothing but system headers and each other, and the guest
            programs include nothing of libbanger: a contract is below
            every module and cannot carry a dependency either way
  cli       cli/ includes only <banger/...> and its own headers
Weak symbols count like strong ones: a weak definition in a higher
module still makes a call to it an upward arrow.

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


def check_contracts(src):
    errors = []
    contracts = os.path.join(src, "guest", "include", "banger-guest")
    if not os.path.isdir(contracts):
        return [f"{contracts}: the guest contract headers are missing"]
    for name in sorted(os.listdir(contracts)):
        for no, line in enumerate(open(os.path.join(contracts, name), encoding="utf-8"), 1):
            im = re.match(r'\s*#\s*include\s+(?:"([^"]+)"|<(banger/[^>]+)>)', line)
            if im and (im.group(2) or "/" in im.group(1)):
                errors.append(f"guest/include/banger-guest/{name}:{no}: includes {im.group(1) or im.group(2)} "
                              f"(a contract takes system headers and other contracts only)")
    for root, _, files in os.walk(os.path.join(src, "guest")):
        for name in sorted(files):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(root, name)
            for no, line in enumerate(open(path, encoding="utf-8"), 1):
                if re.match(r'\s*#\s*include\s+("[^"]*libbanger/|<banger/)', line):
                    errors.append(f"{os.path.relpath(path, src)}:{no}: a guest program includes "
                                  f"libbanger")
    return errors


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
                im = re.match(r'\s*#\s*include\s+"\.\./([A-Za-z_]+)/([^"]*)"', line)
                if im and not down(mod, im.group(1)):
                    errors.append(f"libbanger/{mod}/{name}:{no}: includes {im.group(1)}/ (rank "
                                  f"{rank.get(im.group(1))} >= {mod}'s {rank.get(mod)})")
                if im and im.group(1) != mod and im.group(2).endswith("_internal.h"):
                    errors.append(f"libbanger/{mod}/{name}:{no}: includes {im.group(1)}/{im.group(2)}, "
                                  f"a header internal to {im.group(1)}/")
                far = re.match(r'\s*#\s*include\s+"\.\./\.\./([^"]*)"', line)
                if far and not far.group(1).startswith("guest/include/banger-guest/"):
                    errors.append(f"libbanger/{mod}/{name}:{no}: includes ../../{far.group(1)} (outside "
                                  f"libbanger only the guest contract headers may be included)")
                if mod in below_vm and mod != "env" and re.search(r"\bctx->", line):
                    errors.append(f"libbanger/{mod}/{name}:{no}: reaches into banger_ctx "
                                  f"(use bg_env_of)")
                if mod in below_vm and mod != "env" and re.search(r"\bbg_vm_cache", line):
                    errors.append(f"libbanger/{mod}/{name}:{no}: uses the VM handle cache, "
                                  f"which belongs to vm/")

    defined, needed = {}, {}
    for obj in objects:
        mod = module_of_object(obj)
        out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            f = line.split()
            if len(f) == 3 and f[1] in "TDBRCWV":
                defined[f[2]] = mod
            elif len(f) == 2 and f[0] in "Uw":
                needed.setdefault(mod, {}).setdefault(f[1], os.path.basename(obj))
    for mod, syms in sorted(needed.items()):
        for sym, obj in sorted(syms.items()):
            owner = defined.get(sym)
            if owner and not down(mod, owner):
                errors.append(f"libbanger/{mod} ({obj}) calls {sym} of {owner}/")

    errors += check_contracts(src)

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
