"""open_store(url) understands the documented URL forms and explains the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from stepkit.errors import InvalidArgumentError
from stepkit.stores import FileStore, MemoryStore, SQLiteStore, Store, open_store


def test_memory_url_gives_a_new_empty_memory_store() -> None:
    """memory:// opens a fresh MemoryStore each time."""
    first, second = open_store("memory://"), open_store("MEMORY://")
    assert isinstance(first, MemoryStore)
    assert isinstance(second, MemoryStore)
    assert first is not second


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file://runs", "runs"),
        ("file://./nested/runs", "nested/runs"),
        ("file://{tmp}/abs-runs", "abs-runs"),
    ],
    ids=["relative", "dot-relative", "absolute"],
)
def test_file_urls_name_a_folder(
    url: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """file://runs is relative to the working directory; file:///abs/path is absolute."""
    monkeypatch.chdir(tmp_path)
    with open_store(url.format(tmp=tmp_path)) as store:
        assert isinstance(store, FileStore)
    assert (tmp_path / expected).is_dir()


@pytest.mark.parametrize(
    ("url", "expected"),
    [("sqlite:///relative.db", "relative.db"), ("sqlite:///{tmp}/abs.db", "abs.db")],
    ids=["relative", "absolute"],
)
def test_sqlite_urls_follow_the_sqlalchemy_convention(
    url: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three slashes then a relative path; four slashes for an absolute one."""
    monkeypatch.chdir(tmp_path)
    with open_store(url.format(tmp=tmp_path)) as store:
        assert isinstance(store, SQLiteStore)
    assert (tmp_path / expected).is_file()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_sqlite_memory_urls(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite:// and sqlite:///:memory: open a private in-memory database."""
    monkeypatch.chdir(tmp_path)
    with open_store(url) as store:
        assert isinstance(store, SQLiteStore)
        assert store.list() == []
    assert list(tmp_path.iterdir()) == []


def test_query_options_reach_the_store(tmp_path: Path) -> None:
    """Options go in the query string: synchronous, busy_timeout, fsync."""
    with open_store(f"sqlite:///{tmp_path}/x.db?synchronous=normal&busy_timeout=5") as store:
        assert isinstance(store, Store)
        assert "synchronous='NORMAL'" in repr(store)
    with open_store(f"file://{tmp_path}/f?fsync=false") as store:
        assert isinstance(store, FileStore)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host/x", "unknown store URL scheme 'ftp'.*memory://, file://PATH, sqlite:///PATH"),
        ("runs.db", "not a store URL"),
        ("redis+sentinel://localhost:6379/0", "write redis://"),
        ("postgresql+psycopg://u@db/runs", "write postgresql://"),
        ("sqlite://:memory:", "sqlite URLs have no host"),
        ("memory://somewhere", "takes no path"),
        ("file://", "needs a folder"),
        ("sqlite:///x.db?journal=off", "unknown option"),
        ("sqlite:///x.db?synchronous=OFF", "NORMAL or FULL"),
        ("file://x?fsync=maybe", "fsync"),
        ("sqlite:///x.db?busy_timeout=soon", "busy_timeout"),
    ],
)
def test_unsupported_urls_explain_themselves(url: str, message: str) -> None:
    """Unknown schemes, driver-qualified schemes and malformed URLs raise InvalidArgumentError."""
    with pytest.raises(InvalidArgumentError, match=message):
        open_store(url)


def test_a_url_must_be_a_string() -> None:
    """A non-str URL is an InvalidArgumentError (also a TypeError)."""
    with pytest.raises(TypeError):
        open_store(42)  # type: ignore[arg-type]
