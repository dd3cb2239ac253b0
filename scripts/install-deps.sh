#!/bin/sh
# Install what banger needs to build, test and run on Debian 12.
# Quiet and idempotent: apt is only called when a package is missing.
set -eu
packages="build-essential cmake pkg-config clang
libsqlite3-dev libssh2-1-dev libjansson-dev libcurl4-openssl-dev libarchive-dev
libssl-dev libext2fs-dev comerr-dev libcmocka-dev
e2fsprogs openssh-server openssh-client qemu-system-x86 qemu-utils busybox-static
nftables iproute2 python3 shellcheck cppcheck clang-tidy valgrind
docker-registry skopeo umoci debootstrap
linux-source-6.1 bc flex bison libelf-dev cpio xz-utils"
missing=
for p in $packages; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "install-deps: installing:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
