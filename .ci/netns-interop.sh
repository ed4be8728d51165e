#!/usr/bin/env bash
# usrsctp interop between network namespaces (issue 5 item 6): `rsp sctp` against the usrsctp
# example programs (libusrsctp-examples, /usr/lib/usrsctp) across a veth pair, over raw IP
# (protocol 132, `--backend raw`) and over UDP encapsulation (RFC 6951, `--backend udp`), IPv4
# and IPv6. Needs root (namespaces, raw sockets), iproute2, nftables, tshark and coreutils'
# timeout/stdbuf; a missing tool or a non-root run fails the suite.
#
#   .ci/netns-interop.sh           all scenarios (about a minute once rsp is built)
#   NETNS_INTEROP_BYTES=N          bulk volume per transfer (default 20000000)
#   RSP_BIN=path                   use this rsp binary instead of building it
#   KEEP_WORK=1                    keep the work directory (outputs, captures)
#
# Network: namespaces rspni<pid>a (rsp: veth va, 198.18.0.1/24, fd00::1/64) and rspni<pid>b
# (usrsctp: veth vb, 198.18.0.2/24, fd00::2/64), created per run and always deleted on exit
# (trap), also on failure or interruption. Each program runs in its own namespace: over raw IP a
# raw protocol-132 socket sees every SCTP packet of its namespace, so rsp and usrsctp in one
# namespace would both process (and answer) each other's packets. This machine has no kernel
# SCTP module: a namespace without an open raw protocol-132 socket answers SCTP with ICMP
# protocol-unreachable (IPv4) or parameter-problem "unrecognized next header" (ICMPv6 type 4
# code 1, IPv6 has no protocol-unreachable code) whenever a packet arrives before its program
# started or after it exited; a stack may take that for "the peer does not speak SCTP" and
# abort. An nftables rule in each namespace drops those outgoing ICMP messages (as
# dataplane/src/netns.rs does); the summary prints how many it dropped.
#
# Scenarios, for each backend (raw, udp); the rsp side always runs in namespace a:
#   echo       rsp sctp client -> usrsctp echo_server              IPv4 and IPv6
#              usrsctp client  -> rsp sctp server --echo           IPv4 and IPv6
#   perf       rsp sctp perf client -> usrsctp tsctp (server)      IPv4
#              usrsctp tsctp -> rsp sctp perf server                IPv4
#   bulk       rsp sctp perf client -> usrsctp discard_server      IPv6 (counted by usrsctp)
# and once, over raw IP: multi-homed rsp perf client (two veth pairs, 198.18.0.0/24 and
# 198.18.1.0/24) -> usrsctp tsctp, the primary path's veth taken down after a second.
# Every scenario checks what arrived on both sides (as .ci/interop.sh does), and every capture
# written by rsp (--pcap) must pass .ci/lib/tshark-check.sh and carry its SCTP the way the backend
# says: never inside UDP for raw, always inside UDP for udp.
#
# usrsctp argument conventions (read from the programs' sources, usrsctp 0.9.5.0):
#   echo_server / discard_server [local_encaps_port [remote_encaps_port]]
#   client remote_addr remote_port [local_port [local_encaps_port [remote_encaps_port]]]
#   tsctp [-E local_encaps_port (default 9899)] [-U remote_encaps_port (default 0)] [addr]
# The local encapsulation port goes to usrsctp_init(): as root, usrsctp always opens raw
# IPv4/IPv6 protocol-132 sockets, and UDP sockets only for a non-zero port (strace: `echo_server
# 0` makes socket(AF_INET[6], SOCK_RAW, IPPROTO_SCTP) only); a remote encapsulation port of 0
# (or none) sends over raw IP. So raw IP is `echo_server 0`, `client HOST 7 0 0`, `tsctp -E 0`.
#
# What cannot be covered with these programs, and why:
#   - tsctp over IPv6: tsctp is IPv4-only (usrsctp_socket(AF_INET, ...), its address argument
#     and -L go through inet_pton(AF_INET, ...); "tsctp -E 0 fd00::1" prints "error: invalid
#     destination address"). Debian ships no tsctp6. IPv6 bulk towards usrsctp uses
#     discard_server instead, which prints one "Msg of length N" line per message received.
#   - bulk from usrsctp to rsp over IPv6: no usrsctp example can send in bulk over IPv6.
#     `client` ignores the result of usrsctp_sendv() on its callback-driven socket: once its
#     send buffer is full, lines are silently dropped (65000 lines of 79 bytes over IPv6 raw IP:
#     usrsctp's own discard_server received 6140 messages, 485060 bytes; rsp --discard 14329).
#     chargen_server_upcall sends one message per socket upcall only (it installs the upcall on
#     the accepted socket after the association is up, so the first write event is missed) and
#     here stalls after a few dozen messages (25 lines in 5 s, IPv4 and IPv6, raw IP).
#     IPv6 from usrsctp to rsp is covered by the echo scenarios only.
# `nft list` shows the ICMPv6 rule's code 1 as "admin-prohibited" (the name of code 1 of
# destination-unreachable); for parameter-problem, code 1 is "unrecognized next header".
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
U=/usr/lib/usrsctp
BYTES=${NETNS_INTEROP_BYTES:-20000000}
T0=$SECONDS

