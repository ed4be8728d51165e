#!/usr/bin/env bash
# Builds and runs the test suites of sctp-stack, rserpool and dataplane for one architecture under
# qemu-user (x86_64: natively), then builds `rsp` for it and runs `rsp --version` the same way.
#
#   vm-images/cross-test.sh [OPTIONS] ARCH [-- TEST-BINARY-ARGS...]
#
#   ARCH            aarch64 | powerpc | mips | x86_64
#   --quick         CI mode: every test runs, property tests with PROPTEST_CASES=$CROSS_PROPTEST_CASES
#                   (default 32) unless the caller set PROPTEST_CASES (tests that pin their own case
#                   count keep it)
#   --lib           unit tests only (the crates' lib test binaries; integration tests not built)
#   -p CRATE        test this package instead of the default three (repeatable)
#   --no-rsp        do not build and run `rsp`
#   --rsp-only      only build `rsp` (debug) for ARCH and run `rsp --version`
#   --no-install    never install anything; fail when a tool is missing
#   --timeout SECS  bound for the whole run (default 3600); exceeding it is a failure
#
# Environment: CROSS_TARGET_DIR (default target/cross-ARCH; one directory per architecture keeps
# incremental builds and avoids lock contention with native builds); CROSS_OPT_LEVEL (default 1):
# the test builds keep the dev profile's debug assertions and overflow checks but are optimised,
# because unoptimised code under qemu-user is several times slower (a 100k-INIT flood test took
# 233 s at opt-level 0 under qemu-aarch64).
#
# Installs what is missing: Debian's cross gcc and libc (gcc-<triple>, libc6-dev-<arch>-cross),
# qemu-user-static, the rustup target (tier 2) or nightly with rust-src (mips, tier 3, built with
# -Zbuild-std). Tests that need root, namespaces or external tools are #[ignore]d by the project's
# convention, so plain `cargo test` is what runs here. Emulator limitations are listed, with their
# reasons, in vm-images/qemu-user-skips. Fails (non-zero exit) on any build error, test failure or
# timeout; prints cargo's test output and a closing "N passed, N failed" line.
set -euo pipefail
LOG_TAG=cross-test
# shellcheck source=vm-images/lib.sh
. "$(dirname "$0")/lib.sh"

usage() { script_doc "$0"; exit "${1:-2}"; }

ARCH="" QUICK=0 LIB_ONLY=0 RSP=1 RSP_ONLY=0 INSTALL=1 BUDGET=3600 PKGS=() TEST_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --lib) LIB_ONLY=1 ;;
    --no-rsp) RSP=0 ;;
    --rsp-only) RSP_ONLY=1 ;;
    --no-install) INSTALL=0 ;;
    --timeout) BUDGET=${2:?--timeout needs seconds}; shift ;;
    -p) PKGS+=("${2:?-p needs a package}"); shift ;;
    -h|--help) usage 0 ;;
    --) shift; TEST_ARGS=("$@"); break ;;
    -*) echo "unknown option $1" >&2; usage ;;
    *) [ -z "$ARCH" ] || usage; ARCH=$1 ;;
  esac
  shift
