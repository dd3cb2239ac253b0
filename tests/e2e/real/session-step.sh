# Sourced by e2e.sh: guest sessions in the real VM.  A session started in
# the guest keeps running while nobody is connected; it is attached from a
# pseudo-terminal (the guest gives it its own PTY), detached, reattached
# with its earlier output replayed, followed by a client killed mid-stream
# and resumed from its offset, and it ends with its exit status passed
# through.  Uses e2e.sh's banger, step, took, fail, $WORK, $NS, $BANGER.
e2e_session_step() {
	local vm=$1 sid fid n drv
	drv="$SRC/tests/integration/session/pty_attach.py"
	step "banger session: start in $vm, attach, detach, reattach, follow, wait"
	# shellcheck disable=SC2016
	sid=$(banger session start "$vm" --tty --name e2e-tty -- sh -c 'echo started; while IFS= read -r l; do echo "got:$l"; [ "$l" = size ] && stty size; [ "$l" = quit ] && exit 5; done') \
		|| fail "session start"
	grep -q "$sid.*running" <<<"$(banger session list "$vm")" || fail "session $sid not listed running"
	BANGER_ATTACH_WRAP="ip netns exec $NS" python3 "$drv" single "$BANGER" "$sid" || fail "attach/detach"
	[[ $(banger session show "$sid" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])') == running ]] \
		|| fail "session did not survive the detach"
	BANGER_ATTACH_WRAP="ip netns exec $NS" python3 "$drv" replay "$BANGER" "$sid" || fail "reattach with replay"
	BANGER_ATTACH_WRAP="ip netns exec $NS" python3 "$drv" end "$BANGER" "$sid" || fail "attach until the end"
	local st=0
	banger session wait "$sid" || st=$?
	[[ $st -eq 5 ]] || fail "session wait gave $st, not 5"
	grep -q 'got:hello' <<<"$(banger session logs "$sid")" || fail "logs lack the attached input"

	# shellcheck disable=SC2016
	fid=$(banger session start "$vm" -- sh -c 'i=0; while [ $i -lt 400 ]; do echo "line $i"; i=$((i+1)); sleep 0.01; done') \
		|| fail "session start (follow)"
	ip netns exec "$NS" "$BANGER" session logs "$fid" --follow >"$WORK/follow1" 2>/dev/null &
	local lp=$!
	sleep 1.5
	kill -9 "$lp" 2>/dev/null; wait "$lp" 2>/dev/null || true
	n=$(stat -c %s "$WORK/follow1")
	banger session logs "$fid" --follow --from "$n" >"$WORK/follow2" || fail "logs --follow --from $n"
	cat "$WORK/follow1" "$WORK/follow2" >"$WORK/follow12"
	banger session logs "$fid" >"$WORK/followall" || fail "logs"
	cmp -s "$WORK/follow12" "$WORK/followall" || fail "resumed output differs from the log (cut at $n)"
	[[ $(wc -l <"$WORK/followall") -eq 400 ]] || fail "expected 400 lines"
	banger session rm "$sid" "$fid" || fail "session rm"
	took sessions
}
