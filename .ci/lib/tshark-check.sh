#!/usr/bin/env bash
# Checks one SCTP capture with tshark: every SCTP checksum verified as CRC32c, no malformed
# packet, no expert info of severity Error, and at least one SCTP packet decoded (a capture that
# decodes as nothing fails instead of passing vacuously).
#
#   .ci/lib/tshark-check.sh FILE [UDP_PORT...]
#
# UDP_PORT: UDP ports that carry SCTP (RFC 6951) besides 9899, which tshark decodes by itself.
# Prints one summary line; on failure also the offending packets. Exit 0 clean, 1 not clean,
# 2 usage or tshark missing.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 FILE [UDP_PORT...]" >&2
  exit 2
fi
file=$1
shift
command -v tshark >/dev/null || { echo "tshark-check: tshark is missing (apt-get install tshark)" >&2; exit 2; }
[ -s "$file" ] || { echo "tshark-check: $file: missing or empty"; exit 1; }
args=(-n -o sctp.checksum:CRC-32C)
for p in "$@"; do
  [[ $p =~ ^[0-9]+$ ]] || { echo "tshark-check: '$p' is not a UDP port" >&2; exit 2; }
  args+=(-d "udp.port==$p,sctp")
done
bad_filter='_ws.malformed || _ws.expert.severity >= "Error" || sctp.checksum.status == "Bad"'
# tshark fails on unreadable or truncated files: that is a failure of the capture too.
if ! total=$(tshark "${args[@]}" -r "$file" -Y sctp 2>/dev/null | wc -l); then
  echo "tshark-check: $file: tshark cannot read it"
  exit 1
fi
bad_lines=$(tshark "${args[@]}" -r "$file" -Y "$bad_filter" 2>/dev/null || true)
bad=0
[ -z "$bad_lines" ] || bad=$(printf '%s\n' "$bad_lines" | wc -l)
if [ "$total" -eq 0 ]; then
  echo "tshark-check: $file: no SCTP packet decoded (UDP ports given: ${*:-none})"
  exit 1
fi
if [ "$bad" -ne 0 ]; then
  echo "tshark-check: $file: $bad of $total SCTP packets malformed, with errors or bad checksums:"
  printf '%s\n' "$bad_lines" | head -10
  exit 1
fi
echo "tshark-check: $file: $total SCTP packets, all clean"
