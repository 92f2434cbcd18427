"""Entry points behind ``Pipeline.run`` and friends: validate, prepare, drive, wrap.

Everything here happens once per run; the per-step work is in the engine.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from typing import TYPE_CHECKING, Any

from stepkit.checkpoints._document import Meta, decode_with_keys, encode_checkpoint
from stepkit.checkpoints._encode import encode_context, to_json
from stepkit.checkpoints._envelope import DEFAULT_COMPRESS_THRESHOLD
from stepkit.checkpoints._migrations import migrate_context, rename_step
from stepkit.durable._store_calls import StoreGen, adrive_store, drive_store
from stepkit.engine._commands import STOPPED, Gen
from stepkit.engine._drivers import SyncLoop, adrive, drive
from stepkit.engine._level import run_level
from stepkit.engine._position import check_position, from_tree, rename_position
from stepkit.engine._run import Run
from stepkit.engine._summary import format_summary, quiet_paths, run_status, summary_logger
from stepkit.errors import (
    CheckpointEncodeError,
    CheckpointExpiredError,
    CheckpointMismatchError,
    InvalidArgumentError,
    InvalidCheckpointError,
    PipelineAbortedError,
    StepkitError,
)
from stepkit.events import RunResult
from stepkit.pipeline._plan import as_hooks

if TYPE_CHECKING:
    from stepkit.pipeline._builder import Pipeline

log = logging.getLogger("stepkit")

RUN_OPTIONS = frozenset(
    {
        "on_step_complete",
        "on_step_start",
        "on_error",
        "abort",
        "run_id",
        "checkpoint_ttl",
        "sleep",
        "clock",
        "log",
    }
)
RESUME_OPTIONS = RUN_OPTIONS | {"strict"}


@dataclass(slots=True)
class Prepared:
    run: Run
    gen: Gen
    sleep: Callable[[float], Any] | None
    pipeline: str
    logger: logging.Logger | None
    definition_changed: bool = False
    store: Any = None  # durable runs: the store, and our claim on the run
    owner: str | None = None

    def log_summary(self, status: str) -> None:
        if self.logger is not None:
            run = self.run
            summary = format_summary(self.pipeline, run.run_id, status, run.records, run.quiet)
            self.logger.info(summary)


def _combined(
    pipeline_options: Mapping[str, Any], options: Mapping[str, Any], name: str
) -> tuple[Callable[..., Any], ...]:
    """Pipeline-level hooks first, then the run's own."""
    hooks: tuple[Callable[..., Any], ...] = pipeline_options.get(name, ())
    return hooks + as_hooks(options.get(name), name, InvalidArgumentError)


def _keys(pipeline: Pipeline) -> tuple[bytes, ...]:
    keys: tuple[bytes, ...] = pipeline.options.get("secret") or ()
    return keys


def seconds_option(options: Mapping[str, Any], name: str) -> float | None:
    """A duration option: seconds > 0, or None."""
    value = options.get(name)
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or not value > 0
    ):
        raise InvalidArgumentError(f"{name}= must be seconds > 0 or None, got {value!r}")
    return value


def _check_options(options: Mapping[str, Any], allowed: frozenset[str], call: str) -> None:
    unknown = set(options) - allowed
    if unknown:
        raise InvalidArgumentError(
            f"{call}() got unknown option(s) {', '.join(sorted(unknown))}; "
            f"valid options are {', '.join(sorted(allowed))}"
        )


