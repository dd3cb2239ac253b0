#!/bin/sh
# Case functions are called through "$fn", which shellcheck cannot follow.
# shellcheck disable=SC2317
# Tests for guest/first-boot/banger-first-boot.
#
# usage: run-tests.sh [-k] [-s "busybox dash"] [CASE...]
#   -k        keep the work tree (copied to /tmp/banger-first-boot-tests.*)
#   -s LIST   shells to run the script under as the guest's /bin/sh
#             (default: "busybox dash"; dash is skipped if not installed)
#   CASE      run only these cases (default: all; -l lists them)
#
# Every case builds a small root tree from busybox-static, with a fake
# /etc/os-release, stub package managers that record their argv and create
# what a real install would, a stub poweroff/reboot, and an identity disk (a
# ustar archive on a read-only loop device, as /dev/vdc).  The real script,
# unmodified, then runs chrooted into that tree, as PID 1 of new mount, PID,
# UTS, IPC and network namespaces (see boot-in-ns.sh), exactly as the kernel
# would start it; its stdout/stderr is the "serial console" the checks read.
#
# Needs root.  Exits 0 when every case passes, 1 otherwise, 77 when the
# tests cannot run here (the reason is printed).
#
# FIRST_BOOT_UNDER_TEST=/path/to/script runs the cases against another copy
# of the script (used by mutation-check.sh); the default is the one in the
# source tree.

set -u

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
UNDER_TEST=${FIRST_BOOT_UNDER_TEST:-$REPO/guest/first-boot/banger-first-boot}
BUSYBOX=${BUSYBOX:-/bin/busybox}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-30}

skip() {
	echo "SKIP: $*"
	exit 77
}

if [ "$(id -u)" != 0 ]; then
	skip "must run as root (it needs mount/PID/UTS/network namespaces, chroot, mknod and loop devices)"
fi
for tool in unshare chroot ip mknod tar mount; do
	command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
done
[ -x "$BUSYBOX" ] || skip "$BUSYBOX not found (install busybox-static)"
[ -f "$UNDER_TEST" ] || skip "script under test not found: $UNDER_TEST"

KEEP=0
SHELLS="busybox dash"
while getopts "ks:l" opt; do
	case $opt in
	k) KEEP=1 ;;
	s) SHELLS=$OPTARG ;;
	l) LIST=1 ;;
	*) echo "usage: $0 [-k] [-s SHELLS] [-l] [CASE...]" >&2 && exit 2 ;;
	esac
done
shift $((OPTIND - 1))

ALL_CASES="
systemd-present
identity-applied
debian
ubuntu
alpine
fedora
arch
opensuse
rhel-microdnf
id-like-fallback
unknown-distro
no-package-manager
no-nat
no-default-route
package-manager-network-error
package-manager-other-error
oneshot
resolv-conf-symlink
missing-identity-disk
not-an-identity-disk
identity-as-regular-file
read-only-root
no-tar-in-image
invalid-identity
identity-member-symlink
exec-failure
"
if [ "${LIST:-0}" = 1 ]; then
	# shellcheck disable=SC2086
	printf '%s\n' $ALL_CASES
	exit 0
fi
CASES=${*:-$ALL_CASES}

# Run the rest in a private mount namespace with the work tree on a tmpfs:
# nothing the cases mount can leak out, and the read-only-root case remounts
# a throwaway tmpfs, never a real file system.
if [ "${BANGER_FIRST_BOOT_TEST_NS:-}" != 1 ]; then
	BANGER_FIRST_BOOT_TEST_NS=1 exec unshare --mount --propagation private \
		-- /bin/sh "$0" "$@"
fi

WORK=$(mktemp -d /tmp/banger-first-boot-tests.XXXXXX) || exit 1
mount -t tmpfs -o size=1g,mode=0700 tmpfs "$WORK" || skip "cannot mount a tmpfs"
LOOPS=

