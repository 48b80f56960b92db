#!/usr/bin/env bash
# Runs the same coedit load against a release `crowdroom serve` (fresh SQLite
# database, --demo for an owner token), the stock npm @y/websocket-server and
# the stock npm @hocuspocus/server (both in memory), one after the other on
# this machine, with --server-pid so each server's CPU and memory are read
# from /proc, then prints the three reports side by side.
#
#   loadtest/compare.sh                      # 200 rooms x 5 clients x 1 edit/s for 60 s
#   ROOMS=20 DURATION=10s loadtest/compare.sh
#   loadtest/compare.sh --value-size 64      # extra options go to both runs
#
# Environment: ROOMS, CLIENTS (per room), RATE (edits/s per client), RAMP_UP,
# DURATION, SEED, CROWDROOM_PORT, YWS_PORT, HOCUSPOCUS_PORT, OUT (a folder to keep the JSON
# reports and server logs in; default: a temporary folder, removed at exit),
# CARGO_TARGET_DIR, CROWDROOM_BIN and LOADTEST_BIN (use these binaries
# instead of building them, e.g. a server built from a given commit).
#
# Hocuspocus is not wire-compatible with y-websocket clients (every frame is
# prefixed with the document name, and a connection authenticates before it
# syncs), so the generator speaks its dialect there: --protocol hocuspocus.
# The peer (peers/hocuspocus.mjs) accepts any token.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
rooms=${ROOMS:-200}
clients=${CLIENTS:-5}
rate=${RATE:-1}
ramp_up=${RAMP_UP:-10s}
duration=${DURATION:-60s}
seed=${SEED:-$(date +%s)}
crowdroom_port=${CROWDROOM_PORT:-18080}
yws_port=${YWS_PORT:-11234}
hocuspocus_port=${HOCUSPOCUS_PORT:-11235}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}

if [[ -n "${OUT:-}" ]]; then
  work=$OUT
  mkdir -p "$work"
else
  work=$(mktemp -d)
fi
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n "${OUT:-}" ]] || rm -rf "$work"
}
trap cleanup EXIT

# Waits until FILE contains PATTERN (at most 30 s).
wait_for() {
  local file=$1 pattern=$2
  for _ in $(seq 300); do
    grep -q -- "$pattern" "$file" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "compare.sh: timed out waiting for '$pattern' in $file" >&2
  cat "$file" >&2
  return 1
}

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

echo "== installing the npm peers"
(cd "$here/peers" && npm ci --no-audit --no-fund --loglevel=error)

echo "== starting crowdroom on 127.0.0.1:$crowdroom_port"
"$crowdroom_bin" --database "sqlite://$work/crowdroom.db" serve --demo --addr "127.0.0.1:$crowdroom_port" \
  --max-connections-per-ip 0 --max-sockets-per-user 0 \
  >"$work/crowdroom.log" 2>&1 &
crowdroom_pid=$!
pids+=("$crowdroom_pid")
wait_for "$work/crowdroom.log" "crowdroom listening on"
# Lines look like: demo owner     olivia ws://ADDR/rooms/demo/live?token=crt_...
token=$(grep -m1 '^demo owner' "$work/crowdroom.log" | grep -o 'crt_[0-9a-f]*')

echo "== starting @y/websocket-server on 127.0.0.1:$yws_port"
node "$here/peers/server.mjs" "$yws_port" >"$work/y-websocket.log" 2>&1 &
yws_pid=$!
pids+=("$yws_pid")
wait_for "$work/y-websocket.log" "listening on"

echo "== starting @hocuspocus/server on 127.0.0.1:$hocuspocus_port"
node "$here/peers/hocuspocus.mjs" "$hocuspocus_port" >"$work/hocuspocus.log" 2>&1 &
hocuspocus_pid=$!
pids+=("$hocuspocus_pid")
wait_for "$work/hocuspocus.log" "listening on"

common=(coedit --rooms "$rooms" --clients-per-room "$clients" --rate "$rate" --ramp-up "$ramp_up"
  --duration "$duration" --seed "$seed")

echo "== coedit against crowdroom"
"$loadtest_bin" "${common[@]}" --url "ws://127.0.0.1:$crowdroom_port" --token "$token" \
  --server-pid "$crowdroom_pid" --json "$work/crowdroom.json" "$@" || true

# The server's own view (group-commit batch sizes and latency) for the record.
curl -fsS "http://127.0.0.1:$crowdroom_port/metrics" >"$work/crowdroom-metrics.txt" 2>/dev/null || true

echo "== coedit against @y/websocket-server"
"$loadtest_bin" "${common[@]}" --url "ws://127.0.0.1:$yws_port" --protocol y-websocket \
  --server-pid "$yws_pid" --json "$work/y-websocket.json" "$@" || true

echo "== coedit against @hocuspocus/server"
"$loadtest_bin" "${common[@]}" --url "ws://127.0.0.1:$hocuspocus_port" --protocol hocuspocus \
  --token loadtest --server-pid "$hocuspocus_pid" --json "$work/hocuspocus.json" "$@" || true

echo
echo "== $rooms rooms x $clients clients x $rate edit/s per client, $duration (seed $seed)"
node "$here/peers/table.mjs" "crowdroom=$work/crowdroom.json" "@y/websocket-server 0.1.1=$work/y-websocket.json" \
  "@hocuspocus/server 3.4.4=$work/hocuspocus.json"
[[ -z "${OUT:-}" ]] || echo "reports and logs kept in $work"
