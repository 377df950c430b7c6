#!/usr/bin/env bash
# Fuzzes one target with AFL++ until it has run EXECS inputs (default 10^6),
# then keeps every crashing or hanging input under regressions/<target>/ and
# prints the run's counts from AFL's fuzzer_stats. One fuzzer at a time,
# at the lowest priority: the machine is shared.
#
#   fuzz/run.sh <target> [execs [seconds]]   e.g. fuzz/run.sh journal 1000000
#
# With seconds, the run also stops after that long (AFL's -V).
#
# Needs `cargo install cargo-afl` and `cargo afl config --build` once.
set -euo pipefail
cd "$(dirname "$0")"
target="${1:?usage: fuzz/run.sh <target> [execs]}"
execs="${2:-1000000}"
seconds="${3:-}"
[ -d "corpus/$target" ] || { echo "no corpus/$target" >&2; exit 2; }

# The fuzz crate has its own target directory: AFL instruments every crate.
unset CARGO_TARGET_DIR
nice -n 19 cargo afl build --release --locked --bin "$target"

out="out/$target"
rm -rf "$out"
mkdir -p out
# No UI, no CPU binding (other builds share the cores), no core-pattern or
# CPU-governor demands; -E stops after that many executions.
AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 \
AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CRASHES=1 \
  nice -n 19 cargo afl fuzz -i "corpus/$target" -o "$out" -E "$execs" ${seconds:+-V "$seconds"} \
  -t 2000 -- "target/release/$target" > "$out.log" 2>&1 || true

stats="$out/default/fuzzer_stats"
[ -f "$stats" ] || { tail -30 "$out.log" >&2; exit 1; }
found=0
for kind in crashes hangs; do
  for f in "$out/default/$kind"/id:*; do
    [ -e "$f" ] || continue
    mkdir -p "regressions/$target"
    cp "$f" "regressions/$target/$kind-$(sha256sum "$f" | cut -c1-16)"
    found=$((found + 1))
  done
done
grep -E '^(execs_done|execs_per_sec|run_time|corpus_count|saved_crashes|saved_hangs|stability|bitmap_cvg) ' "$stats"
echo "$target: kept $found crashing or hanging input(s) under fuzz/regressions/$target/"
