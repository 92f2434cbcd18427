"""Backend-specific behaviour: FileStore layout and crash leftovers, SQLiteStore settings."""

from __future__ import annotations

import dataclasses
import os
import re
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from stepkit.errors import InvalidArgumentError
from stepkit.stores import AsyncStore, FileStore, RunStatus, SQLiteStore, Store, rebuild
from stepkit.stores._sqlite_sql import list_query
from stepkit.testing import FakeClock

from .store_helpers import run, version


def test_file_store_folder_names_are_safe(tmp_path: Path) -> None:
    """Run folders are direct children of the root, named only with safe characters."""
    root = tmp_path / "runs"
    ids = ["../escape", "/etc/passwd", "..", ".hidden", "a\\b", "Mixed", "é☃", "~" * 200]
    with FileStore(root) as store:
        for run_id in ids:
            store.create(run(run_id, now=time.time()))
        assert sorted(r.run_id for r in store.list()) == sorted(ids)
    names = os.listdir(root)
    assert len(names) == len(ids)
    assert all(re.fullmatch(r"[a-z0-9_%~A-F-][a-z0-9_.%~A-F-]*", name) for name in names)
    assert all(len(name) <= 200 for name in names)
    assert sorted(os.listdir(tmp_path)) == ["runs"]


def test_file_store_hides_a_version_left_by_a_crashed_append(tmp_path: Path) -> None:
    """A version file written after the last commit is invisible, and overwritten later."""
    with FileStore(tmp_path) as store:
        store.create(run(now=time.time(), status="running", version=1, owner="w"), version(1))
        orphan = version(2, changes={"ghost": True})
        store._write_version(str(tmp_path / "run-1" / "versions"), orphan)  # crash before commit
        assert [v.version for v in store.history("run-1")] == [1]
        store.append(version(2, changes={"real": True}), owner="w")
        assert rebuild(store.versions("run-1"))[0] == {"k1": 1, "real": True}


def test_file_store_without_fsync_still_works(tmp_path: Path) -> None:
    """fsync=False trades power-loss durability for speed, nothing else."""
    with FileStore(tmp_path, fsync=False) as store:
        store.create(run(now=time.time()), None)
        assert store.claim("run-1", owner="w").status == "running"


