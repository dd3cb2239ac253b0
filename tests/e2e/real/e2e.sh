#!/usr/bin/env bash
# End to end on a real guest: inside a network namespace this script
# creates, start a registry and a kernel catalog on the namespace's
# loopback, pull both with banger, boot a Debian guest under QEMU (TCG
# here), reach it over SSH with a verified key, kill things behind
# banger's back, and delete it without a trace -- checked against the
# kernel and the files, not banger's own listing.
#
#   BANGER_BIN        the banger CLI (default: build-ci/cli/banger)
#   BANGER_CI_CACHE   cached kernel and test images (scripts/ci/ensure-*.sh)
#   E2E_KEEP=1        keep the work directory for inspection
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BANGER=${BANGER_BIN:-$SRC/build-ci/cli/banger}
[[ $(id -u) -eq 0 ]] || { echo "SKIP: the end-to-end test needs root (netns, tap, loop)"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 not installed"; exit 77; }

WORK=$(mktemp -d /tmp/banger-e2e.XXXXXX)
export HOME=$WORK/home
mkdir -p "$HOME/.ssh"
# shellcheck source=../../../scripts/lib/lab.sh
. "$SRC/scripts/lib/lab.sh"
PIDS=()
NS=  # set by lab_up; lab_down tolerates it empty
export NS
T0=$(date +%s.%N)
STEP_T=$T0
declare -A FIGURES=()

log() { printf '[e2e %6.1fs] %s\n' "$(echo "$(date +%s.%N) - $T0" | bc)" "$*"; }
step() { STEP_T=$(date +%s.%N); log "STEP $*"; }
took() { # took NAME -> prints and records the step's duration
	local d
	d=$(echo "$(date +%s.%N) - $STEP_T" | bc)
	FIGURES[$1]=$d
	log "  $1 took ${d}s"
}
fail() { log "FAIL: $*"; exit 1; }
cleanup() {
	local rc=$?
	set +e
	log "cleanup (exit $rc)"
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	lab_down
	if [[ ${E2E_KEEP:-0} == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
	exit "$rc"
}
trap cleanup EXIT INT TERM

# ---- kernel truth ----
taps() { in_ns ip -o link show | awk -F': ' '{print $2}' | grep -c '^bg' || true; }
vmm_procs() { local n=0 p; for p in $(pgrep -f "$BANGER_RUNTIME_DIR/" || true); do [[ $p != "$$" ]] && n=$((n + 1)); done; echo $n; }
vmm_pid_of() { pgrep -f "$BANGER_RUNTIME_DIR/$1.api" | head -1; }
loops() { grep -ls "^$BANGER_HOME/" /sys/block/loop*/loop/backing_file 2>/dev/null | wc -l; }
vm_field() { banger vm show "$1" --json | python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]] or '')" "$2"; }

# ---- 0-1. cached artifacts; the namespace, a registry, a catalog server ----
step "lab: namespace, registry with the test images, kernel catalog"
lab_up
took setup

# ---- 2. kernel pull ----
step "banger kernel pull $KNAME"
banger kernel pull "$KNAME"
banger kernel show "$KNAME" | grep -q elf || fail "kernel not recorded as elf"
took kernel_pull

# ---- 3. image pull ----
step "banger image pull 127.0.0.1:5000/test/debian:bookworm"
banger image pull 127.0.0.1:5000/test/debian:bookworm --name debian-bookworm --kernel-ref "$KNAME"
took image_pull
banger image pull 127.0.0.1:5000/test/debian-plain:bookworm --name debian-plain --kernel-ref "$KNAME" >/dev/null

# ---- 4. create: returns when SSH answers with the pinned key ----
step "banger vm create --image debian-bookworm --name testbox"
banger vm create --image debian-bookworm --name testbox
took create_to_ssh_ready
IP=$(vm_field testbox ip)
PIN_BEFORE=$(grep "^testbox.vm " "$BANGER_HOME/ssh/known_hosts") || fail "no pin for testbox.vm"
[[ $(taps) -eq 1 && $(vmm_procs) -eq 1 ]] || fail "expected one tap and one VMM"

# ---- 5. ssh: uid 0, the generic kernel, the work disk on /root ----
step "banger vm ssh testbox -- id; uname -r; ...; findmnt /root"
OUT=$(banger vm ssh testbox -- "id; uname -r; systemctl is-active banger-vsock-agent || true; findmnt -n -o SOURCE /root" 2>&1) || fail "vm ssh: $OUT"
echo "$OUT" | sed 's/^/    guest: /'
grep -q '^uid=0(root)' <<<"$OUT" || fail "not uid 0"
grep -qx "$KVER" <<<"$OUT" || fail "kernel release is not $KVER"
grep -qx '/dev/vdb' <<<"$OUT" || fail "work disk not mounted on /root"
if [[ -e /dev/vhost-vsock ]]; then
	grep -qx active <<<"$OUT" || fail "vsock agent not active"
else
	log "  no /dev/vhost-vsock on this host: QEMU guests have no vsock device, so the agent's state is not checked"
fi
took ssh

step "plain ssh root@testbox.vm through banger ssh-config"
banger ssh-config install >/dev/null
OUT=$(in_ns env PATH="$(dirname "$BANGER"):$PATH" ssh -F "$HOME/.ssh/config" -o BatchMode=yes root@testbox.vm hostname 2>&1) || fail "plain ssh: $OUT"
[[ $OUT == testbox ]] || fail "plain ssh answered '$OUT'"
took plain_ssh

step "banger vm run --rm -- cat /etc/os-release"
OUT=$(banger vm run --rm --image debian-bookworm --name runbox -- cat /etc/os-release 2>/dev/null) || fail "vm run"
grep -q 'VERSION_CODENAME=bookworm' <<<"$OUT" || fail "vm run output: $OUT"
banger vm show runbox >/dev/null 2>&1 && fail "vm run --rm left runbox behind"
took vm_run

# ---- 5b. guest sessions: survive disconnects, reattach, resume ----
# shellcheck source=session-step.sh
. "$SRC/tests/e2e/real/session-step.sh"
e2e_session_step testbox

# ---- 6. container-style image without systemd: first-boot says --nat ----
step "image without systemd and without --nat"
if banger vm create --image debian-plain --name plainbox --keep-on-failure --timeout 180 2>"$WORK/plain.err"; then
	fail "plainbox came up without network to install systemd"
fi
grep -q -- '--nat' "$WORK/plain.err" || fail "error does not mention --nat: $(cat "$WORK/plain.err")"
LAST=$(vm_field plainbox last_error)
grep -q -- '--nat' <<<"$LAST" || fail "last_error does not mention --nat: $LAST"
log "  last_error: $LAST"
banger vm delete plainbox
took plain_image

# ---- 7. kill -9 banger in the middle of vm create ----
step "kill -9 banger during vm create of a second VM"
# not through the in_ns function: backgrounding a function forks a
# subshell, and $! would be the subshell, not banger
ip netns exec "$NS" "$BANGER" vm create --image debian-bookworm --name second >"$WORK/second.log" 2>&1 &
CPID=$!
# Kill it while it is making the disks: the VM is recorded ("creating")
# and its directory exists, nothing has booted yet.
for _ in $(seq 3000); do
	# a VM directory in place (not the staging one it is made under)
	[[ $(find "$BANGER_HOME/vms" -mindepth 1 -maxdepth 1 -not -name '.*' | wc -l) -ge 2 ]] && break
	sleep 0.005
done
kill -9 "$CPID"; wait "$CPID" 2>/dev/null || true
log "  killed banger at: $(tail -1 "$WORK/second.log")"
# Opening a context removes nothing; the explicit reconcile finishes it.
banger vm list
banger vm reconcile
STATE=$(banger vm show second --json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['state'])" || echo gone)
log "  second after vm reconcile: $STATE"
[[ $STATE == stopped || $STATE == gone || $STATE == running ]] || fail "second left in state $STATE"
if [[ $STATE == gone ]]; then
	[[ $(find "$BANGER_HOME/vms" -mindepth 1 -maxdepth 1 | wc -l) -eq 1 ]] || fail "half-made VM dir left"
fi
if [[ $STATE != running ]]; then
	[[ $(taps) -eq 1 && $(vmm_procs) -eq 1 ]] || fail "leaked tap or VMM after the kill (taps $(taps), vmm $(vmm_procs))"
fi
[[ $(loops) -eq 0 ]] || fail "leaked loop device"
if [[ $STATE != gone ]]; then banger vm delete --force second; fi
[[ $(taps) -eq 1 && $(vmm_procs) -eq 1 && $(loops) -eq 0 ]] || fail "objects left after deleting second"
took kill_during_create

# ---- 8. the VMM dies behind banger's back ----
step "kill the VMM of testbox behind banger's back"
ID=$(vm_field testbox id)
kill -9 "$(vmm_pid_of "$ID")"
sleep 0.5
banger vm list | grep -E '^testbox +stopped' || fail "testbox not shown stopped"
[[ $(taps) -eq 0 && $(vmm_procs) -eq 0 ]] || fail "kernel objects left after the VMM died"
banger vm start testbox
[[ $(grep "^testbox.vm " "$BANGER_HOME/ssh/known_hosts") == "$PIN_BEFORE" ]] || fail "pin changed across restart"
banger vm ssh testbox -- true || fail "ssh after restart"
took restart_after_kill

# ---- 8b. the database is lost while testbox runs ----
step "empty banger.db while testbox runs; unrelated commands; store recover"
VMM_PID=$(vmm_pid_of "$ID")
: >"$BANGER_HOME/banger.db"
rm -f "$BANGER_HOME/banger.db-wal" "$BANGER_HOME/banger.db-shm"
for cmd in "image list" "vm list" "gc"; do
	rc=0
	# shellcheck disable=SC2086
	banger $cmd >/dev/null 2>"$WORK/lost.err" || rc=$?
	[[ $rc -eq 8 ]] || fail "'banger $cmd' on an emptied store exited $rc: $(cat "$WORK/lost.err")"
done
log "  $(head -c 200 "$WORK/lost.err")..."
kill -0 "$VMM_PID" || fail "the VMM of testbox was killed after the database was emptied"
[[ -s $BANGER_HOME/vms/$ID/work.img && $(taps) -eq 1 ]] || fail "testbox's disk or tap is gone"
banger store recover
[[ $(vm_field testbox state) == running ]] || fail "testbox not running after recovery"
banger vm ssh testbox -- true || fail "ssh after recovery (pinned key)"
banger vm stop testbox
banger vm start testbox
banger vm ssh testbox -- true || fail "ssh after a boot of the recovered VM"
[[ $(grep "^testbox.vm " "$BANGER_HOME/ssh/known_hosts") == "$PIN_BEFORE" ]] || fail "pin changed across recovery"
took store_recovery

# ---- 9. the guest's host key changes: possible MITM ----
step "replace the guest's host key"
banger vm exec testbox -- sh -c 'rm -f /etc/ssh/ssh_host_ed25519_key*; ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key && (systemctl restart ssh || systemctl restart sshd)' || true
sleep 1
if banger vm ssh testbox -- true 2>"$WORK/mitm.err"; then fail "ssh accepted a changed host key"; fi
grep -q 'possible MITM' "$WORK/mitm.err" || fail "no MITM error: $(cat "$WORK/mitm.err")"
log "  $(head -1 "$WORK/mitm.err")"
banger known-hosts forget testbox.vm "$IP"
banger vm ssh testbox -- true || fail "ssh after forget did not re-pin"
[[ $(grep "^testbox.vm " "$BANGER_HOME/ssh/known_hosts") != "$PIN_BEFORE" ]] || fail "pin not replaced"
took mitm

# ---- 10. delete: nothing left ----
step "banger vm delete testbox"
VMDIR=$BANGER_HOME/vms/$ID
banger vm delete --force testbox
took delete
[[ $(vmm_procs) -eq 0 ]] || fail "VMM process left"
[[ $(taps) -eq 0 ]] || fail "tap left"
[[ $(loops) -eq 0 ]] || fail "loop device left"
[[ ! -e $VMDIR ]] || fail "VM dir left"
banger vm show testbox >/dev/null 2>&1 && fail "row left"
! grep -qE "^(testbox\.vm|$IP) " "$BANGER_HOME/ssh/known_hosts" || fail "pin left"

log "PASS"
printf 'FIGURES'; for k in "${!FIGURES[@]}"; do printf ' %s=%ss' "$k" "${FIGURES[$k]}"; done; echo
