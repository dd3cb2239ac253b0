#!/usr/bin/env bash
# banger kernel import of real kernels records the right format: an ELF
# vmlinux as "elf", a bzImage as "bzimage" (with the embedded ELF
# extracted for Firecracker).  Real kernels come from, in order:
#   $BANGER_TEST_KERNEL_DIR       a directory with vmlinux and/or bzImage
#   the cache of scripts/ci/ensure-kernel.sh (only read: never built here)
#   $BANGER_TEST_BZIMAGE          any bzImage, e.g. /boot/vmlinuz-6.1.0-...-cloud-amd64
#                                 (its config-* next to it is used when present)
# Nothing is taken from /boot unless named that way: what a host happens
# to have installed must not decide what the suite tests.
# With none of them the real-kernel part is skipped (exit 77); the
# refusals at the end run against crafted files either way.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=${BANGER_SOURCE_DIR:-$(cd "$here/../../.." && pwd)}
bin=${BANGER_BIN:?BANGER_BIN must point at the banger CLI}
[ "$(uname -m)" = x86_64 ] || { echo "SKIP: banger imports x86_64 kernels"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export BANGER_HOME="$tmp/state" BANGER_RUNTIME_DIR="$tmp/run"
kdir=$BANGER_HOME/kernels
fail=0
tested=0

check() { # check NAME EXPECTED_RC CMD...
	local name=$1 want=$2
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	local got=$?
	if [ "$got" -ne "$want" ]; then
		echo "FAIL $name: exit $got, wanted $want"
		sed 's/^/  out: /' "$tmp/out"
		sed 's/^/  err: /' "$tmp/err"
		fail=1
	else
		echo "PASS $name"
	fi
}
has() { # has NAME PATTERN FILE
	if grep -q -- "$2" "$3"; then
		echo "PASS $1"
	else
		echo "FAIL $1: no '$2' in:"
		sed 's/^/  /' "$3"
		fail=1
	fi
}
ok() { # ok NAME CMD...
	local name=$1
	shift
	if "$@"; then echo "PASS $name"; else echo "FAIL $name"; fail=1; fi
}
is_elf() { [ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ]; }

# import_vmlinux NAME PATH: an ELF vmlinux, recorded as "elf"
import_vmlinux() {
	local name=$1 path=$2
	check "$name-import" 0 "$bin" kernel import "$name" --vmlinux "$path"
	has "$name-import-says-elf" "imported kernel $name: x86_64 elf" "$tmp/out"
	check "$name-show" 0 "$bin" kernel show "$name" --json
	has "$name-format-elf" '"format": "elf"' "$tmp/out"
	has "$name-path" "\"kernel_path\": \"$kdir/$name/vmlinux\"" "$tmp/out"
	has "$name-source" '"source": "import"' "$tmp/out"
	has "$name-sha256" "\"sha256\": \"$(sha256sum "$path" | cut -d' ' -f1)\"" "$tmp/out"
	has "$name-version" '"version": "[0-9]' "$tmp/out"
	has "$name-firecracker-boots" "\"firecracker\": {\"path\": \"$kdir/$name/vmlinux\"" "$tmp/out"
	ok "$name-copied" cmp -s "$path" "$kdir/$name/vmlinux"
	tested=$((tested + 1))
}

# import_bzimage NAME PATH [CONFIG]: a bzImage, recorded as "bzimage", ELF extracted
import_bzimage() {
	local name=$1 path=$2 config=${3:-}
	check "$name-import" 0 "$bin" kernel import "$name" --vmlinux "$path" ${config:+--config "$config"}
	has "$name-import-says-bzimage" "imported kernel $name: x86_64 bzimage" "$tmp/out"
	check "$name-show" 0 "$bin" kernel show "$name" --json
	has "$name-format-bzimage" '"format": "bzimage"' "$tmp/out"
	has "$name-path" "\"kernel_path\": \"$kdir/$name/bzImage\"" "$tmp/out"
	has "$name-version" '"version": "[0-9]' "$tmp/out"
	has "$name-qemu-boots" "\"qemu\": {\"path\": \"$kdir/$name/bzImage\"" "$tmp/out"
	has "$name-firecracker-boots-extracted" "\"firecracker\": {\"path\": \"$kdir/$name/vmlinux\"" "$tmp/out"
	ok "$name-extracted-is-elf" is_elf "$kdir/$name/vmlinux"
	if [ -n "$config" ]; then
		ok "$name-config-copied" cmp -s "$config" "$kdir/$name/config"
	fi
	tested=$((tested + 1))
}

# ---- the kernel scripts/make-generic-kernel.sh builds (cache only) ----
find_built_kernel() {
	if [ -n "${BANGER_TEST_KERNEL_DIR:-}" ]; then
		echo "$BANGER_TEST_KERNEL_DIR"
		return
	fi
	local root=${BANGER_CI_CACHE:-/var/cache/banger-ci} key
	# --key computes the cache key without installing or building anything
	key=$("$src/scripts/ci/ensure-kernel.sh" --key 2>/dev/null) || key=
	if [ -n "$key" ] && [ -f "$root/kernel/$key/vmlinux" ]; then
		echo "$root/kernel/$key"
		return
	fi
	# an older complete entry is still a real kernel
	local d
	for d in "$root"/kernel/*/; do
		if [ -f "$d/vmlinux" ] && [ -f "$d/bzImage" ]; then
			echo "${d%/}"
			return
		fi
	done
}
built=$(find_built_kernel)
if [ -n "$built" ]; then
	echo "using the generic kernel in $built"
	if [ -f "$built/vmlinux" ]; then
		import_vmlinux generic-elf "$built/vmlinux"
		# CONFIG_PVH=y: QEMU boots the same ELF
		has generic-elf-qemu-boots-elf "\"qemu\": {\"path\": \"$kdir/generic-elf/vmlinux\"" "$tmp/out"
	fi
	if [ -f "$built/bzImage" ]; then
		import_bzimage generic-bz "$built/bzImage" "$( [ -f "$built/config" ] && echo "$built/config")"
	fi
else
	echo "no generic kernel in the cache of scripts/ci/ensure-kernel.sh (not building one here)"
fi

# ---- distribution bzImages ----
for bz in ${BANGER_TEST_BZIMAGE:-}; do
	[ -f "$bz" ] || continue
	n=dist-$(basename "$bz" | tr -c 'A-Za-z0-9._\n-' '_' | cut -c1-40)
	cfg=$(dirname "$bz")/config-$(basename "$bz" | sed 's/^vmlinuz-//')
	[ -f "$cfg" ] || cfg=
	echo "using the distribution kernel $bz"
	import_bzimage "$n" "$bz" "$cfg"
done

# ---- refusals (crafted inputs; always run) ----
printf 'not a kernel at all\n' >"$tmp/notakernel"
check refuse-not-a-kernel 2 "$bin" kernel import junk --vmlinux "$tmp/notakernel"
has refuse-not-a-kernel-says "neither an ELF vmlinux" "$tmp/err"
check refuse-missing-file 3 "$bin" kernel import junk --vmlinux "$tmp/nonexistent"
check refuse-directory 2 "$bin" kernel import junk --vmlinux "$tmp"
check refuse-bad-name 2 "$bin" kernel import ../x --vmlinux /bin/true
check refuse-no-vmlinux 2 "$bin" kernel import junk
check import-true 0 "$bin" kernel import small --vmlinux /bin/true --initrd "$tmp/notakernel"
check refuse-existing 6 "$bin" kernel import small --vmlinux /bin/true
check refuse-missing-initrd 3 "$bin" kernel import other --vmlinux /bin/true --initrd "$tmp/nonexistent"
ok refusals-left-nothing test -z "$(find "$kdir" -mindepth 1 -maxdepth 1 \( -name junk -o -name other -o -name '.staging-*' -o -name '.trash-*' \))"
check list-after-refusals 0 "$bin" kernel list --json
ok list-has-no-refused test "$(grep -c '"name"' "$tmp/out")" -eq $((tested + 1))

if [ "$tested" -eq 0 ]; then
	echo "SKIP: no real kernel found (no ensure-kernel.sh cache, BANGER_TEST_KERNEL_DIR and BANGER_TEST_BZIMAGE unset)"
	[ "$fail" -eq 0 ] && exit 77
fi
exit $fail
