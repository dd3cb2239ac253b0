#!/usr/bin/env bash
# Make sure banger's generic guest kernel is built and cached; print the cache
# directory (last line of stdout). Progress goes to stderr.
#
#   scripts/ci/ensure-kernel.sh                 build if missing, print the dir
#   scripts/ci/ensure-kernel.sh --source-tree   extract the sources if missing,
#                                               print the tree (no build)
#   scripts/ci/ensure-kernel.sh --key           print the cache key only
#
# Cache layout, under ROOT=${BANGER_CI_CACHE:-/var/cache/banger-ci}:
#   ROOT/kernel/<key>/       vmlinux bzImage config NAME-x86_64.tar.gz
#                            NAME.catalog-entry.json build.log build-info
#   ROOT/kernel-src/<skey>/  the extracted source tree (shared with
#                            tests/kernel/test-kernel-config.sh)
# <key> is a sha256 over this script, make-generic-kernel.sh, the Kconfig
# fragment and the identity of the source tarball (the Debian package version
# of linux-source-6.1, or the tarball's own sha256 when BANGER_KERNEL_TARBALL
# points elsewhere). <skey> covers the source identity only.
#
# Environment: BANGER_CI_CACHE, BANGER_KERNEL_TARBALL (default
# /usr/src/linux-source-6.1.tar.xz), BANGER_KERNEL_JOBS (default nproc),
# BANGER_KERNEL_NICE (niceness of the build, default 10).
set -euo pipefail

PROG=ensure-kernel
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/../.." && pwd)
SELF="$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")"
BUILD_SCRIPT="$REPO_DIR/scripts/make-generic-kernel.sh"
FRAGMENT="$REPO_DIR/configs/kernel/generic-x86_64.fragment"

DEFAULT_TARBALL=/usr/src/linux-source-6.1.tar.xz
SOURCE_PKG=linux-source-6.1
ROOT=${BANGER_CI_CACHE:-/var/cache/banger-ci}
TARBALL=${BANGER_KERNEL_TARBALL:-$DEFAULT_TARBALL}
JOBS=${BANGER_KERNEL_JOBS:-$(nproc 2>/dev/null || echo 1)}
NICE=${BANGER_KERNEL_NICE:-10}

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$PROG" "$*" >&2
	exit 1
}

MODE=build
case ${1:-} in
"") ;;
--source-tree) MODE=source ;;
--key) MODE=key ;;
-h | --help)
	sed -n '2,/^set -euo/p' "$SELF" | sed -e '$d' -e 's/^# \{0,1\}//'
	exit 0
	;;
*) die "unknown argument: $1 (try --help)" ;;
esac

