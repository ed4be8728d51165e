#!/bin/sh
# /init of the rsp test guests (busybox sh, PID 1). Installed by build-guest.sh.
#
# Kernel command line parameters read here:
#   rsp.nics=N     configure eth0..ethN-1 (default 1): 198.18.<i>.2/24 and fd00:18:<i>::2/64,
#                  the host side of the tap being .1 / ::1
#   rsp.sysctl=K=V,K=V   sysctls applied after the modules are loaded (e.g. net.sctp.auth_enable=1)
#
# After setup it prints "RSP-GUEST-READY" on the console and serves the virtio-serial port named
# "rsp.cmd": each request is one line "<id> <timeout seconds> <base64 of a shell script>"; the
# script runs in its own session with stdin from /dev/null and stdout+stderr to the port, and is
# followed by the line "@@RSP-GUEST-DONE <id> <exit status>" (preceded by a newline). A script
# still running after the timeout is killed with its whole process group (status 137). Background
# processes started by a script must redirect their own output (e.g.
# `rspregistrar ... >/tmp/reg.log 2>&1 &`) and outlive the script.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
/usr/bin/busybox --install -s 2>/dev/null
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /dev/shm
hostname rspguest
exec </dev/console >/dev/console 2>&1

say() { echo "rsp-guest: $*"; }

krel=$(uname -r)
while read -r m; do
  insmod "/lib/modules/$krel/$m" || say "insmod $m FAILED"
done </etc/rsp-guest/modules

nics=1
sysctls=""
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    rsp.nics=*) nics=${arg#rsp.nics=} ;;
    rsp.sysctl=*) sysctls=${arg#rsp.sysctl=} ;;
  esac
done

# No duplicate address detection: the test network has exactly two hosts per link.
echo 0 >/proc/sys/net/ipv6/conf/default/accept_dad
echo 0 >/proc/sys/net/ipv6/conf/all/accept_dad
for kv in $(echo "$sysctls" | tr ',' ' '); do
  k=${kv%%=*}
  echo "${kv#*=}" >"/proc/sys/$(echo "$k" | tr . /)" || say "sysctl $k FAILED"
done
ip link set lo up
i=0
while [ "$i" -lt "$nics" ]; do
  if ip link set "eth$i" up; then
    ip addr add "198.18.$i.2/24" dev "eth$i"
    ip -6 addr add "fd00:18:$i::2/64" dev "eth$i"
  else
    say "eth$i missing"
  fi
  i=$((i + 1))
done
# RSPLIB announces registrars and servers by multicast (ASAP 239.0.0.50, ENRP 239.0.0.51).
[ "$nics" -gt 0 ] && ip route add 224.0.0.0/4 dev eth0 2>/dev/null

port=""
for d in /sys/class/virtio-ports/*; do
  [ "$(cat "$d/name" 2>/dev/null)" = rsp.cmd ] && port=/dev/${d##*/}
done
read -r up _ </proc/uptime
if [ -z "$port" ]; then
  say "no virtio-serial port named rsp.cmd; no command agent"
  echo "RSP-GUEST-READY uptime=$up agent=none"
  while :; do sleep 3600; done
fi
echo "RSP-GUEST-READY uptime=$up agent=$port"

cd /root || exit 1
exec 3<>"$port"
while :; do
  # read fails (EOF) while no host client is connected to the port.
  if ! IFS= read -r line <&3; then
    sleep 0.2
    continue
  fi
  id=${line%% *}
  rest=${line#* }
  limit=${rest%% *}
  case "$limit" in ''|*[!0-9]*) limit=120 ;; esac
  printf '%s' "${rest#* }" | base64 -d >/tmp/.rsp-cmd 2>/dev/null || {
    printf '\n@@RSP-GUEST-DONE %s 255\n' "$id" >&3
    continue
  }
  # setsid: the script leads a new process group, so the watchdog can kill all of it.
  setsid sh /tmp/.rsp-cmd </dev/null >&3 2>&1 3>&- &
  pid=$!
  (sleep "$limit"; kill -KILL "-$pid" 2>/dev/null) </dev/null >/dev/null 2>&1 3>&- &
  watchdog=$!
  wait "$pid"
  rc=$?
  kill "$watchdog" 2>/dev/null
  printf '\n@@RSP-GUEST-DONE %s %d\n' "$id" "$rc" >&3
done
