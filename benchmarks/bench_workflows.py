"""Workflows (SPEC §8): replaying a memoized op, resuming a 1,000-op run, one op on SQLite.

    PYTHONPATH=src python benchmarks/bench_workflows.py

Replay is measured without the store: the run's versions are read once, then
the workflow function is replayed against them (what a resume does after its
reads). The SQLite figure is one new op (body, encode, append under the claim)
next to the durable-step floor measured in the same process: a raw
``INSERT``+``COMMIT`` of a same-sized row at ``synchronous=FULL``.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from stepkit.stores import MemoryStore, SQLiteStore
from stepkit.testing import FakeClock
from stepkit.workflows import Client
from stepkit.workflows._core import Replay
from stepkit.workflows._perform import SyncPerformer
from stepkit.workflows._step import Step

N = 1000


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


def bench_replay() -> tuple[float, float]:
    client = Client(driver=MemoryStore(clock=FakeClock()), clock=FakeClock())
    workflow = client.workflow(id="sum")(flow)
    handle = client.start_workflow(workflow)
    versions = client.store.history(handle.run_id)
    rounds = [replay_once(client, workflow, versions, handle.run_id) for _ in range(30)]
    best = statistics.median(rounds)
    return best / N * 1e6, best * 1e3


def bench_sqlite(folder: Path) -> tuple[float, float]:
    store = SQLiteStore(folder / "wf.db")
    client = Client(driver=store)
    steps = 300

    def many(ctx: Any, step: Any) -> None:
        for i in range(steps):
            step.run("op", int, i)

    workflow = client.workflow(id="many")(many)
    started = time.perf_counter()
    client.start_workflow(workflow)
    per_op = (time.perf_counter() - started) / steps

    db = sqlite3.connect(folder / "floor.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE t (run_id TEXT, version INTEGER, changes TEXT, PRIMARY KEY (run_id, version))"
    )
    row = '{"op#1":{"kind":"run","value":1}}'
    started = time.perf_counter()
    for i in range(steps):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?, ?, ?)", ("r", i, row))
        db.execute("COMMIT")
    floor = (time.perf_counter() - started) / steps
    return per_op * 1e6, floor * 1e6


def main() -> None:
    per_op, total = bench_replay()
    print(f"replay of a memoized op: {per_op:.2f} us (goal <= 5 us)")
    print(f"resume of a {N}-op workflow, after its reads: {total:.2f} ms (goal <= 10 ms)")
    with tempfile.TemporaryDirectory() as tmp:
        op, floor = bench_sqlite(Path(tmp))
    print(
        f"one op persisted on SQLite (FULL): {op:.1f} us; raw INSERT+COMMIT floor {floor:.1f} us "
        f"({op / floor:.2f}x)"
    )


if __name__ == "__main__":
    main()
