#!/usr/bin/env bash
# RSPLIB 3.4.4 (in the x86_64 guest, on the guest kernel's SCTP) <-> our registrar (`rsp registrar`
# and `rsp hsdump`, raw IP in the test namespace): issue 10, item 7.
#
#   vm-images/rsplib-interop.sh [--rsp PATH] [--keep-captures DIR] [--name NAME] [SCENARIO...]
#
# Scenarios (default: all):
#   rsplib-pe-at-rsp    RSPLIB's rspserver (Echo) registers at our registrar; our hsdump and
#                       RSPLIB's hsdump (a peer's ENRP handle-table download) both list it with our
#                       registrar as home; RSPLIB's rspterminal resolves the pool at our registrar
#                       and gets its lines echoed by the rspserver.
#   enrp-sync           rspregistrar and our registrar peer over ENRP; one rspserver registers at
#                       each; both handlespaces list both PEs with the right homes.
#   takeover-by-rsp     as enrp-sync, then rspregistrar is killed (SIGKILL): our registrar takes it
#                       over and becomes the home of its PE.
#   takeover-by-rsplib  as enrp-sync plus a second registrar of ours; then our first registrar is
#                       killed (SIGKILL): rspregistrar takes it over (our second one acknowledges)
#                       and becomes the home of the PE that was ours.
#   rsp-pe-at-rsplib    our PingPong pool element (`rsp server --pingpong`) registers at
#                       rspregistrar; RSPLIB's pingpongclient resolves the pool there and gets Pongs.
#   rsp-calcapp-pe-at-rsplib  our CalcApp pool element (`rsp server --calcapp`) registers at
#                       rspregistrar; RSPLIB's calcappclient sends jobs for 10 s and gets at least
#                       5 completed and none rejected.
#   rsp-pu-at-rsp       RSPLIB's rspserver (PingPong) registers at our registrar; our pool user
#                       (`rsp pingpong`) resolves it there and gets every Ping answered.
#   hsdump-at-rsplib    RSPLIB's rspserver (Echo) and our PingPong PE register at rspregistrar;
#                       our `rsp hsdump --json` of rspregistrar (ENRP over raw IP from the
#                       namespace) lists both pools, each PE with its transport and with
#                       rspregistrar as home, identifiers and homes as RSPLIB's hsdump lists them;
#                       with --own-only (W flag) the same two PEs.
# Each scenario boots a fresh guest (about 10 s), captures the tap and requires the capture to be
# tshark-clean (ABORTs are expected where a process is killed) and to decode as ASAP and ENRP;
# it ends with "PASS name" or "FAIL name"; the last line is "rsplib-interop: N passed, N failed".
#
# Addresses: the namespace side (our registrar) is 198.18.0.1, the guest 198.18.0.2; our
# registrar's identifier is 0x00001001 (a second one, where used, 0xfffffff0).
set -euo pipefail
LOG_TAG=rsplib-interop
# shellcheck source=vm-images/lib.sh
. "$(dirname "$0")/lib.sh"

RSP=${RSP:-$REPO_ROOT/target/release/rsp} KEEP_DIR="" SCENARIOS=() NAME=rsplib
while [ $# -gt 0 ]; do
  case "$1" in
    --rsp) RSP=${2:?}; shift ;;
    --keep-captures) KEEP_DIR=${2:?}; shift ;;
    --name) NAME=${2:?}; shift ;;
    -h|--help) script_doc "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) SCENARIOS+=("$1") ;;
  esac
  shift
done
ALL=(rsplib-pe-at-rsp enrp-sync takeover-by-rsp takeover-by-rsplib rsp-pe-at-rsplib
  rsp-calcapp-pe-at-rsplib rsp-pu-at-rsp hsdump-at-rsplib)
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=("${ALL[@]}")
RG=("$VM_DIR/run-guest.sh")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rsp-rsplib.XXXXXX")
OUR_ID=00001001

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, raw sockets)"
"$RSP" hsdump --help >/dev/null 2>&1 ||
  die "'$RSP hsdump' is not available: build it first (cargo build --release -p appliance) or give --rsp PATH"
[ -f "$VM_OUT/guest-x86_64/initramfs.cpio" ] || "$VM_DIR/build-guest.sh" --arch x86_64
apt_install tshark iproute2 nftables python3

