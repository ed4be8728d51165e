#!/usr/bin/env bash
# DPDK suite (issue 6): the dpdk-sys bindings, the dataplane's `dpdk` feature (unit tests and the
# in-process memif pair), clippy with the feature, then our DPDK-backed endpoint against usrsctp
# between two network namespaces joined by a veth pair:
#
#   namespace rspdk<pid>a: veth va WITHOUT kernel addresses (IPv6 disabled on it); rsp runs with
#                          --backend dpdk and the af_packet PMD on va (--vdev=net_af_packet0,iface=va,
#                          --no-huge: no hugepages needed) and owns 198.18.0.1/24 and fd00::1/64
#                          itself: its own ARP, neighbour discovery, IPv4/IPv6.
#   namespace rspdk<pid>b: veth vb, 198.18.0.2/24, fd00::2/64, the kernel's IP, usrsctp's example
#                          programs over raw IP (see .ci/netns-interop.sh for their conventions).
#
# Scenarios: echo rsp client -> echo_server (IPv4 and IPv6: ARP and NS/NA from our side); echo
# usrsctp client -> rsp server (IPv4, after flushing b's neighbour table: the kernel resolves
# us); 100 MB rsp perf client -> tsctp and tsctp -> rsp perf server (IPv4; tsctp has no IPv6);
# 20 MB tsctp -> rsp perf server --workers 2 (two queue pairs); a missing PMD fails in one line.
# Every scenario is captured on vb (dumpcap in b, Ethernet with ARP/ND) and must be tshark-clean
# (.ci/lib/tshark-check.sh: CRC-32C verified, no malformed packet, no expert error); the
# captures must show ARP both ways (us asking for b and answering b).
#
#   DPDK_BYTES=N     volume of the transfers (default 100000000)
#   RSP_BIN=path     use this rsp binary (built with --features dpdk) instead of building it
#   KEEP_WORK=1      keep the work directory
#   DPDK_SKIP_CRATES=1  skip the cargo tests and clippy (interop only)
#
# Needs root, iproute2, nftables, tshark (dumpcap), libusrsctp-examples, libdpdk-dev, dpdk-dev,
# clang, libclang-dev. Namespaces are always deleted on exit (trap).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
U=/usr/lib/usrsctp
BYTES=${DPDK_BYTES:-100000000}

die() {
  echo "dpdk: $*" >&2
  exit 1
}
[ "$(id -u)" -eq 0 ] || die "needs root (EAL, af_packet, namespaces)"
for tool in ip nft tshark dumpcap timeout pkg-config "$U/echo_server" "$U/client" "$U/tsctp"; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (see .ci/apt-packages)"
done
pkg-config --exists libdpdk || die "libdpdk is missing (apt-get install libdpdk-dev dpdk-dev)"

# ---- crate tests (EAL with --no-huge, virtual devices only) ----------------------------------
if [ "${DPDK_SKIP_CRATES:-0}" != 1 ]; then
timeout 900 cargo test -p dpdk-sys
timeout 900 cargo test -p dataplane --features dpdk --lib dpdk
timeout 300 cargo test -p dataplane --features dpdk --test dpdk_memif
timeout 900 cargo clippy -p dpdk-sys -p dataplane --features dataplane/dpdk --all-targets -- -D warnings
timeout 900 cargo clippy -p appliance -p bench --features appliance/dpdk,bench/dpdk --all-targets -- -D warnings
fi

# ---- usrsctp interop over af_packet ----------------------------------------------------------
if [ -n "${RSP_BIN:-}" ]; then
  RSP=$RSP_BIN
else
  echo "dpdk: building rsp --features dpdk (release)"
  timeout 1200 cargo build --release -q -p appliance --features dpdk --bin rsp
  RSP=${CARGO_TARGET_DIR:-$REPO/target}/release/rsp
fi
[ -x "$RSP" ] || die "$RSP is not an executable rsp"

