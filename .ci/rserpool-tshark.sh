#!/usr/bin/env bash
# Wireshark cross-check of the RSerPool codecs: every ASAP, ENRP and service message,
# wrapped in SCTP DATA chunks (and CSP over UDP), must decode in tshark without malformed
# or error-level packets and under the expected message names.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v tshark >/dev/null 2>&1; then
  echo "rserpool-tshark: tshark is not installed (it is listed in .ci/apt-packages)" >&2
  exit 1
fi
tshark --version | head -n 1
timeout 900 cargo test -p rserpool --test tshark -- --ignored
timeout 900 cargo test -p rserpool --test registrar_tshark -- --ignored
# Real `rsp registrar` processes: their --pcap captures must be tshark-clean ASAP/ENRP.
timeout 900 cargo test -p appliance --test registrar -- --ignored registrar_captures
