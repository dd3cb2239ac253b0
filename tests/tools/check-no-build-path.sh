#!/bin/sh
# An artifact that gets installed must not name the build directory: the
# library finds the build tree's guest files without it (libbanger/layout,
# bg_guest_files), and a build path in a package is neither reproducible
# nor of any use on another machine.  Debug information does name it, so
# the check runs on copies stripped of it, as a package ships them.
#   check-no-build-path.sh BUILD_DIR FILE...
set -eu
build=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for f in "$@"; do
	objcopy --strip-debug "$f" "$tmp/stripped"
	if grep -aqF "$build" "$tmp/stripped"; then
		echo "$f names the build directory $build:" >&2
		strings -a "$tmp/stripped" | grep -F "$build" | head -n 5 >&2
		status=1
	fi
done
exit $status
