#!/usr/bin/env bash
# ensure-test-images.sh - build (once, cached) the OCI image layouts that
# banger's image-pull tests, pull benchmark and end-to-end test use.
#
#   ensure-test-images.sh [build]         build if not cached; print NAME=PATH
#   ensure-test-images.sh push REGISTRY   also push both to REGISTRY (plain
#                                         HTTP); print NAME=REGISTRY/REPO:TAG
#   ensure-test-images.sh key             print the cache key and directory
#
# Images (tag "bookworm" in each layout):
#   debian-bookworm-systemd  debootstrap minbase + systemd-sysv + openssh-server,
#                            3 gzip layers, the last one overriding, adding and
#                            whiting out files of the first      -> test/debian
#   debian-bookworm-plain    debootstrap minbase (apt, no systemd), 2 gzip
#                            layers                              -> test/debian-plain
#
# Cache: ${BANGER_CI_CACHE:-/var/cache/banger-ci}/images/<key>/ with
# key = sha256(this script's bytes, debootstrap's package version).  A build
# goes to a temporary directory that is renamed into place when complete, so
# a cache directory that exists is complete.  Building needs root and the
# Debian mirror (BANGER_DEBIAN_MIRROR, default http://deb.debian.org/debian);
# using a cached build needs neither.  BANGER_CI_REBUILD=1 forces a rebuild.
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
CACHE_ROOT=${BANGER_CI_CACHE:-/var/cache/banger-ci}
MIRROR=${BANGER_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
TAG=bookworm
SYSTEMD=debian-bookworm-systemd
PLAIN=debian-bookworm-plain
PATH_ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

declare -A REPO=([$SYSTEMD]=test/debian [$PLAIN]=test/debian-plain)
declare -A NLAYERS=([$SYSTEMD]=3 [$PLAIN]=2)

log() { printf 'ensure-test-images: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
	sed -n '2,24s/^# \{0,1\}//p' "$SELF" >&2
	exit 2
}

# ---------------------------------------------------------------- tools

ensure_tools() {
	local -A pkg_of=([debootstrap]=debootstrap [umoci]=umoci [skopeo]=skopeo [jq]=jq [flock]=util-linux)
	local tool missing=()
	for tool in "${!pkg_of[@]}"; do
		command -v "$tool" >/dev/null || missing+=("${pkg_of[$tool]}")
	done
	((${#missing[@]} == 0)) && return 0
	[[ $EUID -eq 0 ]] || die "missing packages (${missing[*]}) and not root"
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -qq "${missing[@]}" >&2; then
		apt-get update -qq >&2
		apt-get install -y -qq "${missing[@]}" >&2
	fi
}

debootstrap_version() {
	dpkg-query -W -f='${Version}' debootstrap 2>/dev/null ||
		die "debootstrap is not installed as a Debian package"
}

cache_key() {
	{
		cat "$SELF"
		printf '\0debootstrap=%s\n' "$(debootstrap_version)"
	} | sha256sum | cut -d' ' -f1
}

# ---------------------------------------------------------------- cleanup

# Unmount anything left mounted below $1 (a debootstrap interrupted while
# /proc or /sys were mounted in the target), then delete it without ever
# crossing into another filesystem.
remove_tree() {
	local dir=$1 mnt
	[[ -e $dir ]] || return 0
	dir=$(readlink -f "$dir")
	while read -r mnt; do
		[[ -n $mnt ]] || continue
		umount -l "$mnt" 2>/dev/null || log "warning: could not unmount $mnt"
	done < <(findmnt -rn -o TARGET | awk -v d="$dir/" 'index($0, d) == 1' | sort -r)
	rm -rf --one-file-system -- "$dir"
}

BUILD_TMP=
on_exit() {
	if [[ -n $BUILD_TMP ]]; then
		remove_tree "$BUILD_TMP"
	fi
}
trap on_exit EXIT

# ---------------------------------------------------------------- rootfs

# bootstrap ROOT [INCLUDE]: debootstrap a minbase system into ROOT.
bootstrap() {
	local root=$1 include=${2:-} logf=$1.debootstrap.log
	local args=(--variant=minbase "--cache-dir=$CACHE_ROOT/debootstrap-debs")
	[[ -n $include ]] && args+=("--include=$include")
	mkdir -p "$CACHE_ROOT/debootstrap-debs" "$(dirname "$root")"
	log "debootstrap $SUITE into $root${include:+ (+$include)}"
	if ! debootstrap "${args[@]}" "$SUITE" "$root" "$MIRROR" >"$logf" 2>&1; then
		tail -n 30 "$logf" >&2
		[[ -f $root/debootstrap/debootstrap.log ]] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
		die "debootstrap failed (log: $logf)"
	fi
}

# scrub ROOT: drop what must not ship in any layer: caches, logs, device
# nodes, SSH host keys (each VM gets its own) and the build host's
# hostname/resolver.  Root stays locked as debootstrap leaves it.
scrub() {
	local root=${1:?} f
	[[ $root == /*/* ]] || die "refusing to scrub $root"
	if findmnt -rn -o TARGET | grep -q "^$root/"; then
		die "something is still mounted below $root"
	fi
	rm -f "$root"/etc/ssh/ssh_host_*
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/archives/partial/*
	rm -f "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old
	rm -f "$root"/var/log/bootstrap.log "$root"/var/log/dpkg.log \
		"$root"/var/log/alternatives.log "$root"/var/log/apt/*.log
	for f in btmp wtmp lastlog faillog; do
		[[ -f $root/var/log/$f ]] && : >"$root/var/log/$f"
	done
	rm -rf --one-file-system "${root:?}"/dev/* "$root"/run/* "$root"/tmp/* "$root"/var/tmp/*
	printf 'localhost\n' >"$root/etc/hostname"
	: >"$root/etc/resolv.conf"
	chmod 0644 "$root/etc/hostname" "$root/etc/resolv.conf"
	[[ -f $root/etc/machine-id ]] && : >"$root/etc/machine-id"
	rm -f "$root/var/lib/dbus/machine-id"

	local pw
	pw=$(awk -F: '$1 == "root" { print $2 }' "$root/etc/shadow")
	[[ $pw == '*'* || $pw == '!'* ]] || die "root account in $root is not locked"
}

# ---------------------------------------------------------------- layers

# mktar OUT [tar args...]: one uncompressed layer tar with numeric owners,
# xattrs and a stable member order (umoci gzips it when adding).
mktar() {
	local out=$1
	shift
	tar --create --file="$out" --format=posix --numeric-owner \
		--xattrs --xattrs-include='*' --sort=name \
		--pax-option=delete=atime,delete=ctime "$@"
}

new_layout() {
	local layout=$1
	umoci init --layout "$layout"
	umoci new --image "$layout:$TAG"
}

add_layer() {
	local layout=$1 tarball=$2 what=$3
	umoci raw add-layer --image "$layout:$TAG" \
		--history.created_by "banger ensure-test-images.sh: $what" \
		--history.comment "$what" "$tarball"
	rm -f "$tarball"
}

finish_layout() {
	local layout=$1 name=$2
	umoci config --image "$layout:$TAG" \
		--config.cmd /bin/bash --config.env "$PATH_ENV" \
		--os linux --architecture "$(dpkg --print-architecture)" \
		--config.label "org.opencontainers.image.title=$name" \
		--history.created_by "banger ensure-test-images.sh: config"
	umoci gc --layout "$layout"
}

# verify LAYOUT NAME REFROOT: the layout is valid, has the expected number of
# gzip layers, and unpacks to exactly REFROOT (names, types, modes, owners,
# sizes, link targets and file contents).
verify() {
	local layout=$1 name=$2 ref=$3 check n types
	umoci stat --image "$layout:$TAG" >/dev/null || die "$name: umoci stat failed"
	n=$(skopeo inspect --format '{{len .Layers}}' "oci:$layout:$TAG") ||
		die "$name: skopeo inspect failed"
	[[ $n == "${NLAYERS[$name]}" ]] || die "$name: $n layers, want ${NLAYERS[$name]}"
	types=$(skopeo inspect --raw "oci:$layout:$TAG" | jq -r '.layers[].mediaType' | sort -u)
	[[ $types == application/vnd.oci.image.layer.v1.tar+gzip ]] ||
		die "$name: unexpected layer media types: $types"

	check=$(dirname "$layout")/check-$name
	umoci raw unpack --image "$layout:$TAG" "$check" >/dev/null
	if ! diff <(list_tree "$ref") <(list_tree "$check") >&2 ||
		! diff -r --no-dereference -q "$ref" "$check" >&2; then
		die "$name: unpacked image differs from the rootfs it was built from"
	fi
	remove_tree "$check"
	log "$name: verified ($n layers)"
}

list_tree() {
	(cd "$1" && find . \( -type d -printf '%p d %m %U %G\n' \) \
		-o -printf '%p %y %m %U %G %s %l\n' | LC_ALL=C sort)
}

# Layer split for the systemd image (three substantial layers):
#   1  base:   everything except /usr/share, /usr/bin, /usr/sbin and /var
#   2  share:  /usr/share
#   3  top:    /usr/bin, /usr/sbin, /var and a change set over layer 1:
#              /etc/hostname overridden, /etc/hosts and an ssh host key
#              generator unit added, systemd-firstboot masked, and
#              /etc/update-motd.d/10-uname removed by a whiteout.
build_systemd() {
	local work=$1 layout=$2 root=$1/rootfs-systemd stage=$1/stage
	bootstrap "$root" systemd-sysv,openssh-server
	scrub "$root"
	new_layout "$layout"

	mktar "$work/l1.tar" -C "$root" --anchored --no-wildcards \
		--exclude=./usr/share --exclude=./usr/bin --exclude=./usr/sbin --exclude=./var .
	add_layer "$layout" "$work/l1.tar" "base (all but /usr/share, /usr/bin, /usr/sbin, /var)"
	mktar "$work/l2.tar" -C "$root" ./usr/share
	add_layer "$layout" "$work/l2.tar" "/usr/share"

	# The change set, applied to the rootfs after layers 1 and 2 were taken.
	local sysd=$root/etc/systemd/system changed=(
		./etc/hostname
		./etc/hosts
		./etc/systemd/system/ssh-host-keys.service
		./etc/systemd/system/multi-user.target.wants/ssh-host-keys.service
		./etc/systemd/system/systemd-firstboot.service
	)
	printf 'debian\n' >"$root/etc/hostname"
	cat >"$root/etc/hosts" <<-'EOF'
		127.0.0.1	localhost
		127.0.1.1	debian
		::1	localhost ip6-localhost ip6-loopback
		ff02::1	ip6-allnodes
		ff02::2	ip6-allrouters
	EOF
	cat >"$sysd/ssh-host-keys.service" <<-'EOF'
		[Unit]
		Description=Generate missing SSH host keys
		Before=ssh.service

		[Service]
		Type=oneshot
		ExecStart=/usr/bin/ssh-keygen -A
		RemainAfterExit=yes

		[Install]
		WantedBy=multi-user.target
	EOF
	mkdir -p "$sysd/multi-user.target.wants"
	ln -sf /etc/systemd/system/ssh-host-keys.service "$sysd/multi-user.target.wants/"
	ln -sf /dev/null "$sysd/systemd-firstboot.service"
	chmod 0644 "$root/etc/hosts" "$sysd/ssh-host-keys.service"
	[[ -f $root/etc/update-motd.d/10-uname ]] || die "etc/update-motd.d/10-uname missing"
	rm -f "$root/etc/update-motd.d/10-uname"
	mkdir -p "$stage/etc/update-motd.d"
	: >"$stage/etc/update-motd.d/.wh.10-uname"
	chmod 0644 "$stage/etc/update-motd.d/.wh.10-uname"

	mktar "$work/l3.tar" -C "$root" ./usr/bin ./usr/sbin ./var "${changed[@]}" \
		-C "$stage" ./etc/update-motd.d/.wh.10-uname
	add_layer "$layout" "$work/l3.tar" "/usr/bin, /usr/sbin, /var and a change set"
	finish_layout "$layout" "$SYSTEMD"
	verify "$layout" "$SYSTEMD" "$root"
	remove_tree "$root"
	remove_tree "$stage"
}

# Plain, container-style image: layer 1 everything but /usr/share, layer 2
# /usr/share.
build_plain() {
	local work=$1 layout=$2 root=$1/rootfs-plain
	bootstrap "$root"
	scrub "$root"
	new_layout "$layout"
	mktar "$work/l1.tar" -C "$root" --anchored --no-wildcards --exclude=./usr/share .
	add_layer "$layout" "$work/l1.tar" "base (all but /usr/share)"
	mktar "$work/l2.tar" -C "$root" ./usr/share
	add_layer "$layout" "$work/l2.tar" "/usr/share"
	finish_layout "$layout" "$PLAIN"
	verify "$layout" "$PLAIN" "$root"
	remove_tree "$root"
}

describe() {
	local dir=$1 key=$2 name layout
	printf 'key=%s\nbuilt=%s\nsuite=%s\nmirror=%s\ndebootstrap=%s\numoci=%s\n' \
		"$key" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$SUITE" "$MIRROR" \
		"$(debootstrap_version)" "$(umoci --version 2>&1 | head -n1)"
	for name in "$SYSTEMD" "$PLAIN"; do
		layout=$dir/$name
		printf '\n[%s] manifest %s\n' "$name" \
			"$(skopeo inspect --format '{{.Digest}}' "oci:$layout:$TAG")"
		skopeo inspect --raw "oci:$layout:$TAG" |
			jq -r '.layers[] | "layer \(.digest) \(.size) \(.mediaType)"'
	done
}

# ---------------------------------------------------------------- commands

ensure_built() {
	ensure_tools
	local key images final tmp old
	key=$(cache_key)
	images=$CACHE_ROOT/images
	final=$images/$key
	if [[ -d $final && -z ${BANGER_CI_REBUILD:-} ]]; then
		CACHE_DIR=$final
		return 0
	fi
	[[ $EUID -eq 0 ]] || die "no cached images in $final and building needs root"
	mkdir -p "$images"
	exec 9>"$images/.lock"
	if ! flock -n 9; then
		log "waiting for another build to finish ($images/.lock)"
		flock 9
	fi
	if [[ -d $final && -z ${BANGER_CI_REBUILD:-} ]]; then
		CACHE_DIR=$final
		return 0
	fi
	# Under the lock nothing else builds: leftovers are from killed builds.
	for tmp in "$images"/.build.*; do
		[[ -e $tmp ]] && remove_tree "$tmp"
	done

	local start=$SECONDS
	BUILD_TMP=$(mktemp -d "$images/.build.$key.XXXXXX")
	chmod 0755 "$BUILD_TMP"
	log "building into $BUILD_TMP"
	build_systemd "$BUILD_TMP/work" "$BUILD_TMP/$SYSTEMD"
	build_plain "$BUILD_TMP/work" "$BUILD_TMP/$PLAIN"
	remove_tree "$BUILD_TMP/work"
	# umoci writes index.json 0600; tests may read the cache unprivileged.
	chmod -R a+rX "$BUILD_TMP"
	describe "$BUILD_TMP" "$key" >"$BUILD_TMP/BUILD-INFO"

	if [[ -d $final ]]; then
		old=$images/.build.old.$key.$$
		mv -T "$final" "$old"
		mv -T "$BUILD_TMP" "$final"
		remove_tree "$old"
	else
		mv -T "$BUILD_TMP" "$final"
	fi
	BUILD_TMP=
	exec 9>&-
	log "built $final in $((SECONDS - start))s"
	CACHE_DIR=$final
}

cmd_build() {
	ensure_built
	printf '%s=%s\n' "$SYSTEMD" "$CACHE_DIR/$SYSTEMD" "$PLAIN" "$CACHE_DIR/$PLAIN"
}

cmd_push() {
	local registry=${1%/} name ref
	ensure_built
	for name in "$SYSTEMD" "$PLAIN"; do
		ref=$registry/${REPO[$name]}:$TAG
		log "pushing $name to $ref"
		skopeo copy --quiet --dest-tls-verify=false \
			"oci:$CACHE_DIR/$name:$TAG" "docker://$ref" >&2
		printf '%s=%s\n' "$name" "$ref"
	done
}

cmd_key() {
	ensure_tools
	local key
	key=$(cache_key)
	printf 'key=%s\ndir=%s\n' "$key" "$CACHE_ROOT/images/$key"
}

main() {
	case ${1:-build} in
	build) (($# <= 1)) || usage; cmd_build ;;
	push) (($# == 2)) || usage; cmd_push "$2" ;;
	key) (($# == 1)) || usage; cmd_key ;;
	-h | --help | help) usage ;;
	*) usage ;;
	esac
}

main "$@"
