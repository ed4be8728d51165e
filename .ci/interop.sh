#!/usr/bin/env bash
# usrsctp interop suite (issue 3): `rsp sctp` against the usrsctp example programs
# (libusrsctp-examples, /usr/lib/usrsctp) over UDP encapsulation (RFC 6951) on loopback,
# unprivileged. Every scenario checks what arrived on both sides, and every capture that rsp
# writes (--pcap) must pass .ci/lib/tshark-check.sh (CRC32c verified, nothing malformed, no
# error-level expert info).
#
#   .ci/interop.sh            all scenarios, IPv4 and IPv6 (echo), 100 MB perf both ways
#   INTEROP_PERF_BYTES=N      perf volume (default 100000000)
#
# Scenarios:
#   multi-homed rsp (--bind 127.0.0.1,127.0.0.2) as server and client: usrsctp confirms the
#             second address by heartbeat
#   echo      rsp sctp client  -> usrsctp echo_server        (127.0.0.1 and ::1)
#             usrsctp client   -> rsp sctp server --echo     (127.0.0.1 and ::1)
#   discard   rsp sctp client  -> usrsctp discard_server;  usrsctp client -> rsp --discard
#   daytime   rsp sctp client  -> usrsctp daytime_server;  usrsctp client -> rsp --daytime
#   chargen   rsp sctp client  -> usrsctp chargen_server_upcall; usrsctp client -> rsp --chargen
#   perf      rsp sctp perf client -> usrsctp tsctp (server); usrsctp tsctp -> rsp sctp perf server
#   partial-delivery  usrsctp tsctp 3 MB messages -> rsp sctp server --discard
#             --partial-delivery-point: messages larger than the receive window arrive in pieces
#   connectx  rsp sctp client 198.18.0.99,127.0.0.1 -> usrsctp echo_server in a namespace of its
#             own where 198.18.0.99 goes nowhere (a veth dead end): the first address does not answer,
#             the INIT retransmitted to the second does (like sctp_connectx); needs root
#   auth-asconf  rsp sctp perf client --auth --asconf-add 127.0.0.2 -> tsctp: usrsctp verifies
#             rsp's AUTH'd ASCONF (RFC 4895, RFC 5061) and answers with an AUTH'd ASCONF ACK
#   reconf    rsp sctp perf client --reset-streams-after -> tsctp: usrsctp negotiates RE-CONFIG
#             (RFC 6525) but by default (no SCTP_ENABLE_STREAM_RESET) answers "Denied"; rsp
#             must fail with that reason (a performed reset with usrsctp is tested in
#             dataplane/tests/usrsctp.rs, where the socket enables it)
#
# The usrsctp programs take their UDP encapsulation ports as arguments (local, then remote);
# tsctp takes -E (local) and -U (remote). Each side gets its own port, derived from the PID so
# that parallel runs on one host do not collide.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
U=/usr/lib/usrsctp
PERF_BYTES=${INTEROP_PERF_BYTES:-100000000}

for tool in tshark "$U/echo_server" "$U/client" "$U/discard_server" "$U/daytime_server" \
  "$U/chargen_server_upcall" "$U/tsctp"; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "interop: $tool is missing (tshark and libusrsctp-examples are in .ci/apt-packages)" >&2
    exit 1
  }
done

echo "interop: building rsp (release)"
cargo build --release -q -p appliance --bin rsp
RSP=${CARGO_TARGET_DIR:-$REPO/target}/release/rsp
[ -x "$RSP" ] || { echo "interop: $RSP was not built" >&2; exit 1; }

