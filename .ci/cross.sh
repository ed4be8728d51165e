#!/usr/bin/env bash
# Cross-architecture test runs (issue 10): the test suites of sctp-stack, rserpool and dataplane
# built for aarch64, powerpc (32-bit big-endian) and mips (32-bit big-endian, tier 3: nightly with
# -Zbuild-std) and run under qemu-user, plus `rsp --version` on each; then the size of `rsp` for
# mips in the router profile against its 3 MiB goal.
#
# The CI subset (full suites do not fit ~10 minutes on the 2-core machine, builds dominate):
#   aarch64, powerpc: every test of the three crates, PROPTEST_CASES=32 (`cross-test.sh --quick`)
#   mips:             the crates' unit tests (`--lib --quick`), `rsp --version`, router size check
# The full suites with full property-test case counts: `vm-images/cross-test.sh ARCH`.
# The whole suite is bounded by CROSS_CI_BUDGET seconds (default 1200); running out is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=${CROSS_CI_BUDGET:-1200}
start=$SECONDS
left() {
  local l=$((BUDGET - (SECONDS - start)))
  if [ "$l" -lt 30 ]; then
    echo "cross suite: budget of ${BUDGET}s exhausted before $1" >&2
    exit 1
  fi
  echo "$l"
}
for arch in aarch64 powerpc; do
  vm-images/cross-test.sh --quick --timeout "$(left "$arch")" "$arch"
done
vm-images/cross-test.sh --quick --lib --timeout "$(left mips)" mips
timeout -k 10 "$(left "the size report")" vm-images/size-report.sh --check mips
echo "cross suite: done in $((SECONDS - start))s"