cleanup() {
	for l in $LOOPS; do
		losetup -d "$l" 2>/dev/null
	done
	if [ "$KEEP" = 1 ]; then
		kept=$(mktemp -d /tmp/banger-first-boot-tests.kept.XXXXXX)
		cp -a "$WORK/." "$kept/" 2>/dev/null
		echo "work tree kept in $kept"
	fi
	umount -l "$WORK" 2>/dev/null
	rmdir "$WORK" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# ---------------------------------------------------------------------------
# keys shared by all cases

mkdir -p "$WORK/keys"
if command -v ssh-keygen >/dev/null 2>&1; then
	ssh-keygen -q -t ed25519 -N '' -C banger-test-host -f "$WORK/keys/host" || exit 1
	ssh-keygen -q -t ed25519 -N '' -C banger-test-user -f "$WORK/keys/user" || exit 1
else
	printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n-----END OPENSSH PRIVATE KEY-----\n' >"$WORK/keys/host"
	echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeHostKey banger-test-host" >"$WORK/keys/host.pub"
	echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeUserKey banger-test-user" >"$WORK/keys/user.pub"
fi
printf '%s\n%s\n' "$(cat "$WORK/keys/user.pub")" \
	"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISecondKey second@host" >"$WORK/keys/authorized_keys"

# ---------------------------------------------------------------------------
# fixture builders

# new_root: a fresh case: $C (case dir), $R (its root tree).
new_root() {
	C=$WORK/cases/$CASE_ID
	R=$C/root
	rm -rf "$C"
	mkdir -p "$C" "$R"
	for d in bin sbin usr/bin usr/sbin usr/local/libexec lib/systemd/system \
		usr/lib/systemd/system etc/systemd/system etc/ssh proc sys dev run \
		tmp root var/log banger-test/stubs; do
		mkdir -p "$R/$d"
	done
	chmod 1777 "$R/tmp"
	cp "$BUSYBOX" "$R/bin/busybox"
	chroot "$R" /bin/busybox --install -s || return 1
	if [ "$GUEST_SHELL" = dash ]; then
		cp "$DASH" "$R/bin/dash"
		for lib in $(ldd "$DASH" | sed -n 's/.*[ 	]\(\/[^ ]*\) (0x.*/\1/p'); do
			mkdir -p "$R${lib%/*}"
			cp -L "$lib" "$R$lib"
		done
		ln -sf dash "$R/bin/sh"
	fi
	install -m 0755 "$UNDER_TEST" "$R/usr/local/libexec/banger-first-boot"
	cp "$HERE"/stubs/* "$R/banger-test/stubs/"
	for pm in /usr/bin/apt-get /sbin/apk /usr/bin/dnf /usr/bin/pacman /usr/bin/zypper; do
		cp "$HERE/stubs/pm-stub" "$R$pm"
	done
	for p in /sbin/poweroff /sbin/reboot /sbin/halt; do
		rm -f "$R$p"
		cp "$HERE/stubs/poweroff" "$R$p"
	done
	echo "root:x:0:0:root:/root:/bin/sh" >"$R/etc/passwd"
	echo "root:x:0:" >"$R/etc/group"
	printf '127.0.0.1\tlocalhost\n' >"$R/etc/hosts"
	echo container-build >"$R/etc/hostname"
	os_release debian ""
	# identity defaults
	ID_HOST=vm-$(printf '%s' "$CASE" | tr -c 'a-z0-9\n' '-')
	ID_NAT=1
	ID_DNS="10.0.0.53 10.0.0.54"
	ID_IP=172.30.0.2
	ID_IFACE=eth0
	ID_AUTH=$WORK/keys/authorized_keys
	VDC_KIND=loop
	NET=route
	DEV_PREMOUNT=1
	RO_ROOT=0
	INIT_ARGS=
	: >"$C/failures"
}

os_release() { # ID ID_LIKE
	{
		echo "PRETTY_NAME=\"test $1\""
		echo "NAME=\"$1\""
		echo "ID=$1"
		[ -n "$2" ] && echo "ID_LIKE=\"$2\""
		echo "VERSION_ID=\"1\""
	} >"$R/etc/os-release"
}

add_systemd() { # [PATH]
	p=${1:-/lib/systemd/systemd}
	mkdir -p "$R${p%/*}"
	install -m 0755 "$HERE/stubs/fake-init" "$R$p"
}

add_unit() { # DIR NAME
	mkdir -p "$R$1"
	printf '[Unit]\nDescription=%s\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n' "$2" >"$R$1/$2"
}

# make_identity: $C/identity.img from the ID_* settings, laid out as the
# host writes it: ustar, owned by a non-root uid, 512-byte records.
make_identity() {
	s=$C/identity-src
	rm -rf "$s"
	mkdir -p "$s/banger"
	printf '%s\n' "$ID_HOST" >"$s/banger/hostname"
	{
		echo "BANGER_IP='$ID_IP'"
		echo "BANGER_PREFIX='24'"
		echo "BANGER_GATEWAY='172.30.0.1'"
		echo "BANGER_DNS='$ID_DNS'"
		echo "BANGER_IFACE='$ID_IFACE'"
		echo "BANGER_NAT='$ID_NAT'"
	} >"$s/banger/network.env"
	install -m 0600 "$WORK/keys/host" "$s/banger/ssh_host_ed25519_key"
	install -m 0644 "$WORK/keys/host.pub" "$s/banger/ssh_host_ed25519_key.pub"
	if [ "$ID_AUTH" = symlink ]; then
		ln -s /etc/passwd "$s/banger/authorized_keys"
	else
		install -m 0644 "$ID_AUTH" "$s/banger/authorized_keys"
	fi
	tar --format=ustar --blocking-factor=1 --owner=1000 --group=1000 \
		--numeric-owner -cf "$C/identity.img" -C "$s" banger
}

# boot MODE: run the script (pid1 or oneshot) and wait for it to finish,
# power off, or time out.  Sets BOOT_RC and TIMED_OUT.
boot() {
	mode=$1
	vdc=$VDC_KIND
	loop=
	case $VDC_KIND in
	loop | file)
		[ -f "$C/identity.img" ] || make_identity
		;;
	esac
	if [ "$VDC_KIND" = loop ]; then
		if loop=$(losetup -f --show -r "$C/identity.img" 2>/dev/null); then
			LOOPS="$LOOPS $loop"
			vdc=loop:$(cat "/sys/block/${loop#/dev/}/dev")
		else
			echo "  note: no loop device available, /dev/vdc is a plain file" >&2
			vdc='file'
		fi
	fi
	{
		echo "MODE=$mode"
		echo "VDC=$vdc"
		echo "NET=$NET"
		echo "DEV_PREMOUNT=$DEV_PREMOUNT"
		echo "RO_ROOT=$RO_ROOT"
		echo "INIT_ARGS='$INIT_ARGS'"
	} >"$C/case.conf"

	TIMED_OUT=0
	unshare --mount --propagation private --pid --uts --ipc --net --fork \
		--kill-child -- /bin/sh "$HERE/boot-in-ns.sh" "$C" \
		>"$C/console.log" 2>&1 &
	pid=$!
	start=$(date +%s)
	while kill -0 "$pid" 2>/dev/null; do
		# The script has run through its whole power-off sequence and is
		# now sleeping forever, as PID 1 must: end the VM.
		if grep -q '^reboot' "$R/banger-test/poweroff.log" 2>/dev/null; then
			sleep 0.2
			kill -KILL "$pid" 2>/dev/null
			break
		fi
		if [ $(($(date +%s) - start)) -ge "$BOOT_TIMEOUT" ]; then
			TIMED_OUT=1
			kill -KILL "$pid" 2>/dev/null
			break
		fi
		sleep 0.1
	done
	wait "$pid" 2>/dev/null
	BOOT_RC=$?
	if [ -n "$loop" ]; then
		losetup -d "$loop" 2>/dev/null
		LOOPS=$(printf '%s' "$LOOPS" | sed "s| $loop||")
	fi
	if grep -q '^boot-in-ns:' "$C/console.log"; then
		fail "test harness error: $(grep '^boot-in-ns:' "$C/console.log")"
	fi
	[ "$TIMED_OUT" = 0 ] || fail "did not finish within ${BOOT_TIMEOUT}s (hang)"
}

# ---------------------------------------------------------------------------
# checks: each failing check adds a line to $C/failures

fail() {
	printf '%s\n' "$*" >>"$C/failures"
}

console_has() {
	grep -qF -- "$1" "$C/console.log" || fail "console lacks: $1"
}

console_lacks() {
	if grep -qF -- "$1" "$C/console.log"; then
		fail "console unexpectedly has: $(grep -F -- "$1" "$C/console.log" | head -n 1)"
	fi
}

# The console protocol: exactly one BANGER-ERROR line, containing each of
# the given strings.
banger_error() {
	n=$(grep -c '^BANGER-ERROR: ' "$C/console.log")
	[ "$n" = 1 ] || fail "expected exactly one BANGER-ERROR line, got $n"
	line=$(grep '^BANGER-ERROR: ' "$C/console.log" | head -n 1)
	for want in "$@"; do
		case $line in
		*"$want"*) ;;
		*) fail "BANGER-ERROR line lacks '$want': $line" ;;
		esac
	done
}

no_banger_error() {
	if grep -q 'BANGER-ERROR' "$C/console.log"; then
		fail "unexpected error: $(grep 'BANGER-ERROR' "$C/console.log" | head -n 1)"
	fi
}

# Powered off the way the protocol says: sysrq "o" first, then poweroff -f,
# then reboot -f, and nothing exec'd.
#
# Debian's busybox-static runs its own applets in preference to PATH, so
# under the busybox shell "poweroff -f" is the real applet, not the stub: it
# calls reboot(2), which inside a PID namespace only ends the namespace, and
# unshare then reports its child killed by SIGINT (exit 130; a reboot would
# be SIGHUP).  That is accepted as the same evidence.
powered_off() {
	# $C/sysrq exists when the kernel has a trigger (see boot-in-ns.sh).
	if [ -f "$C/sysrq" ] && [ "$(cat "$C/sysrq")" != o ]; then
		fail "did not write 'o' to /proc/sysrq-trigger (got '$(cat "$C/sysrq")')"
	fi
	got=$(cat "$R/banger-test/poweroff.log" 2>/dev/null)
	want=$(printf 'poweroff -f\nreboot -f')
	if [ "$GUEST_SHELL" = busybox ] && [ -z "$got" ] && [ "$BOOT_RC" = 130 ]; then
		got=$want
	fi
	[ "$got" = "$want" ] ||
		fail "power-off fallbacks: expected 'poweroff -f' then 'reboot -f', got '$got' (exit status $BOOT_RC)"
	[ ! -s "$R/banger-test/exec.log" ] ||
		fail "exec'd an init: $(head -n 1 "$R/banger-test/exec.log")"
}

not_powered_off() {
	[ ! -s "$C/sysrq" ] || fail "wrote to /proc/sysrq-trigger"
	[ ! -s "$R/banger-test/poweroff.log" ] ||
		fail "called $(head -n 1 "$R/banger-test/poweroff.log")"
}

calls_are() { # EXPECTED (newline-separated)
	got=$(cat "$R/banger-test/calls.log" 2>/dev/null)
	[ "$got" = "$1" ] ||
		fail "package manager calls: expected '$(echo "$1" | tr '\n' ';')', got '$(echo "$got" | tr '\n' ';')'"
}

no_calls() {
	[ ! -s "$R/banger-test/calls.log" ] ||
		fail "package manager called: $(tr '\n' ';' <"$R/banger-test/calls.log")"
}

exec_was() { # INIT [ARGS]
	line=$(head -n 1 "$R/banger-test/exec.log" 2>/dev/null)
	[ "$line" = "exec $1 pid=1 args=${2:-}" ] ||
		fail "expected exec of $1 as PID 1 (args '${2:-}'), got '${line:-nothing}'"
	console_has "banger-first-boot: exec $1"
	if [ -f "$R/banger-test/exec.log" ] &&
		[ "$(grep -c . "$R/banger-test/exec.log")" -gt 2 ]; then
		fail "init exec'd more than once"
	fi
	no_banger_error
	not_powered_off
}

no_exec() {
	[ ! -s "$R/banger-test/exec.log" ] ||
		fail "exec'd an init: $(head -n 1 "$R/banger-test/exec.log")"
	console_lacks "banger-first-boot: exec "
}

file_is() { # PATH CONTENT-FILE
	cmp -s "$R$1" "$2" || fail "$1 has the wrong content"
}

text_is() { # PATH TEXT
	printf '%s\n' "$2" >"$C/expected"
	cmp -s "$R$1" "$C/expected" ||
		fail "$1: expected '$(tr '\n' ';' <"$C/expected")', got '$( (tr '\n' ';' <"$R$1") 2>/dev/null)'"
}

mode_is() { # PATH MODE
	if [ ! -f "$R$1" ] || [ -L "$R$1" ]; then
		fail "$1 is not a regular file"
		return
	fi
	m=$(stat -c '%a %u %g' "$R$1")
	[ "$m" = "$2 0 0" ] || fail "$1: expected mode $2 owned by root:root, got '$m'"
}

enabled() { # UNIT
	l=$R/etc/systemd/system/multi-user.target.wants/$1
	# The link is absolute inside the guest: resolve it in the root tree.
	if [ ! -L "$l" ] || [ ! -f "$R$(readlink "$l")" ]; then
		fail "$1 not enabled (no link to its unit in multi-user.target.wants)"
	fi
}

not_enabled() { # UNIT
	[ ! -e "$R/etc/systemd/system/multi-user.target.wants/$1" ] ||
		fail "$1 enabled unexpectedly"
}

# The whole identity, as applied from make_identity's disk.
identity_applied() { # [RUNTIME-HOSTNAME-SOURCE]
	text_is /etc/hostname "$ID_HOST"
	mode_is /etc/hostname 644
	file_is /etc/ssh/ssh_host_ed25519_key "$WORK/keys/host"
	mode_is /etc/ssh/ssh_host_ed25519_key 600
	file_is /etc/ssh/ssh_host_ed25519_key.pub "$WORK/keys/host.pub"
	mode_is /etc/ssh/ssh_host_ed25519_key.pub 644
	file_is /etc/banger/authorized_keys "$ID_AUTH"
	mode_is /etc/banger/authorized_keys 644
	[ ! -e "$R/root/.ssh/authorized_keys" ] || fail "wrote /root/.ssh/authorized_keys"
	text_is /etc/ssh/sshd_config.d/banger.conf "HostKey /etc/ssh/ssh_host_ed25519_key
AuthorizedKeysFile .ssh/authorized_keys /etc/banger/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no"
	mode_is /etc/ssh/sshd_config.d/banger.conf 644
	n=$(grep -c "$ID_HOST" "$R/etc/hosts")
	[ "$n" = 1 ] || fail "/etc/hosts: expected one line for $ID_HOST, got $n"
	grep -q "^${ID_IP}[[:space:]]\+$ID_HOST\([[:space:]]\|\$\)" "$R/etc/hosts" ||
		fail "/etc/hosts: no '$ID_IP $ID_HOST' line"
	grep -q "^127\.0\.0\.1[[:space:]]\+localhost" "$R/etc/hosts" ||
		fail "/etc/hosts lost its localhost line"
	[ ! -L "$R/etc/resolv.conf" ] || fail "/etc/resolv.conf is still a symlink"
	want=
	for d in $ID_DNS; do
		want="${want}nameserver $d;"
	done
	got=$(grep '^nameserver' "$R/etc/resolv.conf" 2>/dev/null | tr '\n' ';')
	[ "$got" = "$want" ] || fail "/etc/resolv.conf: expected '$want', got '$got'"
	mode_is /etc/resolv.conf 644
	case ${1:-exec} in
	exec) src=$R/banger-test/exec.log ;;
	*) src=$1 ;;
	esac
	grep -qx "hostname=$ID_HOST" "$src" 2>/dev/null ||
		fail "running hostname is not $ID_HOST ($(grep hostname= "$src" 2>/dev/null))"
}

identity_untouched() {
	text_is /etc/hostname container-build
	[ ! -e "$R/etc/ssh/sshd_config.d/banger.conf" ] || fail "wrote the sshd drop-in"
	[ ! -e "$R/etc/banger/authorized_keys" ] || fail "wrote authorized_keys"
	[ ! -e "$R/etc/ssh/ssh_host_ed25519_key" ] || fail "wrote a host key"
	grep -q banger "$R/etc/hosts" && fail "changed /etc/hosts"
	[ ! -e "$R/etc/resolv.conf" ] || fail "wrote /etc/resolv.conf"
}

mounted_at_exec() { # DIR TYPE
	grep -q "^[^ ]* $1 $2 " "$R/banger-test/mounts-at-exec" 2>/dev/null ||
		fail "$2 not mounted at $1 when init was exec'd"
}

# ---------------------------------------------------------------------------
# cases

t_systemd_present() {
	add_systemd /lib/systemd/systemd
	add_unit /lib/systemd/system ssh.service
	add_unit /etc/systemd/system banger-vsock-agent.service
	add_unit /etc/systemd/system banger-first-boot.service
	INIT_ARGS="--banger-test-arg"
	boot pid1
	exec_was /lib/systemd/systemd "--banger-test-arg"
	no_calls
	enabled ssh.service
	enabled banger-vsock-agent.service
	enabled banger-first-boot.service
	not_enabled sshd.service
	mounted_at_exec /sys sysfs
	mounted_at_exec /dev/pts devpts
	mounted_at_exec /run tmpfs
	mounted_at_exec /dev tmpfs # premounted: must not be mounted over
	grep -q " /dev devtmpfs " "$R/banger-test/mounts-at-exec" &&
		fail "mounted devtmpfs over an already mounted /dev"
	console_has "banger-first-boot: identity disk found"
}

t_identity_applied() {
	add_systemd /usr/lib/systemd/systemd
	add_unit /usr/lib/systemd/system sshd.service
	# What an image may already carry: another host key (world-readable),
	# a stale banger hosts line, a resolv.conf, an sshd_config with Include.
	echo "OLD KEY" >"$R/etc/ssh/ssh_host_ed25519_key"
	chmod 644 "$R/etc/ssh/ssh_host_ed25519_key"
	printf '127.0.0.1\tlocalhost\n10.9.9.9\told-name\t# banger-first-boot\n' >"$R/etc/hosts"
	echo "nameserver 192.0.2.1" >"$R/etc/resolv.conf"
	printf 'Include /etc/ssh/sshd_config.d/*.conf\nPort 22\n' >"$R/etc/ssh/sshd_config"
	cp "$R/etc/ssh/sshd_config" "$C/sshd_config.orig"
	boot pid1
	exec_was /usr/lib/systemd/systemd
	identity_applied
	grep -q old-name "$R/etc/hosts" && fail "/etc/hosts kept the stale banger line"
	file_is /etc/ssh/sshd_config "$C/sshd_config.orig"
	enabled sshd.service
	no_calls
}

# install_case ID ID_LIKE EXPECTED-CALLS INIT SSH-UNIT
install_case() {
	os_release "$1" "$2"
	boot pid1
	calls_are "$3"
	exec_was "$4"
	identity_applied
	if [ -n "$5" ]; then
		enabled "$5"
	fi
	console_has "banger-first-boot: installed an init system and sshd"
}

t_debian() {
	install_case debian "" "apt-get update
apt-get install -y systemd-sysv openssh-server" /lib/systemd/systemd ssh.service
	grep -qv 'DEBIAN_FRONTEND=noninteractive' "$R/banger-test/env.log" &&
		fail "apt-get ran without DEBIAN_FRONTEND=noninteractive: $(tr '\n' ';' <"$R/banger-test/env.log")"
	not_enabled sshd.service
}

t_ubuntu() {
	install_case ubuntu debian "apt-get update
apt-get install -y systemd-sysv openssh-server" /lib/systemd/systemd ssh.service
}

t_alpine() {
	install_case alpine "" "apk add openrc openssh
rc-update add sshd default" /sbin/init ""
	grep -q '^apk DEBIAN_FRONTEND=<unset>' "$R/banger-test/env.log" ||
		fail "DEBIAN_FRONTEND leaked into apk"
}

t_fedora() {
	install_case fedora "" "dnf install -y systemd openssh-server" \
		/usr/lib/systemd/systemd sshd.service
}

t_arch() {
	install_case arch "" "pacman -Sy --noconfirm systemd openssh" \
		/usr/lib/systemd/systemd sshd.service
	# The stub's sshd_config has no Include of sshd_config.d: the same
	# settings must then lead sshd_config itself.
	head -n 6 "$R/etc/ssh/sshd_config" >"$C/sshd-head"
	printf '%s\n' "# BEGIN banger-first-boot" \
		"HostKey /etc/ssh/ssh_host_ed25519_key" \
		"AuthorizedKeysFile .ssh/authorized_keys /etc/banger/authorized_keys" \
		"PermitRootLogin prohibit-password" \
		"PasswordAuthentication no" \
		"# END banger-first-boot" >"$C/sshd-head.want"
	cmp -s "$C/sshd-head" "$C/sshd-head.want" ||
		fail "sshd_config without Include does not start with the banger block"
	grep -q '^Subsystem sftp' "$R/etc/ssh/sshd_config" ||
		fail "sshd_config lost its own settings"
	[ "$(grep -c 'BEGIN banger-first-boot' "$R/etc/ssh/sshd_config")" = 1 ] ||
		fail "banger block in sshd_config more than once"
}

t_opensuse() {
	install_case opensuse-tumbleweed "opensuse suse" \
		"zypper --non-interactive install systemd openssh" \
		/usr/lib/systemd/systemd sshd.service
}

t_rhel_microdnf() {
	rm -f "$R/usr/bin/dnf"
	cp "$HERE/stubs/pm-stub" "$R/usr/bin/microdnf"
	install_case rhel "fedora" "microdnf install -y systemd openssh-server" \
		/usr/lib/systemd/systemd sshd.service
}

t_id_like_fallback() {
	install_case linuxmint "ubuntu debian" "apt-get update
apt-get install -y systemd-sysv openssh-server" /lib/systemd/systemd ssh.service
}

t_unknown_distro() {
	os_release gentoo ""
	boot pid1
	banger_error "'gentoo'" "debian/ubuntu" "alpine" "fedora" "arch" "opensuse"
	powered_off
	no_calls
}

t_no_package_manager() {
	rm -f "$R/usr/bin/apt-get"
	boot pid1
	banger_error "apt-get"
	powered_off
	no_calls
}

t_no_nat() {
	ID_NAT=0
	boot pid1
	banger_error "--nat" "network"
	powered_off
	no_calls
	# The identity is applied before giving up (resolv.conf, hostname).
	text_is /etc/hostname "$ID_HOST"
}

t_no_default_route() {
	NET=none
	boot pid1
	banger_error "--nat" "default route"
	powered_off
	no_calls
}

t_package_manager_network_error() {
	echo network-fail >"$R/banger-test/pm-mode"
	boot pid1
	banger_error "--nat" "network"
	powered_off
	calls_are "apt-get update
apt-get install -y systemd-sysv openssh-server"
	console_has "Temporary failure resolving"
}

t_package_manager_other_error() {
	echo fail >"$R/banger-test/pm-mode"
	boot pid1
	banger_error "apt-get update failed"
	grep -q '^BANGER-ERROR: .*--nat' "$C/console.log" &&
		fail "blamed the network for a non-network failure"
	powered_off
}

t_oneshot() {
	# Would need an install as PID 1 (Debian, no systemd, network): oneshot
	# mode must not install, exec or mount anything, and must be idempotent.
	boot oneshot
	[ "$(grep -c '^banger-test: exit status 0$' "$C/console.log")" = 2 ] ||
		fail "oneshot runs did not both exit 0: $(grep 'exit status' "$C/console.log" | tr '\n' ';')"
	printf 'hostname=%s\n' "$(cat "$R/etc/hostname")" >"$C/hostname.log"
	identity_applied "$C/hostname.log"
	no_calls
	no_exec
	no_banger_error
	not_powered_off
	for m in /sys /run /dev/pts; do
		grep -q "^[^ ]* $m " "$R/banger-test/mounts-after" &&
			fail "oneshot mode mounted $m"
	done
	[ -s "$R/banger-test/mounts-after" ] || fail "harness: no mount table recorded"
}

t_resolv_conf_symlink() {
	add_systemd
	mkdir -p "$R/etc/resolvconf/run"
	echo "nameserver 127.0.0.53" >"$R/etc/resolvconf/run/resolv.conf"
	ln -s resolvconf/run/resolv.conf "$R/etc/resolv.conf"
	boot pid1
	exec_was /lib/systemd/systemd
	identity_applied
	text_is /etc/resolvconf/run/resolv.conf "nameserver 127.0.0.53"
	[ -L "$R/etc/resolvconf/run/resolv.conf" ] && fail "link target replaced by a link"
}

t_missing_identity_disk() {
	VDC_KIND=none
	# Let the script mount devtmpfs itself, as on a kernel without
	# DEVTMPFS_MOUNT; the host has no /dev/vdc, so there is none in it.
	if [ ! -e /dev/vdc ]; then
		DEV_PREMOUNT=0
	fi
	add_systemd
	add_unit /lib/systemd/system ssh.service
	boot pid1
	exec_was /lib/systemd/systemd
	console_has "no identity disk"
	identity_untouched
	enabled ssh.service
	if [ "$DEV_PREMOUNT" = 0 ]; then
		mounted_at_exec /dev devtmpfs
	fi
}

t_not_an_identity_disk() {
	add_systemd
	head -c 65536 /dev/urandom >"$C/identity.img"
	boot pid1
	exec_was /lib/systemd/systemd
	console_has "not a banger identity disk"
	identity_untouched
}

t_identity_as_regular_file() {
	add_systemd
	VDC_KIND='file'
	boot pid1
	exec_was /lib/systemd/systemd
	identity_applied
}

t_read_only_root() {
	add_systemd
	RO_ROOT=1
	boot pid1
	exec_was /lib/systemd/systemd
	console_has "remounting / read-write"
	identity_applied
}

t_no_tar_in_image() {
	add_systemd
	for t in /bin/tar /usr/bin/tar /sbin/tar /usr/sbin/tar; do
		rm -f "$R$t"
	done
	# A longer authorized_keys, so that a member spans several blocks.
	ID_AUTH=$C/authorized_keys
	cp "$WORK/keys/authorized_keys" "$ID_AUTH"
	i=0
	while [ "$i" -lt 20 ]; do
		echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey$i$i$i$i$i$i$i$i$i$i$i$i key$i@host"
		i=$((i + 1))
	done >>"$ID_AUTH"
	boot pid1
	exec_was /lib/systemd/systemd
	identity_applied
	# busybox sh runs its tar applet whatever PATH says; only the other
	# shells really see an image without tar.
	[ "$GUEST_SHELL" = busybox ] || console_has "no tar in the image"
}

t_invalid_identity() {
	add_systemd
	ID_HOST='bad_host!name'
	boot pid1
	banger_error "invalid hostname"
	powered_off
}

t_identity_member_symlink() {
	add_systemd
	ID_AUTH=symlink
	boot pid1
	banger_error "banger/authorized_keys is not a regular file"
	powered_off
	[ ! -e "$R/etc/banger/authorized_keys" ] || fail "installed authorized_keys"
}

t_exec_failure() {
	add_systemd
	printf '#!/nonexistent/interpreter\n' >"$R/lib/systemd/systemd"
	boot pid1
	banger_error "exited unexpectedly"
	powered_off
	console_has "banger-first-boot: exec /lib/systemd/systemd"
}

# ---------------------------------------------------------------------------
# main

DASH=$(command -v dash 2>/dev/null)
TOTAL=0
FAILED=0
FAILED_NAMES=
for GUEST_SHELL in $SHELLS; do
	if [ "$GUEST_SHELL" = dash ] && [ -z "$DASH" ]; then
		echo "note: dash not installed; skipping the dash runs"
		continue
	fi
	for CASE in $CASES; do
		fn=t_$(printf '%s' "$CASE" | tr '-' '_')
		if ! command -v "$fn" >/dev/null 2>&1; then
			echo "unknown case: $CASE" >&2
			exit 2
		fi
		CASE_ID=$CASE.$GUEST_SHELL
		TOTAL=$((TOTAL + 1))
		if ! new_root; then
			echo "FAIL $CASE [$GUEST_SHELL]: could not build the test root"
			FAILED=$((FAILED + 1))
			continue
		fi
		"$fn"
		if [ -s "$C/failures" ]; then
			FAILED=$((FAILED + 1))
			FAILED_NAMES="$FAILED_NAMES ${CASE}[$GUEST_SHELL]"
			echo "FAIL $CASE [$GUEST_SHELL]"
			sed 's/^/    /' "$C/failures"
			echo "    --- console ---"
			tail -n 15 "$C/console.log" | sed 's/^/    | /'
		else
			echo "PASS $CASE [$GUEST_SHELL]"
			[ "$KEEP" = 1 ] || rm -rf "$C"
		fi
	done
done

echo
if [ "$FAILED" = 0 ]; then
	echo "all $TOTAL cases passed"
	exit 0
fi
echo "$FAILED of $TOTAL cases failed:$FAILED_NAMES"
exit 1