pkg_installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Install the build prerequisites that are missing (Debian only).
install_prereqs() {
	local want=() pkg
	for pkg in bc flex bison libelf-dev libssl-dev; do
		pkg_installed "$pkg" || want+=("$pkg")
	done
	if [[ $TARBALL == "$DEFAULT_TARBALL" && ! -f $TARBALL ]]; then
		want+=("$SOURCE_PKG")
	fi
	command -v gcc >/dev/null 2>&1 || want+=(gcc)
	command -v make >/dev/null 2>&1 || want+=(make)
	command -v xz >/dev/null 2>&1 || want+=(xz-utils)
	[[ ${#want[@]} -eq 0 ]] && return 0
	command -v apt-get >/dev/null 2>&1 || die "missing packages ${want[*]} and no apt-get to install them"
	log "installing ${want[*]}"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}" >&2; then
		log "apt-get install failed; refreshing package lists and retrying"
		apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}" >&2
	fi
}

# How the source tarball is identified in the cache keys.
source_identity() {
	local v
	if [[ $TARBALL == "$DEFAULT_TARBALL" ]] && v=$(dpkg-query -W -f='${Version}' "$SOURCE_PKG" 2>/dev/null) && [[ -n $v ]]; then
		printf '%s %s\n' "$SOURCE_PKG" "$v"
	else
		[[ -f $TARBALL ]] || die "kernel source tarball not found: $TARBALL"
		printf 'tarball %s\n' "$(sha256sum "$TARBALL" | awk '{print $1}')"
	fi
}

cache_key() {
	local f
	{
		printf 'banger-kernel-cache v1\n'
		for f in "$SELF" "$BUILD_SCRIPT" "$FRAGMENT"; do
			printf '%s %s\n' "${f#"$REPO_DIR"/}" "$(sha256sum <"$f" | awk '{print $1}')"
		done
		printf 'source %s\n' "$1"
	} | sha256sum | awk '{print $1}'
}

# Run "$@" while holding an exclusive lock on file $1 (shifted off).
with_lock() {
	local lockfile=$1
	shift
	exec {lockfd}>"$lockfile"
	if ! flock -n "$lockfd"; then
		log "waiting for another run holding $lockfile"
		flock "$lockfd"
	fi
	"$@"
	exec {lockfd}>&-
}

# Extract the source tarball into ROOT/kernel-src/<skey> unless present.
ensure_source_tree() {
	local ident=$1 skey dest tmp
	skey=$(printf '%s\n' "$ident" | sha256sum | awk '{print substr($1, 1, 16)}')
	dest="$ROOT/kernel-src/$skey"
	SOURCE_TREE=$dest
	[[ -f $dest/Makefile ]] && return 0
	[[ -f $TARBALL ]] || die "kernel source tarball not found: $TARBALL"
	mkdir -p "$ROOT/kernel-src"
	tmp=$(mktemp -d "$ROOT/kernel-src/.extract-$skey.XXXXXX")
	log "extracting $TARBALL into $dest (once)"
	if ! nice -n "$NICE" tar -xf "$TARBALL" -C "$tmp" --strip-components=1; then
		rm -rf "$tmp"
		die "extracting $TARBALL failed"
	fi
	[[ -f $tmp/Makefile ]] || { rm -rf "$tmp"; die "$TARBALL has no top-level kernel Makefile"; }
	printf '%s\n' "$ident" >"$tmp/.banger-source-identity"
	mv -T "$tmp" "$dest"
}

# Build into a temporary directory under ROOT/kernel, then rename it to
# ROOT/kernel/<key>: a cache entry either exists completely or not at all.
build_kernel() {
	local key=$1 dest=$2 tmp start end rc=0
	[[ -d $dest ]] && return 0
	tmp=$(mktemp -d "$ROOT/kernel/.build-$key.XXXXXX")
	mkdir -p "$tmp/out"
	log "building the kernel in $tmp (log: $tmp/out/build.log); this takes a while"
	start=$(date +%s)
	nice -n "$NICE" "$BUILD_SCRIPT" --source "$SOURCE_TREE" --out "$tmp/out" \
		--build-dir "$tmp/objects" --jobs "$JOBS" >"$tmp/out/build.log" 2>&1 || rc=$?
	end=$(date +%s)
	if [[ $rc -ne 0 ]]; then
		cp "$tmp/out/build.log" "$ROOT/kernel/$key.failed.log" 2>/dev/null || true
		tail -n 40 "$tmp/out/build.log" >&2 || true
		rm -rf "$tmp"
		die "kernel build failed (exit $rc); full log: $ROOT/kernel/$key.failed.log"
	fi
	local tarball entry
	tarball=$(find "$tmp/out" -maxdepth 1 -name '*-x86_64.tar.gz' | head -n 1)
	entry=$(find "$tmp/out" -maxdepth 1 -name '*.catalog-entry.json' | head -n 1)
	[[ -n $tarball && -n $entry ]] || { rm -rf "$tmp"; die "build produced no artifact"; }
	tar -xzf "$tarball" -C "$tmp/out"
	{
		printf 'key %s\n' "$key"
		printf 'source %s\n' "$(cat "$SOURCE_TREE/.banger-source-identity" 2>/dev/null || echo "$SOURCE_TREE")"
		printf 'built_at %s\n' "$(date -u -d "@$end" '+%Y-%m-%dT%H:%M:%SZ')"
		printf 'build_seconds %s\n' "$((end - start))"
		printf 'jobs %s\n' "$JOBS"
		printf 'host_cpus %s\n' "$(nproc 2>/dev/null || echo '?')"
	} >"$tmp/out/build-info"
	rm -rf "$tmp/objects"
	mv -T "$tmp/out" "$dest"
	rm -rf "$tmp"
	log "built in $((end - start))s"
}

main() {
	[[ -f $BUILD_SCRIPT && -f $FRAGMENT ]] || die "run from a banger checkout (missing $BUILD_SCRIPT or $FRAGMENT)"
	if [[ $MODE == build ]]; then
		install_prereqs
	fi
	local ident key dest
	ident=$(source_identity)
	key=$(cache_key "$ident")
	if [[ $MODE == key ]]; then
		printf '%s\n' "$key"
		return 0
	fi
	mkdir -p "$ROOT/kernel" "$ROOT/kernel-src" 2>/dev/null ||
		die "cannot create the cache under $ROOT (set BANGER_CI_CACHE to a writable directory)"

	if [[ $MODE == source ]]; then
		with_lock "$ROOT/kernel-src/.lock" ensure_source_tree "$ident"
		printf '%s\n' "$SOURCE_TREE"
		return 0
	fi

	dest="$ROOT/kernel/$key"
	if [[ -f $dest/vmlinux && -f $dest/bzImage ]]; then
		log "cache hit: $dest"
		printf '%s\n' "$dest"
		return 0
	fi
	log "cache miss for key $key (source: $ident)"
	with_lock "$ROOT/kernel-src/.lock" ensure_source_tree "$ident"
	with_lock "$ROOT/kernel/.$key.lock" build_kernel "$key" "$dest"
	[[ -f $dest/vmlinux && -f $dest/bzImage ]] || die "cache entry $dest is incomplete"
	printf '%s\n' "$dest"
}

main
