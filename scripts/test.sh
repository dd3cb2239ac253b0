#!/bin/sh
# banger's full test run on a fresh Debian 12 machine, as root:
# installs dependencies, builds with warnings as errors under ASan+UBSan,
# prepares cached artifacts, and runs every test tier through ctest.
#   BANGER_CI_CACHE   where slow artifacts are cached (default /var/cache/banger-ci)
#   BUILD_DIR         build directory (default ./build-ci)
set -eu
cd "$(dirname "$0")/.."
src=$(pwd)
build=${BUILD_DIR:-$src/build-ci}
export BANGER_CI_CACHE="${BANGER_CI_CACHE:-/var/cache/banger-ci}"

if [ "$(id -u)" -ne 0 ]; then
	echo "test.sh: run as root (the root and end-to-end tiers create tap and loop devices)" >&2
	exit 1
fi
./scripts/install-deps.sh

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DBANGER_WERROR=ON -DBANGER_SANITIZE=ON \
	-DBANGER_TESTS=ON >/dev/null
cmake --build "$build" -j"$(nproc)"

# Slow artifacts (guest kernel, test images) are built once and cached
# outside the clone, keyed by a hash of their recipe.
for prep in scripts/ci/ensure-*.sh; do
	[ -x "$prep" ] || continue
	echo "test.sh: $prep" >&2
	"$prep" >/dev/null
done

cd "$build"
ctest --output-on-failure --timeout 1500 -j1
