#!/usr/bin/env bash
# Runs the crowd scenario against a release `crowdroom serve` on a fresh
# SQLite database, or a fresh PostgreSQL database with DATABASE=postgres://...
# (--demo for an owner token), with --server-pid so the
# server's CPU and memory are read from /proc, from SHARDS generator
# processes at once (each --shard i/SHARDS; from the second one on, bound to
# its own loopback source address), then keeps the server's /metrics.
#
#   loadtest/crowd.sh                                   # 200 rooms x 5 workers, 8 s median think, 60 s
#   CLIENTS=50 RAMP_UP=60s loadtest/crowd.sh            # 10,000 workers
#   THINK_MS=50 loadtest/crowd.sh --min-lead-time-ms 0  # stress: extra options go to every shard
#   DATABASE=postgres://postgres@127.0.0.1:5432 loadtest/crowd.sh  # on PostgreSQL
#
# PostgreSQL: DATABASE names the cluster (a database in the URL is ignored);
# the script creates a fresh database crowd_<seed>_<pid> on it and drops it
# at exit, and needs psql and the cluster on this machine (its processes are
# read from /proc). The generator gets the postmaster's PID (the parent of
# the cluster's checkpointer, found through pg_stat_activity) and the
# database's name: it sums utime + stime of the postmaster's children whose
# process title names this database (the backends serving the server) and of
# the cluster's background processes (WAL writer, checkpointer, background
# writer), following backends that come and go, and reports PostgreSQL's CPU
# per grant or answer beside the server's, and the two together. Backends of
# other databases (other users of a shared cluster) are not counted; the
# background processes are shared with them.
#
# Environment: ROOMS, CLIENTS (workers per room), THINK_MS (median think
# time), RAMP_UP, DURATION, SEED, SHARDS, PORT, SLO (default
# grant_p99_ms=20,ack_p99_ms=50), DATABASE (sqlite, the default, or a
# postgres:// URL as above), OUT (a folder to keep the JSON reports,
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
database=${DATABASE:-sqlite}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}

if [[ -n "${OUT:-}" ]]; then
  work=$OUT
  mkdir -p "$work"
else
  work=$(mktemp -d)
fi
server_pid=
pg_database=
cleanup() {
  [[ -z "$server_pid" ]] || kill "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  [[ -z "$pg_database" ]] ||
    psql "$pg_cluster/postgres" -qc "DROP DATABASE IF EXISTS $pg_database WITH (FORCE)" || true
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

store_options=()
case "$database" in
  sqlite)
    database_url="sqlite://$work/crowdroom.db"
    rm -f "$work"/crowdroom.db*
    ;;
  postgres://* | postgresql://*)
    # scheme://user@host:port, without the database and parameters.
    pg_cluster=$(sed -E 's#^(postgres(ql)?://[^/?]*).*#\1#' <<<"$database")
    name=crowd_${seed}_$$
    psql "$pg_cluster/postgres" -qc "CREATE DATABASE $name"
    pg_database=$name
    database_url="$pg_cluster/$pg_database"
    checkpointer=$(psql "$database_url" -Atc \
      "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
    postmaster=$(ps -o ppid= -p "$checkpointer" | tr -d ' ')
    [[ -n "$postmaster" ]] || {
      echo "PostgreSQL's processes are not on this machine (checkpointer PID '$checkpointer')" >&2
      exit 1
    }
    store_options=(--postgres-pid "$postmaster" --postgres-database "$pg_database")
    ;;
  *)
    echo "DATABASE is sqlite or a postgres:// URL, not '$database'" >&2
    exit 1
    ;;
esac

echo "== starting crowdroom on 127.0.0.1:$port (${database_url/#sqlite:\/\//})"
# No cap per address (every client is on loopback) nor per user (slot k of
# every room is the same user, lt-u<k>, so 200 rooms give each 200 sockets).
"$crowdroom_bin" --database "$database_url" serve --demo --addr "127.0.0.1:$port" \
  --max-connections-per-ip 0 --max-sockets-per-user 0 \
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
    --server-pid "$server_pid" "${store_options[@]}" --slo "$slo" --json "$work/shard$i.json" "$@" \
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
