#!/usr/bin/env bash
# The VM lifecycle through the CLI, with the Firecracker API fake as
# `firecracker`, inside a network namespace this script creates:
# kernel import -> image import -> vm create -> list/show/stats/logs ->
# stop -> set -> start -> restart -> delete, checking the kernel (links,
# /proc) after each step and that nothing is left at the end.
set -euo pipefail
SRC=${BANGER_SOURCE_DIR:?}
BIN=${BANGER_BIN:?}
[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root (network namespace, tap)"; exit 77; }
command -v umoci >/dev/null || { echo "SKIP: umoci not installed"; exit 77; }

NS=banger-vmcli-$$
WORK=$(mktemp -d /tmp/banger-vmcli.XXXXXX)
export BANGER_HOME=$WORK/state BANGER_RUNTIME_DIR=/run/banger-vmcli-$$
cleanup() {
	for p in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	ip netns delete "$NS" 2>/dev/null
	rm -rf "$WORK" "$BANGER_RUNTIME_DIR"
}
trap cleanup EXIT
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
b() { ip netns exec "$NS" "$BIN" "$@"; }
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }
taps() { ip netns exec "$NS" ip -o link show | awk -F': ' '{print $2}' | grep -c '^bg' || true; }
vmms() { local n=0 p; for p in $(pgrep -f "$BANGER_RUNTIME_DIR/" || true); do n=$((n + 1)); done; echo "$n"; }
field() { b vm show clibox --json | python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }

install -d -m 700 "$BANGER_HOME"
cat >"$BANGER_HOME/config" <<CFG
vmm = firecracker
firecracker_bin = $SRC/tests/fakes/firecracker/firecracker
subnet = 172.28.0.0/24
vcpus = 1
memory_mib = 128
disk_size = 32M
console_log_max = 64K
CFG

# a kernel (any x86_64 ELF: no guest runs under the fake) and a tiny image
cp /bin/true "$WORK/vmlinux"
b kernel import k --vmlinux "$WORK/vmlinux" >/dev/null
mkdir -p "$WORK/tree/etc"
printf 'ID=debian\n' >"$WORK/tree/etc/os-release"
tar -C "$WORK/tree" -cf "$WORK/layer.tar" etc
umoci init --layout "$WORK/oci"
umoci new --image "$WORK/oci:t"
umoci raw add-layer --image "$WORK/oci:t" "$WORK/layer.tar"
b image import "$WORK/oci:t" --name tiny --kernel-ref k >/dev/null
ok "kernel and image imported"

b vm create --image tiny --name clibox --nat --no-wait >"$WORK/create.out"
grep -q 'VM clibox is running at 172.28.0.2' "$WORK/create.out" || fail "create said: $(cat "$WORK/create.out")"
[[ $(field state) == running && $(taps) -eq 1 && $(vmms) -eq 1 ]] || fail "after create"
ok "create"

b vm list | grep -qE '^clibox +running +172\.28\.0\.2 +tiny +1 +128 MiB' || fail "vm list: $(b vm list)"
b vm list --json | python3 -c 'import json,sys; v=json.load(sys.stdin); assert v[0]["name"]=="clibox" and v[0]["nat"] is True' || fail "vm list --json"
b vm stats clibox | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["alive"] and isinstance(s["vmm_metrics"], dict) and s["vmm_rss_bytes"] > 0' || fail "vm stats"
b vm logs clibox >/dev/null || fail "vm logs"
ok "list, show, stats, logs"

set +e
b vm set clibox --vcpus 2 2>/dev/null; rc=$?
set -e
[[ $rc -ne 0 ]] || fail "vm set on a running VM was accepted"
b vm stop clibox
[[ $(field state) == stopped && $(taps) -eq 0 && $(vmms) -eq 0 ]] || fail "after stop"
ok "stop (graceful through the fake's SendCtrlAltDel)"

# e2fsck and resize2fs read a disk the guest wrote: they must run without
# capabilities, with no_new_privs and (where the kernel has Landlock)
# unable to write anything but the disk.  Wrappers first on PATH refuse
# to run otherwise; while $WORK/poison exists they refuse anyway, which
# shows that the wrappers are the ones banger runs.
landlock=$(python3 -c 'import ctypes; print(1 if ctypes.CDLL(None).syscall(444, None, 0, 1) >= 1 else 0)')
mkdir -p "$WORK/bin"
for tool in e2fsck resize2fs; do
	cat >"$WORK/bin/$tool" <<EOF
