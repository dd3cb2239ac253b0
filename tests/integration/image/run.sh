#!/usr/bin/env bash
# banger image pull/import against a real registry (Debian's docker-registry
# on 127.0.0.1, started and stopped here), with fixtures built by
# fixtures.py and pushed with skopeo: whiteouts and opaque directories,
# links, xattrs, devices, setuid; a multi-platform index; Docker schema 2;
# pull by digest; Bearer token auth with a CDN redirect; a corrupt blob;
# hostile layers against a probe directory; imports; image rm while a VM
# uses the image; --json events; the Debian test image against umoci.
#
# Trees are read back with e2fsck -fn and debugfs, and compared entry by
# entry (owner, mode, size, content, links, xattrs, devices) through a
# read-only loop mount where this host allows one (root).  Exit 77: skip.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${BANGER_SOURCE_DIR:-$(cd "$HERE/../../.." && pwd)}
BIN=${BANGER_BIN:?BANGER_BIN must point at the banger CLI}
PY=${PYTHON:-python3}

for tool in docker-registry skopeo "$PY" mkfs.ext4 e2fsck debugfs resize2fs curl; do
	if ! command -v "$tool" >/dev/null; then
		echo "skip: $tool is not installed"
		exit 77
	fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/banger-image-test.XXXXXX")
