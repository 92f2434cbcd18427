"""Backend-specific behaviour: FileStore layout and crash leftovers, SQLiteStore settings."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from stepkit.errors import InvalidArgumentError
from stepkit.stores import FileStore, SQLiteStore, Store, rebuild

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
    assert tables == {"users", "stepkit_runs", "stepkit_versions"}


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
    """stepkit.stores exports exactly its public names, sorted, each with an async twin."""
    import stepkit.stores as stores

    assert stores.__all__ == sorted(stores.__all__)
    assert set(stores.__all__) == {
        "FileStore",
        "MemoryStore",
        "RunRecord",
        "RunStatus",
        "SQLiteStore",
        "Store",
        "VersionRecord",
        "open_store",
        "rebuild",
    }
    sync = ["create", "claim", "append", "finish", "get", "list", "delete", "purge"]
    for name in [*sync, "versions", "history", "close"]:
        assert callable(getattr(Store, name))
        assert callable(getattr(Store, "a" + name))
