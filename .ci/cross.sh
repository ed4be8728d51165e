#!/usr/bin/env bash
# Cross-architecture test runs (issue 10): the test suites of sctp-stack, rserpool and dataplane
# built for aarch64, powerpc (32-bit big-endian) and mips (32-bit big-endian, tier 3: nightly with
# -Zbuild-std) and run under qemu-user.
#
# The CI subset (the full set does not fit ~10 minutes on the 2-core machine; cold cross builds
# dominate: about 4 min for aarch64, 3 for powerpc, 3.5 for mips unit tests alone, measured with
# other builds running):
#   aarch64:  every test of the three crates, PROPTEST_CASES=32, and `rsp --version` (the guest
#             suite boots this rsp in the aarch64 guest)
#   powerpc:  every test of the three crates, PROPTEST_CASES=32
#   mips:     the unit tests of the three crates (`--lib`), PROPTEST_CASES=32
# The full set (every test with full property-test case counts and `rsp --version` on each
# target) runs with `vm-images/cross-test.sh ARCH`; the router-profile size of rsp (goal: mips
# <= 3 MiB) with `vm-images/size-report.sh`. Bounded by CROSS_CI_BUDGET seconds (default 1200);
# running out is a failure.
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
vm-images/cross-test.sh --quick --timeout "$(left aarch64)" aarch64
vm-images/cross-test.sh --quick --no-rsp --timeout "$(left powerpc)" powerpc
vm-images/cross-test.sh --quick --lib --no-rsp --timeout "$(left mips)" mips
echo "cross suite: done in $((SECONDS - start))s"