PROXY_PID=
MNT=$WORK/mnt
cleanup() {
	mountpoint -q "$MNT" 2>/dev/null && umount "$MNT"
	[[ -n $PROXY_PID ]] && kill "$PROXY_PID" 2>/dev/null
	"$SRC/scripts/ci/registry.sh" stop "$WORK/reg" >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT

passed=0 failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
nok() { echo "not ok - $1"; failed=$((failed + 1)); }
in_home() { # in_home DIR COMMAND...: run with another state root
	local -x BANGER_HOME=$1
	shift
	"$@"
}
check() { # check NAME COMMAND...: run a check, report it
	local name=$1
	shift
	if "$@"; then ok "$name"; else nok "$name"; fi
}

export BANGER_HOME=$WORK/home BANGER_RUNTIME_DIR=$WORK/run DOCKER_CONFIG=$WORK/no-docker-config
# Sanitizer reports (an ASan build of banger) go to files checked at the end.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$WORK/sanitizer"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$WORK/sanitizer"
mkdir -p "$DOCKER_CONFIG" "$MNT"
b() { "$BIN" "$@"; }

REG=$("$SRC/scripts/ci/registry.sh" start "$WORK/reg") || { echo "cannot start the registry"; exit 1; }
echo "# registry on $REG"
PROBE=$WORK/probe
mkdir -p "$PROBE"
echo s3cret >"$PROBE/secret"
chmod 600 "$PROBE/secret"
"$PY" "$HERE/treelist.py" "$PROBE" >"$WORK/probe.before"
"$PY" "$HERE/fixtures.py" "$WORK/fx" "$PROBE" || { echo "fixtures failed"; exit 1; }
LAYOUT=$WORK/fx/layout
echo "# fixtures built"

push() { # push TAG REPO [skopeo options]
	local tag=$1 repo=$2
	shift 2
	skopeo copy --quiet --dest-tls-verify=false "$@" "oci:$LAYOUT:$tag" "docker://$REG/$repo" >/dev/null
}
while IFS=$'\t' read -r tag outcome detail; do
	if [[ $tag == multi ]]; then push "$tag" "test/$tag:1" --all; else push "$tag" "test/$tag:1"; fi ||
		{ echo "push $tag failed"; exit 1; }
done <"$WORK/fx/cases.tsv"
push features test/features-v2s2:1 --format v2s2 || { echo "push v2s2 failed"; exit 1; }
echo "# pushed"

# Can we loop-mount images read-only (root, loop devices)?  Then trees are
# compared entry by entry; else only e2fsck and debugfs checks run.
CAN_MOUNT=0
if [[ $EUID -eq 0 ]]; then
	truncate -s 8M "$WORK/probe.img" && mkfs.ext4 -q -F "$WORK/probe.img" >/dev/null 2>&1 &&
		mount -o loop,ro "$WORK/probe.img" "$MNT" 2>/dev/null && umount "$MNT" && CAN_MOUNT=1
	rm -f "$WORK/probe.img"
fi
[[ $CAN_MOUNT == 1 ]] || echo "# no loop mounts here: trees are checked with debugfs only"

rootfs_of() { b image show "$1" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["rootfs"])'; }
fsck_ok() { e2fsck -fn "$(rootfs_of "$1")" >"$WORK/fsck.log" 2>&1 || { cat "$WORK/fsck.log"; return 1; }; }
in_image() { debugfs -R "stat $2" "$(rootfs_of "$1")" 2>/dev/null | grep -q '^Inode:'; }
cat_image() { debugfs -R "cat $2" "$(rootfs_of "$1")" 2>/dev/null; }
# tree_equal IMAGE EXPECTED-FILE [extra treelist args]
tree_equal() {
	local img=$1 want=$2
	shift 2
	fsck_ok "$img" || return 1
	[[ $CAN_MOUNT == 1 ]] || return 0
	mount -o loop,ro "$(rootfs_of "$img")" "$MNT" || return 1
	"$PY" "$HERE/treelist.py" --ignore lost+found "$@" "$MNT" >"$WORK/got.txt"
	umount "$MNT"
	if ! diff -u "$want" "$WORK/got.txt" >"$WORK/diff.txt"; then
		head -n 40 "$WORK/diff.txt"
		return 1
	fi
}
expect_fail() { # expect_fail EXIT_CODE TEXT COMMAND...: fails with that code, says TEXT
	local code=$1 text=$2 rc
	shift 2
	"$@" >"$WORK/out.txt" 2>"$WORK/err.txt"
	rc=$?
	if [[ $rc -eq 0 ]] || { [[ $code != any ]] && [[ $rc -ne $code ]]; } ||
		! grep -qi -- "$text" "$WORK/err.txt"; then
		echo "# exit $rc; stderr:"
		sed 's/^/#   /' "$WORK/err.txt" | head -n 5
		return 1
	fi
	echo "#   $(grep -v '^\(resolved\|layer\|creating\|applying\|writing\|sizing\)' "$WORK/err.txt" | head -n 1)"
}
no_leftovers() { # nothing half-written under the state or the cache
	local left
	left=$(find "$BANGER_HOME" \( -name '.tmp-*' -o -name '.rootfs.tmp-*' \) 2>/dev/null)
	[[ -z $left ]] || { echo "# leftovers: $left"; return 1; }
}
registry_requests() { grep -c "\"GET /v2/test/$1/$2" "$WORK/reg/registry.log"; }

FEATURES=$WORK/fx/expected/features.txt

# ---- the feature image: layers, whiteouts, links, xattrs, devices
check "pull features (whiteouts, opaque dir, hardlinks, symlinks, xattrs, devices, setuid)" \
	b image pull "$REG/test/features:1" --name features --no-patch
check "features: tree equals what the layers say" tree_equal features "$FEATURES"
check "features: record" bash -c "'$BIN' image show features --json | grep -q '\"prepared\": false'"

# ---- a pull cancelled by its progress callback at each kind of report
# records nothing and leaves no partial file (the public API: pull_cancel)
check "pull cancelled at every kind of report leaves nothing" \
	"${BANGER_PULL_CANCEL:?BANGER_PULL_CANCEL must point at pull_cancel}" "$WORK/cancel" "$REG/test/features:1"

# ---- re-pull of an unchanged image: one manifest request, no blobs
m0=$(registry_requests features manifests) b0=$(registry_requests features blobs)
check "re-pull of an unchanged image" bash -c "'$BIN' image pull '$REG/test/features:1' --name features --no-patch --json | grep -q '\"event\": \"up-to-date\"'"
m1=$(registry_requests features manifests) b1=$(registry_requests features blobs)
check "re-pull costs one manifest request ($((m1 - m0))) and no blob ($((b1 - b0)))" \
	test $((m1 - m0)) -eq 1 -a $((b1 - b0)) -eq 0

# ---- patched: first-boot init, fstab, resolv.conf, host keys
check "pull features patched" b image pull "$REG/test/features:1" --name features-p
check "patched: fsck clean" fsck_ok features-p
check "patched: first-boot init installed" bash -c \
	"debugfs -R 'stat /usr/local/libexec/banger-first-boot' \"\$('$BIN' image show features-p --json | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"rootfs\"])')\" 2>/dev/null | grep -q 'Mode:  0755'"
check "patched: fstab mounts the work disk" bash -c "$(declare -f cat_image rootfs_of b); BIN='$BIN' PY='$PY'; cat_image features-p /etc/fstab | grep -qx '/dev/vdb /root ext4 defaults,nofail 0 2'"
check "patched: resolv.conf has no loopback server" bash -c "$(declare -f cat_image rootfs_of b); BIN='$BIN' PY='$PY'; ! cat_image features-p /etc/resolv.conf | grep -Eq '^nameserver +(127\.|::1)'"
check "patched: the image's SSH host keys are gone" bash -c "$(declare -f in_image rootfs_of b); BIN='$BIN' PY='$PY'; ! in_image features-p /etc/ssh/ssh_host_ed25519_key && in_image features-p /etc/ssh/sshd_config"
if [[ -x ${BANGER_BUILD_DIR:-/nonexistent}/libexec/banger/banger-vsock-agent ]]; then
	check "patched: the vsock agent and its unit installed" bash -c "$(declare -f in_image rootfs_of b); BIN='$BIN' PY='$PY'; in_image features-p /usr/local/libexec/banger-vsock-agent && in_image features-p /etc/systemd/system/banger-vsock-agent.service && in_image features-p /etc/systemd/system/banger-first-boot.service"
fi
check "patched: record says prepared" bash -c "'$BIN' image show features-p --json | grep -q '\"prepared\": true'"

# ---- by digest, and a digest that is not there
DIGEST=$(b image show features --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["digest"])')
check "pull by digest" b image pull "$REG/test/features@$DIGEST" --name by-digest --no-patch
check "by digest: same tree" tree_equal by-digest "$FEATURES"
check "unknown digest: not found" expect_fail 3 "manifest" \
	b image pull "$REG/test/features@sha256:0000000000000000000000000000000000000000000000000000000000000000" --name nope
check "malformed digest refused before any request" expect_fail 2 "digest" \
	b image pull "$REG/test/features@sha256:../../../etc/passwd" --name nope

# ---- Docker schema 2
check "Docker schema 2 is what the registry serves" bash -c \
	"skopeo inspect --raw --tls-verify=false docker://$REG/test/features-v2s2:1 | grep -q 'application/vnd.docker.distribution.manifest.v2+json'"
check "pull Docker schema 2" b image pull "$REG/test/features-v2s2:1" --name v2s2 --no-patch
check "schema 2: same tree" tree_equal v2s2 "$FEATURES"

# ---- multi-platform index
read -r arch other < <(awk -F'\t' '$1 == "multi" {print $3}' "$WORK/fx/cases.tsv" | sed 's/arch=//; s/other=//')
check "pull a multi-platform index (this host: $arch)" b image pull "$REG/test/multi:1" --name multi --no-patch
check "index: this host's variant" bash -c "$(declare -f cat_image rootfs_of b); BIN='$BIN' PY='$PY'; test \"\$(cat_image multi /arch)\" = $arch"
check "index: --platform linux/$other" b image pull "$REG/test/multi:1" --name multi-other --no-patch --platform "linux/$other"
check "index: the other variant" bash -c "$(declare -f cat_image rootfs_of b); BIN='$BIN' PY='$PY'; test \"\$(cat_image multi-other /arch)\" = $other"
check "index: a platform it lacks, offers listed, attestations skipped" bash -c \
	"'$BIN' image pull '$REG/test/multi:1' --name nope --platform linux/s390x 2>&1 | grep -q 'offers: linux/' && ! '$BIN' image pull '$REG/test/multi:1' --name nope --platform linux/s390x 2>&1 | grep -q unknown"

# ---- layer formats: plain tar, zstd, two gzip members (the size estimate
# falls short: the build starts over with more room)
comps=$(awk -F'\t' '$1 == "formats" {print $3}' "$WORK/fx/cases.tsv")
check "pull layers in formats: $comps" b image pull "$REG/test/formats:1" --name formats --no-patch
check "formats: fsck clean" fsck_ok formats
check "formats: plain tar layer" bash -c "$(declare -f cat_image rootfs_of b); BIN='$BIN' PY='$PY'; test \"\$(cat_image formats /fmt/plain)\" = 'plain tar'"
[[ $comps == *zstd* ]] && check "formats: zstd layer" bash -c "$(declare -f cat_image rootfs_of b); BIN='$BIN' PY='$PY'; test \"\$(cat_image formats /fmt/zstd)\" = 'zstd layer'"
check "formats: past 150 MiB of zeros in a second gzip member" bash -c "$(declare -f cat_image rootfs_of b); BIN='$BIN' PY='$PY'; test \"\$(cat_image formats /fmt/after)\" = 'after the zeros' && debugfs -R 'stat /fmt/zeros' \"\$(rootfs_of formats)\" 2>/dev/null | grep -q 'Size: 157286400'"

# ---- a blob whose bytes do not match its digest
CDIG=$(skopeo inspect --raw --tls-verify=false "docker://$REG/test/corrupt:1" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"][7:])')
CBLOB=$WORK/reg/data/docker/registry/v2/blobs/sha256/${CDIG:0:2}/$CDIG/data
"$PY" - "$CBLOB" <<'EOF'
import sys
p = sys.argv[1]
data = bytearray(open(p, 'rb').read())
data[len(data) // 2] ^= 0xff
open(p, 'wb').write(bytes(data))
EOF
check "corrupt blob: refused, naming the digest" expect_fail any "digest" \
	b image pull "$REG/test/corrupt:1" --name corrupt
check "corrupt blob: nothing recorded" bash -c "! '$BIN' image show corrupt >/dev/null 2>&1"
check "corrupt blob: not in the cache" test ! -e "$BANGER_HOME/cache/blobs/sha256/$CDIG"
check "corrupt blob: no half-written files" no_leftovers

# ---- Bearer token auth in front of the registry, blobs redirected to a CDN
mkdir -p "$WORK/auth"
"$PY" "$HERE/authproxy.py" "$REG" "$WORK/auth" &
PROXY_PID=$!
for _ in $(seq 100); do [[ -s $WORK/auth/port ]] && break; sleep 0.1; done
AUTH=127.0.0.1:$(cat "$WORK/auth/port")
check "auth: anonymous pull refused" in_home "$WORK/home-auth" expect_fail any "401\|credentials\|refused" \
	"$BIN" image pull "$AUTH/test/features:1" --name via-auth --no-patch
mkdir -p "$WORK/docker"
printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$AUTH" "$(printf tester:secret | base64)" >"$WORK/docker/config.json"
: >"$WORK/auth/tokens.log"
check "auth: pull with the Docker config's credentials" env DOCKER_CONFIG="$WORK/docker" BANGER_HOME="$WORK/home-auth" \
	"$BIN" image pull "$AUTH/test/features:1" --name via-auth --no-patch
check "auth: one token for the scope, reused" test "$(grep -c issued "$WORK/auth/tokens.log")" -eq 1
check "auth: blobs (3 layers, config) came from the CDN without Authorization" bash -c \
	"test \$(grep -c . '$WORK/auth/cdn.log') -eq 4 && ! grep -q 'auth=yes' '$WORK/auth/cdn.log'"
check "auth: same tree" in_home "$WORK/home-auth" tree_equal via-auth "$FEATURES"

# ---- hostile layers: refused or confined; the probe never touched
while IFS=$'\t' read -r tag outcome detail; do
	[[ $tag == h-* ]] || continue
	case $outcome in
	ok)
		check "hostile $tag: confined" b image pull "$REG/test/$tag:1" --name "$tag" --no-patch
		check "hostile $tag: fsck clean" fsck_ok "$tag"
		[[ -n $detail ]] && check "hostile $tag: stayed inside the image as /$detail" in_image "$tag" "/$detail"
		;;
	fail)
		check "hostile $tag: refused" expect_fail any "$detail" b image pull "$REG/test/$tag:1" --name "$tag" --no-patch
		;;
	fail-patched)
		check "hostile $tag: patch refused" expect_fail any "$detail" b image pull "$REG/test/$tag:1" --name "$tag"
		;;
	fail-budget)
		check "hostile $tag: decompression bomb stopped" expect_fail any "$detail" \
			b image pull "$REG/test/$tag:1" --name "$tag" --no-patch --max-bytes 64M
		;;
	esac
