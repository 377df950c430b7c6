#!/usr/bin/env bash
# A fault campaign on the demo consortium: RUNS runs of the demo job (three
# banks, segmentation and propensity), each with one SIGKILL at a random
# moment of a random process (the coordinator or one participant), which is
# then restarted as an operator would (the coordinator with the same `run`
# command, which resumes from its journal; the participant with `run`).
# Every run must end with the job finished, `journal verify` passing (every
# record, signature and co-signature, the job's end present), `ledger
# verify` passing at every bank, and the uninterrupted run's result.json
# (byte for byte, or but for round numbers when a round in flight at a
# coordinator crash ran again under the next number), unless a bank missed a round while it was down, in which
# case result.json must name it under `dropped_out` (a sum without a bank's
# data cannot equal the sum with it).
#
#   tests/faults/campaign.sh RUNS [SEED]       e.g. tests/faults/campaign.sh 20 1
#
# BIN names the directory of the binaries (default target/debug; build them
# first with `cargo build -p fedseg-coordinator -p fedseg-participant`).
# Prints one line per run and a summary; keeps everything under $WORK
# (printed) for inspection. Exit status 1 if any run failed a check.
set -uo pipefail
cd "$(dirname "$0")/../.."
RUNS="${1:?usage: tests/faults/campaign.sh RUNS [SEED]}"
RANDOM="${2:-1}"
BIN="$(realpath "${BIN:-target/debug}")"
C="$BIN/fedseg-coordinator"
P="$BIN/fedseg-participant"
WORK="$(mktemp -d /tmp/fedseg-faults.XXXXXX)"
PORT=$((20000 + RANDOM % 20000))
echo "campaign: $RUNS runs, work in $WORK, binaries in $BIN"

"$C" demo --init-only --dir "$WORK/base" --sites 3 --customers 600 \
  --listen "127.0.0.1:$PORT" > /dev/null || exit 1
SITES=(bank-a bank-b bank-c)

declare -A PIDS
start_participant() { # dir site n
  "$P" run --config "$1/sites/$2/participant.toml" 2> "$1/logs/$2-$3.log" &
  PIDS[$2]=$!
}
start_coordinator() { # dir n
  ( cd "$1" && exec "$C" run --config coordinator.toml --job job.toml --out out ) \
    > "$1/logs/coordinator-$2.out" 2> "$1/logs/coordinator-$2.log" &
  PIDS[coordinator]=$!
}
stop_participants() {
  for s in "${SITES[@]}"; do kill -TERM "${PIDS[$s]}" 2> /dev/null; done
  for s in "${SITES[@]}"; do wait "${PIDS[$s]}" 2> /dev/null; done
}
now_ms() { date +%s%3N; }

# The uninterrupted run: its result is the reference, its time the range
# the faults are drawn from.
cp -r "$WORK/base" "$WORK/reference"
mkdir -p "$WORK/reference/logs"
for s in "${SITES[@]}"; do start_participant "$WORK/reference" "$s" 0; done
t0=$(now_ms)
start_coordinator "$WORK/reference" 0
wait "${PIDS[coordinator]}" || { echo "the reference run failed"; exit 1; }
JOB_MS=$(( $(now_ms) - t0 ))
stop_participants
REFERENCE="$WORK/reference/out/result.json"
echo "reference run: ${JOB_MS} ms"

