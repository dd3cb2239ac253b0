#!/bin/sh
# Which proxy banger's HTTP requests take (libbanger/core/http_proxy.c),
# checked from the CLI against real servers: a kernel catalog
# (http_server.py), Debian's docker-registry and a forward-proxy stand-in
# (proxy_standin.py) that records every request line it is sent and
# answers it from those servers.
#
#   - A dead proxy in the environment (http_proxy=https_proxy=
#     http://127.0.0.1:9, as on a laptop off the corporate network) does
#     not stop catalog, kernel pull or image pull on 127.0.0.1/localhost.
#   - The config key "proxy" sends a request for a non-loopback host
#     (192.0.2.1, TEST-NET-1) to the stand-in, catalog and registry both;
#     loopback still goes direct.
#   - NO_PROXY and no_proxy make such a host direct; "proxy = none"
#     ignores the environment's proxy; without the key the environment's
#     proxy is used.
#
# The whole test runs in a network namespace of its own with only
# loopback up (unshare -n), so a request that wrongly goes direct to
# 192.0.2.1 fails at once with "network unreachable" and nothing ever
# leaves this machine.  Needs root (the namespace); skips (77) without
# it, python3, docker-registry or skopeo.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=${BANGER_SOURCE_DIR:-$(cd "$here/../../.." && pwd)}
bin=${BANGER_BIN:?BANGER_BIN must point at the banger CLI}

