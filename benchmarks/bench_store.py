"""Cost of durable runs on SQLiteStore: per persisted step, and a durable resume.

Run: python benchmarks/bench_store.py [--write] [--dir PATH] [--quick]
(--write updates docs/performance.md; --dir puts the databases on another disk,
the default being the system's temporary folder; --quick does 5 rounds instead of 9.)

Per persisted step, on SQLiteStore in WAL mode at ``synchronous=FULL`` (its
default) and ``NORMAL``: the marginal cost of a step of a persisted run over the
same step of a run without a store, against its floor measured in the same
process: a plain ``sqlite3`` INSERT of the row a step writes, into a table of
the same schema, + COMMIT (same journal mode and ``synchronous``). Goals: <= 1.3x
at FULL, <= 1.7x at NORMAL, <= 5 us of Python per step (persisting minus the
store's own SQL statement). Then a durable resume with one step left against
its floor in raw SQL (claim and load in one transaction, the step, the
release). Median and spread of interleaved rounds.

Also: bench_list.py (``list()`` at scale), bench_bytes.py (bytes written, other libraries).
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _report import SAMPLE_CONTEXT, database_folder, emit, machine

from stepkit import Pipeline
from stepkit.stores import RunRecord, SQLiteStore, VersionRecord
from stepkit.stores._sqlite_sql import APPEND  # the statement a persisted step runs

CONTEXT: dict[str, Any] = SAMPLE_CONTEXT
# what a checkpoint of that context holds: the bare baseline writes this much JSON per step
CHECKPOINT_JSON = json.dumps(
    {
        "v": 1,
        "pipeline": "bench",
        "version": None,
        "fingerprint": "0123456789abcdef",
        "run_id": uuid.uuid4().hex,
        "step": "s30",
        "position": {"done": "s30"},
        "created_at": time.time(),
        "context": {**CONTEXT, "i": 30},
    }
)


LENGTH = 60  # steps per run when timing a persisted step
#: the columns every version of the runs table has (newer ones have defaults)
RUN_COLUMNS = (
    "(run_id, pipeline, status, version, step_name, error, created_at, updated_at, "
    "expires_at, owner, lease_until, meta)"
)


def linear(n: int) -> Pipeline:
    pipeline = Pipeline("bench")
    for i in range(n):
        pipeline = pipeline.step(f"s{i}", lambda ctx, i=i: {"i": i})
    return pipeline


# -- 1. per persisted step, and a durable resume, against floors measured alongside --------


#: a version row as a persisted step writes it: (run_id, version, parent, step_name,
#: changes, removed, position, snapshot, created_at, saved_at, renew_lease, owner, kind),
#: the parameters of the store's compare-and-set insert
def step_row(run_id: str, n: int, now: float) -> tuple[Any, ...]:
    return (
        run_id,
        n,
        n - 1,
        f"s{n}",
        json.dumps({"i": n}),
        "[]",
        json.dumps({"done": f"s{n}"}),
        None,
        now,
        now,
        now + 30.0,
        "bench",
        "step",
    )


INSERT_VERSION = (
    "INSERT INTO stepkit_versions (run_id, version, parent, step_name, changes, removed, "
    "position, snapshot, created_at, renew_lease, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def raw_db(path: Path, synchronous: str) -> sqlite3.Connection:
    """A plain ``sqlite3`` connection to a file with the store's schema (WAL, ``synchronous``)."""
    SQLiteStore(path).close()  # creates the same tables and indexes the store uses
    db = sqlite3.connect(path, isolation_level=None)
    assert db.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    db.execute(f"PRAGMA synchronous={synchronous}")
    return db


def bare_insert(path: Path, synchronous: str) -> Callable[[], None]:
    """The floor: ``INSERT`` of the row a step writes, into the same table, and ``COMMIT``."""
    db = raw_db(path, synchronous)
    run_id, counter, now = uuid.uuid4().hex, iter(range(2, 10**9)), time.time()

    def insert() -> None:
        row = step_row(run_id, next(counter), now)
        db.execute("BEGIN")
        db.execute(INSERT_VERSION, (*row[:9], row[10], row[12]))
        db.execute("COMMIT")

    return insert


