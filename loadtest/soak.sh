#!/usr/bin/env bash
# Memory after the load is gone: runs a crowd and co-editing clients at
# once against a release `crowdroom serve` on a fresh SQLite database,
# waits until every room, document and connection has unloaded (/metrics
# shows 0 of each), and prints the server's resident memory at the start,
# at the end of the load, and once unloaded.
#
#   loadtest/soak.sh                          # 500 crowd workers + 500 co-editors, 300 s
#   DURATION=120s loadtest/soak.sh
#   HEAPTRACK=1 OUT=/tmp/soak loadtest/soak.sh  # the server under heaptrack (Debian's heaptrack)
#
# Environment: ROOMS (per scenario, default 100), CLIENTS (per room,
# default 5), RATE (edits per second per co-editor, default 1), DURATION,
# SEED, PORT, OUT (keep the logs there), CARGO_TARGET_DIR, CROWDROOM_BIN,
# LOADTEST_BIN, ALLOCATOR_ENV (extra environment for the server, e.g.
# MALLOC_ARENA_MAX=2), HEAPTRACK, SETTLE (seconds to wait once unloaded
# before the last reading, default 45).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
rooms=${ROOMS:-100}
clients=${CLIENTS:-5}
rate=${RATE:-1}
duration=${DURATION:-300s}
seed=${SEED:-$(date +%s)}
port=${PORT:-18720}
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

rss_mib() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
metric() { curl -fsS "http://127.0.0.1:$port/metrics" | awk -v name="crowdroom_$1" '$1 == name { sum += $2 } END { print sum + 0 }'; }
connections() { curl -fsS "http://127.0.0.1:$port/metrics" | awk '$1 ~ /^crowdroom_connections[{ ]/ { sum += $2 } END { print sum + 0 }'; }

echo "== starting crowdroom on 127.0.0.1:$port ($work/crowdroom.db)"
rm -f "$work"/crowdroom.db*
launcher=()
[[ -z "${HEAPTRACK:-}" ]] || launcher=(heaptrack -o "$work/heaptrack")
env ${ALLOCATOR_ENV:-} "${launcher[@]}" "$crowdroom_bin" --database "sqlite://$work/crowdroom.db" \
  serve --demo --addr "127.0.0.1:$port" --max-connections-per-ip 0 --max-sockets-per-user 0 \
  --doc-idle 5s --room-idle 5s >"$work/crowdroom.log" 2>&1 &
server_pid=$!
for _ in $(seq 300); do
  grep -q "crowdroom listening on" "$work/crowdroom.log" 2>/dev/null && break
  sleep 0.1
done
# Under heaptrack the launcher's child is the server.
pid=$(pgrep -n -f "$crowdroom_bin --database sqlite://$work/crowdroom.db" || echo "$server_pid")
token=$(grep -m1 '^demo owner' "$work/crowdroom.log" | grep -o 'crt_[0-9a-f]*')
start=$(rss_mib "$pid")

echo "== soak: $rooms rooms x $clients crowd workers and $rooms rooms x $clients co-editors at $rate/s, $duration (seed $seed)"
"$loadtest_bin" crowd --url "ws://127.0.0.1:$port" --token "$token" --rooms "$rooms" \
  --clients-per-room "$clients" --duration "$duration" --seed "$seed" --ramp-up 10s \
  --server-pid "$pid" --json "$work/crowd.json" >"$work/crowd.txt" 2>&1 &
crowd=$!
"$loadtest_bin" coedit --url "ws://127.0.0.1:$port" --token "$token" --rooms "$rooms" \
  --clients-per-room "$clients" --rate "$rate" --duration "$duration" --seed "$((seed + 1))" --ramp-up 10s \
  --server-pid "$pid" --json "$work/coedit.json" >"$work/coedit.txt" 2>&1 &
coedit=$!
peak=0
while kill -0 "$crowd" 2>/dev/null || kill -0 "$coedit" 2>/dev/null; do
  now=$(rss_mib "$pid")
  peak=$(awk -v a="$peak" -v b="$now" 'BEGIN { print (b > a) ? b : a }')
  sleep 1
done
wait "$crowd" || echo "(crowd exited non-zero; see $work/crowd.txt)"
wait "$coedit" || echo "(coedit exited non-zero; see $work/coedit.txt)"
loaded=$(rss_mib "$pid")

echo "== waiting for every room, document and connection to unload"
for _ in $(seq 180); do
  if [[ "$(metric rooms_loaded)" == 0 && "$(metric docs_loaded)" == 0 && "$(connections)" == 0 ]]; then
    break
  fi
  sleep 1
done
# Then what outlives the load by a little (idle pooled connections close
# 30 s after their last use).
sleep "${SETTLE:-45}"
unloaded=$(rss_mib "$pid")
# Where the resident memory is, largest mappings first (kept in $work).
awk '/^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "") ? "[anon]" : $6 } /^Rss:/ { rss[name] += $2; count[name]++ }
     END { for (n in rss) printf "%8d KiB %5d mappings %s\n", rss[n], count[n], n }' "/proc/$pid/smaps" \
  | sort -rn | head -n 12 >"$work/smaps.txt" || true
ls "/proc/$pid/task" | wc -l >"$work/threads.txt" || true
printf 'rooms %s, docs %s, connections %s\n' "$(metric rooms_loaded)" "$(metric docs_loaded)" "$(connections)"
printf 'server RSS: start %s MiB, peak %s MiB, end of load %s MiB, unloaded %s MiB\n' \
  "$start" "$peak" "$loaded" "$unloaded"
tail -n 3 "$work/crowd.txt" "$work/coedit.txt" || true
if [[ -n "${HEAPTRACK:-}" ]]; then
  # SIGKILL, so heaptrack's record ends with what was live once unloaded
  # (`heaptrack_print --print-leaks` lists it by allocation site).
  kill -9 "$pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
  echo "heaptrack record: $(ls "$work"/heaptrack*)"
fi