if [ -z "${BANGER_PROXY_TEST_IN_NS:-}" ]; then
	[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root for its own network namespace"; exit 77; }
	for tool in python3 unshare skopeo mkfs.ext4; do
		command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool is not installed"; exit 77; }
	done
	[ -x /usr/bin/docker-registry ] || { echo "SKIP: docker-registry is not installed"; exit 77; }
	BANGER_PROXY_TEST_IN_NS=1 exec unshare -n -- "$0" "$@"
fi
ip link set lo up || { echo "FAIL: cannot bring loopback up in the namespace"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/banger-proxy.XXXXXX")
pids=
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	"$src/scripts/ci/registry.sh" stop "$tmp/reg" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
# Nothing from the caller's environment decides a case unless the case
# sets it.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
export BANGER_HOME="$tmp/state" BANGER_RUNTIME_DIR="$tmp/run" DOCKER_CONFIG="$tmp/docker"
install -d -m 700 "$BANGER_HOME" "$DOCKER_CONFIG"
mkdir -p "$tmp/www"
fail=0
DEAD=http://127.0.0.1:9

check() { # check NAME EXPECTED_RC CMD...
	name=$1 want=$2
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	if [ "$got" -ne "$want" ]; then
		echo "FAIL $name: exit $got, wanted $want"
		sed 's/^/  out: /' "$tmp/out"
		sed 's/^/  err: /' "$tmp/err"
		fail=1
	else
		echo "PASS $name"
	fi
}
ok() { # ok NAME CMD...
	name=$1
	shift
	if "$@"; then echo "PASS $name"; else echo "FAIL $name"; fail=1; fi
}
direct() { # direct NAME CMD...: went straight to 192.0.2.1 (unreachable here), not to a proxy
	name=$1
	shift
	check "$name" 1 "$@"
	if ! grep -q "$FAR port 80" "$tmp/err"; then
		echo "FAIL $name-says-why: no direct connection to $FAR in:"
		sed 's/^/  err: /' "$tmp/err"
		fail=1
	fi
}
config() { printf '%s\n' "$@" >"$BANGER_HOME/config"; }
proxied() { # proxied LINE: the stand-in was asked for exactly this request line
	grep -qxF "$1" "$tmp/proxy.log"
}
proxy_count() { wc -l <"$tmp/proxy.log"; }
wait_port_file() {
	for _ in $(seq 1 100); do
		[ -s "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# ---- a catalog with one fake kernel, its server, a registry, the stand-in ----
mkdir -p "$tmp/stage"
cp /bin/true "$tmp/stage/vmlinux"
tar -C "$tmp/stage" -czf "$tmp/www/k.tar.gz" vmlinux
size=$(stat -c %s "$tmp/www/k.tar.gz")
sha=$(sha256sum "$tmp/www/k.tar.gz" | cut -d' ' -f1)
printf '{"schema_version": 1, "kernels": [{"name": "k", "version": "6.1.0", "arch": "x86_64", "url": "k.tar.gz", "size": %s, "sha256": "%s", "format": "elf", "description": "proxy test kernel", "vmms": ["qemu"]}]}\n' \
	"$size" "$sha" >"$tmp/www/catalog.json"

python3 "$src/tests/integration/kernel/http_server.py" --root "$tmp/www" --port-file "$tmp/http.port" \
	--log "$tmp/http.log" 2>"$tmp/http.err" &
pids="$pids $!"
wait_port_file "$tmp/http.port" || { echo "FAIL: the catalog server did not start"; cat "$tmp/http.err"; exit 1; }
hport=$(cat "$tmp/http.port")

reg=$("$src/scripts/ci/registry.sh" start "$tmp/reg") || { echo "FAIL: cannot start the registry"; exit 1; }
python3 "$src/tests/hardening/mkimage.py" "$tmp/layout" t1 >/dev/null || { echo "FAIL: mkimage.py"; exit 1; }
skopeo copy --quiet --dest-tls-verify=false "oci:$tmp/layout:t1" "docker://$reg/proxy/tiny:1" >/dev/null ||
	{ echo "FAIL: pushing the test image"; exit 1; }

python3 "$here/proxy_standin.py" --port-file "$tmp/proxy.port" --log "$tmp/proxy.log" \
	--route "/v2/=$reg" --route "/=127.0.0.1:$hport" 2>"$tmp/proxy.err" &
pids="$pids $!"
wait_port_file "$tmp/proxy.port" || { echo "FAIL: the proxy stand-in did not start"; cat "$tmp/proxy.err"; exit 1; }
PROXY=http://127.0.0.1:$(cat "$tmp/proxy.port")
FAR=192.0.2.1

# ---- 1. a dead proxy in the environment: loopback is reached directly ----
config ""
check dead-env-catalog-127 0 env http_proxy=$DEAD https_proxy=$DEAD HTTPS_PROXY=$DEAD ALL_PROXY=$DEAD \
	"$bin" kernel catalog --catalog "http://127.0.0.1:$hport/catalog.json"
check dead-env-catalog-localhost 0 env http_proxy=$DEAD https_proxy=$DEAD \
	"$bin" kernel catalog --catalog "http://localhost:$hport/catalog.json"
check dead-env-kernel-pull 0 env http_proxy=$DEAD https_proxy=$DEAD \
	"$bin" kernel pull k --catalog "http://127.0.0.1:$hport/catalog.json"
check dead-env-image-pull 0 env http_proxy=$DEAD https_proxy=$DEAD \
	"$bin" image pull "$reg/proxy/tiny:1" --name direct --no-patch
check dead-env-even-with-no-proxy-list 0 env http_proxy=$DEAD NO_PROXY=example.org \
	"$bin" kernel catalog --catalog "http://127.0.0.1:$hport/catalog.json"
ok dead-env-nothing-reached-the-stand-in test "$(proxy_count)" -eq 0

# ---- 2. the config key: a far host goes to the proxy, loopback does not ----
config "proxy = $PROXY" "insecure_registries = $FAR"
check key-catalog 0 "$bin" kernel catalog --catalog "http://$FAR/catalog.json" --json
ok key-catalog-went-to-proxy proxied "GET http://$FAR/catalog.json HTTP/1.1"
check key-kernel-rm 0 "$bin" kernel rm k
check key-kernel-pull 0 "$bin" kernel pull k --catalog "http://$FAR/catalog.json"
ok key-kernel-artifact-went-to-proxy proxied "GET http://$FAR/k.tar.gz HTTP/1.1"
check key-image-pull 0 "$bin" image pull "$FAR/proxy/tiny:1" --name viaproxy --no-patch
ok key-registry-ping-went-to-proxy proxied "GET http://$FAR/v2/ HTTP/1.1"
ok key-manifest-went-to-proxy grep -q "^GET http://$FAR/v2/proxy/tiny/manifests/1 HTTP/1.1\$" "$tmp/proxy.log"
n=$(proxy_count)
check key-loopback-direct 0 "$bin" kernel catalog --catalog "http://127.0.0.1:$hport/catalog.json"
ok key-loopback-not-proxied test "$(proxy_count)" -eq "$n"
# the key wins over the environment's (dead) proxy
check key-over-env 0 env http_proxy=$DEAD "$bin" kernel catalog --catalog "http://$FAR/catalog.json"
ok key-over-env-went-to-proxy test "$(proxy_count)" -eq $((n + 1))

# ---- 3. NO_PROXY / no_proxy: the far host is reached directly (and is unreachable here) ----
n=$(proxy_count)
direct no-proxy-upper env NO_PROXY=$FAR "$bin" kernel catalog --catalog "http://$FAR/catalog.json"
direct no-proxy-lower env no_proxy=example.org,$FAR "$bin" kernel catalog --catalog "http://$FAR/catalog.json"
direct no-proxy-cidr env no_proxy=192.0.2.0/24 "$bin" kernel catalog --catalog "http://$FAR/catalog.json"
direct no-proxy-star env NO_PROXY='*' "$bin" kernel catalog --catalog "http://$FAR/catalog.json"
ok no-proxy-nothing-proxied test "$(proxy_count)" -eq "$n"

# ---- 4. from the environment, and "none" ----
# (plain HTTP to a far catalog must be allowed explicitly: insecure_registries)
config "insecure_registries = $FAR"
check env-proxy-used 0 env http_proxy="$PROXY" "$bin" kernel catalog --catalog "http://$FAR/catalog.json"
ok env-proxy-went-to-proxy test "$(proxy_count)" -eq $((n + 1))
config "proxy = none" "insecure_registries = $FAR"
direct none-ignores-env env http_proxy="$PROXY" HTTP_PROXY="$PROXY" ALL_PROXY="$PROXY" \
	"$bin" kernel catalog --catalog "http://$FAR/catalog.json"
ok none-nothing-proxied test "$(proxy_count)" -eq $((n + 1))
check none-loopback 0 env http_proxy=$DEAD "$bin" kernel catalog --catalog "http://127.0.0.1:$hport/catalog.json"

exit $fail