done
[ -n "$ARCH" ] || usage
[ ${#PKGS[@]} -gt 0 ] || PKGS=(sctp-stack rserpool dataplane)
LOG_TAG="cross-test $ARCH"

arch_facts "$ARCH"
cd "$REPO_ROOT"
START=$SECONDS
remaining() {
  local r=$((BUDGET - (SECONDS - START)))
  [ "$r" -gt 0 ] || die "time budget of ${BUDGET}s exhausted"
  echo "$r"
}

# ---- tools -------------------------------------------------------------------------------------
if [ "$INSTALL" -eq 1 ]; then
  # shellcheck disable=SC2086
  [ -z "$CROSS_PKGS" ] || apt_install $CROSS_PKGS
fi
if [ -n "$QEMU_USER" ]; then
  command -v "$GNU_TRIPLE-gcc" >/dev/null || die "$GNU_TRIPLE-gcc missing (package gcc-$GNU_TRIPLE)"
  command -v "$QEMU_USER" >/dev/null || die "$QEMU_USER missing (package qemu-user-static)"
  [ -e "/usr/$GNU_TRIPLE/lib/libc.so.6" ] || die "cross libc missing in /usr/$GNU_TRIPLE"
  # The runner in .cargo/config.toml passes -L; QEMU_LD_PREFIX covers target binaries that a test
  # starts itself through binfmt_misc, where that is registered.
  export QEMU_LD_PREFIX=/usr/$GNU_TRIPLE
  case $ARCH in
    powerpc | mips)
      # qemu-user passes UDP_SEGMENT/UDP_GRO control messages unconverted (vm-images/qemu-user-skips):
      # the runtime tests run their UDP links without these offloads on big-endian guests.
      export DATAPLANE_TEST_UDP_OFFLOAD=off
      log "big-endian guest under qemu-user: DATAPLANE_TEST_UDP_OFFLOAD=off"
      ;;
  esac
fi
if [ "$INSTALL" -eq 1 ]; then
  ensure_rust_target "$TRIPLE" "$TIER3"
else
  CARGO_TOOLCHAIN="" BUILD_STD_ARGS=()
  [ "$TIER3" -eq 0 ] || CARGO_TOOLCHAIN=+nightly BUILD_STD_ARGS=(-Zbuild-std)
fi

export CARGO_TARGET_DIR=${CROSS_TARGET_DIR:-$REPO_ROOT/target/cross-$ARCH}
export CARGO_TERM_COLOR=never
export CARGO_PROFILE_DEV_OPT_LEVEL=${CROSS_OPT_LEVEL:-1} CARGO_PROFILE_DEV_DEBUG=line-tables-only
if [ "$QUICK" -eq 1 ]; then
  export PROPTEST_CASES=${PROPTEST_CASES:-${CROSS_PROPTEST_CASES:-32}}
fi
PKG_ARGS=()
for p in "${PKGS[@]}"; do PKG_ARGS+=(-p "$p"); done
CARGO_ARGS=("${BUILD_STD_ARGS[@]}" --target "$TRIPLE" "${PKG_ARGS[@]}")
[ "$LIB_ONLY" -eq 0 ] || CARGO_ARGS+=(--lib)
log "target $TRIPLE${CARGO_TOOLCHAIN:+ (cargo $CARGO_TOOLCHAIN ${BUILD_STD_ARGS[*]})}," \
  "packages ${PKGS[*]}$([ "$LIB_ONLY" -eq 0 ] || echo ' (unit tests only)')," \
  "opt-level $CARGO_PROFILE_DEV_OPT_LEVEL, target dir $CARGO_TARGET_DIR${PROPTEST_CASES:+, PROPTEST_CASES=$PROPTEST_CASES}"
mkdir -p "$CARGO_TARGET_DIR"
LOGFILE=$CARGO_TARGET_DIR/cross-test.log

passed=0 ignored=0 SKIPPED=0
if [ "$RSP_ONLY" -eq 0 ]; then
# ---- build ---------------------------------------------------------------------------------------
t=$SECONDS
timeout -k 10 "$(remaining)" cargo ${CARGO_TOOLCHAIN:+"$CARGO_TOOLCHAIN"} \
  test --no-run "${CARGO_ARGS[@]}" || die "build of the test suites failed (or timed out)"
BUILD_SECS=$((SECONDS - t))
log "test suites built in ${BUILD_SECS}s"

# ---- emulator limitations -----------------------------------------------------------------------
SKIP_ARGS=()
SKIPPED=0
while read -r arches name reason; do
  case "$arches" in ''|'#'*) continue ;; esac
  case ",$arches," in *",$ARCH,"*) ;; *) continue ;; esac
  # With --lib only the crates' src/ trees are built; integration tests live in tests/.
  dirs=("$REPO_ROOT"/*/src)
  [ "$LIB_ONLY" -eq 1 ] || dirs+=("$REPO_ROOT"/*/tests)
  if grep -rqsE --include='*.rs' "fn ${name}[[:space:]]*\\(" "${dirs[@]}"; then
    log "SKIP under qemu-user: $name ($reason)"
    SKIP_ARGS+=(--skip "$name")
    SKIPPED=$((SKIPPED + 1))
  else
    [ "$LIB_ONLY" -eq 1 ] \
      || log "WARNING: vm-images/qemu-user-skips names '$name' for $ARCH but no such test exists"
  fi
done <"$VM_DIR/qemu-user-skips"
[ ${#SKIP_ARGS[@]} -eq 0 ] || SKIP_ARGS=(--exact "${SKIP_ARGS[@]}")

# ---- run -----------------------------------------------------------------------------------------
t=$SECONDS
set +e
timeout -k 10 "$(remaining)" cargo ${CARGO_TOOLCHAIN:+"$CARGO_TOOLCHAIN"} \
  test --no-fail-fast "${CARGO_ARGS[@]}" -- --format terse "${SKIP_ARGS[@]}" "${TEST_ARGS[@]}" \
  2>&1 | tee "$LOGFILE"
rc=${PIPESTATUS[0]}
set -e
RUN_SECS=$((SECONDS - t))
read -r passed failed ignored < <(awk '
  /^test result:/ {
    for (i = 1; i <= NF; i++) {
      if ($(i) ~ /^passed;?$/) p += $(i - 1)
      if ($(i) ~ /^failed;?$/) f += $(i - 1)
      if ($(i) ~ /^ignored;?$/) g += $(i - 1)
    }
  }
  END { print p + 0, f + 0, g + 0 }' "$LOGFILE")
binaries=$(grep -c '^test result:' "$LOGFILE" || true)
log "ran $binaries test binaries in ${RUN_SECS}s (build ${BUILD_SECS}s); full log: $LOGFILE"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  die "test run exceeded the time budget of ${BUDGET}s"
fi
if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ]; then
  grep -E '^(---- |test .* FAILED|failures:|error)' "$LOGFILE" | head -50 >&2 || true
  echo "cross-$ARCH: $passed passed, $failed failed, $((ignored + SKIPPED)) skipped" >&2
  die "test suites FAILED on $ARCH (cargo exit $rc)"
fi
[ "$passed" -gt 0 ] || die "no test ran on $ARCH"
fi

# ---- rsp -----------------------------------------------------------------------------------------
if [ "$RSP" -eq 1 ] || [ "$RSP_ONLY" -eq 1 ]; then
  t=$SECONDS
  out=$(timeout -k 10 "$(remaining)" cargo ${CARGO_TOOLCHAIN:+"$CARGO_TOOLCHAIN"} \
    run -q "${BUILD_STD_ARGS[@]}" --target "$TRIPLE" -p appliance --bin rsp -- --version) \
    || die "building or running rsp --version failed on $ARCH"
  case "$out" in rsp\ *) ;; *) die "rsp --version printed '$out'" ;; esac
  log "rsp built and ran on $ARCH in $((SECONDS - t))s: $out"
fi

[ "$RSP_ONLY" -eq 0 ] || { log "done in $((SECONDS - START))s"; exit 0; }
log "$ignored tests are #[ignore]d (they need root or external tools; run by their .ci suites)," \
  "$SKIPPED skipped for qemu-user limitations (vm-images/qemu-user-skips)"
echo "cross-$ARCH: $passed passed, 0 failed, $((ignored + SKIPPED)) skipped"
log "done in $((SECONDS - START))s"
