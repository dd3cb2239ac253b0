#!/bin/sh
# Stopping sessions over a real sshd: SIGTERM that the command honours,
# SIGKILL escalation for a command that traps TERM, another signal, an
# ended session, and wait passing the resulting status through.
. "$(dirname "$0")/lib.sh"
start_sshd

ready() { grep -q ready "$ROOT/$1/log" 2>/dev/null; }

# ---- TERM, handled: the command's own exit status ----
check start-term 0 "$B" session start $VM --name polite -- sh -c 'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 0.1; done'
id=$(cat "$tmp/out")
until_true 10 ready "$id" || bad ready-polite
check stop-term 0 "$B" session stop polite
has stop-term-result "exited(7)" "$tmp/out"
hasnt stop-term-not-escalated "SIGKILL" "$tmp/out"
check wait-term 7 "$B" session wait polite
check logs-term 0 "$B" session logs polite
has term-delivered "got-term" "$tmp/out"

# ---- TERM by default kills a command that does nothing about it ----
check start-plain 0 "$B" session start $VM --name plain -- sleep 100
check stop-plain 0 "$B" session stop plain
has stop-plain-result "exited(SIGTERM)" "$tmp/out"
check wait-plain 143 "$B" session wait plain

# ---- TERM trapped and ignored: SIGKILL after the timeout ----
check start-stubborn 0 "$B" session start $VM --name stubborn -- sh -c 'trap "echo ignoring-term" TERM; echo ready; while :; do sleep 0.1; done'
id=$(cat "$tmp/out")
until_true 10 ready "$id" || bad ready-stubborn
check stop-escalate 0 "$B" session stop stubborn --timeout 1
has escalated "exited(SIGKILL) (SIGKILL after the timeout)" "$tmp/out"
check wait-killed 137 "$B" session wait stubborn
check logs-stubborn 0 "$B" session logs stubborn
has term-was-sent-first "ignoring-term" "$tmp/out"
group_gone() { [ -z "$(ps -e -o pgid=,pid= | awk -v g="$1" '$1 == g')" ]; }
until_true 5 group_gone "$(cat "$ROOT/$id/pid")" && pass process-group-gone || bad process-group-gone

# ---- another signal ----
check start-int 0 "$B" session start $VM --name inty -- sleep 100
check stop-int 0 "$B" session stop inty --signal INT
has stop-int-result "exited(SIGINT)" "$tmp/out"
check wait-int 130 "$B" session wait inty
check stop-bad-signal 2 "$B" session stop inty --signal NOPE

# ---- an ended session: stop does nothing, says how it ended ----
check stop-ended 0 "$B" session stop polite
has stop-ended-result "exited(7)" "$tmp/out"

# ---- wait with a timeout on a running session ----
check start-wait 0 "$B" session start $VM --name sleeper -- sleep 100
check wait-timeout 7 "$B" session wait sleeper --timeout 1
check stop-sleeper 0 "$B" session stop sleeper --signal KILL
has stop-kill-result "exited(SIGKILL)" "$tmp/out"
hasnt kill-not-escalated "after the timeout" "$tmp/out"

exit $fail
