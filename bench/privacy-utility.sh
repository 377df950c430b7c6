#!/usr/bin/env bash
# What differential privacy costs: the demo consortium (SITES banks,
# CUSTOMERS customers in all) runs the same job once without DP and once per
# ε in 8 4 2 1 0.5 (δ = 1e-6), as release processes over mutual TLS on
# loopback. Each run is then measured on the pooled data, which only a
# benchmark can see: the inertia of its segmentation and the distance of its
# centroids from the run without DP (both in that run's clustering space),
# and the exact AUC of its model on the pooled holdout (from the banks'
# local scores.csv), next to the AUC the job released. The noise differs
# every run (it comes from the OS), so each ε runs REPEATS times (default 3)
# and the table gives the median and the worst run. Prints a Markdown table.
#
# Usage: [REPEATS=3] bench/privacy-utility.sh [CUSTOMERS] [SITES]
set -euo pipefail
customers=${1:-60000}
sites=${2:-3}
repeats=${REPEATS:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-/tmp/fedseg-bench-privacy}
cargo build --release -q --manifest-path "$root/Cargo.toml" --bins
bin=${CARGO_TARGET_DIR:-$root/target}/release
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rm -rf "$work"
"$bin/fedseg-coordinator" demo --init-only --dir "$work" --sites "$sites" \
  --customers "$customers" --listen "127.0.0.1:$port" > /dev/null
