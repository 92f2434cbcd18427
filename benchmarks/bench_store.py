"""Cost of durable runs on SQLiteStore per persisted step, and bytes written per run.

Run: python benchmarks/bench_store.py [--write] [--dir PATH] [--quick] [--list-only]
(--write updates docs/performance.md; --dir puts the databases on another disk,
the default being the system's temporary folder; --quick does fewer rounds.)

1. Per persisted step, on SQLiteStore in WAL mode at ``synchronous=FULL``
   (its default) and ``NORMAL``: the marginal cost of a step of a persisted
   run over the same step of a run without a store, next to a bare
   ``sqlite3`` INSERT + commit of a checkpoint-sized JSON document (same
   journal mode and ``synchronous``), as a ratio. Budget: <= 1.3x.
2. Bytes written by one 100-step run over a 1 MB context where each step
   changes one small key (budget: < 2 MB): the stored rows (logical), the
   growth of the database and WAL files, and the bytes the process passed to
   write() (Linux ``/proc/self/io``), for SQLiteStore and FileStore.
3. The same 100-step pipeline with LangGraph's ``SqliteSaver`` and Burr's
   ``SQLitePersister``, both on WAL and the same ``synchronous`` as stepkit,
   when they are importable; skipped with a message otherwise.
4. ``SQLiteStore.list()`` over 1,000 to 100,000 stored runs, unfiltered and
   filtered by ``pipeline=``, ``status=`` and both (budget: <= 1 ms at
   100,000 runs). ``--list-only`` runs just this part. They are not
   dependencies of stepkit: install them in a throw-away venv::

       python -m venv /tmp/bench-venv
       /tmp/bench-venv/bin/pip install -e . langgraph langgraph-checkpoint-sqlite burr
       /tmp/bench-venv/bin/python benchmarks/bench_store.py
"""

from __future__ import annotations

import argparse
import json
import os
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

from _report import SAMPLE_CONTEXT, best_of, emit, machine

from stepkit import Pipeline
from stepkit.stores import FileStore, RunRecord, SQLiteStore, VersionRecord

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
BIG = 1_000_000  # bytes of context for the bytes-written comparison
STEPS = 100
LENGTH = 60  # steps per run when timing a persisted step


def linear(n: int) -> Pipeline:
    pipeline = Pipeline("bench")
    for i in range(n):
        pipeline = pipeline.step(f"s{i}", lambda ctx, i=i: {"i": i})
    return pipeline


def files_size(path: Path) -> int:
    """Bytes in a file plus its -wal, or in every file under a folder."""
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return sum(os.path.getsize(f"{path}{s}") for s in ("", "-wal") if os.path.exists(f"{path}{s}"))


def written() -> int | None:
    """Bytes this process has passed to write() so far (Linux), else None."""
    try:
        with open("/proc/self/io") as f:
            for line in f:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def mb(n: float | None) -> str:
    return "n/a" if n is None else f"{n / 1e6:.2f} MB"


# -- 1. per persisted step ----------------------------------------------------------------


def bare_insert(path: Path, synchronous: str) -> Callable[[], None]:
    db = sqlite3.connect(path, isolation_level=None)
    assert db.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute(
        "CREATE TABLE IF NOT EXISTS cp (run_id TEXT, version INTEGER, data TEXT, "
        "PRIMARY KEY (run_id, version))"
    )
    run_id, counter = uuid.uuid4().hex, iter(range(10**9))

    def insert() -> None:
        db.execute("BEGIN")
        db.execute("INSERT INTO cp VALUES (?, ?, ?)", (run_id, next(counter), CHECKPOINT_JSON))
        db.execute("COMMIT")

    return insert


def store_append(store: SQLiteStore) -> Callable[[], None]:
    """``store.append`` alone: one version per call, as a persisted step writes it."""
    run_id, owner, now = uuid.uuid4().hex, "bench", time.time()
    snapshot = json.dumps(CONTEXT)
    first = VersionRecord(run_id, 1, None, None, "{}", (), "null", snapshot, now)
    store.create(
        RunRecord(run_id, "bench", "running", 1, None, None, now, now, None, owner, None, "{}"),
        first,
    )
    counter = iter(range(2, 10**9))

    def append() -> None:
        n = next(counter)
        changes, position = json.dumps({"i": n}), json.dumps({"done": f"s{n}"})
        store.append(
            VersionRecord(run_id, n, n - 1, f"s{n}", changes, (), position, None, now), owner=owner
        )

    return append


Timed = tuple[Callable[[], object], int]  # a function, and how many calls make a round


def interleaved(calls: dict[str, Timed], repeat: int) -> dict[str, float]:
    """Best mean seconds per call of each function, their rounds taken in turn.

    Taking rounds in turn exposes the functions to the same drifts of a shared
    machine's load and disk, so that their ratios are steadier than their times.
    """
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeat):
        for name, (fn, number) in calls.items():
            best[name] = min(best[name], best_of(fn, repeat=1, number=number))
    return best