# Our registrar processes by tag (r1, r2): PIDs and logs in $WORK/<tag>.log.
declare -A REG_PIDS=()
stop_registrar() { # TAG SIGNAL
  local pid=${REG_PIDS[$1]:-} i
  [ -n "$pid" ] || return 0
  kill "-$2" "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "REG_PIDS[$1]"
}
stop_registrars() { local t; for t in "${!REG_PIDS[@]}"; do stop_registrar "$t" TERM; done; }
cleanup() {
  stop_registrars
  "${RG[@]}" stop --name "$NAME" >/dev/null 2>&1 || true
  if [ -n "$KEEP_DIR" ]; then mkdir -p "$KEEP_DIR" && cp "$WORK"/*.pcapng "$WORK"/*.log "$KEEP_DIR"/ 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=vm-images/guest-harness.sh
. "$VM_DIR/guest-harness.sh"

# One of our registrars on raw IP in the namespace (ASAP on 3863 + i, ENRP on 9901 + i for tag
# r1, r2, ...); waits (bounded) until it serves.
start_registrar() { # TAG IDENTIFIER EXTRA-FLAGS...
  local tag=$1 id=$2 i n
  shift 2
  n=$(( ${tag#r} - 1 ))
  # Not through in_ns: $! must be the registrar itself (ip netns exec execs it) for the kills.
  ip netns exec "rspvm-$NAME" "$RSP" registrar -v --backend raw --bind 198.18.0.1 \
    --asap "198.18.0.1:$((3863 + n))" \
    --enrp "198.18.0.1:$((9901 + n))" --identifier "0x$id" "$@" >"$WORK/$tag.log" 2>&1 &
  REG_PIDS[$tag]=$!
  for i in $(seq 1 60); do
    grep -q 'serving' "$WORK/$tag.log" && return 0
    kill -0 "${REG_PIDS[$tag]}" 2>/dev/null || { cat "$WORK/$tag.log"; return 1; }
    sleep 0.5
  done
  echo "our registrar $tag did not start serving"; cat "$WORK/$tag.log"; return 1
}
# The guest's rspregistrar, peered with ours (ENRP ports given), listening on the guest address.
guest_registrar() { # OUR-ENRP-PORT...
  local peers="" p
  for p in "$@"; do peers+=" -peer=198.18.0.1:$p"; done
  guest "rspregistrar -asap=198.18.0.2:3863 -enrp=198.18.0.2:9901$peers \
    -logfile=/tmp/registrar.log -loglevel=3 -logcolor=off >/dev/null 2>&1 &
    for i in \$(seq 1 20); do grep -q ' 9901 ' /proc/net/sctp/eps && break; sleep 0.5; done"
}
# An RSPLIB Echo pool element registering at REGISTRAR, logging to /tmp/pe-TAG.log.
guest_pe() { # REGISTRAR TAG
  guest "rspserver -registrar=$1:3863 -echo -poolhandle=EchoPool -logfile=/tmp/pe-$2.log \
    -logcolor=off >/tmp/pe-$2.out 2>&1 &"
}
# Our view: `rsp hsdump --json` of our registrar r1 (or the one at ENRP port PORT).
our_dump() { # [PORT]
  in_ns "$RSP" hsdump "198.18.0.1:${1:-9901}" --raw --bind 198.18.0.1 --json --timeout 10
}
# PE identifiers (8 hex digits) of a JSON dump whose home is HOME (8 hex digits; "any" for all).
our_pes() { # JSON HOME
  python3 -c '
import json, sys
doc = json.loads(sys.argv[1])
for pool in doc["pools"]:
    for pe in pool["pool_elements"]:
        home = "%08x" % pe["home_registrar"]
        if sys.argv[2] in ("any", home):
            print("%08x" % pe["identifier"])
' "$1" "$2"
}
# RSPLIB's hsdump of the registrar at ADDR: ENRP from the guest.
rsplib_dump() { guest "timeout 20 hsdump $1:9901 -logcolor=off 2>&1"; }
# The home (8 hex digits) RSPLIB's hsdump text gives PE ID, if listed.
rsplib_home() { # DUMP ID
  awk -v id="\$$2" '$3 == id && $2 ~ /^idx:/ { getline; if (match($0, /home=\$[0-9a-f]+/)) {
    print substr($0, RSTART + 6, RLENGTH - 6); exit } }' <<<"$1"
}
# Waits (bounded) until our dump lists N PEs; prints the dump.
wait_our_pes() { # N SECONDS
  local i d
  for i in $(seq 1 "$2"); do
    d=$(our_dump 2>/dev/null) || d='{"pools":[]}'
    [ "$(our_pes "$d" any | wc -l)" -ge "$1" ] && { printf '%s' "$d"; return 0; }
    sleep 1
  done
  echo "our registrar never listed $1 PE(s): $d" >&2
  return 1
}
# The guest registrar's identifier, from its ENRP PRESENCE as our registrar logged it.
guest_registrar_id() {
  sed -n 's/.*ENRP association with PR:\([0-9a-f]\{8\}\) up (198\.18\.0\.2:9901).*/\1/p' \
    "$WORK/r1.log" | head -1
}
# Both captures' protocols: ASAP and ENRP decoded, wire clean (kills produce ABORTs).
check_capture() { # NAME [asap-only]
  clean "$1" aborts-allowed && has "$1" asap 'ASAP messages' || return 1
  [ "${2:-}" = asap-only ] || has "$1" enrp 'ENRP messages'
}