cd "$work"
sed -i 's/phase_timeout_s = 10.0/phase_timeout_s = 120.0/' coordinator.toml
for run in inf-1 $(for eps in 8 4 2 1 0.5; do seq -f "$eps-%g" 1 "$repeats"; done); do
  eps=${run%-*}
  {
    printf 'job_id = "eps-%s"\nseed = 42\nas_of = "2026-11-01"\nholdout_fraction = 0.2\nl2 = 1.0\n\n' "${run/./p}"
    printf '[segmentation]\nk_min = 4\nk_max = 4\nrestarts = 2\nmax_iterations = 10\nmin_segment_size = 50\n\n'
    printf '[propensity]\nmax_iterations = 5\nscore_bins = 50\n'
    if [ "$eps" != inf ]; then printf '\n[privacy]\nepsilon = %s\ndelta = 1e-6\n' "$eps"; fi
  } > job.toml
  "$bin/fedseg-coordinator" run --config coordinator.toml --job job.toml \
    --out "out-$run" > "coordinator-$run.log" 2>&1 &
  coordinator=$!
  pids=()
  for dir in sites/*/; do
    "$bin/fedseg-participant" run --config "$dir/participant.toml" \
      > "$(basename "$dir")-$run.log" 2>&1 &
    pids+=($!)
  done
  wait "$coordinator"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
done
python3 - "$work" "$root/bench" "$repeats" <<'PY'
import csv, hashlib, json, math, os, sys

import duckdb

work = sys.argv[1]
sys.path.insert(0, sys.argv[2])
repeats = int(sys.argv[3])
from rfmlt_duckdb import features_sql
as_of, seed, fraction = "2026-11-01", 42, 0.2
epsilons = ["inf", "8", "4", "2", "1", "0.5"]
con = duckdb.connect()
people = {}  # customer_id -> (rfmlt, converted)
for site in sorted(os.listdir(f"{work}/sites")):
    d = f"{work}/sites/{site}"
    rows = con.execute(features_sql(d, as_of)).fetchall()
    for cid, r, f, m, l, t, y in rows:
        people[cid] = ((r, f, m, l, t), y)

def transform(v):
    r, f, m, l, t = v
    return [r, math.log1p(f), math.log1p(m), l, t]

def space(result):
    st, seg = result["standardization"], result["segmentation"]
    return st["mean"], st["std"], seg["space_scale"], st["clip_lo"], st["clip_hi"]

def project(x, sp):
    mean, std, scale, lo, hi = sp
    return [((min(max(x[j], lo[j]), hi[j]) - mean[j]) / std[j] * scale[j]) if std[j] > 0 else 0.0
            for j in range(5)]

def holdout(cid):
    h = hashlib.sha256(seed.to_bytes(8, "little") + cid.encode()).digest()
    return int.from_bytes(h[:8], "little") / 2**64 < fraction

def auc(pairs):
    pairs.sort()
    pos = sum(y for _, y in pairs); neg = len(pairs) - pos
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        rank = (i + j + 1) / 2
        rank_sum += rank * sum(y for _, y in pairs[i:j])
        i = j
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)

runs = {"inf": ["inf-1"]}
runs.update({e: [f"{e}-{r}" for r in range(1, repeats + 1)] for e in epsilons[1:]})
results = {run: json.load(open(f"{work}/out-{run}/result.json")) for rs in runs.values() for run in rs}
reference = space(results["inf-1"])
points = {cid: project(transform(v), reference) for cid, (v, _) in people.items()}
def centroids_in_reference(result):
    return [project(transform(c), reference) for c in result["segmentation"]["centroids_original"]]
ref_centroids = centroids_in_reference(results["inf-1"])

def measure(run):
    result = results[run]
    job = f"eps-{run.replace('.', 'p')}"
    assignment, scored = {}, []
    for site in sorted(os.listdir(f"{work}/sites")):
        with open(f"{work}/sites/{site}/out/{job}/scores.csv") as fh:
            for row in csv.DictReader(fh):
                cid = row["customer_id"]
                assignment[cid] = int(row["segment"])
                if holdout(cid):
                    scored.append((float(row["score"]), people[cid][1]))
    # Inertia of the run's partition about its own members' means.
    k = max(assignment.values()) + 1
    sums = [[0.0] * 5 for _ in range(k)]; counts = [0] * k; total_sq = 0.0
    for cid, s in assignment.items():
        p = points[cid]; counts[s] += 1
        for j in range(5):
            sums[s][j] += p[j]; total_sq += p[j] * p[j]
    inertia = total_sq - sum(sum(x * x for x in sums[s]) / counts[s] for s in range(k) if counts[s])
    dp_centroids = centroids_in_reference(result)
    error = sum(min(math.dist(c, d) for d in dp_centroids) for c in ref_centroids) / len(ref_centroids)
    return {"spent": result["privacy"]["epsilon"] or 0.0, "inertia": inertia, "error": error,
            "auc": auc(scored), "released": result["propensity"]["evaluation"]["auc"]}

measured = {e: [measure(run) for run in rs] for e, rs in runs.items()}
base = measured["inf"][0]["inertia"]
print(f"{len(people)} consenting customers in {len(os.listdir(work + '/sites'))} banks; k = 4, 2 restarts, "
      f"10 Lloyd steps, 5 Newton steps, 50 score bins, 21 releases, δ = 1e-6; distances in the clustering space "
      f"of the run without DP; median (worst) of {repeats} runs per ε")
print()
print("| ε (budget) | ε spent | inertia / no-DP inertia | centroid error | AUC (exact, pooled holdout) | AUC (released) |")
print("|---|---:|---:|---:|---:|---:|")
def cell(e, key, fmt, worst, scale=1.0):
    values = sorted(m[key] / scale for m in measured[e])
    median = values[len(values) // 2]
    if len(values) == 1:
        return format(median, fmt)
    return f"{median:{fmt}} ({worst(values):{fmt}})"
for e in epsilons:
    spent = "–" if e == "inf" else cell(e, "spent", ".2f", max)
    print(f"| {'∞ (no DP)' if e == 'inf' else e} | {spent} | {cell(e, 'inertia', '.3f', max, base)} | "
          f"{cell(e, 'error', '.3f', max)} | {cell(e, 'auc', '.4f', min)} | {cell(e, 'released', '.4f', min)} |")
PY
