"""``FileStore``: one folder per run, atomic replace-on-write, ``flock`` for claims.

Layout: ``<root>/<name>/run.json``, ``lock``, the ``.stepkit-run`` marker and
``versions/<000000000001>.json`` (plus ``<n>.snapshot.json`` for snapshots, so
:meth:`history` never reads them).
"""

from __future__ import annotations

import builtins
import errno
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import suppress

from stepkit.errors import RunConflictError, RunNotFoundError
from stepkit.stores._base import Change
from stepkit.stores._records import RunRecord, VersionRecord
from stepkit.stores._transitions import PurgeRule

if sys.platform != "win32":
    pass

from stepkit.stores._file_layout import (
    _MARKER,
    _OWN_FOLDER,
    _STALE_TEMP_SECONDS,
    _TEMP_PREFIX,
    _TRASH_PREFIX,
    _VERSION_FILE,
    _remove_tree,
)
from stepkit.stores._file_wake import FileWake

__all__ = ["FileStore"]


class FileStore(FileWake):
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

    def __repr__(self) -> str:
        return f"FileStore({self._root!r})"

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
