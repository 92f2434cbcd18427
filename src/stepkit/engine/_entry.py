"""Entry points of plain runs (``run``/``arun``/``run_checkpoint``): validate, prepare, drive.

Everything here happens once per run; the per-step work is in the engine. Plain
runs know nothing of stores: the durable layer (:mod:`stepkit.durable`) wraps
them through this small interface, public to the package:

- :func:`prepare_start` (a new run) and :func:`prepare_resume` (a saved state:
  a checkpoint's or a stored run's, as a :class:`Saved`) return a
  :class:`Prepared` run, not yet started. A caller may attach to
  ``prepared.run`` (the durable layer sets ``run.persister``) and merge an
  override with :func:`apply_override` before driving it.
- :func:`drive_sync` / :func:`drive_async` run a prepared run to its end and
  return its :class:`~stepkit.events.RunResult`. ``on_finish(stopped, error)``
  (an async function for :func:`drive_async`) is called once when the run
  ends, however it ends: ``stopped`` says it paused at a stop, ``error`` is
  the exception it ends with (``None`` if it completed or stopped). The
  durable layer records the run's final status there.
- :func:`check_override`, :func:`check_keys` and :func:`pipeline_keys` are
  shared checks. A run's options arrive as one frozen
  :class:`~stepkit.engine._options.RunOptions`, checked when the call was made.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from stepkit.checkpoints._document import (
    CheckpointEncoder,
    Meta,
    decode_for_resume,
)
from stepkit.checkpoints._encode import to_json
from stepkit.checkpoints._envelope import DEFAULT_COMPRESS_THRESHOLD
from stepkit.checkpoints._migrations import migrate_context, rename_step
from stepkit.checkpoints._tags import short as _short
from stepkit.engine._commands import STOPPED, Gen
from stepkit.engine._drivers import SyncLoop, adrive, drive
from stepkit.engine._level import run_level
from stepkit.engine._options import RunOptions
from stepkit.engine._position import check_position, from_tree, rename_position
from stepkit.engine._run import Run
from stepkit.engine._summary import format_summary, quiet_paths, run_status, summary_logger
from stepkit.errors import (
    CheckpointEncodeError,
    CheckpointExpiredError,
    CheckpointMismatchError,
    InvalidArgumentError,
    InvalidCheckpointError,
)
from stepkit.events import RunResult

if TYPE_CHECKING:
    from stepkit.pipeline._builder import PipelineBuilder as Pipeline

#: ``on_finish(stopped, error)`` of :func:`drive_sync`; :func:`drive_async` awaits its result.
OnFinish = Callable[[bool, "BaseException | None"], None]
AsyncOnFinish = Callable[[bool, "BaseException | None"], Awaitable[None]]


@dataclass(slots=True)
class Prepared:
    """A run ready to be driven: its state, its engine generator, how to sleep and log."""

    run: Run
    gen: Gen
    sleep: Callable[[float], Any] | None
    pipeline: str
    logger: logging.Logger | None
    definition_changed: bool = False

    def log_summary(self, status: str) -> None:
        if self.logger is not None:
            run = self.run
            summary = format_summary(self.pipeline, run.run_id, status, run.records, run.quiet)
            self.logger.info(summary)


def _combined(
    pipeline_options: Mapping[str, Any], options: RunOptions, name: str
) -> tuple[Callable[..., Any], ...]:
    """Pipeline-level hooks first, then the run's own."""
    hooks: tuple[Callable[..., Any], ...] = pipeline_options.get(name, ())
    own: tuple[Callable[..., Any], ...] = getattr(options, name)
    return hooks + own if own else hooks


def pipeline_keys(pipeline: Pipeline) -> tuple[bytes, ...]:
    """The signing keys of ``pipeline`` (newest first), or none."""
    keys: tuple[bytes, ...] = pipeline.options.get("secret") or ()
    return keys


