#!/bin/sh
# The command tables: every command's help comes from its entry, and a
# usage error (unknown option, missing or stray positional, no command
# after "--", a required option left out) exits 2 before banger's state
# is opened: the state directory is not even created.
set -u
bin=${BANGER_BIN:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export BANGER_HOME="$tmp/state" BANGER_RUNTIME_DIR="$tmp/run"
fail=0
pass() { echo "PASS $1"; }
bad() { echo "FAIL $1"; fail=1; }

# every noun and verb answers --help with its own usage line
nouns=$("$bin" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF && $1 != "Commands:" {print $1}')
[ -n "$nouns" ] || bad "no nouns in banger --help"
for n in $nouns; do
	verbs=$("$bin" "$n" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF && $1 != "Commands:" && $1 !~ /^-/ {print $1}')
	for v in "" $verbs; do
		path="$n${v:+ $v}"
		# shellcheck disable=SC2086
		if "$bin" $path --help >"$tmp/out" 2>&1 && head -n 1 "$tmp/out" | grep -q "^Usage: banger $path\( \|$\)"; then
			pass "help: $path"
		else
			bad "help: $path"; cat "$tmp/out"
		fi
	done
done

refused() { # refused NAME MESSAGE ARGS...
	name=$1 msg=$2
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -ne 2 ]; then
		bad "$name: exit $rc, wanted 2"; cat "$tmp/out" "$tmp/err"
	elif ! grep -q -- "$msg" "$tmp/err"; then
		bad "$name: no '$msg' in:"; cat "$tmp/err"
	else
		pass "$name"
	fi
}
refused missing-name "missing NAME" "$bin" vm show
refused stray "unexpected argument 'b'" "$bin" vm show a b
refused stray-no-args "unexpected argument 'x'" "$bin" vm list x
refused stray-version "unexpected argument 'x'" "$bin" version x
refused stray-recover "unexpected argument 'x'" "$bin" store recover x
refused no-command "missing -- CMD" "$bin" vm exec box
refused empty-command "missing -- CMD" "$bin" vm exec box --
refused no-dashdash "unexpected '--'" "$bin" vm show box -- x
refused unknown-option "unknown option '--bogus'" "$bin" session list --bogus
refused required-option "--image is required" "$bin" vm create
refused required-vmlinux "--vmlinux is required" "$bin" kernel import k
refused some "missing ID..." "$bin" session rm
refused two-of-two "missing PORT" "$bin" ssh-proxy box.vm
refused bad-value "unknown signal 'NOPE'" "$bin" session stop s1 --signal NOPE
if [ -e "$BANGER_HOME" ]; then bad "a usage error created the state"; else pass "usage errors leave no state"; fi

# and a verb that got what it needs does open it
"$bin" vm list >/dev/null 2>&1
[ -f "$BANGER_HOME/banger.db" ] && pass "vm list opened the state" || bad "vm list opened no state"
exit $fail
