"""Durable runs: what is written to a store when, and how a run is loaded back.

The store conversations (start a run, claim it for a resume, load a version)
are generators that yield ``(method, args, kwargs)``; :func:`drive_store` and
:func:`adrive_store` perform them with the store's sync or async methods, so
the logic is written once. :class:`Persister` writes one version per step.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

from stepkit.checkpoints._decode import from_json, loads
from stepkit.checkpoints._encode import dumps, encode_context, to_json
from stepkit.engine._position import position_of
from stepkit.engine._run import Run
from stepkit.errors import (
    CheckpointMismatchError,
    InvalidArgumentError,
    RunConflictError,
    RunNotFoundError,
    StepkitError,
    StoreError,
)
from stepkit.stores import RunRecord, VersionRecord, rebuild
from stepkit.stores._base import BaseStore

StoreOp = tuple[str, tuple[Any, ...], dict[str, Any]]
StoreGen = Generator[StoreOp, Any, Any]

#: A full snapshot at least every this many versions, so rebuilding reads a bounded chain.
SNAPSHOT_EVERY = 256


def drive_store(gen: StoreGen, store: Any) -> Any:
    """Perform a store conversation with the store's sync methods."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            method, args, kwargs = gen.send(value) if error is None else gen.throw(error)
        except StopIteration as stop:
            return stop.value
        value, error = None, None
        try:
            value = getattr(store, method)(*args, **kwargs)
        except Exception as exc:
            error = exc


async def adrive_store(gen: StoreGen, store: Any) -> Any:
    """Perform a store conversation with the store's async twins (``a`` + name)."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            method, args, kwargs = gen.send(value) if error is None else gen.throw(error)
        except StopIteration as stop:
            return stop.value
        value, error = None, None
        try:
            value = await getattr(store, "a" + method)(*args, **kwargs)
        except Exception as exc:
            error = exc


@dataclass(slots=True)
class State:
    """A run's state as loaded from a store."""

    record: RunRecord
    context: dict[str, Any]
    position: Any
    step_name: str | None
    version: int  # the version this state is
    fingerprint: str
    pipeline_version: str | None
    snapshot_size: int
    since_snapshot: int
    versions_since: int
    previous: RunRecord | None = None  # the record before our claim, to give it back


class Persister:
    """Appends one version per completed step, before the next step starts."""

    __slots__ = (
        "_alock",
        "clock",
        "lease",
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
        self._alock: asyncio.Lock | None = None

    def _next(
        self, step_name: str, keys: tuple[str, ...], removed: tuple[str, ...]
    ) -> VersionRecord:
        ctx = self.run.ctx
        changes = dumps(encode_context({k: ctx[k] for k in keys if k in ctx}))
        root = self.run.root
        if root.child is None and root.done is not None:  # the common case, without a tree walk
            position = '{"done":' + dumps(root.done) + "}"
        else:
            position = dumps(to_json(position_of(root), path="position"))
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
    )
    return record, first


def new_owner() -> str:
    return uuid.uuid4().hex


def existing_run(record: RunRecord | None, run_id: str, pipeline: str) -> StoreGen:
    """``run(run_id=X)`` for an X that exists: its stored result if completed."""
    if record is None:
        return None
    if record.pipeline != pipeline:
        raise RunConflictError(
            f"run id {run_id!r} is already used by a run of pipeline {record.pipeline!r}; "
            "choose another run_id",
            run_id=run_id,
        )
    if record.status != "completed":
        raise RunConflictError(
            f"run {run_id!r} already exists and is {record.status}; resume it with "
            f"pipeline.resume({run_id!r}, store=...) instead of starting it again",
            run_id=run_id,
        )
    return (yield from load(record, None))


def load(record: RunRecord, version: int | None) -> StoreGen:
    """Load the state of ``record`` at ``version`` (default: its latest)."""
    run_id = record.run_id
    if version is not None and (
        isinstance(version, bool)
        or not isinstance(version, int)
        or not 1 <= version <= record.version
    ):
        raise InvalidArgumentError(
            f"version= must be a version number of run {run_id!r}, from 1 to "
            f"{record.version}; got {version!r}"
        )
    chain = yield ("versions", (run_id,), {"upto": version})
    try:
        encoded, last = rebuild(chain)
        context = {k: from_json(v) for k, v in encoded.items()}
        position = loads(last.position)
        meta = json.loads(record.meta)
        fingerprint, pipeline_version = meta["fingerprint"], meta["version"]
        if not isinstance(fingerprint, str) or not isinstance(pipeline_version, str | None):
            raise ValueError("bad meta")
    except StoreError:
        raise
    except (StepkitError, ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"the stored state of run {run_id!r} is corrupt: {exc}") from exc
    since = 0
    for v in reversed(chain):
        if v.snapshot is not None:
            break
        since += len(v.changes) + len(v.position)
    first = chain[0]
    return State(
        record=record,
        context=context,
        position=position,
        step_name=last.step_name,
        version=last.version,
        fingerprint=fingerprint,
        pipeline_version=pipeline_version,
        snapshot_size=len(first.snapshot or ""),
        since_snapshot=since,
        versions_since=len(chain) - 1,
    )


def claim_and_load(
    pipeline: str,
    run_id: str,
    *,
    owner: str,
    lease: float | None,
    recover: bool,
    version: int | None,
    fork: bool,
) -> StoreGen:
    """Fetch a run for ``resume``: the state to continue from, claimed unless forking.

    Returns ``(state, claimed)``; a completed run without ``version``/``fork``
    returns its state with ``claimed`` false (the caller returns the stored result).
    """
    record = yield ("get", (run_id,), {})
    if record is None:
        raise RunNotFoundError(f"no run {run_id!r} in this store", run_id=run_id)
    if record.pipeline != pipeline:
        raise CheckpointMismatchError(
            f"run {run_id!r} belongs to pipeline {record.pipeline!r}, not {pipeline!r}"
        )
    if record.status == "completed" and not fork:
        if version is None:
            return (yield from load(record, None)), False
        raise RunConflictError(
            f"run {run_id!r} is completed; pass fork=True to continue it from version "
            f"{version} as a new run",
            run_id=run_id,
        )
    if fork:
        return (yield from load(record, version)), False
    claimed = yield (
        "claim",
        (run_id,),
        {"owner": owner, "lease": lease, "recover": recover, "expect_version": record.version},
    )
    try:
        state = yield from load(claimed, version)
    except BaseException:
        yield from release(record, owner, "could not load the stored state")
        raise
    state.previous = record
    return state, True


def release(record: RunRecord, owner: str, why: str) -> StoreGen:
    """Give back a claim that will not be used, leaving the run as it was."""
    status = record.status if record.status in ("paused", "failed") else "failed"
    error = record.error if status == record.status else why
    with contextlib.suppress(StepkitError):  # the original error matters more
        yield ("finish", (record.run_id,), {"owner": owner, "status": status, "error": error})