def per_step(folder: Path, synchronous: str, repeat: int) -> dict[str, float]:
    store = SQLiteStore(folder / f"steps-{synchronous}.db", synchronous=synchronous)  # type: ignore[arg-type]
    pipeline = linear(LENGTH)
    runs = 5
    best = interleaved(
        {
            # the run's create and finish (two more transactions) are shared among its steps
            "durable": (lambda: pipeline.run(CONTEXT, store=store), runs),
            "plain": (lambda: pipeline.run(CONTEXT), runs),
            "append": (store_append(store), runs * LENGTH),
            "bare": (bare_insert(folder / f"bare-{synchronous}.db", synchronous), runs * LENGTH),
        },
        repeat,
    )
    store.close()
    best["durable"] /= LENGTH
    best["plain"] /= LENGTH
    return best


# -- 4. store.list() at scale --------------------------------------------------------------

LIST_SIZES = (1_000, 10_000, 100_000)
PIPELINES = 10
#: what runs look like in a long-lived store: mostly completed, some waiting or failed...
STATUS_MIX = ("completed",) * 14 + ("paused",) * 5 + ("failed",)
RUNNING = 100  # ...and as many running as there are busy workers, whatever the size


def populated(path: Path, n: int) -> SQLiteStore:
    """A store holding ``n`` runs, written in one transaction (the bench is of list)."""
    store = SQLiteStore(path, synchronous="NORMAL")
    store.close()
    db = sqlite3.connect(path, isolation_level=None)
    base = 1_800_000_000.0
    rows = [
        (
            f"run-{uuid.uuid4().hex}",
            f"p{i % PIPELINES}",
            "running"
            if i % (n // RUNNING) == 7
            else STATUS_MIX[(i // PIPELINES) % len(STATUS_MIX)],
            3,
            "s2",
            None,
            base + i,
            base + (i // 2) * 0.5,  # pairs share an update time: the tie-break is exercised
            None,
            None,
            None,
            "{}",
        )
        for i in range(n)
    ]
    db.execute("BEGIN")
    db.executemany(f"INSERT INTO stepkit_runs VALUES ({', '.join('?' * 12)})", rows)
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.close()
    return SQLiteStore(path, synchronous="NORMAL")


def list_at_scale(folder: Path, repeat: int) -> dict[int, dict[str, list[float]]]:
    """Seconds per ``list()`` call (default limit of 100) for each size and filter."""
    queries: dict[str, dict[str, Any]] = {
        "all": {},
        "pipeline=": {"pipeline": "p3"},
        "status=": {"status": "failed"},
        "pipeline= status=": {"pipeline": "p3", "status": "paused"},
        "status=running": {"status": "running"},
    }
    results: dict[int, dict[str, list[float]]] = {}
    for n in LIST_SIZES:
        store = populated(folder / f"list-{n}.db", n)
        samples: dict[str, list[float]] = {name: [] for name in queries}
        for _ in range(repeat):  # rounds interleaved across the queries
            for name, kwargs in queries.items():
                samples[name].append(best_of(partial(store.list, **kwargs), repeat=1, number=20))
        store.close()
        results[n] = samples
    return results


def list_report(folder: Path, repeat: int) -> list[str]:
    results = list_at_scale(folder, max(repeat, 5))
    names = list(next(iter(results.values())))
    lines = [
        f"**`SQLiteStore.list()` at scale**: {PIPELINES} pipelines, statuses mixed "
        f"(70% completed, {RUNNING} running), pairs of runs updated at the same time; the "
        "default `limit=100`. Runs that are not running are read from partial indexes in "
        "order (which saving a step never touches); running ones are sorted and merged in, "
        "so the cost grows with the runs running at once, not with the runs stored. "
        "Median of the rounds (interleaved across the queries), spread (min-max) in brackets, "
        "in milliseconds. Budget: <= 1 ms at 100,000 runs.",
        "",
        "| runs | "
        + " | ".join(f"`list({n})`" if n != "all" else "`list()`" for n in names)
        + " |",
        "|---:|" + "---:|" * len(names),
    ]
    for n, samples in results.items():
        cells = []
        for name in names:
            s = samples[name]
            cells.append(
                f"{statistics.median(s) * 1e3:.3f} ({min(s) * 1e3:.3f}-{max(s) * 1e3:.3f})"
            )
        lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    return lines


# -- 2. and 3. bytes written, and other libraries ------------------------------------------

#: A library under test: (the file or folder it writes, run(context, run_id), rows(run_id)).
Subject = tuple[Path, Callable[[dict[str, Any], str], object], Callable[[str], int]]


def stepkit_subject(folder: Path, kind: str) -> Subject:
    path = folder / ("runs-big" if kind == "file" else "runs-big.db")
    store: Any = FileStore(path) if kind == "file" else SQLiteStore(path)
    pipeline = Pipeline("big")
    for i in range(STEPS):
        pipeline = pipeline.step(f"s{i}", lambda ctx, i=i: {"counter": i})

    def rows(run_id: str) -> int:
        history = store.history(run_id)  # without snapshots; the first version holds one
        return sum(len(v.changes) + len(v.position) for v in history) + sum(
            len(v.snapshot or "") for v in store.versions(run_id, upto=1)
        )

    return path, lambda context, run_id: pipeline.run(context, store=store, run_id=run_id), rows


def langgraph_subject(folder: Path) -> Subject:
    from typing import TypedDict

    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph

    class State(TypedDict, total=False):
        counter: int
        blob: str

    graph = StateGraph(State)
    previous = START
    for i in range(STEPS):
        graph.add_node(f"s{i}", lambda state, i=i: {"counter": i})
        graph.add_edge(previous, f"s{i}")
        previous = f"s{i}"
    graph.add_edge(previous, END)
    path = folder / "langgraph.db"
    db = sqlite3.connect(path, check_same_thread=False)
    saver = SqliteSaver(db)
    saver.setup()  # turns WAL on
    db.execute("PRAGMA synchronous=FULL")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    app = graph.compile(checkpointer=saver)

    def run(context: dict[str, Any], run_id: str) -> object:
        config = {"configurable": {"thread_id": run_id}, "recursion_limit": 10 * STEPS}
        return app.invoke(dict(context), config)

    def rows(run_id: str) -> int:
        checkpoints = db.execute(
            "SELECT SUM(LENGTH(checkpoint) + LENGTH(metadata)) FROM checkpoints "
            "WHERE thread_id = ?",
            (run_id,),
        ).fetchone()[0]
        writes = db.execute(
            "SELECT COALESCE(SUM(LENGTH(value)), 0) FROM writes WHERE thread_id = ?", (run_id,)
        ).fetchone()[0]
        return int(checkpoints + writes)

    return path, run, rows


def burr_subject(folder: Path) -> Subject:
    from burr.core import ApplicationBuilder, State, default
    from burr.core.action import action
    from burr.core.persistence import SQLitePersister

    actions = {}
    for i in range(STEPS):

        @action(reads=[], writes=["counter"])
        def step(state: State, i: int = i) -> State:
            return state.update(counter=i)

        actions[f"s{i}"] = step
    path = folder / "burr.db"
    db = sqlite3.connect(path, check_same_thread=False)
    assert db.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"  # Burr's default: DELETE
    db.execute("PRAGMA synchronous=FULL")
    persister = SQLitePersister(str(path), connection=db)
    persister.initialize()

    def run(context: dict[str, Any], run_id: str) -> object:
        app = (
            ApplicationBuilder()
            .with_actions(**actions)
            .with_transitions(*[(f"s{i}", f"s{i + 1}", default) for i in range(STEPS - 1)])
            .with_state(**context)
            .with_entrypoint("s0")
            .with_state_persister(persister)
            .with_identifiers(app_id=run_id)
            .build()
        )
        return app.run(halt_after=[f"s{STEPS - 1}"])

    def rows(run_id: str) -> int:
        query = "SELECT SUM(LENGTH(state)) FROM burr_state WHERE app_id = ?"
        return int(db.execute(query, (run_id,)).fetchone()[0])

    return path, run, rows


def checkpoint_wal(path: Path) -> None:
    """Copy the WAL into the database now, as SQLite eventually does (no-op for folders)."""
    if path.is_file():
        db = sqlite3.connect(path)
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            db.close()


def compare(subject: Subject, repeat: int) -> dict[str, Any]:
    """One run over the 1 MB context (time and bytes), then the best of small-context runs."""
    path, run, rows = subject
    checkpoint_wal(path)
    size0, w0 = files_size(path), written()
    t0 = time.perf_counter()
    run({"blob": "x" * BIG, "counter": -1}, "big")
    seconds = time.perf_counter() - t0
    size1, w1 = files_size(path), written()
    checkpoint_wal(path)
    w2 = written()
    small = float("inf")
    for i in range(repeat):
        t0 = time.perf_counter()
        run({"blob": "x" * 1000, "counter": -1}, f"small-{i}")
        small = min(small, time.perf_counter() - t0)
    return {
        "seconds": seconds,
        "small": small,
        "rows": rows("big"),
        "growth": size1 - size0,
        "wchar": None if w0 is None or w1 is None else w1 - w0,
        "wchar_checkpoint": None if w0 is None or w2 is None else w2 - w0,
    }


def other(name: str, make: Callable[[Path], Subject], folder: Path) -> Subject | str:
    try:
        return make(folder)
    except ImportError as exc:
        return f"skipped: {exc.name or exc} is not importable (see this script's docstring)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the databases")
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--list-only", action="store_true", help="only store.list() at scale")
    args = parser.parse_args()
    repeat = 3 if args.quick else 9
    folder = Path(tempfile.mkdtemp(prefix="stepkit-bench-", dir=args.dir))
    try:
        if args.list_only:
            print("\n".join(list_report(folder, repeat)))
            return
        report(folder, repeat)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def report(folder: Path, repeat: int) -> None:
    lines = [
        f"Measured on {machine()}, SQLite {sqlite3.sqlite_version}, databases in "
        f"`{folder.parent}`; best of {repeat} rounds.",
        "",
        "**Per persisted step** (SQLiteStore, WAL). *Step* is the time of a "
        f"{LENGTH}-step run over a {len(json.dumps(CONTEXT))}-byte context divided by "
        f"{LENGTH}, with and without `store=` (with it, the run's create and finish are "
        "shared among its steps); *persisting* is their difference; *bare* is `INSERT` + "
        f"`COMMIT` of {len(CHECKPOINT_JSON)} bytes of JSON on a plain `sqlite3` connection "
        "with the same `journal_mode` and `synchronous`. fsync times vary a lot on shared "
        "machines: compare the ratios of one run of the script, not across runs.",
        "",
        "| synchronous | step, no store (us) | step, store (us) | persisting (us) | "
        "`store.append` (us) | bare INSERT+COMMIT (us) | persisting / bare | append / bare |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in ("FULL", "NORMAL"):
        r = per_step(folder, level, repeat)
        persisting = r["durable"] - r["plain"]
        label = f"{level} (default)" if level == "FULL" else level
        lines.append(
            f"| {label} | {r['plain'] * 1e6:.1f} | {r['durable'] * 1e6:.1f} | "
            f"{persisting * 1e6:.1f} | {r['append'] * 1e6:.1f} | {r['bare'] * 1e6:.1f} | "
            f"**{persisting / r['bare']:.2f}x** | {r['append'] / r['bare']:.2f}x |"
        )
    lines += [
        "",
        "Budget: persisting a step costs at most 1.3x the bare INSERT + COMMIT.",
        "",
        f"**Bytes written by one {STEPS}-step run** over a {BIG / 1e6:.0f} MB context, each "
        "step changing one small key (budget: < 2 MB), then the same pipeline over a 1 KB "
        "context. *Rows*: what the store holds for the run (stepkit: version rows and its "
        "one snapshot; LangGraph: checkpoints and writes; Burr: states). *Files*: growth of "
        "the database + WAL files (FileStore: the run folders). *write()*: bytes the process "
        "passed to `write()` during the run (`/proc/self/io`, Linux); *+ checkpoint*: "
        "including copying the WAL into the database afterwards (`wal_checkpoint`), which "
        "SQLite does sooner or later. All on WAL with `synchronous=FULL`.",
        "",
        "| library | store | 1 MB run (ms) | rows | files | write() | + checkpoint | "
        "per step, 1 KB context (ms) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    subjects: list[tuple[str, str, Subject | str]] = [
        ("stepkit", "SQLiteStore", stepkit_subject(folder, "sqlite")),
        ("stepkit", "FileStore", stepkit_subject(folder, "file")),
        ("LangGraph", "SqliteSaver", other("LangGraph", langgraph_subject, folder)),
        ("Burr", "SQLitePersister", other("Burr", burr_subject, folder)),
    ]
    skipped = []
    for library, store, subject in subjects:
        if isinstance(subject, str):
            skipped.append(f"{library} {store}: {subject}")
            continue
        r = compare(subject, repeat)
        lines.append(
            f"| {library} | {store} | {r['seconds'] * 1e3:.0f} | {mb(r['rows'])} | "
            f"{mb(r['growth'])} | {mb(r['wchar'])} | {mb(r['wchar_checkpoint'])} | "
            f"{r['small'] * 1e3 / STEPS:.2f} |"
        )
    if skipped:
        lines += ["", *(f"- {s}" for s in skipped)]
    lines += [
        "",
        "stepkit stores the context once (a snapshot), then only each step's changed keys; "
        "LangGraph's SqliteSaver and Burr store the whole state at every step. SQLite writes "
        "whole 4 KB pages to the WAL: each persisted step rewrites the pages it touches (the "
        "run row and its index entries, the version row and its key), which is why *files* "
        "exceeds *rows* for SQLiteStore.",
        "",
        *list_report(folder, repeat),
    ]
    emit("store", "\n".join(lines))
    for s in skipped:
        print(s, file=sys.stderr)


if __name__ == "__main__":
    main()