def _prepare(
    pipeline: Pipeline,
    ctx: dict[str, Any],
    options: Mapping[str, Any],
    *,
    run_id: str | None,
    resume: Any = None,
    last_step: str | None = None,
) -> Prepared:
    opts = pipeline.options
    abort = options.get("abort")
    if abort is not None and not callable(getattr(abort, "is_set", None)):
        raise InvalidArgumentError(
            f"abort= must be a threading.Event or an object with is_set(), got {abort!r}"
        )
    run_id = options.get("run_id", run_id)
    if run_id is None:
        run_id = uuid.uuid4().hex
    elif not isinstance(run_id, str) or not run_id:
        raise InvalidArgumentError(f"run_id= must be a non-empty str, got {run_id!r}")
    ttl = seconds_option(options, "checkpoint_ttl")
    clock = options.get("clock") or time.time
    sleep = options.get("sleep")
    for name, fn in (("clock", clock), ("sleep", sleep)):
        if fn is not None and not callable(fn):
            raise InvalidArgumentError(f"{name}= must be a callable, got {fn!r}")
    meta = Meta(
        pipeline=pipeline.name,
        version=pipeline.version,
        fingerprint=pipeline.fingerprint,
        run_id=run_id,
        keys=_keys(pipeline),
        ttl=ttl,
        compress_threshold=opts.get("compress_threshold", DEFAULT_COMPRESS_THRESHOLD),
        clock=clock,
    )
    run = Run(
        ctx,
        run_id,
        handlers=_combined(opts, options, "on_step_complete"),
        start_hooks=_combined(opts, options, "on_step_start"),
        error_hooks=_combined(opts, options, "on_error"),
        abort=abort,
        encoder=partial(encode_checkpoint, meta),
    )
    run.last_step = last_step
    gen = run_level(run, run.root, pipeline, "", resume)
    logger = summary_logger(options.get("log", opts.get("log")))
    if run.debug or logger is not None:
        run.quiet = quiet_paths(pipeline)
    return Prepared(run, gen, sleep, pipeline.name, logger)


def _start(pipeline: Pipeline, input: Any, options: Mapping[str, Any]) -> Prepared:
    _check_options(options, RUN_OPTIONS, "run")
    if input is None:
        ctx: dict[str, Any] = {}
    elif isinstance(input, Mapping):
        ctx = dict(input)
    else:
        raise InvalidArgumentError(
            f"the input of a run must be a mapping (the initial context) or None, "
            f"got {type(input).__name__}"
        )
    return _prepare(pipeline, ctx, options, run_id=None)


def _check_override(override: Any) -> None:
    if override is not None and not isinstance(override, Mapping):
        raise InvalidArgumentError(
            f"override_data must be a mapping or None, got {type(override).__name__}"
        )


def _resume(
    pipeline: Pipeline, checkpoint: Any, override: Any, options: Mapping[str, Any]
) -> Prepared:
    _check_options(options, RESUME_OPTIONS, "run_checkpoint")
    _check_override(override)
    cp = decode_with_keys(checkpoint, _keys(pipeline))
    if cp.pipeline != pipeline.name:
        raise CheckpointMismatchError(
            f"this checkpoint belongs to pipeline {cp.pipeline!r}, not {pipeline.name!r}"
        )
    clock = options.get("clock") or time.time
    if cp.expires_at is not None and datetime.fromtimestamp(clock(), timezone.utc) >= cp.expires_at:
        raise CheckpointExpiredError(
            f"this checkpoint expired at {cp.expires_at.isoformat()}; start a new run",
            expires_at=cp.expires_at,
        )
    try:  # what stepkit accepts it must be able to write again (depth, registered types)
        encode_context(cp.context)
        to_json(cp.position, path="position")
    except CheckpointEncodeError as exc:
        raise InvalidCheckpointError(f"this checkpoint cannot be resumed: {exc}") from exc
    saved = Saved(dict(cp.context), cp.position, cp.step_name, cp.version, cp.fingerprint)
    return prepare_resume(pipeline, saved, override, options, run_id=cp.run_id)


@dataclass(slots=True)
class Saved:
    """A saved state to continue from (a checkpoint's, or a stored run's)."""

    context: dict[str, Any]
    position: Any
    step_name: str | None
    version: str | None
    fingerprint: str


