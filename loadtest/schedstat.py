#!/usr/bin/env python3
"""Per-thread CPU time and run-queue wait of a running process.

Reads /proc/PID/task/*/schedstat twice, SECONDS apart: for each thread the
share of a core it ran, the share of a core it spent runnable but waiting
for a CPU, and its switches. On a saturated machine a thread that hands
work back and forth (the SQLite writer and the store's thread, one round
trip per statement) waits for a CPU at every hand-off, which no profile of
CPU samples shows.

    python3 loadtest/schedstat.py "$(pgrep -f 'crowdroom --database')" 15

Used in docs/BENCHMARKS.md (crowd, "fourth session").
"""
import os
import sys
import time


def snapshot(pid):
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as comm:
                name = comm.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as stat:
                ran, waited, switches = map(int, stat.read().split())
        except OSError:
            continue  # the thread ended meanwhile
        threads[tid] = (name, ran, waited, switches)
    return threads


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    pid, seconds = sys.argv[1], float(sys.argv[2])
    before = snapshot(pid)
    time.sleep(seconds)
    after = snapshot(pid)
    rows = []
    for tid, (name, ran, waited, switches) in after.items():
        if tid in before:
            _, ran0, waited0, switches0 = before[tid]
            rows.append((ran - ran0, waited - waited0, switches - switches0, tid, name))
    rows.sort(reverse=True)
    print(f"{'tid':>7} {'thread':16} {'ran %':>6} {'waited %':>9} {'switches/s':>10} {'µs waited per switch':>21}")
    for ran, waited, switches, tid, name in rows[:16]:
        print(f"{tid:>7} {name:16} {ran / seconds / 1e7:6.1f} {waited / seconds / 1e7:9.1f} "
              f"{switches / seconds:10.0f} {waited / max(switches, 1) / 1e3:21.1f}")


if __name__ == "__main__":
    main()
