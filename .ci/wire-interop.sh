#!/usr/bin/env bash
# Wire format against real tools (sctp-stack/tests/wire_interop.rs, the ignored tests):
# - tshark decodes a capture of every chunk, parameter and error cause we implement (raw IP
#   and UDP-encapsulated on port 9899) exactly as we do, with good CRC32c checksums and no
#   malformed packets or error-level expert info;
# - a live usrsctp echo_server/client association over UDP encapsulation on loopback is
#   captured with dumpcap (needs root) and every packet re-encodes byte-identical.
# Missing tools fail the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in tshark dumpcap /usr/lib/usrsctp/echo_server /usr/lib/usrsctp/client; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "wire-interop: $tool is missing (tshark and libusrsctp-examples are in .ci/apt-packages)" >&2
    exit 1
  fi
done
if [ "$(id -u)" -ne 0 ]; then
  echo "wire-interop: capturing on lo needs root" >&2
  exit 1
fi
tshark --version | head -n 1
timeout 900 cargo test -p sctp-stack --test wire_interop -- --ignored --nocapture --test-threads=1
