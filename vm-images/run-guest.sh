#!/usr/bin/env bash
# Boots a guest built by build-guest.sh with qemu-system on tap devices inside a test network
# namespace, and runs commands in it.
#
#   vm-images/run-guest.sh start   [--arch x86_64|aarch64] [--name NAME] [--nics N] [--mem MB]
#                                  [--smp N] [--accel auto|kvm|tcg] [--image DIR]
#                                  [--add HOSTPATH:GUESTPATH]... [--sysctl KEY=VALUE]...
#                                  [--boot-timeout SECS]
#   vm-images/run-guest.sh exec    [--name NAME] [--timeout SECS] SCRIPT...   (SCRIPT "-": stdin)
#   vm-images/run-guest.sh ns      [--name NAME] COMMAND...   (a host command in the namespace)
#   vm-images/run-guest.sh capture [--name NAME] [--nic I] start FILE | stop
#   vm-images/run-guest.sh status  [--name NAME]
#   vm-images/run-guest.sh console [--name NAME]
#   vm-images/run-guest.sh stop    [--name NAME]
#   vm-images/run-guest.sh sanity  [--arch x86_64|aarch64] [--keep] [start options]
#
# NAME defaults to the architecture. The guest's network: namespace rspvm-NAME holds tap devices
# rsptap0..rsptapN-1; link i is 198.18.i.0/24 and fd00:18:i::/64 with the namespace side at .1/::1
# and the guest at .2/::2 (the guest's eth<i>). An nftables table "inet rspvm" in the namespace
# drops the ICMP protocol-unreachable / ICMPv6 unknown-next-header errors that the host kernel
# (which has no SCTP module) sends for SCTP packets while no raw IPPROTO_SCTP socket is open, so
# interop peers in the namespace see only what our stack sends; its counters show how many were
# dropped (`run-guest.sh ns nft list table inet rspvm`).
#
# --add puts extra files into the guest (a second cpio archive appended to the initramfs; the
# kernel unpacks both), e.g. `--add target/aarch64-unknown-linux-gnu/router/rsp:/usr/bin/rsp`.
# --sysctl values are applied in the guest after the SCTP module is loaded.
#
# qemu-system comes from <suite>-backports so that it matches the machine's qemu-utils from
# backports (bookworm's qemu-system 7.2 conflicts with it). KVM is used when a probe boot under
# KVM succeeds (cached in vm-images/out/kvm-probe), TCG otherwise.
#
# `sanity` starts the guest, checks kernel SCTP (checksctp, an sctp_test transfer over loopback and
# over eth0), RSPLIB (rspregistrar listening on ASAP 3863 and ENRP 9901, an rspserver
# registering and pingpongclient using it), ping both ways over IPv4 and IPv6, and that an SCTP
# INIT from the guest reaches the namespace's tap while the nft rule keeps the host kernel's ICMP
# errors off the wire, and `rsp --version` when --add put a binary at /usr/bin/rsp; then stops the
# guest and deletes the namespace. It prints one PASS/FAIL line
# per check and a closing "N passed, N failed" line.
set -euo pipefail
LOG_TAG=run-guest
# shellcheck source=vm-images/lib.sh
. "$(dirname "$0")/lib.sh"

usage() { script_doc "$0"; exit "${1:-2}"; }

SUB=${1:-}
[ -n "$SUB" ] || usage
shift
ARCH="" NAME="" NICS=1 MEM=512 SMP=1 ACCEL=auto IMAGE="" ADDS=() SYSCTLS=() BOOT_TIMEOUT=180
TIMEOUT=120 KEEP=0 NIC=0 ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) ARCH=${2:?}; shift ;;
    --name) NAME=${2:?}; shift ;;
    --nics) NICS=${2:?}; shift ;;
    --mem) MEM=${2:?}; shift ;;
    --smp) SMP=${2:?}; shift ;;
    --accel) ACCEL=${2:?}; shift ;;
    --image) IMAGE=${2:?}; shift ;;
    --add) ADDS+=("${2:?}"); shift ;;
    --sysctl) SYSCTLS+=("${2:?}"); shift ;;
    --boot-timeout) BOOT_TIMEOUT=${2:?}; shift ;;
    --timeout) TIMEOUT=${2:?}; shift ;;
    --nic) NIC=${2:?}; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) usage 0 ;;
    --) shift; ARGS+=("$@"); break ;;
    *) ARGS+=("$1") ;;
  esac
  shift
