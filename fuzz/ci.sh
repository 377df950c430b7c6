#!/usr/bin/env bash
# A bounded fuzzing smoke run: every target for SECONDS (default 20) under
# AFL++, failing if any input crashes or hangs. Not part of the default CI
# (see RELIABILITY.md, "Fuzzing": building AFL++ and the instrumented crate
# costs more than the smoke run finds); the replay test
# participant/tests/fuzz_regressions.rs is CI's part and runs every kept
# input on every `cargo test --workspace`.
#
#   fuzz/ci.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-20}"
command -v cargo-afl >/dev/null || cargo install --locked cargo-afl
cargo afl config --build >/dev/null 2>&1 || true
unset CARGO_TARGET_DIR
nice -n 19 cargo afl build --release --locked
status=0
for dir in corpus/*/; do
  target="$(basename "$dir")"
  out="$(mktemp -d)"
  AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_BENCH_UNTIL_CRASH=1 \
  AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
    nice -n 19 cargo afl fuzz -i "$dir" -o "$out" -V "$seconds" -t 2000 \
    -- "target/release/$target" >"$out.log" 2>&1 || true
  stats="$out/default/fuzzer_stats"
  if [ ! -f "$stats" ]; then
    echo "$target: AFL did not start" >&2; tail -20 "$out.log" >&2; status=1
  else
    execs=$(awk '/^execs_done/ {print $3}' "$stats")
    crashes=$(awk '/^saved_crashes/ {print $3}' "$stats")
    hangs=$(awk '/^saved_hangs/ {print $3}' "$stats")
    echo "fuzz $target: $execs executions, $crashes crashes, $hangs hangs"
    if [ "$crashes" != 0 ] || [ "$hangs" != 0 ]; then
      echo "  inputs: $out/default/crashes $out/default/hangs (copy them to fuzz/regressions/$target/)" >&2
      status=1
      continue
    fi
  fi
  rm -rf "$out" "$out.log"
done
exit "$status"
