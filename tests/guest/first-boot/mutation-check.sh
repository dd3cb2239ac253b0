#!/bin/sh
# The sed expressions below are meant to be literal.
# shellcheck disable=SC2016
# Checks that the first-boot tests catch broken behaviour: each mutation
# below breaks one behaviour of banger-first-boot with a one-line sed edit,
# and the named test case must then FAIL.  A mutation the tests do not
# catch ("SURVIVED") means a test is not testing what it claims.
#
# usage: mutation-check.sh        (root; takes a minute or two)
# Exits 0 when every mutation is caught, 1 otherwise, 77 when the tests
# cannot run here.

set -u

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
ORIG=$REPO/guest/first-boot/banger-first-boot

if [ "$(id -u)" != 0 ]; then
	echo "SKIP: must run as root (run-tests.sh needs it)"
	exit 77
fi

TMP=$(mktemp -d /tmp/banger-first-boot-mutants.XXXXXX) || exit 1
trap 'rm -rf "$TMP"' EXIT

# The unmodified script must pass first, or nothing below means anything.
"$HERE/run-tests.sh" >"$TMP/baseline.log" 2>&1
rc=$?
if [ "$rc" = 77 ]; then
	cat "$TMP/baseline.log"
	exit 77
fi
if [ "$rc" != 0 ]; then
	echo "the unmodified script does not pass run-tests.sh; fix that first:"
	grep -v '^PASS' "$TMP/baseline.log"
	exit 1
fi

TOTAL=0
SURVIVED=0

# mutant CASE SHELLS DESCRIPTION SED-EXPRESSION
mutant() {
	TOTAL=$((TOTAL + 1))
	m=$TMP/mutant.$TOTAL
	sed -e "$4" "$ORIG" >"$m"
	if cmp -s "$m" "$ORIG"; then
		echo "ERROR   $1: mutation did not apply: $3"
		SURVIVED=$((SURVIVED + 1))
		return
	fi
	if FIRST_BOOT_UNDER_TEST=$m "$HERE/run-tests.sh" -s "$2" "$1" \
		>"$m.log" 2>&1; then
		echo "SURVIVED $1 [$2]: $3"
		SURVIVED=$((SURVIVED + 1))
	else
		echo "caught   $1 [$2]: $3"
	fi
}

B="busybox dash"

mutant systemd-present "$B" "systemd is not looked for" \
	's|for fs_path in /lib/systemd/systemd /usr/lib/systemd/systemd|for fs_path in /nonexistent|'
mutant systemd-present "$B" "/sys is not mounted" \
	's|^\tmount_if_needed sysfs .*|\t:|'
mutant systemd-present "$B" "units are not enabled" \
	's|^\tenable_units$|\t:|'
mutant identity-applied "$B" "host key installed world-readable" \
	's|"\$HOST_KEY" 0600|"$HOST_KEY" 0644|'
mutant identity-applied "$B" "authorized keys go to /root" \
	's|^AUTH_KEYS=.*|AUTH_KEYS=/root/.ssh/authorized_keys|'
mutant identity-applied "$B" "drop-in lacks PasswordAuthentication no" \
	's|"PasswordAuthentication no"|"UsePAM yes"|'
mutant identity-applied "$B" "running hostname not set" \
	's|>/proc/sys/kernel/hostname; then|>/dev/null; then false \&\&|'
mutant identity-applied "$B" "stale banger /etc/hosts lines kept" \
	's|\*"# banger-first-boot") continue ;;|*"# banger-first-boot-x") continue ;;|'
mutant debian "$B" "openssh-server not installed" \
	's|apt-get install -y systemd-sysv openssh-server|apt-get install -y systemd-sysv|'
mutant debian dash "apt-get run without DEBIAN_FRONTEND" \
	's|^\t\texport DEBIAN_FRONTEND|\t\t:|'
mutant alpine "$B" "sshd added to the wrong runlevel" \
	's|^\t\trc-update add sshd default |\t\trc-update add sshd boot |'
mutant fedora "$B" "fedora uses yum" \
	's|^\t\tii_pm=dnf$|\t\tii_pm=yum|'
mutant arch "$B" "pacman without -y (stale databases)" \
	's|pacman -Sy --noconfirm systemd openssh|pacman -S --noconfirm systemd openssh|'
mutant arch "$B" "no settings block when sshd_config lacks Include" \
	's|^\tesi_inc=0$|\tesi_inc=1|'
mutant opensuse "$B" "zypper prompts" \
	's|zypper --non-interactive install|zypper install|'
mutant id-like-fallback "$B" "ID_LIKE ignored" \
	's|for ii_l in \$ii_like; do|for ii_l in ; do|'
mutant unknown-distro "$B" "fatal error exits instead of powering off" \
	's|^\t\tpower_off$|\t\texit 1|'
mutant unknown-distro dash "no poweroff fallback" \
	's|^\tpoweroff -f 2>/dev/null$|\t:|'
mutant no-nat "$B" "BANGER_NAT='0' not checked" \
	's|if \[ "\$BANGER_NAT" = 0 \]; then|if false; then|'
mutant no-default-route "$B" "default route not checked" \
	's|if ! has_default_route; then|if false; then|'
mutant package-manager-network-error "$B" "network errors not recognised" \
	's|if network_failure_in "\$1"; then|if false; then|'
mutant oneshot "$B" "oneshot mode behaves as PID 1" \
	's|^\toneshot_main$|\tpid1_main|'
mutant resolv-conf-symlink "$B" "files written through symlinks" \
	's|! mv -f "\$wf_tmp" "\$wf_dest"|! cat "$wf_tmp" >"$wf_dest"|'
mutant missing-identity-disk "$B" "missing identity disk is fatal" \
	's|^\t\tlog "no identity disk at|\t\tfatal "no identity disk at|'
mutant read-only-root "$B" "read-only / not remounted" \
	's|mount -o remount,rw / 2>/dev/null|true|'
mutant no-tar-in-image dash "tar-less reader rounds member sizes down" \
	's|ue_blocks=$(((ue_size + 511) / 512))|ue_blocks=$((ue_size / 512))|'
mutant identity-member-symlink "$B" "symlinked identity members followed" \
	's|if \[ -L "\$li_b/\$li_m" \] .*; then|if false; then|'
mutant exec-failure "$B" "no EXIT trap in PID 1 mode" \
	's|^\ttrap pid1_exit_trap EXIT$|\t:|'

echo
if [ "$SURVIVED" = 0 ]; then
	echo "all $TOTAL mutations caught"
	exit 0
fi
echo "$SURVIVED of $TOTAL mutations not caught"
exit 1