done
NAME=${NAME:-${ARCH:-x86_64}}
[[ "$NAME" =~ ^[A-Za-z0-9_-]{1,20}$ ]] || die "bad guest name '$NAME'"
RUN=$VM_OUT/run/$NAME
NS=rspvm-$NAME
LOG_TAG="run-guest $NAME"

ns_exec() { ip netns exec "$NS" "$@"; }
qemu_pid() { # prints the pid of this guest's QEMU if it runs
  local pid
  [ -f "$RUN/qemu.pid" ] || return 1
  pid=$(cat "$RUN/qemu.pid")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

# ---- network namespace ---------------------------------------------------------------------------
setup_netns() {
  local i
  ip netns del "$NS" 2>/dev/null || true
  ip netns add "$NS"
  ns_exec ip link set lo up
  echo 0 | ns_exec tee /proc/sys/net/ipv6/conf/default/accept_dad >/dev/null
  echo 0 | ns_exec tee /proc/sys/net/ipv6/conf/all/accept_dad >/dev/null
  for ((i = 0; i < NICS; i++)); do
    ns_exec ip tuntap add dev "rsptap$i" mode tap
    ns_exec ip link set "rsptap$i" up
    ns_exec ip addr add "198.18.$i.1/24" dev "rsptap$i"
    ns_exec ip -6 addr add "fd00:18:$i::1/64" dev "rsptap$i" nodad
  done
  ns_exec ip route add 224.0.0.0/4 dev rsptap0
  # RFC 792 protocol unreachable (IPv4) and RFC 4443 parameter problem code 1, unrecognized next
  # header (IPv6), each only when the offending packet's protocol is SCTP (132): the 8-byte ICMP
  # header is followed by the offending IP header, whose protocol / next-header byte sits at
  # offset 9 (IPv4) or 6 (IPv6).
  ns_exec nft -f - <<'EOF'
table inet rspvm {
  chain output {
    type filter hook output priority filter; policy accept;
    icmp type destination-unreachable icmp code prot-unreachable @th,136,8 132 counter drop
    icmpv6 type parameter-problem icmpv6 code 1 @th,112,8 132 counter drop
  }
}
EOF
}

teardown_netns() {
  local pids p i
  ip netns list | grep -qw "$NS" || return 0
  pids=$(ip netns pids "$NS" 2>/dev/null || true)
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill $pids 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      p=$(ip netns pids "$NS" 2>/dev/null || true)
      [ -z "$p" ] && break
      sleep 0.1
    done
    # shellcheck disable=SC2086
    [ -z "$p" ] || kill -9 $p 2>/dev/null || true
  fi
  ip netns del "$NS"
}

# ---- QEMU ----------------------------------------------------------------------------------------
ensure_qemu() {
  local pkg
  case "$ARCH" in
    x86_64) QEMU=qemu-system-x86_64 pkg=qemu-system-x86 ;;
    aarch64) QEMU=qemu-system-aarch64 pkg=qemu-system-arm ;;
  esac
  if ! command -v "$QEMU" >/dev/null; then
    ensure_backports
    apt_install -t "$(debian_suite)-backports" "$pkg"
  fi
  apt_install iproute2 nftables
  command -v "$QEMU" >/dev/null || die "$QEMU missing after installing $pkg"
}