die() {
  echo "netns-interop: $*" >&2
  exit 1
}
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, nftables, raw IP sockets); run it as root"
for tool in ip nft ping tshark timeout stdbuf "$U/echo_server" "$U/client" "$U/discard_server" \
  "$U/tsctp"; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "$tool is missing (iproute2, nftables, iputils-ping, tshark, coreutils and" \
      "libusrsctp-examples are needed; see .ci/apt-packages)"
done
[[ $BYTES =~ ^[0-9]+$ ]] && [ "$BYTES" -gt 0 ] ||
  die "NETNS_INTEROP_BYTES must be a positive number"

if [ -n "${RSP_BIN:-}" ]; then
  RSP=$RSP_BIN
else
  echo "netns-interop: building rsp (release)"
  timeout 900 cargo build --release -q -p appliance --bin rsp
  RSP=${CARGO_TARGET_DIR:-$REPO/target}/release/rsp
fi
[ -x "$RSP" ] || die "$RSP is not an executable rsp"

WORK=$(mktemp -d /tmp/rsp-netns-interop.XXXXXX)
NS_A=rspni$$a # rsp
NS_B=rspni$$b # usrsctp
NAMESPACES=()
PIDS=()
cleanup() {
  local rc=$? p ns
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  # Deleting a namespace deletes its veth end and the peer with it.
  for ns in "${NAMESPACES[@]}"; do
    timeout 10 ip netns delete "$ns" || echo "netns-interop: could not delete namespace $ns" >&2
  done
  if [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "netns-interop: work files kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "netns-interop: interrupted" >&2; exit 130' INT
trap 'echo "netns-interop: terminated" >&2; exit 143' TERM HUP

# ---- network ------------------------------------------------------------------------------------
A4=198.18.0.1
B4=198.18.0.2
A4_2=198.18.1.1
B4_2=198.18.1.2
A6=fd00::1
B6=fd00::2
# Every setup command is bounded and fails the suite by name.
net() { timeout 10 "$@" || die "network setup: '$*' failed"; }
net_setup() {
  local ns
  for ns in "$NS_A" "$NS_B"; do
    net ip netns add "$ns"
    NAMESPACES+=("$ns")
    net ip -n "$ns" link set lo up
  done
  net ip -n "$NS_A" link add va type veth peer name vb netns "$NS_B"
  local side
  for side in "$NS_A va $A4 $A6" "$NS_B vb $B4 $B6"; do
    set -- $side
    # Best effort (the IPv6 addresses are added with nodad anyway).
    timeout 10 ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.accept_dad=0" || true
    net ip -n "$1" addr add "$3/24" dev "$2"
    net ip -n "$1" addr add "$4/64" dev "$2" nodad
    net ip -n "$1" link set "$2" up
    net ip netns exec "$1" nft -f - <<'EOF'
table inet rsp_netns_interop {
  chain out {
    type filter hook output priority 0; policy accept;
    icmp type destination-unreachable icmp code prot-unreachable counter drop
    icmpv6 type parameter-problem icmpv6 code 1 counter drop
  }
}
EOF
  done
  # A second veth pair (IPv4 only) for the multi-homing scenario.
  net ip -n "$NS_A" link add va2 type veth peer name vb2 netns "$NS_B"
  net ip -n "$NS_A" addr add "$A4_2/24" dev va2
  net ip -n "$NS_B" addr add "$B4_2/24" dev vb2
  net ip -n "$NS_A" link set va2 up
  net ip -n "$NS_B" link set vb2 up
  timeout 10 ip netns exec "$NS_A" ping -q -c 1 -W 2 "$B4_2" >/dev/null ||
    die "no IPv4 across the second veth pair"
  timeout 10 ip netns exec "$NS_A" ping -q -c 1 -W 2 "$B4" >/dev/null ||
    die "no IPv4 across the veth pair"
  timeout 10 ip netns exec "$NS_A" ping -q -c 1 -W 2 "$B6" >/dev/null ||
    die "no IPv6 across the veth pair"
}
net_setup
echo "netns-interop: namespaces $NS_A ($A4, $A6) and $NS_B ($B4, $B6) joined by a veth pair"

# ---- helpers (as in .ci/interop.sh) -------------------------------------------------------------
base=$((30000 + ($$ % 15000) * 2))
UPORT=$base          # usrsctp's encapsulation port (UDP runs)
RPORT=$((base + 1))  # rsp's encapsulation port (UDP runs)

PASS=0
fail() {
  echo "netns-interop: FAILED: $*" >&2
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
  echo "netns-interop: ok: $*"
}
# Starts a background process in a namespace, remembering its PID for the cleanup. `ip netns
# exec` and timeout exec or forward signals, so killing the PID stops the program.
bg() {
  local out=$1 ns=$2 secs=$3
  shift 3
  ip netns exec "$ns" timeout "$secs" "$@" >"$WORK/$out.out" 2>"$WORK/$out.err" &
  PIDS+=("$!")
  LAST_PID=$!
}
# Runs a command in a namespace, bounded.
in_ns() {
  local ns=$1 secs=$2
  shift 2
  ip netns exec "$ns" timeout "$secs" "$@"
}
# shellcheck source=.ci/lib/proc.sh
. "$REPO/.ci/lib/proc.sh"
settle() { sleep 0.7; }

# tshark-clean, and SCTP carried as the backend says (raw: never in UDP; udp: always in UDP).
check_pcap() {
  local tag=$1 f=$WORK/$1.pcap out total in_udp
  if [ "$BACKEND" = udp ]; then
    out=$(timeout 120 "$REPO/.ci/lib/tshark-check.sh" "$f" "$UPORT" "$RPORT") ||
      fail "$tag: capture is not tshark-clean: $out"
  else
    out=$(timeout 120 "$REPO/.ci/lib/tshark-check.sh" "$f") ||
      fail "$tag: capture is not tshark-clean: $out"
  fi
  total=$(timeout 120 tshark -n -r "$f" -d "udp.port==$UPORT,sctp" -d "udp.port==$RPORT,sctp" \
    -Y sctp -T fields -e udp.srcport 2>/dev/null) || fail "$tag: tshark cannot read $f"
  in_udp=$(printf '%s\n' "$total" | grep -c '[0-9]' || true)
  total=$(printf '%s\n' "$total" | grep -c '' || true)
  if [ "$BACKEND" = raw ]; then
    [ "$in_udp" -eq 0 ] ||
      fail "$tag: $in_udp of $total SCTP packets are UDP-encapsulated on the raw backend"
  else
    [ "$in_udp" -eq "$total" ] ||
      fail "$tag: only $in_udp of $total SCTP packets are UDP-encapsulated on the udp backend"
  fi
  CAPTURE_NOTE="${out#tshark-check: "$f": }"
}
rate() { sed -n 's/.*"throughput_bps":\([0-9.]*\).*/\1/p' "$1" | cut -d. -f1; }

LINES=("first message across the veth pair" "second, with some more text: 0123456789" "third")
input_lines() { printf '%s\n' "${LINES[@]}"; }
LEN=1400
MSGS=$(((BYTES + LEN - 1) / LEN))

for BACKEND in raw udp; do
  # usrsctp's encapsulation arguments and rsp's backend options for this backend.
  if [ "$BACKEND" = raw ]; then
    SRV_ENC=(0)               # echo_server / discard_server: usrsctp_init(0), raw IP
    CLI_ENC=(0)               # client: local_port 0, then local_encaps_port 0
    TSCTP_ENC=(-E 0)          # no UDP socket; remote encapsulation port stays 0
    RSP_OPTS=(--backend raw)
    RSP_CLI_OPTS=(--backend raw)
  else
    SRV_ENC=("$UPORT" "$RPORT")
    CLI_ENC=("$UPORT" "$RPORT")
    TSCTP_ENC=(-E "$UPORT" -U "$RPORT")
    RSP_OPTS=(--backend udp --udp-port "$RPORT")
    RSP_CLI_OPTS=(--backend udp --udp-port "$RPORT" --remote-udp-port "$UPORT")
  fi

  # ---- echo: rsp client -> usrsctp echo_server --------------------------------------------------
  for fam in v4 v6; do
    host=$([ $fam = v4 ] && echo "$B4" || echo "$B6")
    tag=$BACKEND-$fam-echo-rsp-client
    bg "$tag-usrsctp" "$NS_B" 60 "$U/echo_server" "${SRV_ENC[@]}"
    srv=$LAST_PID
    settle
    input_lines | in_ns "$NS_A" 30 "$RSP" sctp client "$host" 7 "${RSP_CLI_OPTS[@]}" \
      --pcap "$WORK/$tag.pcap" >"$WORK/$tag.out" 2>"$WORK/$tag.err" ||
      fail "$tag: rsp sctp client exited with $?"
    stop "$srv"
    diff <(input_lines) "$WORK/$tag.out" >/dev/null || fail "$tag: the echoed lines differ"
    check_pcap "$tag"
    ok "$tag: ${#LINES[@]} messages echoed by usrsctp echo_server at $host ($CAPTURE_NOTE)"
  done

  # ---- echo: usrsctp client -> rsp server --echo ------------------------------------------------
  for fam in v4 v6; do
    host=$([ $fam = v4 ] && echo "$A4" || echo "$A6")
    tag=$BACKEND-$fam-echo-rsp-server
    bg "$tag-server" "$NS_A" 60 "$RSP" sctp server --echo --once --json "${RSP_OPTS[@]}" \
      --pcap "$WORK/$tag.pcap"
    srv=$LAST_PID
    settle
    # The usrsctp client shuts down when its standard input ends; keep it open until the echoes
    # are back.
    { input_lines; sleep 2; } | in_ns "$NS_B" 30 "$U/client" "$host" 7 0 "${CLI_ENC[@]}" \
      >"$WORK/$tag.out" 2>"$WORK/$tag.err" || fail "$tag: usrsctp client exited with $?"
    wait_exit "$srv" 10 || fail "$tag: rsp sctp server --once exited with $?"
    for l in "${LINES[@]}"; do
      grep -qxF "$l" "$WORK/$tag.out" || fail "$tag: '$l' did not come back to the usrsctp client"
    done
    grep -q '"service":"echo".*"messages_received":3,.*"messages_sent":3,.*"graceful":true' \
      "$WORK/$tag-server.out" || fail "$tag: server report: $(cat "$WORK/$tag-server.out")"
    grep -q SCTP_SHUTDOWN_COMP "$WORK/$tag.out" || fail "$tag: usrsctp saw no graceful shutdown"
    check_pcap "$tag"
    ok "$tag: usrsctp client got its ${#LINES[@]} messages back from rsp at $host ($CAPTURE_NOTE)"
  done

  # ---- perf: rsp perf client -> tsctp (IPv4 only: tsctp has no IPv6) -----------------------------
  tag=$BACKEND-v4-perf-rsp-client
  bg "$tag-tsctp" "$NS_B" 120 "$U/tsctp" "${TSCTP_ENC[@]}" -n 0
  srv=$LAST_PID
  settle
  in_ns "$NS_A" 120 "$RSP" sctp perf client "$B4" 5001 --bytes "$BYTES" -l "$LEN" \
    "${RSP_CLI_OPTS[@]}" --json --timeout 100 --pcap "$WORK/$tag.pcap" \
    >"$WORK/$tag.out" 2>"$WORK/$tag.err" || fail "$tag: rsp sctp perf client exited with $?"
  sleep 0.5
  stop "$srv"
  grep -q "\"bytes_sent\":$BYTES,\"messages_sent\":$MSGS,.*\"completed\":true" "$WORK/$tag.out" ||
    fail "$tag: $(cat "$WORK/$tag.out")"
  # tsctp's server line: length, messages, recv calls, bytes, seconds, rate, notifications. Its
  # stack debug output (without newlines at times) shares standard output: no ^ anchor.
  grep -aqE "(^|[^0-9])$LEN, $MSGS, $MSGS, $BYTES, " "$WORK/$tag-tsctp.out" ||
    fail "$tag: tsctp did not report $BYTES bytes in $MSGS messages"
  check_pcap "$tag"
  ok "$tag: $BYTES bytes to tsctp at $B4, $(rate "$WORK/$tag.out") bit/s ($CAPTURE_NOTE)"

  # ---- perf: tsctp -> rsp perf server -----------------------------------------------------------
  tag=$BACKEND-v4-perf-rsp-server
  bg "$tag-server" "$NS_A" 120 "$RSP" sctp perf server --once --json "${RSP_OPTS[@]}" \
    --pcap "$WORK/$tag.pcap"
  srv=$LAST_PID
  settle
  SENT=$((MSGS * LEN))
  in_ns "$NS_B" 120 "$U/tsctp" "${TSCTP_ENC[@]}" -l "$LEN" -n "$MSGS" "$A4" \
    >"$WORK/$tag.out" 2>"$WORK/$tag.err" || fail "$tag: tsctp exited with $?"
  wait_exit "$srv" 30 || fail "$tag: rsp sctp perf server --once exited with $?"
  grep -aq "Sending of $MSGS messages of length $LEN took" "$WORK/$tag.out" ||
    fail "$tag: tsctp did not report sending $MSGS messages"
  grep -q "\"bytes_received\":$SENT,\"messages_received\":$MSGS,.*\"graceful\":true" \
    "$WORK/$tag-server.out" || fail "$tag: server report: $(cat "$WORK/$tag-server.out")"
  check_pcap "$tag"
  ok "$tag: $SENT bytes from tsctp to $A4, $(rate "$WORK/$tag-server.out") bit/s ($CAPTURE_NOTE)"

  # ---- bulk over IPv6: rsp perf client -> discard_server ----------------------------------------
  tag=$BACKEND-v6-bulk-rsp-client
  # Line-buffered: the server is stopped by a signal, and its count is in its output.
  bg "$tag-usrsctp" "$NS_B" 120 stdbuf -oL "$U/discard_server" "${SRV_ENC[@]}"
  srv=$LAST_PID
  settle
  in_ns "$NS_A" 120 "$RSP" sctp perf client "$B6" 9 --bytes "$BYTES" -l "$LEN" \
    "${RSP_CLI_OPTS[@]}" --json --timeout 100 --pcap "$WORK/$tag.pcap" \
    >"$WORK/$tag.out" 2>"$WORK/$tag.err" || fail "$tag: rsp sctp perf client exited with $?"
  sleep 0.5
  stop "$srv"
  grep -q "\"bytes_sent\":$BYTES,\"messages_sent\":$MSGS,.*\"completed\":true" "$WORK/$tag.out" ||
    fail "$tag: $(cat "$WORK/$tag.out")"
  # One line per complete message received; debug output may precede it on the same line.
  msg_re='Msg of length [0-9]+ received from [0-9a-f:.]+:[0-9]+ on stream [0-9]+ with SSN [0-9]+'
  msg_re+=' and TSN [0-9]+, PPID [0-9]+, context [0-9]+, complete 1'
  got=$(grep -aoE "$msg_re" "$WORK/$tag-usrsctp.out" |
    awk '{ n++; s += $4 } END { printf "%d %d", n, s }')
  [ "$got" = "$MSGS $BYTES" ] ||
    fail "$tag: usrsctp discard_server received (messages bytes) '$got', expected '$MSGS $BYTES'"
  check_pcap "$tag"
  ok "$tag: $BYTES bytes in $MSGS messages counted by usrsctp discard_server at $B6," \
    "$(rate "$WORK/$tag.out") bit/s ($CAPTURE_NOTE)"
done

# ---- multi-homing: rsp on two addresses -> tsctp, the primary's veth taken down mid-transfer ---
BACKEND=raw
tag=raw-v4-multihome-failover
MH_BYTES=$((BYTES * 5))
MH_MSGS=$(((MH_BYTES + LEN - 1) / LEN))
bg "$tag-tsctp" "$NS_B" 120 "$U/tsctp" -E 0 -n 0
srv=$LAST_PID
settle
bg "$tag" "$NS_A" 120 "$RSP" sctp perf client "$B4" 5001 --backend raw --bind "$A4,$A4_2" \
  --bytes "$MH_BYTES" -l "$LEN" --json --timeout 100 --pcap "$WORK/$tag.pcap"
perf=$LAST_PID
sleep 1
# usrsctp learned our second address from the INIT; ours learned its second from the INIT ACK.
# The primary path is where the COOKIE ECHO went (usrsctp may answer the INIT from either of
# its addresses): its link goes down.
primary=$(timeout 10 tshark -n -c 10 -r "$WORK/$tag.pcap" -T fields -e sctp.chunk_type \
  -e ip.dst 2>/dev/null | awk '$1 == "10" { print $2; exit }')
case "$primary" in
  "$B4_2") down_dev=va2 alternate=$B4 ;;
  "$B4") down_dev=va alternate=$B4_2 ;;
  *) fail "$tag: no COOKIE ECHO in the capture after a second ('$primary')" ;;
