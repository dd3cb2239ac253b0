#!/bin/bash
# Verdict parity: for every known_hosts file in the case list, what real
# OpenSSH ssh decides (StrictHostKeyChecking=yes against an sshd on
# 127.0.0.1 presenting key A) must equal what `banger known-hosts check`
# prints, and both must equal the expected verdict.
#
# Case lines:  expected | mode | host | file
#   mode "alias": the port-22 rules (ssh -o HostKeyAlias=host; check --port 22)
#   mode "port":  the [host]:port rules (ssh to the sshd's port; host must be
#                 127.0.0.1, the name ssh looks up)
#   file: printf %b escapes; @A@ @B@ @C@ keys ("type base64"), A is what the
#   server presents, C is ECDSA; @PORT@; @HASH:name@ a `ssh-keygen -H` name.
set -u
cases=$1
if [ "$(id -u)" != 0 ] || [ ! -x /usr/sbin/sshd ]; then
	echo "skip: needs root and /usr/sbin/sshd"
	exit 77
fi
B=${BANGER_BIN:?BANGER_BIN must name the banger binary}
T=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
export HOME=$T/home BANGER_HOME=$T/state BANGER_RUNTIME_DIR=$T/run
mkdir -p "$HOME" /run/sshd
for k in a b; do ssh-keygen -q -t ed25519 -N '' -C "$k" -f "$T/$k"; done
ssh-keygen -q -t ecdsa -b 256 -N '' -C c -f "$T/c"
ssh-keygen -q -t ed25519 -N '' -C client -f "$T/client"
cp "$T/client.pub" "$T/authorized_keys"
cat >"$T/sshd_config" <<CFG
ListenAddress 127.0.0.1
AuthorizedKeysFile $T/authorized_keys
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PidFile none
CFG
PORT=
for p in $(shuf -i 20000-60000 -n 50); do
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then PORT=$p; break; fi
done
[ -n "$PORT" ] || { echo "no free port"; exit 1; }
/usr/sbin/sshd -D -e -f "$T/sshd_config" -h "$T/a" -p "$PORT" 2>"$T/sshd.log" &
pid=$!
for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done

A=$(cut -d' ' -f1,2 "$T/a.pub")
Bk=$(cut -d' ' -f1,2 "$T/b.pub")
C=$(cut -d' ' -f1,2 "$T/c.pub")
hashed() {
	printf '%s %s\n' "$1" "$A" >"$T/h"
	ssh-keygen -H -f "$T/h" >/dev/null 2>&1
	cut -d' ' -f1 "$T/h"
}

ssh_verdict() { # mode host
	local opts target
	# ssh looks known_hosts up under the name it connects to (HostName
	# replaces it), so port-mode cases use 127.0.0.1 itself.
	if [ "$1" = alias ]; then opts=(-o "HostKeyAlias=$2"); else opts=(); fi
	target=root@127.0.0.1
	if ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$T/kh" \
		-o GlobalKnownHostsFile=/dev/null -o CheckHostIP=no -o UpdateHostKeys=no -o IdentitiesOnly=yes \
		-o ConnectTimeout=10 -i "$T/client" -p "$PORT" "${opts[@]}" "$target" true </dev/null 2>"$T/err"; then
		echo match
	# "not known" first: the bare-host retry of a non-22 port may print
	# a revoked warning and still end as "not known" (and accept-new
	# would then add the key).
	elif grep -q 'host key is known for' "$T/err"; then echo not-found
	elif grep -q 'REVOKED HOST KEY' "$T/err"; then echo revoked
	elif grep -q 'REMOTE HOST IDENTIFICATION HAS CHANGED' "$T/err"; then echo mismatch
	else echo "error: $(head -c 300 "$T/err")"; fi
}

n=0 bad=0
while IFS= read -r line; do
	[[ -z $line || $line == \#* ]] && continue
	IFS='|' read -r want mode host content <<<"$line"
	want=$(echo $want) mode=$(echo $mode) host=$(echo $host) content=${content# }
	content=${content//@PORT@/$PORT}
	while [[ $content =~ @HASH:([^@]*)@ ]]; do
		content=${content//"@HASH:${BASH_REMATCH[1]}@"/$(hashed "${BASH_REMATCH[1]}")}
	done
	content=${content//@A@/$A}; content=${content//@B@/$Bk}; content=${content//@C@/$C}
	printf '%b' "$content" >"$T/kh"
	port=22; [ "$mode" = port ] && port=$PORT
	got_ssh=$(ssh_verdict "$mode" "$host")
	got_banger=$("$B" known-hosts check --file "$T/kh" --port "$port" "$host" "$T/a.pub" 2>"$T/berr")
	n=$((n + 1))
	if [ "$got_ssh" != "$want" ] || [ "$got_banger" != "$want" ]; then
		bad=$((bad + 1))
		printf 'FAIL %-9s %-5s %-14s want %-9s ssh %-9s banger %s\n' "" "$mode" "$host" "$want" "$got_ssh" "$got_banger"
		printf '     file: %q\n' "$(cat "$T/kh")"
		cat "$T/berr"
	else
		printf 'ok   %-5s %-14s %s\n' "$mode" "$host" "$want"
	fi
done <"$cases"
echo "$n cases, $bad disagreements (port $PORT)"
[ "$n" -gt 0 ] && [ "$bad" -eq 0 ]
