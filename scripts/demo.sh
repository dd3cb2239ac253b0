#!/usr/bin/env bash
# banger's main job, on a fresh Debian 12 machine with only Debian's
# mirror reachable: install what is needed, build banger, pull a guest
# kernel from a catalog and a Debian image from a registry (both served on
# the loopback of a private network namespace, since nothing else is
# reachable), boot a VM, run a command in it over SSH with its host key
# verified, print the result, delete the VM.
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$SRC"
if [[ $(id -u) -ne 0 ]]; then
	# as a user: ask sudo for root (a fresh root shell has no sudo and needs none)
	command -v sudo >/dev/null && exec sudo --preserve-env=BUILD_DIR,BANGER_CI_CACHE "$SRC/scripts/demo.sh" "$@"
	echo "demo.sh: run as root (network namespace, tap device)" >&2
	exit 1
fi

./scripts/install-deps.sh
build=${BUILD_DIR:-$SRC/build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBANGER_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
BANGER=$build/cli/banger  # used by lib/lab.sh
export BANGER

WORK=$(mktemp -d /tmp/banger-demo.XXXXXX)
NS=  # set by lab_up
export NS
# shellcheck source=lib/lab.sh
. "$SRC/scripts/lib/lab.sh"
trap 'lab_down; rm -rf "$WORK"' EXIT
echo "== preparing the lab (first run builds the guest kernel and a Debian test image; later runs reuse the cache)"
lab_up

say() { printf '\n$ banger %s\n' "$*"; }
say kernel pull "$KNAME";                            banger kernel pull "$KNAME"
say image pull 127.0.0.1:5000/test/debian:bookworm;  banger image pull 127.0.0.1:5000/test/debian:bookworm --name debian-bookworm --kernel-ref "$KNAME"
say vm create --image debian-bookworm --name box;    banger vm create --image debian-bookworm --name box
say vm ssh box -- 'uname -a; head -2 /etc/os-release'; banger vm ssh box -- 'uname -a; head -2 /etc/os-release'
say vm list;                                         banger vm list
say vm delete box;                                   banger vm delete --force box
echo
vmm=$(banger doctor --json | python3 -c 'import json,sys; print([c["detail"] for c in json.load(sys.stdin) if c["name"]=="vmm"][0].split(": ", 1)[-1])')
echo "== done: the VM booted under $vmm, answered SSH with the host key banger pinned before it booted, and is gone."
