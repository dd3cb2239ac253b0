#!/bin/sh
# CLI frame: version, help, exit codes, vm list over a real store, and a
# doctor that tells the truth about this host.
set -u
bin=${BANGER_BIN:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export BANGER_HOME="$tmp/state" BANGER_RUNTIME_DIR="$tmp/run"
fail=0
check() { # check NAME EXPECTED_RC CMD...
	name=$1 want=$2
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	if [ "$got" -ne "$want" ]; then
		echo "FAIL $name: exit $got, wanted $want"; cat "$tmp/out" "$tmp/err"; fail=1
	else
		echo "PASS $name"
	fi
}
has() { # has NAME PATTERN FILE
	if grep -q -- "$2" "$3"; then echo "PASS $1"; else echo "FAIL $1: no '$2' in output:"; cat "$3"; fail=1; fi
}

check version 0 "$bin" --version
has version-text "^banger [0-9]" "$tmp/out"
check help 0 "$bin" --help
has help-lists-vm "vm " "$tmp/out"
has help-exit-codes "Exit codes" "$tmp/out"
check no-args 2 "$bin"
check unknown-noun 2 "$bin" frobnicate
has unknown-named "unknown command 'frobnicate'" "$tmp/err"
check vm-help 0 "$bin" vm --help
check vm-list-help 0 "$bin" vm list --help
check vm-unknown-verb 2 "$bin" vm explode
check vm-list-bad-opt 2 "$bin" vm list --bogus
check vm-list 0 "$bin" vm list
has vm-list-header "NAME.*STATE.*IP" "$tmp/out"
check vm-list-json 0 "$bin" vm list --json
python3 -c 'import json,sys; assert json.load(open(sys.argv[1])) == []' "$tmp/out" && echo "PASS vm-list-json-valid" || { echo "FAIL vm-list-json-valid"; fail=1; }
check vm-show-missing 3 "$bin" vm show ghost
has vm-show-missing-msg "ghost" "$tmp/err"
test -f "$BANGER_HOME/banger.db" && echo "PASS store-created" || { echo "FAIL store-created"; fail=1; }

# configuration: every value checked at load, with file:line; a file named
# with --config must exist (the default path may be absent, as here)
check config-missing 3 "$bin" --config "$tmp/nope.conf" vm list
has config-missing-msg "nope.conf does not exist" "$tmp/err"
printf 'vcpus = 2\nvmm = kvmtool\n' >"$tmp/enum.conf"
check config-bad-enum 2 "$bin" --config "$tmp/enum.conf" vm list
has config-bad-enum-line "enum.conf:2: vmm = 'kvmtool'" "$tmp/err"
printf 'vcpus = many\n' >"$tmp/int.conf"
check config-bad-int 2 "$bin" --config "$tmp/int.conf" vm list
has config-bad-int-line "int.conf:1: vcpus = 'many'" "$tmp/err"
printf 'vmm = qemu\n\000vcpus = 4\n' >"$tmp/nul.conf"
check config-nul 2 "$bin" --config "$tmp/nul.conf" vm list
has config-nul-line "nul.conf:2: NUL byte" "$tmp/err"
# text from a file, an image or a guest reaches the terminal spelled out
printf '\033]0;owned\007\033[2J = 1\n' >"$tmp/esc.conf"
check config-escape 2 "$bin" --config "$tmp/esc.conf" vm list
has config-escape-visible 'unknown key .\\x1b]0;owned\\x07\\x1b\[2J' "$tmp/err"
if LC_ALL=C grep -q "$(printf '\033')" "$tmp/err"; then
	echo "FAIL config-escape-raw: a raw ESC reached stderr"; fail=1
else
	echo "PASS config-escape-raw"
fi

# doctor: exit 0 when nothing is outright missing here; check it says what the host really has
"$bin" doctor >"$tmp/out" 2>"$tmp/err"
"$bin" doctor --json >"$tmp/json" 2>&1
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert {c["name"] for c in d} >= {"kvm","firecracker","qemu","device-mapper","tun","loop","nft","overlay","state-dir","ssh-dir"}' "$tmp/json" \
	&& echo "PASS doctor-json" || { echo "FAIL doctor-json"; cat "$tmp/json"; fail=1; }
if [ -e /sys/module/kvm_pvm ] && ! grep -qwE 'vmx|svm' /proc/cpuinfo; then
	has doctor-kvm-pvm "kvm_pvm, which boots no ordinary guest kernel" "$tmp/out"
fi
if [ ! -e /dev/mapper/control ]; then
	has doctor-no-dm "no device-mapper" "$tmp/out"
fi
if ! command -v firecracker >/dev/null 2>&1; then
	has doctor-no-fc "firecracker not found" "$tmp/out"
fi
exit $fail
