#!/usr/bin/env bash
# Vertical-job benchmark: `demo --vertical`'s bank (CUSTOMERS customers) and
# fintech partner (60% of them and CUSTOMERS/2 of its own) as separate
# release processes with the coordinator over mutual TLS on loopback. MODE
# `overlap` runs the private set intersection only (overlap_only); `model`
# runs it with membership and then the joint model on secret shares.
# Prints a Markdown table: the intersection's and the model's wall time
# (from the journal's timestamps), group operations per core-second, bytes
# relayed per id, Newton steps, peak memory of every process.
#
# Usage: bench/vertical-job.sh [CUSTOMERS] [MODE]
set -euo pipefail
customers=${1:-100000}
mode=${2:-overlap}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-/tmp/fedseg-bench-vertical}
cargo build --release -q --manifest-path "$root/Cargo.toml" --bins
bin=${CARGO_TARGET_DIR:-$root/target}/release
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rm -rf "$work"
"$bin/fedseg-coordinator" demo --init-only --vertical --dir "$work" \
  --customers "$customers" --listen "127.0.0.1:$port" > /dev/null
cd "$work"
sed -i 's/phase_timeout_s = 10.0/phase_timeout_s = 600.0/' coordinator.toml
[ "$mode" = overlap ] && sed -i 's/overlap_only = false/overlap_only = true/' job.toml
. "$root/bench/run-consortium.sh"
"$bin/fedseg-coordinator" journal show --json --journal journal.log > journal.jsonl
python3 - "$work" "$job_s" "$(nproc)" <<'PY'
import json, os, sys
from datetime import datetime
work, job_s, cores = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
result = json.load(open(f"{work}/out/result.json"))["vertical"]
records = [json.loads(l) for l in open(f"{work}/journal.jsonl")]
t = lambda r: datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp()
first = next(r for r in records if r["entry"].get("step") == "hello")
done = next(r for r in records if r["entry"]["kind"] == "intersection_done")
end = next(r for r in records if r["entry"]["kind"] == "job_finished")
psi_s, model_s = t(done) - t(first), t(end) - t(done)
sizes = result["set_sizes"]
ids = sum(sizes.values())
relayed = sum(result["relayed_bytes"].values())
# Per id: hash to the group, mask, the partner's link, unmask (a/r), two
# comparison blindings: about 5 scalar multiplications and one hash.
ops = 6 * ids
peak, cpu = {}, 0.0
for name in os.listdir(work):
    if name.endswith(".time"):
        e, m, u, s = open(f"{work}/{name}").read().split()[-4:]
        peak[name[:-5]] = int(m) / 1024
        cpu += float(u) + float(s)
print(f"sets: {', '.join(f'{k} {v}' for k, v in sizes.items())}; intersection {result['intersection']}; "
      f"overlap_only {result['overlap_only']}; {cores} cores")
print()
print("| part | wall s | notes |")
print("|---|---:|---|")
print(f"| private set intersection (hello to verdict{'' if result['overlap_only'] else ' and reveal'}) | {psi_s:.1f} | "
      f"{ops / psi_s / cores:,.0f} group ops per core-second (about 6 per id), {relayed / ids:.0f} relayed bytes per id |")
if not result["overlap_only"]:
    c = result.get("contribution") or {}
    print(f"| joint model on secret shares | {model_s:.1f} | {result['steps']} Newton steps, converged {result['converged']}, "
          f"AUC joint {c.get('joint', {}).get('auc', float('nan')):.4f} vs bank alone "
          f"{c.get('label_holder_only', {}).get('auc', float('nan')):.4f} |")
print(f"| whole job (offer, data, both parts) | {job_s:.1f} | CPU of all processes {cpu:.0f} s |")
print()
print("peak RSS MB: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(peak.items()))
      + f"; journal {os.path.getsize(f'{work}/journal.log') / 1e6:.1f} MB")
PY
