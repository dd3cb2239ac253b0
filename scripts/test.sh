#!/bin/sh
# banger's full test run on a fresh Debian 12 machine: installs
# dependencies, builds with warnings as errors under ASan+UBSan, builds
# once more optimized (the README's build command: RelWithDebInfo, -O2,
# warnings as errors; built, not run), prepares cached artifacts, and runs
# the suite through ctest in two lanes over the sanitized build:
#   clean     every test, in an environment pinned here: umask 022,
#             LC_ALL=C, no proxy variables, HOME an empty directory
#   lived-in  the tests that could depend on the host, again, on a host
#             made to look used: a distribution kernel in /boot, a
#             read-only HOME with foreign ~/.ssh and ~/.docker content, a
#             dead proxy in the environment, umask 077, a UTF-8 locale,
#             TMPDIR on another filesystem, a stale /run/banger, a foreign
#             tap and nftables table (scripts/ci/lived-in.sh)
# Needs root (tap and loop devices, network namespaces); run as a user it
# asks sudo for root.
#   BANGER_CI_CACHE   where slow artifacts are cached (default /var/cache/banger-ci)
#   BUILD_DIR         build directory (default ./build-ci; the optimized
#                     build goes to BUILD_DIR-rel)
#   BANGER_LANES      which lanes run (default "clean lived-in")
# Tests take nothing from the host they are not given: the guest kernel
# comes from the cache (or BANGER_TEST_KERNEL, BANGER_TEST_KERNEL_DIR),
# a distribution bzImage is imported only when BANGER_TEST_BZIMAGE names it.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		exec sudo --preserve-env=BANGER_CI_CACHE,BUILD_DIR,BANGER_LANES,BANGER_TEST_KERNEL,BANGER_TEST_KERNEL_DIR,BANGER_TEST_BZIMAGE \
			"$(pwd)/scripts/test.sh" "$@"
	fi
	echo "test.sh: run as root (the root and end-to-end tiers create tap and loop devices)" >&2
	exit 1
fi
src=$(pwd)
build=${BUILD_DIR:-$src/build-ci}
export BANGER_CI_CACHE="${BANGER_CI_CACHE:-/var/cache/banger-ci}"
lanes=${BANGER_LANES:-clean lived-in}
# Artifacts (the build, the cache) get the modes a package would have,
# whatever umask the caller's shell has.
umask 022
./scripts/install-deps.sh

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DBANGER_WERROR=ON -DBANGER_SANITIZE=ON \
	-DBANGER_TESTS=ON >/dev/null
cmake --build "$build" -j"$(nproc)"

# The optimized build is the README's own build command, so the README's
# command is what this proves works: gcc's -O2 flow analysis finds what a
# -O0 build never sees (-Warray-bounds, -Wformat-truncation, -Wstringop-*),
# in the library, the programs and the tests alike.  Built only: the
# tests run on the sanitized build.  Its result joins the summary.
readme_build='cmake -S . -B build -DBANGER_WERROR=ON'
start=$(date +%s)
rc=0
if ! grep -qF -- "$readme_build" README.md; then
	echo "test.sh: README.md no longer builds with '$readme_build'; make this step and it agree" >&2
	rc=1
else
	echo "test.sh: optimized build (README: $readme_build)" >&2
	{ cmake -S . -B "$build-rel" -DBANGER_WERROR=ON >/dev/null && cmake --build "$build-rel" -j"$(nproc)"; } ||
		rc=$?
fi
status=0
[ "$rc" -eq 0 ] || status=1
summary="
test.sh: optimized build: $([ "$rc" -eq 0 ] && echo passed || echo "FAILED (exit $rc)") in $(($(date +%s) - start)) s"

# Slow artifacts (guest kernel, test images) are built once and cached
# outside the clone, keyed by a hash of their recipe.
for prep in scripts/ci/ensure-*.sh; do
	[ -x "$prep" ] || continue
	echo "test.sh: $prep" >&2
	"$prep" >/dev/null
done

for lane in $lanes; do
	start=$(date +%s)
	rc=0
	case $lane in
	clean)
		echo "test.sh: clean lane" >&2
		home=$(mktemp -d /tmp/banger-clean-home.XXXXXX)
		(cd "$build" && env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY -u ALL_PROXY -u all_proxy \
			-u no_proxy -u NO_PROXY -u TMPDIR -u LANG -u LANGUAGE -u DOCKER_CONFIG -u SSH_AUTH_SOCK \
			-u XDG_CONFIG_HOME -u XDG_STATE_HOME -u XDG_CACHE_HOME -u XDG_RUNTIME_DIR -u BANGER_HOME \
			HOME="$home" LC_ALL=C ctest --output-on-failure --timeout 1500 -j1) || rc=$?
		rm -rf "$home"
		;;
	lived-in)
		echo "test.sh: lived-in lane (scripts/ci/lived-in.sh)" >&2
		./scripts/ci/lived-in.sh "$build" || rc=$?
		;;
	*)
		echo "test.sh: unknown lane '$lane' in BANGER_LANES" >&2
		rc=2
		;;
	esac
	[ "$rc" -eq 0 ] || status=1
	summary="$summary
test.sh: lane $lane: $([ "$rc" -eq 0 ] && echo passed || echo "FAILED (exit $rc)") in $(($(date +%s) - start)) s"
done
echo "$summary" >&2
exit $status
