# Sourced by the whole-job benchmarks: runs job.toml in the current
# consortium directory with `fedseg-coordinator run` and one participant per
# site, each a release process under /usr/bin/time (`NAME.time`: wall s,
# peak RSS KB, user s, system s; `NAME.log`), stops the participants when
# the job ends and sets `job_s` to the job's wall time. Needs `$bin`.
started=$(date +%s.%N)
/usr/bin/time -f "%e %M %U %S" -o coordinator.time "$bin/fedseg-coordinator" run \
  --config coordinator.toml --job job.toml --out out > coordinator.log 2>&1 &
coordinator=$!
pids=()
for dir in sites/*/; do
  site=$(basename "$dir")
  /usr/bin/time -f "%e %M %U %S" -o "$site.time" "$bin/fedseg-participant" run \
    --config "$dir/participant.toml" > "$site.log" 2>&1 &
  pids+=($!)
done
wait "$coordinator"
job_s=$(echo "$(date +%s.%N) - $started" | bc)
for pid in "${pids[@]}"; do pkill -TERM -P "$pid" || true; done
wait || true