WORK=$(mktemp -d /tmp/rsp-interop.XXXXXX)
PIDS=()
cleanup() {
  local p
  [ -z "${CX_NS:-}" ] || ip netns del "$CX_NS" 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "interop: work files kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# Two free-looking UDP ports: usrsctp's and ours.
base=$((30000 + ($$ % 15000) * 2))
UPORT=$base      # usrsctp's encapsulation port
RPORT=$((base + 1)) # rsp's encapsulation port

PASS=0
fail() {
  echo "interop: FAILED: $*" >&2
  for f in "$WORK"/*.out "$WORK"/*.err; do
    [ -s "$f" ] || continue
    echo "---- $(basename "$f") (last 20 lines)" >&2
    tail -n 20 "$f" >&2
  done
  exit 1
}
ok() {
  PASS=$((PASS + 1))
  echo "interop: ok: $*"
}
# Starts a background process, remembering its PID for the cleanup.
bg() {
  local out=$1
  shift
  "$@" >"$WORK/$out.out" 2>"$WORK/$out.err" &
  PIDS+=("$!")
  LAST_PID=$!
}
# shellcheck source=.ci/lib/proc.sh
. "$REPO/.ci/lib/proc.sh"
check_pcap() {
  local f=$WORK/$1.pcap
  "$REPO/.ci/lib/tshark-check.sh" "$f" "$UPORT" "$RPORT" || fail "capture $1 is not tshark-clean"
}
# usrsctp programs bind their encapsulation port at start; give them a moment (a lost INIT
# would only cost a retransmission, but keeps the runs short).
settle() { sleep 0.7; }

LINES=("first message from the interop suite" "second, with some more text: 0123456789"
  "third")
input_lines() { printf '%s\n' "${LINES[@]}"; }

# ---- echo: rsp client -> usrsctp echo_server ----------------------------------------------------
for host in 127.0.0.1 ::1; do
  tag=echo-rsp-client-$([ "$host" = ::1 ] && echo v6 || echo v4)
  bg usrsctp-echo "$U/echo_server" "$UPORT" "$RPORT"
  srv=$LAST_PID
  settle
  input_lines | timeout 30 "$RSP" sctp client "$host" 7 --udp-port "$RPORT" \
    --remote-udp-port "$UPORT" --pcap "$WORK/$tag.pcap" >"$WORK/$tag.out" 2>"$WORK/$tag.err" ||
    fail "$tag: rsp sctp client exited with $?"
  stop "$srv"
  diff <(input_lines) "$WORK/$tag.out" >/dev/null || fail "$tag: the echoed lines differ"
  check_pcap "$tag"
  ok "$tag: ${#LINES[@]} messages echoed by usrsctp echo_server over $host"
done

# ---- connectx: rsp client with an unreachable first peer address -> usrsctp echo_server ---------
# In a network namespace of its own (root needed; CI runs as root): 198.18.0.99 is routed into a
# veth whose other end (same namespace, no address) drops frames for a MAC that is not its own,
# so the first INIT goes there and is never answered; the
# one sent to 127.0.0.1 when T1-init expires is answered by usrsctp, and the association carries
# the echoes. Nothing leaves the namespace.
tag=connectx-rsp-client
[ "$(id -u)" -eq 0 ] || fail "$tag: needs root for its network namespace (CI runs as root)"
CX_NS=sctp-ix-cx-$$
cx_cleanup() { ip netns del "$CX_NS" 2>/dev/null || true; }
ip netns add "$CX_NS"
ip -n "$CX_NS" link set lo up
ip -n "$CX_NS" link add cx0 type veth peer name cx1
ip -n "$CX_NS" link set cx0 up
ip -n "$CX_NS" link set cx1 up
ip -n "$CX_NS" addr add 198.18.0.1/32 dev cx0
ip -n "$CX_NS" route add 198.18.0.99/32 dev cx0
ip -n "$CX_NS" neigh add 198.18.0.99 lladdr 02:00:00:00:00:99 dev cx0 nud permanent
bg usrsctp-echo-connectx ip netns exec "$CX_NS" "$U/echo_server" "$UPORT" "$RPORT"
srv=$LAST_PID
settle
cx_rc=0
input_lines | timeout 40 ip netns exec "$CX_NS" "$RSP" sctp client 198.18.0.99,127.0.0.1 7 \
  --udp-port "$RPORT" --remote-udp-port "$UPORT" --timeout 20 --pcap "$WORK/$tag.pcap" \
  >"$WORK/$tag.out" 2>"$WORK/$tag.err" || cx_rc=$?
stop "$srv"
cx_cleanup
[ "$cx_rc" -eq 0 ] || fail "$tag: rsp sctp client exited with $cx_rc: $(cat "$WORK/$tag.err")"
diff <(input_lines) "$WORK/$tag.out" >/dev/null || fail "$tag: the echoed lines differ"
inits=$(tshark -n -r "$WORK/$tag.pcap" -d "udp.port==$UPORT,sctp" -Y 'sctp.chunk_type == 1' \
  -T fields -e ip.dst 2>/dev/null | tr '\n' ' ')
[[ $inits == "198.18.0.99 127.0.0.1 "* ]] ||
  fail "$tag: INITs went to '$inits', not 198.18.0.99 and then 127.0.0.1"
check_pcap "$tag"
ok "$tag: INIT to 198.18.0.99 unanswered, then 127.0.0.1; ${#LINES[@]} messages echoed"

# ---- echo: usrsctp client -> rsp server --echo --------------------------------------------------
for host in 127.0.0.1 ::1; do
  tag=echo-rsp-server-$([ "$host" = ::1 ] && echo v6 || echo v4)
  bg "$tag-server" "$RSP" sctp server --echo --once --json --udp-port "$RPORT" \
    --pcap "$WORK/$tag.pcap"
  srv=$LAST_PID
  settle
  # The usrsctp client shuts down when its standard input ends; keep it open until the echoes
  # are back.
  { input_lines; sleep 2; } | timeout 30 "$U/client" "$host" 7 0 "$UPORT" "$RPORT" \
    >"$WORK/$tag.out" 2>"$WORK/$tag.err" || fail "$tag: usrsctp client exited with $?"
  wait_exit "$srv" 10 || fail "$tag: rsp sctp server --once exited with $?"
  for l in "${LINES[@]}"; do
    grep -qxF "$l" "$WORK/$tag.out" || fail "$tag: '$l' did not come back to the usrsctp client"
  done
  grep -q '"service":"echo".*"messages_received":3,.*"messages_sent":3,.*"graceful":true' \
    "$WORK/$tag-server.out" || fail "$tag: server report: $(cat "$WORK/$tag-server.out")"
  grep -q SCTP_SHUTDOWN_COMP "$WORK/$tag.out" || fail "$tag: usrsctp saw no graceful shutdown"
  check_pcap "$tag"
  ok "$tag: usrsctp client got its ${#LINES[@]} messages back from rsp over $host"
done

# ---- multi-homing: rsp on 127.0.0.1 and 127.0.0.2 ----------------------------------------------
# rsp lists both addresses in its INIT ACK / INIT; usrsctp must confirm 127.0.0.2 with a
# HEARTBEAT that rsp answers (RFC 9260 section 5.4).
hb_answered_on() { # capture, address: a HEARTBEAT to the address and a HEARTBEAT ACK back
  local f=$1 addr=$2 args=(-n -o sctp.checksum:CRC-32C -d "udp.port==$UPORT,sctp" -d "udp.port==$RPORT,sctp")
  [ "$(tshark "${args[@]}" -r "$f" -Y "sctp.chunk_type == 4 && ip.dst == $addr" 2>/dev/null | grep -c .)" -ge 1 ] &&
    [ "$(tshark "${args[@]}" -r "$f" -Y "sctp.chunk_type == 5" 2>/dev/null | grep -c .)" -ge 1 ]
}
tag=multihomed-rsp-server
bg "$tag-server" "$RSP" sctp server --echo --once --json --bind 127.0.0.1,127.0.0.2 \
  --udp-port "$RPORT" --pcap "$WORK/$tag.pcap"
srv=$LAST_PID
settle
{ input_lines; sleep 3; } | timeout 30 "$U/client" 127.0.0.1 7 0 "$UPORT" "$RPORT" \
  >"$WORK/$tag.out" 2>"$WORK/$tag.err" || fail "$tag: usrsctp client exited with $?"
wait_exit "$srv" 10 || fail "$tag: rsp sctp server --once exited with $?"
grep -q "Peer addresses: 127.0.0.1, 127.0.0.2" "$WORK/$tag.out" ||
  fail "$tag: usrsctp did not learn both addresses"
grep -q "127.0.0.2 is now SCTP_ADDR_CONFIRMED" "$WORK/$tag.out" ||
  fail "$tag: usrsctp did not confirm 127.0.0.2"
for l in "${LINES[@]}"; do
  grep -qxF "$l" "$WORK/$tag.out" || fail "$tag: '$l' did not come back"
done
hb_answered_on "$WORK/$tag.pcap" 127.0.0.2 || fail "$tag: no answered HEARTBEAT to 127.0.0.2"
check_pcap "$tag"
ok "$tag: usrsctp confirmed rsp's second address 127.0.0.2 and got its echoes"

tag=multihomed-rsp-client
bg usrsctp-echo-mh "$U/echo_server" "$UPORT" "$RPORT"
srv=$LAST_PID
settle
{ input_lines; sleep 3; } | timeout 30 "$RSP" sctp client 127.0.0.1 7 --bind 127.0.0.1,127.0.0.2 \
  --udp-port "$RPORT" --remote-udp-port "$UPORT" --pcap "$WORK/$tag.pcap" >"$WORK/$tag.out" \
  2>"$WORK/$tag.err" || fail "$tag: rsp sctp client exited with $?"
stop "$srv"
diff <(input_lines) "$WORK/$tag.out" >/dev/null || fail "$tag: the echoed lines differ"
hb_answered_on "$WORK/$tag.pcap" 127.0.0.2 || fail "$tag: usrsctp did not probe 127.0.0.2"
check_pcap "$tag"
ok "$tag: usrsctp probed rsp's second address 127.0.0.2, echoes complete"

# ---- discard ------------------------------------------------------------------------------------
tag=discard-rsp-client
bg usrsctp-discard "$U/discard_server" "$UPORT" "$RPORT"
srv=$LAST_PID
settle
input_lines | timeout 30 "$RSP" sctp client 127.0.0.1 9 --count 0 --udp-port "$RPORT" \
  --remote-udp-port "$UPORT" --pcap "$WORK/$tag.pcap" >"$WORK/$tag.out" 2>"$WORK/$tag.err" ||
  fail "$tag: rsp sctp client exited with $?"
stop "$srv"
[ ! -s "$WORK/$tag.out" ] || fail "$tag: the discard server answered"
# Three distinct DATA chunks went out (the association closed gracefully: all were acknowledged).
n=$(tshark -n -o sctp.checksum:CRC-32C -d "udp.port==$UPORT,sctp" -d "udp.port==$RPORT,sctp" \
  -r "$WORK/$tag.pcap" -Y "sctp.data_tsn && ip.dst == 127.0.0.1" -T fields -e sctp.data_tsn |
  tr ',' '\n' | sort -u | grep -c . || true)
[ "$n" -ge 3 ] || fail "$tag: only $n DATA chunks in the capture"
check_pcap "$tag"
ok "$tag: 3 messages accepted by usrsctp discard_server"

tag=discard-rsp-server
bg "$tag-server" "$RSP" sctp server --discard --once --json --udp-port "$RPORT" \
  --pcap "$WORK/$tag.pcap"
srv=$LAST_PID
settle
{ input_lines; sleep 1; } | timeout 30 "$U/client" 127.0.0.1 9 0 "$UPORT" "$RPORT" \
  >"$WORK/$tag.out" 2>"$WORK/$tag.err" || fail "$tag: usrsctp client exited with $?"
wait_exit "$srv" 10 || fail "$tag: rsp sctp server --once exited with $?"
grep -q '"service":"discard".*"messages_received":3,.*"messages_sent":0,.*"graceful":true' \
  "$WORK/$tag-server.out" || fail "$tag: server report: $(cat "$WORK/$tag-server.out")"
check_pcap "$tag"
ok "$tag: rsp discarded the usrsctp client's 3 messages"

# ---- daytime ------------------------------------------------------------------------------------
DATE_RE='^[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}$'
tag=daytime-rsp-client
bg usrsctp-daytime "$U/daytime_server" "$UPORT" "$RPORT"
srv=$LAST_PID
settle
timeout 30 "$RSP" sctp client 127.0.0.1 13 --until-closed --udp-port "$RPORT" \
  --remote-udp-port "$UPORT" --pcap "$WORK/$tag.pcap" </dev/null >"$WORK/$tag.out" \
  2>"$WORK/$tag.err" || fail "$tag: rsp sctp client exited with $?"
stop "$srv"
grep -qE "$DATE_RE" "$WORK/$tag.out" || fail "$tag: no time of day received: $(cat "$WORK/$tag.out")"
check_pcap "$tag"
ok "$tag: $(head -n 1 "$WORK/$tag.out") from usrsctp daytime_server"

tag=daytime-rsp-server
bg "$tag-server" "$RSP" sctp server --daytime --once --json --udp-port "$RPORT" \
  --pcap "$WORK/$tag.pcap"
srv=$LAST_PID
settle
{ sleep 2; } | timeout 30 "$U/client" 127.0.0.1 13 0 "$UPORT" "$RPORT" \
  >"$WORK/$tag.out" 2>"$WORK/$tag.err" || fail "$tag: usrsctp client exited with $?"
wait_exit "$srv" 10 || fail "$tag: rsp sctp server --once exited with $?"
grep -qE "$DATE_RE" "$WORK/$tag.out" || fail "$tag: usrsctp client printed no time of day"
grep -q '"service":"daytime".*"messages_sent":1,.*"graceful":true' "$WORK/$tag-server.out" ||
  fail "$tag: server report: $(cat "$WORK/$tag-server.out")"
check_pcap "$tag"
ok "$tag: usrsctp client got the time of day from rsp"

# ---- chargen ------------------------------------------------------------------------------------
CHARGEN_RE='^[ -~]{60,}'  # usrsctp sends 94-character lines, rsp 72 plus CR LF (RFC 864)
tag=chargen-rsp-client
bg usrsctp-chargen "$U/chargen_server_upcall" "$UPORT" "$RPORT"
srv=$LAST_PID
settle
timeout 30 "$RSP" sctp client 127.0.0.1 19 --count 50 --udp-port "$RPORT" \
  --remote-udp-port "$UPORT" --pcap "$WORK/$tag.pcap" </dev/null >"$WORK/$tag.out" \
  2>"$WORK/$tag.err" || fail "$tag: rsp sctp client exited with $?"
stop "$srv"
n=$(grep -cE "$CHARGEN_RE" "$WORK/$tag.out" || true)
[ "$n" -ge 50 ] || fail "$tag: $n chargen lines received, expected at least 50"
check_pcap "$tag"
ok "$tag: $n chargen lines from usrsctp chargen_server_upcall"

tag=chargen-rsp-server
bg "$tag-server" "$RSP" sctp server --chargen --once --json --udp-port "$RPORT" \
  --pcap "$WORK/$tag.pcap"
srv=$LAST_PID
settle
{ sleep 2; } | timeout 30 "$U/client" 127.0.0.1 19 0 "$UPORT" "$RPORT" \
  >"$WORK/$tag.out" 2>"$WORK/$tag.err" || fail "$tag: usrsctp client exited with $?"
wait_exit "$srv" 15 || fail "$tag: rsp sctp server --once exited with $?"
n=$(grep -cE "$CHARGEN_RE" "$WORK/$tag.out" || true)
[ "$n" -ge 10 ] || fail "$tag: the usrsctp client printed only $n chargen lines"
grep -q '"service":"chargen".*"graceful":true' "$WORK/$tag-server.out" ||
  fail "$tag: server report: $(cat "$WORK/$tag-server.out")"
check_pcap "$tag"
ok "$tag: usrsctp client received $n chargen lines from rsp"

# ---- auth-asconf: rsp perf client --auth --asconf-add -> tsctp ----------------------------------
# usrsctp offers AUTH and Add-IP by default. rsp starts on 127.0.0.1 alone and adds 127.0.0.2
# with an ASCONF after 0.5 s; usrsctp must verify its AUTH chunk (same association key on both
# sides, RFC 4895 section 6.1) and accept the address; rsp must verify usrsctp's AUTH'd ACK.
tag=auth-asconf-rsp-client
bg usrsctp-tsctp-auth "$U/tsctp" -E "$UPORT" -U "$RPORT" -n 0
srv=$LAST_PID
settle
RUST_LOG=info timeout 60 "$RSP" sctp perf client 127.0.0.1 5001 --auth --bind 127.0.0.1 \
  --asconf-add 127.0.0.2 --asconf-after 0.5 -T 2 -l 1400 --udp-port "$RPORT" \
  --remote-udp-port "$UPORT" --json --pcap "$WORK/$tag.pcap" >"$WORK/$tag.out" \
  2>"$WORK/$tag.err" || fail "$tag: rsp sctp perf client exited with $?"
sleep 0.5
stop "$srv"
grep -q '"completed":true' "$WORK/$tag.out" || fail "$tag: $(cat "$WORK/$tag.out")"
grep -q 'the peer accepted the ASCONF request' "$WORK/$tag.err" ||
  fail "$tag: usrsctp did not accept the ASCONF"
targs=(-n -o sctp.checksum:CRC-32C -d "udp.port==$UPORT,sctp" -d "udp.port==$RPORT,sctp" -r "$WORK/$tag.pcap")
count() { tshark "${targs[@]}" -Y "$1" 2>/dev/null | grep -c . || true; }
[ "$(count 'sctp.chunk_type == 0x0f && sctp.chunk_type == 0xc1 && sctp.parameter_type == 0xc001')" -ge 1 ] ||
  fail "$tag: no AUTH'd ASCONF adding an address in the capture"
[ "$(count 'sctp.chunk_type == 0x0f && sctp.chunk_type == 0x80')" -ge 1 ] ||
  fail "$tag: no AUTH'd ASCONF ACK from usrsctp"
[ "$(count 'sctp.chunk_type == 0x80 && sctp.parameter_type == 0xc003')" -eq 0 ] ||
  fail "$tag: usrsctp answered with an error cause"
check_pcap "$tag"
ok "$tag: usrsctp accepted rsp's AUTH'd ASCONF adding 127.0.0.2"

# ---- reconf: rsp perf client --reset-streams-after -> tsctp (denied by usrsctp's default) -------
tag=reconf-rsp-client
bg usrsctp-tsctp-reconf "$U/tsctp" -E "$UPORT" -U "$RPORT" -n 0
srv=$LAST_PID
settle
rc=0
timeout 60 "$RSP" sctp perf client 127.0.0.1 5001 --reset-streams-after 100 --bytes 1048576 \
  --length 1024 --udp-port "$RPORT" --remote-udp-port "$UPORT" --json --pcap "$WORK/$tag.pcap" \
  >"$WORK/$tag.out" 2>"$WORK/$tag.err" || rc=$?
sleep 0.5
stop "$srv"
[ "$rc" -eq 1 ] || fail "$tag: rsp sctp perf client exited with $rc, expected 1 (denied)"
grep -q 'refused the stream reset: denied' "$WORK/$tag.err" ||
  fail "$tag: no clear denial: $(cat "$WORK/$tag.err")"
targs=(-n -o sctp.checksum:CRC-32C -d "udp.port==$UPORT,sctp" -d "udp.port==$RPORT,sctp" -r "$WORK/$tag.pcap")
[ "$(tshark "${targs[@]}" -Y 'sctp.chunk_type == 130' 2>/dev/null | grep -c . || true)" -ge 2 ] ||
  fail "$tag: no RE-CONFIG request and response in the capture"
check_pcap "$tag"
ok "$tag: usrsctp denied rsp's stream reset (its default) and rsp reported it"

# ---- perf: rsp perf client -> tsctp -------------------------------------------------------------
LEN=1400
MSGS=$(((PERF_BYTES + LEN - 1) / LEN))
tag=perf-rsp-client
bg usrsctp-tsctp-server "$U/tsctp" -E "$UPORT" -U "$RPORT" -n 0
srv=$LAST_PID
settle
timeout 300 "$RSP" sctp perf client 127.0.0.1 5001 --bytes "$PERF_BYTES" -l "$LEN" \
  --udp-port "$RPORT" --remote-udp-port "$UPORT" --json --pcap "$WORK/$tag.pcap" \
  >"$WORK/$tag.out" 2>"$WORK/$tag.err" || fail "$tag: rsp sctp perf client exited with $?"
sleep 0.5
stop "$srv"
grep -q "\"bytes_sent\":$PERF_BYTES,.*\"completed\":true" "$WORK/$tag.out" ||
  fail "$tag: $(cat "$WORK/$tag.out")"
# tsctp's server line: length, messages, messages, bytes, seconds, rate, errors.
grep -qE "^$LEN, $MSGS, $MSGS, $PERF_BYTES, " "$WORK/usrsctp-tsctp-server.out" ||
  fail "$tag: tsctp did not report $PERF_BYTES bytes in $MSGS messages"
check_pcap "$tag"
ok "$tag: $PERF_BYTES bytes to tsctp, $(sed -n 's/.*"throughput_bps":\([0-9.]*\).*/\1/p' "$WORK/$tag.out" | cut -d. -f1) bit/s"

# ---- perf: tsctp -> rsp perf server -------------------------------------------------------------
tag=perf-rsp-server
bg "$tag-server" "$RSP" sctp perf server --once --json --udp-port "$RPORT" \
  --pcap "$WORK/$tag.pcap"
srv=$LAST_PID
settle
SENT=$((MSGS * LEN))
timeout 300 "$U/tsctp" -E "$UPORT" -U "$RPORT" -l "$LEN" -n "$MSGS" 127.0.0.1 \
  >"$WORK/$tag.out" 2>"$WORK/$tag.err" || fail "$tag: tsctp exited with $?"
wait_exit "$srv" 30 || fail "$tag: rsp sctp perf server --once exited with $?"
grep -q "\"bytes_received\":$SENT,\"messages_received\":$MSGS,.*\"graceful\":true" \
  "$WORK/$tag-server.out" || fail "$tag: server report: $(cat "$WORK/$tag-server.out")"
check_pcap "$tag"
ok "$tag: $SENT bytes from tsctp, $(sed -n 's/.*"throughput_bps":\([0-9.]*\).*/\1/p' "$WORK/$tag-server.out" | cut -d. -f1) bit/s"

# ---- partial delivery: tsctp 3 MB messages -> rsp sctp server --discard --partial-delivery-point
# Each message is three times rsp's 1 MiB receive window: only partial delivery (RFC 6458
# SCTP_PARTIAL_DELIVERY_POINT) lets it in; without it rsp would abort with Out of Resource.
tag=partial-delivery
bg "$tag-server" "$RSP" sctp server --discard --partial-delivery-point 65536 --port 5001 \
  --once --json --udp-port "$RPORT" --pcap "$WORK/$tag.pcap"
srv=$LAST_PID
settle
timeout 120 "$U/tsctp" -E "$UPORT" -U "$RPORT" -S 8000000 -l 3000000 -n 3 127.0.0.1 \
  >"$WORK/$tag.out" 2>"$WORK/$tag.err" || fail "$tag: tsctp exited with $?"
wait_exit "$srv" 30 || fail "$tag: rsp sctp server --once exited with $?"
grep -q '"bytes_received":9000000,"messages_received":3,.*"graceful":true' \
  "$WORK/$tag-server.out" || fail "$tag: server report: $(cat "$WORK/$tag-server.out")"
check_pcap "$tag"
ok "$tag: three 3 MB messages from tsctp received in pieces with a 1 MiB window"

echo "interop: all $PASS scenarios passed"
