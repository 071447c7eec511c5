#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), under memory limits well below the
# Deployment's 256 MiB: a target whose process grows past 200 MiB, or that asks for one
# allocation over 64 MiB, counts as a crash. No sanitizer: the code has no `unsafe` for one to
# check, and AddressSanitizer's quarantine of freed memory would count against the limit. Findings land in fuzz/artifacts/<target>/; turn each
# into a regression test. CI runs no fuzzing.
#
#   fuzz/run.sh 600
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The machine's toolchain is stable, so nightly
# features are unlocked with RUSTC_BOOTSTRAP, as cargo-fuzz needs them for sanitizer flags.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
export RUSTC_BOOTSTRAP=1
for target in template envelope inject_plan; do
  mkdir -p "fuzz/corpus/$target"
  echo "== $target ($seconds s)"
  cargo fuzz run --release --sanitizer none "$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=200 -malloc_limit_mb=64 -max_len=65536 \
    -print_final_stats=1 2>&1 | grep -E "^(stat::|#[0-9]+ +DONE|==|SUMMARY|Test unit|artifact)" || true
done
