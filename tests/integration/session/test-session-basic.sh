#!/bin/sh
# Sessions against a real sshd on 127.0.0.1 standing in for the guest:
# start (helper uploaded on first use, at a versioned path), list, show,
# wait passing the exit status through, logs, cwd and environment, start
# failures leaving nothing behind, names, rm, and a session surviving the
# death of the banger process that started it (killed at the worst
# moments) and of every SSH connection.
. "$(dirname "$0")/lib.sh"
start_sshd

# ---- start, list, show, wait, logs ----
# Sessions wait for a gate file before finishing, so nothing here
# depends on timing.
check start 0 "$B" session start $VM --name job1 -- sh -c 'echo hello; echo oops >&2; while [ ! -e "$1" ]; do sleep 0.05; done; echo bye; exit 3' sh "$tmp/gate1"
id=$(cat "$tmp/out")
echo "$id" | grep -Eq '^[0-9a-f]{12}$' && pass start-prints-id || bad start-prints-id "$id"
ls "$HELPERS"/banger-session-p1-* >/dev/null 2>&1 && pass helper-uploaded-versioned || bad helper-uploaded-versioned "$(ls -la "$HELPERS")"
test -d "$ROOT/$id" && pass session-dir-in-guest || bad session-dir-in-guest
check list 0 "$B" session list
has list-id "$id" "$tmp/out"
has list-name "job1" "$tmp/out"
has list-running "running" "$tmp/out"
has list-header "ID.*NAME.*VM.*STATE.*STARTED.*COMMAND" "$tmp/out"
check list-vm 0 "$B" session list $VM --json
python3 - "$tmp/out" "$id" <<'PY' && pass list-json || bad list-json "$(cat "$tmp/out")"
import json, sys
l = json.load(open(sys.argv[1]))
assert len(l) == 1, l
s = l[0]
assert s["id"] == sys.argv[2] and s["name"] == "job1" and s["state"] == "running", s
assert s["command"].startswith("sh -c 'echo hello; echo oops >&2; while"), s["command"]
assert s["exit_code"] is None and s["tty"] is False
PY
check show-by-name 0 "$B" session show job1
has show-id "$id" "$tmp/out"
check show-by-prefix 0 "$B" session show "$(echo "$id" | cut -c1-6)"
check show-missing 3 "$B" session show nosuchsession
touch "$tmp/gate1"
check wait-status 3 "$B" session wait "$id"
check logs 0 "$B" session logs "$id"
printf 'hello\noops\nbye\n' >"$tmp/want"
cmp -s "$tmp/out" "$tmp/want" && pass logs-content || bad logs-content "$(od -c "$tmp/out" | head)"
check logs-from 0 "$B" session logs "$id" --from 6
printf 'oops\nbye\n' >"$tmp/want"
cmp -s "$tmp/out" "$tmp/want" && pass logs-from-content || bad logs-from-content "$(cat "$tmp/out")"
check logs-past-end 2 "$B" session logs "$id" --from 999
check list-exited 0 "$B" session list
has list-exit-code "exited(3)" "$tmp/out"
check wait-again 3 "$B" session wait "$id"

# ---- cwd, environment, exit codes ----
mkdir -p "$tmp/work dir"
check start-env 0 "$B" session start $VM --cwd "$tmp/work dir" --env FOO='a b' -e BAR=2 -- sh -c 'pwd; echo "$FOO/$BAR/$BANGER_SESSION"'
id2=$(cat "$tmp/out")
check wait-zero 0 "$B" session wait "$id2"
check logs-env 0 "$B" session logs "$id2"
has cwd-applied "^$tmp/work dir\$" "$tmp/out"
has env-applied "^a b/2/$id2\$" "$tmp/out"

# ---- starts that fail leave nothing ----
check start-missing-cmd 1 "$B" session start $VM -- /no/such/program
has start-missing-msg "cannot run /no/such/program" "$tmp/err"
check start-bad-cwd 1 "$B" session start $VM --cwd /no/such/dir -- true
has start-bad-cwd-msg "cwd" "$tmp/err"
check start-no-vm 3 "$B" session start novm -- true
check start-no-cmd 2 "$B" session start $VM
check start-bad-env 2 "$B" session start $VM --env NOVALUE -- true
check start-dup-name 6 "$B" session start $VM --name job1 -- true
check list-count 0 "$B" session list --json
python3 -c 'import json,sys; l=json.load(open(sys.argv[1])); assert len(l)==2, l' "$tmp/out" && pass failed-starts-not-recorded || bad failed-starts-not-recorded "$(cat "$tmp/out")"
n=$(ls "$ROOT" | wc -l)
[ "$n" -eq 2 ] && pass failed-starts-leave-no-dir || bad failed-starts-leave-no-dir "$(ls "$ROOT")"

