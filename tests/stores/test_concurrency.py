"""Claims are exclusive across threads and processes; many writing processes never fail."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from stepkit.errors import RunConflictError
from stepkit.stores import FileStore, SQLiteStore
from stepkit.stores._base import BaseStore

from .store_helpers import run

# A worker process: open the store named on the command line, then either race for
# one claim (waiting for a "go" file so that all workers start together) or write
# many runs. It prints its outcome; any exception makes it exit non-zero.
WORKER = r"""
import json, os, sys, time
from stepkit.errors import RunConflictError
from stepkit.stores import FileStore, RunRecord, SQLiteStore, VersionRecord

kind, path, mode, ident, arg = sys.argv[1:6]
store = FileStore(path) if kind == "file" else SQLiteStore(path)
if mode == "claim":
    print("ready", flush=True)
    while not os.path.exists(arg):
        time.sleep(0.0005)
    try:
        store.claim("contested", owner=ident)
        print("won")
    except RunConflictError:
        print("lost")
else:
    for i in range(int(arg)):
        run_id, now = f"{ident}-{i}", time.time()
        def v(n):
            changes = json.dumps({"step": n, "worker": ident})
            return VersionRecord(run_id, n, n - 1 or None, f"s{n}", changes, (), "{}",
                                 changes if n == 1 else None, now)
        store.create(RunRecord(run_id, "load", "running", 1, "s1", None, now, now, None,
                               ident, None, "{}"), v(1))
        for n in (2, 3, 4):
            store.append(v(n), owner=ident)
        store.finish(run_id, owner=ident, status="completed")
    print("done")
store.close()
"""


def _spawn(kind: str, path: Path, mode: str, ident: str, arg: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, kind, str(path), mode, ident, arg],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _open(kind: str, path: Path) -> BaseStore:
    return FileStore(path) if kind == "file" else SQLiteStore(path)


def test_one_of_eight_threads_wins_a_claim(store: BaseStore, clock: Any) -> None:
    """Eight threads claiming the same paused run at once: exactly one succeeds."""
    store.create(run("contested", now=clock.now))
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def contend(owner: str) -> None:
        barrier.wait()
        try:
            store.claim("contested", owner=owner)
            outcomes.append(owner)
        except RunConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=contend, args=(f"t{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if o != "conflict"]
    assert len(outcomes) == 8
    assert len(winners) == 1
    record = store.get("contested")
    assert record is not None
    assert record.owner == winners[0]


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_one_of_four_processes_wins_a_claim(kind: str, tmp_path: Path) -> None:
    """Four processes claiming the same paused run at once: exactly one succeeds."""
    path, go = tmp_path / "store", tmp_path / "go"
    with _open(kind, path) as store:
        store.create(run("contested", now=time.time()))
    workers = [_spawn(kind, path, "claim", f"p{i}", str(go)) for i in range(4)]
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
    go.touch()
    results = [worker.communicate(timeout=60) for worker in workers]
    assert [w.returncode for w in workers] == [0] * 4, [err for _, err in results]
    outcomes = sorted(out.strip() for out, _ in results)
    assert outcomes == ["lost", "lost", "lost", "won"]
    with _open(kind, path) as store:
        record = store.get("contested")
    assert record is not None
    assert record.status == "running"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_many_writers_never_fail(kind: str, tmp_path: Path) -> None:
    """Four processes each writing 500 runs (create, 3 appends, finish): all 2000 complete."""
    path = tmp_path / "store"
    with _open(kind, path):
        pass  # create the schema or folder before the race
    workers = [_spawn(kind, path, "write", f"w{i}", "500") for i in range(4)]
    results = [worker.communicate(timeout=240) for worker in workers]
    assert [w.returncode for w in workers] == [0] * 4, [err for _, err in results]
    assert all(err == "" for _, err in results), [err for _, err in results]
    with _open(kind, path) as store:
        records = store.list(limit=None)
        assert len(records) == 2000
        assert {(r.status, r.version, r.owner) for r in records} == {("completed", 4, None)}
        assert [v.version for v in store.versions("w3-499")] == [1, 2, 3, 4]
        assert {r.run_id for r in records} == {f"w{p}-{i}" for p in range(4) for i in range(500)}