done <"$WORK/fx/cases.tsv"
"$PY" "$HERE/treelist.py" "$PROBE" >"$WORK/probe.after"
check "hostile layers: the probe directory is unchanged" diff -u "$WORK/probe.before" "$WORK/probe.after"
check "hostile layers: nothing recorded for refused ones" bash -c \
	"! '$BIN' image list --json | grep -Eq 'h-(dotdot|hardlink|dot-symlink|slash|bomb|patch|wh-dotdot)'"
check "hostile layers: no half-written files" no_leftovers

# ---- import: OCI layout, docker-archive, oci-archive
check "import an OCI layout" b image import "$LAYOUT:features" --name imp-layout --no-patch
check "import layout: same tree" tree_equal imp-layout "$FEATURES"
skopeo copy --quiet "oci:$LAYOUT:features" "docker-archive:$WORK/features-docker.tar:test/features:1" >/dev/null
check "import a docker save archive" b image import "$WORK/features-docker.tar" --name imp-docker --no-patch
check "import docker-archive: same tree" tree_equal imp-docker "$FEATURES"
# One platform rule for pull and import: a variant the user names must be
# the image's (a docker save config that says v9, imported as v7).
"$PY" - "$WORK/features-docker.tar" "$WORK/features-v9.tar" <<'PYEOF'
import io, json, sys, tarfile
src, dst = sys.argv[1], sys.argv[2]
with tarfile.open(src) as t:
    members = [(m, t.extractfile(m).read() if m.isfile() else None) for m in t.getmembers()]