injected=0; survived=0; same=0; explained=0; coordinator_kills=0; participant_kills=0
in_flight=0; not_accepted=0; after_end=0; renumbered=0; survived_faults=0
printf 'run\tvictim\tat_ms\tfaulted\tjob_done\tjournal\tledgers\tresult\n' > "$WORK/campaign.tsv"
for run in $(seq 1 "$RUNS"); do
  dir="$WORK/run-$run"
  cp -r "$WORK/base" "$dir"
  mkdir -p "$dir/logs"
  pick=$((RANDOM % 2))
  if [ "$pick" = 0 ]; then victim=coordinator; else victim=${SITES[$((RANDOM % 3))]}; fi
  # Within the first 70% of the reference run's time, so that the fault
  # lands before the job's end even when this run goes faster.
  at=$(( 100 + (RANDOM * 32768 + RANDOM) % (JOB_MS * 7 / 10) ))
  for s in "${SITES[@]}"; do start_participant "$dir" "$s" 0; done
  start_coordinator "$dir" 0
  sleep "$(printf '%d.%03d' $((at / 1000)) $((at % 1000)))"
  faulted=no
  if kill -0 "${PIDS[coordinator]}" 2> /dev/null; then
    faulted=yes
    kill -KILL "${PIDS[$victim]}"
    wait "${PIDS[$victim]}" 2> /dev/null
    injected=$((injected + 1))
    if [ "$victim" = coordinator ]; then
      coordinator_kills=$((coordinator_kills + 1))
      start_coordinator "$dir" 1
    else
      participant_kills=$((participant_kills + 1))
      sleep "0.$((RANDOM % 10))"
      start_participant "$dir" "$victim" 1
    fi
  else
    after_end=$((after_end + 1))
  fi
  # The job to its end (10 minutes at most).
  done_ok=no
  for _ in $(seq 1 600); do
    if ! kill -0 "${PIDS[coordinator]}" 2> /dev/null; then break; fi
    sleep 1
  done
  wait "${PIDS[coordinator]}" 2> /dev/null && done_ok=yes
  journal=fail
  "$C" journal verify --journal "$dir/journal.log" --ca "$dir/pki/ca.crt" \
    > "$dir/logs/journal-verify.txt" 2>&1 && journal=ok
  ledgers=ok
  for s in "${SITES[@]}"; do
    out="$dir/logs/ledger-verify-$s.txt"
    "$P" ledger verify --config "$dir/sites/$s/participant.toml" --journal "$dir/journal.log" \
      > "$out" 2>&1 || ledgers=fail
    in_flight=$((in_flight + $(grep -c "in flight at a coordinator crash" "$out")))
    not_accepted=$((not_accepted + $(grep -c "not accepted by the coordinator\|released after this site dropped out" "$out")))
  done
  stop_participants
  result=fail
  if cmp -s "$REFERENCE" "$dir/out/result.json"; then
    result=same; same=$((same + 1))
  elif python3 - "$REFERENCE" "$dir/out/result.json" <<'EOF'
# Equal but for round numbers: a round in flight when the coordinator died
# runs again under the next number (the journal keeps the first one's
# records), so the later rounds are numbered one up.
import json, sys
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k != "round"}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v
a, b = (strip(json.load(open(f))) for f in sys.argv[1:3])
sys.exit(0 if a == b else 1)
EOF
  then
    result=same-renumbered; same=$((same + 1)); renumbered=$((renumbered + 1))
  elif [ "$victim" != coordinator ] && [ -f "$dir/out/result.json" ] && python3 - "$dir/out/result.json" "$victim" <<'EOF'
import json, sys
result = json.load(open(sys.argv[1]))
sys.exit(0 if any(d["participant"] == sys.argv[2] for d in result.get("dropped_out", [])) else 1)
EOF
  then
    result=explained; explained=$((explained + 1))
  fi
  ok=no
  if [ "$done_ok" = yes ] && [ "$journal" = ok ] && [ "$ledgers" = ok ] && [ "$result" != fail ]; then
    ok=yes; survived=$((survived + 1))
    [ "$faulted" = yes ] && survived_faults=$((survived_faults + 1))
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$victim" "$at" "$faulted" "$done_ok" "$journal" "$ledgers" "$result" \
    | tee -a "$WORK/campaign.tsv"
done
echo "summary: runs $RUNS, faults injected $injected (coordinator $coordinator_kills, participants $participant_kills; $after_end runs ended before their fault), runs passing every check $survived (of them with a fault $survived_faults), same result $same ($renumbered with later rounds renumbered), result differs with the dropped bank named $explained; ledger lines reported in flight at a crash $in_flight, not accepted or released after a drop $not_accepted"
[ "$survived" -eq "$RUNS" ] || exit 1
