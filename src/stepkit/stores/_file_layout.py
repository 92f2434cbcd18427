"""How :class:`~stepkit.stores.FileStore` lays a run out on disk: paths, atomic files, locks.

``<root>/<name>/run.json``, ``lock``, the ``.stepkit-run`` marker and
``versions/<000000000001>.json`` (plus ``<n>.snapshot.json``); ``signals.json``
holds a workflow run's mailbox. Every write replaces a file atomically.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import re
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from stepkit.errors import RunNotFoundError, StoreError
from stepkit.stores._base import BaseStore
from stepkit.stores._records import (
    RunRecord,
    VersionRecord,
    load_object,
    run_from_json,
    run_to_json,
    version_problem,
)

if sys.platform != "win32":
    import fcntl


__all__ = ["FileLayout"]

_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_-.")
_VERSION_FILE = re.compile(r"^(\d{12})\.json$")
_STALE_TEMP_SECONDS = 3600.0
# Folders this store makes beside the runs (half-built runs, deleted runs awaiting
# removal) have names it owns outright and hold a marker file; purge() sweeps only those.
_TEMP_PREFIX, _TRASH_PREFIX = ".stepkit-tmp-", ".stepkit-trash-"
_OWN_FOLDER = re.compile(r"^\.stepkit-(tmp|trash)-[0-9a-f]{32}$")
_MARKER = ".stepkit-run"
_stamp_lock = threading.Lock()
_last_stamp = 0  # creation stamps are strictly increasing within a process


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _remove_tree(path: str) -> None:
    """Remove a folder this store made, its marker last, so a crash midway leaves it sweepable."""
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        if name != _MARKER:
            child = os.path.join(path, name)
            if os.path.isdir(child) and not os.path.islink(child):
                shutil.rmtree(child, ignore_errors=True)
            else:
                with suppress(OSError):
                    os.unlink(child)
    with suppress(OSError):
        os.unlink(os.path.join(path, _MARKER))
    with suppress(OSError):
        os.rmdir(path)


class FileLayout(BaseStore):
    """The files of one run folder, read and written safely (see ``FileStore``)."""

    _backend_errors = (OSError, ValueError)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(clock=clock)
        if sys.platform == "win32":  # pragma: no cover
            raise StoreError("FileStore needs POSIX file locks; use SQLiteStore on Windows")
        self._root = os.path.abspath(os.fspath(path))
        self._fsync = bool(fsync)
        try:
            os.makedirs(self._root, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create FileStore folder {self._root!r}: {exc}") from exc

    # -- paths, files and locks ------------------------------------------------------------

    @staticmethod
    def _name(run_id: str) -> str:
        raw = run_id.encode("utf-8")
        name = "".join(
            chr(b) if b in _SAFE and (b != 0x2E or i > 0) else f"%{b:02X}"
            for i, b in enumerate(raw)
        )
        if len(name) > 120:  # '~' is always escaped above, so this cannot collide
            name = f"{name[:80]}~{hashlib.sha256(raw).hexdigest()}"
        return name

    def _dir(self, run_id: str) -> str:
        return os.path.join(self._root, self._name(run_id))

    def _sync_dir(self, path: str) -> None:
        if self._fsync:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _write(self, directory: str, name: str, data: bytes) -> None:
        """Atomically replace ``directory/name``; the caller fsyncs the folder."""
        temp = os.path.join(directory, f".{name}.{uuid.uuid4().hex}.tmp")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with open(fd, "wb") as f:
                f.write(data)
                if self._fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(temp, os.path.join(directory, name))
        except BaseException:
            with suppress(OSError):
                os.unlink(temp)
            raise

    @staticmethod
    def _write_lock(run_dir: str) -> None:
        """Create a run's lock file, holding its creation stamp (the tie-break of list())."""
        global _last_stamp
        with _stamp_lock:
            _last_stamp = max(time.time_ns(), _last_stamp + 1)
            stamp = _last_stamp
        fd = os.open(os.path.join(run_dir, "lock"), os.O_WRONLY | os.O_CREAT, 0o666)
        with open(fd, "wb") as f:
            f.write(str(stamp).encode())

    def _created(self, run_id: str) -> int:
        """The creation stamp in a run's lock file; 0 (oldest) when absent or unreadable."""
        data = _read(os.path.join(self._dir(run_id), "lock"))
        return int(data) if data is not None and data.isdigit() and len(data) < 30 else 0

    @contextmanager
    def _locked(self, run_id: str) -> Iterator[str]:
        """Hold the run's lock; yield its folder. RunNotFoundError if it is gone."""
        run_dir = self._dir(run_id)
        lock_path = os.path.join(run_dir, "lock")
        while True:
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
            except (FileNotFoundError, NotADirectoryError):
                raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    current = os.stat(lock_path).st_ino
                except FileNotFoundError:
                    raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id) from None
                if current == os.fstat(fd).st_ino:
                    yield run_dir
                    return
                # The run was deleted and created again while we waited: lock the new one.
            finally:
                os.close(fd)

    def _read_run(self, run_dir: str, run_id: str | None) -> RunRecord | None:
        path = os.path.join(run_dir, "run.json")
        data = _read(path)
        if data is None:
            return None
        record = run_from_json(load_object(data, path), path)
        if self._dir(record.run_id) != run_dir or (run_id is not None and record.run_id != run_id):
            raise StoreError(f"corrupt file {path}: it holds run {record.run_id!r}")
        return record

    def _write_run(self, run_dir: str, record: RunRecord) -> None:
        self._write(run_dir, "run.json", json.dumps(run_to_json(record)).encode())

    def _write_version(self, versions_dir: str, version: VersionRecord) -> None:
        stem = f"{version.version:012d}"
        if version.snapshot is not None:  # first: the version file is what makes it count
            self._write(versions_dir, f"{stem}.snapshot.json", version.snapshot.encode())
        data = {
            "run_id": version.run_id,
            "version": version.version,
            "parent": version.parent,
            "step_name": version.step_name,
            "changes": version.changes,
            "removed": list(version.removed),
            "position": version.position,
            "snapshot": version.snapshot is not None,
            "created_at": version.created_at,
            "kind": version.kind,
        }
        self._write(versions_dir, f"{stem}.json", json.dumps(data).encode())

    def _read_version(self, run_dir: str, number: int, *, snapshot: bool) -> VersionRecord | None:
        path = os.path.join(run_dir, "versions", f"{number:012d}.json")
        raw = _read(path)
        if raw is None:
            return None
        data = load_object(raw, path)
        try:
            removed = data["removed"]
            text: str | None = None
            if snapshot and data["snapshot"] is True:
                blob = _read(path[: -len(".json")] + ".snapshot.json")
                if blob is None:
                    raise StoreError(f"corrupt run folder: the snapshot of {path} is missing")
                text = blob.decode("utf-8")
            version = VersionRecord(
                run_id=data["run_id"],
                version=data["version"],
                parent=data["parent"],
                step_name=data["step_name"],
                changes=data["changes"],
                removed=tuple(removed) if isinstance(removed, builtins.list) else removed,
                position=data["position"],
                snapshot=text,
                created_at=data["created_at"],
                kind=data.get("kind", "step"),  # absent in files written before kinds
            )
        except (KeyError, TypeError, UnicodeDecodeError) as exc:
            raise StoreError(f"corrupt file {path}: {exc!r}") from exc
        problem = version_problem(version)
        if problem is not None or version.version != number:
            raise StoreError(f"corrupt file {path}: {problem or 'wrong version number'}")
        return version
