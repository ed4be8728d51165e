#!/usr/bin/env bash
# SCTP soak suite: the long deterministic-harness scenarios that are #[ignore]d in the plain test
# run, in a release build (a million messages through a primary-path failure takes ~2 s there,
# 10 s in a debug build and minutes under qemu-user).
set -euo pipefail
cd "$(dirname "$0")/.."

timeout 900 cargo test --release -p sctp-stack --features sim --test assoc_multihoming -- \
  --ignored --exact primary_path_lost_during_a_million_messages_loses_nothing
