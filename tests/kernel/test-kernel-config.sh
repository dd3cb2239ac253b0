#!/usr/bin/env bash
# Fast check of the generic guest kernel configuration (no compile, ~10 s once
# the sources are extracted): runs make-generic-kernel.sh --config-only on the
# local Debian kernel sources and asserts that every option banger relies on
# is built in and that loadable modules are off.
#
# Exit codes: 0 pass, 1 fail, 77 skipped (no kernel sources or build tools).
# The source tree is extracted once into the CI cache (see
# scripts/ci/ensure-kernel.sh --source-tree) and reused afterwards.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/../.." && pwd)
TARBALL=${BANGER_KERNEL_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
ROOT=${BANGER_CI_CACHE:-/var/cache/banger-ci}

skip() {
	printf 'SKIP test-kernel-config: %s\n' "$*"
	exit 77
}
fail() {
	printf 'FAIL test-kernel-config: %s\n' "$*"
	exit 1
}

# The options banger's guests depend on, independent of the fragment: if
# someone drops one from the fragment, this list still catches it.
REQUIRED=(
	# architecture and direct boot (Firecracker ELF loader and QEMU -kernel)
	64BIT SMP HYPERVISOR_GUEST PARAVIRT KVM_GUEST PVH ACPI
	# virtio over MMIO (Firecracker) and PCI (QEMU -M pc)
	PCI PCI_MSI VIRTIO VIRTIO_MMIO VIRTIO_MMIO_CMDLINE_DEVICES VIRTIO_PCI
	VIRTIO_BLK VIRTIO_NET BLK_DEV_INITRD
	# vsock to the guest agent
	VSOCKETS VIRTIO_VSOCKETS
	# console and Firecracker's SendCtrlAltDel
	TTY VT UNIX98_PTYS PRINTK SERIAL_8250 SERIAL_8250_CONSOLE
	SERIO_I8042 KEYBOARD_ATKBD
	# wall-clock time (the RTC class replaced the old CONFIG_RTC)
	RTC_CLASS RTC_DRV_CMOS
	# networking, incl. ip= on the kernel command line
	NET INET IPV6 UNIX PACKET IP_PNP
	# filesystems
	EXT4_FS EXT4_FS_POSIX_ACL EXT4_FS_SECURITY PROC_FS SYSFS
	TMPFS TMPFS_POSIX_ACL TMPFS_XATTR DEVTMPFS DEVTMPFS_MOUNT AUTOFS_FS
	# userspace basics
	BINFMT_ELF BINFMT_SCRIPT MULTIUSER FUTEX SHMEM POSIX_TIMERS
	# systemd
	EPOLL SIGNALFD TIMERFD EVENTFD FHANDLE INOTIFY_USER SECCOMP SECCOMP_FILTER
	NAMESPACES UTS_NS IPC_NS PID_NS NET_NS USER_NS
	CGROUPS MEMCG CGROUP_PIDS CGROUP_SCHED FAIR_GROUP_SCHED DMI DMIID
)

TOOL="$REPO_DIR/scripts/make-generic-kernel.sh"
ENSURE="$REPO_DIR/scripts/ci/ensure-kernel.sh"
[[ -x $TOOL && -x $ENSURE ]] || fail "missing or non-executable $TOOL / $ENSURE"

[[ -r $TARBALL ]] || skip "kernel sources not available: $TARBALL (Debian: apt-get install linux-source-6.1)"
for tool in make gcc flex bison tar xz; do
	command -v "$tool" >/dev/null 2>&1 || skip "build tool '$tool' not installed"
done
if ! mkdir -p "$ROOT" 2>/dev/null || [[ ! -w $ROOT ]]; then
	skip "cache directory $ROOT is not writable (set BANGER_CI_CACHE)"
fi

src=$("$ENSURE" --source-tree | tail -n 1) || fail "could not prepare the source tree (see above)"
[[ -f $src/Makefile ]] || fail "ensure-kernel.sh --source-tree gave no source tree: '$src'"

work=$(mktemp -d "${TMPDIR:-/tmp}/test-kernel-config.XXXXXX")
trap 'rm -rf "$work"' EXIT

if ! "$TOOL" --source "$src" --out "$work/out" --build-dir "$work/objects" \
	--name config-test --config-only >"$work/log" 2>&1; then
	cat "$work/log"
	fail "make-generic-kernel.sh --config-only failed (log above)"
fi
config="$work/out/config-test.config"
[[ -s $config ]] || fail "no .config produced"

bad=()
for opt in "${REQUIRED[@]}"; do
	if ! grep -qx "CONFIG_$opt=y" "$config"; then
		got=$(grep -E "^(# )?CONFIG_${opt}[= ]" "$config" || true)
		bad+=("CONFIG_$opt is '${got:-absent}', expected =y")
	fi
done
if grep -q '^CONFIG_MODULES=' "$config"; then
	bad+=("CONFIG_MODULES is enabled, the guest kernel must not use modules")
fi

if [[ ${#bad[@]} -gt 0 ]]; then
	printf '  %s\n' "${bad[@]}"
	fail "${#bad[@]} problem(s) in the generated kernel config"
fi
printf 'PASS test-kernel-config: %d required options built in, CONFIG_MODULES off (%s)\n' \
	"${#REQUIRED[@]}" "$(grep -m1 '^# Linux/x86' "$config" | sed 's/^# //')"
