"""The containers of a level: nested pipelines, branches and parallel steps.

Each runs inner levels through the ``level`` function it is given (the level
loop of :mod:`stepkit.engine._level`), so that the recursion needs no import
back up; like the level loop, they only yield commands.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter as _clock
from typing import TYPE_CHECKING, Any

from stepkit.engine._attempts import merge
from stepkit.engine._commands import DONE, STOPPED, Call, ErrorHooks, Gen, Parallel
from stepkit.engine._frames import Frame, ItemState, apply_writes, container_frame, item_output
from stepkit.engine._position import InCase, InNested, InParallel, ItemDone, ItemRunning, Position
from stepkit.engine._run import Run, StepFailure, log
from stepkit.engine._step import complete, complete_container, failure_message, run_fn_item
from stepkit.errors import StepFailedError
from stepkit.pipeline._plan import FnItem, Node, PipeItem, Policy

if TYPE_CHECKING:
    from stepkit.pipeline._builder import PipelineBuilder as Pipeline

__all__ = ["LevelRunner", "branch", "nested", "parallel"]

#: The level loop, ``level(run, frame, pipeline, prefix, resume)``: yields commands.
LevelRunner = Callable[[Run, Frame, "Pipeline", str, "Position | None"], Gen]


def nested(
    level: LevelRunner,
    run: Run,
    frame: Frame,
    node: Node,
    policy: Policy,
    path: str,
    resume: InNested | None,
) -> Gen:
    item = node.items[0]
    assert isinstance(item, PipeItem)
    inner = container_frame(frame, policy, resume)
    frame.child = ("nest", node.name, inner)
    t0 = _clock()
    inner_resume = None if resume is None else resume.inner
    status = yield from level(run, inner, item.pipeline, path + "/", inner_resume)
    if status == STOPPED:
        return STOPPED
    return (yield from complete_container(run, frame, inner, node, policy, path, t0))


def branch(
    level: LevelRunner,
    run: Run,
    frame: Frame,
    node: Node,
    policy: Policy,
    path: str,
    resume: InCase | None,
) -> Gen:
    """A branch: its selector picks a case (once: a resume keeps the case), which then runs."""
    t0 = _clock()
    if resume is not None:
        key, case_resume = resume.case, resume.inner
    else:
        case_resume = None
        try:
            assert node.selector is not None
            key = yield Call(node.selector, frame.view)
        except Exception as exc:
            raise StepFailure(exc, 1) from exc
        if key is None:
            run.records.append((path, "skipped", 0.0, 0, None))
            if run.debug and path not in run.quiet:
                log.debug("branch %s skipped (its selector returned None)", path)
            return DONE
        if not (isinstance(key, str) and node.case(key) is not None):
            if node.case("default") is None:
                raise StepFailure(
                    LookupError(
                        f"the selector of branch {path!r} returned {key!r}, which is not "
                        f"one of its cases ({', '.join(k for k, _ in node.cases)}) and the "
                        "branch has no default; add the case, a default=, or return None "
                        "to skip the branch"
                    ),
                    1,
                )
            key = "default"
    target = node.case(key)
    assert target is not None
    inner = container_frame(frame, policy, resume)
    frame.child = ("case", node.name, key, inner)
    status = yield from level(run, inner, target, f"{path}/{key}/", case_resume)
    if status == STOPPED:
        return STOPPED
    return (yield from complete_container(run, frame, inner, node, policy, path, t0))


def parallel(
    level: LevelRunner,
    run: Run,
    frame: Frame,
    node: Node,
    policy: Policy,
    path: str,
    resume: InParallel | None,
) -> Gen:
    """Several items at once, each over the context as it was; outputs merged in order."""
    t0 = _clock()
    parent = frame.ctx
    states = [ItemState() for _ in node.items]
    saved_items = resume.items if resume is not None else (None,) * len(node.items)
    started: list[tuple[str, ItemState]] = []
    gens: list[Gen] = []
    for item, state, saved in zip(node.items, states, saved_items, strict=False):
        if type(saved) is ItemDone:
            state.out, state.removed = dict(saved.out), list(saved.removed)
            continue
        if isinstance(item, FnItem):
            item_path = f"{path}/{item.name}"
            gens.append(run_fn_item(run, state, item.fn, frame.view, policy, item_path))
        else:
            item_path = path
            state.frame = Frame(dict(parent), written={})
            item_resume = None
            if type(saved) is ItemRunning:
                writes = saved.writes
                apply_writes(state.frame.ctx, state.frame.written, writes.changed, writes.removed)
                item_resume = saved.inner
            gens.append(
                _pipe_item(level, run, state, item.pipeline, parent, path + "/", item_resume)
            )
        started.append((item_path, state))
    frame.child = ("par", node.name, states, parent)
    outcomes = (yield Parallel(gens)) if gens else []
    stopped = False
    failures: list[tuple[str, BaseException, int]] = []
    for (item_path, _state), (ok, value) in zip(started, outcomes, strict=False):
        if ok:
            stopped = stopped or value == STOPPED
        elif isinstance(value, StepFailure):
            failures.append((item_path, value.exc, value.attempts))
        elif isinstance(value, StepFailedError):
            failures.append((value.step_name, value, value.attempts))
        else:
            raise value  # aborted, or an error of a handler: not a step failure
    if stopped:
        return STOPPED
    if failures:
        for item_path, exc, attempts in failures:
            if isinstance(exc, StepFailedError):
                continue  # a step inside a nested item: logged, recorded and hooked already
            log.warning(
                "step %s failed after %d attempt(s) (parallel_mode=%r): %s: %s",
                item_path,
                attempts,
                policy.parallel_mode,
                type(exc).__name__,
                exc,
            )
            run.records.append((item_path, "failed", 0.0, attempts, exc))
            if run.error_hooks:
                yield ErrorHooks(run.error_hooks, item_path, exc)
        if policy.parallel_mode == "all":
            item_path, exc, attempts = failures[0]
            if isinstance(exc, StepFailedError):
                # its checkpoint was taken when it failed; siblings have finished since
                exc._set_checkpoint(run.snapshot_now())
                raise exc
            raise StepFailedError(
                failure_message(item_path, attempts, exc),
                step_name=item_path,
                attempts=attempts,
                context=parent,
                checkpoint=run.snapshot_now(),
                run_id=run.run_id,
            ) from exc
    merged: dict[str, Any] = {}
    removed: list[str] = []
    for state in states:
        if state.out is not None:
            merge(parent, state.out, policy, path)
            merged.update(state.out)
            if frame.written is not None:
                frame.written.update(state.out)
            for key in state.removed:
                parent.pop(key, None)
            removed.extend(state.removed)
    return (
        yield from complete(run, frame, node.name, path, merged, _clock() - t0, 1, tuple(removed))
    )


def _pipe_item(
    level: LevelRunner,
    run: Run,
    state: ItemState,
    pipeline: Pipeline,
    parent: dict[str, Any],
    prefix: str,
    resume: Position | None,
) -> Gen:
    assert state.frame is not None
    status = yield from level(run, state.frame, pipeline, prefix, resume)
    if status == STOPPED:
        return STOPPED
    state.out, state.removed = item_output(state.frame, parent)
    state.frame = None
    return DONE
