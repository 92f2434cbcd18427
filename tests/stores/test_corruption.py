"""Corrupt or foreign store contents surface as StoreError, never as a raw exception."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from pathlib import Path

import pytest

from stepkit.errors import StoreError
from stepkit.stores import FileStore, SQLiteStore, rebuild

from .store_helpers import run, version


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def file_store(root: Path) -> FileStore:
    store = FileStore(root)
    store.create(run("r", now=time.time(), status="running", version=1, owner="w"), version(1, "r"))
    store.append(version(2, "r", snapshot={"a": 1}), owner="w")
    return store


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[1, 2]", b'{"run_id": "r"}', b"\xff\xfe garbage", b"[" * 100_000],
    ids=["bad-json", "not-object", "missing-fields", "bad-utf8", "too-deep"],
)
def test_a_corrupt_run_file_is_a_store_error(
    file_store: FileStore, root: Path, content: bytes
) -> None:
    """get, list and claim report a damaged run.json as StoreError with the cause chained."""
    (root / "r" / "run.json").write_bytes(content)
    for call in (
        lambda: file_store.get("r"),
        file_store.list,
        lambda: file_store.claim("r", owner="x"),
    ):
        with pytest.raises(StoreError, match="corrupt"):
            call()


def test_a_run_file_with_wrong_types_is_a_store_error(file_store: FileStore, root: Path) -> None:
    """A well-formed run.json with a bad field value is rejected, naming the field."""
    path = root / "r" / "run.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "status": "dormant"}))
    with pytest.raises(StoreError, match="status"):
        file_store.get("r")


def test_a_run_file_of_another_run_is_a_store_error(file_store: FileStore, root: Path) -> None:
    """A run.json copied into the wrong folder is detected, not silently served."""
    file_store.create(run("other", now=time.time()))
    (root / "r" / "run.json").write_bytes((root / "other" / "run.json").read_bytes())
    with pytest.raises(StoreError, match="holds run 'other'"):
        file_store.get("r")


@pytest.mark.parametrize("content", [b"{oops", b'{"version": 1}', b"null"])
def test_a_corrupt_version_file_is_a_store_error(
    file_store: FileStore, root: Path, content: bytes
) -> None:
    """versions() and history() report a damaged version file as StoreError."""
    (root / "r" / "versions" / "000000000001.json").write_bytes(content)
    with pytest.raises(StoreError, match="corrupt"):
        file_store.history("r")
    with pytest.raises(StoreError, match="corrupt"):
        file_store.versions("r", upto=1)


def test_a_missing_snapshot_file_is_a_store_error(file_store: FileStore, root: Path) -> None:
    """A version that claims a snapshot whose file is gone is corrupt."""
    (root / "r" / "versions" / "000000000002.snapshot.json").unlink()
    with pytest.raises(StoreError, match="snapshot"):
        file_store.versions("r")


def test_a_garbage_sqlite_file_is_a_store_error(tmp_path: Path) -> None:
    """Opening a file that is not a database raises StoreError caused by sqlite3's error."""
    path = tmp_path / "runs.db"
    path.write_bytes(b"this is not a database, just some bytes" * 100)
    with pytest.raises(StoreError) as info:
        SQLiteStore(path)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)


def test_an_unopenable_sqlite_path_is_a_store_error(tmp_path: Path) -> None:
    """A database in a folder that does not exist raises StoreError, not sqlite3's error."""
    with pytest.raises(StoreError):
        SQLiteStore(tmp_path / "missing" / "runs.db")


def _sqlite_with_run(tmp_path: Path) -> SQLiteStore:
    store = SQLiteStore(tmp_path / "runs.db")
    store.create(run("r", now=time.time(), status="running", version=1, owner="w"), version(1, "r"))
    store.append(version(2, "r"), owner="w")
    return store


@pytest.mark.parametrize(
    ("sql", "call"),
    [
        ("UPDATE stepkit_runs SET status = 'dormant'", "get"),
        ("UPDATE stepkit_runs SET created_at = 'yesterday'", "list"),
        ("UPDATE stepkit_versions SET removed = 'not json'", "history"),
        ("UPDATE stepkit_versions SET parent = 7 WHERE version = 2", "versions"),
        ("UPDATE stepkit_versions SET parent = 2 WHERE version = 2", "versions"),
    ],
    ids=["bad-status", "bad-time", "bad-removed", "dangling-parent", "cyclic-parent"],
)
def test_corrupt_sqlite_rows_are_store_errors(tmp_path: Path, sql: str, call: str) -> None:
    """Rows changed behind the store's back are reported as StoreError."""
    store = _sqlite_with_run(tmp_path)
    with sqlite3.connect(tmp_path / "runs.db") as raw:
        raw.execute(sql)
    raw.close()
    with pytest.raises(StoreError, match="corrupt"):
        store.list() if call == "list" else getattr(store, call)("r")
    store.close()


def test_rebuild_reports_corrupt_json_as_a_store_error() -> None:
    """rebuild() of a version whose opaque text is not a JSON object raises StoreError."""
    with pytest.raises(StoreError, match="corrupt snapshot"):
        rebuild([dataclasses.replace(version(1), snapshot="[1")])
    with pytest.raises(StoreError, match="expected a JSON object"):
        rebuild([dataclasses.replace(version(1), changes="[]")])


def test_file_system_errors_are_store_errors_with_the_cause(tmp_path: Path) -> None:
    """An OSError from the backend surfaces as StoreError, the OSError chained as cause."""
    store = FileStore(tmp_path / "runs")
    (tmp_path / "runs").rmdir()
    (tmp_path / "runs").write_text("a file where the folder was")
    with pytest.raises(StoreError) as info:
        store.create(run(now=time.time()))
    assert isinstance(info.value.__cause__, OSError)
