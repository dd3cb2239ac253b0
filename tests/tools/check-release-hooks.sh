#!/bin/sh
# A build configured for installing (-DBANGER_TESTS=OFF) carries none of
# the fault-injection hooks: no $BANGER_FAULT (which SIGKILLs the calling
# process), $BANGER_FAULT_FAIL or $BANGER_TEST_FAIL_ALLOC in libbanger.so or
# libbanger.a.  The test build's library is the positive control: the same
# search must find them there, or the search proves nothing.
# Usage: check-release-hooks.sh SOURCE_DIR WORK_DIR TEST_BUILD_LIBRARY
# WORK_DIR is kept between runs, so a rerun rebuilds only what changed;
# -O0 without sanitizers keeps the first build short.
set -eu
src=$1 work=$2 testlib=$3
names='BANGER_FAULT|BANGER_FAULT_FAIL|BANGER_TEST_FAIL_ALLOC'
if ! strings -a "$testlib" | grep -qE "$names"; then
	echo "FAIL: the test build's $testlib has no hook names: the check cannot see them"
	exit 1
fi
cmake -S "$src" -B "$work" -DBANGER_TESTS=OFF -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG=-O0 \
	-DBANGER_SANITIZE=OFF -DBANGER_FUZZ=OFF >/dev/null
cmake --build "$work" --target banger banger_static -j2 >/dev/null
if grep -rq 'BANGER_TEST_HOOKS' "$work/libbanger/CMakeFiles/banger_objects.dir/flags.make"; then
	echo "FAIL: a -DBANGER_TESTS=OFF build compiles the library with BANGER_TEST_HOOKS"
	exit 1
fi
fail=0
for lib in "$work"/libbanger/libbanger.so "$work"/libbanger/libbanger.a; do
	if strings -a "$lib" | grep -E "$names"; then
		echo "FAIL: $lib contains the test hook names above"
		fail=1
	else
		echo "ok: $(basename "$lib") has no test hooks"
	fi
done
exit $fail
