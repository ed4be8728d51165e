# Shared helpers for the vm-images scripts (sourced, not executed).
# shellcheck shell=bash disable=SC2034

# Repository root and this folder.
VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$VM_DIR")
export DEBIAN_FRONTEND=noninteractive

log() { printf '[%s %s] %s\n' "$(date +%H:%M:%S)" "${LOG_TAG:-vm-images}" "$*" >&2; }
die() {
  printf '[%s %s] ERROR: %s\n' "$(date +%H:%M:%S)" "${LOG_TAG:-vm-images}" "$*" >&2
  exit 1
}

# Runs a command as root (directly, or through sudo when not root).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Retries a command up to 5 times with a growing pause (mirror hiccups, dpkg lock contention,
# rustup dist server blips).
retry() {
  local i
  for i in 1 2 3 4 5; do
    if "$@"; then return 0; fi
    [ "$i" -eq 5 ] && break
    log "attempt $i of '$*' failed; retrying in $((i * 5))s"
    sleep $((i * 5))
  done
  return 1
}

# apt-get update at most once per script run.
APT_UPDATED=${APT_UPDATED:-0}
apt_update_once() {
  [ "$APT_UPDATED" -eq 1 ] && return 0
  retry as_root apt-get update -q
  APT_UPDATED=1
}

# Installs the given Debian packages that are not installed yet (no recommends).
# Options before the package names are passed to apt-get (e.g. `-t bookworm-backports`).
apt_install() {
  local opts=() missing=() p
  while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do
    opts+=("$1" "$2")
    shift 2
  done
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  apt_update_once
  retry as_root apt-get install -y -q --no-install-recommends "${opts[@]}" "${missing[@]}"
}

# The Debian release suite of this machine (bookworm on the project's machines).
debian_suite() {
  # shellcheck disable=SC1091
  (. /etc/os-release && echo "${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}")
}

# Makes <suite>-backports available to apt (priority 100: nothing is taken from it unless asked
# for with `-t`). qemu-system must come from there so that it matches the machine's preinstalled
# qemu-utils from backports (bookworm's qemu-system 7.2 conflicts with qemu-utils 10.x).
ensure_backports() {
  local suite file
  suite=$(debian_suite)
  file=/etc/apt/sources.list.d/${suite}-backports.sources
  if grep -rqs "${suite}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    return 0
  fi
  log "adding ${suite}-backports to apt sources ($file)"
  as_root tee "$file" >/dev/null <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: ${suite}-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  APT_UPDATED=0
}

# Per-architecture facts used by cross-test.sh and size-report.sh. Sets:
#   TRIPLE      Rust target triple
#   GNU_TRIPLE  Debian multiarch triple (cross gcc prefix, sysroot /usr/$GNU_TRIPLE)
#   QEMU_USER   qemu-user binary (empty for the native x86_64 target)
#   CROSS_PKGS  Debian packages for linker, libc and emulator
#   TIER3       1 when the target needs nightly + -Zbuild-std
arch_facts() {
  case "$1" in
    aarch64)
      TRIPLE=aarch64-unknown-linux-gnu GNU_TRIPLE=aarch64-linux-gnu QEMU_USER=qemu-aarch64-static
      CROSS_PKGS="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static" TIER3=0 ;;
    powerpc)
      TRIPLE=powerpc-unknown-linux-gnu GNU_TRIPLE=powerpc-linux-gnu QEMU_USER=qemu-ppc-static
      CROSS_PKGS="gcc-powerpc-linux-gnu libc6-dev-powerpc-cross qemu-user-static" TIER3=0 ;;
    mips)
      TRIPLE=mips-unknown-linux-gnu GNU_TRIPLE=mips-linux-gnu QEMU_USER=qemu-mips-static
      CROSS_PKGS="gcc-mips-linux-gnu libc6-dev-mips-cross qemu-user-static" TIER3=1 ;;
    x86_64)
      [ "$(uname -m)" = x86_64 ] || die "x86_64 is tested natively; this host is $(uname -m)"
      TRIPLE=x86_64-unknown-linux-gnu GNU_TRIPLE=x86_64-linux-gnu QEMU_USER=""
      CROSS_PKGS="" TIER3=0 ;;
    *) die "unknown ARCH '$1' (expected aarch64, powerpc, mips or x86_64)" ;;
  esac
  if [ "$1" != x86_64 ] && [ "$(uname -m)" != x86_64 ]; then
    die "cross builds are set up for x86_64 hosts (.cargo/config.toml); this host is $(uname -m)"
  fi
}

