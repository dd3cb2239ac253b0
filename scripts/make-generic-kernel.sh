#!/usr/bin/env bash
# Build banger's generic x86_64 guest kernel from upstream Linux sources.
#
# Starts from `make allnoconfig` (ARCH=x86_64), merges
# configs/kernel/generic-x86_64.fragment, runs `make olddefconfig`, checks that
# every option the fragment sets survived, then builds vmlinux and bzImage and
# emits a catalog artifact plus its catalog entry. See docs/kernel-build.md.
set -euo pipefail

PROG=make-generic-kernel
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)

usage() {
	cat <<EOF
Usage: $0 --source SRC --out DIR [options]

  --source SRC      kernel sources: an http(s) URL of a kernel.org tarball,
                    a local tarball (e.g. /usr/src/linux-source-6.1.tar.xz),
                    or an already extracted source tree (left untouched:
                    the build happens out of tree)
  --out DIR         where to write NAME-x86_64.tar.gz and
                    NAME.catalog-entry.json (NAME.config with --config-only)
  --name NAME       catalog name (default: generic-<major>.<minor>)
  --jobs N          parallel make jobs (default: nproc)
  --config-only     stop after the configuration step and its checks
  --url-base URL    prefix for the artifact URL in the catalog entry
                    (default: none, the URL is the bare artifact file name)
  --fragment FILE   Kconfig fragment (default: configs/kernel/generic-x86_64.fragment)
  --build-dir DIR   object directory to use and keep (default: a temporary
                    directory that is removed afterwards)
  --source-sha256 H expected sha256 of a downloaded --source tarball
  -h, --help        this help

Environment: SOURCE_DATE_EPOCH overrides the build timestamp (default: the
mtime of the source tree's top-level Makefile); TMPDIR for scratch space.
EOF
}

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$PROG" "$*" >&2
	exit 1
}

# Escape a string for use inside a JSON string literal.
json_escape() {
	local s=$1
	if [[ $s =~ [[:cntrl:]] ]]; then
		die "control characters are not allowed in catalog fields: $(printf '%q' "$s")"
	fi
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	printf '%s' "$s"
}

SOURCE=""
OUT=""
NAME=""
JOBS=""
CONFIG_ONLY=0
URL_BASE=""
FRAGMENT="$REPO_DIR/configs/kernel/generic-x86_64.fragment"
BUILD_DIR=""
SOURCE_SHA256=""