def new_held_run(store: SQLiteStore) -> str:
    run_id, now = uuid.uuid4().hex, time.time()
    first = VersionRecord(run_id, 1, None, None, "{}", (), "null", json.dumps(CONTEXT), now)
    store.create(
        RunRecord(run_id, "bench", "running", 1, None, None, now, now, None, "bench", None, "{}"),
        first,
    )
    return run_id


def store_append(store: SQLiteStore) -> Callable[[], None]:
    """``store.append`` alone (the public API, arguments checked): one version per call."""
    run_id, now = new_held_run(store), time.time()
    counter = iter(range(2, 10**9))

    def append() -> None:
        n = next(counter)
        changes, position = json.dumps({"i": n}), json.dumps({"done": f"s{n}"})
        store.append(
            VersionRecord(run_id, n, n - 1, f"s{n}", changes, (), position, None, now),
            owner="bench",
            lease=30.0,
        )

    return append


def store_sql(store: SQLiteStore, path: Path, synchronous: str) -> Callable[[], None]:
    """The SQL a persisted step runs (the store's compare-and-set insert), from a raw connection."""
    run_id, now = new_held_run(store), time.time()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA synchronous={synchronous}")
    counter = iter(range(2, 10**9))

    def execute() -> None:
        assert db.execute(APPEND, step_row(run_id, next(counter), now)).rowcount == 1

    return execute


Timed = tuple[Callable[[], object], int]  # a function, and how many calls make a round


