"""Entry points of durable runs: ``run(..., store=)`` and ``resume(run_id, store=)``.

They wrap plain runs through the interface of :mod:`stepkit.engine._entry`
(``prepare_start``/``prepare_resume``, then ``drive_sync``/``drive_async`` with
an ``on_finish`` callback) and add what a store needs: a conversation with the
store before the run (start or claim it, load its state, persist the resume's
override), a :class:`~stepkit.durable._persister.Persister` so every step is
saved before the next, a :class:`~stepkit.durable._hold.Hold` that renews the
claim's lease while the run runs, and the final status when it ends.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from stepkit.checkpoints._document import Meta, encode_checkpoint
from stepkit.durable._claims import State, claim_and_load, existing_run, new_owner, release
from stepkit.durable._hold import Hold
from stepkit.durable._options import DurableOptions
from stepkit.durable._persister import Persister, meta_text, new_run
from stepkit.durable._store_calls import StoreGen, adrive_store, drive_store
from stepkit.engine._entry import (
    Prepared,
    Saved,
    apply_override,
    check_override,
    drive_async,
    drive_sync,
    pipeline_keys,
    prepare_resume,
    prepare_start,
)
from stepkit.engine._options import RunOptions
from stepkit.errors import CheckpointEncodeError, InvalidArgumentError, RunConflictError
from stepkit.events import RunResult
from stepkit.stores._base import BaseStore

if TYPE_CHECKING:
    from stepkit.pipeline._builder import PipelineBuilder as Pipeline


def _stored_result(pipeline: Pipeline, state: State) -> RunResult:
    """The result of a completed run, as stored (nothing runs)."""
    meta = Meta(
        pipeline=pipeline.name,
        version=state.pipeline_version,
        fingerprint=state.fingerprint,
        run_id=state.record.run_id,
        keys=pipeline_keys(pipeline),
    )
    return RunResult(
        state.context,
        status="completed",
        stopped_at=None,
        run_id=state.record.run_id,
        records=[],
        snapshot=partial(encode_checkpoint, meta, state.position, state.step_name, state.context),
    )


def _start_conversation(
    pipeline: Pipeline, prepared: Prepared, options: DurableOptions, run_id_given: bool
) -> StoreGen:
    """Create the run in the store, held by us; or find it already completed (its result)."""
    run = prepared.run
    run_id = run.run_id
    if run_id_given:
        state = yield from existing_run((yield ("get", (run_id,), {})), run_id, pipeline.name)
        if state is not None:
            return _stored_result(pipeline, state)
    try:
        return (yield from _create(pipeline, prepared, options, new_owner()))
    except RunConflictError:  # created meanwhile by someone else
        state = yield from existing_run((yield ("get", (run_id,), {})), run_id, pipeline.name)
        if state is None:
            raise
        return _stored_result(pipeline, state)


def _create(
    pipeline: Pipeline,
    prepared: Prepared,
    options: DurableOptions,
    owner: str,
    *,
    position: Any = None,
    step_name: str | None = None,
) -> StoreGen:
    """Create the run (held by ``owner``) with a snapshot of its context; its :class:`Hold`."""
    store, lease = options.store, options.lease
    try:
        record, first = new_run(
            prepared.run.run_id,
            pipeline.name,
            owner=owner,
            now=store.now(),  # records carry the store's time, as its claims and purges do
            ttl=options.ttl,
            lease=lease,
            meta=meta_text(pipeline.fingerprint, pipeline.version),
            context=prepared.run.ctx,
            position=position,
            step_name=step_name,
        )
    except CheckpointEncodeError as exc:
        raise InvalidArgumentError(
            f"the context of a durable run must be storable by the checkpoint codec: {exc}"
        ) from exc
    yield ("create", (record, first), {})
    return _attach(
        prepared, store, owner, lease, version=1, parent=1, snapshot_size=len(first.snapshot or "")
    )


def _attach(
    prepared: Prepared,
    store: Any,
    owner: str,
    lease: float,
    *,
    version: int,
    parent: int,
    snapshot_size: int,
    since: int = 0,
    since_count: int = 0,
) -> Hold:
    """Make ``prepared`` save every step as ``owner``; the hold to drive it with."""
    persister = Persister(
        store,
        prepared.run,
        owner=owner,
        version=version,
        parent=parent,
        lease=lease,
        clock=store.now,
        snapshot_size=snapshot_size,
        since=since,
        since_count=since_count,
    )
    prepared.run.persister = persister
    return Hold(store, prepared.run.run_id, owner, lease, persister)


def _drive(prepared: Prepared, hold: Hold) -> RunResult:
    """Run a held run under ``run()``: heartbeat while it runs, release when it ends."""

    def on_finish(stopped: bool, error: BaseException | None) -> None:
        hold.stop()
        drive_store(hold.finish(stopped, error), hold.store)

    hold.start()
    return drive_sync(prepared, on_finish)


async def _adrive(prepared: Prepared, hold: Hold) -> RunResult:
    """Run a held run under ``arun()``: heartbeat task while it runs, release when it ends."""

    async def on_finish(stopped: bool, error: BaseException | None) -> None:
        await hold.astop()
        await adrive_store(hold.finish(stopped, error), hold.store)

    hold.astart()
    return await drive_async(prepared, on_finish)


def run_durable(
    pipeline: Pipeline, input: Any, run: RunOptions, options: DurableOptions
) -> RunResult:
    """``run(..., store=)``: start a run held by us (or return it, if it completed)."""
    prepared = prepare_start(pipeline, input, run)
    start = _start_conversation(pipeline, prepared, options, run.run_id is not None)
    out = drive_store(start, options.store)
    return out if isinstance(out, RunResult) else _drive(prepared, out)


async def arun_durable(
    pipeline: Pipeline, input: Any, run: RunOptions, options: DurableOptions
) -> RunResult:
    """Async twin of :func:`run_durable`."""
    prepared = prepare_start(pipeline, input, run)
    start = _start_conversation(pipeline, prepared, options, run.run_id is not None)
    out = await adrive_store(start, options.store)
    return out if isinstance(out, RunResult) else await _adrive(prepared, out)


def _resume_conversation(
    pipeline: Pipeline, run_id: str, run: RunOptions, options: DurableOptions
) -> StoreGen:
    """Claim (or fork) a stored run, persist the override, prepare; or its stored result.

    Returns a :class:`RunResult` (a completed run's) or ``(prepared, hold)``.
    """
    if not isinstance(run_id, str) or not run_id:
        raise InvalidArgumentError(f"resume() needs a run id (a non-empty str), got {run_id!r}")
    override = options.override_data
    encoded = check_override(override)  # before anything runs or is stored
    fork, store = options.fork, options.store
    owner, lease = new_owner(), options.lease
    state, claimed = yield from claim_and_load(
        pipeline.name,
        run_id,
        owner=owner,
        lease=lease,
        recover=options.recover,
        dead_owner=options.dead_owner,
        expect_version=options.expect_version,
        version=options.version,
        fork=fork,
        at_once=isinstance(store, BaseStore),
    )
    if not claimed and not fork:
        return _stored_result(pipeline, state)
    previous = state.previous or state.record
    saved = Saved(
        dict(state.context),
        state.position,
        state.step_name,
        state.pipeline_version,
        state.fingerprint,
    )
    try:
        prepared = prepare_resume(pipeline, saved, run, run_id=new_owner() if fork else run_id)
    except BaseException:
        if claimed:
            yield from release(previous, owner, "resume refused: see the raised error")
        raise
    if fork:
        hold = yield from _create(
            pipeline,
            prepared,
            options,
            owner,
            position=state.position,
            step_name=state.step_name,
        )
    else:
        hold = _attach(
            prepared,
            store,
            owner,
            lease,
            version=state.record.version,
            parent=state.version,
            snapshot_size=state.snapshot_size,
            since=state.since_snapshot,
            since_count=state.versions_since,
        )
    if encoded:  # what the resume says is part of the run: saved before the next step
        apply_override(prepared, override)
        record = hold.persister.override(encoded, state.step_name, state.position_text)
        try:
            yield ("append", (record,), {"owner": owner, "lease": lease})
        except BaseException as exc:
            if fork:
                yield from hold.finish(False, exc)
            else:
                yield from release(previous, owner, "could not store the override")
            raise
        hold.persister.advanced(record)
    return prepared, hold


def resume(pipeline: Pipeline, run_id: Any, run: RunOptions, options: DurableOptions) -> RunResult:
    """``resume(run_id, store=)``: claim the run and continue it (or return its stored result)."""
    conversation = _resume_conversation(pipeline, run_id, run, options)
    out = drive_store(conversation, options.store)
    return out if isinstance(out, RunResult) else _drive(*out)


async def aresume(
    pipeline: Pipeline, run_id: Any, run: RunOptions, options: DurableOptions
) -> RunResult:
    """Async twin of :func:`resume`."""
    conversation = _resume_conversation(pipeline, run_id, run, options)
    out = await adrive_store(conversation, options.store)
    return out if isinstance(out, RunResult) else await _adrive(*out)
