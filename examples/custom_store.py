"""Writing your own store: a dict-backed backend in a few dozen lines, then a durable run on it.

    python examples/custom_store.py

A store subclasses ``stepkit.stores.BaseStore`` and implements its primitives by
primary key; argument checks, claims, leases, async twins and errors come from
the base. The same contract suite that tests the built-in stores runs against
this one (``tests/stores/conftest.py``). See docs/stores.md.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

from stepkit import Pipeline, RunConflictError, RunNotFoundError, StepEvent
from stepkit.stores import (
    BaseStore,
    Change,
    PurgeRule,
    RunRecord,
    SignalRecord,
    VersionRecord,
    newest_first,
)


class DictStore(BaseStore):
    """Runs in two plain dicts behind one lock: the smallest complete store."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock=clock)
        self._lock = threading.Lock()
        self._runs: dict[str, RunRecord] = {}  # in creation order, as list() needs
        self._versions: dict[tuple[str, int], VersionRecord] = {}
        self._mail: dict[str, list[SignalRecord]] = {}  # workflow signals, by run

    def _insert(self, record: RunRecord, first: VersionRecord | None) -> None:
        with self._lock:
            if record.run_id in self._runs:
                raise RunConflictError(
                    f"run {record.run_id!r} already exists", run_id=record.run_id
                )
            self._runs[record.run_id] = record
            if first is not None:
                self._versions[record.run_id, first.version] = first

    def _update(
        self, run_id: str, change: Change, version: VersionRecord | None = None
    ) -> RunRecord:
        with self._lock:  # the compare-and-set: load, decide, write, under one lock
            record = self._runs.get(run_id)
            if record is None:
                raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id)
            updated = change(record, self.now())  # raises (writing nothing) if not allowed
            if version is not None:
                self._versions[run_id, version.version] = version
            self._runs[run_id] = updated
            return updated

    def _get(self, run_id: str) -> RunRecord | None:
        return self._runs.get(run_id)

    def _list(self, pipeline: str | None, status: str | None, limit: int | None) -> list[RunRecord]:
        with self._lock:
            runs = list(self._runs.values())
        return newest_first(runs, pipeline=pipeline, status=status, limit=limit)

    def _delete(self, run_id: str) -> bool:
        with self._lock:
            return self._drop(run_id)

    def _purge(self, rule: PurgeRule) -> int:
        with self._lock:
            now = self.now()
            doomed = [r.run_id for r in self._runs.values() if rule.matches(r, now)]
            return sum(self._drop(run_id) for run_id in doomed)

    def _drop(self, run_id: str) -> bool:
        self._mail.pop(run_id, None)
        record = self._runs.pop(run_id, None)
        for number in range(1, 1 + (record.version if record else 0)):
            self._versions.pop((run_id, number), None)
        return record is not None

    def _version(self, run_id: str, version: int) -> VersionRecord | None:
        return self._versions.get((run_id, version))

    # for durable workflows that wait for signals (optional otherwise)

    def _deliver(self, signal: SignalRecord, change: Change) -> RunRecord | None:
        with self._lock:
            box = self._mail.setdefault(signal.run_id, [])
            key = signal.idempotency_key
            if key is not None and any(m.idempotency_key == key for m in box):
                return None  # a duplicate: nothing is written
            record = self._runs.get(signal.run_id)
            if record is None:
                raise RunNotFoundError(f"no run {signal.run_id!r}", run_id=signal.run_id)
            now = self.now()
            self._runs[signal.run_id] = change(record, now)
            box.append(dataclasses.replace(signal, seq=len(box) + 1, created_at=now))
            return record

    def _signals(self, run_id: str) -> list[SignalRecord] | None:
        with self._lock:
            return list(self._mail.get(run_id, [])) if run_id in self._runs else None


# -- using it ---------------------------------------------------------------------------------

flow = (
    Pipeline("greet")
    .step("draft", lambda ctx: {"text": f"Hello, {ctx['name']}!"})
    .step("send", lambda ctx: {"sent": bool(ctx.get("approved"))})
)


def pause_after_draft(event: StepEvent) -> None:
    if event.step_name == "draft":
        event.stop_pipeline()


def main() -> dict[str, Any]:
    with DictStore() as store:
        run_id = flow.run({"name": "Ada"}, store=store, on_step_complete=pause_after_draft).run_id
        paused = store.get(run_id)
        done = flow.resume(run_id, store=store, override_data={"approved": True})
        finished = store.get(run_id)
        result = {
            "paused": None if paused is None else (paused.status, paused.step_name),
            "finished": None if finished is None else finished.status,
            "context": dict(done),
            "history": [(v.version, v.kind, v.step_name) for v in store.history(run_id)],
        }
        print(result)
        return result


if __name__ == "__main__":
    main()
