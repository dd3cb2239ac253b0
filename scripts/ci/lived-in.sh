#!/usr/bin/env bash
# The "lived-in" lane: run the tests that could depend on the host again,
# over the build the clean lane made, on a host made to look like a
# developer's machine rather than a bare CI runner:
#
#   - a distribution kernel in /boot (linux-image-cloud-amd64, virtio as
#     modules: a test that boots whatever /boot holds fails);
#   - HOME: a prepared home, mounted read-only, with a foreign
#     ~/.ssh/config (Host * with another user, port and identity),
#     ~/.ssh/known_hosts holding other keys for 127.0.0.1, the guests'
#     addresses and *.vm, the user's own SSH keys, ~/.docker/config.json
#     with credentials and a credential store, and an old banger state
#     under ~/.local/state/banger;
#   - http_proxy/https_proxy/HTTP_PROXY/HTTPS_PROXY/ALL_PROXY pointing at
#     http://127.0.0.1:9, where nothing listens (a laptop off its office
#     network);
#   - umask 077, LANG=C.UTF-8 (the clean lane runs with umask 022 and
#     LC_ALL=C), TMPDIR on a filesystem of its own (a tmpfs, not /tmp's);
#   - what an interrupted earlier run or another banger leaves: a
#     /run/banger with a stale runtime directory, a tap and an nftables
#     table named the way banger names its own, stale /tmp/banger-* work
#     directories.
# The foreign tap and table must still be there afterwards: nothing may
# remove what it cannot prove it made.  The mounts live in a private
# mount namespace and go with it; the rest is removed at the end.  The
# real /root and its ~/.ssh are never touched.
#
#   scripts/ci/lived-in.sh BUILD_DIR [CTEST_ARGS...]
#
# Default selection (LIVED_IN_TESTS, a ctest -R regex, overrides it): every
# test but the ones whose inputs are the source code alone (static
# analysis, valgrind over the unit tier, the fuzz corpora replayed through
# in-memory parsers) or that pin their own environment already and take
# a minute each (the allocation-failure and concurrency runs).  Root only.
set -euo pipefail

PROG=lived-in
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $# -ge 1 ]] || die "usage: $0 BUILD_DIR [CTEST_ARGS...]"
build=$(cd "$1" && pwd)
shift
[[ $EUID -eq 0 ]] || die "run as root (the lane mounts a read-only HOME and adds a tap)"
DEAD=http://127.0.0.1:9
EXCLUDE='^(hardening\.(static_analysis|valgrind_unit|test_alloc_failure|test_alloc_vm|test_alloc_pull|test_concurrency)|fuzz\..*)$'

# ---- a distribution kernel in /boot ----
if ! compgen -G '/boot/vmlinuz-*' >/dev/null; then
	log "installing linux-image-cloud-amd64 (a distribution kernel in /boot)"
	export DEBIAN_FRONTEND=noninteractive
	apt_install() {
		apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 linux-image-cloud-amd64 >&2
	}
	if ! apt_install; then
		apt-get update -qq -o DPkg::Lock::Timeout=600 >&2
		apt_install
	fi
fi
compgen -G '/boot/vmlinuz-*' >/dev/null || die "no /boot/vmlinuz-* after installing linux-image-cloud-amd64"

# ---- the home, the foreign host state ----
lane=$(mktemp -d /var/tmp/banger-lived-in.XXXXXX)
home=$lane/home
tap=bgf0re1gn0
table=banger_f0re1gn0
stale_run=/run/banger/f0re1gn0
cleanup() {
	ip link del "$tap" 2>/dev/null || true
	nft delete table inet "$table" 2>/dev/null || true
	rm -rf "$stale_run" /tmp/banger-e2e.lived-in-stale /tmp/banger-ssh-lived-in-stale
	rmdir /run/banger 2>/dev/null || true
	rm -rf "$lane"
}
trap cleanup EXIT

install -d -m 700 "$home/.ssh" "$home/.docker" "$home/.local/state/banger" "$home/.config/banger"
ssh-keygen -q -t ed25519 -N '' -C alice@laptop -f "$home/.ssh/id_ed25519"
ssh-keygen -q -t ed25519 -N '' -C alice@work -f "$home/.ssh/id_work"
foreign() { ssh-keygen -q -t ed25519 -N '' -C "$1" -f "$lane/$1" && cut -d' ' -f1,2 "$lane/$1.pub"; }
hashed=$(printf '127.0.0.1 %s\n' "$(foreign hashed)" >"$lane/kh" && ssh-keygen -q -H -f "$lane/kh" >/dev/null 2>&1 && head -1 "$lane/kh")
{
	printf '# alice'"'"'s known hosts\n'
	printf '127.0.0.1 %s\n' "$(foreign lo)"
	printf 'localhost,::1 %s\n' "$(foreign localhost)"
	printf '[127.0.0.1]:2222 %s\n' "$(foreign lo2222)"
	printf '172.30.0.2,172.30.0.6,172.30.0.10 %s\n' "$(foreign guestnet)"
	printf 'testbox.vm,box.vm %s\n' "$(foreign boxvm)"
	printf '%s\n' "$hashed"
	printf '@cert-authority *.vm %s\n' "$(foreign ca)"
	printf '@revoked * %s\n' "$(foreign revoked)"
} >"$home/.ssh/known_hosts"
cat >"$home/.ssh/config" <<'EOF'
# alice's ssh config: nothing here may reach a test's ssh
Host *.vm 172.30.*
    User nobody
    ProxyJump alice@127.0.0.1:9

