#!/usr/bin/env bash
# Whole-job benchmark: the demo consortium's segmentation (census,
# standardisation, batched k-means over k = 3..6 with 4 restarts each,
# merging, profiles) for SITES banks holding CUSTOMERS customers in all, as
# separate release processes over mutual TLS on loopback. Prints a Markdown
# table: wall time, secure-sum rounds, time per round, peak memory.
#
# Usage: bench/segmentation-job.sh [CUSTOMERS] [SITES]
#   JOB_EXTRA='[propensity]\noptimizer = "fedprox"' appends TOML to job.toml.
set -euo pipefail
customers=${1:-1000000}
sites=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-/tmp/fedseg-bench-job}
cargo build --release -q --manifest-path "$root/Cargo.toml" --bins
bin=${CARGO_TARGET_DIR:-$root/target}/release
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rm -rf "$work"
started=$(date +%s.%N)
"$bin/fedseg-coordinator" demo --init-only --dir "$work" --sites "$sites" \
  --customers "$customers" --listen "127.0.0.1:$port" > /dev/null
init_s=$(echo "$(date +%s.%N) - $started" | bc)
cd "$work"
sed -i 's/phase_timeout_s = 10.0/phase_timeout_s = 120.0/' coordinator.toml
printf '%b\n' "${JOB_EXTRA:-}" >> job.toml
. "$root/bench/run-consortium.sh"
python3 - "$work" "$init_s" "$job_s" <<'PY'
import json, os, re, sys
work, init_s, job_s = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
result = json.load(open(f"{work}/out/result.json"))
rounds = json.load(open(f"{work}/out/rounds.json"))["rounds"]
seg = result["segmentation"]
kinds = {}
for r in rounds:
    kind = re.sub(r" (step|round) \d+.*", "", r["purpose"])
    kinds.setdefault(kind, []).append(r["duration_s"])
peak = {}
for name in os.listdir(work):
    if name.endswith(".time"):
        peak[name[:-5]] = int(open(f"{work}/{name}").read().split()[1]) / 1024
print(f"{len(result['cohort'])} sites, {int(result['standardization']['count'])} consenting customers "
      f"(of {int(result['census']['customers'] + result['census']['excluded_no_consent'])}), "
      f"{int(result['census']['transactions'])} transactions; chosen k = {seg['k']}")
print()
print("| step | rounds | total s | mean s per round |")
print("|---|---:|---:|---:|")
for kind, durations in kinds.items():
    print(f"| {kind} | {len(durations)} | {sum(durations):.2f} | {sum(durations) / len(durations):.3f} |")
print(f"| **whole job** (offer, feature extraction, all rounds) | {len(rounds)} | {job_s:.2f} | |")
p = result.get("propensity")
if p:
    e = p.get("evaluation") or {}
    print()
    print(f"propensity ({p['optimizer']}): {p['iterations']} iterations, converged {p['converged']}, "
          f"objective {p['objective']:.3f} on {int(p['training_count'])} training customers; "
          f"holdout AUC {e.get('auc', float('nan')):.4f}, log-loss {e.get('log_loss', float('nan')):.4f}, "
          f"top-decile lift {e.get('top_decile_lift', float('nan')):.2f}")
print()
print(f"demo --init-only (PKI + synthetic data): {init_s:.1f} s; peak RSS MB: "
      + ", ".join(f"{k} {v:.0f}" for k, v in sorted(peak.items())))
PY