cfg = json.loads(dict((m.name, d) for m, d in members)["manifest.json"])[0]["Config"]
with tarfile.open(dst, "w", format=tarfile.USTAR_FORMAT) as out:
    for m, d in members:
        if m.name == cfg:
            c = json.loads(d)
            c["variant"] = "v9"
            d = json.dumps(c).encode()
            m.size = len(d)
        out.addfile(m, io.BytesIO(d) if d is not None else None)
PYEOF
check "import docker-archive: another variant named is refused" expect_fail any "is for linux/$arch/v9, not linux/$arch/v7" \
	b image import "$WORK/features-v9.tar" --name imp-v9 --no-patch --platform "linux/$arch/v7"
check "import docker-archive: the variant it has" b image import "$WORK/features-v9.tar" --name imp-v9 --no-patch \
	--platform "linux/$arch/v9"
skopeo copy --quiet "oci:$LAYOUT:features" "oci-archive:$WORK/features-oci.tar:features" >/dev/null
check "import an OCI archive" b image import "$WORK/features-oci.tar" --name imp-oci --no-patch
check "import oci-archive: same tree" tree_equal imp-oci "$FEATURES"
check "import: a tag the layout lacks" expect_fail 3 "no image tagged" b image import "$LAYOUT:nope" --name nope

