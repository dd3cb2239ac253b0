#!/bin/sh
# Install the build into a temporary prefix, then build and run the C
# example against the *installed* library via pkg-config and via
# find_package(banger), and run the Python ctypes example.
# Usage: check-install.sh BUILD_DIR SOURCE_DIR [EXTRA_CFLAGS]
set -eu
build=$1 src=$2 extra=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(find "$tmp/prefix" -name libbanger.pc -printf '%h\n' | head -1)
libdir=${libdir%/pkgconfig}
export PKG_CONFIG_PATH="$libdir/pkgconfig"
pkg-config --exists libbanger
# The .pc file names the configured prefix; point it at the temporary one.
cflags=$(pkg-config --define-variable=prefix="$tmp/prefix" --cflags --libs libbanger)
echo "pkg-config --cflags --libs libbanger: $cflags"
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror $extra "$src/examples/c/list_vms.c" $cflags -o "$tmp/list_vms"
export BANGER_HOME="$tmp/home" BANGER_RUNTIME_DIR="$tmp/run"
LD_LIBRARY_PATH="$libdir" "$tmp/list_vms" | grep -q "VM(s)"
echo "ok: C example built with pkg-config runs"

cmake -S "$src/examples/c" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
	-DCMAKE_C_FLAGS="$extra" -DCMAKE_EXE_LINKER_FLAGS="$extra" >/dev/null
cmake --build "$tmp/cm" >/dev/null
LD_LIBRARY_PATH="$libdir" "$tmp/cm/list_vms" | grep -q "VM(s)"
echo "ok: C example built with find_package(banger) runs"

preload=
case $extra in *sanitize=address*) preload=$(cc -print-file-name=libasan.so) ;; esac
LD_PRELOAD=$preload ASAN_OPTIONS=detect_leaks=0 \
	python3 "$src/examples/python/list_vms.py" "$libdir/libbanger.so.0" | grep -q "VM(s)"
echo "ok: Python ctypes example runs"
for h in banger.h common.h errors.h context.h; do
	test -f "$tmp/prefix/include/banger/$h"
done
test -x "$tmp/prefix/bin/banger"
echo "ok: headers and CLI installed"