def prepare_resume(
    pipeline: Pipeline,
    saved: Saved,
    override: Mapping[str, Any] | None,
    options: Mapping[str, Any],
    *,
    run_id: str,
) -> Prepared:
    """Upgrade a saved state to the current pipeline (renames, migrations), check it, prepare."""
    opts = pipeline.options
    position, step, ctx = from_tree(saved.position), saved.step_name, saved.context
    renamed = opts.get("renamed")
    if renamed:
        position, step = rename_position(position, renamed), rename_step(step, renamed)
    upgraded = saved.version != pipeline.version
    if upgraded:
        ctx = migrate_context(ctx, saved.version, pipeline.version, opts.get("migrations", {}))
    changed = saved.fingerprint != pipeline.fingerprint
    if changed and options.get("strict") and not upgraded:
        raise CheckpointMismatchError(
            f"pipeline {pipeline.name!r} has changed since this state was saved "
            f"(fingerprint {saved.fingerprint} -> {pipeline.fingerprint}) and strict=True; "
            "bump version= (with migrations= if the context changed) to accept it"
        )
    check_position(pipeline, position)
    if override:
        ctx.update(override)
    prepared = _prepare(pipeline, ctx, options, run_id=run_id, resume=position, last_step=step)
    prepared.definition_changed = changed
    return prepared


def _result(prepared: Prepared, status: Any) -> RunResult:
    run = prepared.run
    return RunResult(
        run.ctx,
        status="stopped" if status == STOPPED else "completed",
        stopped_at=run.stopped_at,
        run_id=run.run_id,
        records=run.records,
        snapshot=run.snapshot,
        definition_changed=prepared.definition_changed,
    )


def _drive_sync(prepared: Prepared) -> RunResult:
    loop = SyncLoop()
    status: Any = None
    error: BaseException | None = None
    try:
        if prepared.sleep is None:
            status = drive(prepared.gen, loop)
        else:
            status = drive(prepared.gen, loop, prepared.sleep)
    except BaseException as exc:
        error = exc
        raise
    finally:
        loop.close()
        prepared.log_summary(run_status(status, error))
        if prepared.store is not None:
            drive_store(finish_run(prepared, status, error), prepared.store)
    return _result(prepared, status)


async def _drive_async(prepared: Prepared) -> RunResult:
    sleep = prepared.sleep or asyncio.sleep
    status: Any = None
    error: BaseException | None = None
    try:
        status = await adrive(prepared.gen, sleep)
    except BaseException as exc:
        error = exc
        raise
    finally:
        prepared.log_summary(run_status(status, error))
        if prepared.store is not None:
            await adrive_store(finish_run(prepared, status, error), prepared.store)
    return _result(prepared, status)


def finish_run(prepared: Prepared, status: Any, error: BaseException | None) -> StoreGen:
    """Release a durable run: completed, paused (stopped, aborted, interrupted) or failed."""
    if error is None:
        outcome, message = ("paused" if status == STOPPED else "completed"), None
    elif isinstance(error, PipelineAbortedError) or not isinstance(error, Exception):
        outcome, message = "paused", None
    else:
        outcome, message = "failed", f"{type(error).__name__}: {error}"
    run_id = prepared.run.run_id
    try:
        yield ("finish", (run_id,), {"owner": prepared.owner, "status": outcome, "error": message})
    except StepkitError as exc:
        if error is None:
            raise
        log.warning("could not record run %s as %s: %s", run_id, outcome, exc)


def run(pipeline: Pipeline, input: Any, options: Mapping[str, Any]) -> RunResult:
    return _drive_sync(_start(pipeline, input, options))


async def arun(pipeline: Pipeline, input: Any, options: Mapping[str, Any]) -> RunResult:
    return await _drive_async(_start(pipeline, input, options))


def run_checkpoint(
    pipeline: Pipeline, checkpoint: Any, override: Any, options: Mapping[str, Any]
) -> RunResult:
    return _drive_sync(_resume(pipeline, checkpoint, override, options))


async def arun_checkpoint(
    pipeline: Pipeline, checkpoint: Any, override: Any, options: Mapping[str, Any]
) -> RunResult:
    return await _drive_async(_resume(pipeline, checkpoint, override, options))
