#!/usr/bin/env bash
# Short fuzz runs of every sctp-stack fuzz target (cargo-fuzz on nightly). The long runs
# (>= 1M executions per target) are done by hand; crashes found there become regression
# tests. Targets are listed by `cargo fuzz list`, so new targets are picked up by themselves.
# FUZZ_SECONDS (default 20) bounds each target.
set -euo pipefail
cd "$(dirname "$0")/../sctp-stack/fuzz"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-20}"
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz-smoke: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  timeout 1200 cargo install cargo-fuzz --locked
fi
cargo +nightly fuzz --version
timeout 1200 cargo +nightly fuzz build -O
for target in $(cargo +nightly fuzz list); do
  corpus="corpus/$target"
  mkdir -p "$corpus"
  echo "== fuzz $target for ${SECONDS_PER_TARGET}s"
  # Seeds (committed) are read-only inputs; new finds go to the (ignored) corpus.
  log="$(mktemp)"
  rc=0
  timeout $((SECONDS_PER_TARGET + 120)) cargo +nightly fuzz run -O "$target" "$corpus" seeds/wire -- \
    -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || rc=$?
  grep -E '^(Done|stat::number_of_executed_units)' "$log" || true
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$log" >&2
    echo "fuzz-smoke: $target failed (exit $rc); the crashing input is in sctp-stack/fuzz/artifacts/$target" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
done
# rserpool's targets (rserpool/fuzz: ASAP/ENRP/service decoders, handlespace operations),
# the same procedure without seed corpora.
cd ../../rserpool/fuzz
timeout 1200 cargo +nightly fuzz build -O
for target in $(cargo +nightly fuzz list); do
  mkdir -p "corpus/$target"
  echo "== fuzz rserpool $target for ${SECONDS_PER_TARGET}s"
  log="$(mktemp)"
  rc=0
  timeout $((SECONDS_PER_TARGET + 120)) cargo +nightly fuzz run -O "$target" "corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || rc=$?
  grep -E '^(Done|stat::number_of_executed_units)' "$log" || true
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$log" >&2
    echo "fuzz-smoke: rserpool $target failed (exit $rc); the crashing input is in rserpool/fuzz/artifacts/$target" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
done
echo "fuzz-smoke: all targets ran without crashes"