#!/bin/sh
[ -e "$WORK/poison" ] && { echo "$tool: poisoned" >&2; exit 99; }
grep -q '^CapEff:[[:space:]]*0000000000000000\$' /proc/self/status || { echo "$tool: has capabilities" >&2; exit 99; }
grep -q '^CapBnd:[[:space:]]*0000000000000000\$' /proc/self/status || { echo "$tool: bounding set" >&2; exit 99; }
grep -q '^NoNewPrivs:[[:space:]]*1\$' /proc/self/status || { echo "$tool: no no_new_privs" >&2; exit 99; }
if [ $landlock = 1 ] && (echo x >"$WORK/escaped-$tool") 2>/dev/null; then echo "$tool: wrote outside" >&2; exit 99; fi
exec $(command -v $tool) "\$@"
EOF
	chmod 755 "$WORK/bin/$tool"
done
export PATH="$WORK/bin:$PATH"
disk_bytes() { sqlite3 "$BANGER_HOME/banger.db" "select disk_bytes from vms where name = 'clibox'"; }
work_img() { echo "$BANGER_HOME/vms/$(field id)/work.img"; }
touch "$WORK/poison"
set +e
b vm set clibox --disk 48M 2>/dev/null; rc=$?
set -e
[[ $rc -ne 0 && $(stat -c %s "$(work_img)") -eq $((32 << 20)) && $(disk_bytes) -eq $((32 << 20)) ]] ||
	fail "the e2fsprogs wrappers were not used (exit $rc)"
rm "$WORK/poison"

b vm set clibox --vcpus 2 --memory 256 --disk 64M
[[ ! -e $WORK/escaped-e2fsck && ! -e $WORK/escaped-resize2fs ]] || fail "an e2fsprogs tool wrote outside the disk"
[[ $(field vcpus) == 2 && $(field memory_mib) == 256 ]] || fail "vm set"
[[ $(stat -c %s "$BANGER_HOME/vms/$(field id)/work.img") -eq $((64 << 20)) ]] || fail "work disk not grown"
set +e
b vm set clibox --disk 16M 2>/dev/null; rc=$?
set -e
[[ $rc -ne 0 ]] || fail "shrinking the work disk was accepted"
# A work disk e2fsck cannot repair (its superblock zeroed): the grow
# fails, and the file and the record keep their size, also when tried again.
dd if="$(work_img)" of="$WORK/sb" bs=1024 skip=1 count=1 status=none
dd if=/dev/zero of="$(work_img)" bs=1024 seek=1 count=1 conv=notrunc status=none
for try in 1 2; do
	set +e
	b vm set clibox --disk 80M 2>"$WORK/set.err"; rc=$?
	set -e
	[[ $rc -ne 0 ]] || fail "growing a corrupt work disk was accepted (try $try)"
	grep -q "e2fsck -p cannot repair" "$WORK/set.err" || fail "set --disk said: $(cat "$WORK/set.err")"
	[[ $(stat -c %s "$(work_img)") -eq $((64 << 20)) ]] || fail "a failed grow changed the file size (try $try)"
	[[ $(disk_bytes) -eq $((64 << 20)) ]] || fail "a failed grow changed the record (try $try)"
done
dd if="$WORK/sb" of="$(work_img)" bs=1024 seek=1 count=1 conv=notrunc status=none
b vm disk clibox --grow 96M | grep -q 'size: *96.0 MiB' || fail "vm disk --grow"
[[ $(disk_bytes) -eq $((96 << 20)) ]] || fail "record after vm disk --grow"
ok "set (vcpus, memory, disk grow confined; shrink refused; corrupt disk refused unchanged), vm disk --grow"

b vm start clibox --no-wait
[[ $(field state) == running && $(taps) -eq 1 && $(vmms) -eq 1 ]] || fail "after start"
b vm restart clibox --no-wait
[[ $(field state) == running && $(taps) -eq 1 && $(vmms) -eq 1 ]] || fail "after restart"
ok "start, restart"

