#!/bin/sh
# Session output over a real sshd: logs --follow, a client killed
# mid-stream and resumed from the offset it got to (no byte lost or
# repeated), the library resuming by itself when the SSH connection is
# killed under it, offsets, and a session whose supervisor dies (lost).
. "$(dirname "$0")/lib.sh"
start_sshd

# A producer of numbered lines (some 600 KB): half of them, then it waits
# for its gate file ($1), then the rest, so "mid-stream" needs no timing.
PRODUCER='i=0; while [ $i -lt 6000 ]; do echo "line $i ......................................................................................"; i=$((i+1)); if [ $i -eq 3000 ]; then while [ ! -e "$1" ]; do sleep 0.05; done; fi; done; echo END'
half_out() { [ "$(wc -l <"$1")" -ge 3000 ]; }

size() { stat -c %s "$1"; }

# ---- follow to the end ----
touch "$tmp/gate-f1"
check start-follow 0 "$B" session start $VM --name f1 -- sh -c "$PRODUCER" sh "$tmp/gate-f1"
id=$(cat "$tmp/out")
check follow 0 "$B" session logs "$id" --follow
cp "$tmp/out" "$tmp/follow1"
cmp -s "$tmp/follow1" "$ROOT/$id/log" && pass follow-complete || bad follow-complete "$(size "$tmp/follow1") vs $(size "$ROOT/$id/log")"
tail -n1 "$tmp/follow1" | grep -q '^END$' && pass follow-saw-end || bad follow-saw-end
check follow-ended 0 "$B" session logs "$id" --follow
cmp -s "$tmp/out" "$ROOT/$id/log" && pass follow-after-end || bad follow-after-end

# ---- the client is killed mid-stream and resumes from its offset ----
check start-kill 0 "$B" session start $VM --name f2 -- sh -c "$PRODUCER" sh "$tmp/gate-f2"
id=$(cat "$tmp/out")
"$B" session logs "$id" --follow >"$tmp/part1" 2>"$tmp/part1.err" &
cli=$!
until_true 60 half_out "$tmp/part1" || bad first-half-streamed
kill -KILL "$cli" 2>/dev/null
wait "$cli" 2>/dev/null
n=$(size "$tmp/part1")
[ -f "$ROOT/$id/status" ] && bad killed-mid-stream "the session had already ended: the kill was not mid-stream" \
	|| pass killed-mid-stream
[ "$n" -gt 0 ] && pass got-some-before-kill || bad got-some-before-kill
touch "$tmp/gate-f2"
check resume 0 "$B" session logs "$id" --follow --from "$n"
cat "$tmp/part1" "$tmp/out" >"$tmp/joined"
cmp -s "$tmp/joined" "$ROOT/$id/log" && pass resume-no-loss-no-dup \
	|| bad resume-no-loss-no-dup "joined $(size "$tmp/joined") bytes, log $(size "$ROOT/$id/log") bytes, cut at $n"
python3 - "$tmp/joined" <<'PY' && pass resume-lines-in-order || bad resume-lines-in-order
import sys
lines = open(sys.argv[1]).read().split("\n")
assert lines[-1] == "" and lines[-2] == "END", lines[-3:]
nums = [int(l.split()[1]) for l in lines[:-2]]
assert nums == list(range(6000)), "gap or repeat"
PY

# ---- the SSH connection dies under the library: it resumes by itself ----
check start-drop 0 "$B" session start $VM --name f3 -- sh -c "$PRODUCER" sh "$tmp/gate-f3"
id=$(cat "$tmp/out")
"$B" -vv session logs "$id" --follow >"$tmp/auto" 2>"$tmp/auto.err" &
cli=$!
until_true 60 half_out "$tmp/auto" || bad first-half-streamed-auto
killed=0
for p in $(sshd_children); do kill -KILL "$p" 2>/dev/null && killed=$((killed + 1)); done
[ "$killed" -gt 0 ] && pass dropped-connection || bad dropped-connection "no sshd connection to kill"
# and once more right after it reconnected, while the rest flows
until_true 30 grep -q resuming "$tmp/auto.err"
sleep 0.2
for p in $(sshd_children); do kill -KILL "$p" 2>/dev/null; done
touch "$tmp/gate-f3"
wait "$cli"
rc=$?
[ "$rc" -eq 0 ] && pass auto-resume-exit || bad auto-resume-exit "exit $rc" "$(tail -5 "$tmp/auto.err")"
grep -q "resuming" "$tmp/auto.err" && pass auto-resume-happened || bad auto-resume-happened "$(tail -5 "$tmp/auto.err")"
no_sanitizer_report auto-resume-clean "$tmp/auto.err"
cmp -s "$tmp/auto" "$ROOT/$id/log" && pass auto-resume-no-loss-no-dup \
	|| bad auto-resume-no-loss-no-dup "got $(size "$tmp/auto"), log $(size "$ROOT/$id/log")"

# ---- offsets without follow ----
check start-short 0 "$B" session start $VM -- sh -c 'printf 0123456789'
id=$(cat "$tmp/out")
"$B" session wait "$id" >/dev/null
check logs-from-5 0 "$B" session logs "$id" --from 5
[ "$(cat "$tmp/out")" = 56789 ] && pass offset-is-byte-offset || bad offset-is-byte-offset "$(cat "$tmp/out")"
check logs-from-end 0 "$B" session logs "$id" --from 10
[ ! -s "$tmp/out" ] && pass offset-at-end-empty || bad offset-at-end-empty
check logs-past-end 2 "$B" session logs "$id" --from 11
has logs-past-end-msg "past the end" "$tmp/err"

# ---- a running session's output so far, without follow ----
check start-run 0 "$B" session start $VM --name slow -- sh -c 'echo first; sleep 100'
id=$(cat "$tmp/out")
until_true 10 grep -q first "$ROOT/$id/log"
check logs-so-far 0 "$B" session logs slow
[ "$(cat "$tmp/out")" = first ] && pass logs-so-far-content || bad logs-so-far-content "$(cat "$tmp/out")"

# ---- the supervisor dies without a status: lost ----
"$B" session logs slow --follow >"$tmp/lostlog" 2>"$tmp/lostlog.err" &
cli=$!
sleep 0.5
kill -KILL "$(cut -d' ' -f1 "$ROOT/$id/helper.pid")"
kill -KILL -- "-$(cat "$ROOT/$id/pid")" 2>/dev/null
wait "$cli"
rc=$?
[ "$rc" -ne 0 ] && pass follow-stops-when-lost || bad follow-stops-when-lost "exit $rc"
has follow-lost-msg "lost" "$tmp/lostlog.err"
no_sanitizer_report follow-lost-clean "$tmp/lostlog.err"
check list-lost 0 "$B" session list
has list-shows-lost "slow.*lost" "$tmp/out"
check wait-lost 1 "$B" session wait slow
has wait-lost-msg "lost" "$tmp/err"
check stop-lost 1 "$B" session stop slow
check rm-lost 0 "$B" session rm slow

exit $fail
