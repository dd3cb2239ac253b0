#!/usr/bin/env bash
# banger kernel catalog/pull/list/show/rm against a real HTTP server on
# 127.0.0.1 (http_server.py, started here) serving a catalog and artifact
# tarballs made here: pull, verify, install, record; redirects, relative
# and absolute URLs, file:// catalogs; then every failure — checksum
# mismatch, truncated body, short body, 404, malformed catalogs, hostile
# or incomplete tarballs — must name what was wrong and leave nothing
# installed or recorded.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${BANGER_BIN:?BANGER_BIN must point at the banger CLI}
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 is not installed"; exit 77; }
[ -x /bin/true ] || { echo "SKIP: /bin/true (our fake ELF vmlinux) is missing"; exit 77; }
[ "$(uname -m)" = x86_64 ] || { echo "SKIP: the fake kernels are x86_64"; exit 77; }

tmp=$(mktemp -d)
srv_pid=
cleanup() {
	if [ -n "$srv_pid" ]; then
		kill "$srv_pid" 2>/dev/null
		wait "$srv_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
# A dead proxy in the environment, whatever the caller had: requests to
# the catalog on 127.0.0.1 must go there directly (tests/integration/proxy).
unset HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY
export http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9
export BANGER_HOME="$tmp/state" BANGER_RUNTIME_DIR="$tmp/run"
kdir=$BANGER_HOME/kernels
www=$tmp/www
stage=$tmp/stage
mkdir -p "$www/abs" "$stage"
fail=0

check() { # check NAME EXPECTED_RC CMD...
	local name=$1 want=$2
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	local got=$?
	if [ "$got" -ne "$want" ]; then
		echo "FAIL $name: exit $got, wanted $want"
		sed 's/^/  out: /' "$tmp/out"
		sed 's/^/  err: /' "$tmp/err"
		fail=1
	else
		echo "PASS $name"
	fi
}
has() { # has NAME PATTERN FILE
	if grep -q -- "$2" "$3"; then
		echo "PASS $1"
	else
		echo "FAIL $1: no '$2' in:"
		sed 's/^/  /' "$3"
		fail=1
	fi
}
ok() { # ok NAME CMD...
	local name=$1
	shift
	if "$@"; then echo "PASS $name"; else echo "FAIL $name"; fail=1; fi
}
# Nothing of kernel NAME is installed or recorded, and no staging is left.
nothing_left() {
	local name=$1 leftovers
	leftovers=$(find "$kdir" -mindepth 1 -maxdepth 1 \( -name "$name" -o -name '.staging-*' -o -name '.trash-*' \) 2>/dev/null)
	if [ -n "$leftovers" ]; then
		echo "FAIL $name-nothing-installed: left behind: $leftovers"
		fail=1
	else
		echo "PASS $name-nothing-installed"
	fi
	"$bin" kernel list --json >"$tmp/list" 2>&1
	if grep -q "\"name\": \"$name\"" "$tmp/list"; then
		echo "FAIL $name-nothing-recorded:"
		cat "$tmp/list"
		fail=1
	else
		echo "PASS $name-nothing-recorded"
	fi
}

# ---- artifacts ----
mk() { mkdir -p "$stage/$1"; }
mk elf
cp /bin/true "$stage/elf/vmlinux"
printf 'CONFIG_VIRTIO_BLK=y\n' >"$stage/elf/config"
python3 "$here/make_bzimage.py" /bin/true "$stage/elf/bzImage"
tar -C "$stage/elf" -czf "$www/good.tar.gz" vmlinux config bzImage
cp "$www/good.tar.gz" "$www/abs/good.tar.gz"

mk bz
python3 "$here/make_bzimage.py" /bin/true "$stage/bz/bzImage" --release 6.1.0-bzonly
tar -C "$stage/bz" -czf "$www/bzonly.tar.gz" bzImage

mk bzempty
python3 "$here/make_bzimage.py" /bin/true "$stage/bzempty/bzImage" --empty
tar -C "$stage/bzempty" -czf "$www/bzempty.tar.gz" bzImage

mk initrd
cp /bin/true "$stage/initrd/vmlinux"
printf 'not really an initrd\n' >"$stage/initrd/initrd.img"
tar -C "$stage/initrd" -cJf "$www/initrd.tar.xz" . # "./" entries, xz

mk evil
ln -s /etc/passwd "$stage/evil/vmlinux"
tar -C "$stage/evil" -czf "$www/evil.tar.gz" vmlinux

mk extra
cp /bin/true "$stage/extra/vmlinux"
printf 'hello\n' >"$stage/extra/notes.txt"
tar -C "$stage/extra" -czf "$www/extra.tar.gz" vmlinux notes.txt

python3 - "$www/traversal.tar.gz" <<'EOF'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w:gz") as t:
    data = open("/bin/true", "rb").read()
    ti = tarfile.TarInfo("../vmlinux")
    ti.size = len(data)
    t.addfile(ti, io.BytesIO(data))
EOF

mk nokernel
printf 'CONFIG_X=y\n' >"$stage/nokernel/config"
tar -C "$stage/nokernel" -czf "$www/nokernel.tar.gz" config

mk notelf
printf 'this is not an ELF file\n' >"$stage/notelf/vmlinux"
tar -C "$stage/notelf" -czf "$www/notelf.tar.gz" vmlinux

printf 'just some bytes, not a tarball\n' >"$www/notatar.tar.gz"

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

# entry NAME URL FILE [SHA256] [SIZE] [FORMAT]
entry() {
	local name=$1 url=$2 file=$3
	local s=${4:-$(sha "$file")} z=${5:-$(size "$file")} fmt=${6:-}
	printf '    {"name": "%s", "version": "6.1.0", "arch": "x86_64", "url": "%s", "size": %s, "sha256": "%s", "description": "test kernel %s", "vmms": ["firecracker", "qemu"]%s}' \
		"$name" "$url" "$z" "$s" "$name" "${fmt:+, \"format\": \"$fmt\"}"
}

# ---- the server ----
python3 "$here/http_server.py" --root "$www" --port-file "$tmp/port" --log "$tmp/http.log" \
	2>"$tmp/server.err" &
srv_pid=$!
for _ in $(seq 1 100); do
	[ -s "$tmp/port" ] && break
	sleep 0.1
done
[ -s "$tmp/port" ] || { echo "FAIL: the HTTP server did not start"; cat "$tmp/server.err"; exit 1; }
port=$(cat "$tmp/port")
base=http://127.0.0.1:$port

wrong_sha=$(printf 'something else' | sha256sum | cut -d' ' -f1)
good=$www/good.tar.gz
{
	printf '{\n  "schema_version": 1,\n  "kernels": [\n'
	entry good good.tar.gz "$good" "" "" elf
	printf ',\n'; entry redirected redirect2/good.tar.gz "$good"
	printf ',\n'; entry absolute "$base/abs/good.tar.gz" "$good"
	printf ',\n'; entry bzonly bzonly.tar.gz "$www/bzonly.tar.gz"
	printf ',\n'; entry bzempty bzempty.tar.gz "$www/bzempty.tar.gz" "" "" bzimage
	printf ',\n'; entry withinitrd initrd.tar.xz "$www/initrd.tar.xz"
	printf ',\n'; entry slow slow/good.tar.gz "$good"
	printf ',\n'; entry slowtty slow/good.tar.gz "$good"
	printf ',\n'; entry mismatch good.tar.gz "$good" "$wrong_sha"
	printf ',\n'; entry truncated truncate/good.tar.gz "$good"
	printf ',\n'; entry short good.tar.gz "$good" "" "$(($(size "$good") + 100))"
	printf ',\n'; entry long good.tar.gz "$good" "" "$(($(size "$good") - 100))"
	printf ',\n'; entry missing missing.tar.gz "$good"
	printf ',\n'; entry evil evil.tar.gz "$www/evil.tar.gz"
	printf ',\n'; entry extra extra.tar.gz "$www/extra.tar.gz"
	printf ',\n'; entry traversal traversal.tar.gz "$www/traversal.tar.gz"
	printf ',\n'; entry nokernel nokernel.tar.gz "$www/nokernel.tar.gz"
	printf ',\n'; entry notelf notelf.tar.gz "$www/notelf.tar.gz"
	printf ',\n'; entry notatar notatar.tar.gz "$www/notatar.tar.gz"
	printf ',\n'; entry wrongformat bzonly.tar.gz "$www/bzonly.tar.gz" "" "" elf
	printf '\n  ]\n}\n'
} >"$www/catalog.json"
cat="$base/catalog.json"

# ---- listing the catalog ----
check catalog-table 0 "$bin" kernel catalog --catalog "$cat"
has catalog-table-lists "^good  *6.1.0  *x86_64" "$tmp/out"
check catalog-json 0 "$bin" kernel catalog --catalog "$cat" --json
has catalog-json-resolves-relative "\"url\": \"$base/good.tar.gz\"" "$tmp/out"
has catalog-json-keeps-absolute "\"url\": \"$base/abs/good.tar.gz\"" "$tmp/out"
has catalog-json-vmms '"vmms": \["firecracker", "qemu"\]' "$tmp/out"
check catalog-unconfigured 2 "$bin" kernel catalog
has catalog-unconfigured-says-how "kernel_catalog" "$tmp/err"
# A catalog over plain HTTP to anything but loopback (or a host listed in
# insecure_registries) is refused before a connection: 192.0.2.1 is
# TEST-NET-1.  Where a network namespace can be made the command runs in
# an empty one, so even a regression could send nothing anywhere.
noNet=
if unshare -rn true 2>/dev/null; then noNet="unshare -rn"; fi
check catalog-plain-http-refused 1 $noNet "$bin" kernel catalog --catalog http://192.0.2.1:8080/catalog.json
has catalog-plain-http-msg "refusing plain HTTP to 192.0.2.1:8080" "$tmp/err"

# ---- a good pull ----
check pull-good 0 "$bin" kernel pull good --catalog "$cat"
has pull-good-summary "pulled kernel good: x86_64 elf" "$tmp/out"
ok pull-good-vmlinux cmp -s "$kdir/good/vmlinux" /bin/true
ok pull-good-config cmp -s "$kdir/good/config" "$stage/elf/config"
ok pull-good-bzimage cmp -s "$kdir/good/bzImage" "$stage/elf/bzImage"
ok pull-good-no-artifact-kept test "$(ls -A "$kdir/good" | sort | tr '\n' ' ')" = "bzImage config kernel.json vmlinux "
check show-good 0 "$bin" kernel show good --json
has show-good-format '"format": "elf"' "$tmp/out"
has show-good-sha "\"sha256\": \"$(sha "$good")\"" "$tmp/out"
has show-good-source "\"source\": \"$base/good.tar.gz\"" "$tmp/out"
has show-good-path "\"kernel_path\": \"$kdir/good/vmlinux\"" "$tmp/out"
has show-good-firecracker "\"firecracker\": {\"path\": \"$kdir/good/vmlinux\"" "$tmp/out"
# /bin/true has no PVH note: QEMU gets the bzImage shipped beside it
has show-good-qemu "\"qemu\": {\"path\": \"$kdir/good/bzImage\"" "$tmp/out"
check list-good 0 "$bin" kernel list
has list-good-row "^good  *6.1.0  *x86_64  *elf" "$tmp/out"
check pull-good-again 6 "$bin" kernel pull good --catalog "$cat"
has pull-good-again-says "already installed" "$tmp/err"

# ---- redirects, absolute URLs, bzImage-only, initrd, progress ----
check pull-redirected 0 "$bin" kernel pull redirected --catalog "$cat"
has pull-redirected-followed "GET /redirect/good.tar.gz" "$tmp/http.log"
ok pull-redirected-vmlinux cmp -s "$kdir/redirected/vmlinux" /bin/true
check pull-absolute 0 "$bin" kernel pull absolute --catalog "$cat"
has pull-absolute-fetched "GET /abs/good.tar.gz" "$tmp/http.log"

check pull-bzonly 0 "$bin" kernel pull bzonly --catalog "$cat"
has pull-bzonly-format "bzimage" "$tmp/out"
ok pull-bzonly-extracted cmp -s "$kdir/bzonly/vmlinux" /bin/true
check show-bzonly 0 "$bin" kernel show bzonly
has show-bzonly-kernel "kernel: *$kdir/bzonly/bzImage" "$tmp/out"
has show-bzonly-fc "firecracker: boots $kdir/bzonly/vmlinux" "$tmp/out"
has show-bzonly-qemu "qemu: *boots $kdir/bzonly/bzImage" "$tmp/out"

check pull-bzempty 0 "$bin" kernel pull bzempty --catalog "$cat"
ok pull-bzempty-no-vmlinux test ! -e "$kdir/bzempty/vmlinux"
check show-bzempty 0 "$bin" kernel show bzempty
has show-bzempty-fc-refused "firecracker: no: kernel 'bzempty' is a bzImage and no ELF vmlinux could be extracted" "$tmp/out"

check pull-initrd 0 "$bin" kernel pull withinitrd --catalog "$cat"
check show-initrd 0 "$bin" kernel show withinitrd --json
has show-initrd-path "\"initrd_path\": \"$kdir/withinitrd/initrd.img\"" "$tmp/out"

check pull-progress 0 "$bin" kernel pull slow --catalog "$cat"
has pull-progress-plain "downloaded .* (100%)" "$tmp/err"
if command -v script >/dev/null 2>&1; then
	script -qec "$bin kernel pull slowtty --catalog $cat" /dev/null >"$tmp/tty" 2>&1
	has pull-progress-tty-bar "\[#####" "$tmp/tty"
	has pull-progress-tty-done "100%" "$tmp/tty"
else
	echo "SKIP pull-progress-tty: no script(1)"
fi

# ---- failures: each names the problem, nothing installed or recorded ----
check pull-mismatch 1 "$bin" kernel pull mismatch --catalog "$cat"
has pull-mismatch-says "sha256 mismatch" "$tmp/err"
has pull-mismatch-says-both "$wrong_sha" "$tmp/err"
nothing_left mismatch

check pull-truncated 1 "$bin" kernel pull truncated --catalog "$cat"
has pull-truncated-says "truncated" "$tmp/err"
nothing_left truncated

check pull-short 1 "$bin" kernel pull short --catalog "$cat"
has pull-short-says "truncated: received $(size "$good") of" "$tmp/err"
nothing_left short

check pull-long 1 "$bin" kernel pull long --catalog "$cat"
has pull-long-says "larger than the $(($(size "$good") - 100)) bytes the catalog states" "$tmp/err"
nothing_left long

check pull-404 3 "$bin" kernel pull missing --catalog "$cat"
has pull-404-says "HTTP 404" "$tmp/err"
has pull-404-names-url "$base/missing.tar.gz" "$tmp/err"
nothing_left missing

check pull-symlink 2 "$bin" kernel pull evil --catalog "$cat"
has pull-symlink-says "'vmlinux' is not a regular file" "$tmp/err"
nothing_left evil
ok pull-symlink-passwd-untouched test ! -L "$kdir/evil/vmlinux"

check pull-extra-member 2 "$bin" kernel pull extra --catalog "$cat"
has pull-extra-member-says "'notes.txt' is not allowed" "$tmp/err"
nothing_left extra

check pull-traversal 2 "$bin" kernel pull traversal --catalog "$cat"
has pull-traversal-says "'../vmlinux' is not allowed" "$tmp/err"
nothing_left traversal
ok pull-traversal-no-escape test ! -e "$kdir/vmlinux"

check pull-nokernel 2 "$bin" kernel pull nokernel --catalog "$cat"
has pull-nokernel-says "holds no kernel" "$tmp/err"
nothing_left nokernel

check pull-notelf 2 "$bin" kernel pull notelf --catalog "$cat"
has pull-notelf-says "neither an ELF vmlinux" "$tmp/err"
nothing_left notelf

check pull-notatar 2 "$bin" kernel pull notatar --catalog "$cat"
has pull-notatar-says "not a tar archive\|not a valid tar archive" "$tmp/err"
nothing_left notatar

check pull-wrongformat 2 "$bin" kernel pull wrongformat --catalog "$cat"
has pull-wrongformat-says "the catalog says format \"elf\" but the artifact's kernel is bzimage" "$tmp/err"
nothing_left wrongformat

check pull-unknown 3 "$bin" kernel pull nosuchkernel --catalog "$cat"
has pull-unknown-lists "is not in the catalog .*it lists: good" "$tmp/err"
nothing_left nosuchkernel

check pull-badname 2 "$bin" kernel pull ../etc --catalog "$cat"

# malformed catalogs: refused as a whole, naming entry and field
sed 's/"sha256": "[0-9a-f]*"/"sha256": "abc"/' "$www/catalog.json" >"$www/bad-sha.json"
check catalog-bad-sha 2 "$bin" kernel catalog --catalog "$base/bad-sha.json"
has catalog-bad-sha-says 'malformed catalog .*kernels\[0\] ("good"): sha256 must be 64 hexadecimal digits' "$tmp/err"
check pull-bad-sha 2 "$bin" kernel pull good2 --catalog "$base/bad-sha.json"
nothing_left good2
sed 's/"size": [0-9]*/"size": "big"/' "$www/catalog.json" >"$www/bad-size.json"
check catalog-bad-size 2 "$bin" kernel catalog --catalog "$base/bad-size.json"
has catalog-bad-size-says "size must be a positive integer" "$tmp/err"
head -c 200 "$www/catalog.json" >"$www/cut.json"
check catalog-not-json 2 "$bin" kernel catalog --catalog "$base/cut.json"
has catalog-not-json-says "malformed catalog $base/cut.json: line" "$tmp/err"
sed 's/"schema_version": 1/"schema_version": 7/' "$www/catalog.json" >"$www/future.json"
check catalog-future 5 "$bin" kernel catalog --catalog "$base/future.json"
has catalog-future-says "schema_version 7" "$tmp/err"
check pull-from-malformed 5 "$bin" kernel pull withinitrd2 --catalog "$base/future.json"
nothing_left withinitrd2
check catalog-404 3 "$bin" kernel catalog --catalog "$base/nope.json"
has catalog-404-says "HTTP 404" "$tmp/err"

# ---- the configured catalog and a file:// catalog ----
printf 'kernel_catalog = %s\n' "$cat" >"$BANGER_HOME/config"
check catalog-configured 0 "$bin" kernel catalog
has catalog-configured-lists "^withinitrd" "$tmp/out"
check rm-good 0 "$bin" kernel rm good
ok rm-good-files-gone test ! -e "$kdir/good"
check rm-good-again 3 "$bin" kernel rm good
check pull-file-catalog 0 "$bin" kernel pull good --catalog "$www/catalog.json"
check show-file-source 0 "$bin" kernel show good --json
has show-file-source-url "\"source\": \"file://$www/good.tar.gz\"" "$tmp/out"

# ---- rm refuses while a VM uses the kernel ----
if command -v sqlite3 >/dev/null 2>&1; then
	sqlite3 "$BANGER_HOME/banger.db" "PRAGMA foreign_keys=ON; INSERT INTO vms (id, name, kernel_name, state, vmm, vcpus, memory_mib, disk_bytes, created_at, updated_at) VALUES ('0000beef', 'web', 'bzonly', 'stopped', 'qemu', 1, 256, 0, 1, 1);"
	check rm-in-use 6 "$bin" kernel rm bzonly
	has rm-in-use-names-vm "kernel 'bzonly' is used by VM 'web'" "$tmp/err"
	ok rm-in-use-files-kept test -f "$kdir/bzonly/bzImage"
	check rm-in-use-still-listed 0 "$bin" kernel show bzonly
	sqlite3 "$BANGER_HOME/banger.db" "DELETE FROM vms WHERE id='0000beef';"
else
	echo "SKIP rm-in-use: no sqlite3 CLI to record a VM"
fi
check rm-several 0 "$bin" kernel rm bzonly bzempty withinitrd
ok rm-several-gone test ! -e "$kdir/bzonly" -a ! -e "$kdir/bzempty" -a ! -e "$kdir/withinitrd"
leftovers=$(find "$kdir" -mindepth 1 -maxdepth 1 -name '.*' ! -name .lock)
ok no-staging-or-trash-left test -z "$leftovers"
check list-final 0 "$bin" kernel list --json
for k in good redirected absolute slow; do
	has "list-final-$k" "\"name\": \"$k\"" "$tmp/out"
done

exit $fail
