"""Cost per step as things grow: steps, context keys, parallel items, stored runs.

Run: python benchmarks/bench_scale.py [--write] [--quick]

Each row is a *marginal* cost, so that once-per-run work (copying the input,
preparing the run) does not hide growth per step:

- steps: (time of a 2n-step run - time of an n-step run) / n;
- context keys: the same, at n = 100 steps, with 1 ... 100,000 keys;
- parallel items: (time of one step of 2m items - one of m items) / m, under
  run() (threads, at most 32) and arun() (tasks);
- stored runs: the cost of one persisted step on SQLite (synchronous=NORMAL,
  the marginal cost of a step as above) with 1,000 ... 100,000 other runs stored.

Flat is the goal everywhere; medians of alternating rounds, spread in brackets.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from _report import emit, machine

from stepkit import Pipeline
from stepkit.stores import SQLiteStore

QUICK = "--quick" in sys.argv
ROUNDS = 5 if QUICK else 9


def bump(ctx: Any) -> dict[str, int]:
    return {"n": ctx["n"] + 1}


def linear(n: int, name: str = "scale") -> Pipeline:
    p = Pipeline(name)
    for i in range(n):
        p = p.step(f"s{i}", bump)
    return p


def marginal(small: Callable[[], object], large: Callable[[], object], units: int) -> str:
    """Median and range of (large - small) / units seconds, in microseconds, alternating.

    Each measurement repeats its call until the larger one takes about 30 ms, so
    that a difference is not lost in the noise of a single call.
    """
    small(), large()
    t0 = time.perf_counter()
    large()
    repeat = max(1, int(0.03 / max(time.perf_counter() - t0, 1e-6)))
    values = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        for _ in range(repeat):
            small()
        t1 = time.perf_counter()
        for _ in range(repeat):
            large()
        t2 = time.perf_counter()
        values.append(((t2 - t1) - (t1 - t0)) / (units * repeat) * 1e6)
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def by_steps() -> list[str]:
    lines = ["| steps | us per step |", "|---:|---:|"]
    for n in (10, 100, 1_000, 10_000):
        small, large = linear(n), linear(2 * n)
        cost = marginal(partial(small.run, {"n": 0}), partial(large.run, {"n": 0}), n)
        lines.append(f"| {n:,} | {cost} |")
    return lines


def by_keys() -> list[str]:
    lines = ["| context keys | us per step |", "|---:|---:|"]
    small, large = linear(100), linear(200)
    for keys in (1, 100, 10_000, 100_000):
        ctx = {"n": 0, **{f"k{i}": i for i in range(keys - 1)}}
        cost = marginal(partial(small.run, ctx), partial(large.run, ctx), 100)
        lines.append(f"| {keys:,} | {cost} |")
    return lines


def parallel(m: int) -> Pipeline:
    return Pipeline("par").step("fan", *(lambda ctx, i=i: {f"o{i}": i} for i in range(m)))


def by_items() -> list[str]:
    lines = ["| parallel items | run(): us per item | arun(): us per item |", "|---:|---:|---:|"]
    for m in (2, 10, 100, 1_000):
        small, large = parallel(m), parallel(2 * m)
        sync = marginal(partial(small.run, {}), partial(large.run, {}), m)
        loop = asyncio.new_event_loop()
        try:
            asyn = marginal(
                lambda p=small, loop=loop: loop.run_until_complete(p.arun({})),
                lambda p=large, loop=loop: loop.run_until_complete(p.arun({})),
                m,
            )
        finally:
            loop.close()
        lines.append(f"| {m:,} | {sync} | {asyn} |")
    return lines


def fill(path: Path, n: int) -> None:
    """Store ``n`` completed runs in one transaction (the runs' count is what matters)."""
    SQLiteStore(path).close()
    db = sqlite3.connect(path, isolation_level=None)
    now = time.time()
    columns = (
        "run_id, pipeline, status, version, step_name, error, created_at, updated_at, "
        "expires_at, owner, lease_until, meta"
    )
    rows = [
        (uuid.uuid4().hex, f"p{i % 10}", "completed", 1, None, None, now, now, None, None, None)
        for i in range(n)
    ]
    db.execute("BEGIN")
    db.executemany(f"INSERT INTO stepkit_runs ({columns}) VALUES ({'?, ' * 11}'{{}}')", rows)
    db.execute("COMMIT")
    db.close()


def by_stored_runs(folder: Path) -> list[str]:
    lines = ["| stored runs | us per persisted step (NORMAL) |", "|---:|---:|"]
    small, large = linear(10, "durable"), linear(20, "durable")
    for n in (1_000, 10_000, 100_000):
        path = folder / f"runs-{n}.db"
        fill(path, n)
        store = SQLiteStore(path, synchronous="NORMAL")
        try:
            cost = marginal(
                partial(small.run, {"n": 0}, store=store),
                partial(large.run, {"n": 0}, store=store),
                10,
            )
            lines.append(f"| {n:,} | {cost} |")
        finally:
            store.close()
    return lines


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="stepkit-scale-"))
    try:
        lines = [
            f"Measured on {machine()}; marginal cost per unit, median of {ROUNDS} alternating "
            "rounds, (min-max). Flat is the goal.",
            "",
            "**Steps** (a run of 2n steps minus a run of n steps, per step):",
            "",
            *by_steps(),
            "",
            "**Context keys** (100 more steps over the same context, per step):",
            "",
            *by_keys(),
            "",
            "**Parallel items** (one step of 2m plain items minus one of m, per item):",
            "",
            *by_items(),
            "",
            "**Stored runs** (10 more persisted steps on SQLite, per step, with n other runs "
            "in the database):",
            "",
            *by_stored_runs(folder),
        ]
        emit("scale", "\n".join(lines))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
