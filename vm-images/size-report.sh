#!/usr/bin/env bash
# Builds `rsp` with the size-optimised `router` profile (opt-level z, LTO, one codegen unit,
# panic=abort, stripped; see the root Cargo.toml) and reports its size per architecture.
#
#   vm-images/size-report.sh [--check] [--no-install] [ARCH...]
#
#   ARCH       x86_64 | aarch64 | powerpc | mips (default: all four)
#   --check    exit non-zero when the mips binary exceeds the goal (RSP_SIZE_GOAL_KIB, default
#              3072 KiB = 3 MiB)
#
# mips is a tier-3 target: std is rebuilt with the same profile (-Zbuild-std=std,panic_abort), so
# its number includes a size-optimised std; the tier-2 targets link the prebuilt std. The binaries
# stay in target/cross-ARCH/<triple>/router/rsp (CROSS_TARGET_DIR overrides, as in cross-test.sh).
# Prints a table (bytes, KiB, xz -9 compressed KiB as a squashfs/firmware-image estimate).
set -euo pipefail
LOG_TAG=size-report
# shellcheck source=vm-images/lib.sh
. "$(dirname "$0")/lib.sh"

CHECK=0 INSTALL=1 ARCHES=()
while [ $# -gt 0 ]; do
  case "$1" in
    --check) CHECK=1 ;;
    --no-install) INSTALL=0 ;;
    -h|--help) script_doc "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) ARCHES+=("$1") ;;
  esac
  shift
done
[ ${#ARCHES[@]} -gt 0 ] || ARCHES=(x86_64 aarch64 powerpc mips)
GOAL_KIB=${RSP_SIZE_GOAL_KIB:-3072}
cd "$REPO_ROOT"
export CARGO_TERM_COLOR=never

ROWS=() MIPS_KIB=""
for arch in "${ARCHES[@]}"; do
  arch_facts "$arch"
  if [ "$INSTALL" -eq 1 ]; then
    # shellcheck disable=SC2086
    [ -z "$CROSS_PKGS" ] || apt_install $CROSS_PKGS
    ensure_rust_target "$TRIPLE" "$TIER3" std,panic_abort
  else
    CARGO_TOOLCHAIN="" BUILD_STD_ARGS=()
    [ "$TIER3" -eq 0 ] || CARGO_TOOLCHAIN=+nightly BUILD_STD_ARGS=(-Zbuild-std=std,panic_abort)
  fi
  dir=${CROSS_TARGET_DIR:-$REPO_ROOT/target/cross-$arch}
  t=$SECONDS
  CARGO_TARGET_DIR=$dir tcargo build -q "${BUILD_STD_ARGS[@]}" --profile router --target "$TRIPLE" \
    -p appliance --bin rsp || die "router build of rsp failed for $arch"
  bin=$dir/$TRIPLE/router/rsp
  [ -f "$bin" ] || die "$bin missing after the build"
  if [ -n "$QEMU_USER" ]; then
    ver=$("$QEMU_USER" -L "/usr/$GNU_TRIPLE" "$bin" --version) || die "router rsp does not run on $arch"
  else
    ver=$("$bin" --version) || die "router rsp does not run on $arch"
  fi
  bytes=$(stat -c %s "$bin")
  kib=$(((bytes + 1023) / 1024))
  xz_kib=$((($(xz -9e -c "$bin" | wc -c) + 1023) / 1024))
  ROWS+=("$(printf '| %-8s | %-28s | %10s | %7s | %9s |' "$arch" "$TRIPLE" "$bytes" "$kib" "$xz_kib")")
  log "$arch: $bin $bytes bytes (built in $((SECONDS - t))s; runs: $ver)"
  [ "$arch" != mips ] || MIPS_KIB=$kib
done

echo
echo "rsp $(git -C "$REPO_ROOT" describe --always --dirty 2>/dev/null || echo '?'), profile router:"
echo "| arch     | target                       |      bytes |     KiB |  xz -9 KiB |"
echo "|----------|------------------------------|-----------:|--------:|-----------:|"
printf '%s\n' "${ROWS[@]}"
if [ -n "$MIPS_KIB" ]; then
  if [ "$MIPS_KIB" -le "$GOAL_KIB" ]; then
    echo "mips: ${MIPS_KIB} KiB, within the goal of ${GOAL_KIB} KiB"
  else
    echo "mips: ${MIPS_KIB} KiB, OVER the goal of ${GOAL_KIB} KiB"
    [ "$CHECK" -eq 0 ] || die "rsp for mips exceeds the size goal"
  fi
fi
