"""What a durable run writes, and when: the first snapshot, an override, one version per step."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any, Literal

from stepkit.checkpoints._encode import dumps, encode_context, to_json
from stepkit.engine._position import position_tree
from stepkit.engine._run import Run
from stepkit.stores import RunRecord, VersionRecord
from stepkit.stores._base import BaseStore

#: A full snapshot at least every this many versions, so rebuilding reads a bounded chain.
SNAPSHOT_EVERY = 256


class Persister:
    """Appends one version per completed step, before the next step starts."""

    __slots__ = (
        "_alock",
        "_positions",
        "_save_step",
        "clock",
        "lease",
        "lost",
        "owner",
        "parent",
        "run",
        "run_id",
        "since",
        "since_count",
        "snapshot_size",
        "store",
        "version",
    )

    def __init__(
        self,
        store: Any,
        run: Run,
        *,
        owner: str,
        version: int,
        parent: int,
        lease: float | None,
        clock: Callable[[], float],
        snapshot_size: int,
        since: int = 0,
        since_count: int = 0,
    ) -> None:
        self.store, self.run, self.run_id = store, run, run.run_id
        self.owner, self.version, self.parent = owner, version, parent
        self.lease, self.clock = lease, clock
        self.snapshot_size, self.since, self.since_count = snapshot_size, since, since_count
        self.lost: Exception | None = None  # set by the heartbeat when the claim is lost
        self._alock: asyncio.Lock | None = None
        self._positions: dict[str, str] = {}  # step name -> its stored position
        self._save_step = store.save_step if isinstance(store, BaseStore) else None

    def _fields(
        self, step_name: str, keys: tuple[str, ...], removed: tuple[str, ...]
    ) -> tuple[str, str, tuple[str, ...], str, str | None]:
        """What a step's version holds: (step name, changes, removed, position, snapshot)."""
        if self.lost is not None:
            raise self.lost
        ctx = self.run.ctx
        changes = dumps(encode_context({k: ctx[k] for k in keys if k in ctx}))
        root = self.run.root
        done = root.done
        if root.child is None and done is not None and root.walk is None:  # the common case
            position = self._positions.get(done)
            if position is None:
                position = self._positions[done] = '{"done":' + dumps(done) + "}"
        else:
            position = dumps(to_json(position_tree(root), path="position"))
        if removed:
            removed = tuple(k for k in removed if k not in ctx)
        return step_name, changes, removed, position, self._snapshot(len(changes) + len(position))

    def _snapshot(self, size: int) -> str | None:
        """Count a version of ``size`` characters; a full snapshot if one is due."""
        self.since += size
        self.since_count += 1
        # a snapshot once the diffs since the last one outweigh it (or there are
        # many): rebuilding then reads at most about twice the context's size
        if self.since > self.snapshot_size or self.since_count >= SNAPSHOT_EVERY:
            snapshot = dumps(encode_context(self.run.ctx))
            self.snapshot_size, self.since, self.since_count = len(snapshot), 0, 0
            return snapshot
        return None

    def override(
        self, encoded: Mapping[str, Any], step_name: str | None, position: str
    ) -> VersionRecord:
        """The version recording a resume's ``override_data`` (already merged into the context).

        ``encoded`` is the override as the codec encoded it; ``position`` the
        stored position the run resumes from, unchanged.
        """
        return self._version(step_name, dumps(encoded), (), position, kind="override")

    def advanced(self, record: VersionRecord) -> None:
        """``record`` was appended: the next version follows it."""
        self.version = self.parent = record.version

    def _version(
        self,
        step_name: str | None,
        changes: str,
        removed: tuple[str, ...],
        position: str,
        kind: Literal["step", "override"] = "step",
    ) -> VersionRecord:
        ctx = self.run.ctx
        return VersionRecord(
            run_id=self.run_id,
            version=self.version + 1,
            parent=self.parent,
            step_name=step_name,
            changes=changes,
            removed=tuple(k for k in removed if k not in ctx),
            position=position,
            snapshot=self._snapshot(len(changes) + len(position)),
            created_at=self.clock(),
            kind=kind,
        )

    def save(self, step_name: str, keys: tuple[str, ...], removed: tuple[str, ...]) -> None:
        name, changes, gone, position, snapshot = self._fields(step_name, keys, removed)
        number = self.version + 1
        if self._save_step is not None:  # our own stores: the fields, no record to re-check
            row = (self.run_id, number, self.parent, name, changes, gone, position, snapshot)
            self._save_step((*row, self.clock()), self.owner, self.lease)
        else:
            self.store.append(
                self._record(number, name, changes, gone, position, snapshot),
                owner=self.owner,
                lease=self.lease,
            )
        self.version = self.parent = number

    def _record(
        self,
        number: int,
        step_name: str,
        changes: str,
        removed: tuple[str, ...],
        position: str,
        snapshot: str | None,
    ) -> VersionRecord:
        return VersionRecord(
            self.run_id,
            number,
            self.parent,
            step_name,
            changes,
            removed,
            position,
            snapshot,
            self.clock(),
        )

    async def asave(self, step_name: str, keys: tuple[str, ...], removed: tuple[str, ...]) -> None:
        # parallel items (tasks) may save at once: versions must be appended in order
        if self._alock is None:
            self._alock = asyncio.Lock()
        async with self._alock:
            name, changes, gone, position, snapshot = self._fields(step_name, keys, removed)
            number = self.version + 1
            store = self.store
            if isinstance(store, BaseStore):
                row = (self.run_id, number, self.parent, name, changes, gone, position, snapshot)
                await store.asave_step((*row, self.clock()), self.owner, self.lease)
            else:
                record = self._record(number, name, changes, gone, position, snapshot)
                await store.aappend(record, owner=self.owner, lease=self.lease)
            self.version = self.parent = number


def meta_text(fingerprint: str, version: str | None) -> str:
    return json.dumps({"format": 1, "fingerprint": fingerprint, "version": version})


def new_run(
    run_id: str,
    pipeline: str,
    *,
    owner: str,
    now: float,
    ttl: float | None,
    lease: float | None,
    meta: str,
    context: Mapping[str, Any],
    position: Any = None,
    step_name: str | None = None,
) -> tuple[RunRecord, VersionRecord]:
    """The record and first version (a full snapshot) of a run about to start."""
    snapshot = dumps(encode_context(context))
    record = RunRecord(
        run_id=run_id,
        pipeline=pipeline,
        status="running",
        version=1,
        step_name=step_name,
        error=None,
        created_at=now,
        updated_at=now,
        expires_at=None if ttl is None else now + ttl,
        owner=owner,
        lease_until=None if lease is None else now + lease,
        meta=meta,
    )
    first = VersionRecord(
        run_id=run_id,
        version=1,
        parent=None,
        step_name=step_name,
        changes="{}",
        removed=(),
        position=dumps(to_json(position, path="position")),
        snapshot=snapshot,
        created_at=now,
        kind="start",
    )
    return record, first
