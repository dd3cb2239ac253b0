#!/bin/sh
# boot-in-ns.sh CASEDIR: the "kernel" of a first-boot test.
#
# Started by run-tests.sh as PID 1 of fresh mount, PID, UTS, IPC and network
# namespaces (unshare --fork --kill-child).  Prepares what the kernel would
# have prepared for init in a banger VM, then execs the real first-boot
# script, unmodified, chrooted into CASEDIR/root:
#   - eth0 configured with a default route (as "ip=" would), unless NET=none;
#   - /dev as a tmpfs with a few nodes and /dev/vdc (a block device node of a
#     loop device holding the identity tar, or a plain file), unless
#     DEV_PREMOUNT=0, in which case the script has to mount devtmpfs itself;
#   - /proc mounted, with /proc/sysrq-trigger (when the kernel has one)
#     covered by a recorder file so "echo o > /proc/sysrq-trigger" cannot
#     power off the machine running the tests (checked before anything
#     runs);
#   - optionally / read-only (RO_ROOT=1).
# MODE=pid1 execs the script as PID 1; MODE=oneshot runs it twice as a
# child of a shell (oneshot mode), the second run checking idempotence.
set -eu

case_dir=$1
root=$case_dir/root
# shellcheck disable=SC1091
. "$case_dir/case.conf"

if [ "$$" != 1 ]; then
	echo "boot-in-ns: not PID 1 of a new PID namespace; refusing to run" >&2
	exit 99
fi

# Network: what the kernel's ip= parameter would have set up.
ip link set lo up
if [ "$NET" = route ]; then
	if ip link add eth0 type veth peer name eth0-peer 2>/dev/null; then
		ip addr add 172.30.0.2/24 dev eth0
		ip link set eth0-peer up
		ip link set eth0 up
		ip route add default via 172.30.0.1 dev eth0
	else
		ip route add default dev lo
	fi
fi

# Root file system read-only, as the kernel mounts it without "rw".
if [ "$RO_ROOT" = 1 ]; then
	mount --bind "$root" "$root"
	mount -o remount,bind,ro "$root"
fi

if [ "$DEV_PREMOUNT" = 1 ]; then
	mount -t tmpfs -o mode=0755,nosuid tmpfs "$root/dev"
	mknod -m 666 "$root/dev/null" c 1 3
	mknod -m 666 "$root/dev/zero" c 1 5
	mknod -m 666 "$root/dev/full" c 1 7
	mknod -m 666 "$root/dev/random" c 1 8
	mknod -m 666 "$root/dev/urandom" c 1 9
	mknod -m 666 "$root/dev/tty" c 5 0
	case $VDC in
	loop:*)
		majmin=${VDC#loop:}
		mknod -m 600 "$root/dev/vdc" b "${majmin%:*}" "${majmin#*:}"
		;;
	file)
		cp "$case_dir/identity.img" "$root/dev/vdc"
		;;
	none) ;;
	esac
fi

mount -t proc proc "$root/proc"
# A kernel without CONFIG_MAGIC_SYSRQ has no trigger at all: the script
# then sees it absent, which is fine.  Where it exists, it must be covered
# (or the test would power off the machine): never go on otherwise.
if [ -e "$root/proc/sysrq-trigger" ]; then
	: >"$case_dir/sysrq"
	mount --bind "$case_dir/sysrq" "$root/proc/sysrq-trigger"
	if ! grep -q " $root/proc/sysrq-trigger " /proc/self/mounts; then
		echo "boot-in-ns: could not cover /proc/sysrq-trigger; refusing to run" >&2
		exit 99
	fi
fi

hostname banger-test-before

script=/usr/local/libexec/banger-first-boot
case $MODE in
pid1)
	# The kernel starts init with only HOME and TERM in its environment.
	# shellcheck disable=SC2086
	exec env -i HOME=/ TERM=linux /usr/sbin/chroot "$root" "$script" $INIT_ARGS
	;;
oneshot)
	exec env -i HOME=/ TERM=linux PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		/usr/sbin/chroot "$root" /bin/sh -c "
		$script; echo \"banger-test: exit status \$?\"
		$script; echo \"banger-test: exit status \$?\"
		cat /proc/mounts >/banger-test/mounts-after"
	;;
esac
echo "boot-in-ns: unknown MODE $MODE" >&2
exit 99
