#!/bin/sh
# Allocation failure in banger_image_pull against a real registry:
# start Debian's docker-registry on loopback (scripts/ci/registry.sh),
# push a tiny two-layer image built by mkimage.py with skopeo, and run
# test_alloc_pull against it.  Exit 77 (skip) without the tools.
#   test-alloc-pull.sh TEST_BINARY
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=${BANGER_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
bin=$1
for tool in docker-registry skopeo python3 mkfs.ext4 e2fsck; do
	if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/bin/$tool" ]; then
		echo "SKIP: $tool is not installed"
		exit 77
	fi
done
# A dead proxy in the environment: every allocation that fails while a
# request is set up must end in BANGER_ENOMEM, never in a request that
# went to the proxy instead of the registry on loopback.
unset HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY
export http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9
work=$(mktemp -d "${TMPDIR:-/tmp}/banger-alloc-pull.XXXXXX")
cleanup() {
	"$src/scripts/ci/registry.sh" stop "$work/reg" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT
reg=$("$src/scripts/ci/registry.sh" start "$work/reg") || { echo "cannot start the registry"; exit 1; }
python3 "$here/mkimage.py" "$work/layout" t1 || exit 1
skopeo copy --quiet --dest-tls-verify=false "oci:$work/layout:t1" "docker://$reg/hardening/tiny:1" >/dev/null ||
	{ echo "push failed"; exit 1; }
BANGER_TEST_IMAGE="$reg/hardening/tiny:1" "$bin"
