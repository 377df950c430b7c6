#!/usr/bin/env bash
# Data-plane benchmark: RFMLT feature extraction by `fedseg-participant
# features` against DuckDB on the same synthetic bank's CSV files, run
# alternately. Prints a Markdown table (median of RUNS wall times, rows per
# second, peak memory) and checks both computed the same feature totals.
#
# Usage: bench/data-plane.sh [CUSTOMERS] [RUNS]   (DuckDB: pip install duckdb)
set -euo pipefail
customers=${1:-1000000}
runs=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-/tmp/fedseg-bench-data}
as_of=2026-11-01
cargo build --release -q --manifest-path "$root/Cargo.toml" -p fedseg-participant
bin=${CARGO_TARGET_DIR:-$root/target}/release/fedseg-participant
mkdir -p "$work"
if [ ! -f "$work/customers.csv" ] || [ "$(($(wc -l < "$work/customers.csv") - 1))" != "$customers" ]; then
  "$bin" synth --out "$work" --customers "$customers" --seed 5
fi
cat > "$work/participant.toml" <<TOML
id = "bench"
coordinator = "https://127.0.0.1:1"
coordinator_id = "coordinator"
ledger = "ledger.log"
[tls]
ca = "none"
cert = "none"
key = "none"
[data]
transactions = "transactions.csv"
interactions = "interactions.csv"
customers = "customers.csv"
TOML
tx=$(($(wc -l < "$work/transactions.csv") - 1))
ix=$(($(wc -l < "$work/interactions.csv") - 1))
measure() { # label, command...: appends "label wall_s peak_kb" lines
  local label=$1; shift
  /usr/bin/time -f "$label %e %M" -o "$work/time.txt" "$@" > "$work/$label.out"
  cat "$work/time.txt" >> "$work/times.txt"
}
: > "$work/times.txt"
for _ in $(seq "$runs"); do
  measure fedseg "$bin" features --config "$work/participant.toml" --as-of "$as_of" --json
  measure duckdb python3 "$root/bench/rfmlt_duckdb.py" "$work" "$as_of" 2
done
python3 - "$work" "$tx" "$ix" "$customers" <<'PY'
import json, statistics, sys, re
work, tx, ix, customers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rows = {}
for line in open(f"{work}/times.txt"):
    label, wall, kb = line.split()
    rows.setdefault(label, []).append((float(wall), int(kb)))
ours = json.loads(open(f"{work}/fedseg.out").read())
duck = open(f"{work}/duckdb.out").read()
totals = re.search(r"\((\d+), (\d+), (\d+), ([\d.]+), (\d+), (\d+)\)", duck).groups()
mine = (ours["consenting"], ours["sum"]["R"], ours["sum"]["F"], ours["sum"]["M"], ours["sum"]["L"], ours["sum"]["T"])
same = all(abs(float(a) - float(b)) <= 0.01 for a, b in zip(mine, totals))
print(f"{customers} customers, {tx} transactions, {ix} interactions; feature totals equal: {same}")
print()
print("| engine | median wall s | transactions/s | all rows/s | peak RSS MB |")
print("|---|---:|---:|---:|---:|")
for label, values in rows.items():
    wall = statistics.median(v[0] for v in values)
    peak = max(v[1] for v in values) / 1024
    print(f"| {label} | {wall:.2f} | {tx / wall / 1e6:.2f} M | {(tx + ix + customers) / wall / 1e6:.2f} M | {peak:.0f} |")
if not same:
    sys.exit("the two engines disagree")
PY
