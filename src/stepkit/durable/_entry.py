"""Entry points of durable runs: ``run(..., store=)`` and ``resume(run_id, store=)``.

They prepare a run as :mod:`stepkit.engine._entry` does, then hold a conversation
with the store (start or claim the run, load its state) and attach a
:class:`~stepkit.durable._persister.Persister` so every step is saved before the next.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from stepkit.checkpoints._document import Meta, encode_checkpoint
from stepkit.durable._claims import State, claim_and_load, existing_run, new_owner, release
from stepkit.durable._persister import Persister, meta_text, new_run
from stepkit.durable._store_calls import StoreGen, adrive_store, drive_store
from stepkit.engine._entry import (
    RUN_OPTIONS,
    Prepared,
    Saved,
    _check_options,
    _check_override,
    _drive_async,
    _drive_sync,
    _keys,
    _start,
    prepare_resume,
    seconds_option,
)
from stepkit.errors import InvalidArgumentError, RunConflictError
from stepkit.events import RunResult
from stepkit.stores import Store

if TYPE_CHECKING:
    from stepkit.pipeline._builder import PipelineBuilder as Pipeline

DURABLE_OPTIONS = frozenset({"store", "ttl", "lease"})
RESUME_BY_ID_OPTIONS = (
    (RUN_OPTIONS - {"run_id"})
    | DURABLE_OPTIONS
    | {
        "override_data",
        "recover",
        "version",
        "fork",
        "strict",
    }
)


def _check_store(store: Any, call: str) -> Any:
    if not isinstance(store, Store):
        raise InvalidArgumentError(
            f"{call}: store= must be a stepkit store (MemoryStore, FileStore, SQLiteStore, "
            f"or stepkit.open_store(url)), got {type(store).__name__}"
        )
    return store


def _plain(options: Mapping[str, Any], drop: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k not in drop}


def _stored_result(pipeline: Pipeline, state: State) -> RunResult:
    """The result of a completed run, as stored (nothing runs)."""
    meta = Meta(
        pipeline=pipeline.name,
        version=state.pipeline_version,
        fingerprint=state.fingerprint,
        run_id=state.record.run_id,
        keys=_keys(pipeline),
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
    pipeline: Pipeline, prepared: Prepared, store: Any, options: Mapping[str, Any]
) -> StoreGen:
    """Create the run in the store (or find it already completed); attach a persister."""
    run = prepared.run
    run_id = run.run_id
    if "run_id" in options:
        state = yield from existing_run((yield ("get", (run_id,), {})), run_id, pipeline.name)
        if state is not None:
            return _stored_result(pipeline, state)
    clock = store.now  # records carry the store's time, as its claims and purges do
    try:
        yield from _create(pipeline, prepared, store, options, new_owner(), clock)
    except RunConflictError:  # created meanwhile by someone else
        state = yield from existing_run((yield ("get", (run_id,), {})), run_id, pipeline.name)
        if state is None:
            raise
        return _stored_result(pipeline, state)
    return None


def _create(
    pipeline: Pipeline,
    prepared: Prepared,
    store: Any,
    options: Mapping[str, Any],
    owner: str,
    clock: Any,
    *,
    position: Any = None,
    step_name: str | None = None,
) -> StoreGen:
    """Create the run (held by ``owner``) with a snapshot of its context; attach a persister."""
    lease = seconds_option(options, "lease")
    record, first = new_run(
        prepared.run.run_id,
        pipeline.name,
        owner=owner,
        now=clock(),
        ttl=seconds_option(options, "ttl"),
        lease=lease,
        meta=meta_text(pipeline.fingerprint, pipeline.version),
        context=prepared.run.ctx,
        position=position,
        step_name=step_name,
    )
    yield ("create", (record, first), {})
    _attach(
        prepared,
        store,
        owner,
        lease,
        clock,
        version=1,
        parent=1,
        snapshot_size=len(first.snapshot or ""),
    )


def _attach(
    prepared: Prepared,
    store: Any,
    owner: str,
    lease: float | None,
    clock: Any,
    *,
    version: int,
    parent: int,
    snapshot_size: int,
    since: int = 0,
    since_count: int = 0,
) -> None:
    prepared.store, prepared.owner = store, owner
    prepared.run.persister = Persister(
        store,
        prepared.run,
        owner=owner,
        version=version,
        parent=parent,
        lease=lease,
        clock=clock,
        snapshot_size=snapshot_size,
        since=since,
        since_count=since_count,
    )


def _start_durable(pipeline: Pipeline, input: Any, options: Mapping[str, Any]) -> Prepared:
    _check_store(options["store"], "run()")
    return _start(pipeline, input, _plain(options, DURABLE_OPTIONS))


def run_durable(pipeline: Pipeline, input: Any, options: Mapping[str, Any]) -> RunResult:
    prepared = _start_durable(pipeline, input, options)
    store = options["store"]
    stored = drive_store(_start_conversation(pipeline, prepared, store, options), store)
    return stored if stored is not None else _drive_sync(prepared)


async def arun_durable(pipeline: Pipeline, input: Any, options: Mapping[str, Any]) -> RunResult:
    prepared = _start_durable(pipeline, input, options)
    store = options["store"]
    stored = await adrive_store(_start_conversation(pipeline, prepared, store, options), store)
    return stored if stored is not None else await _drive_async(prepared)


def _resume_conversation(
    pipeline: Pipeline, run_id: str, store: Any, options: Mapping[str, Any]
) -> StoreGen:
    """Claim (or fork) a stored run and prepare its continuation; or its stored result."""
    if not isinstance(run_id, str) or not run_id:
        raise InvalidArgumentError(f"resume() needs a run id (a non-empty str), got {run_id!r}")
    override = options.get("override_data")
    _check_override(override)
    fork, recover = bool(options.get("fork")), bool(options.get("recover"))
    clock = store.now  # records carry the store's time, as its claims and purges do
    owner, lease = new_owner(), seconds_option(options, "lease")
    state, claimed = yield from claim_and_load(
        pipeline.name,
        run_id,
        owner=owner,
        lease=lease,
        recover=recover,
        version=options.get("version"),
        fork=fork,
    )
    if not claimed and not fork:
        return _stored_result(pipeline, state)
    plain = _plain(options, RESUME_BY_ID_OPTIONS - RUN_OPTIONS - {"strict"})
    saved = Saved(
        state.context, state.position, state.step_name, state.pipeline_version, state.fingerprint
    )
    new_id = new_owner() if fork else run_id
    try:
        prepared = prepare_resume(pipeline, saved, override, plain, run_id=new_id)
    except BaseException:
        if claimed:
            previous = state.previous or state.record
            yield from release(previous, owner, "resume refused: see the raised error")
        raise
    if fork:
        yield from _create(
            pipeline,
            prepared,
            store,
            options,
            owner,
            clock,
            position=state.position,
            step_name=state.step_name,
        )
    else:
        _attach(
            prepared,
            store,
            owner,
            lease,
            clock,
            version=state.record.version,
            parent=state.version,
            snapshot_size=state.snapshot_size,
            since=state.since_snapshot,
            since_count=state.versions_since,
        )
    return prepared


def _check_resume(options: Mapping[str, Any]) -> Any:
    _check_options(options, RESUME_BY_ID_OPTIONS, "resume")
    if "store" not in options:
        raise InvalidArgumentError("resume() needs store=: the store the run was saved in")
    return _check_store(options["store"], "resume()")


def resume(pipeline: Pipeline, run_id: Any, options: Mapping[str, Any]) -> RunResult:
    store = _check_resume(options)
    out = drive_store(_resume_conversation(pipeline, run_id, store, options), store)
    return out if isinstance(out, RunResult) else _drive_sync(out)


async def aresume(pipeline: Pipeline, run_id: Any, options: Mapping[str, Any]) -> RunResult:
    store = _check_resume(options)
    out = await adrive_store(_resume_conversation(pipeline, run_id, store, options), store)
    return out if isinstance(out, RunResult) else await _drive_async(out)
