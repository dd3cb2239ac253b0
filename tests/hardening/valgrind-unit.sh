#!/bin/sh
# The unit tier under valgrind: a separate build without sanitizers
# (valgrind and ASan do not mix), every unit test binary run under
#   valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect
#            --error-exitcode=1
# and the fuzz seed corpora replayed the same way (fewer mutations).
#
#   valgrind-unit.sh SOURCE_DIR BUILD_DIR [TEST_REGEX]
#
# Exit 0 when every binary ran clean, 1 otherwise, 77 (skip) without
# valgrind.  Definite and indirect leaks fail; "still reachable" memory
# (libraries' one-time global state: OpenSSL, libcurl, libssh2) does not.
set -u
src=$1
build=$2
only=${3:-}
if ! command -v valgrind >/dev/null 2>&1; then
	echo "SKIP: valgrind is not installed"
	exit 77
fi
cc=${CC:-cc}
cmake -S "$src" -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Debug -DBANGER_SANITIZE=OFF \
	-DBANGER_WERROR=ON -DBANGER_TESTS=ON -DBANGER_FUZZ=OFF >"$build.configure.log" 2>&1 ||
	{ cat "$build.configure.log"; exit 1; }

units=$(ls "$src"/tests/unit/test_*.c | sed 's|.*/||; s|\.c$||')
fuzz=$(ls "$src"/tests/fuzz/fuzz_*.c | sed 's|.*/||; s|\.c$|_replay|')
targets=""
for t in $units $fuzz; do
	if [ -z "$only" ] || echo "$t" | grep -Eq "$only"; then
		targets="$targets $t"
	fi
done
# shellcheck disable=SC2086
nice cmake --build "$build" -j"$(nproc)" --target $targets >"$build.build.log" 2>&1 ||
	{ tail -50 "$build.build.log"; exit 1; }

supp=$(dirname "$0")/valgrind.supp
vg="valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect --error-exitcode=1 --track-fds=no --child-silent-after-fork=yes"
[ -f "$supp" ] && vg="$vg --suppressions=$supp"

export BANGER_SOURCE_DIR="$src" BANGER_BUILD_DIR="$build"
failed=0
ran=0
for t in $targets; do
	bin=$(find "$build/tests" -type f -name "$t" -perm -u+x | head -1)
	if [ -z "$bin" ]; then
		echo "valgrind: $t was not built"
		failed=1
		continue
	fi
	case $t in
	fuzz_*)
		name=${t#fuzz_}
		name=${name%_replay}
		set -- -m 20 "$src/tests/fuzz/corpus/$name"
		;;
	*) set -- ;;
	esac
	start=$(date +%s)
	# cmocka's own output is kept only on failure
	out=$($vg "$bin" "$@" 2>&1)
	rc=$?
	ran=$((ran + 1))
	if [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]; then
		echo "ok   $t ($(($(date +%s) - start)) s)"
	else
		echo "FAIL $t (exit $rc)"
		echo "$out" | tail -60
		failed=1
	fi
done
echo "valgrind: $ran binaries, $([ $failed -eq 0 ] && echo clean || echo FAILURES)"
exit $failed
