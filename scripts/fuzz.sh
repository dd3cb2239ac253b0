#!/bin/sh
# Fuzz one of banger's parsers with libFuzzer for a given time.
#
#   scripts/fuzz.sh TARGET SECONDS     e.g. scripts/fuzz.sh known_hosts 300
#   scripts/fuzz.sh all SECONDS        every target in turn, SECONDS each
#   scripts/fuzz.sh list               the targets (tests/fuzz/fuzz_*.c)
#
# Builds with clang, -fsanitize=fuzzer,address,undefined (BANGER_FUZZ=ON)
# in BUILD_DIR (default ./build-fuzz), then runs the target under nice on
# a working corpus kept in BUILD_DIR/corpus/TARGET, seeded from
# tests/fuzz/corpus/TARGET (which libFuzzer only reads).  Crashes, leaks
# and timeouts are written to BUILD_DIR/artifacts/TARGET/; copy the input
# into tests/fuzz/corpus/TARGET/ once the bug is fixed.
#
# Prints one summary line per target (executions, coverage "cov:" and
# features "ft:" as libFuzzer counts them, corpus size) and appends it to
# BUILD_DIR/fuzz-results.txt.  Exit status: 0 when no target crashed.
#   FUZZ_ARGS   extra libFuzzer options (e.g. "-jobs=2" or "-max_len=65536")
set -eu
cd "$(dirname "$0")/.."
src=$(pwd)
build=${BUILD_DIR:-$src/build-fuzz}

targets() {
	for f in "$src"/tests/fuzz/fuzz_*.c; do
		n=$(basename "$f" .c)
		echo "${n#fuzz_}"
	done
}

if [ "${1:-}" = list ]; then
	targets
	exit 0
fi
if [ $# -ne 2 ]; then
	echo "usage: $0 TARGET|all SECONDS   (targets: $(targets | tr '\n' ' '))" >&2
	exit 2
fi
what=$1
secs=$2

if ! command -v clang >/dev/null 2>&1; then
	echo "fuzz.sh: clang is required (apt-get install clang libclang-rt-14-dev)" >&2
	exit 1
fi

CC=clang CXX=clang++ cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DBANGER_FUZZ=ON -DBANGER_SANITIZE=ON -DBANGER_WERROR=OFF -DBANGER_TESTS=ON >/dev/null

run_one() {
	t=$1
	if [ ! -f "$src/tests/fuzz/fuzz_$t.c" ]; then
		echo "fuzz.sh: no target '$t' (see $0 list)" >&2
		return 2
	fi
	mkdir -p "$build/logs"
	if ! nice cmake --build "$build" --target "fuzz_$t" -j2 >"$build/logs/build-$t.log" 2>&1; then
		echo "fuzz.sh: building fuzz_$t failed, see $build/logs/build-$t.log" >&2
		return 1
	fi
	work="$build/corpus/$t"
	art="$build/artifacts/$t"
	log="$build/logs/$t.log"
	mkdir -p "$work" "$art" "$(dirname "$log")"
	dict=""
	[ -f "$src/tests/fuzz/dict/$t.dict" ] && dict="-dict=$src/tests/fuzz/dict/$t.dict"
	# ASan: leaks are bugs; UBSan: stop at the first report
	rc=0
	ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	nice "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 \
		-timeout=20 -rss_limit_mb=4096 -artifact_prefix="$art/" $dict ${FUZZ_ARGS:-} \
		"$work" "$src/tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	last=$(grep -E '^#[0-9]+' "$log" | tail -1)
	cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
	corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\)\/.*/\1/p')
	status=ok
	[ "$rc" -eq 0 ] || status="CRASH (exit $rc, see $log and $art)"
	line="$(date -u +%Y-%m-%dT%H:%MZ) $t: ${secs}s, ${execs:-?} execs, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}: $status"
	echo "$line"
	echo "$line" >>"$build/fuzz-results.txt"
	return "$rc"
}

if [ "$what" = all ]; then
	failed=0
	for t in $(targets); do
		run_one "$t" || failed=1
	done
	exit "$failed"
fi
run_one "$what"
