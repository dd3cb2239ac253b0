# shellcheck shell=sh
# Shared by the session tests: a real OpenSSH sshd on 127.0.0.1 stands in
# for the guest, so sessions run on this host through it.  Sourced; sets
# $tmp, $B (the banger CLI built with the test target hook), $ROOT (the
# sessions directory), $HELPERS (where the helper gets uploaded), and the
# check helpers.
set -u
B=${BANGER_SESSION_TEST_BIN:?}
SSHD=${SSHD:-/usr/sbin/sshd}
[ -x "$SSHD" ] || { echo "SKIP: no sshd at $SSHD"; exit 77; }
command -v ssh-keygen >/dev/null || { echo "SKIP: no ssh-keygen"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
tmp=$(mktemp -d /tmp/banger-session-XXXXXX)
chmod 755 "$tmp"
export BANGER_HOME="$tmp/state" BANGER_RUNTIME_DIR="$tmp/run"
ROOT="$tmp/sessions"
HELPERS="$tmp/helpers"
VM=sshvm
fail=0
SSHD_PID=

cleanup() {
	# Stop the sessions this test left running (their process groups),
	# then sshd: only what this test started, by pid.
	for d in "$ROOT"/*/; do
		[ -f "$d/pid" ] && [ ! -f "$d/status" ] && kill -KILL -- "-$(cat "$d/pid")" 2>/dev/null
		[ -f "$d/helper.pid" ] && kill -KILL "$(cut -d' ' -f1 "$d/helper.pid")" 2>/dev/null
	done
	[ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null && wait "$SSHD_PID" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

pass() { echo "PASS $1"; }
bad() { echo "FAIL $1"; shift; [ $# -gt 0 ] && printf '%s\n' "$@"; fail=1; }

# check NAME EXPECTED_RC CMD... (stdout in $tmp/out, stderr in $tmp/err)
check() {
	name=$1 want=$2
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	if [ "$got" -ne "$want" ]; then
		bad "$name: exit $got, wanted $want" "$(cat "$tmp/out" "$tmp/err")"
	elif grep -qE "Sanitizer|runtime error:" "$tmp/err"; then
		bad "$name: sanitizer report" "$(cat "$tmp/err")"
	else
		pass "$name"
	fi
}
has() { # has NAME PATTERN FILE
	if grep -q -- "$2" "$3"; then pass "$1"; else bad "$1: no '$2' in:" "$(cat "$3")"; fi
}
hasnt() {
	if grep -q -- "$2" "$3"; then bad "$1: unexpected '$2' in:" "$(cat "$3")"; else pass "$1"; fi
}

# until_true SECONDS CMD...: poll until CMD succeeds
until_true() {
	secs=$1
	shift
	i=0
	while [ "$i" -lt $((secs * 10)) ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_sshd() {
	d="$tmp/sshd"
	mkdir -p "$d" && chmod 700 "$d"
	ssh-keygen -q -t ed25519 -N '' -C test-host -f "$d/host_key" || exit 1
	ssh-keygen -q -t ed25519 -N '' -C test-client -f "$d/client_key" || exit 1
	cp "$d/client_key.pub" "$d/authorized_keys"
	user=$(id -un)
	[ "$(id -u)" -eq 0 ] && mkdir -p /run/sshd
	for _ in 1 2 3 4 5; do
		SSHD_PORT=$(free_port)
		cat >"$d/sshd_config" <<CFG
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $d/host_key
PidFile none
AuthorizedKeysFile $d/authorized_keys
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $user
MaxStartups 100
LogLevel ERROR
CFG
		"$SSHD" -D -e -f "$d/sshd_config" 2>>"$d/sshd.log" &
		SSHD_PID=$!
		if until_true 10 python3 -c "import socket; socket.create_connection(('127.0.0.1', $SSHD_PORT), 1)"; then
			break
		fi
		kill "$SSHD_PID" 2>/dev/null
		wait "$SSHD_PID" 2>/dev/null
		SSHD_PID=
	done
	[ -n "$SSHD_PID" ] || { echo "FAIL: sshd did not start"; cat "$d/sshd.log"; exit 1; }
	# Pinned beforehand, as banger pins a VM's key before first boot.
	echo "[127.0.0.1]:$SSHD_PORT $(cut -d' ' -f1-2 "$d/host_key.pub")" >"$d/known_hosts"
	export BANGER_TEST_SESSION_TARGET="vm=$VM host=127.0.0.1 port=$SSHD_PORT user=$user known_hosts=$d/known_hosts identity=$d/client_key root=$ROOT helper_dir=$HELPERS"
}

# The processes sshd forked for connections (not the listener itself).
sshd_children() {
	ps -o pid= --ppid "$SSHD_PID" 2>/dev/null | tr -d ' '
}

# state ID: the recorded state after a refresh
state_of() {
	"$B" session show "$1" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["state"])'
}

# no_sanitizer_report NAME FILE: a background CLI's stderr is clean
no_sanitizer_report() {
	if grep -qE "Sanitizer|runtime error:" "$2"; then bad "$1: sanitizer report" "$(cat "$2")"; else pass "$1"; fi
}