esac
in_ns "$NS_A" 10 ip link set "$down_dev" down
wait_exit "$perf" 110 || fail "$tag: rsp sctp perf client exited with $?"
in_ns "$NS_A" 10 ip link set "$down_dev" up
# tsctp prints its report after the shutdown, behind much debug output: wait for it (bounded).
for _ in $(seq 1 300); do
  grep -aqE "(^|[^0-9])$LEN, $MH_MSGS, [0-9]+, $MH_BYTES, " "$WORK/$tag-tsctp.out" && break
  sleep 0.1
done
stop "$srv"
grep -q "\"bytes_sent\":$MH_BYTES,\"messages_sent\":$MH_MSGS,.*\"completed\":true" \
  "$WORK/$tag.out" || fail "$tag: $(cat "$WORK/$tag.out")"
grep -q "\"$B4\"" "$WORK/$tag.out" && grep -q "\"$B4_2\"" "$WORK/$tag.out" ||
  fail "$tag: not both of usrsctp's addresses are paths: $(cat "$WORK/$tag.out")"
grep -aqE "(^|[^0-9])$LEN, $MH_MSGS, [0-9]+, $MH_BYTES, " "$WORK/$tag-tsctp.out" ||
  fail "$tag: tsctp did not report $MH_BYTES bytes in $MH_MSGS messages after the failover"