def check_keys(context: Mapping[Any, Any], what: str) -> None:
    """Context keys are ``str`` other than the codec's reserved ``'$t'``."""
    try:  # the common case at C speed: str.join refuses any key that is not a str
        "".join(context)
    except TypeError:
        pass
    else:
        if "$t" not in context:
            return
    for key in context:
        if type(key) is not str or key == "$t":
            raise InvalidArgumentError(
                f"{what}: keys must be str other than '$t' (reserved by the checkpoint codec), "
                f"got {_short(key)}; convert the key to str"
            )


def check_override(override: Any) -> dict[str, Any] | None:
    """Check ``override_data`` before anything runs; its JSON-ready encoding, or None.

    Keys must be str (not ``'$t'``) and every value encodable by the checkpoint
    codec, so that a resume never fails after a step ran because of its override.
    """
    if override is None:
        return None
    if not isinstance(override, Mapping):
        raise InvalidArgumentError(
            f"override_data must be a mapping or None, got {type(override).__name__}"
        )
    check_keys(override, "override_data")
    encoded: dict[str, Any] = {}
    for key, value in override.items():
        try:
            encoded[key] = to_json(value, path=f"override_data[{key!r}]")
        except CheckpointEncodeError as exc:
            raise InvalidArgumentError(
                f"override_data cannot be checkpointed: {exc}; override only with values a "
                "checkpoint can hold"
            ) from exc
    return encoded


def _prepare(
    pipeline: Pipeline,
    ctx: dict[str, Any],
    options: RunOptions,
    *,
    run_id: str | None,
    resume: Any = None,
    last_step: str | None = None,
) -> Prepared:
    opts = pipeline.options
    run_id = options.run_id or run_id or os.urandom(16).hex()  # as uuid4().hex, cheaper
    ttl = options.checkpoint_ttl
    clock = options.clock or time.time
    sleep = options.sleep
    # what its checkpoints share, assembled at the first one (most runs never take one)
    encoder = CheckpointEncoder(
        lambda: Meta(
            pipeline=pipeline.name,
            version=pipeline.version,
            fingerprint=pipeline.fingerprint,
            run_id=run_id,
            keys=pipeline_keys(pipeline),
            ttl=ttl,
            compress_threshold=opts.get("compress_threshold", DEFAULT_COMPRESS_THRESHOLD),
            clock=clock,
        )
    )
    run = Run(
        ctx,
        run_id,
        handlers=_combined(opts, options, "on_step_complete"),
        start_hooks=_combined(opts, options, "on_step_start"),
        error_hooks=_combined(opts, options, "on_error"),
        abort=options.abort,
        encoder=encoder,
    )
    run.last_step = last_step
    run.max_steps = options.max_steps
    gen = run_level(run, run.root, pipeline, "", resume)
    logger = summary_logger(opts.get("log") if options.log is None else options.log)
    if run.debug or logger is not None:
        run.quiet = quiet_paths(pipeline)
    return Prepared(run, gen, sleep, pipeline.name, logger)


def prepare_start(pipeline: Pipeline, input: Any, options: RunOptions) -> Prepared:
    """A new run of ``pipeline`` over ``input`` (a mapping or None), not yet started."""
    if input is None:
        ctx: dict[str, Any] = {}
    elif type(input) is dict or isinstance(input, Mapping):  # an ABC check costs ~1 us
        ctx = dict(input)
    else:
        raise InvalidArgumentError(
            f"the input of a run must be a mapping (the initial context) or None, "
            f"got {type(input).__name__}"
        )
    check_keys(ctx, "the input of a run")
    return _prepare(pipeline, ctx, options, run_id=None)


