#!/bin/sh
# Static analysis of libbanger/ and cli/: cppcheck, then clang-tidy with
# the checked-in .clang-tidy.  Both must be clean (exit 0); findings that
# are false positives are suppressed inline with a reason.
#
#   scripts/static-analysis.sh [BUILD_DIR]
#
# BUILD_DIR (default ./build-analysis) gets a configure-only CMake build
# for compile_commands.json.  Tools missing: exit 77 (skipped).
#   JOBS   parallel clang-tidy processes (default: nproc)
#   BANGER_CI_CACHE   when set, files clang-tidy found clean are not
#          analysed again while their preprocessed text, flags, .clang-tidy
#          and the clang-tidy version stay the same (scripts/lib/clang-tidy-cached.py)
set -u
cd "$(dirname "$0")/.."
src=$(pwd)
build=${1:-$src/build-analysis}
jobs=${JOBS:-$(nproc)}
for tool in cppcheck clang-tidy; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "SKIP: $tool is not installed (apt-get install cppcheck clang-tidy)"
		exit 77
	fi
done
files=$(ls libbanger/*/*.c cli/*.c)
status=0

echo "== cppcheck $(cppcheck --version | sed 's/Cppcheck //')"
# warning, performance and portability: the classes that are about
# correctness; "style" is a matter of taste and is left out.
if ! cppcheck -q --std=c11 --enable=warning,performance,portability --inline-suppr \
	--error-exitcode=1 --suppress=missingIncludeSystem -D_GNU_SOURCE -DBANGER_BUILDING_LIBRARY \
	-I include -j "$jobs" libbanger cli; then
	echo "cppcheck: findings above"
	status=1
fi

echo "== clang-tidy $(clang-tidy --version | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -1)"
cmake -S "$src" -B "$build" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DBANGER_TESTS=OFF \
	-DBANGER_SANITIZE=OFF -DBANGER_FUZZ=OFF >"$build.configure.log" 2>&1 ||
	{ cat "$build.configure.log"; exit 1; }
out=$(mktemp)
# one file per process; --quiet drops the "N warnings generated" chatter
# shellcheck disable=SC2086
# shellcheck disable=SC2086
python3 "$src/scripts/lib/clang-tidy-cached.py" "$src" "$build" "$jobs" $files >"$out" 2>&1
grep '^clang-tidy: .* from the cache' "$out"
if grep -q "error:\|warning:" "$out"; then
	grep -E "error:|warning:" "$out" | sort -u
	echo "clang-tidy: $(grep -cE 'error:|warning:' "$out") findings"
	status=1
fi
rm -f "$out"
[ "$status" -eq 0 ] && echo "static analysis: clean ($(echo $files | wc -w) files)"
exit $status
