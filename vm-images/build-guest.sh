#!/usr/bin/env bash
# Builds a minimal QEMU guest (kernel + initramfs) from Debian packages only.
#
#   vm-images/build-guest.sh [--arch x86_64|aarch64] [--out DIR] [--pkg PKG]... [--no-rsplib]
#
# What goes in, all resolved at build time from the host's Debian suite (main, -updates, -security)
# through a private apt root under vm-images/cache (the host's apt state is not touched):
#   - the current Debian kernel (`linux-image-<arch>` resolved to its versioned package), its
#     vmlinuz and only the modules the guest loads: sctp, crc32c_generic, virtio_pci, virtio_net,
#     virtio_console and their dependencies (from each module's .modinfo "depends");
#   - busybox-static as the shell and tool set;
#   - lksctp-tools (checksctp, sctp_test, sctp_darn, sctp_status, withsctp);
#   - socat (SCTP-LISTEN/SCTP-CONNECT with setsockopt options: echo, sink and source peers);
#   - RSPLIB 3.4.4: rsplib-registrar (rspregistrar), rsplib-tools (rspserver, rspterminal, hsdump,
#     cspmonitor), rsplib-services (pingpongclient, calcappclient, scripting*), the latter unpacked
#     without its dependencies so that Qt stays out (only fractalpooluser needs it);
#   - the shared libraries these executables need (ELF DT_NEEDED closure, read with readelf), and
#     nothing else from their packages' dependency trees.
# No other downloads. The result is reproducible for a given set of package versions: every file's
# mtime is clamped to SOURCE_DATE_EPOCH (default: the newest mtime inside the packages), the cpio
# archive is written in sorted order with fixed owners, and manifest.txt records each package's
# version and SHA256 next to the image's SHA256.
#
# Output (default vm-images/out/guest-ARCH/): vmlinuz, initramfs.cpio (uncompressed: boots faster
# under TCG than a compressed one), manifest.txt, kernel-release, modules.txt.
# The guest's /init loads the modules, configures eth0..ethN-1 as 198.18.<i>.2/24 and
# fd00:18:<i>::2/64, prints RSP-GUEST-READY on the console and runs a command agent on the
# virtio-serial port "rsp.cmd" (see run-guest.sh and guestctl.py).
set -euo pipefail
LOG_TAG=build-guest
umask 022  # modes of the directories created here are part of the (reproducible) image
# shellcheck source=vm-images/lib.sh
. "$(dirname "$0")/lib.sh"

ARCH=x86_64 OUT="" EXTRA_PKGS=() RSPLIB=1
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) ARCH=${2:?}; shift ;;
    --out) OUT=${2:?}; shift ;;
    --pkg) EXTRA_PKGS+=("${2:?}"); shift ;;
    --no-rsplib) RSPLIB=0 ;;
    -h|--help) script_doc "$0"; exit 0 ;;
    *) die "unknown argument $1" ;;
  esac
  shift
done
case "$ARCH" in
  x86_64) DEBARCH=amd64 GNU_TRIPLE=x86_64-linux-gnu ;;
  aarch64) DEBARCH=arm64 GNU_TRIPLE=aarch64-linux-gnu ;;
  *) die "unsupported guest arch $ARCH (x86_64 or aarch64)" ;;
esac
OUT=${OUT:-$VM_OUT/guest-$ARCH}
LOG_TAG="build-guest $ARCH"
START=$SECONDS

# Packages whose files all go into the guest (their libraries come in through the ELF closure).
WANT=(busybox-static lksctp-tools socat)
[ "$RSPLIB" -eq 0 ] || WANT+=(rsplib-registrar rsplib-tools)
WANT+=("${EXTRA_PKGS[@]}")
# Unpacked without resolving dependencies (rsplib-services would pull in Qt).
NODEPS=()
[ "$RSPLIB" -eq 0 ] || NODEPS+=(rsplib-services)
# Files of wanted packages left out: documentation, init scripts, and the Qt GUI fractalpooluser.
EXCLUDE_FILES='^$|/$|^usr/share/(doc|man|lintian|info|bug|fractalpooluser)/|^etc/init\.d/|^usr/bin/fractalpooluser$'
# Kernel modules the guest loads; crc32c_generic first because libcrc32c asks the crypto API for
# "crc32c" at run time, which is not a symbol dependency.
MODULES=(crc32c_generic sctp virtio_pci virtio_net virtio_console)

apt_install cpio binutils debian-archive-keyring

