#!/usr/bin/env python3
"""Which tables and indexes a live SQLite database's commits write.

Every commit in WAL mode appends one frame (a 4 KiB page) per page it
changed, so the frames per commit, by the b-tree that owns each page, say
what a write costs the one writer: its `pwrite`s, the WAL checksums, the
`fsync` and the checkpoint that copies the pages back. This reads the WAL
of a running server `ROUNDS` times, two seconds apart, keeps the complete
commits of its current generation (frames whose salts match the header; a
checkpoint restarts the WAL, so one read holds a few commits), then maps
each page to its b-tree with the `dbstat` virtual table on a copy of the
database and its WAL.

    python3 loadtest/wal_census.py /tmp/crowd/crowdroom.db 25

Used in docs/BENCHMARKS.md (crowd, "fourth session"); see there for a run.
"""
import collections
import os
import shutil
import sqlite3
import struct
import sys
import tempfile
import time


def commits_in(wal):
    """The page numbers of each complete commit in the WAL's current generation."""
    if len(wal) < 32:
        return []
    _magic, _version, page_size, _seq, salt1, salt2 = struct.unpack(">IIIIII", wal[:24])
    frame = 24 + page_size
    commits, pages = [], []
    for offset in range(32, len(wal) - frame + 1, frame):
        page, commit_size, s1, s2 = struct.unpack(">IIII", wal[offset:offset + 16])
        if (s1, s2) != (salt1, salt2):
            break
        pages.append(page)
        if commit_size:
            commits.append(pages)
            pages = []
    return commits


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    db = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    if not os.path.exists(db + "-wal"):
        sys.exit(f"no {db}-wal: the census reads a running server's WAL")
    commits = []
    for round_ in range(rounds):
        if round_:
            time.sleep(2)
        with open(db + "-wal", "rb") as wal:
            commits.extend(commits_in(wal.read()))
    if not commits:
        sys.exit("no complete commit in the WAL")
    work = tempfile.mkdtemp()
    try:
        copy = os.path.join(work, "copy.db")
        shutil.copy(db, copy)
        shutil.copy(db + "-wal", copy + "-wal")
        owner = dict(sqlite3.connect(copy).execute("SELECT pageno, name FROM dbstat"))
    finally:
        shutil.rmtree(work)
    frames = sum(len(pages) for pages in commits)
    repeated = sum(len(pages) - len(set(pages)) for pages in commits)
    print(f"{len(commits)} commits, {frames} frames: {frames / len(commits):.1f} per commit, "
          f"largest {max(len(pages) for pages in commits)}; "
          f"{repeated} written twice in one commit (cache spills)")
    by_tree = collections.Counter(
        owner.get(page, "(freed or new)") for pages in commits for page in pages)
    for name, count in by_tree.most_common():
        print(f"{count / len(commits):7.1f} per commit {100 * count / frames:5.1f}%  {name}")


if __name__ == "__main__":
    main()
