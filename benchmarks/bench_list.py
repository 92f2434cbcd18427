"""``SQLiteStore.list()`` over 1,000 to 100,000 stored runs (budget: <= 1 ms at 100,000).

Run: python benchmarks/bench_list.py [--write] [--dir PATH] [--quick]

Unfiltered and filtered by ``pipeline=``, ``status=`` and both; median of
rounds interleaved across the queries, spread (min-max) in brackets.
"""

import sqlite3
import statistics
import uuid
from functools import partial
from pathlib import Path
from typing import Any

from _report import best_of, database_folder, emit, machine

from stepkit.stores import SQLiteStore

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
    columns = (
        "run_id, pipeline, status, version, step_name, error, created_at, updated_at, "
        "expires_at, owner, lease_until, meta"
    )
    db.executemany(f"INSERT INTO stepkit_runs ({columns}) VALUES ({', '.join('?' * 12)})", rows)
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


def main() -> None:
    with database_folder(__doc__) as (folder, repeat):
        lines = [f"Measured on {machine()}, SQLite {sqlite3.sqlite_version}.", ""]
        emit("list", "\n".join([*lines, *list_report(folder, repeat)]))


if __name__ == "__main__":
    main()
