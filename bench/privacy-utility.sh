#!/usr/bin/env bash
# What differential privacy costs: the demo consortium (SITES banks,
# CUSTOMERS customers in all) runs the same job once without DP and once per
# ε in 8 4 2 1 0.5 (δ = 1e-6), as release processes over mutual TLS on
# loopback. Each run is then measured on the pooled data, which only a
# benchmark can see: the inertia of its segmentation and the distance of its
# centroids from the run without DP (both in that run's clustering space),
# and the exact AUC of its model on the pooled holdout (from the banks'
# local scores.csv), next to the AUC the job released. Prints a Markdown
# table.
#
# Usage: bench/privacy-utility.sh [CUSTOMERS] [SITES]
set -euo pipefail
customers=${1:-60000}
sites=${2:-3}
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
for eps in inf 8 4 2 1 0.5; do
  {
    printf 'job_id = "eps-%s"\nseed = 42\nas_of = "2026-11-01"\nholdout_fraction = 0.2\nl2 = 1.0\n\n' "${eps/./p}"
    printf '[segmentation]\nk_min = 4\nk_max = 4\nrestarts = 2\nmax_iterations = 10\nmin_segment_size = 50\n\n'
    printf '[propensity]\nmax_iterations = 5\nscore_bins = 50\n'
    if [ "$eps" != inf ]; then printf '\n[privacy]\nepsilon = %s\ndelta = 1e-6\n' "$eps"; fi
  } > job.toml
  "$bin/fedseg-coordinator" run --config coordinator.toml --job job.toml \
    --out "out-$eps" > "coordinator-$eps.log" 2>&1 &
  coordinator=$!
  pids=()
  for dir in sites/*/; do
    "$bin/fedseg-participant" run --config "$dir/participant.toml" \
      > "$(basename "$dir")-$eps.log" 2>&1 &
    pids+=($!)
  done
  wait "$coordinator"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
done
python3 - "$work" <<'PY'
import csv, hashlib, json, math, os, sys

import duckdb

work = sys.argv[1]
as_of, seed, fraction = "2026-11-01", 42, 0.2
epsilons = ["inf", "8", "4", "2", "1", "0.5"]
con = duckdb.connect()
people = {}  # customer_id -> (rfmlt, converted)
for site in sorted(os.listdir(f"{work}/sites")):
    d = f"{work}/sites/{site}"
    rows = con.execute(f"""
    WITH
    c AS (SELECT * FROM read_csv('{d}/customers.csv', header = true,
            columns = {{'customer_id': 'VARCHAR', 'consent_marketing': 'BOOLEAN',
                       'converted': 'INTEGER', 'since': 'DATE'}})),
    t AS (SELECT customer_id, CAST(ts AS DATE) AS d, amount
          FROM read_csv('{d}/transactions.csv', header = true,
            columns = {{'customer_id': 'VARCHAR', 'ts': 'VARCHAR', 'amount': 'DOUBLE'}})
          WHERE CAST(ts AS DATE) <= DATE '{as_of}'),
    i AS (SELECT customer_id, CAST(ts AS DATE) AS d
          FROM read_csv('{d}/interactions.csv', header = true,
            columns = {{'customer_id': 'VARCHAR', 'ts': 'VARCHAR', 'kind': 'VARCHAR'}})
          WHERE CAST(ts AS DATE) <= DATE '{as_of}'),
    k AS (SELECT * FROM c WHERE consent_marketing),
    ta AS (SELECT customer_id, count(*) AS f, sum(amount) AS m, min(d) AS first, max(d) AS last
           FROM t GROUP BY customer_id),
    ia AS (SELECT customer_id, count(*) AS t FROM i GROUP BY customer_id),
    site AS (SELECT least(
               (SELECT min(d) FROM t SEMI JOIN k USING (customer_id)),
               (SELECT min(d) FROM i SEMI JOIN k USING (customer_id))) AS start)
    SELECT k.customer_id,
           CASE WHEN ta.last IS NOT NULL THEN date_diff('day', ta.last, DATE '{as_of}')
                ELSE date_diff('day', least(coalesce(k.since, site.start), DATE '{as_of}'), DATE '{as_of}') END,
           coalesce(ta.f, 0), coalesce(ta.m, 0),
           CASE WHEN ta.f >= 2 THEN date_diff('day', ta.first, ta.last) ELSE 0 END,
           coalesce(ia.t, 0), k.converted
    FROM k CROSS JOIN site LEFT JOIN ta USING (customer_id) LEFT JOIN ia USING (customer_id)
    """).fetchall()
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

results = {e: json.load(open(f"{work}/out-{e}/result.json")) for e in epsilons}
reference = space(results["inf"])
points = {cid: project(transform(v), reference) for cid, (v, _) in people.items()}
def centroids_in_reference(result):
    return [project(transform(c), reference) for c in result["segmentation"]["centroids_original"]]
ref_centroids = centroids_in_reference(results["inf"])

print(f"{len(people)} consenting customers in {len(os.listdir(work + '/sites'))} banks; k = 4, 2 restarts, "
      f"10 Lloyd steps, 5 Newton steps, 50 score bins, δ = 1e-6; distances in the clustering space of the run without DP")
print()
print("| ε (budget) | ε spent | releases | inertia / no-DP inertia | centroid error | AUC (exact, pooled holdout) | AUC (released) |")
print("|---|---:|---:|---:|---:|---:|---:|")
base_inertia = None
for e in epsilons:
    result = results[e]
    job = f"eps-{e.replace('.', 'p')}"
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
    base_inertia = base_inertia or inertia
    dp_centroids = centroids_in_reference(result)
    error = sum(min(math.dist(c, d) for d in dp_centroids) for c in ref_centroids) / len(ref_centroids)
    privacy = result["privacy"]
    spent = f"{privacy['epsilon']:.2f}" if privacy["dp"] else "–"
    released = result["propensity"]["evaluation"]["auc"]
    print(f"| {'∞ (no DP)' if e == 'inf' else e} | {spent} | {result['secure_sum_rounds']} | "
          f"{inertia / base_inertia:.3f} | {error:.3f} | {auc(scored):.4f} | {released:.4f} |")
PY
