#!/usr/bin/env bash
# A lost, emptied or damaged database destroys no VM.  With the
# Firecracker API fake as `firecracker`, in a network namespace this
# script creates: two VMs (one running, one stopped); the database is
# emptied, then replaced by garbage; unrelated commands and gc must fail
# with exit 8, naming the directories, and leave every disk, directory and
# VMM process alone; `banger store recover` brings both VMs back and they
# start, stop and delete as before.  Directories another store made, and
# directories without a record, are reported by gc and never removed; an
# unfinished create of this store is.  Also prints how long recovery of
# N stopped VMs takes (a figure, not an assertion).
set -euo pipefail
SRC=${BANGER_SOURCE_DIR:?}
BIN=${BANGER_BIN:?}
[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root (network namespace, tap)"; exit 77; }
command -v umoci >/dev/null || { echo "SKIP: umoci not installed"; exit 77; }
N_BULK=${BANGER_RECOVER_BULK:-40}

NS=banger-store-$$
WORK=$(mktemp -d /tmp/banger-store.XXXXXX)
export BANGER_HOME=$WORK/state BANGER_RUNTIME_DIR=/run/banger-store-$$
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
vmms() { local n=0 p; for p in $(pgrep -f "$BANGER_RUNTIME_DIR/" || true); do n=$((n + 1)); done; echo "$n"; }
field() { b vm show "$1" --json | python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$2"; }
# run a command that must fail with exit code $1; its stderr is in $WORK/err
expect_exit() {
	local want=$1 rc=0
	shift
	b "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
	[[ $rc -eq $want ]] || fail "'$*' exited $rc, not $want: $(cat "$WORK/err")"
}
# everything a VM owns on disk, and the VMM processes
snapshot() {
	(cd "$BANGER_HOME/vms" && find . -name work.img -o -name system.img -o -name vm.json | sort
	 md5sum ./*/work.img) >"$WORK/$1"
	echo "vmms $(vmms)" >>"$WORK/$1"
}

install -d -m 700 "$BANGER_HOME"
cat >"$BANGER_HOME/config" <<CFG
vmm = firecracker
firecracker_bin = $SRC/tests/fakes/firecracker/firecracker
subnet = 172.27.0.0/24
vcpus = 1
memory_mib = 128
disk_size = 8M
CFG
cp /bin/true "$WORK/vmlinux"
b kernel import k --vmlinux "$WORK/vmlinux" >/dev/null
mkdir -p "$WORK/tree/etc"
printf 'ID=debian\n' >"$WORK/tree/etc/os-release"
tar -C "$WORK/tree" -cf "$WORK/layer.tar" etc
umoci init --layout "$WORK/oci"
umoci new --image "$WORK/oci:t"
umoci raw add-layer --image "$WORK/oci:t" "$WORK/layer.tar"
b image import "$WORK/oci:t" --name tiny --kernel-ref k >/dev/null
b vm create --image tiny --name runner --nat --no-wait >/dev/null
b vm create --image tiny --name sleeper --no-start >/dev/null
RUNNER_ID=$(field runner id)
SLEEPER_ID=$(field sleeper id)
[[ $(vmms) -eq 1 ]] || fail "one VMM expected after create"
[[ -s $BANGER_HOME/vms/$RUNNER_ID/vm.json && -s $BANGER_HOME/vms/$SLEEPER_ID/vm.json ]] ||
	fail "VM directories carry no durable record"
echo "data of the runner" | dd of="$BANGER_HOME/vms/$RUNNER_ID/work.img" bs=1 seek=4096 conv=notrunc 2>/dev/null
snapshot before
ok "two VMs: runner (running), sleeper (stopped), each with vm.json"

# ---- 1. the database emptied (and its WAL gone) ----
: >"$BANGER_HOME/banger.db"
rm -f "$BANGER_HOME/banger.db-wal" "$BANGER_HOME/banger.db-shm"
expect_exit 8 image list
grep -q "was lost, emptied or replaced" "$WORK/err" || fail "image list said: $(cat "$WORK/err")"
grep -q "vms/$RUNNER_ID" "$WORK/err" && grep -q "vms/$SLEEPER_ID" "$WORK/err" ||
	fail "the error does not name the VM directories: $(cat "$WORK/err")"
grep -q "banger store recover" "$WORK/err" || fail "the error does not name the recovery command"
expect_exit 8 vm list
expect_exit 8 gc
expect_exit 8 vm reconcile --sweep
snapshot after-empty
diff "$WORK/before" "$WORK/after-empty" || fail "something changed after opens of an emptied store"
ok "emptied database: image list, vm list, gc refused with exit 8, naming the directories; nothing touched"

b store recover --dry-run >"$WORK/out"
grep -q "runner.*would be recovered" "$WORK/out" || fail "dry run: $(cat "$WORK/out")"
expect_exit 8 vm list
t0=$(date +%s%N)
b store recover >"$WORK/out"
t1=$(date +%s%N)
grep -q "4 records recovered" "$WORK/out" || fail "recover said: $(cat "$WORK/out")"
[[ $(field runner state) == running && $(field sleeper state) == stopped ]] ||
	fail "states after recovery: $(b vm list)"
[[ $(field runner ip) == 172.27.0.2 ]] || fail "runner's address changed"
snapshot after-recover
diff "$WORK/before" "$WORK/after-recover" || fail "recovery changed a disk or a process"
ok "store recover: kernel, image and both VMs back ($(((t1 - t0) / 1000000)) ms)"

b vm start sleeper --no-wait >/dev/null
[[ $(field sleeper state) == running && $(vmms) -eq 2 ]] || fail "the recovered stopped VM does not start"
b vm stop runner >/dev/null
[[ $(field runner state) == stopped && $(vmms) -eq 1 ]] || fail "the recovered running VM does not stop"
ok "recovered VMs start and stop"

# ---- 2. the database damaged ----
head -c 65536 /dev/urandom >"$BANGER_HOME/banger.db"
rm -f "$BANGER_HOME/banger.db-wal" "$BANGER_HOME/banger.db-shm"
snapshot before-damage
expect_exit 8 vm list
grep -q "damaged" "$WORK/err" || fail "vm list on a damaged database said: $(cat "$WORK/err")"
snapshot after-damage
diff "$WORK/before-damage" "$WORK/after-damage" || fail "something changed after opening a damaged store"
b store recover >"$WORK/out"
ls "$BANGER_HOME"/banger.db.damaged-* >/dev/null 2>&1 || fail "the damaged database was not kept"
grep -q "kept as" "$WORK/out" || fail "recover did not say where the damaged database went"
[[ $(field sleeper state) == running && $(field runner state) == stopped ]] ||
	fail "states after recovery of a damaged store: $(b vm list)"
ok "damaged database: refused with exit 8, kept aside by recover, VMs back"

# ---- 3. what gc may and may not remove ----
FOREIGN=$BANGER_HOME/vms/0f0f0f0f
cp -a "$BANGER_HOME/vms/$RUNNER_ID" "$FOREIGN"
python3 - "$FOREIGN/vm.json" <<'PY'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
d["store_id"] = "ab" * 16
d["record"]["id"] = "0f0f0f0f"
d["record"]["name"] = "someone-else"
json.dump(d, open(p, "w"))
PY
NORECORD=$BANGER_HOME/vms/0e0e0e0e
mkdir -p "$NORECORD" && echo precious >"$NORECORD/work.img"
LEFTOVER=$BANGER_HOME/vms/0d0d0d0d
cp -a "$BANGER_HOME/vms/$RUNNER_ID" "$LEFTOVER"
python3 - "$LEFTOVER/vm.json" <<'PY'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
d["record"]["id"] = "0d0d0d0d"
d["record"]["state"] = "creating"
json.dump(d, open(p, "w"))
PY
b gc >"$WORK/out"
[[ -d $FOREIGN && -d $NORECORD ]] || fail "gc removed a directory it cannot prove is its own"
grep -q "0f0f0f0f.*made by store abababababab" "$WORK/out" || fail "gc did not report the foreign directory: $(cat "$WORK/out")"
grep -q "0e0e0e0e.*no record" "$WORK/out" || fail "gc did not report the directory without a record"
[[ ! -e $LEFTOVER ]] || fail "gc kept this store's unfinished create"
b image list >/dev/null || fail "a non-empty store with foreign directories must open"
ok "gc: foreign and record-less directories reported and kept, this store's unfinished create removed"
rm -rf "$FOREIGN" "$NORECORD"

b vm delete sleeper --force >/dev/null
b vm delete runner >/dev/null
[[ $(vmms) -eq 0 && -z $(ls -A "$BANGER_HOME/vms") ]] || fail "delete left something: $(ls -A "$BANGER_HOME/vms")"
ok "recovered VMs delete cleanly"

# ---- 3b. an older database (a restored backup, a lost WAL) ----
b vm create --image tiny --name alpha --no-start >/dev/null
ALPHA_ID=$(field alpha id)
cp "$BANGER_HOME/banger.db" "$WORK/old.db"
[[ ! -e $BANGER_HOME/banger.db-wal ]] || cp "$BANGER_HOME/banger.db-wal" "$WORK/old.db-wal"
b vm start alpha --no-wait >/dev/null
[[ $(vmms) -eq 1 ]] || fail "alpha does not run"
restore_old() {
	cp "$WORK/old.db" "$BANGER_HOME/banger.db"
	rm -f "$BANGER_HOME/banger.db-wal" "$BANGER_HOME/banger.db-shm"
	[[ ! -e $WORK/old.db-wal ]] || cp "$WORK/old.db-wal" "$BANGER_HOME/banger.db-wal"
}
restore_old
b gc >"$WORK/out"
[[ $(vmms) -eq 1 ]] || fail "gc over an older database killed a running VM: $(cat "$WORK/out")"
grep -q "left alone: its own record says running" "$WORK/out" || fail "gc did not say why: $(cat "$WORK/out")"
# the backup was taken while the row said "creating": reconcile must not
# finish a removal the VM's own record contradicts
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("UPDATE vms SET state=\"creating\""); c.commit()' \
	"$BANGER_HOME/banger.db"
b vm reconcile >"$WORK/out" || true
[[ -s $BANGER_HOME/vms/$ALPHA_ID/work.img && $(vmms) -eq 1 ]] ||
	fail "vm reconcile over an older database removed a finished VM: $(cat "$WORK/out")"
b vm delete alpha --force >/dev/null 2>&1 || rm -rf "$BANGER_HOME/vms/$ALPHA_ID"
for p in $(pgrep -f "$BANGER_RUNTIME_DIR/" || true); do kill -9 "$p"; done
ok "an older database: gc and vm reconcile leave a VM its own record says is running or finished"

# ---- 4. a figure: recovery of many VMs ----
for i in $(seq 1 "$N_BULK"); do b vm create --image tiny --name "bulk$i" --no-start >/dev/null; done
: >"$BANGER_HOME/banger.db"
rm -f "$BANGER_HOME/banger.db-wal" "$BANGER_HOME/banger.db-shm"
t0=$(date +%s%N)
b store recover >"$WORK/out"
t1=$(date +%s%N)
[[ $(b vm list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))') -eq $N_BULK ]] ||
	fail "bulk recovery: $(tail -3 "$WORK/out")"
echo "figure: banger store recover of $N_BULK stopped VMs (+ kernel, image): $(((t1 - t0) / 1000000)) ms"
ok "bulk recovery"