def rounds(calls: dict[str, Timed], repeat: int) -> dict[str, list[float]]:
    """Seconds per call of each function in each of ``repeat`` rounds, taken in turn.

    Taking rounds in turn exposes the functions to the same drifts of a shared
    machine's load and disk; ratios are taken within a round. ``name + " cpu"``
    holds the process's CPU seconds per call (no waiting for the disk, nor for
    other processes): Python's share is measured with it.
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


def spread(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    """Median and (min-max) of ``values``."""
    lo, mid, hi = min(values) * scale, statistics.median(values) * scale, max(values) * scale
    return f"{mid:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def per_step(folder: Path, synchronous: str, repeat: int) -> dict[str, list[float]]:
    """Per round: step times, the persisting cost and its ratios to the floors (see report)."""
    path = folder / f"steps-{synchronous}.db"
    store = SQLiteStore(path, synchronous=synchronous)  # type: ignore[arg-type]
    pipeline, longer = linear(LENGTH), linear(2 * LENGTH)
    runs = 10
    s = rounds(
        {
            # the run's create and finish (two more commits) are shared among its steps
            "durable": (lambda: pipeline.run(CONTEXT, store=store), runs),
            "plain": (lambda: pipeline.run(CONTEXT), runs),
            # twice as long: the difference is the marginal cost of LENGTH steps
            "durable x2": (lambda: longer.run(CONTEXT, store=store), runs),
            "plain x2": (lambda: longer.run(CONTEXT), runs),
            "append": (store_append(store), runs * LENGTH),
            "sql": (store_sql(store, path, synchronous), runs * LENGTH),
            "bare": (bare_insert(folder / f"bare-{synchronous}.db", synchronous), runs * LENGTH),
        },
        repeat,
    )
    store.close()
    s["durable"] = [t / LENGTH for t in s["durable"]]
    s["plain"] = [t / LENGTH for t in s["plain"]]
    s["persisting"] = [d - p for d, p in zip(s["durable"], s["plain"], strict=True)]
    s["ratio"] = [p / b for p, b in zip(s["persisting"], s["bare"], strict=True)]
    s["sql ratio"] = [q / b for q, b in zip(s["sql"], s["bare"], strict=True)]
    # CPU time of one more persisted step (runs of 2 x LENGTH against runs of LENGTH, so
    # that the run's own create and finish cancel out), minus a plain step's and the
    # store's SQL statement's
    s["python"] = [
        ((d2 - d) - (p2 - p)) / LENGTH - q
        for d, d2, p, p2, q in zip(
            s["durable cpu"],
            s["durable x2 cpu"],
            s["plain cpu"],
            s["plain x2 cpu"],
            s["sql cpu"],
            strict=True,
        )
    ]
    return s


def two_steps() -> Pipeline:
    pipeline = Pipeline("resume-bench").step("s0", lambda ctx: {"i": 0})
    return pipeline.step("s1", lambda ctx: {"i": 1})


def paused_runs(store: SQLiteStore, n: int) -> list[str]:
    """``n`` runs of :func:`two_steps` paused after ``s0``: each resume has one step left."""
    pipeline = two_steps()

    def pause(event: Any) -> None:
        event.stop_pipeline()

    return [pipeline.run(CONTEXT, store=store, on_step_complete=pause).run_id for _ in range(n)]


def floor_resumes(path: Path, synchronous: str, n: int) -> Callable[[], None]:
    """The floor of a resume with one step left, in raw SQL on the same schema.

    Claim and read the stored versions in one transaction, rebuild the context
    (``json.loads``), then the step's ``INSERT`` + ``COMMIT`` and the release
    (``UPDATE`` + ``COMMIT``): the three commits a durable resume needs.
    """
    db = raw_db(path, synchronous)
    now, snapshot = time.time(), json.dumps(CONTEXT)
    ids = [uuid.uuid4().hex for _ in range(n)]
    db.execute("BEGIN")
    for run_id in ids:
        db.execute(
            f"INSERT INTO stepkit_runs {RUN_COLUMNS} VALUES (?, 'bench', 'paused', 2, 's0', "
            "NULL, ?, ?, NULL, NULL, NULL, '{}')",
            (run_id, now, now),
        )
        first = (run_id, 1, None, None, "{}", "[]", "null", snapshot, now, None, "start")
        db.execute(INSERT_VERSION, first)
        row = step_row(run_id, 2, now)
        db.execute(INSERT_VERSION, (*row[:9], row[10], row[12]))
    db.execute("COMMIT")
    todo = iter(ids)

    def resume() -> None:
        run_id = next(todo)
        db.execute("BEGIN IMMEDIATE")
        claimed = db.execute(
            "UPDATE stepkit_runs SET status = 'running', owner = ?, lease_until = ?, "
            "updated_at = ? WHERE run_id = ? AND status = 'paused'",
            ("bench", now + 30.0, now, run_id),
        ).rowcount
        rows = db.execute(
            "SELECT changes, position, snapshot FROM stepkit_versions WHERE run_id = ? "
            "ORDER BY version",
            (run_id,),
        ).fetchall()
        db.execute("COMMIT")
        assert claimed == 1
        context = json.loads(rows[0][2])
        context.update(json.loads(rows[1][0]))
        json.loads(rows[1][1])
        row = step_row(run_id, 3, now)
        db.execute("BEGIN")
        db.execute(INSERT_VERSION, (*row[:9], row[10], row[12]))
        db.execute("COMMIT")
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "UPDATE stepkit_runs SET status = 'completed', owner = NULL, lease_until = NULL, "
            "version = 3, step_name = 's1', updated_at = ? WHERE run_id = ? AND owner = ?",
            (now, run_id, "bench"),
        )
        db.execute("COMMIT")

    return resume


def statements(store: SQLiteStore, call: Callable[[], object]) -> tuple[int, int]:
    """SQL statements and transactions (explicit ones, plus lone statements) of ``call``."""
    db: sqlite3.Connection = store._local.handle.db  # a benchmark peeks
    seen: list[str] = []
    db.set_trace_callback(seen.append)
    try:
        call()
    finally:
        db.set_trace_callback(None)
    transactions, inside = 0, False
    for sql in seen:
        word = sql.split(None, 1)[0].upper()
        if word == "BEGIN":
            transactions, inside = transactions + 1, True
        elif word in ("COMMIT", "ROLLBACK"):
            inside = False
        elif not inside:
            transactions += 1
    return len(seen), transactions


def per_resume(folder: Path, synchronous: str, repeat: int) -> dict[str, Any]:
    """Per round: a durable resume with one step left, and its floor (see floor_resumes)."""
    number = 30
    store = SQLiteStore(folder / f"resume-{synchronous}.db", synchronous=synchronous)  # type: ignore[arg-type]
    pipeline = two_steps()
    todo = iter(paused_runs(store, (repeat + 1) * number + 1))
    floor = folder / f"resume-floor-{synchronous}.db"
    s: dict[str, Any] = rounds(
        {
            "resume": (lambda: pipeline.resume(next(todo), store=store), number),
            "floor": (
                floor_resumes(floor, synchronous, (repeat + 1) * number),
                number,
            ),
        },
        repeat,
    )
    s["ratio"] = [r / f for r, f in zip(s["resume"], s["floor"], strict=True)]
    s["statements"] = statements(store, lambda: pipeline.resume(next(todo), store=store))
    store.close()
    return s


def durable_report(folder: Path, repeat: int) -> list[str]:
    lines = [
        "**Per persisted step** (SQLiteStore, WAL). *Step* is the time of a "
        f"{LENGTH}-step run over a {len(json.dumps(CONTEXT))}-byte context divided by "
        f"{LENGTH}, with and without `store=` (with it, the run's create and finish are "
        "shared among its steps); *persisting* is their difference. *Floor*: `INSERT` of "
        "the row a step writes into a table of the same schema, then `COMMIT`, on a plain "
        "`sqlite3` connection with the same `journal_mode` and `synchronous`. *SQL*: the "
        "statement a step runs (the compare-and-set insert) from a plain connection; "
        "*Python*: the CPU time (`time.process_time`, steadier than wall time on a shared "
        "machine) of one more persisted step (runs twice as long against these, so the "
        "run's create and finish cancel out) minus a plain step's and the SQL's. Median of "
        f"{repeat} interleaved rounds, (min-max) in brackets; ratios are taken within a round.",
        "",
        "| synchronous | step, no store (us) | persisting (us) | floor (us) | "
        "**persisting / floor** | SQL / floor | Python per step (us) | `store.append` (us) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in ("FULL", "NORMAL"):
        r = per_step(folder, level, repeat)
        label = f"{level} (default)" if level == "FULL" else level
        lines.append(
            f"| {label} | {spread(r['plain'], 1e6, 1)} | {spread(r['persisting'], 1e6, 1)} | "
            f"{spread(r['bare'], 1e6, 1)} | **{spread(r['ratio'])}** | "
            f"{spread(r['sql ratio'])} | {spread(r['python'], 1e6, 1)} | "
            f"{spread(r['append'], 1e6, 1)} |"
        )
    lines += [
        "",
        "Goals: persisting / floor <= 1.3 at FULL, <= 1.7 at NORMAL; <= 5 us of Python per step.",
        "",
        "**Durable resume** of a run paused with one step left (`pipeline.resume(run_id, "
        "store=)`: claim, load, the step, the release) against its floor in raw SQL on the "
        "same schema: claim and read the versions in one transaction, `json.loads` the "
        "context, `INSERT` the step's version, `UPDATE` the run as completed (three commits).",
        "",
        "| synchronous | resume (us) | floor (us) | **resume / floor** | SQL statements "
        "(transactions) per resume |",
        "|---|---:|---:|---:|---:|",
    ]
    for level in ("FULL", "NORMAL"):
        r = per_resume(folder, level, repeat)
        label = f"{level} (default)" if level == "FULL" else level
        count, transactions = r["statements"]
        lines.append(
            f"| {label} | {spread(r['resume'], 1e6, 0)} | {spread(r['floor'], 1e6, 0)} | "
            f"**{spread(r['ratio'])}** | {count} ({transactions}) |"
        )
    return lines


def main() -> None:
    with database_folder(__doc__) as (folder, repeat):
        lines = [
            f"Measured on {machine()}, SQLite {sqlite3.sqlite_version}, databases in "
            f"`{folder.parent}`.",
            "",
            *durable_report(folder, repeat),
        ]
        emit("store", "\n".join(lines))


if __name__ == "__main__":
    main()