# ---- scenarios ------------------------------------------------------------------------------------
sc_rsplib_pe_at_rsp() {
  local d pe home rd out
  boot 1
  cap_start 0 pe-at-rsp
  start_registrar r1 "$OUR_ID"
  guest_pe 198.18.0.1 ours
  d=$(wait_our_pes 1 30)
  pe=$(our_pes "$d" "$OUR_ID")
  [ -n "$pe" ] || { echo "the rspserver is not homed at our registrar: $d"; return 1; }
  grep -q '"198.18.0.2"' <<<"$d" || { echo "its user transport is not the guest's address: $d"; return 1; }
  rd=$(rsplib_dump 198.18.0.1)
  home=$(rsplib_home "$rd" "$pe")
  [ "$home" = "$OUR_ID" ] || { echo "RSPLIB's hsdump of our registrar: PE $pe home '$home'"; echo "$rd" | tail -30; return 1; }
  out=$(guest '(for i in 1 2 3; do echo "line $i"; sleep 0.5; done; sleep 2) |
    timeout -s INT 15 rspterminal -registrar=198.18.0.1:3863 -poolhandle=EchoPool -logcolor=off 2>&1')
  for i in 1 2 3; do
    grep -q "line $i" <<<"$out" || { echo "rspterminal via our registrar: no echo of line $i"; echo "$out" | tail -20; return 1; }
  done
  cap_stop 0
  check_capture pe-at-rsp && has pe-at-rsp 'asap.message_type == 1' REGISTRATION \
    && has pe-at-rsp 'asap.message_type == 3' 'HANDLE_RESOLUTION' \
    && has pe-at-rsp 'enrp.message_type == 3' 'HANDLE_TABLE_RESPONSE'
}

# rspregistrar and our registrar r1 peered (plus, with a second argument, our registrar r2 with
# that identifier, peered with both), one rspserver homed at rspregistrar and one at r1; sets
# THEIR_ID, OUR_PE, THEIR_PE.
peered_setup() { # CAPTURE [R2-IDENTIFIER]
  local d i
  boot 1
  cap_start 0 "$1"
  if [ -n "${2:-}" ]; then
    guest_registrar 9901 9902
    start_registrar r1 "$OUR_ID" --peer 198.18.0.2:9901 --peer 198.18.0.1:9902
    # r2 notices a silent peer late, so rspregistrar is the first to start the takeover.
    start_registrar r2 "$2" --peer 198.18.0.2:9901 --peer 198.18.0.1:9901 \
      --peer-max-time-last-heard 60000 --peer-max-time-no-response 60000
  else
    guest_registrar 9901
    start_registrar r1 "$OUR_ID" --peer 198.18.0.2:9901
  fi
  guest_pe 198.18.0.2 theirs
  guest_pe 198.18.0.1 ours
  d=$(wait_our_pes 2 40)
  THEIR_ID=$(guest_registrar_id)
  [ -n "$THEIR_ID" ] || { echo "no ENRP association with rspregistrar"; cat "$WORK/r1.log"; return 1; }
  OUR_PE=$(our_pes "$d" "$OUR_ID")
  THEIR_PE=$(our_pes "$d" "$THEIR_ID")
  [ -n "$OUR_PE" ] && [ -n "$THEIR_PE" ] || { echo "PE homes: $d (rspregistrar $THEIR_ID)"; return 1; }
  # rspregistrar has ours too, with our registrar as its home.
  for i in $(seq 1 20); do
    [ "$(rsplib_home "$(rsplib_dump 198.18.0.2)" "$OUR_PE")" = "$OUR_ID" ] && return 0
    sleep 1
  done
  echo "rspregistrar never listed PE $OUR_PE homed at $OUR_ID"; rsplib_dump 198.18.0.2 | tail -30
  return 1
}

sc_enrp_sync() {
  peered_setup enrp-sync || return 1
  [ "$(rsplib_home "$(rsplib_dump 198.18.0.2)" "$THEIR_PE")" = "$THEIR_ID" ] ||
    { echo "rspregistrar lost its own PE"; return 1; }
  cap_stop 0
  check_capture enrp-sync && has enrp-sync 'enrp.message_type == 1' PRESENCE \
    && has enrp-sync 'enrp.message_type == 4' HANDLE_UPDATE
}

sc_takeover_by_rsp() {
  local d i
  peered_setup takeover-by-rsp || return 1
  guest 'kill -9 $(pidof rspregistrar)'
  for i in $(seq 1 60); do
    d=$(our_dump 2>/dev/null) || d='{"pools":[]}'
    our_pes "$d" "$OUR_ID" | grep -qx "$THEIR_PE" && break
    sleep 1
  done
  our_pes "$d" "$OUR_ID" | grep -qx "$THEIR_PE" ||
    { echo "PE $THEIR_PE of the killed rspregistrar was not re-homed here: $d"; return 1; }
  grep -q "took over PR:$THEIR_ID" "$WORK/r1.log" ||
    { echo "no takeover of PR:$THEIR_ID in our log"; grep -v DEBUG "$WORK/r1.log" | tail; return 1; }
  cap_stop 0
  # With no third registrar there is nobody to send INIT_TAKEOVER to (RFC 5353 §3.9).
  check_capture takeover-by-rsp
}

sc_takeover_by_rsplib() { # (RSPLIB sends no TAKEOVER_SERVER: only the PE's new home is checked)
  # RSPLIB completes a takeover only when another peer acknowledges its INIT_TAKEOVER (with
  # none it lets the takeover expire), so a third registrar takes part: our r2, which notices
  # the silence late and acknowledges RSPLIB's INIT_TAKEOVER.
  local i home d
  peered_setup takeover-by-rsplib fffffff0 || return 1
  stop_registrar r1 KILL
  for i in $(seq 1 60); do
    home=$(rsplib_home "$(rsplib_dump 198.18.0.2)" "$OUR_PE")
    [ "$home" = "$THEIR_ID" ] && break
    sleep 1
  done
  [ "$home" = "$THEIR_ID" ] || { echo "PE $OUR_PE still homed at '$home' after our registrar died"; grep -v DEBUG "$WORK/r2.log" | tail; return 1; }
  # Our r2 acknowledged the takeover and follows: it lists the PE with its new home.
  for i in $(seq 1 30); do
    d=$(our_dump 9902 2>/dev/null) || d='{"pools":[]}'
    our_pes "$d" "$THEIR_ID" | grep -qx "$OUR_PE" && break
    sleep 1
  done
  our_pes "$d" "$THEIR_ID" | grep -qx "$OUR_PE" ||
    { echo "r2 does not list PE $OUR_PE with home $THEIR_ID: $d"; grep -v DEBUG "$WORK/r2.log" | tail; return 1; }
  cap_stop 0
  check_capture takeover-by-rsplib \
    && has takeover-by-rsplib 'enrp.message_type == 7 && ip.src == 198.18.0.2' INIT_TAKEOVER \
    && has takeover-by-rsplib 'enrp.message_type == 8 && ip.src == 198.18.0.1' INIT_TAKEOVER_ACK
}

sc_rsp_pe_at_rsplib() {
  local out acks pe
  boot 1
  cap_start 0 rsp-pe-at-rsplib
  guest_registrar
  ip netns exec "rspvm-$NAME" "$RSP" server --pingpong --pool PingPongPool --backend raw \
    --bind 198.18.0.1 --port 7000 --registrar 198.18.0.2:3863 --duration 60 \
    >"$WORK/pe.log" 2>&1 &
  pe=$!
  sleep 4
  out=$(guest 'timeout -s INT 8 pingpongclient -registrar=198.18.0.2:3863 \
      -poolhandle=PingPongPool -interval=200 -logcolor=off >/tmp/pu.log 2>&1
    tail -5 /tmp/pu.log
    echo "acks=$(grep -c "Ack #[0-9]* from PE" /tmp/pu.log)"')
  kill -TERM "$pe" 2>/dev/null || true
  wait "$pe" 2>/dev/null || true
  acks=$(sed -n 's/^acks=//p' <<<"$out")
  [ "${acks:-0}" -ge 5 ] || { echo "pingpongclient got ${acks:-0} Pongs from our PE"; echo "$out"; tail -20 "$WORK/pe.log"; return 1; }
  cap_stop 0
  check_capture rsp-pe-at-rsplib asap-only && has rsp-pe-at-rsplib 'asap.message_type == 1' REGISTRATION \
    && has rsp-pe-at-rsplib 'pingpongprotocol' 'PingPong messages'
}

sc_rsp_calcapp_pe_at_rsplib() { # our CalcApp PE registered at rspregistrar, used by calcappclient
  local out done pe
  boot 1
  cap_start 0 rsp-calcapp-pe-at-rsplib
  guest_registrar
  ip netns exec "rspvm-$NAME" "$RSP" server --calcapp --pool CalcAppPool --backend raw \
    --bind 198.18.0.1 --port 7001 --registrar 198.18.0.2:3863 --capacity 1000000 --duration 60 \
    >"$WORK/calcapp-pe.log" 2>&1 &
  pe=$!
  sleep 4
  # Jobs of ~100k calculations every 0.5 s on a 1M/s PE: each completes in about 0.1 s.
  out=$(guest 'timeout -s INT 15 calcappclient -registrar=198.18.0.2:3863 \
      -poolhandle=CalcAppPool -jobinterval=0.5 -jobsize=100000 -runtime=10 \
      -vector=/tmp/ca.vec -scalar=/tmp/ca.sca -logcolor=off >/tmp/ca.log 2>&1
    tail -5 /tmp/ca.log
    echo "done=$(grep -c "^Job #[0-9]* completed" /tmp/ca.log)"
    echo "rejected=$(grep -c "^Job #[0-9]* rejected" /tmp/ca.log)"')
  kill -TERM "$pe" 2>/dev/null || true
  wait "$pe" 2>/dev/null || true
  done=$(sed -n 's/^done=//p' <<<"$out")
  [ "${done:-0}" -ge 5 ] || { echo "calcappclient completed ${done:-0} jobs on our PE"; echo "$out"; tail -20 "$WORK/calcapp-pe.log"; return 1; }
  grep -q '^rejected=0$' <<<"$out" || { echo "calcappclient saw rejects: $out"; return 1; }
  cap_stop 0
  check_capture rsp-calcapp-pe-at-rsplib asap-only \
    && has rsp-calcapp-pe-at-rsplib 'asap.message_type == 1' REGISTRATION \
    && has rsp-calcapp-pe-at-rsplib 'calcappprotocol' 'CalcApp messages'
}

sc_rsp_pu_at_rsp() {
  local rc
  boot 1
  cap_start 0 rsp-pu-at-rsp
  start_registrar r1 "$OUR_ID"
  guest "rspserver -registrar=198.18.0.1:3863 -pingpong -poolhandle=PingPongPool \
    -logfile=/tmp/pe.log -logcolor=off >/tmp/pe.out 2>&1 &"
  wait_our_pes 1 30 >/dev/null
  rc=0
  in_ns "$RSP" pingpong --pool PingPongPool --registrar 198.18.0.1:3863 --backend raw \
    --bind 198.18.0.1 --count 20 --interval 100 --duration 30 >"$WORK/pu.log" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] || { echo "rsp pingpong exited $rc"; tail -20 "$WORK/pu.log"; return 1; }
  cap_stop 0
  check_capture rsp-pu-at-rsp asap-only && has rsp-pu-at-rsp 'asap.message_type == 3' HANDLE_RESOLUTION \
    && has rsp-pu-at-rsp 'pingpongprotocol' 'PingPong messages'
}

# Our hsdump (ENRP from the namespace, as a peer registrar asks) of rspregistrar in the guest,
# with RSPLIB's rspserver (EchoPool) and our PingPong PE (PingPongPool) registered there.
sc_hsdump_at_rsplib() {
  local rd d own pe i
  boot 1
  cap_start 0 hsdump-at-rsplib
  guest_registrar
  guest_pe 198.18.0.2 theirs
  ip netns exec "rspvm-$NAME" "$RSP" server --pingpong --pool PingPongPool --backend raw \
    --bind 198.18.0.1 --port 7000 --registrar 198.18.0.2:3863 --duration 60 \
    >"$WORK/pe.log" 2>&1 &
  pe=$!
  # RSPLIB's own view first (its hsdump in the guest): both PEs registered.
  for i in $(seq 1 30); do
    rd=$(rsplib_dump 198.18.0.2)
    [ "$(grep -c '^   - idx:#' <<<"$rd")" -ge 2 ] && break
    sleep 1
  done
  [ "$(grep -c '^   - idx:#' <<<"$rd")" -ge 2 ] ||
    { echo "rspregistrar never listed 2 PEs"; echo "$rd" | tail -30; tail -20 "$WORK/pe.log"; kill "$pe"; return 1; }
  d=$(in_ns "$RSP" hsdump 198.18.0.2:9901 --raw --bind 198.18.0.1 --json --timeout 10) ||
    { echo "rsp hsdump of rspregistrar failed: $d"; kill "$pe"; return 1; }
  # --own-only (the W flag): rspregistrar is the home of both, so the same two PEs.
  own=$(in_ns "$RSP" hsdump 198.18.0.2:9901 --raw --bind 198.18.0.1 --json --own-only --timeout 10) ||
    { echo "rsp hsdump --own-only of rspregistrar failed: $own"; kill "$pe"; return 1; }
  kill -TERM "$pe" 2>/dev/null || true
  wait "$pe" 2>/dev/null || true
  cap_stop 0
  # Both pools with one PE each, transports as registered, every PE homed at the registrar that
  # answered; and each PE identifier and home as RSPLIB's own hsdump gives them.
  python3 -c '
import json, sys
doc = json.loads(sys.argv[1])
pools = {p["pool_handle"]: p["pool_elements"] for p in doc["pools"]}
assert sorted(pools) == ["EchoPool", "PingPongPool"], "pools %s" % sorted(pools)
assert doc["pool_elements"] == 2, "pool_elements %s" % doc["pool_elements"]
for name, addr, port in (("EchoPool", "198.18.0.2", None), ("PingPongPool", "198.18.0.1", 7000)):
    pes = pools[name]
    assert len(pes) == 1, "%s: %d PEs" % (name, len(pes))
    pe = pes[0]
    ut = pe["user_transport"]
    assert addr in ut["addresses"] and ut["protocol"] == "Sctp", "%s user transport %s" % (name, ut)
    assert port is None or ut["port"] == port, "%s port %s" % (name, ut["port"])
    assert pe["home_registrar"] == doc["registrar"], "%s home %x, registrar %x" % (
        name, pe["home_registrar"], doc["registrar"])
    print("%08x %08x" % (pe["identifier"], pe["home_registrar"]))
' "$d" >"$WORK/hsdump-pes.txt" || { echo "our hsdump of rspregistrar: $d"; return 1; }
  while read -r id home; do
    [ "$(rsplib_home "$rd" "$id")" = "$home" ] ||
      { echo "PE $id home $home: RSPLIB lists it with '$(rsplib_home "$rd" "$id")'"; echo "$rd" | tail -30; return 1; }
  done <"$WORK/hsdump-pes.txt"
  [ "$(our_pes "$own" any | sort)" = "$(cut -d' ' -f1 "$WORK/hsdump-pes.txt" | sort)" ] ||
    { echo "--own-only lists other PEs: $own"; return 1; }
  check_capture hsdump-at-rsplib \
    && has hsdump-at-rsplib 'enrp.message_type == 2 && ip.src == 198.18.0.1' HANDLE_TABLE_REQUEST \
    && has hsdump-at-rsplib 'enrp.message_type == 3 && ip.src == 198.18.0.2' HANDLE_TABLE_RESPONSE \
    && has hsdump-at-rsplib 'enrp.message_type == 2 && enrp.w_bit == 1' 'HANDLE_TABLE_REQUEST with the W flag'
}

# One scenario in a subshell: its registrar is stopped when the subshell ends.
run_scenario() { trap stop_registrars EXIT; "$1"; }

PASSED=0 FAILED=0
for sc in "${SCENARIOS[@]}"; do
  fn=sc_${sc//-/_}
  declare -F "$fn" >/dev/null || die "unknown scenario $sc (known: ${ALL[*]})"
  log "scenario $sc"
  t0=$SECONDS
  if out=$(run_scenario "$fn" 2>&1); then
    PASSED=$((PASSED + 1)); echo "PASS  $sc ($((SECONDS - t0)) s)"
  else
    FAILED=$((FAILED + 1)); echo "FAIL  $sc ($((SECONDS - t0)) s)"; printf '%s\n' "$out" | tail -25 | sed 's/^/      /'
  fi
  "${RG[@]}" stop --name "$NAME" >/dev/null 2>&1 || true
done
echo "rsplib-interop: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