Host *
    User alice
    Port 2222
    IdentityFile ~/.ssh/id_work
    IdentitiesOnly yes
    StrictHostKeyChecking yes
    UserKnownHostsFile ~/.ssh/known_hosts ~/.ssh/known_hosts.work
    ServerAliveInterval 15
    SendEnv LANG LC_*
EOF
cp "$home/.ssh/known_hosts" "$home/.ssh/known_hosts.work"
cat >"$home/.docker/config.json" <<EOF
{
	"auths": {
		"127.0.0.1:5000": {"auth": "$(printf 'alice:not-this-registry' | base64)"},
		"localhost:5000": {"auth": "$(printf 'alice:nor-this-one' | base64)"},
		"https://index.docker.io/v1/": {"auth": "$(printf 'alice:hub-token' | base64)"}
	},
	"credsStore": "desktop",
	"proxies": {"default": {"httpProxy": "$DEAD", "httpsProxy": "$DEAD"}}
}
EOF
# An old banger of the user's own: a state root no test may open.
printf 'not a banger database\n' >"$home/.local/state/banger/banger.db"
printf 'vmm = firecracker\nkernel_catalog = %s/catalog.json\nsubnet = 172.30.0.0/24\n' "$DEAD" \
	>"$home/.config/banger/config"
chmod -R go-rwx "$home"

# What other runs and other bangers left on the host.
mkdir -p "$stale_run" /tmp/banger-e2e.lived-in-stale /tmp/banger-ssh-lived-in-stale
printf '99999\n' >"$stale_run/stale.pid"
: >"$stale_run/stale.api"
ip tuntap add dev "$tap" mode tap
nft add table inet "$table"
nft add chain inet "$table" postrouting '{ type nat hook postrouting priority 100 ; }'
nft add rule inet "$table" postrouting ip saddr 172.30.0.0/30 masquerade comment '"banger-vm:f0re1gn0"'

# ---- the run, in a private mount namespace ----
select=()
if [[ -n ${LIVED_IN_TESTS:-} ]]; then
	select=(-R "$LIVED_IN_TESTS")
else
	select=(-E "$EXCLUDE")
fi
log "HOME=$home (read-only), proxies $DEAD, umask 077, LANG=C.UTF-8, TMPDIR on a tmpfs, $(ls /boot/vmlinuz-* | head -1) in /boot"
rc=0
env -u LC_ALL -u LANGUAGE -u no_proxy -u NO_PROXY -u SSH_AUTH_SOCK -u DOCKER_CONFIG \
	-u XDG_CONFIG_HOME -u XDG_STATE_HOME -u XDG_CACHE_HOME -u XDG_RUNTIME_DIR -u BANGER_HOME \
	HOME="$home" USER=root LOGNAME=root LANG=C.UTF-8 \
	http_proxy=$DEAD https_proxy=$DEAD HTTP_PROXY=$DEAD HTTPS_PROXY=$DEAD ALL_PROXY=$DEAD all_proxy=$DEAD \
	LANE_DIR="$lane" BUILD="$build" \
	unshare --mount --propagation private -- bash -c '
		set -e
		mount --bind "$HOME" "$HOME"
		mount -o remount,bind,ro "$HOME"
		mkdir -p "$LANE_DIR/tmp"
		mount -t tmpfs -o size=16g,mode=1777 lived-in-tmp "$LANE_DIR/tmp"
		export TMPDIR=$LANE_DIR/tmp
		umask 077
		# The lane checks that its conditions hold before it counts.
		if touch "$HOME/.writable" 2>/dev/null; then echo "lived-in: HOME is writable" >&2; exit 1; fi
		[ "$(umask)" = 0077 ] || { echo "lived-in: umask is $(umask)" >&2; exit 1; }
		[ "$(stat -c %d "$TMPDIR")" != "$(stat -c %d /tmp)" ] || { echo "lived-in: TMPDIR is on /tmp'"'"'s filesystem" >&2; exit 1; }
		[ "$http_proxy" = http://127.0.0.1:9 ] || { echo "lived-in: no dead proxy" >&2; exit 1; }
		ls /boot/vmlinuz-* >/dev/null || { echo "lived-in: nothing in /boot" >&2; exit 1; }
		cd "$BUILD"
		exec ctest "$@"
	' lived-in --output-on-failure --timeout 1500 -j1 "${select[@]}" "$@" || rc=$?

# ---- nothing foreign was removed ----
ip link show "$tap" >/dev/null 2>&1 || { log "FAIL: the foreign tap $tap was removed"; rc=1; }
nft list table inet "$table" >/dev/null 2>&1 || { log "FAIL: the foreign nftables table $table was removed"; rc=1; }
[[ -f $stale_run/stale.pid ]] || { log "FAIL: the stale $stale_run was removed"; rc=1; }
exit "$rc"