def _prepare_checkpoint(
    pipeline: Pipeline, checkpoint: Any, override: Any, options: RunOptions
) -> Prepared:
    check_override(override)
    cp = decode_for_resume(checkpoint, pipeline_keys(pipeline))
    if cp.pipeline != pipeline.name:
        raise CheckpointMismatchError(
            f"this checkpoint belongs to pipeline {cp.pipeline!r}, not {pipeline.name!r}"
        )
    clock = options.clock or time.time
    if cp.expires_at is not None and datetime.fromtimestamp(clock(), timezone.utc) >= cp.expires_at:
        raise CheckpointExpiredError(
            f"this checkpoint expired at {cp.expires_at.isoformat()}; start a new run",
            expires_at=cp.expires_at,
        )
    # The decoder accepts only contexts the encoder can write again (tested both ways),
    # so the context is not re-encoded here: resuming stays O(1) in its size. The
    # position is re-checked: it is small, and the codec treats it as opaque JSON.
    position = cp.position
    try:  # a top-level "done" position holds no values: nothing to re-check (the common case)
        if not (type(position) is dict and "done" in position):
            to_json(position, path="position")
    except CheckpointEncodeError as exc:
        raise InvalidCheckpointError(f"this checkpoint cannot be resumed: {exc}") from exc
    saved = Saved(cp.context, cp.position, cp.step_name, cp.version, cp.fingerprint)
    prepared = prepare_resume(pipeline, saved, options, run_id=cp.run_id)
    apply_override(prepared, override)
    return prepared


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
    options: RunOptions,
    *,
    run_id: str,
) -> Prepared:
    """Upgrade a saved state to the current pipeline (renames, migrations), check it, prepare.

    The override, if any, is merged afterwards with :func:`apply_override`.
    """
    opts = pipeline.options
    position, step, ctx = from_tree(saved.position), saved.step_name, saved.context
    renamed = opts.get("renamed")
    if renamed:
        position, step = rename_position(position, renamed), rename_step(step, renamed)
    upgraded = saved.version != pipeline.version
    if upgraded:
        ctx = migrate_context(ctx, saved.version, pipeline.version, opts.get("migrations", {}))
    changed = saved.fingerprint != pipeline.fingerprint
    if changed and options.strict and not upgraded:
        raise CheckpointMismatchError(
            f"pipeline {pipeline.name!r} has changed since this state was saved "
            f"(fingerprint {saved.fingerprint} -> {pipeline.fingerprint}) and strict=True; "
            "bump version= (with migrations= if the context changed) to accept it"
        )
    check_position(pipeline, position)
    prepared = _prepare(pipeline, ctx, options, run_id=run_id, resume=position, last_step=step)
    prepared.definition_changed = changed
    return prepared


def apply_override(prepared: Prepared, override: Mapping[str, Any] | None) -> None:
    """Shallow-merge ``override`` into the context of a prepared, not yet started run."""
    if override:
        prepared.run.ctx.update(override)


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


def drive_sync(prepared: Prepared, on_finish: OnFinish | None = None) -> RunResult:
    """Run ``prepared`` to its end on this thread; ``on_finish`` once it ends."""
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
        if on_finish is not None:
            on_finish(status == STOPPED, error)
    return _result(prepared, status)


async def drive_async(prepared: Prepared, on_finish: AsyncOnFinish | None = None) -> RunResult:
    """Run ``prepared`` to its end on the running event loop; ``await on_finish`` once it ends."""
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
        if on_finish is not None:
            await on_finish(status == STOPPED, error)
    return _result(prepared, status)


def run(pipeline: Pipeline, input: Any, options: RunOptions) -> RunResult:
    return drive_sync(prepare_start(pipeline, input, options))


async def arun(pipeline: Pipeline, input: Any, options: RunOptions) -> RunResult:
    return await drive_async(prepare_start(pipeline, input, options))


def run_checkpoint(
    pipeline: Pipeline, checkpoint: Any, override: Any, options: RunOptions
) -> RunResult:
    return drive_sync(_prepare_checkpoint(pipeline, checkpoint, override, options))


async def arun_checkpoint(
    pipeline: Pipeline, checkpoint: Any, override: Any, options: RunOptions
) -> RunResult:
    return await drive_async(_prepare_checkpoint(pipeline, checkpoint, override, options))