# Prints "kvm" when KVM can boot this guest's kernel here, "tcg" otherwise (cached per host kernel
# and QEMU version; some hosts expose /dev/kvm without working nested virtualisation).
choose_accel() {
  local cache key probe log
  if [ "$ACCEL" != auto ]; then echo "$ACCEL"; return; fi
  if [ "$ARCH" != "$(uname -m)" ] || [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo tcg; return
  fi
  cache=$VM_OUT/kvm-probe
  key="$(uname -r) $("$QEMU" --version | head -1)"
  if [ -f "$cache" ] && [ "$(sed -n 2p "$cache")" = "$key" ]; then
    sed -n 1p "$cache"; return
  fi
  log=$(mktemp)
  probe=tcg
  # Without an initramfs the kernel panics at once (panic=-1 reboots, -no-reboot exits): under a
  # working KVM that takes about a second.
  if timeout -k 2 20 "$QEMU" -accel kvm -cpu host -m 256 -nodefaults -no-user-config -display none \
    -no-reboot -kernel "$IMAGE/vmlinuz" -append "console=ttyS0 panic=-1" -serial "file:$log" \
    >/dev/null 2>&1 || true; then
    grep -q 'Kernel panic' "$log" && probe=kvm
  fi
  rm -f "$log"
  mkdir -p "$VM_OUT"
  printf '%s\n%s\n' "$probe" "$key" >"$cache"
  echo "$probe"
}

start_guest() {
  local i accel append cpu machine console extra started up t0 qemu_args=() pid kernel
  ARCH=${ARCH:-x86_64}
  IMAGE=${IMAGE:-$VM_OUT/guest-$ARCH}
  [ -f "$IMAGE/vmlinuz" ] && [ -f "$IMAGE/initramfs.cpio" ] \
    || die "no guest image in $IMAGE; build it with vm-images/build-guest.sh --arch $ARCH"
  [[ "$NICS" =~ ^[1-8]$ ]] || die "--nics must be 1..8"
  if pid=$(qemu_pid); then die "guest $NAME already runs (pid $pid); stop it first"; fi
  ensure_qemu
  rm -rf "$RUN"
  mkdir -p "$RUN"
  # The initramfs, plus the --add files as a second archive.
  if [ ${#ADDS[@]} -gt 0 ]; then
    extra=$RUN/extra
    for a in "${ADDS[@]}"; do
      local src=${a%%:*} dst=${a#*:}
      [ -f "$src" ] && [ "$src" != "$a" ] && [ "${dst#/}" != "$dst" ] \
        || die "--add wants HOSTFILE:/GUEST/PATH, got '$a'"
      mkdir -p "$extra$(dirname "$dst")"
      cp "$src" "$extra$dst"
    done
    (cd "$extra" && find . -mindepth 1 | LC_ALL=C sort \
      | cpio --create --format=newc --owner=0:0 --quiet) >"$RUN/extra.cpio"
    cat "$IMAGE/initramfs.cpio" "$RUN/extra.cpio" >"$RUN/initrd.cpio"
    rm -rf "$extra" "$RUN/extra.cpio"
  else
    ln -s "$(realpath "$IMAGE/initramfs.cpio")" "$RUN/initrd.cpio"
  fi
  accel=$(choose_accel)
  case "$ARCH" in
    x86_64)
      machine=pc console=ttyS0
      if [ "$accel" = kvm ]; then cpu=host; else cpu=max; fi ;;
    aarch64)
      machine=virt console=ttyAMA0 cpu=max,pauth-impdef=on ;;
    *) die "unsupported guest arch $ARCH" ;;
  esac
  kernel=$IMAGE/vmlinuz
  # x86_64: the uncompressed ELF kernel (PVH entry) boots faster under TCG.
  [ "$ARCH" != x86_64 ] || [ ! -f "$IMAGE/vmlinux" ] || kernel=$IMAGE/vmlinux
  append="console=$console panic=-1 rsp.nics=$NICS"
  if [ ${#SYSCTLS[@]} -gt 0 ]; then append+=" rsp.sysctl=$(IFS=,; echo "${SYSCTLS[*]}")"; fi
  qemu_args=(-name "rsp-$NAME" -machine "$machine" -accel "$accel" -cpu "$cpu" -m "$MEM"
    -smp "$SMP" -nodefaults -no-user-config -display none -no-reboot
    -kernel "$kernel" -initrd "$RUN/initrd.cpio" -append "$append"
    -serial "file:$RUN/console.log"
    -device virtio-serial-pci
    -chardev "socket,id=cmd,path=$RUN/cmd.sock,server=on,wait=off"
    -device virtserialport,chardev=cmd,name=rsp.cmd
    -monitor "unix:$RUN/monitor.sock,server=on,wait=off"
    -pidfile "$RUN/qemu.pid" -daemonize)
  for ((i = 0; i < NICS; i++)); do
    qemu_args+=(-netdev "tap,id=n$i,ifname=rsptap$i,script=no,downscript=no"
      -device "virtio-net-pci,netdev=n$i,mac=52:54:00:18:$(printf %02x "$i"):02,romfile=")
  done
  printf 'arch=%s\nnics=%s\naccel=%s\nns=%s\n' "$ARCH" "$NICS" "$accel" "$NS" >"$RUN/meta"
  setup_netns
  t0=$(date +%s.%N)
  log "booting $ARCH guest ($accel, ${MEM} MiB, $NICS NIC(s)) in namespace $NS"
  if ! ns_exec "$QEMU" "${qemu_args[@]}" 2>"$RUN/qemu.err"; then
    cat "$RUN/qemu.err" >&2
    teardown_netns
    die "QEMU failed to start"
  fi
  started=0
  for ((i = 0; i < BOOT_TIMEOUT * 5; i++)); do
    if grep -q '^RSP-GUEST-READY' "$RUN/console.log" 2>/dev/null; then started=1; break; fi
    qemu_pid >/dev/null || break
    sleep 0.2
  done
  if [ "$started" -ne 1 ]; then
    tail -30 "$RUN/console.log" >&2 || true
    stop_guest
    die "guest did not become ready within ${BOOT_TIMEOUT}s"
  fi
  up=$(sed -n 's/^RSP-GUEST-READY uptime=\([0-9.]*\).*/\1/p' "$RUN/console.log" | head -1)
  BOOT_SECS=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')
  printf 'boot_secs=%s\nguest_uptime=%s\n' "$BOOT_SECS" "$up" >>"$RUN/meta"
  if grep -q 'FAILED\|missing' "$RUN/console.log"; then
    grep 'rsp-guest:' "$RUN/console.log" >&2
    stop_guest
    die "guest setup reported failures"
  fi
  log "guest ready after ${BOOT_SECS}s (guest uptime ${up}s);" \
    "links: $(for ((i = 0; i < NICS; i++)); do printf '198.18.%d.2 fd00:18:%d::2 ' "$i" "$i"; done)"
}

stop_guest() {
  local pid i
  if pid=$(qemu_pid); then
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  teardown_netns
  rm -f "$RUN/cmd.sock" "$RUN/monitor.sock" "$RUN/qemu.pid"
}

guest_exec() { # SCRIPT: runs it in the guest, output to stdout, returns its status
  [ -S "$RUN/cmd.sock" ] && qemu_pid >/dev/null || die "guest $NAME is not running"
  flock "$RUN/cmd.lock" python3 "$VM_DIR/guestctl.py" --timeout "$TIMEOUT" "$RUN/cmd.sock" "$1"
}

capture() { # start FILE | stop: tshark on rsptap$NIC in the namespace
  local pidf=$RUN/capture$NIC.pid i
  case "${1:-}" in
    start)
      [ -n "${2:-}" ] || die "capture start needs a file"
      # `ip netns exec` execs tshark, so $! is tshark itself (SIGINT makes it finish the file).
      ip netns exec "$NS" tshark -q -n -i "rsptap$NIC" -w "$2" </dev/null >"$RUN/capture$NIC.log" 2>&1 &
      echo $! >"$pidf"
      # tshark reports "Capturing on" once the interface is open.
      for ((i = 0; i < 100; i++)); do
        grep -qs 'Capturing on' "$RUN/capture$NIC.log" && return 0
        kill -0 "$(cat "$pidf")" 2>/dev/null || break
        sleep 0.1
      done
      cat "$RUN/capture$NIC.log" >&2
      die "tshark did not start on rsptap$NIC"
      ;;
    stop)
      [ -f "$pidf" ] || die "no capture running on rsptap$NIC"
      kill -INT "$(cat "$pidf")" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do kill -0 "$(cat "$pidf")" 2>/dev/null || break; sleep 0.1; done
      rm -f "$pidf"
      ;;
    *) die "capture start FILE | capture stop" ;;
  esac
}

