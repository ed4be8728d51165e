#!/usr/bin/env bash
# QEMU guests (issue 10): builds the x86_64 guest (Debian kernel with SCTP, lksctp-tools,
# RSPLIB 3.4.4) and the aarch64 guest from Debian packages, boots each under TCG on a tap device in
# a test network namespace and runs the sanity checks of `vm-images/run-guest.sh sanity` (kernel
# SCTP transfers, rspregistrar, an RSPLIB PingPong pool, ping both ways, SCTP INITs on the tap with
# the nft rule against the host kernel's ICMP errors), then `rsp sctp` over raw IP against the
# x86_64 guest kernel's SCTP (vm-images/linux-sctp-interop.sh: echo both ways, 100 MB both ways,
# multi-homed failover, PR-SCTP, AUTH'd ASCONF, I-DATA and stream resets both ways), RSPLIB
# against our registrar, PE, PU and our hsdump against rspregistrar (vm-images/rsplib-interop.sh);
# the aarch64 guest also runs our `rsp`.
# Namespaces are deleted afterwards. Bounded by GUEST_CI_BUDGET seconds (default 1000).
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=${GUEST_CI_BUDGET:-1000}
start=$SECONDS
left() {
  local l=$((BUDGET - (SECONDS - start)))
  if [ "$l" -lt 30 ]; then
    echo "guest suite: budget of ${BUDGET}s exhausted before $1" >&2
    exit 1
  fi
  echo "$l"
}
timeout -k 10 "$(left "the x86_64 guest build")" vm-images/build-guest.sh --arch x86_64
timeout -k 10 "$(left "the x86_64 sanity run")" vm-images/run-guest.sh sanity --arch x86_64
# Our stack (rsp sctp, raw IP) against the guest kernel's SCTP: the scenarios rsp supports today.
cargo build --release -q -p appliance --bin rsp
timeout -k 10 "$(left "the Linux SCTP interop run")" vm-images/linux-sctp-interop.sh \
  --rsp "${CARGO_TARGET_DIR:-target}/release/rsp" \
  echo echo-reverse bulk-to-guest bulk-from-guest multihoming prsctp auth-asconf idata idata-from-guest \
  idata-fragmented idata-fragmented-from-guest reconf reconf-from-guest
# RSPLIB 3.4.4 in the guest against our registrar, pool element and pool user (raw IP).
timeout -k 10 "$(left "the RSPLIB interop run")" vm-images/rsplib-interop.sh \
  --rsp "${CARGO_TARGET_DIR:-target}/release/rsp"

# rsp for aarch64: the debug binary that .ci/cross.sh built when it ran first, else a fresh build.
rsp=target/cross-aarch64/aarch64-unknown-linux-gnu/debug/rsp
if [ ! -x "$rsp" ]; then
  vm-images/cross-test.sh --rsp-only --timeout "$(left "the aarch64 rsp build")" aarch64
fi
[ -x "$rsp" ] || { echo "guest suite: $rsp was not built" >&2; exit 1; }
timeout -k 10 "$(left "the aarch64 guest build")" vm-images/build-guest.sh --arch aarch64
timeout -k 10 "$(left "the aarch64 sanity run")" \
  vm-images/run-guest.sh sanity --arch aarch64 --add "$rsp:/usr/bin/rsp"
echo "guest suite: done in $((SECONDS - start))s"
