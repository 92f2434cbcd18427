"""Bytes written by one durable run, and the same pipeline on other libraries.

Run: python benchmarks/bench_bytes.py [--write] [--dir PATH] [--quick]

1. Bytes written by one 100-step run over a 1 MB context where each step
   changes one small key (budget: < 2 MB): the stored rows (logical), the
   growth of the database and WAL files, and the bytes the process passed to
   write() (Linux ``/proc/self/io``), for SQLiteStore and FileStore.
2. The same 100-step pipeline with LangGraph's ``SqliteSaver`` and Burr's
   ``SQLitePersister``, both on WAL and the same ``synchronous`` as stepkit,
   when they are importable; skipped with a message otherwise.

LangGraph and Burr are not dependencies of stepkit: install them in a throw-away venv::

       python -m venv /tmp/bench-venv
       /tmp/bench-venv/bin/pip install -e . langgraph langgraph-checkpoint-sqlite burr
       /tmp/bench-venv/bin/python benchmarks/bench_bytes.py
"""

import os
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _report import database_folder, emit, machine

from stepkit import Pipeline
from stepkit.stores import FileStore, SQLiteStore

BIG = 1_000_000  # bytes of context for the bytes-written comparison
STEPS = 100


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
    with database_folder(__doc__) as (folder, repeat):
        report(folder, repeat)


def report(folder: Path, repeat: int) -> None:
    lines = [
        f"Measured on {machine()}, SQLite {sqlite3.sqlite_version}, databases in "
        f"`{folder.parent}`.",
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
    ]
    emit("bytes", "\n".join(lines))
    for s in skipped:
        print(s, file=sys.stderr)


if __name__ == "__main__":
    main()