# ---- sanity --------------------------------------------------------------------------------------
PASSED=0 FAILED=0
check() { # NAME COMMAND...: runs the command, prints PASS/FAIL with its output on failure
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    PASSED=$((PASSED + 1))
    printf 'PASS  %s\n' "$name"
  else
    FAILED=$((FAILED + 1))
    printf 'FAIL  %s\n%s\n' "$name" "$(printf '%s\n' "$out" | tail -20 | sed 's/^/      /')"
  fi
}

g() { guest_exec "$1"; }
chk_sctp_loaded() { g 'grep -q "^sctp " /proc/modules && checksctp' | grep -q 'SCTP supported'; }
# sctp_test test case 4 sends messages of 1, 1000, 2000, 3000, 5000, 10000, 15000, 20000, 25000
# and 32768 bytes; with -x 2 the server must receive 20 messages, 227538 bytes in all.
chk_sctp_transfer() {
  local addr=$1 out
  out=$(g "sctp_test -H $addr -P 3600 -l >/tmp/srv.log 2>&1 & srv=\$!
    sleep 1
    timeout 60 sctp_test -H $addr -P 3601 -h $addr -p 3600 -s -c 4 -x 2 -o 1 >/tmp/cli.log 2>&1
    rc=\$?; sleep 1; kill \$srv
    echo client=\$rc
    grep -o 'Data [0-9]* bytes' /tmp/srv.log | awk '{ n++; b += \$2 } END { print \"msgs=\" n, \"bytes=\" b }'")
  echo "$out"
  grep -q 'client=0' <<<"$out" && grep -q 'msgs=20 bytes=227538' <<<"$out"
}
chk_registrar() {
  local out
  out=$(g 'rspregistrar -asap=[::]:3863 -enrp=[::]:9901 -logfile=/tmp/registrar.log -loglevel=3 \
      -logcolor=off >/dev/null 2>&1 &
    for i in 1 2 3 4 5 6 7 8 9 10; do
      grep -q " 3863 " /proc/net/sctp/eps && grep -q " 9901 " /proc/net/sctp/eps && break
      sleep 1
    done
    pidof rspregistrar; cat /proc/net/sctp/eps')
  echo "$out"
  grep -q ' 3863 ' <<<"$out" && grep -q ' 9901 ' <<<"$out"
}
chk_rsplib_pingpong() {
  # An RSPLIB pool element (rspserver with the PingPong service) registers at the registrar started
  # above; pingpongclient resolves the pool handle there and exchanges messages with the element.
  local out acks
  out=$(g 'rspserver -registrar=127.0.0.1:3863 -pingpong -poolhandle=PingPongPool \
      -logfile=/tmp/pe.log -logcolor=off >/tmp/pe.out 2>&1 &
    sleep 4
    timeout -s INT 8 pingpongclient -registrar=127.0.0.1:3863 -poolhandle=PingPongPool \
      -interval=200 -logcolor=off >/tmp/pu.log 2>&1
    tail -5 /tmp/pu.log
    echo "acks=$(grep -c "Ack #[0-9]* from PE" /tmp/pu.log)"')
  echo "$out"
  acks=$(sed -n 's/^acks=//p' <<<"$out")
  [ "${acks:-0}" -ge 5 ]
}
chk_rsp_runs() { g 'rsp --version' | grep -q '^rsp '; }
chk_ping_ns_to_guest() {
  ns_exec ping -c 3 -i 0.2 -W 2 198.18.0.2 && ns_exec ping -6 -c 3 -i 0.2 -W 2 fd00:18:0::2
}
chk_ping_guest_to_ns() {
  g 'ping -c 3 -W 2 198.18.0.1 && ping -6 -c 3 -W 2 fd00:18:0::1'
}
chk_init_reaches_tap() {
  # No SCTP listener exists on the namespace side: the guest's INITs must arrive on the tap, and
  # the host kernel's ICMP errors for them must be dropped by the nft rule (counters > 0) instead
  # of reaching the guest.
  local pcap=$RUN/init-probe.pcapng out inits icmp
  capture start "$pcap"
  g 'timeout 4 sctp_test -H 198.18.0.2 -P 4000 -h 198.18.0.1 -p 4001 -s -c 0 -x 1 >/dev/null 2>&1
     timeout 4 sctp_test -H fd00:18:0::2 -P 4000 -h fd00:18:0::1 -p 4001 -s -c 0 -x 1 >/dev/null 2>&1
     true' >/dev/null
  capture stop
  inits=$(tshark -n -r "$pcap" -Y 'sctp.chunk_type == 1' 2>/dev/null | wc -l)
  icmp=$(tshark -n -r "$pcap" -Y '(icmp.type == 3 && icmp.code == 2) || (icmpv6.type == 4 && icmpv6.code == 1)' 2>/dev/null | wc -l)
  out=$(ns_exec nft list table inet rspvm)
  echo "INITs on the tap: $inits; ICMP protocol errors on the tap: $icmp"
  echo "$out"
  [ "$inits" -ge 2 ] && [ "$icmp" -eq 0 ] \
    && [ "$(grep -c 'counter packets [1-9]' <<<"$out")" -eq 2 ]
}

sanity() {
  ARCH=${ARCH:-x86_64}
  apt_install tshark iputils-ping
  # shellcheck disable=SC2064
  [ "$KEEP" -eq 1 ] || trap "stop_guest" EXIT
  start_guest
  check "kernel SCTP module loaded (checksctp)" chk_sctp_loaded
  check "sctp_test transfer over loopback (20 messages, 227538 bytes)" chk_sctp_transfer 127.0.0.1
  check "sctp_test transfer over eth0 198.18.0.2" chk_sctp_transfer 198.18.0.2
  check "rspregistrar listens on ASAP 3863 and ENRP 9901" chk_registrar
  check "RSPLIB rspserver registers, pingpongclient uses it" chk_rsplib_pingpong
  check "ping namespace -> guest (IPv4, IPv6)" chk_ping_ns_to_guest
  check "ping guest -> namespace (IPv4, IPv6)" chk_ping_guest_to_ns
  check "guest SCTP INITs reach the tap; nft drops the host's ICMP errors" chk_init_reaches_tap
  local a
  for a in "${ADDS[@]}"; do
    [ "${a#*:}" != /usr/bin/rsp ] || check "rsp --version runs in the $ARCH guest" chk_rsp_runs
  done
  log "boot $(sed -n 's/boot_secs=//p' "$RUN/meta")s; image $(du -k "$IMAGE/vmlinuz" | cut -f1) KiB kernel +" \
    "$(du -k "$IMAGE/initramfs.cpio" | cut -f1) KiB initramfs"
  echo "guest-sanity-$ARCH: $PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}

[ "$(id -u)" -eq 0 ] || die "run-guest.sh needs root (network namespaces, tap devices)"
case "$SUB" in
  start) start_guest ;;
  stop) stop_guest ;;
  exec)
    [ ${#ARGS[@]} -gt 0 ] || die "exec needs a script"
    if [ "${ARGS[*]}" = - ]; then guest_exec "$(cat)"; else guest_exec "${ARGS[*]}"; fi ;;
  ns) [ ${#ARGS[@]} -gt 0 ] || die "ns needs a command"; ns_exec "${ARGS[@]}" ;;
  capture) capture "${ARGS[@]}" ;;
  status)
    if pid=$(qemu_pid); then
      echo "running: pid $pid, namespace $NS"; cat "$RUN/meta"
    else
      echo "not running"; exit 1
    fi ;;
  console) cat "$RUN/console.log" ;;
  sanity) sanity ;;
  *) usage ;;
esac
