#!/bin/sh
# ARCHITECTURE.md against the tree, so the document cannot drift from it:
#   - "libbanger has N modules" gives the number of directories in libbanger/;
#   - its module list names each of them with exactly the headers it holds;
#   - the subsystem map has a line for every module;
#   - every file name (*.c, *.h) the document mentions exists.
# Usage: check-architecture-doc.sh SOURCE_DIR
set -eu
src=$1
doc=$src/ARCHITECTURE.md
fail=0
bad() {
	echo "FAIL: $*"
	fail=1
}

modules=$(cd "$src/libbanger" && for d in */; do echo "${d%/}"; done)
count=$(echo "$modules" | wc -l)
grep -q "libbanger has $count modules" "$doc" ||
	bad "ARCHITECTURE.md does not say \"libbanger has $count modules\""

# The module list: `dir/` (`a.h`, `b.h`), possibly across line breaks.
# shellcheck disable=SC2016 # literal backquotes
list=$(tr '\n' ' ' <"$doc" | grep -oE '`[a-z]+/` \(`[a-z_]+\.h`(, `[a-z_]+\.h`)*\)' || true)
for m in $modules; do
	want=$(for h in "$src/libbanger/$m"/*.h; do [ -e "$h" ] && basename "$h"; done | sort | tr '\n' ' ')
	got=$(echo "$list" | grep -E "^\`$m/\`" | grep -oE '[a-z_]+\.h' | sort | tr '\n' ' ')
	[ "$want" = "$got" ] || bad "module $m/ holds headers '$want', ARCHITECTURE.md lists '$got'"
done
# shellcheck disable=SC2016 # literal backquotes
for m in $(echo "$list" | grep -oE '^`[a-z]+/`' | tr -d '`/'); do
	[ -d "$src/libbanger/$m" ] || bad "ARCHITECTURE.md lists a module $m/ that libbanger/ does not have"
done

# The subsystem map: a line "  <module>/   ..." per module.
for m in $modules; do
	grep -qE "^  $m/ " "$doc" || bad "the subsystem map has no line for $m/"
done

# File names (none has a blank).
# shellcheck disable=SC2013
for f in $(grep -oE '[A-Za-z0-9_./-]+\.[ch]\b' "$doc" | sort -u); do
	b=$(basename "$f")
	found=$(find -H "$src/libbanger" "$src/cli" "$src/guest" "$src/helpers" "$src/include" "$src/tests" \
		-name "$b" -print -quit)
	[ -n "$found" ] || bad "ARCHITECTURE.md names $f, which is not in the tree"
done

[ $fail -eq 0 ] && echo "ok: ARCHITECTURE.md matches the tree ($count modules)"
exit $fail
