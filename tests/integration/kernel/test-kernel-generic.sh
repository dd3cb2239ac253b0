#!/usr/bin/env bash
# The real thing end to end: the artifact and catalog entry that
# scripts/make-generic-kernel.sh produced (read from the cache of
# scripts/ci/ensure-kernel.sh; never built here) are served by a real HTTP
# server on 127.0.0.1 as a catalog; banger pulls, verifies and installs the
# kernel, records it as an ELF vmlinux, and finds it bootable under both
# Firecracker and QEMU (PVH).  Skips (77) when the cache has no kernel.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=${BANGER_SOURCE_DIR:-$(cd "$here/../../.." && pwd)}
bin=${BANGER_BIN:?BANGER_BIN must point at the banger CLI}
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 is not installed"; exit 77; }
[ "$(uname -m)" = x86_64 ] || { echo "SKIP: the generic kernel is x86_64"; exit 77; }

root=${BANGER_CI_CACHE:-/var/cache/banger-ci}
dir=
key=$("$src/scripts/ci/ensure-kernel.sh" --key 2>/dev/null) || key=
if [ -n "$key" ] && [ -d "$root/kernel/$key" ]; then
	dir=$root/kernel/$key
else
	for d in "$root"/kernel/*/; do
		[ -d "$d" ] && ls "$d"/*.catalog-entry.json >/dev/null 2>&1 && dir=${d%/} && break
	done
fi
entry=$(ls "$dir"/*.catalog-entry.json 2>/dev/null | head -n 1)
artifact=$(ls "$dir"/*-x86_64.tar.gz 2>/dev/null | head -n 1)
if [ -z "$dir" ] || [ -z "$entry" ] || [ -z "$artifact" ]; then
	echo "SKIP: no generic kernel in $root/kernel (run scripts/ci/ensure-kernel.sh to build one)"
	exit 77
fi

tmp=$(mktemp -d)
srv_pid=
cleanup() {
	if [ -n "$srv_pid" ]; then
		kill "$srv_pid" 2>/dev/null
		wait "$srv_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
# A dead proxy in the environment, whatever the caller had: requests to
# the catalog on 127.0.0.1 must go there directly (tests/integration/proxy).
unset HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY
export http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9
export BANGER_HOME="$tmp/state" BANGER_RUNTIME_DIR="$tmp/run"
kdir=$BANGER_HOME/kernels
fail=0
check() {
	local name=$1 want=$2
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	local got=$?
	if [ "$got" -ne "$want" ]; then
		echo "FAIL $name: exit $got, wanted $want"
		sed 's/^/  out: /' "$tmp/out"
		sed 's/^/  err: /' "$tmp/err"
		fail=1
	else
		echo "PASS $name"
	fi
}
has() {
	if grep -q -- "$2" "$3"; then echo "PASS $1"; else echo "FAIL $1: no '$2' in:"; sed 's/^/  /' "$3"; fail=1; fi
}

mkdir -p "$tmp/www"
ln -s "$artifact" "$tmp/www/$(basename "$artifact")"
{
	printf '{"schema_version": 1, "kernels": [\n'
	cat "$entry"
	printf ']}\n'
} >"$tmp/www/catalog.json"
name=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$entry")
version=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$entry")

python3 "$here/http_server.py" --root "$tmp/www" --port-file "$tmp/port" 2>"$tmp/server.err" &
srv_pid=$!
for _ in $(seq 1 100); do
	[ -s "$tmp/port" ] && break
	sleep 0.1
done
[ -s "$tmp/port" ] || { echo "FAIL: the HTTP server did not start"; cat "$tmp/server.err"; exit 1; }
cat="http://127.0.0.1:$(cat "$tmp/port")/catalog.json"

echo "pulling $name ($version) from $artifact via $cat"
check catalog 0 "$bin" kernel catalog --catalog "$cat"
has catalog-lists "^$name  *$version  *x86_64" "$tmp/out"
start=$(date +%s%N)
check pull 0 "$bin" kernel pull "$name" --catalog "$cat"
end=$(date +%s%N)
echo "pull of $(stat -c %s "$artifact") bytes took $(((end - start) / 1000000)) ms (ASan build: not a benchmark)"
check show 0 "$bin" kernel show "$name" --json
has format-elf '"format": "elf"' "$tmp/out"
has version "\"version\": \"$version\"" "$tmp/out"
has firecracker "\"firecracker\": {\"path\": \"$kdir/$name/vmlinux\"" "$tmp/out"
has qemu-pvh "\"qemu\": {\"path\": \"$kdir/$name/vmlinux\"" "$tmp/out"
for f in vmlinux bzImage config; do
	if cmp -s "$dir/$f" "$kdir/$name/$f"; then echo "PASS same-$f"; else echo "FAIL same-$f"; fail=1; fi
done
check rm 0 "$bin" kernel rm "$name"
exit $fail
