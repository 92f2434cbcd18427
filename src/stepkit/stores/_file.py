"""``FileStore``: one folder per run, atomic replace-on-write, ``flock`` for claims.

Layout: ``<root>/<name>/run.json``, ``lock``, the ``.stepkit-run`` marker and
``versions/<000000000001>.json`` (plus ``<n>.snapshot.json`` for snapshots, so
:meth:`history` never reads them).
"""

from __future__ import annotations

import builtins
import dataclasses
import errno
import hashlib
import json
import os
import re
import shutil
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from stepkit.errors import RunConflictError, RunNotFoundError, StoreError
from stepkit.stores._base import BaseStore, Change
from stepkit.stores._records import (
    RunRecord,
    SignalRecord,
    VersionRecord,
    load_object,
    run_from_json,
    run_to_json,
    signals_from_json,
    signals_to_json,
    version_problem,
)
from stepkit.stores._transitions import PurgeRule

if sys.platform != "win32":
    import fcntl

__all__ = ["FileStore"]

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


class FileStore(BaseStore):
    """A store in a folder of plain files, safe for several processes on one machine.

    Every write goes to a unique temporary file in the same folder, is
    fsynced, then ``os.replace``-d into place (and the folder fsynced), so a
    crash leaves either the old or the new file. Claims, appends and finishes
    hold an exclusive ``fcntl.flock`` on the run's ``lock`` file. POSIX only,
    on a local file system (not NFS). ``fsync=False`` skips the fsyncs: still
    safe against process crashes, not against power loss.

    Folder names escape the run id: ``[a-z0-9_-]`` and non-leading ``.`` are
    kept, every other byte of its UTF-8 becomes ``%XX`` (upper case too, for
    case-insensitive file systems), so ``/`` and ``..`` can never name a path
    (NUL is refused by every store); long ids end in a SHA-256 digest instead. :meth:`list` and
    :meth:`purge` scan every run folder: O(runs)::

        store = FileStore(".stepkit/runs")
    """

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

    def __repr__(self) -> str:
        return f"FileStore({self._root!r})"

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

    # -- primitives ------------------------------------------------------------------------

    def _insert(self, record: RunRecord, first: VersionRecord | None) -> None:
        target = self._dir(record.run_id)
        if os.path.lexists(target):
            raise RunConflictError(f"run {record.run_id!r} already exists", run_id=record.run_id)
        # Build the whole folder aside, then rename it into place: a run appears complete.
        temp = os.path.join(self._root, f"{_TEMP_PREFIX}{uuid.uuid4().hex}")
        versions_dir = os.path.join(temp, "versions")
        try:
            os.mkdir(temp)
            os.close(os.open(os.path.join(temp, _MARKER), os.O_WRONLY | os.O_CREAT, 0o666))
            os.mkdir(versions_dir)
            self._write_lock(temp)
            if first is not None:
                self._write_version(versions_dir, first)
            self._write_run(temp, record)
            self._sync_dir(versions_dir)
            self._sync_dir(temp)
            try:
                os.rename(temp, target)
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    raise RunConflictError(
                        f"run {record.run_id!r} already exists", run_id=record.run_id
                    ) from None
                raise
        except BaseException:
            _remove_tree(temp)
            raise
        self._sync_dir(self._root)

    def _update(
        self, run_id: str, change: Change, version: VersionRecord | None = None
    ) -> RunRecord:
        with self._locked(run_id) as run_dir:
            record = self._read_run(run_dir, run_id)
            if record is None:
                raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id)
            updated = change(record, self._clock())
            if version is not None:
                versions_dir = os.path.join(run_dir, "versions")
                self._write_version(versions_dir, version)
                self._sync_dir(versions_dir)
            self._write_run(run_dir, updated)  # the commit point
            self._sync_dir(run_dir)
            return updated

    def _get(self, run_id: str) -> RunRecord | None:
        return self._read_run(self._dir(run_id), run_id)

    def _deliver(self, signal: SignalRecord, change: Change) -> RunRecord | None:
        with self._locked(signal.run_id) as run_dir:
            record = self._read_run(run_dir, signal.run_id)
            if record is None:
                raise RunNotFoundError(f"no run {signal.run_id!r}", run_id=signal.run_id)
            box = self._read_mail(run_dir)
            key = signal.idempotency_key
            if key is not None and any(m.idempotency_key == key for m in box):
                return None
            now = self._clock()
            updated = change(record, now)
            box.append(dataclasses.replace(signal, seq=len(box) + 1, created_at=now))
            # the run first: a crash in between wakes the run for nothing (harmless), and
            # the sender, who got no receipt, sends again
            self._write_run(run_dir, updated)
            self._write(run_dir, "signals.json", signals_to_json(box).encode())
            self._sync_dir(run_dir)
            return record

    def _read_mail(self, run_dir: str) -> builtins.list[SignalRecord]:
        path = os.path.join(run_dir, "signals.json")
        data = _read(path)
        return [] if data is None else signals_from_json(data, path)

    def _signals(self, run_id: str) -> builtins.list[SignalRecord] | None:
        run_dir = self._dir(run_id)
        if self._read_run(run_dir, run_id) is None:
            return None
        return self._read_mail(run_dir)

    def _scan(self) -> Iterator[RunRecord]:
        with os.scandir(self._root) as entries:
            names = [e.name for e in entries if not e.name.startswith(".")]
        for name in names:
            record = self._read_run(os.path.join(self._root, name), None)
            if record is not None:  # None: deleted while we scanned
                yield record

    def _list(
        self, pipeline: str | None, status: str | None, limit: int | None
    ) -> builtins.list[RunRecord]:
        found = [
            r
            for r in self._scan()
            if (pipeline is None or r.pipeline == pipeline)
            and (status is None or r.status == status)
        ]
        # on equal update times the later created run first: read the creation
        # stamps only of runs that tie (folder names say nothing of the order)
        times = Counter(r.updated_at for r in found)
        found.sort(
            key=lambda r: (r.updated_at, self._created(r.run_id) if times[r.updated_at] > 1 else 0),
            reverse=True,
        )
        return found if limit is None else found[:limit]

    def _remove_locked(self, run_id: str, rule: PurgeRule | None) -> bool:
        """Delete a run under its lock (if it still matches ``rule``); True if deleted."""
        trash = os.path.join(self._root, f"{_TRASH_PREFIX}{uuid.uuid4().hex}")
        try:
            with self._locked(run_id) as run_dir:
                if rule is not None:
                    current = self._read_run(run_dir, run_id)
                    if current is None or not rule.matches(current, self._clock()):
                        return False
                os.rename(run_dir, trash)
        except RunNotFoundError:
            return False
        self._sync_dir(self._root)
        _remove_tree(trash)
        return True

    def _delete(self, run_id: str) -> bool:
        return self._remove_locked(run_id, None)

    def _purge(self, rule: PurgeRule) -> int:
        self._sweep_leftovers()
        now = self._clock()
        doomed = [r.run_id for r in self._scan() if rule.matches(r, now)]
        return sum(self._remove_locked(run_id, rule) for run_id in doomed)

    def _sweep_leftovers(self) -> None:
        """Remove what crashed writers left: trash folders, and old half-built runs.

        Only folders this store made: named ``.stepkit-(tmp|trash)-<32 hex>``, real
        folders (not links) holding its marker file; an empty one is merely rmdir-ed.
        Anything else in the root, however it is named, is left alone.
        """
        with os.scandir(self._root) as entries:
            found = [e for e in entries if _OWN_FOLDER.match(e.name)]
        for entry in found:
            with suppress(FileNotFoundError):  # a create may rename its temp folder away
                if not entry.is_dir(follow_symlinks=False):
                    continue
                if entry.name.startswith(_TEMP_PREFIX) and (
                    entry.stat(follow_symlinks=False).st_mtime >= time.time() - _STALE_TEMP_SECONDS
                ):
                    continue  # may still be renamed into place by its writer
                marker = os.path.join(entry.path, _MARKER)
                if os.path.isfile(marker) and not os.path.islink(marker):
                    _remove_tree(entry.path)
                else:
                    with suppress(OSError):  # succeeds only if empty: nothing to lose
                        os.rmdir(entry.path)

    def _version(self, run_id: str, version: int) -> VersionRecord | None:
        return self._read_version(self._dir(run_id), version, snapshot=True)

    def _history(self, run_id: str) -> builtins.list[VersionRecord] | None:
        run_dir = self._dir(run_id)
        record = self._read_run(run_dir, run_id)
        if record is None:
            return None
        try:
            names = os.listdir(os.path.join(run_dir, "versions"))
        except FileNotFoundError:
            return None
        # Versions above record.version are leftovers of an append that crashed before
        # its commit point; they are invisible (and overwritten by the next append).
        numbers = sorted(
            n
            for n in (int(m.group(1)) for m in map(_VERSION_FILE.match, names) if m)
            if n <= record.version
        )
        found = []
        for n in numbers:
            version = self._read_version(run_dir, n, snapshot=False)
            if version is not None:
                found.append(version)
        return found