need_arg() {
	[[ $# -ge 2 && -n $2 ]] || die "option $1 needs a value (see --help)"
}

while [[ $# -gt 0 ]]; do
	case $1 in
	--source) need_arg "$@"; SOURCE=$2; shift 2 ;;
	--source=*) SOURCE=${1#*=}; shift ;;
	--out) need_arg "$@"; OUT=$2; shift 2 ;;
	--out=*) OUT=${1#*=}; shift ;;
	--name) need_arg "$@"; NAME=$2; shift 2 ;;
	--name=*) NAME=${1#*=}; shift ;;
	--jobs | -j) need_arg "$@"; JOBS=$2; shift 2 ;;
	--jobs=*) JOBS=${1#*=}; shift ;;
	--config-only) CONFIG_ONLY=1; shift ;;
	--url-base) need_arg "$@"; URL_BASE=$2; shift 2 ;;
	--url-base=*) URL_BASE=${1#*=}; shift ;;
	--fragment) need_arg "$@"; FRAGMENT=$2; shift 2 ;;
	--fragment=*) FRAGMENT=${1#*=}; shift ;;
	--build-dir) need_arg "$@"; BUILD_DIR=$2; shift 2 ;;
	--build-dir=*) BUILD_DIR=${1#*=}; shift ;;
	--source-sha256) need_arg "$@"; SOURCE_SHA256=$2; shift 2 ;;
	--source-sha256=*) SOURCE_SHA256=${1#*=}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done

[[ -n $SOURCE ]] || { usage >&2; die "--source is required"; }
[[ -n $OUT ]] || { usage >&2; die "--out is required"; }
[[ -r $FRAGMENT ]] || die "fragment not readable: $FRAGMENT"
if [[ -z $JOBS ]]; then
	JOBS=$(nproc 2>/dev/null || echo 1)
fi
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive integer, got '$JOBS'"
if [[ -n $NAME && ! $NAME =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]]; then
	die "--name may only contain letters, digits, '.', '_' and '-': '$NAME'"
fi

# --- host tools -------------------------------------------------------------
missing=()
for tool in make gcc ld flex bison bc tar gzip xz awk sha256sum readelf; do
	command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [[ ${#missing[@]} -gt 0 ]]; then
	die "missing host tools: ${missing[*]} (Debian: apt-get install build-essential bc flex bison libelf-dev libssl-dev xz-utils)"
fi
if [[ $CONFIG_ONLY -eq 0 ]] && ! echo '#include <gelf.h>' | gcc -E -x c - >/dev/null 2>&1; then
	die "libelf headers not found (objtool needs them; Debian: apt-get install libelf-dev)"
fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
FRAGMENT=$(cd "$(dirname "$FRAGMENT")" && pwd)/$(basename "$FRAGMENT")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/banger-kernel.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

# --- sources ------------------------------------------------------------------
fetch() {
	local url=$1 dest=$2
	if command -v curl >/dev/null 2>&1; then
		curl -fL --retry 3 -o "$dest" "$url"
	elif command -v wget >/dev/null 2>&1; then
		wget -O "$dest" "$url"
	else
		die "neither curl nor wget is available to download $url"
	fi
}

# Extract a tarball into $WORK/src and print the top of the source tree.
extract_tarball() {
	local tarball=$1 top
	mkdir -p "$WORK/src"
	log "extracting $tarball"
	tar -xf "$tarball" -C "$WORK/src"
	top=$(find "$WORK/src" -mindepth 1 -maxdepth 2 -name Makefile -printf '%h\n' | sort | head -n 1)
	[[ -n $top ]] || die "no kernel Makefile found inside $tarball"
	printf '%s\n' "$top"
}

case $SOURCE in
http://* | https://* | ftp://*)
	tarball="$WORK/$(basename "${SOURCE%%\?*}")"
	log "downloading $SOURCE"
	fetch "$SOURCE" "$tarball" || die "download failed: $SOURCE"
	if [[ -n $SOURCE_SHA256 ]]; then
		got=$(sha256sum "$tarball" | awk '{print $1}')
		[[ $got == "${SOURCE_SHA256,,}" ]] || die "sha256 mismatch for $SOURCE: got $got, expected $SOURCE_SHA256"
	fi
	SRC=$(extract_tarball "$tarball")
	;;
*)
	if [[ -d $SOURCE ]]; then
		SRC=$(cd "$SOURCE" && pwd)
	elif [[ -f $SOURCE ]]; then
		SRC=$(extract_tarball "$SOURCE")
	else
		die "--source is neither a URL, a file nor a directory: $SOURCE"
	fi
	;;
esac
[[ -f $SRC/Makefile && -d $SRC/scripts/kconfig && -d $SRC/arch/x86 ]] ||
	die "$SRC does not look like a Linux source tree"

mk_var() { awk -v v="$1" '$1 == v && $2 == "=" { print $3; exit }' "$SRC/Makefile"; }
K_VERSION=$(mk_var VERSION)
K_PATCHLEVEL=$(mk_var PATCHLEVEL)
[[ $K_VERSION =~ ^[0-9]+$ && $K_PATCHLEVEL =~ ^[0-9]+$ ]] || die "cannot read VERSION/PATCHLEVEL from $SRC/Makefile"
NAME=${NAME:-generic-$K_VERSION.$K_PATCHLEVEL}

if [[ -n $BUILD_DIR ]]; then
	mkdir -p "$BUILD_DIR"
	BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
else
	BUILD_DIR="$WORK/build"
	mkdir -p "$BUILD_DIR"
fi

# Pin what the kernel embeds about the build host, so that the same inputs
# give the same version banner.
EPOCH=${SOURCE_DATE_EPOCH:-$(stat -c %Y "$SRC/Makefile")}
[[ $EPOCH =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH must be an integer"
KMAKE=(make -C "$SRC" O="$BUILD_DIR" ARCH=x86_64 --no-print-directory
	LOCALVERSION=
	KBUILD_BUILD_USER=banger KBUILD_BUILD_HOST=banger
	KBUILD_BUILD_TIMESTAMP="$(date -u -d "@$EPOCH" '+%Y-%m-%d %H:%M:%S UTC')")

# --- configuration ----------------------------------------------------------
log "source: $SRC (Linux $K_VERSION.$K_PATCHLEVEL), objects: $BUILD_DIR"
log "make allnoconfig"
"${KMAKE[@]}" allnoconfig >&2

# Merge: drop every symbol the fragment mentions from the base config, then
# append the fragment's lines. Later lines in the fragment win.
log "merging $(basename "$FRAGMENT")"
awk '
	function sym(line) {
		if (match(line, /^CONFIG_[A-Za-z0-9_]+=/)) return substr(line, 1, RLENGTH - 1)
		if (match(line, /^# CONFIG_[A-Za-z0-9_]+ is not set$/)) {
			split(line, f, " "); return f[2]
		}
		return ""
	}
	FNR == NR { s = sym($0); if (s != "") { want[s] = $0; order[++n] = s } ; next }
	{ s = sym($0); if (s == "" || !(s in want)) print }
	END {
		print "# --- merged from fragment ---"
		for (i = 1; i <= n; i++) if (!(order[i] in done)) { print want[order[i]]; done[order[i]] = 1 }
	}
' "$FRAGMENT" "$BUILD_DIR/.config" >"$BUILD_DIR/.config.merged"
mv "$BUILD_DIR/.config.merged" "$BUILD_DIR/.config"

log "make olddefconfig"
"${KMAKE[@]}" olddefconfig >&2

# --- checks -------------------------------------------------------------------
# Every fragment line must hold in the final .config: "=y" (and any other
# value) must appear verbatim, "is not set" must not be enabled.
CONFIG="$BUILD_DIR/.config"
failures=()
while IFS= read -r line; do
	if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
		sym=${BASH_REMATCH[1]}
		if ! grep -qxF -- "$line" "$CONFIG"; then
			actual=$(grep -E "^(# )?${sym}[= ]" "$CONFIG" || true)
			failures+=("$sym: wanted '$line', got '${actual:-<absent>}'")
		fi
	elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
		sym=${BASH_REMATCH[1]}
		if actual=$(grep -E "^$sym=" "$CONFIG"); then
			failures+=("$sym: wanted it unset, got '$actual'")
		fi
	fi
done <"$FRAGMENT"
# Hard requirements regardless of what the fragment says.
grep -qx 'CONFIG_64BIT=y' "$CONFIG" || failures+=("CONFIG_64BIT: the kernel must be 64-bit")
if grep -q '^CONFIG_MODULES=' "$CONFIG"; then failures+=("CONFIG_MODULES: must be off"); fi

if [[ ${#failures[@]} -gt 0 ]]; then
	printf '%s: error: %d fragment option(s) did not end up as requested:\n' "$PROG" "${#failures[@]}" >&2
	for f in "${failures[@]}"; do
		sym=${f%%:*}
		if grep -rqsE "^[[:space:]]*(menu)?config ${sym#CONFIG_}[[:space:]]*$" --include='Kconfig*' "$SRC"; then
			hint="exists in this kernel; check its 'depends on'"
		else
			hint="no such symbol in this kernel"
		fi
		printf '  %s  (%s)\n' "$f" "$hint" >&2
	done
	cp "$CONFIG" "$OUT/$NAME.config.failed"
	printf '%s: the resulting config is in %s\n' "$PROG" "$OUT/$NAME.config.failed" >&2
	exit 1
fi
log "configuration OK: all $(grep -cE '^(CONFIG_|# CONFIG_)' "$FRAGMENT") fragment lines hold"

if [[ $CONFIG_ONLY -eq 1 ]]; then
	cp "$CONFIG" "$OUT/$NAME.config"
	printf '%s\n' "$OUT/$NAME.config"
	exit 0
fi

# --- build ------------------------------------------------------------------------
log "building vmlinux and bzImage with $JOBS job(s)"
start=$(date +%s)
"${KMAKE[@]}" -j"$JOBS" vmlinux bzImage >&2
log "build finished in $(($(date +%s) - start))s"

RELEASE=$("${KMAKE[@]}" -s kernelrelease | tail -n 1)
[[ $RELEASE =~ ^[0-9]+\.[0-9]+ ]] || die "unexpected kernelrelease output: '$RELEASE'"

VMLINUX="$BUILD_DIR/vmlinux"
BZIMAGE="$BUILD_DIR/arch/x86/boot/bzImage"
[[ -f $VMLINUX && -f $BZIMAGE ]] || die "build did not produce vmlinux and bzImage"
readelf -h "$VMLINUX" | grep -q 'Class:[[:space:]]*ELF64' || die "vmlinux is not an ELF64 file"
# The PVH entry point is an ELF note owned by "Xen" (XEN_ELFNOTE_PHYS32_ENTRY).
readelf -n "$VMLINUX" | grep -q '^[[:space:]]*Xen[[:space:]]' ||
	die "vmlinux has no PVH (Xen) ELF note; QEMU -kernel vmlinux would not boot it"

# --- artifact + catalog entry -------------------------------------------------------
ARTIFACT="$NAME-x86_64.tar.gz"
STAGE="$WORK/stage"
mkdir -p "$STAGE"
cp "$VMLINUX" "$STAGE/vmlinux"
cp "$BZIMAGE" "$STAGE/bzImage"
cp "$CONFIG" "$STAGE/config"
touch -d "@$EPOCH" "$STAGE"/*
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$EPOCH" \
	-C "$STAGE" -cf - bzImage config vmlinux | gzip -n -6 >"$WORK/$ARTIFACT"
mv "$WORK/$ARTIFACT" "$OUT/$ARTIFACT"

SIZE=$(stat -c %s "$OUT/$ARTIFACT")
SHA256=$(sha256sum "$OUT/$ARTIFACT" | awk '{print $1}')
if [[ -n $URL_BASE ]]; then
	URL="${URL_BASE%/}/$ARTIFACT"
else
	URL=$ARTIFACT
fi
DESCRIPTION="Generic guest kernel, Linux $RELEASE: everything built in (no modules), virtio-mmio and virtio-pci, PVH ELF vmlinux plus bzImage"

ENTRY="$OUT/$NAME.catalog-entry.json"
printf '{"name":"%s","version":"%s","arch":"x86_64","url":"%s","size":%s,"sha256":"%s","description":"%s","vmms":["firecracker","qemu"],"format":"elf"}\n' \
	"$(json_escape "$NAME")" "$(json_escape "$RELEASE")" "$(json_escape "$URL")" \
	"$SIZE" "$SHA256" "$(json_escape "$DESCRIPTION")" >"$ENTRY.tmp"
mv "$ENTRY.tmp" "$ENTRY"

log "kernel release $RELEASE"
log "artifact $OUT/$ARTIFACT ($SIZE bytes, sha256 $SHA256)"
printf '%s\n%s\n' "$OUT/$ARTIFACT" "$ENTRY"