WORK=$(mktemp -d /tmp/rsp-dpdk.XXXXXX)
NS_A=rspdk$$a
NS_B=rspdk$$b
NAMESPACES=()
PIDS=()
cleanup() {
  local rc=$? p ns
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  for ns in "${NAMESPACES[@]}"; do
    timeout 10 ip netns delete "$ns" || echo "dpdk: could not delete namespace $ns" >&2
  done
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "dpdk: work files kept in $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "dpdk: interrupted" >&2; exit 130' INT
trap 'echo "dpdk: terminated" >&2; exit 143' TERM HUP

A4=198.18.0.1
B4=198.18.0.2
A6=fd00::1
B6=fd00::2
net() { timeout 10 "$@" || die "network setup: '$*' failed"; }
for ns in "$NS_A" "$NS_B"; do
  net ip netns add "$ns"
  NAMESPACES+=("$ns")
  net ip -n "$ns" link set lo up
done
net ip -n "$NS_A" link add va type veth peer name vb netns "$NS_B"
# a: no kernel addresses on va; the DPDK endpoint owns A4/A6 (the kernel drops what it sees).
net ip netns exec "$NS_A" sysctl -qw net.ipv6.conf.va.disable_ipv6=1
net ip -n "$NS_A" link set va up
timeout 10 ip netns exec "$NS_B" sysctl -qw net.ipv6.conf.vb.accept_dad=0 || true
net ip -n "$NS_B" addr add "$B4/24" dev vb
net ip -n "$NS_B" addr add "$B6/64" dev vb nodad
net ip -n "$NS_B" link set vb up
# b answers SCTP without a listener with ICMP protocol-unreachable / parameter-problem: drop.
net ip netns exec "$NS_B" nft -f - <<'EOF'
table inet rsp_dpdk {
  chain out {
    type filter hook output priority 0; policy accept;
    icmp type destination-unreachable icmp code prot-unreachable counter drop
    icmpv6 type parameter-problem icmpv6 code 1 counter drop
  }
}
EOF
echo "dpdk: namespaces $NS_A (DPDK on va: $A4, $A6) and $NS_B (kernel on vb: $B4, $B6)"

PASS=0
fail() {
  echo "dpdk: FAILED: $*" >&2
  local f
  for f in "$WORK"/*.out "$WORK"/*.err; do
    [ -s "$f" ] || continue
    echo "---- $(basename "$f") (last 20 lines)" >&2
    tail -n 20 "$f" | cut -c 1-300 >&2
  done
  exit 1
}
ok() {
  PASS=$((PASS + 1))
  echo "dpdk: ok: $*"
}
bg() {
  local out=$1 ns=$2 secs=$3
  shift 3
  ip netns exec "$ns" timeout "$secs" "$@" >"$WORK/$out.out" 2>"$WORK/$out.err" &
  PIDS+=("$!")
  LAST_PID=$!
}
in_ns() {
  local ns=$1 secs=$2
  shift 2
  ip netns exec "$ns" timeout "$secs" "$@"
}
# shellcheck source=.ci/lib/proc.sh
. "$REPO/.ci/lib/proc.sh"
settle() { sleep 0.7; }
rate() { sed -n 's/.*"throughput_bps":\([0-9.]*\).*/\1/p' "$1" | cut -d. -f1; }

EAL="--no-huge -m 512 --vdev=net_af_packet0,iface=va --log-level=warning"
DPDK4=(--backend dpdk --eal "$EAL" --bind "$A4")
DPDK6=(--backend dpdk --eal "$EAL" --bind "$A6")

# Capture on vb in b (the kernel side sees every frame of the veth).
capture_start() {
  bg "$1-dumpcap" "$NS_B" 300 dumpcap -q -i vb -w "$WORK/$1.pcapng"
  CAP=$LAST_PID
  sleep 1
}
capture_check() {
  local tag=$1 out
  sleep 0.5
  stop "$CAP"
  out=$(timeout 300 "$REPO/.ci/lib/tshark-check.sh" "$WORK/$tag.pcapng") ||
    fail "$tag: capture is not tshark-clean: $out"
  CAPTURE_NOTE="${out#tshark-check: "$WORK/$tag.pcapng": }"
}
count() { timeout 120 tshark -n -r "$WORK/$1.pcapng" -Y "$2" 2>/dev/null | wc -l; }

LINES=("first message over DPDK" "second, with some more text: 0123456789" "third")
input_lines() { printf '%s\n' "${LINES[@]}"; }
LEN=1400
MSGS=$(((BYTES + LEN - 1) / LEN))
ARP_OURS=0
ARP_KERNEL=0

# ---- echo: rsp (DPDK) client -> usrsctp echo_server, IPv4 and IPv6 --------------------------
for fam in v4 v6; do
  if [ $fam = v4 ]; then host=$B4; opts=("${DPDK4[@]}"); else host=$B6; opts=("${DPDK6[@]}"); fi
  tag=dpdk-$fam-echo-rsp-client
  timeout 10 ip -n "$NS_B" neigh flush dev vb || true
  capture_start "$tag"
  bg "$tag-usrsctp" "$NS_B" 60 "$U/echo_server" 0
  srv=$LAST_PID
  settle
  input_lines | in_ns "$NS_A" 60 "$RSP" sctp client "$host" 7 "${opts[@]}" \
    >"$WORK/$tag.out" 2>"$WORK/$tag.err" || fail "$tag: rsp sctp client exited with $?"
  stop "$srv"
  capture_check "$tag"
  diff <(input_lines) "$WORK/$tag.out" >/dev/null || fail "$tag: the echoed lines differ"
  if [ $fam = v4 ]; then
    n=$(count "$tag" "arp.opcode == 1 && arp.src.proto_ipv4 == $A4 && arp.dst.proto_ipv4 == $B4")
    [ "$n" -ge 1 ] || fail "$tag: no ARP request from the DPDK endpoint in the capture"
    ARP_OURS=$((ARP_OURS + n))
  else
    n=$(count "$tag" "icmpv6.type == 135 && ipv6.src == $A6 && icmpv6.nd.ns.target_address == $B6")
    [ "$n" -ge 1 ] || fail "$tag: no neighbour solicitation from the DPDK endpoint"
    n=$(count "$tag" "icmpv6.type == 136 && icmpv6.nd.na.target_address == $B6")
    [ "$n" -ge 1 ] || fail "$tag: the kernel's neighbour advertisement is missing"
  fi
  ok "$tag: ${#LINES[@]} messages echoed by usrsctp at $host ($CAPTURE_NOTE)"
done

# ---- echo: usrsctp client -> rsp (DPDK) server --echo; the kernel resolves us ----------------
tag=dpdk-v4-echo-rsp-server
timeout 10 ip -n "$NS_B" neigh flush dev vb || true
capture_start "$tag"
bg "$tag-server" "$NS_A" 60 "$RSP" sctp server --echo --once --json "${DPDK4[@]}"
srv=$LAST_PID
sleep 2 # EAL start
{ input_lines; sleep 2; } | in_ns "$NS_B" 30 "$U/client" "$A4" 7 0 0 \
  >"$WORK/$tag.out" 2>"$WORK/$tag.err" || fail "$tag: usrsctp client exited with $?"
wait_exit "$srv" 10 || fail "$tag: rsp sctp server --once exited with $?"
capture_check "$tag"
for l in "${LINES[@]}"; do
  grep -qxF "$l" "$WORK/$tag.out" || fail "$tag: '$l' did not come back to the usrsctp client"
done
grep -q '"messages_received":3,.*"messages_sent":3,.*"graceful":true' "$WORK/$tag-server.out" ||
  fail "$tag: server report: $(cat "$WORK/$tag-server.out")"
n=$(count "$tag" "arp.opcode == 2 && arp.src.proto_ipv4 == $A4 && arp.dst.proto_ipv4 == $B4")
[ "$n" -ge 1 ] || fail "$tag: the DPDK endpoint did not answer the kernel's ARP request"
ARP_KERNEL=$((ARP_KERNEL + n))
timeout 10 ip -n "$NS_B" neigh show "$A4" dev vb | grep -q lladdr ||
  fail "$tag: the kernel in b has no neighbour entry for $A4"
ok "$tag: usrsctp client got its messages back; the kernel resolved $A4 by ARP ($CAPTURE_NOTE)"

# ---- 100 MB: rsp perf client -> tsctp ---------------------------------------------------------
tag=dpdk-v4-perf-rsp-client
capture_start "$tag"
bg "$tag-tsctp" "$NS_B" 300 "$U/tsctp" -E 0 -n 0
srv=$LAST_PID
settle
in_ns "$NS_A" 300 "$RSP" sctp perf client "$B4" 5001 --bytes "$BYTES" -l "$LEN" "${DPDK4[@]}" \
  --json --timeout 250 >"$WORK/$tag.out" 2>"$WORK/$tag.err" ||
  fail "$tag: rsp sctp perf client exited with $?"
sleep 0.5
stop "$srv"
capture_check "$tag"
grep -q "\"bytes_sent\":$BYTES,\"messages_sent\":$MSGS,.*\"completed\":true" "$WORK/$tag.out" ||
  fail "$tag: $(cat "$WORK/$tag.out")"
grep -aqE "(^|[^0-9])$LEN, $MSGS, $MSGS, $BYTES, " "$WORK/$tag-tsctp.out" ||
  fail "$tag: tsctp did not report $BYTES bytes in $MSGS messages"
ok "$tag: $BYTES bytes to tsctp, $(rate "$WORK/$tag.out") bit/s ($CAPTURE_NOTE)"

# ---- 100 MB: tsctp -> rsp perf server ---------------------------------------------------------
tag=dpdk-v4-perf-rsp-server
capture_start "$tag"
bg "$tag-server" "$NS_A" 300 "$RSP" sctp perf server --once --json "${DPDK4[@]}"
srv=$LAST_PID
sleep 2
SENT=$((MSGS * LEN))
in_ns "$NS_B" 300 "$U/tsctp" -E 0 -l "$LEN" -n "$MSGS" "$A4" \
  >"$WORK/$tag.out" 2>"$WORK/$tag.err" || fail "$tag: tsctp exited with $?"
wait_exit "$srv" 60 || fail "$tag: rsp sctp perf server --once exited with $?"
capture_check "$tag"
grep -q "\"bytes_received\":$SENT,\"messages_received\":$MSGS,.*\"graceful\":true" \
  "$WORK/$tag-server.out" || fail "$tag: server report: $(cat "$WORK/$tag-server.out")"
ok "$tag: $SENT bytes from tsctp, $(rate "$WORK/$tag-server.out") bit/s ($CAPTURE_NOTE)"

# ---- two workers: two queue pairs on the port, tsctp -> rsp perf server --workers 2 --------------
# af_packet's qpairs spread packets by flow hash (no RSS offload to configure); whatever lands
# on the wrong worker is handed to its owner by the runtime's verification-tag steering.
tag=dpdk-v4-perf-rsp-server-2workers
MSGS2=$(((BYTES / 5 + LEN - 1) / LEN))
capture_start "$tag"
bg "$tag-server" "$NS_A" 300 "$RSP" sctp perf server --once --json --workers 2 --backend dpdk \
  --eal "--no-huge -m 512 --vdev=net_af_packet0,iface=va,qpairs=2 --log-level=warning" --bind "$A4"
srv=$LAST_PID
sleep 2
in_ns "$NS_B" 300 "$U/tsctp" -E 0 -l "$LEN" -n "$MSGS2" "$A4" \
  >"$WORK/$tag.out" 2>"$WORK/$tag.err" || fail "$tag: tsctp exited with $?"
wait_exit "$srv" 60 || fail "$tag: rsp sctp perf server --once exited with $?"
capture_check "$tag"
grep -q "\"bytes_received\":$((MSGS2 * LEN)),\"messages_received\":$MSGS2,.*\"graceful\":true" \
  "$WORK/$tag-server.out" || fail "$tag: server report: $(cat "$WORK/$tag-server.out")"
ok "$tag: $((MSGS2 * LEN)) bytes from tsctp to 2 workers, $(rate "$WORK/$tag-server.out") bit/s ($CAPTURE_NOTE)"

# ---- EAL failure: one line, non-zero exit ------------------------------------------------------
tag=dpdk-eal-failure
rc=0
in_ns "$NS_A" 30 "$RSP" sctp server --echo --backend dpdk --bind "$A4" \
  --eal "--no-huge --vdev=net_nonexistent0" >"$WORK/$tag.out" 2>"$WORK/$tag.err" || rc=$?
[ "$rc" -ne 0 ] || fail "$tag: rsp exited 0 with a missing PMD"
grep -q '^rsp: DPDK EAL initialisation failed: ' "$WORK/$tag.err" ||
  fail "$tag: no one-line EAL error: $(tail -3 "$WORK/$tag.err")"
ok "$tag: exit $rc, $(grep '^rsp: ' "$WORK/$tag.err")"

echo "dpdk: $PASS scenarios passed; ARP: $ARP_OURS requests from us, $ARP_KERNEL replies to the kernel"
