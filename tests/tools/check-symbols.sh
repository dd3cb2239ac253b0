#!/bin/sh
# Every symbol libbanger exports starts with banger_, is listed in the
# version script, and is declared in a public header; and every symbol
# the version script lists is exported.
set -eu
lib=$1 map=$2 include=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sed 's/@.*//' | sort -u >"$tmp/exported"
grep -oE '^[[:space:]]+banger_[a-z0-9_]+;' "$map" | tr -d ' \t;' | sort -u >"$tmp/map"
grep -rhoE 'BANGER_EXTERN\([^)]*\)[[:space:]]*banger_[a-z0-9_]+' "$include" | grep -oE 'banger_[a-z0-9_]+$' | sort -u >"$tmp/headers"
fail=0
if grep -v '^banger_' "$tmp/exported"; then echo "FAIL: symbols above are exported without the banger_ prefix"; fail=1; fi
if comm -23 "$tmp/exported" "$tmp/map" | grep .; then echo "FAIL: exported but not in $map"; fail=1; fi
if comm -13 "$tmp/exported" "$tmp/map" | grep .; then echo "FAIL: in $map but not exported"; fail=1; fi
if comm -23 "$tmp/exported" "$tmp/headers" | grep .; then echo "FAIL: exported but declared in no public header"; fail=1; fi
if comm -13 "$tmp/exported" "$tmp/headers" | grep .; then echo "FAIL: declared in a header but not exported"; fail=1; fi
soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
case $soname in libbanger.so.[0-9]*) ;; *) echo "FAIL: SONAME is '$soname'"; fail=1 ;; esac
[ $fail -eq 0 ] && echo "ok: $(wc -l <"$tmp/exported") symbols, SONAME $soname"
exit $fail