check_pcap "$tag"
second=$(timeout 120 tshark -n -r "$WORK/$tag.pcap" \
  -Y "sctp.chunk_type == 0 && ip.dst == $alternate" 2>/dev/null | wc -l)
[ "$second" -gt 0 ] || fail "$tag: no DATA went to $alternate after the primary's link went down"
ok "$tag: $MH_BYTES bytes to tsctp, primary path to $primary down after 1 s ($down_dev)," \
  "$second DATA packets to $alternate ($CAPTURE_NOTE)"

drops() {
  timeout 10 ip netns exec "$1" nft list chain inet rsp_netns_interop out 2>/dev/null |
    awk '{ for (i = 1; i < NF; i++) if ($i == "packets") n += $(i + 1) } END { print n + 0 }'
}
echo "netns-interop: ICMP(v6) answers to SCTP dropped by nftables: $(drops "$NS_A") in $NS_A (rsp)," \
  "$(drops "$NS_B") in $NS_B (usrsctp)"
echo "netns-interop: all $PASS scenarios passed in $((SECONDS - T0))s (raw IP and UDP encapsulation:" \
  "IPv4 and IPv6 echo both ways, IPv4 tsctp both ways, IPv6 bulk to usrsctp; multi-homed" \
  "failover to tsctp over two veth pairs)"