# A guest flooding its console: the relay keeps console.log and one
# rotated console.log.1 to console_log_max (64K here) each, with the
# latest output at the end of console.log; `vm logs` prints both.
flood_vm() { b vm show floody --json | python3 -c "import json,sys; print(json.load(sys.stdin)['id'])"; }
relays() { pgrep -f "banger-console --log $flog" || true; }
FC_FAKE_CONSOLE_FLOOD=$((1 << 20)) ip netns exec "$NS" "$BIN" vm create --image tiny --name floody --no-wait >/dev/null
flog=$BANGER_HOME/vms/$(flood_vm)/console.log
for _ in $(seq 200); do grep -q FC-FAKE-CONSOLE-FLOOD-END "$flog" 2>/dev/null && break; sleep 0.1; done
tail -c 200 "$flog" | grep -q 'FC-FAKE-CONSOLE-FLOOD-END after' || fail "the latest console output is not at the end of console.log"
[[ -s $flog.1 ]] || fail "console.log was never rotated"
[[ $(stat -c %s "$flog") -le 65536 && $(stat -c %s "$flog.1") -le 65536 ]] ||
	fail "console log over its bound: $(stat -c %s "$flog" "$flog.1" | tr '\n' ' ')"
b vm logs floody >"$WORK/logs.out"
[[ $(stat -c %s "$WORK/logs.out") -le 131072 ]] || fail "vm logs printed more than the bound allows"
tail -n 1 "$WORK/logs.out" | grep -q 'FC-FAKE-CONSOLE-FLOOD-END after' || fail "vm logs does not end with the latest output"
grep -q '^\[ flood \] line' "$WORK/logs.out" || fail "vm logs lost the rotated part"
[[ $(relays | wc -l) -eq 1 ]] || fail "expected one console relay, found: $(relays)"
ok "a flooding console stays bounded ($(stat -c %s "$flog") + $(stat -c %s "$flog.1") bytes), vm logs reads across the rotation"

# A relay killed with -9 costs the VM its console, not its life: the VMM
# (whose log lines now meet a closed pipe) still answers and stops
# gracefully, and stop leaves no relay.
kill -9 "$(relays)"
b vm stats floody | python3 -c 'import json,sys; assert json.load(sys.stdin)["alive"]' || fail "VMM died with its relay"
b vm stop floody
[[ $(b vm show floody --json | python3 -c "import json,sys; print(json.load(sys.stdin)['state'])") == stopped ]] || fail "stop after the relay died"
b vm start floody --no-wait
[[ $(relays | wc -l) -eq 1 ]] || fail "no relay after start"
b vm delete --force floody
[[ -z $(relays) ]] || fail "a console relay survived delete"
ok "relay killed -9: VMM unaffected; stop, start and delete manage the relay"

# Ctrl-C in vm create is a cancel: the half-made VM goes, even with
# --keep-on-failure, and the error is the cancel.  (No guest runs under
# the fake: the create waits for SSH until the signal comes.)
ip netns exec "$NS" "$BIN" vm create --image tiny --name intr --keep-on-failure --timeout 120 \
	>"$WORK/intr.out" 2>"$WORK/intr.err" &
pid=$!
for _ in $(seq 600); do grep -qE '^(ssh|agent) ' "$WORK/intr.err" && break; sleep 0.1; done
grep -qE '^(ssh|agent) ' "$WORK/intr.err" || fail "vm create never waited for SSH: $(cat "$WORK/intr.err")"
kill -INT "$pid"
set +e
wait "$pid"; rc=$?
set -e
[[ $rc -eq 1 ]] || fail "an interrupted create exited $rc"
grep -q '^banger: vm create: cancelled' "$WORK/intr.err" || fail "the interrupted create said: $(cat "$WORK/intr.err")"
b vm show intr >/dev/null 2>&1 && fail "an interrupted create kept its record"
[[ $(taps) -eq 1 && $(vmms) -eq 1 ]] || fail "an interrupted create left kernel objects"
[[ $(ls -A "$BANGER_HOME/vms" | wc -l) -eq 1 ]] || fail "an interrupted create left its directory"
! grep -q 'intr\.vm' "$BANGER_HOME/ssh/known_hosts" || fail "an interrupted create left its pin"
ok "Ctrl-C in vm create --keep-on-failure: cancelled, nothing kept"

set +e
b vm delete clibox 2>/dev/null; rc=$?
set -e
[[ $rc -eq 6 || $rc -eq 1 ]] || fail "delete of a running VM without --force: exit $rc"
b vm delete --force clibox
b vm show clibox >/dev/null 2>&1 && fail "record left"
[[ $(taps) -eq 0 && $(vmms) -eq 0 ]] || fail "objects left after delete"
[[ -z $(ls -A "$BANGER_HOME/vms") ]] || fail "VM dir left"
! grep -q clibox "$BANGER_HOME/ssh/known_hosts" || fail "pin left"
ip netns exec "$NS" nft list ruleset | grep -q banger-vm: && fail "NAT rule left"
ok "delete leaves nothing"