# ---- rm ----
check start-long 0 "$B" session start $VM --name long -- sleep 100
id3=$(cat "$tmp/out")
check rm-running-refused 1 "$B" session rm long
has rm-running-msg "stop it first" "$tmp/err"
check rm-force 0 "$B" session rm --force long
test ! -e "$ROOT/$id3" && pass rm-force-dir-gone || bad rm-force-dir-gone
check rm-ended 0 "$B" session rm "$id" "$id2"
test ! -e "$ROOT/$id" && pass rm-dir-gone || bad rm-dir-gone
check list-empty 0 "$B" session list --json
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))==[]' "$tmp/out" && pass rm-forgets || bad rm-forgets "$(cat "$tmp/out")"

# ---- the starter dies; the session does not ----
# Killed (SIGKILL, by the fault hook) after the guest started the command
# but before the host recorded it running: the record says "starting"
# until a refresh asks the guest.
BANGER_FAULT=session:started "$B" session start $VM --name survivor -- sh -c 'while [ ! -e "$1" ]; do sleep 0.05; done; echo after-starter-died; echo done' sh "$tmp/gate2" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 137 ] && pass starter-killed || bad starter-killed "exit $rc" "$(cat "$tmp/err")"
check list-no-refresh 0 "$B" session list --no-refresh
has recorded-starting "starting" "$tmp/out"
# ...and every SSH connection goes too
for p in $(sshd_children); do kill -KILL "$p" 2>/dev/null; done
check list-refresh 0 "$B" session list --json
python3 -c 'import json,sys; l=json.load(open(sys.argv[1])); s=[x for x in l if x["name"]=="survivor"][0]; assert s["state"]=="running", s' "$tmp/out" \
	&& pass refresh-finds-it-running || bad refresh-finds-it-running "$(cat "$tmp/out")"
touch "$tmp/gate2"
check survivor-wait 0 "$B" session wait survivor
check survivor-logs 0 "$B" session logs survivor
has survivor-output "after-starter-died" "$tmp/out"
has survivor-output-end "^done" "$tmp/out"
# The supervisor belongs to no banger process: its own session, not our child.
check survivor2 0 "$B" session start $VM --name orphan -- sleep 100
id4=$(cat "$tmp/out")
sup=$(cut -d' ' -f1 "$ROOT/$id4/helper.pid")
cmd=$(cat "$ROOT/$id4/pid")
sid=$(ps -o sid= -p "$sup" | tr -d ' ')
mysid=$(ps -o sid= -p $$ | tr -d ' ')
sshdsid=$(ps -o sid= -p "$SSHD_PID" | tr -d ' ')
[ -n "$sid" ] && [ "$sid" != "$mysid" ] && [ "$sid" != "$sshdsid" ] && [ "$sid" != "$sup" ] \
	&& pass supervisor-own-session || bad supervisor-own-session "sid $sid, ours $mysid, sshd $sshdsid, pid $sup"
ppid=$(ps -o ppid= -p "$sup" | tr -d ' ')
case " $(sshd_children | tr '\n' ' ') $$ $SSHD_PID " in
*" $ppid "*) bad supervisor-detached "parent $ppid" ;;
*) pass supervisor-detached ;;
esac
pgid=$(ps -o pgid= -p "$cmd" | tr -d ' ')
[ "$pgid" = "$cmd" ] && pass command-own-process-group || bad command-own-process-group "pgid $pgid"
check stop-orphan 0 "$B" session stop orphan --signal KILL

# Killed after recording, before the guest heard of it: "starting", and
# no directory in the guest; a forced rm cleans it up.
BANGER_FAULT=session:recorded "$B" session start $VM --name never -- true >/dev/null 2>&1
check list-never 0 "$B" session list
has never-starting "never.*starting" "$tmp/out"
check rm-never-refused 1 "$B" session rm never
check rm-never-force 0 "$B" session rm --force never

exit $fail