# Makes the Rust side of a target available: `rustup target add` for tier-2 targets, nightly
# with rust-src for tier-3 ones. Sets CARGO_TOOLCHAIN (e.g. "+nightly" or empty) and
# BUILD_STD_ARGS (the -Zbuild-std flags, empty for tier 2).
ensure_rust_target() {
  local triple=$1 tier3=$2 std_crates=${3:-}
  command -v rustup >/dev/null || die "rustup is required"
  if [ "$tier3" -eq 1 ]; then
    CARGO_TOOLCHAIN=+nightly
    if ! rustup toolchain list | grep -q '^nightly'; then
      log "installing the nightly toolchain (tier-3 target $triple needs -Zbuild-std)"
      retry rustup toolchain install nightly --profile minimal --component rust-src
    fi
    if ! rustup component list --toolchain nightly --installed | grep -qx 'rust-src'; then
      log "adding rust-src to nightly"
      retry rustup component add rust-src --toolchain nightly
    fi
    BUILD_STD_ARGS=("-Zbuild-std${std_crates:+=$std_crates}")
  else
    CARGO_TOOLCHAIN=""
    BUILD_STD_ARGS=()
    if ! (cd "$REPO_ROOT" && rustup target list --installed) | grep -qx "$triple"; then
      log "rustup target add $triple"
      (cd "$REPO_ROOT" && retry rustup target add "$triple")
    fi
  fi
}

# cargo with the toolchain chosen by ensure_rust_target.
tcargo() {
  if [ -n "${CARGO_TOOLCHAIN:-}" ]; then cargo "$CARGO_TOOLCHAIN" "$@"; else cargo "$@"; fi
}

# ---- guest package sets (private apt roots) ------------------------------------------------------

VM_CACHE=${VM_CACHE:-$VM_DIR/cache}
VM_OUT=${VM_OUT:-$VM_DIR/out}

# Prepares a private apt root for Debian architecture $1 under $VM_CACHE/apt-$1 and sets
# GUEST_APT_CONFIG. The host's apt state is not touched: guest packages are resolved and downloaded
# from the same Debian suites as the host's (main, -updates, -security) for the guest architecture.
guest_apt_init() {
  local debarch=$1 suite root
  suite=$(debian_suite)
  root=$VM_CACHE/apt-$debarch
  mkdir -p "$root"/etc/apt/apt.conf.d "$root"/etc/apt/preferences.d "$root"/etc/apt/sources.list.d \
    "$root"/var/lib/apt/lists/partial "$root"/var/cache/apt/archives/partial "$root"/var/lib/dpkg
  : >"$root"/var/lib/dpkg/status
  cat >"$root"/etc/apt/sources.list.d/debian.sources <<EOF2
Types: deb
URIs: http://deb.debian.org/debian
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF2
  : >"$root"/etc/apt/sources.list
  GUEST_APT_CONFIG=$root/apt.conf
  cat >"$GUEST_APT_CONFIG" <<EOF2
Dir "$root/";
Dir::State "var/lib/apt";
Dir::State::status "$root/var/lib/dpkg/status";
Dir::Cache "var/cache/apt";
Dir::Etc "etc/apt";
Dir::Log "var/log/apt";
APT::Architecture "$debarch";
APT::Architectures { "$debarch"; };
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APT::Sandbox::User "root";
Acquire::Languages "none";
Acquire::Retries "5";
EOF2
  [ -r /usr/share/keyrings/debian-archive-keyring.gpg ] || apt_install debian-archive-keyring
}

# apt-get / apt-cache against the private root prepared by guest_apt_init.
gapt_get() { APT_CONFIG=$GUEST_APT_CONFIG apt-get -q "$@"; }
gapt_cache() { APT_CONFIG=$GUEST_APT_CONFIG apt-cache "$@"; }

# Prints a script's leading comment block (its usage text).
script_doc() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$1"; }
