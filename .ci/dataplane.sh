#!/usr/bin/env bash
# Dataplane suite: the raw-IP backends (poll and io_uring) between network namespaces joined by
# veth pairs. Needs root (namespaces, CAP_NET_RAW), iproute2 and nftables; every test removes
# its namespaces, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in ip nft; do
  command -v "$tool" >/dev/null || { echo "dataplane suite: '$tool' is missing" >&2; exit 1; }
done
if [ "$(id -u)" -ne 0 ]; then
  echo "dataplane suite: needs root (network namespaces, CAP_NET_RAW)" >&2
  exit 1
fi

timeout 900 cargo test -p dataplane --test raw_netns -- --ignored --test-threads=2
# Flips the global kernel.io_uring_disabled sysctl (restored by the test): runs alone.
timeout 300 cargo test -p dataplane --test uring_fallback -- --ignored --test-threads=1
# libusrsctp as a benchmark peer (feature usrsctp, libusrsctp-dev): the FFI wrapper's tests,
# and clippy of the bench with it (the workspace builds without it by default).
timeout 600 cargo test -p dataplane --features usrsctp --test usrsctp
timeout 300 cargo test -p dataplane --features usrsctp --test usrsctp_raw -- --ignored
timeout 900 cargo clippy -p bench --features usrsctp --all-targets -- -D warnings