def test_sqlite_store_uses_wal_and_prefixed_tables(tmp_path: Path) -> None:
    """The database is in WAL mode and the store's tables share the file politely."""
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as app:
        app.execute("CREATE TABLE users (id INTEGER)")
    app.close()
    with SQLiteStore(path) as store:
        store.create(run(now=time.time()))
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {
            row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    raw.close()
    assert tables == {"users", "stepkit_runs", "stepkit_versions", "stepkit_signals"}


def test_sqlite_memory_store_is_shared_by_threads() -> None:
    """SQLiteStore(':memory:') is one database, whichever thread uses it."""
    with SQLiteStore(":memory:") as store:
        store.create(run(now=time.time()))
        seen: list[object] = []
        thread = threading.Thread(target=lambda: seen.append(store.get("run-1")))
        thread.start()
        thread.join()
        assert seen == [store.get("run-1")]
        assert seen[0] is not None


@pytest.mark.parametrize(
    "kwargs", [{"synchronous": "OFF"}, {"busy_timeout": -1}, {"busy_timeout": "slow"}]
)
def test_sqlite_store_checks_its_settings(tmp_path: Path, kwargs: dict[str, object]) -> None:
    """Unknown synchronous levels and bad timeouts raise InvalidArgumentError."""
    with pytest.raises(InvalidArgumentError):
        SQLiteStore(tmp_path / "x.db", **kwargs)  # type: ignore[arg-type]


def test_store_public_surface() -> None:
    """stepkit.stores exports exactly its public names, sorted; AsyncStore twins Store."""
    import stepkit.stores as stores

    assert stores.__all__ == sorted(stores.__all__)
    assert set(stores.__all__) == {
        "AsyncStore",
        "BaseStore",
        "Change",
        "FileStore",
        "MemoryStore",
        "PostgresStore",
        "PurgeRule",
        "RedisStore",
        "RunRecord",
        "RunStatus",
        "SQLiteStore",
        "SignalRecord",
        "StepRow",
        "Store",
        "VersionKind",
        "VersionRecord",
        "is_async_store",
        "is_store",
        "newest_first",
        "open_store",
        "rebuild",
    }
    for name in stores.__all__:
        assert getattr(stores, name) is not None
    sync = ["create", "claim", "renew", "append", "finish", "get", "list", "delete", "purge"]
    for name in [*sync, "versions", "history", "snapshot", "close"]:
        assert callable(getattr(Store, name))
        assert not hasattr(Store, "a" + name)
        assert callable(getattr(AsyncStore, "a" + name))


# The schema of SQLiteStore before version kinds and the list() indexes (stepkit 0.1).
OLD_SCHEMA = (
    "CREATE TABLE stepkit_runs (run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, "
    "status TEXT NOT NULL, version INTEGER NOT NULL, step_name TEXT, error TEXT, "
    "created_at REAL NOT NULL, updated_at REAL NOT NULL, expires_at REAL, owner TEXT, "
    "lease_until REAL, meta TEXT NOT NULL)",
    "CREATE INDEX stepkit_runs_by_pipeline ON stepkit_runs (pipeline)",
    "CREATE INDEX stepkit_runs_by_status ON stepkit_runs (status)",
    "CREATE TABLE stepkit_versions (run_id TEXT NOT NULL, version INTEGER NOT NULL, "
    "parent INTEGER, step_name TEXT, changes TEXT NOT NULL, removed TEXT NOT NULL, "
    "position TEXT NOT NULL, snapshot TEXT, created_at REAL NOT NULL, saved_at REAL, "
    "renew_lease REAL, PRIMARY KEY (run_id, version)) WITHOUT ROWID",
    "INSERT INTO stepkit_runs VALUES ('old', 'p', 'running', 1, 's1', NULL, 1.0, 1.0, NULL, "
    "'w', NULL, '{}')",
    "INSERT INTO stepkit_versions VALUES ('old', 1, NULL, 's1', '{}', '[]', 'null', '{}', 1.0, "
    "NULL, NULL)",
)


def test_sqlite_store_migrates_a_database_without_version_kinds(tmp_path: Path) -> None:
    """Opening an older database adds the kind column; its versions read back as steps."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for statement in OLD_SCHEMA:
        db.execute(statement)
    db.commit()
    db.close()
    with SQLiteStore(path) as store:
        assert [v.kind for v in store.history("old")] == ["step"]
        store.append(dataclasses.replace(version(2, "old"), kind="override"), owner="w")
        assert [v.kind for v in store.versions("old")] == ["step", "override"]
    with SQLiteStore(path) as store:  # opening again changes nothing
        assert [v.kind for v in store.history("old")] == ["step", "override"]
    db = sqlite3.connect(path)
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    db.close()
    assert "stepkit_runs_settled" in indexes
    assert "stepkit_runs_by_pipeline" not in indexes


@pytest.mark.parametrize(
    "kwargs", [{}, {"pipeline": "p"}, {"status": "paused"}, {"pipeline": "p", "status": "failed"}]
)
def test_sqlite_list_reads_an_index_in_order(tmp_path: Path, kwargs: dict[str, str]) -> None:
    """list() reads runs that are not running from an index in order: no scan, no full sort."""
    with SQLiteStore(tmp_path / "runs.db") as store:
        store.create(run(now=time.time()))
    sql, params = list_query(kwargs.get("pipeline"), kwargs.get("status"), 100)
    db = sqlite3.connect(tmp_path / "runs.db")
    plan = [row[-1] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params)]
    db.close()
    assert any("USING INDEX stepkit_runs_settled" in line for line in plan), plan
    assert not any(re.fullmatch(r"SCAN stepkit_runs", line) for line in plan), plan
    if "status" in kwargs:  # one index range, already in order
        assert not any("TEMP B-TREE" in line for line in plan), plan


def test_sqlite_list_merges_running_and_settled_runs(tmp_path: Path) -> None:
    """Running runs (outside the partial indexes) take their place in the one order."""
    clock = FakeClock()
    with SQLiteStore(tmp_path / "runs.db", clock=clock) as store:
        statuses: list[RunStatus] = ["paused", "running", "completed", "running", "failed"]
        for i, status in enumerate(statuses):
            clock.advance(1)
            owner = "w" if status == "running" else None
            store.create(run(f"r{i}", now=clock.now, status=status, owner=owner))
        assert [r.run_id for r in store.list()] == ["r4", "r3", "r2", "r1", "r0"]
        assert [r.run_id for r in store.list(limit=3)] == ["r4", "r3", "r2"]
        assert [r.run_id for r in store.list(status="running")] == ["r3", "r1"]
        clock.advance(1)
        store.append(version(1, "r1"), owner="w")  # r1 moves to the front
        assert [r.run_id for r in store.list(limit=2)] == ["r1", "r4"]
