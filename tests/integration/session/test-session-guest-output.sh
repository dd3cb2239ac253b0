#!/bin/sh
# A compromised guest answers the session helper's commands with endless
# output: what banger collects of it is bounded (1 MiB for the helper's
# answers), the command fails or warns with a clear message, and the
# banger process's memory does not follow the guest's output.
. "$(dirname "$0")/lib.sh"
start_sshd

check start 0 "$B" session start $VM --name victim -- sleep 100
id=$(cat "$tmp/out")
helper=$(ls "$HELPERS"/banger-session-p1-* 2>/dev/null | head -1)
[ -n "$helper" ] && pass helper-uploaded || bad helper-uploaded "$(ls -la "$HELPERS")"

# The guest's helper now prints a gigabyte whatever it is asked (renamed
# into place: the running supervisor still executes the old file).
cp "$helper" "$tmp/helper.orig"
printf '#!/bin/sh\nhead -c 1073741824 /dev/zero\n' >"$helper.new"
chmod 755 "$helper.new"
mv -f "$helper.new" "$helper"

# peak KiB of the children of a python process that runs the command
# (stdout and stderr to $tmp/out, $tmp/err), then its exit status.
peak() {
	python3 - "$tmp" "$@" <<'PY'
import resource, subprocess, sys
tmp = sys.argv[1]
with open(tmp + "/out", "wb") as o, open(tmp + "/err", "wb") as e:
    rc = subprocess.call(sys.argv[2:], stdout=o, stderr=e)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)
PY
}

set -- $(peak "$B" session stop victim)
kib=$1 rc=$2
[ "$rc" -ne 0 ] && pass stop-fails || bad stop-fails "exit $rc" "$(cat "$tmp/out" "$tmp/err")"
has stop-says-bound "guest output exceeded 1048576 bytes" "$tmp/err"
hasnt stop-no-sanitizer "Sanitizer\|runtime error:" "$tmp/err"
echo "peak RSS of session stop: $kib KiB"
[ "$kib" -lt $((256 * 1024)) ] && pass stop-memory-bounded || bad stop-memory-bounded "$kib KiB"

# A refresh (show) keeps what it knew and says why.
set -- $(peak "$B" session show victim)
kib=$1 rc=$2
[ "$rc" -eq 0 ] && pass show-still-works || bad show-still-works "exit $rc" "$(cat "$tmp/err")"
has show-warns "guest output exceeded 1048576 bytes" "$tmp/err"
[ "$kib" -lt $((256 * 1024)) ] && pass show-memory-bounded || bad show-memory-bounded "$kib KiB"

# The real helper back: the session is still there and stops normally.
cp "$tmp/helper.orig" "$helper.new"
mv -f "$helper.new" "$helper"
check stop-after 0 "$B" session stop victim
check wait-after 143 "$B" session wait victim
exit $fail