# ---- packages ------------------------------------------------------------------------------------
guest_apt_init "$DEBARCH"
log "resolving packages for $DEBARCH"
retry gapt_get update >/dev/null
KPKG=$(gapt_cache depends "linux-image-$DEBARCH" | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$KPKG" ] || die "cannot resolve linux-image-$DEBARCH to a versioned kernel package"
KREL=${KPKG#linux-image-}
ARCHIVES=$VM_CACHE/apt-$DEBARCH/var/cache/apt/archives

# The exact package list apt would install, as "name version arch".
resolved=$(gapt_get -s install "${WANT[@]}" | awk '/^Inst / { gsub(/[()\[\]]/, ""); print $2, $3, $NF }')
[ -n "$resolved" ] || die "apt resolved no packages for ${WANT[*]}"
for p in "${NODEPS[@]}" "$KPKG"; do
  v=$(gapt_cache show --no-all-versions "$p" | awk '/^Version:/ { print $2; exit }')
  a=$(gapt_cache show --no-all-versions "$p" | awk '/^Architecture:/ { print $2; exit }')
  [ -n "$v" ] || die "package $p not found for $DEBARCH"
  resolved+=$'\n'"$p $v $a"
done
retry gapt_get install -y --download-only "${WANT[@]}" >/dev/null
(cd "$ARCHIVES" && retry gapt_get download "${NODEPS[@]}" "$KPKG" >/dev/null)

deb_file() { # name version arch -> path of the downloaded .deb
  local f="$ARCHIVES/${1}_${2//:/%3a}_${3}.deb"
  [ -f "$f" ] || die "downloaded package $f is missing"
  echo "$f"
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rsp-guest.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
STAGE=$WORK/stage ROOT=$WORK/root
# Merged-/usr layout, as in Debian: extraction keeps these symlinks.
for d in "$STAGE" "$ROOT"; do
  mkdir -p "$d/usr/bin" "$d/usr/sbin" "$d/usr/lib" "$d/usr/lib64"
  ln -s usr/bin "$d/bin"; ln -s usr/sbin "$d/sbin"; ln -s usr/lib "$d/lib"; ln -s usr/lib64 "$d/lib64"
done

: >"$WORK/manifest-pkgs"
declare -A WANTED=()
for p in "${WANT[@]}" "${NODEPS[@]}"; do WANTED[$p]=1; done
while read -r name version arch; do
  [ "$name" = "$KPKG" ] && continue
  f=$(deb_file "$name" "$version" "$arch")
  printf '%s %s %s %s\n' "$name" "$version" "$arch" "$(sha256sum <"$f" | cut -d' ' -f1)" \
    >>"$WORK/manifest-pkgs"
  dpkg-deb --fsys-tarfile "$f" | tar -x --keep-directory-symlink -C "$STAGE"
  mkdir -p "$WORK/lists"
  # File list with merged-/usr paths, to record later which packages the image ships files of.
  dpkg-deb --fsys-tarfile "$f" | tar -t | sed -E 's|^\./||; s#^(bin|sbin|lib|lib64)/#usr/\1/#' \
    | grep -v '/$' >"$WORK/lists/$name" || true
  if [ -n "${WANTED[$name]:-}" ]; then
    dpkg-deb --fsys-tarfile "$f" | tar -t | sed 's|^\./||' \
      | grep -vE "$EXCLUDE_FILES" >>"$WORK/want-files" || true
  fi
done <<<"$resolved"
log "$(wc -l <"$WORK/manifest-pkgs") packages unpacked into the staging tree"

# ---- root file system: wanted files + their ELF closure -----------------------------------------
copy_path() { # copies STAGE/$1 (following the symlink chain) into ROOT; prints the real path
  local rel=$1 target
  while :; do
    [ -e "$ROOT/$rel" ] || [ -L "$ROOT/$rel" ] || (cd "$STAGE" && cp -a --parents "$rel" "$ROOT/")
    [ -L "$STAGE/$rel" ] || break
    target=$(readlink "$STAGE/$rel")
    case "$target" in
      /*) rel=${target#/} ;;
      *) rel=$(dirname "$rel")/$target ;;
    esac
    rel=$(realpath -m --relative-to=/ "/$rel")
  done
  echo "$rel"
}
LIBDIRS=("usr/lib/$GNU_TRIPLE" "lib/$GNU_TRIPLE" usr/lib lib usr/lib64 lib64)
find_lib() { # soname [runpath...] -> relative path in STAGE
  local so=$1 d
  shift
  for d in "$@" "${LIBDIRS[@]}"; do
    if [ -e "$STAGE/$d/$so" ]; then echo "$d/$so"; return 0; fi
  done
  return 1
}
declare -A SEEN=()
queue=()
while read -r rel; do
  [ -e "$STAGE/$rel" ] || [ -L "$STAGE/$rel" ] || continue
  real=$(copy_path "$rel")
  queue+=("$real")
done <"$WORK/want-files"
while [ ${#queue[@]} -gt 0 ]; do
  [ -n "${queue[0]}" ] || die "internal: empty path in the ELF queue"
  rel=${queue[0]}
  queue=("${queue[@]:1}")
  [ -z "${SEEN[$rel]:-}" ] || continue
  SEEN[$rel]=1
  [ -f "$STAGE/$rel" ] || continue
  head -c4 "$STAGE/$rel" | grep -q $'^\x7fELF' || continue
  interp=$(readelf -lW "$STAGE/$rel" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
  if [ -n "$interp" ]; then queue+=("$(copy_path "${interp#/}")"); fi
  runpath=()
  for r in $(readelf -dW "$STAGE/$rel" | sed -n 's/.*(R\(UN\)\{0,1\}PATH).*\[\(.*\)\]/\2/p' | tr ':' ' '); do
    r=${r//\$ORIGIN/\/$(dirname "$rel")}
    runpath+=("${r#/}")
  done
  for so in $(readelf -dW "$STAGE/$rel" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    lib=$(find_lib "$so" "${runpath[@]}") || die "$rel needs $so, which no unpacked package provides"
    queue+=("$(copy_path "$lib")")
  done
done
log "root file system: $(find "$ROOT" -type f | wc -l) files (wanted packages and ELF closure)"

# ---- kernel and modules --------------------------------------------------------------------------
read -r _ kver karch < <(grep "^$KPKG " <<<"$resolved")
kdeb=$(deb_file "$KPKG" "$kver" "$karch")
ksha=$(sha256sum <"$kdeb" | cut -d' ' -f1)
KTREE=$VM_CACHE/kernel-$DEBARCH-${ksha:0:16}
if [ ! -f "$KTREE/.complete" ]; then
  log "unpacking $KPKG $kver"
  rm -rf "$KTREE" && mkdir -p "$KTREE"
  dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$KTREE" "./boot/vmlinuz-$KREL" "./lib/modules/$KREL"
  touch "$KTREE/.complete"
fi
MODDIR=$KTREE/lib/modules/$KREL
declare -A MODPATH=()
while read -r f; do
  n=$(basename "$f"); n=${n%%.ko*}; n=${n//-/_}
  MODPATH[$n]=${f#"$MODDIR"/}
done < <(find "$MODDIR/kernel" -name '*.ko*')
builtin_mod() { sed 's|.*/||; s|\.ko$||; s|-|_|g' "$MODDIR/modules.builtin" | grep -qx "$1"; }
declare -A MOD_DONE=()
MOD_ORDER=()
add_module() { # depth-first: dependencies before the module
  local m=$1 dep deps f
  [ -z "${MOD_DONE[$m]:-}" ] || return 0
  MOD_DONE[$m]=1
  if [ -z "${MODPATH[$m]:-}" ]; then
    builtin_mod "$m" && return 0
    die "kernel $KREL has no module $m"
  fi
  f=$MODDIR/${MODPATH[$m]}
  deps=$(readelf -p .modinfo "$f" | sed -n 's/.*depends=\(.*\)$/\1/p' | tr ',' ' ')
  for dep in $deps; do add_module "$dep"; done
  MOD_ORDER+=("$m")
}
for m in "${MODULES[@]}"; do add_module "$m"; done
mkdir -p "$ROOT/lib/modules/$KREL" "$ROOT/etc/rsp-guest"
: >"$ROOT/etc/rsp-guest/modules"
for m in "${MOD_ORDER[@]}"; do
  rel=${MODPATH[$m]}
  mkdir -p "$ROOT/lib/modules/$KREL/$(dirname "$rel")"
  case "$rel" in
    *.ko.xz) xz -dc "$MODDIR/$rel" >"$ROOT/lib/modules/$KREL/${rel%.xz}"; rel=${rel%.xz} ;;
    *.ko.zst) zstd -qdc "$MODDIR/$rel" >"$ROOT/lib/modules/$KREL/${rel%.zst}"; rel=${rel%.zst} ;;
    *) cp "$MODDIR/$rel" "$ROOT/lib/modules/$KREL/$rel" ;;
  esac
  echo "$rel" >>"$ROOT/etc/rsp-guest/modules"
done
log "kernel $KREL, modules: ${MOD_ORDER[*]}"

# ---- guest configuration and init ----------------------------------------------------------------
mkdir -p "$ROOT"/{proc,sys,dev,tmp,run,root,etc,var/log,mnt}
chmod 1777 "$ROOT/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\n' >"$ROOT/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n198.18.0.2 rspguest\n198.18.0.1 rsphost\n' >"$ROOT/etc/hosts"
printf 'hosts: files\nservices: files\nprotocols: files\n' >"$ROOT/etc/nsswitch.conf"
printf 'ip 0 IP\nicmp 1 ICMP\ntcp 6 TCP\nudp 17 UDP\nipv6-icmp 58 IPv6-ICMP\nsctp 132 SCTP\n' \
  >"$ROOT/etc/protocols"
printf '%s\n' "$KREL" >"$ROOT/etc/rsp-guest/kernel-release"
install -m 0755 "$VM_DIR/guest-init.sh" "$ROOT/init"
# Applets are linked at build time where the host can run the guest's busybox; /init repeats
# `busybox --install -s` at boot, which keeps existing files.
if [ "$ARCH" = "$(uname -m)" ]; then
  "$ROOT/usr/bin/busybox" --list-full | while read -r a; do
    [ -e "$ROOT/$a" ] || [ -L "$ROOT/$a" ] || ln -s /usr/bin/busybox "$ROOT/$a"
  done
fi
[ -x "$ROOT/usr/bin/busybox" ] || die "busybox missing from the root file system"
[ -e "$ROOT/usr/bin/sh" ] || [ -L "$ROOT/usr/bin/sh" ] || ln -s busybox "$ROOT/usr/bin/sh"

# ---- archive -------------------------------------------------------------------------------------
EPOCH=${SOURCE_DATE_EPOCH:-$(find "$STAGE" -type f -printf '%T@\n' | sort -n | tail -1 | cut -d. -f1)}
find "$ROOT" -newermt "@$EPOCH" -print0 | xargs -0r touch -h -d "@$EPOCH"
mkdir -p "$OUT"
(cd "$ROOT" && find . -mindepth 1 -print0 | LC_ALL=C sort -z \
  | cpio --null --create --format=newc --reproducible --owner=0:0 --quiet) >"$OUT/initramfs.cpio.tmp"
mv "$OUT/initramfs.cpio.tmp" "$OUT/initramfs.cpio"
cp "$KTREE/boot/vmlinuz-$KREL" "$OUT/vmlinuz"
rm -f "$OUT/vmlinux"
if [ "$ARCH" = x86_64 ]; then
  # The uncompressed kernel boots through its PVH entry point (CONFIG_PVH): under TCG that skips
  # several seconds of in-guest decompression. run-guest.sh prefers vmlinux when it exists.
  python3 - "$OUT/vmlinuz" "$OUT/vmlinux" <<'PY' || log "no PVH vmlinux (booting the bzImage instead)"
import gzip, lzma, sys
data = open(sys.argv[1], "rb").read()
for magic, unpack in ((b"\xfd7zXZ\x00", lambda b: lzma.LZMADecompressor().decompress(b)),
                      (b"\x1f\x8b\x08", lambda b: gzip.GzipFile(fileobj=__import__("io").BytesIO(b)).read())):
    off = data.find(magic)
    if off < 0:
        continue
    try:
        elf = unpack(data[off:])
    except Exception:
        continue
    if elf[:4] == b"\x7fELF":
        open(sys.argv[2], "wb").write(elf)
        sys.exit(0)
sys.exit(1)
PY
fi
printf '%s\n' "$KREL" >"$OUT/kernel-release"
printf '%s\n' "${MOD_ORDER[@]}" >"$OUT/modules.txt"
{
  echo "# rsp test guest $ARCH, built from Debian packages; SOURCE_DATE_EPOCH=$EPOCH"
  echo "# package version arch sha256-of-.deb shipped|staged (staged: unpacked for resolution only)"
  echo "kernel $KPKG $kver $karch $ksha"
  # "shipped": files of the package are in the image; "staged": only unpacked for resolution.
  (cd "$ROOT" && find . -mindepth 1 ! -type d ! -lname '*busybox' | sed 's|^\./||' | sort) >"$WORK/image-files"
  sort "$WORK/manifest-pkgs" | while read -r name version arch sha; do
    if grep -qxFf "$WORK/lists/$name" "$WORK/image-files" 2>/dev/null; then use=shipped; else use=staged; fi
    echo "$name $version $arch $sha $use"
  done
  echo "sha256 vmlinuz $(sha256sum <"$OUT/vmlinuz" | cut -d' ' -f1)"
  [ ! -f "$OUT/vmlinux" ] || echo "sha256 vmlinux $(sha256sum <"$OUT/vmlinux" | cut -d' ' -f1)"
  echo "sha256 initramfs.cpio $(sha256sum <"$OUT/initramfs.cpio" | cut -d' ' -f1)"
} >"$OUT/manifest.txt"
log "built $OUT in $((SECONDS - START))s: vmlinuz $(du -k "$OUT/vmlinuz" | cut -f1) KiB," \
  "initramfs.cpio $(du -k "$OUT/initramfs.cpio" | cut -f1) KiB"
