"""Workflows (SPEC §8): replaying a memoized op, resuming a 1,000-op run, one op on SQLite.

    PYTHONPATH=src python benchmarks/bench_workflows.py [--quick] [--dir PATH]

1. **Replay** is measured without the store: the run's versions are read once,
   then the workflow function is replayed against them (what a resume does
   after its reads). Goal: <= 5 us per memoized op; a 1,000-op run <= 10 ms.
2. **One op persisted on SQLite** (``synchronous=FULL``, the default): the
   time of a LENGTH-op workflow run inline, divided by LENGTH (its create and
   finish, two more commits, are shared among its ops: an upper bound of the
   marginal op, which a difference of two lengths measures too noisily on a
   shared disk), against the durable-step floor
   measured in the same process: a raw ``INSERT`` + ``COMMIT`` of a same-sized
   version row into the store's own table, on a plain ``sqlite3`` connection
   with the same journal mode and ``synchronous``. Goal: <= 1.3x (the budget
   of a persisted pipeline step).

Rounds are interleaved (each function in turn, round after round) so that the
drifts of a shared machine's disk hit them alike; ratios are taken within a
round. Printed: median (min-max) over the rounds.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stepkit.stores import MemoryStore, SQLiteStore
from stepkit.testing import FakeClock
from stepkit.workflows import Client
from stepkit.workflows._core import Replay
from stepkit.workflows._perform import SyncPerformer
from stepkit.workflows._step import Step

N = 1000
LENGTH = 100  # ops per workflow when timing a persisted op


def flow(ctx: Any, step: Any) -> int:
    total = 0
    for i in range(N):
        total += step.run("add", int, i)
    return total


def replay_once(client: Client, workflow: Any, versions: list[Any], run_id: str) -> float:
    started = time.perf_counter()
    core = Replay(run_id=run_id, versions=versions, clock=client.clock, policy=workflow.policy)
    performer = SyncPerformer(core, client.store, client.owner, client.lease, client.child_records)
    workflow.fn(None, Step(core, workflow, client, performer.drive))
    return time.perf_counter() - started


def bench_replay(repeat: int) -> list[float]:
    """Seconds to replay the 1,000-op run, per round (best of 5 in each)."""
    client = Client(driver=MemoryStore(clock=FakeClock()), clock=FakeClock())
    workflow = client.workflow(id="sum")(flow)
    handle = client.start_workflow(workflow)
    versions = client.store.history(handle.run_id)
    return [
        min(replay_once(client, workflow, versions, handle.run_id) for _ in range(5))
        for _ in range(repeat)
    ]


def workflow_of(client: Client, length: int) -> Callable[[], None]:
    """Start (and run inline) a new run of a ``length``-op workflow, per call."""

    def ops(ctx: Any, step: Any) -> None:
        for i in range(length):
            step.run("op", int, i)

    workflow = client.workflow(id=f"ops{length}")(ops)

    def start() -> None:
        client.start_workflow(workflow)

    return start


#: the version row of one op as the workflow writes it, for the floor
OP_CHANGES = '{"op#17":{"kind":"run","value":17}}'


def bare_insert(path: Path) -> Callable[[], None]:
    """The floor: ``INSERT`` of an op's version row into the store's table, and ``COMMIT``."""
    SQLiteStore(path).close()  # the same tables and indexes as the store
    db = sqlite3.connect(path, isolation_level=None)
    assert db.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    db.execute("PRAGMA synchronous=FULL")
    run_id, counter, now = uuid.uuid4().hex, iter(range(1, 10**9)), time.time()

    def insert() -> None:
        n = next(counter)
        db.execute("BEGIN")
        db.execute(
            "INSERT INTO stepkit_versions (run_id, version, parent, step_name, changes, "
            "removed, position, snapshot, created_at, renew_lease, kind) "
            "VALUES (?, ?, ?, ?, ?, '[]', '', NULL, ?, ?, 'op')",
            (run_id, n, n - 1 or None, "op#17", OP_CHANGES, now, now + 30.0),
        )
        db.execute("COMMIT")

    return insert


def rounds(calls: dict[str, tuple[Callable[[], None], int]], repeat: int) -> dict[str, list[float]]:
    """Seconds per call of each function, per round; the functions take turns.

    ``name + " cpu"`` holds the process's CPU seconds per call (no waiting for
    the disk): the Python an op costs beyond the floor's is measured with it.
    """
    for fn, _ in calls.values():
        fn()  # warm up
    samples: dict[str, list[float]] = {}
    for _ in range(repeat):
        for name, (fn, number) in calls.items():
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(number):
                fn()
            t1, c1 = time.perf_counter(), time.process_time()
            samples.setdefault(name, []).append((t1 - t0) / number)
            samples.setdefault(name + " cpu", []).append((c1 - c0) / number)
    return samples


def bench_sqlite(folder: Path, repeat: int) -> dict[str, list[float]]:
    store = SQLiteStore(folder / "wf.db")
    client = Client(driver=store)
    runs = 2
    s = rounds(
        {
            "run": (workflow_of(client, LENGTH), runs),
            "bare": (bare_insert(folder / "floor.db"), runs * LENGTH),
        },
        repeat,
    )
    store.close()
    s["op"] = [run / LENGTH for run in s["run"]]
    s["ratio"] = [op / bare for op, bare in zip(s["op"], s["bare"], strict=True)]
    s["python"] = [
        run / LENGTH - bare for run, bare in zip(s["run cpu"], s["bare cpu"], strict=True)
    ]
    return s


def spread(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    """Median and (min-max) of ``values``."""
    lo, mid, hi = min(values) * scale, statistics.median(values) * scale, max(values) * scale
    return f"{mid:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds instead of 9")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the databases")
    args = parser.parse_args()
    repeat = 5 if args.quick else 9
    replay = bench_replay(repeat)
    print(f"replay of a memoized op: {spread(replay, 1e6 / N)} us (goal <= 5 us)")
    print(f"resume of a {N}-op workflow, after its reads: {spread(replay, 1e3)} ms (goal <= 10 ms)")
    folder = Path(tempfile.mkdtemp(prefix="stepkit-bench-", dir=args.dir))
    try:
        s = bench_sqlite(folder, repeat)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"one op persisted on SQLite (FULL): {spread(s['op'], 1e6, 1)} us; raw INSERT+COMMIT "
        f"floor {spread(s['bare'], 1e6, 1)} us; ratio {spread(s['ratio'])}x (goal <= 1.3x)"
    )
    print(f"CPU of one persisted op beyond the floor's: {spread(s['python'], 1e6, 1)} us")


if __name__ == "__main__":
    main()
