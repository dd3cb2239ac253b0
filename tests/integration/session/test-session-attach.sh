#!/bin/sh
# Attach over a real sshd, driven from pseudo-terminals (pty_attach.py):
# keystrokes in and output back through the session's own terminal, the
# terminal size at attach and after a resize, the detach keys, two
# attachers seeing the same output, replay from an offset, the command
# ending while attached, the attach process killed, and pipes.
. "$(dirname "$0")/lib.sh"
start_sshd
drv="$(dirname "$0")/pty_attach.py"

LOOP='echo started; while IFS= read -r l; do echo "got:$l"; [ "$l" = size ] && stty size; [ "$l" = quit ] && exit 5; done'
check start-tty 0 "$B" session start $VM --tty --name tty1 -- sh -c "$LOOP"
id=$(cat "$tmp/out")

check attach-single 0 python3 "$drv" single "$B" "$id"
[ "$(state_of "$id")" = running ] && pass detach-leaves-it-running || bad detach-leaves-it-running
check attach-two 0 python3 "$drv" two "$B" "$id"
check attach-replay 0 python3 "$drv" replay "$B" "$id"
check attach-killed 0 python3 "$drv" kill "$B" "$id"
[ "$(state_of "$id")" = running ] && pass survives-killed-attach || bad survives-killed-attach
check logs-has-input 0 "$B" session logs "$id"
has log-from-attachers "got:before-kill" "$tmp/out"
check attach-end 0 python3 "$drv" end "$B" "$id"
check wait-after-end 5 "$B" session wait "$id"
check attach-ended 1 "$B" session attach "$id" </dev/null
has attach-ended-msg "ended" "$tmp/err"

# no terminal: pipes both ways, and the end of input ends only the attach
check start-pipe 0 "$B" session start $VM --name piped -- sh -c 'while IFS= read -r l; do echo "echo:$l"; done'
id=$(cat "$tmp/out")
check attach-pipe 0 python3 "$drv" pipe "$B" "$id"
[ "$(state_of "$id")" = running ] && pass pipe-session-runs-on || bad pipe-session-runs-on
check stop-pipe 0 "$B" session stop piped

exit $fail
