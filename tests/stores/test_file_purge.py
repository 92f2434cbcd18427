"""FileStore.purge() sweeps only the leftovers it made itself, never a user's folders."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from stepkit.stores import FileStore

from .store_helpers import run, version

HEX = "0123456789abcdef" * 2


def _age(path: Path, seconds: float = 7200.0) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _crashed_delete(store: FileStore, run_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Delete ``run_id`` as a process would that died after moving it to the trash."""
    with monkeypatch.context() as m:
        m.setattr("stepkit.stores._file._remove_tree", lambda path: None)
        assert store.delete(run_id)


def _crashed_create(store: FileStore, run_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Create ``run_id`` as a process would that died before renaming its folder into place."""
    with monkeypatch.context() as m:
        m.setattr("stepkit.stores._file._remove_tree", lambda path: None)

        def die(src: str, dst: str) -> None:
            raise KeyboardInterrupt

        m.setattr(os, "rename", die)
        with pytest.raises(KeyboardInterrupt):
            store.create(run(run_id, now=time.time(), version=1), version(1, run_id))


def test_user_folders_shaped_like_temp_folders_survive_purge(tmp_path: Path) -> None:
    """Folders a user put in the root, named like temp or trash folders, are never deleted."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    root = tmp_path / "runs"
    root.mkdir()
    names = [
        ".trash-1",
        f".trash-{HEX}",
        ".tmp-old",
        f".tmp-{HEX}",
        f".stepkit-trash-{HEX}",
        f".stepkit-tmp-{HEX}",
        f".stepkit-trash-{HEX}x",
    ]
    for name in names:
        (root / name / "versions").mkdir(parents=True)
        (root / name / "lock").write_text("")
        (root / name / "notes.txt").write_text("mine")
        _age(root / name)
    (root / f".stepkit-trash-{'f' * 32}").symlink_to(outside, target_is_directory=True)
    with FileStore(root) as store:
        assert store.purge(expired=False, older_than=0) == 0
    assert sorted(os.listdir(root)) == sorted([*names, f".stepkit-trash-{'f' * 32}"])
    assert all((root / name / "notes.txt").read_text() == "mine" for name in names)
    assert (outside / "keep.txt").read_text() == "mine"


def test_purge_sweeps_its_own_crash_leftovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trash of a crashed delete and a stale half-built run are removed by purge()."""
    with FileStore(tmp_path) as store:
        store.create(run("gone", now=time.time(), version=1), version(1, "gone"))
        _crashed_delete(store, "gone", monkeypatch)
        _crashed_create(store, "half", monkeypatch)
        leftovers = sorted(os.listdir(tmp_path))
        assert len(leftovers) == 2
        assert all(name.startswith(".stepkit-") for name in leftovers)
        for name in leftovers:
            _age(tmp_path / name)
        assert store.purge() == 0
        assert os.listdir(tmp_path) == []
        assert store.list() == []


def test_a_fresh_half_built_run_is_left_to_its_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A half-built run younger than an hour may still be renamed into place: purge keeps it."""
    with FileStore(tmp_path) as store:
        _crashed_create(store, "half", monkeypatch)
        (name,) = os.listdir(tmp_path)
        assert store.purge() == 0
        assert os.listdir(tmp_path) == [name]


def test_an_empty_temp_folder_is_swept(tmp_path: Path) -> None:
    """A temp folder left empty by a crash right after mkdir holds nothing to lose: swept."""
    empty = tmp_path / f".stepkit-tmp-{uuid.uuid4().hex}"
    empty.mkdir()
    _age(empty)
    with FileStore(tmp_path) as store:
        assert store.purge() == 0
    assert os.listdir(tmp_path) == []