# ---- image rm refuses while a VM uses the image
"$PY" - "$BANGER_HOME/banger.db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("INSERT INTO vms (id, name, image_name, state, vmm, vcpus, memory_mib, disk_bytes, created_at, updated_at) "
           "VALUES ('feed0001', 'uses-it', 'features', 'stopped', 'qemu', 1, 256, 0, 1, 1)")
db.commit()
EOF
check "rm refuses while a VM uses the image" expect_fail 6 "uses-it" b image rm features
check "rm refused: the rootfs stays" bash -c "test -f \"\$('$BIN' image show features --json | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"rootfs\"])')\""
"$PY" -c "import sqlite3,sys; db=sqlite3.connect(sys.argv[1]); db.execute(\"DELETE FROM vms WHERE id='feed0001'\"); db.commit()" "$BANGER_HOME/banger.db"
FROOT=$(dirname "$(rootfs_of features)")
check "rm once no VM uses it" b image rm features
check "rm: record and files gone" bash -c "! '$BIN' image show features >/dev/null 2>&1 && test ! -e '$FROOT'"
check "rm: unknown image" expect_fail 3 "no image" b image rm features

# ---- --json events
b image pull "$REG/test/features:1" --name features-json --no-patch --json >"$WORK/events.json" 2>"$WORK/err.txt"
check "--json: every line is an event object" "$PY" -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
kinds = [e["event"] for e in ev]
assert kinds[0] == "resolved" and kinds[-1] == "image", kinds
for k in ("unpacked", "done"):
    assert k in kinds, k
assert ev[-1]["image"]["name"] == "features-json"
' "$WORK/events.json"

# ---- the Debian test image (3 layers, systemd + openssh) against umoci
if deb=$("$SRC/scripts/ci/ensure-test-images.sh" push "$REG" 2>"$WORK/deb.log" | awk -F= '/^debian-bookworm-systemd=/ {print $2}') && [[ -n $deb ]]; then
	check "pull the Debian test image" b image pull "$deb" --name debian --no-patch
	check "debian: fsck clean" fsck_ok debian
	layout=$("$SRC/scripts/ci/ensure-test-images.sh" build 2>/dev/null | awk -F= '/^debian-bookworm-systemd=/ {print $2}')
	if [[ $CAN_MOUNT == 1 ]] && command -v umoci >/dev/null && [[ -n $layout ]]; then
		umoci raw unpack --image "$layout:bookworm" "$WORK/umoci" >/dev/null 2>&1
		"$PY" "$HERE/treelist.py" "$WORK/umoci" >"$WORK/debian.want"
		rm -rf "$WORK/umoci"
		check "debian: tree equals umoci's unpack" tree_equal debian "$WORK/debian.want"
	fi
	check "pull the Debian test image patched" b image pull "$deb" --name debian-p
	check "debian patched: fsck clean" fsck_ok debian-p
else
	echo "# skip: Debian test image unavailable ($(tail -n 1 "$WORK/deb.log"))"
fi

if compgen -G "$WORK/sanitizer.*" >/dev/null; then
	head -n 30 "$WORK"/sanitizer.*
	nok "no sanitizer reports from banger"
else
	ok "no sanitizer reports from banger"
fi

echo "# $passed passed, $failed failed"
[[ $failed -eq 0 ]]
