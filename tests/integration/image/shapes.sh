#!/usr/bin/env bash
# Images whose trouble is their shape, imported from an OCI layout built by
# shapes.py: 20,000 small files, 30,000 empty directories and a 20,000-link
# symlink farm must build (their inodes and directory blocks come from the
# entry count, not the bytes) and read back clean with e2fsck -fn, every
# entry there; a layer of chained symlinks that would nest 80,000
# directories must fail cleanly: an error naming the depth limit, no
# crash, nothing left under images/.  Exit 77: skip.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=${BANGER_BIN:?BANGER_BIN must point at the banger CLI}
PY=${PYTHON:-python3}

for tool in "$PY" mkfs.ext4 e2fsck debugfs resize2fs; do
	if ! command -v "$tool" >/dev/null; then
		echo "skip: $tool is not installed"
		exit 77
	fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/banger-shapes-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export BANGER_HOME=$WORK/home BANGER_RUNTIME_DIR=$WORK/run
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$WORK/sanitizer"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$WORK/sanitizer"

passed=0 failed=0
check() { # check NAME COMMAND...
	local name=$1
	shift
	if "$@"; then
		echo "ok - $name"
		passed=$((passed + 1))
	else
		echo "not ok - $name"
		failed=$((failed + 1))
		return 1
	fi
}

"$PY" "$HERE/shapes.py" "$WORK/fx" || { echo "shapes.py failed"; exit 1; }
LAYOUT=$WORK/fx/layout

rootfs_of() { "$BIN" image show "$1" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["rootfs"])'; }
imported() { # imported TAG NAME [options]: the import succeeds
	local tag=$1 name=$2
	shift 2
	"$BIN" image import "$LAYOUT:$tag" --name "$name" "$@" >"$WORK/out.txt" 2>&1 ||
		{ tail -n 5 "$WORK/out.txt"; return 1; }
}
# fsck_counts NAME ENTRIES: e2fsck -fn clean, at least ENTRIES inodes in use
fsck_counts() {
	local img used
	img=$(rootfs_of "$1") || return 1
	e2fsck -fn "$img" >"$WORK/fsck.txt" 2>&1 || { tail -n 20 "$WORK/fsck.txt"; return 1; }
	used=$(sed -n 's|.*: \([0-9]*\)/[0-9]* files.*|\1|p' "$WORK/fsck.txt")
	[[ -n $used && $used -ge $2 ]] || { echo "# $used inodes in use, want $2 or more"; return 1; }
}
has_paths() { # has_paths NAME PATH...
	local img=$1 p
	img=$(rootfs_of "$img") || return 1
	shift
	for p in "$@"; do
		debugfs -R "stat $p" "$img" 2>/dev/null | grep -q '^Inode:' || { echo "# $p missing"; return 1; }
	done
}
# refused TAG TEXT: fails (no signal) saying TEXT, leaves nothing.  The
# fixed size gives a deep tree room to be written (banger 39d8979's
# recursive writer went 80,000 levels deep there and crashed, leaving a
# 1 GiB .rootfs.tmp-*).
refused() {
	local tag=$1 text=$2 rc left
	"$BIN" image import "$LAYOUT:$tag" --name "$tag" --no-patch --size 1G >"$WORK/out.txt" 2>&1
	rc=$?
	if [[ $rc -eq 0 || $rc -ge 128 ]] || ! grep -q -- "$text" "$WORK/out.txt"; then
		echo "# exit $rc"
		tail -n 3 "$WORK/out.txt" | cut -c1-300
		return 1
	fi
	left=$(find "$BANGER_HOME/images" -mindepth 1 2>/dev/null | grep "/$tag\(/\|$\)")
	[[ -z $left ]] || { echo "# left behind: $left"; return 1; }
	! "$BIN" image show "$tag" >/dev/null 2>&1
}

while IFS=$'\t' read -r tag outcome entries detail; do
	case $outcome in
	ok)
		# shellcheck disable=SC2086 # detail is a list of paths
		check "$tag: builds" imported "$tag" "$tag" --no-patch &&
			check "$tag: fsck clean, $entries entries" fsck_counts "$tag" "$entries" &&
			check "$tag: entries present" has_paths "$tag" $detail
		;;
	fail)
		check "$tag: refused cleanly ($detail)" refused "$tag" "$detail"
		;;
	esac
done <"$WORK/fx/expect.tsv"

# the same through the patch (which adds its files after the count)
check "dirs patched: builds" imported dirs dirs-p &&
	check "dirs patched: fsck clean" fsck_counts dirs-p 30000 &&
	check "dirs patched: first-boot init and entries" has_paths dirs-p /usr/local/libexec/banger-first-boot /d29/dir29999

check "no half-written images" bash -c "! find '$BANGER_HOME' -name '.rootfs.tmp-*' | grep -q ."
if compgen -G "$WORK/sanitizer.*" >/dev/null; then
	head -n 30 "$WORK"/sanitizer.*
	check "no sanitizer reports from banger" false
fi
echo "# $passed passed, $failed failed"
[[ $failed -eq 0 ]]
