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

    def _next(
        self, step_name: str, keys: tuple[str, ...], removed: tuple[str, ...]
    ) -> VersionRecord:
        if self.lost is not None:
            raise self.lost
        ctx = self.run.ctx
        changes = dumps(encode_context({k: ctx[k] for k in keys if k in ctx}))
        root = self.run.root
        if root.child is None and root.done is not None:  # the common case, without a tree walk
            position = '{"done":' + dumps(root.done) + "}"
        else:
            position = dumps(to_json(position_tree(root), path="position"))
        return self._version(step_name, changes, removed, position)

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
        self.since += len(changes) + len(position)
        self.since_count += 1
        snapshot = None
        # a snapshot once the diffs since the last one outweigh it (or there are
        # many): rebuilding then reads at most about twice the context's size
        if self.since > self.snapshot_size or self.since_count >= SNAPSHOT_EVERY:
            snapshot = dumps(encode_context(ctx))
            self.snapshot_size, self.since, self.since_count = len(snapshot), 0, 0
        return VersionRecord(
            run_id=self.run_id,
            version=self.version + 1,
            parent=self.parent,
            step_name=step_name,
            changes=changes,
            removed=tuple(k for k in removed if k not in ctx),
            position=position,
            snapshot=snapshot,
            created_at=self.clock(),
            kind=kind,
        )

    def save(self, step_name: str, keys: tuple[str, ...], removed: tuple[str, ...]) -> None:
        record = self._next(step_name, keys, removed)
        store = self.store
        if isinstance(store, BaseStore):  # our own stores: skip re-validating our record
            store.save_step(record, self.owner, self.lease)
        else:
            store.append(record, owner=self.owner, lease=self.lease)
        self.version = self.parent = record.version

    async def asave(self, step_name: str, keys: tuple[str, ...], removed: tuple[str, ...]) -> None:
        # parallel items (tasks) may save at once: versions must be appended in order
        if self._alock is None:
            self._alock = asyncio.Lock()
        async with self._alock:
            record = self._next(step_name, keys, removed)
            store = self.store
            if isinstance(store, BaseStore):
                await store.asave_step(record, self.owner, self.lease)
            else:
                await store.aappend(record, owner=self.owner, lease=self.lease)
            self.version = self.parent = record.version


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
