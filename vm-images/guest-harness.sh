# Helpers shared by the guest interop scripts (linux-sctp-interop.sh, rsplib-interop.sh).
# Source after lib.sh, with NAME (the guest's name), WORK (a scratch directory) and RG (the
# run-guest.sh command as an array) set.
# shellcheck shell=bash

# GUEST_ADDS (an array of HOSTFILE:/GUEST/PATH, optional) is passed to every boot as --add.
boot() { # NICS SYSCTL...: a fresh guest with NICS links and the given sysctls
  local nics=$1 s a args=()
  shift
  for s in "$@"; do args+=(--sysctl "$s"); done
  for a in ${GUEST_ADDS[@]+"${GUEST_ADDS[@]}"}; do args+=(--add "$a"); done
  "${RG[@]}" stop --name "$NAME" >/dev/null 2>&1 || true
  "${RG[@]}" start --name "$NAME" --arch x86_64 --nics "$nics" "${args[@]}" >&2
}
guest() { "${RG[@]}" exec --name "$NAME" --timeout "${GUEST_TIMEOUT:-300}" "$1"; }
in_ns() { ip netns exec "rspvm-$NAME" "$@"; }
# tshark reports "Capturing on" a moment before it really captures: without the pause the INIT of
# a peer that starts at once can be missing from the capture.
cap_start() { "${RG[@]}" capture --name "$NAME" --nic "$1" start "$WORK/$2.pcapng" && sleep 0.5; }
# tshark writes with a delay: give it a second so the last packets (SHUTDOWN COMPLETE) are in.
cap_stop() { sleep 1; "${RG[@]}" capture --name "$NAME" --nic "$1" stop; }
# Number of packets in a capture matching a display filter (CRC32c checked).
count() { tshark -n -o sctp.checksum:CRC-32C -r "$WORK/$1.pcapng" -Y "$2" 2>/dev/null | wc -l; }
# tshark-clean: no malformed packet, no expert error, no bad checksum, and (unless the second
# argument is "aborts-allowed", for scenarios that kill a peer) no ABORT.
clean() {
  local n
  n=$(count "$1" '_ws.malformed || _ws.expert.severity >= "Error" || sctp.checksum.status == "Bad"')
  [ "$n" -eq 0 ] || { echo "$1: $n malformed/erroneous packets"; return 1; }
  [ "${2:-}" = aborts-allowed ] && return 0
  n=$(count "$1" 'sctp.chunk_type == 6')
  [ "$n" -eq 0 ] || { echo "$1: $n ABORT chunks"; return 1; }
}
has() { # CAPTURE FILTER WHAT
  local n
  n=$(count "$1" "$2")
  [ "$n" -gt 0 ] || { echo "$1: no $3 ($2)"; return 1; }
}
json_field() { sed -n "s/.*\"$2\": *\\([0-9]*\\).*/\\1/p" <<<"$1" | head -1; }
