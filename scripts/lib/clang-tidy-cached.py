#!/usr/bin/env python3
"""Run clang-tidy over translation units, skipping the ones already found
clean with exactly the same input.

    clang-tidy-cached.py SOURCE_DIR BUILD_DIR JOBS FILE...

clang-tidy is most of the time of scripts/static-analysis.sh (about three
minutes here), and its verdict on a file depends only on what it reads:
the file after preprocessing (with comments, so NOLINT counts), the
compile flags, the .clang-tidy configuration and the clang-tidy version.
A hash of those names a marker under $BANGER_CI_CACHE/clang-tidy-clean/,
written when clang-tidy found nothing; a file whose marker exists is not
analysed again.  Findings are never cached: a file with findings is
analysed, and reported, on every run.  SOURCE_DIR and BUILD_DIR are
written as placeholders in the key, so clones in other directories share
it.
Without BANGER_CI_CACHE every file is analysed.

Prints clang-tidy's output for the files it analysed and, on stderr, how
many it took from the cache.
"""
import concurrent.futures
import hashlib
import json
import os
import shlex
import subprocess
import sys


def tidy_version():
    out = subprocess.run(["clang-tidy", "--version"], capture_output=True, text=True).stdout
    return out.strip()


def tidy_configs(src):
    h = hashlib.sha256()
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not d.startswith("build"))
        if ".clang-tidy" in files:
            p = os.path.join(root, ".clang-tidy")
            h.update(os.path.relpath(p, src).encode() + b"\0")
            with open(p, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def preprocess_args(entry):
    """The compile command as a clang -E -C command, output to stdout."""
    args = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
    out, skip = ["clang"], False
    for a in args[1:]:
        if skip:
            skip = False
            continue
        if a in ("-o", "-c"):
            skip = a == "-o"
            continue
        out.append(a)
    return out + ["-E", "-C", "-w"]


def key_of(entry, src, build, common):
    p = subprocess.run(preprocess_args(entry), cwd=entry["directory"], capture_output=True)
    if p.returncode != 0:
        return None  # let clang-tidy say what is wrong
    h = hashlib.sha256(common)
    cmd = entry.get("command") or " ".join(entry.get("arguments", []))
    h.update(cmd.replace(build, "@BUILD@").replace(src, "@SRC@").encode() + b"\0")
    text = p.stdout.replace(build.encode(), b"@BUILD@").replace(src.encode(), b"@SRC@")
    for line in text.splitlines():
        if not line.startswith(b"# "):  # line markers carry paths only
            h.update(line + b"\n")
    return h.hexdigest()


def main():
    src, build, jobs, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    src, build = os.path.realpath(src), os.path.realpath(build)
    with open(os.path.join(build, "compile_commands.json"), encoding="utf-8") as f:
        db = {os.path.realpath(e["file"]): e for e in json.load(f)}
    cache = os.environ.get("BANGER_CI_CACHE")
    cache = os.path.join(cache, "clang-tidy-clean") if cache else None
    if cache:
        try:
            os.makedirs(cache, exist_ok=True)
        except OSError:
            cache = None
    common = ("%s\n%s\n" % (tidy_version(), tidy_configs(src))).encode()

    def one(path):
        entry = db.get(os.path.realpath(path))
        key = key_of(entry, src, build, common) if cache and entry else None
        if key and os.path.exists(os.path.join(cache, key)):
            return path, None, True
        p = subprocess.run(["clang-tidy", "-p", build, "--quiet", path], capture_output=True, text=True)
        out = p.stdout + p.stderr
        clean = p.returncode == 0 and "warning:" not in out and "error:" not in out
        if key and clean:
            with open(os.path.join(cache, key), "w", encoding="utf-8") as m:
                m.write(os.path.relpath(os.path.realpath(path), src) + "\n")
        return path, out, False

    hits = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for path, out, hit in pool.map(one, files):
            hits += hit
            if out:
                sys.stdout.write(out)
    print("clang-tidy: %d of %d files clean from the cache%s" %
          (hits, len(files), "" if cache else " (BANGER_CI_CACHE unset)"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
