# shellcheck shell=bash
# A private lab for banger's demo and end-to-end test: a network namespace
# with a Debian docker-registry and a kernel catalog served on its
# loopback, the cached generic kernel and test images pushed into it, and a
# banger state root configured to use them.  Every address lives in the
# namespace.  Source this file, then call lab_up; lab_down (or the EXIT trap
# the caller sets) removes everything by pid.
#
# Inputs:  SRC (repository root), BANGER (CLI path), WORK (empty work dir).
# Outputs: NS, BANGER_HOME, BANGER_RUNTIME_DIR, KNAME, KVER, LAB_PIDS.

lab_log() { printf '[lab] %s\n' "$*" >&2; }
in_ns() { ip netns exec "$NS" "$@"; }
banger() { in_ns "$BANGER" "$@"; }

lab_up() {
	# Unique even when an interrupted earlier run left its namespace and
	# runtime directory behind under a pid that has come round again.
	local id
	id=$$-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
	NS=banger-lab-$id
	export BANGER_HOME=$WORK/state
	export BANGER_RUNTIME_DIR=/run/banger-lab-$id
	LAB_PIDS=()
	local kdir entry
	# The cached artifacts are built (on a cold cache) with the modes a
	# package would have, whatever the caller's umask (077 in the lived-in lane).
	kdir=$(umask 022 && "$SRC/scripts/ci/ensure-kernel.sh" | tail -1)
	entry=$(echo "$kdir"/*.catalog-entry.json)
	KNAME=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$entry")
	KVER=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$entry")
	local images
	images=$(umask 022 && "$SRC/scripts/ci/ensure-test-images.sh")
	LAB_IMG_SYSTEMD=$(sed -n 's/^debian-bookworm-systemd=//p' <<<"$images")
	LAB_IMG_PLAIN=$(sed -n 's/^debian-bookworm-plain=//p' <<<"$images")
	[[ -d $LAB_IMG_SYSTEMD && -d $LAB_IMG_PLAIN ]] || { lab_log "test images missing"; return 1; }

	ip netns add "$NS"
	in_ns ip link set lo up
	in_ns "$SRC/scripts/ci/registry.sh" start "$WORK/registry" 127.0.0.1:5000 >/dev/null
	LAB_PIDS+=("$(cat "$WORK/registry/pid")")
	in_ns skopeo copy -q --dest-tls-verify=false "oci:$LAB_IMG_SYSTEMD:bookworm" docker://127.0.0.1:5000/test/debian:bookworm
	in_ns skopeo copy -q --dest-tls-verify=false "oci:$LAB_IMG_PLAIN:bookworm" docker://127.0.0.1:5000/test/debian-plain:bookworm

	mkdir -p "$WORK/www"
	cp "$kdir"/*-x86_64.tar.gz "$WORK/www/"
	python3 -c 'import json,sys; json.dump({"schema_version": 1, "kernels": [json.load(open(sys.argv[1]))]}, open(sys.argv[2], "w"), indent=1)' \
		"$entry" "$WORK/www/catalog.json"
	in_ns python3 -m http.server 8080 --bind 127.0.0.1 --directory "$WORK/www" >"$WORK/http.log" 2>&1 &
	LAB_PIDS+=($!)
	disown $! # stopped by pid in lab_down, without a job-control notice
	local _
	for _ in $(seq 50); do
		# no proxy: urllib would send even 127.0.0.1 to $http_proxy
		in_ns python3 -c 'import urllib.request as u; u.build_opener(u.ProxyHandler({})).open("http://127.0.0.1:8080/catalog.json")' 2>/dev/null && break
		sleep 0.1
	done

	install -d -m 700 "$BANGER_HOME"
	cat >"$BANGER_HOME/config" <<CFG
vmm = qemu
kernel_catalog = http://127.0.0.1:8080/catalog.json
subnet = 172.30.0.0/24
vcpus = 2
memory_mib = 1024
disk_size = 2G
ready_timeout = 240
CFG
	lab_log "namespace $NS: registry 127.0.0.1:5000, catalog http://127.0.0.1:8080/catalog.json, kernel $KNAME ($KVER)"
}

lab_down() {
	local p l d
	for p in "${LAB_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	# every process left in the namespace (VMMs included), by pid
	for p in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	sleep 0.3
	for l in $(grep -ls "^$BANGER_HOME/" /sys/block/loop*/loop/backing_file 2>/dev/null); do
		d=${l#/sys/block/}
		losetup -d "/dev/${d%%/*}" 2>/dev/null
	done
	ip netns delete "$NS" 2>/dev/null
	rm -rf "$BANGER_RUNTIME_DIR"
}
