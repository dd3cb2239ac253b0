#!/usr/bin/env bash
# The blob cache kept bounded, against a real registry (Debian's
# docker-registry on 127.0.0.1) and real archives:
#   - imports copy only what the image needs: a zstd bomb (1 GiB of zeros
#     in 33 KB) is refused and leaves nothing, beside a real image it is
#     never written, and --max-bytes holds members and expansion;
#   - a pull over its budget fails before downloading a layer and leaves
#     only verified blobs;
#   - image rm + image prune (and gc) free the blobs, shared ones stay;
#   - blob_cache_max evicts unused blobs after a pull;
#   - a prune racing a pull does not break the pull, and a pull waits for
#     a prune holding the cache.
# Exit 77: skip.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${BANGER_SOURCE_DIR:-$(cd "$HERE/../../.." && pwd)}
BIN=${BANGER_BIN:?BANGER_BIN must point at the banger CLI}
PY=${PYTHON:-python3}

for tool in docker-registry skopeo zstd flock "$PY" mkfs.ext4 resize2fs curl; do
	if ! command -v "$tool" >/dev/null; then
		echo "skip: $tool is not installed"
		exit 77
	fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/banger-blobs-test.XXXXXX")
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	"$SRC/scripts/ci/registry.sh" stop "$WORK/reg" >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT

passed=0 failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
nok() { echo "not ok - $1"; failed=$((failed + 1)); }
check() { # check NAME COMMAND...
	local name=$1
	shift
	if "$@"; then ok "$name"; else nok "$name"; fi
}

export BANGER_HOME=$WORK/home BANGER_RUNTIME_DIR=$WORK/run DOCKER_CONFIG=$WORK/no-docker-config
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$WORK/sanitizer"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$WORK/sanitizer"
mkdir -p "$DOCKER_CONFIG"
BLOBS=$BANGER_HOME/cache/blobs/sha256
b() { "$BIN" "$@"; }

