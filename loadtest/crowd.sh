#!/usr/bin/env bash
# Runs the crowd scenario against a release `crowdroom serve` on a fresh
# SQLite database (--demo for an owner token), with --server-pid so the
# server's CPU and memory are read from /proc, from SHARDS generator
# processes at once (each --shard i/SHARDS; from the second one on, bound to
# its own loopback source address), then keeps the server's /metrics.
#
#   loadtest/crowd.sh                                   # 200 rooms x 5 workers, 8 s median think, 60 s
#   CLIENTS=50 RAMP_UP=60s loadtest/crowd.sh            # 10,000 workers
#   THINK_MS=50 loadtest/crowd.sh --min-lead-time-ms 0  # stress: extra options go to every shard
#
# Environment: ROOMS, CLIENTS (workers per room), THINK_MS (median think
# time), RAMP_UP, DURATION, SEED, SHARDS, PORT, SLO (default
# grant_p99_ms=20,ack_p99_ms=50), OUT (a folder to keep the JSON reports,
# the server log and /metrics in; default: a temporary folder, removed at
# exit), CARGO_TARGET_DIR, CROWDROOM_BIN and LOADTEST_BIN (use these
# binaries instead of building them).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
rooms=${ROOMS:-200}
clients=${CLIENTS:-5}
think_ms=${THINK_MS:-8000}
ramp_up=${RAMP_UP:-20s}
duration=${DURATION:-60s}
seed=${SEED:-$(date +%s)}
shards=${SHARDS:-1}
port=${PORT:-18710}
slo=${SLO:-grant_p99_ms=20,ack_p99_ms=50}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}

if [[ -n "${OUT:-}" ]]; then
  work=$OUT
  mkdir -p "$work"
else
  work=$(mktemp -d)
fi
server_pid=
cleanup() {
  [[ -z "$server_pid" ]] || kill "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  [[ -n "${OUT:-}" ]] || rm -rf "$work"
}
trap cleanup EXIT

crowdroom_bin=${CROWDROOM_BIN:-}
loadtest_bin=${LOADTEST_BIN:-}
packages=()
[[ -n "$crowdroom_bin" ]] || packages+=(-p crowdroom)
[[ -n "$loadtest_bin" ]] || packages+=(-p crowdroom-loadtest)
if (( ${#packages[@]} )); then
  echo "== building (release)"
  (cd "$root" && cargo build --release "${packages[@]}")
fi
crowdroom_bin=${crowdroom_bin:-$CARGO_TARGET_DIR/release/crowdroom}
loadtest_bin=${loadtest_bin:-$CARGO_TARGET_DIR/release/crowdroom-loadtest}

echo "== starting crowdroom on 127.0.0.1:$port ($work/crowdroom.db)"
rm -f "$work"/crowdroom.db*
"$crowdroom_bin" --database "sqlite://$work/crowdroom.db" serve --demo --addr "127.0.0.1:$port" \
  --max-connections-per-ip 0 \
  >"$work/crowdroom.log" 2>&1 &
server_pid=$!
for _ in $(seq 300); do
  grep -q "crowdroom listening on" "$work/crowdroom.log" 2>/dev/null && break
  sleep 0.1
done
# Lines look like: demo owner     olivia ws://ADDR/rooms/demo/live?token=crt_...
token=$(grep -m1 '^demo owner' "$work/crowdroom.log" | grep -o 'crt_[0-9a-f]*')

echo "== crowd: $rooms rooms x $clients workers, think median $think_ms ms, $duration (seed $seed, $shards shard(s))"
shard_pids=()
for ((i = 0; i < shards; i++)); do
  sources=()
  (( i == 0 )) || sources=(--source-addrs "127.0.0.$((i + 1))")
  "$loadtest_bin" crowd --url "ws://127.0.0.1:$port" --token "$token" --rooms "$rooms" \
    --clients-per-room "$clients" --think-median-ms "$think_ms" --ramp-up "$ramp_up" \
    --duration "$duration" --seed "$seed" --shard "$i/$shards" "${sources[@]}" \
    --server-pid "$server_pid" --slo "$slo" --json "$work/shard$i.json" "$@" \
    >"$work/shard$i.txt" 2>&1 &
  shard_pids+=($!)
done
status=0
for i in "${!shard_pids[@]}"; do
  wait "${shard_pids[$i]}" || status=$?
  cat "$work/shard$i.txt"
done

# The server's own view (commit batches and latency) for the record.
curl -fsS "http://127.0.0.1:$port/metrics" >"$work/metrics.txt" 2>/dev/null || true
[[ -z "${OUT:-}" ]] || echo "reports, logs and /metrics kept in $work"
exit "$status"
