"""``MemoryStore``: the reference store, dicts behind one lock, for tests and one process."""

from __future__ import annotations

import builtins
import dataclasses
import time
from collections.abc import Callable
from threading import Lock
from typing import ParamSpec, TypeVar

from stepkit.errors import RunConflictError, RunNotFoundError
from stepkit.stores._base import BaseStore, Change
from stepkit.stores._records import RunRecord, SignalRecord, VersionRecord
from stepkit.stores._transitions import PurgeRule, newest_first

__all__ = ["MemoryStore"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


class MemoryStore(BaseStore):
    """A store that keeps runs in this process's memory; lost when the process exits.

    Thread-safe. Its async twins run inline (there is no I/O to wait for)::

        store = MemoryStore()
        result = pipeline.run({"a": 1}, store=store)
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock=clock)
        self._lock = Lock()
        self._runs: dict[str, RunRecord] = {}
        self._versions: dict[str, dict[int, VersionRecord]] = {}
        self._mail: dict[str, builtins.list[SignalRecord]] = {}

    async def _acall(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        return fn(*args, **kwargs)  # dict operations under a short lock: no thread needed

    def _insert(self, record: RunRecord, first: VersionRecord | None) -> None:
        with self._lock:
            if record.run_id in self._runs:
                raise RunConflictError(
                    f"run {record.run_id!r} already exists", run_id=record.run_id
                )
            self._runs[record.run_id] = record
            self._versions[record.run_id] = {} if first is None else {first.version: first}

    def _update(
        self, run_id: str, change: Change, version: VersionRecord | None = None
    ) -> RunRecord:
        with self._lock:
            record = self._runs.get(run_id)
            if record is None:
                raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id)
            updated = change(record, self._clock())
            if version is not None:
                self._versions[run_id][version.version] = version
            self._runs[run_id] = updated
            return updated

    def _get(self, run_id: str) -> RunRecord | None:
        return self._runs.get(run_id)

    def _list(
        self, pipeline: str | None, status: str | None, limit: int | None
    ) -> builtins.list[RunRecord]:
        with self._lock:
            runs = builtins.list(self._runs.values())  # a dict keeps the creation order
        return newest_first(runs, pipeline=pipeline, status=status, limit=limit)

    def _deliver(self, signal: SignalRecord, change: Change) -> RunRecord | None:
        run_id = signal.run_id
        with self._lock:
            box = self._mail.get(run_id, [])
            key = signal.idempotency_key
            if key is not None and any(m.idempotency_key == key for m in box):
                return None
            record = self._runs.get(run_id)
            if record is None:
                raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id)
            now = self._clock()
            self._runs[run_id] = change(record, now)
            box.append(dataclasses.replace(signal, seq=len(box) + 1, created_at=now))
            self._mail[run_id] = box
            return record

    def _signals(self, run_id: str) -> builtins.list[SignalRecord] | None:
        with self._lock:
            if run_id not in self._runs:
                return None
            return builtins.list(self._mail.get(run_id, ()))

    def _delete(self, run_id: str) -> bool:
        with self._lock:
            self._mail.pop(run_id, None)
            self._versions.pop(run_id, None)
            return self._runs.pop(run_id, None) is not None

    def _purge(self, rule: PurgeRule) -> int:
        with self._lock:
            now = self._clock()
            doomed = [r.run_id for r in self._runs.values() if rule.matches(r, now)]
            for run_id in doomed:
                del self._runs[run_id]
                self._versions.pop(run_id, None)
                self._mail.pop(run_id, None)
        return len(doomed)

    def _version(self, run_id: str, version: int) -> VersionRecord | None:
        return self._versions.get(run_id, {}).get(version)

    def _history(self, run_id: str) -> builtins.list[VersionRecord] | None:
        with self._lock:
            if run_id not in self._runs:
                return None
            found = sorted(self._versions[run_id].values(), key=lambda v: v.version)
        return [dataclasses.replace(v, snapshot=None) for v in found]