expect_fail() { # expect_fail TEXT COMMAND...: fails, and says TEXT on stderr
	local text=$1 rc
	shift
	"$@" >"$WORK/out.txt" 2>"$WORK/err.txt"
	rc=$?
	if [[ $rc -eq 0 ]] || ! grep -qi -- "$text" "$WORK/err.txt"; then
		echo "# exit $rc; stderr:"
		sed 's/^/#   /' "$WORK/err.txt" | head -n 5
		return 1
	fi
	echo "#   $(grep -i -- "$text" "$WORK/err.txt" | head -n 1)"
}
blob_count() { find "$BLOBS" -maxdepth 1 -type f -name '[0-9a-f]*' 2>/dev/null | wc -l; }
cache_bytes() { find "$BLOBS" -maxdepth 1 -type f -name '[0-9a-f]*' -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
cache_empty() { # no blob and no temporary file
	local left
	left=$(find "$BLOBS" -maxdepth 1 -type f 2>/dev/null)
	[[ -z $left ]] || { echo "# in the cache: $(echo "$left" | head -n 5)"; return 1; }
}
only_verified() { # every file is a blob whose content has its name as digest
	local f bad=0
	for f in "$BLOBS"/* "$BLOBS"/.[!.]*; do
		[[ -e $f ]] || continue
		[[ $(sha256sum <"$f" | cut -d' ' -f1) == "${f##*/}" ]] || { echo "# not verified: $f"; bad=1; }
	done
	return $bad
}
cached() { [[ -f $BLOBS/${1#sha256:} ]]; }
# digests TAG: manifest config layer... (from the fixtures)
digests() { awk -F'\t' -v t="$1" '$1 == t {for (i = 2; i <= NF; i++) print $i}' "$WORK/fx/digests.tsv"; }
all_cached() { local d; for d in $(digests "$1"); do cached "$d" || { echo "# missing $d"; return 1; }; done; }
none_cached() { local d; for d in "$@"; do ! cached "$d" || { echo "# still cached: $d"; return 1; }; done; }
layers_of() { digests "$1" | tail -n +3; }

"$PY" "$HERE/blobs_fixtures.py" "$WORK/fx" || { echo "fixtures failed"; exit 1; }
LAYOUT=$WORK/fx/layout
REG=$("$SRC/scripts/ci/registry.sh" start "$WORK/reg") || { echo "cannot start the registry"; exit 1; }
echo "# registry on $REG"
for tag in small small2 big race; do
	skopeo copy --quiet --dest-tls-verify=false "oci:$LAYOUT:$tag" "docker://$REG/blobs/$tag:1" >/dev/null ||
		{ echo "push $tag failed"; exit 1; }
done
skopeo copy --quiet "oci:$LAYOUT:small" "docker-archive:$WORK/small-docker.tar:blobs/small:1" >/dev/null ||
	{ echo "docker-archive failed"; exit 1; }

# ---- imports: a decompression bomb and what it may not do
check "zstd bomb alone: refused" expect_fail "neither an OCI archive nor a docker save" \
	b image import "$WORK/fx/bomb.tar.zst" --name bomb
check "zstd bomb alone: nothing left in the cache" cache_empty

# the bomb beside a real docker save image: the padding is never written
"$PY" "$HERE/blobs_fixtures.py" mix "$WORK/small-docker.tar" "$WORK/mixed.tar.zst" || { echo "mix failed"; exit 1; }
check "bomb + image, budget 256M: refused (expands past the budget)" expect_fail "expands to more than" \
	b image import "$WORK/mixed.tar.zst" --name mixed --max-bytes 256M
check "bomb + image, budget 256M: nothing left in the cache" cache_empty
check "bomb + image, default budget: imported" b image import "$WORK/mixed.tar.zst" --name mixed
check "bomb + image: the padding was never written (cache $(cache_bytes) bytes)" \
	test "$(cache_bytes)" -lt $((1 << 20))
check "bomb + image: only verified blobs" only_verified
b image rm mixed >/dev/null && b image prune >/dev/null

# a docker save layer over the budget: refused before it is written
check "docker save over --max-bytes: refused" expect_fail "over the budget" \
	b image import "$WORK/small-docker.tar" --name tight --max-bytes 2k
check "docker save over --max-bytes: nothing left in the cache" cache_empty
skopeo copy --quiet "oci:$LAYOUT:big" "oci-archive:$WORK/big-oci.tar:big" >/dev/null
check "OCI archive over --max-bytes: refused" expect_fail "over the budget" \
	b image import "$WORK/big-oci.tar" --name tight --max-bytes 1M
check "OCI archive over --max-bytes: no layer copied" none_cached $(layers_of big)
check "OCI archive over --max-bytes: only verified blobs, no temporaries" only_verified

# a layer listed twice is copied once (layout directory and OCI archive)
skopeo copy --quiet "oci:$LAYOUT:twice" "oci-archive:$WORK/twice-oci.tar:twice" >/dev/null
check "import an OCI archive whose manifest lists a layer twice" b image import "$WORK/twice-oci.tar" --name twice --no-patch
b image rm twice >/dev/null && b image prune >/dev/null
check "import a layout whose manifest lists a layer twice" b image import "$LAYOUT:twice" --name twice --no-patch
b image rm twice >/dev/null && b image prune >/dev/null

# ---- a pull over its budget: refused before any layer is downloaded
check "pull over --max-bytes: refused" expect_fail "over the budget" \
	b image pull "$REG/blobs/big:1" --name big --no-patch --max-bytes 1M
check "pull over --max-bytes: no layer downloaded" none_cached $(layers_of big)
check "pull over --max-bytes: only verified blobs, no temporaries" only_verified
printf 'image_max_bytes = 1M\n' >"$BANGER_HOME/config"
check "pull over config image_max_bytes: refused" expect_fail "image_max_bytes" \
	b image pull "$REG/blobs/big:1" --name big --no-patch
rm -f "$BANGER_HOME/config"

# ---- image rm + prune
check "pull small" b image pull "$REG/blobs/small:1" --name small --no-patch
check "pull small2 (shares a layer with small)" b image pull "$REG/blobs/small2:1" --name small2 --no-patch
check "pull big" b image pull "$REG/blobs/big:1" --name big --no-patch
b image prune >/dev/null
check "prune keeps what images use" bash -c "$(declare -f all_cached cached digests); BLOBS='$BLOBS' WORK='$WORK'; all_cached small && all_cached small2 && all_cached big"
b image rm small >/dev/null
b image prune --dry-run --json >"$WORK/dry.json"
check "prune --dry-run --json: says what would go, removes nothing" bash -c \
	"$PY -c 'import json,sys; r = json.load(open(sys.argv[1])); assert r[\"dry_run\"] and r[\"blobs_removed\"] == 3, r' '$WORK/dry.json' && $(declare -f all_cached cached digests); BLOBS='$BLOBS' WORK='$WORK'; all_cached small"
b image prune --json >"$WORK/prune.json"
check "image rm + prune: small's own blobs freed" bash -c \
	"$PY -c 'import json,sys; r = json.load(open(sys.argv[1])); assert r[\"blobs_removed\"] == 3 and r[\"bytes_removed\"] > 0, r' '$WORK/prune.json'"
read -r SMALL_MAN SMALL_CFG SHARED SMALL_OWN < <(digests small | tr '\n' ' ')
check "image rm + prune: manifest, config, own layer gone" none_cached "$SMALL_MAN" "$SMALL_CFG" "$SMALL_OWN"
check "image rm + prune: the layer small2 shares stays" cached "$SHARED"
check "image rm + prune: small2 and big untouched" bash -c "$(declare -f all_cached cached digests); BLOBS='$BLOBS' WORK='$WORK'; all_cached small2 && all_cached big"
b image rm big >/dev/null
check "gc prunes too" bash -c "'$BIN' gc | grep -q 'blob cache: removed 3 unused blobs'"
check "gc: big's blobs gone" none_cached $(digests big)

# ---- the cap: unused blobs evicted after a pull
check "pull big again" b image pull "$REG/blobs/big:1" --name big --no-patch
b image rm big >/dev/null
check "big's blobs stay cached after rm (under the cap)" bash -c "$(declare -f all_cached cached digests); BLOBS='$BLOBS' WORK='$WORK'; all_cached big"
printf 'blob_cache_max = 1M\n' >"$BANGER_HOME/config"
check "pull small with blob_cache_max = 1M" b image pull "$REG/blobs/small:1" --name small --no-patch
check "cap: big's unused blobs evicted ($(cache_bytes) bytes left)" none_cached $(digests big)
check "cap: what images use stays" bash -c "$(declare -f all_cached cached digests); BLOBS='$BLOBS' WORK='$WORK'; all_cached small && all_cached small2"
rm -f "$BANGER_HOME/config"

# ---- a pull waits while a prune holds the cache
flock -x "$BLOBS/../.lock" sleep 2 &
PIDS+=($!)
sleep 0.3
check "pull while a prune holds the cache: waits, then succeeds" \
	b image pull "$REG/blobs/big:1" --name big-wait --no-patch
check "pull after the wait: its blobs are cached" bash -c "$(declare -f all_cached cached digests); BLOBS='$BLOBS' WORK='$WORK'; all_cached big"
flock -s "$BLOBS/../.lock" sleep 3 &
PIDS+=($!)
sleep 0.3
check "prune while a pull holds the cache: busy (exit 6)" bash -c "'$BIN' image prune; test \$? -eq 6"
check "gc while a pull holds the cache: skips the cache, succeeds" bash -c "'$BIN' gc | grep -q 'blob cache: skipped'"
wait

# ---- a prune racing a pull: the pull is never broken
b image rm big-wait >/dev/null
b image pull "$REG/blobs/race:1" --name race --no-patch >"$WORK/race.out" 2>&1 &
pull=$!
PIDS+=($pull)
prunes=0 busy=0 bad=0
while kill -0 "$pull" 2>/dev/null; do
	b image prune >/dev/null 2>"$WORK/prune.err"
	case $? in
	0) prunes=$((prunes + 1)) ;;
	6) busy=$((busy + 1)) ;;
	*) bad=$((bad + 1)); cat "$WORK/prune.err" ;;
	esac
done
wait "$pull"
rc=$?
echo "# during the pull: $prunes prunes ran, $busy found the cache busy"
check "racing pull succeeded" test "$rc" -eq 0
check "racing prunes never failed otherwise" test "$bad" -eq 0
check "racing pull: its blobs are all cached" bash -c "$(declare -f all_cached cached digests); BLOBS='$BLOBS' WORK='$WORK'; all_cached race"
check "racing pull: recorded" b image show race
check "after the race: only verified blobs, no temporaries" only_verified

if compgen -G "$WORK/sanitizer.*" >/dev/null; then
	head -n 30 "$WORK"/sanitizer.*
	nok "no sanitizer reports from banger"
else
	ok "no sanitizer reports from banger"
fi

echo "# $passed passed, $failed failed"
[[ $failed -eq 0 ]]
