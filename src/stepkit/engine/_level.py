"""The pure core: walks a pipeline and yields commands for a driver to perform.

Every decision (step order, retries, merging, events, stop, resume position)
is made here, once. The generators never call user code or sleep themselves:
they yield commands (``Call(fn, arg)``, ``Emit(handlers, event)``... from
:mod:`stepkit.engine._commands`), and the sync or async driver in
:mod:`stepkit.engine._drivers` performs each and sends the result back (or
throws the exception in).
"""

from __future__ import annotations

from collections.abc import Iterable
from time import perf_counter as _clock
from typing import TYPE_CHECKING, Any

from stepkit.engine._attempts import call_with_policy, check_output, merge
from stepkit.engine._commands import (
    DONE,
    STOPPED,
    Call,
    ErrorHooks,
    Gen,
    Parallel,
    StartHooks,
)
from stepkit.engine._frames import Frame, ItemState, apply_writes, container_frame, item_output
from stepkit.engine._position import (
    Done,
    InCase,
    InGraph,
    InNested,
    InParallel,
    ItemDone,
    ItemRunning,
    Position,
)
from stepkit.engine._run import Run, StepFailure, log
from stepkit.engine._step import (
    complete,
    complete_container,
    failed,
    failure_message,
    record_failure,
    run_fn_item,
    run_transform,
)
from stepkit.engine._walk import Walk
from stepkit.errors import PipelineAbortedError, StepFailedError
from stepkit.events import StepStartEvent
from stepkit.pipeline._plan import FnItem, Node, PipeItem, Policy

if TYPE_CHECKING:
    from stepkit.pipeline._builder import PipelineBuilder as Pipeline
    from stepkit.pipeline._routes import Routes

__all__ = ["Run", "run_level"]


def run_level(
    run: Run, frame: Frame, pipeline: Pipeline, prefix: str, resume: Position | None = None
) -> Gen:
    """Run the nodes of one level; return DONE or STOPPED.

    A pipeline level runs its nodes in order; a graph level (a plan with
    routes) runs them as its :class:`Walk` routes it. ``resume`` is a
    position checked by :func:`check_position` beforehand.
    """
    nodes, policies = pipeline.nodes, pipeline.policies()
    routes = pipeline.routes()
    order: Iterable[int]
    walk: Walk | None = None
    if routes is not None:
        walk = yield from _start_walk(run, frame, pipeline, routes, prefix, resume)
        if walk is None:
            return STOPPED
        if walk.ended:
            return DONE
        order = walk
    else:
        start = 0
        if resume is not None:
            assert type(resume) is not InGraph
            name = resume.name
            found = pipeline.index_of(name)  # check_position made sure it exists
            assert found is not None
            start = found
            if type(resume) is Done:
                frame.done = name
            else:
                status = yield from run_node(
                    run, frame, nodes[start], policies[start], prefix, resume
                )
                if status != DONE:
                    return STOPPED if status == STOPPED else DONE
            start += 1
        order = range(start, len(nodes))
    abort = run.abort
    # the short path for plain steps applies when nothing needs the long one
    plain = pipeline.plain_steps() if not (run.start_hooks or run.debug) else ()
    call: Call | None = None  # the inline path's one command, refilled per step
    ask: Call | None = None  # a graph's selector call, refilled per conditional edge
    quick = run.persister is None and not run.handlers  # nothing to save or announce
    for i in order:
        if run.stopped:
            if walk is not None:
                walk.unstarted()
            return STOPPED
        if abort is not None and abort.is_set():
            if walk is not None:
                walk.unstarted()
            raise PipelineAbortedError(
                f"run {run.run_id} aborted before step {prefix + nodes[i].name!r}",
                step_name=run.last_step,
                checkpoint=run.snapshot_now(),
                run_id=run.run_id,
            )
        fn = plain[i] if plain else None
        if fn is None:
            status = yield from run_node(run, frame, nodes[i], policies[i], prefix)
        else:  # a plain step, inline: no generator per step (the hot path)
            t0 = _clock()
            if call is None:
                call = Call(fn, frame.view)
            else:
                call.fn = fn
            try:
                out = yield call
                if out is not None:
                    if type(out) is not dict:
                        check_output(out, prefix + nodes[i].name, 1)
                    frame.ctx.update(out)
                    if frame.written is not None:
                        frame.written.update(out)
            except Exception as exc:
                status = yield from run_node(
                    run, frame, nodes[i], policies[i], prefix, plain_error=exc
                )
            else:
                if quick:
                    path = prefix + nodes[i].name
                    frame.done = nodes[i].name
                    run.records.append((path, "completed", _clock() - t0, 1, None))
                    run.last_step = path
                    if walk is None:
                        continue
                    status = DONE
                else:
                    status = yield from complete(
                        run, frame, nodes[i].name, prefix + nodes[i].name, out, _clock() - t0, 1
                    )
        if status != DONE:
            # ENDED (skip_remaining) ends this level only (a graph too); its container completes
            if status == STOPPED:
                return STOPPED
            if walk is not None:
                walk.ended = True
            return DONE
        if walk is not None:  # routing is decided when leaving the node
            edge = walk.edges[i]
            if type(edge) is not int:  # a conditional edge: ask its selector (no generator)
                if ask is None:
                    ask = Call(edge.selector, frame.view)
                else:
                    ask.fn = edge.selector
                try:
                    key = yield ask
                except Exception as exc:
                    walk.selector_raised(i, edge, exc)
                to = edge.targets.get(key) if type(key) is str else None
                if to is None:
                    walk.unmapped(i, edge, key)
                walk.to = to
    return DONE


def _start_walk(
    run: Run,
    frame: Frame,
    pipeline: Pipeline,
    routes: Routes,
    prefix: str,
    resume: Position | None,
) -> Gen:
    """The walk of a graph level, resumed where ``resume`` says; None if it stopped at once.

    A node the position is inside of is finished first; the node last left is
    then routed, on the context as it is now (a resume's override included).
    """
    given = run.max_steps if frame is run.root else None
    if type(resume) is not InGraph:
        walk = frame.walk = Walk(run, pipeline.name, routes, pipeline.nodes, prefix, 0, given)
        return walk
    if given is None:
        given = resume.limit
    walk = Walk(run, pipeline.name, routes, pipeline.nodes, prefix, resume.steps, given)
    frame.walk = walk
    at = resume.at
    if at is None:
        return walk
    nodes = pipeline.nodes
    found = pipeline.index_of(at.name)  # check_position made sure it exists
    assert found is not None
    index = found
    if type(at) is Done:
        frame.done = at.name
        walk.ended = resume.ended
    else:
        status = yield from run_node(
            run, frame, nodes[index], pipeline.policies()[index], prefix, at
        )
        if status == STOPPED:
            return None
        if status != DONE:  # skip_remaining: the graph ends here
            walk.ended = True
            return walk
    walk.left(index)
    edge = routes.edges[index]
    if not walk.ended and not isinstance(edge, int):
        try:
            key = yield Call(edge.selector, frame.view)
        except Exception as exc:
            walk.selector_raised(index, edge, exc)
        walk.choose(index, edge, key)
    return walk


def run_node(
    run: Run,
    frame: Frame,
    node: Node,
    policy: Policy,
    prefix: str,
    resume: Position | None = None,
    plain_error: Exception | None = None,
) -> Gen:
    """Run one node (from its start, or ``resume`` inside it); return a level outcome.

    ``plain_error``: the exception of a plain step that ran on the short path in
    :func:`run_level`; it is handled here like any other step failure.
    """
    path = prefix + node.name
    if plain_error is not None:
        exc = plain_error.exc if isinstance(plain_error, StepFailure) else plain_error
        return (yield from failed(run, frame, node, policy, path, exc, 1))
    if resume is None:
        when = policy.when
        if when is not None and when is not True:  # noqa: SIM102 (the yield must stay lazy)
            if when is False or not (yield Call(when, frame.view)):
                run.records.append((path, "skipped", 0.0, 0, None))
                if run.debug and path not in run.quiet:
                    log.debug("step %s skipped (when= is false)", path)
                return DONE
        if run.debug and path not in run.quiet:
            log.debug("step %s starting", path)
        if run.start_hooks:
            yield StartHooks(run.start_hooks, StepStartEvent(path, frame.view, run.run_id))
    items = node.items
    try:
        if node.kind == "step" and len(items) == 1 and type(items[0]) is FnItem:
            fn = items[0].fn
            t0 = _clock()
            if policy.retries or policy.timeout is not None:
                out, attempts = yield from call_with_policy(fn, frame.view, policy, path)
            else:
                attempts = 1
                try:
                    out = yield Call(fn, frame.view)
                except Exception as exc:
                    raise StepFailure(exc, 1) from exc
            duration = _clock() - t0
            if out is not None:
                check_output(out, path, attempts)
                if policy.merge == "override":
                    frame.ctx.update(out)
                else:
                    merge(frame.ctx, out, policy, path)
                if frame.written is not None:
                    frame.written.update(out)
            return (yield from complete(run, frame, node.name, path, out, duration, attempts))
        if node.kind == "transform":
            return (yield from run_transform(run, frame, node, policy, path))
        if node.kind == "branch":
            assert resume is None or type(resume) is InCase
            return (yield from _branch(run, frame, node, policy, path, resume))
        if len(items) == 1:
            assert resume is None or type(resume) is InNested
            return (yield from _nested(run, frame, node, policy, path, resume))
        assert resume is None or type(resume) is InParallel
        return (yield from _parallel(run, frame, node, policy, path, resume))
    except StepFailure as failure:
        return (yield from failed(run, frame, node, policy, path, failure.exc, failure.attempts))
    except StepFailedError as exc:
        # a step inside this container failed; its hooks have been called
        if policy.on_error == "raise":
            run.records.append((path, "failed", 0.0, exc.attempts, exc))  # the container too
            raise
        return (yield from record_failure(run, frame, node, policy, path, exc, exc.attempts))


def _nested(
    run: Run, frame: Frame, node: Node, policy: Policy, path: str, resume: InNested | None
) -> Gen:
    item = node.items[0]
    assert isinstance(item, PipeItem)
    inner = container_frame(frame, policy, resume)
    frame.child = ("nest", node.name, inner)
    t0 = _clock()
    inner_resume = None if resume is None else resume.inner
    status = yield from run_level(run, inner, item.pipeline, path + "/", inner_resume)
    if status == STOPPED:
        return STOPPED
    return (yield from complete_container(run, frame, inner, node, policy, path, t0))


def _branch(
    run: Run, frame: Frame, node: Node, policy: Policy, path: str, resume: InCase | None
) -> Gen:
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
    status = yield from run_level(run, inner, target, f"{path}/{key}/", case_resume)
    if status == STOPPED:
        return STOPPED
    return (yield from complete_container(run, frame, inner, node, policy, path, t0))


def _parallel(
    run: Run, frame: Frame, node: Node, policy: Policy, path: str, resume: InParallel | None
) -> Gen:
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
            gens.append(_pipe_item(run, state, item.pipeline, parent, path + "/", item_resume))
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
    run: Run,
    state: ItemState,
    pipeline: Pipeline,
    parent: dict[str, Any],
    prefix: str,
    resume: Position | None,
) -> Gen:
    assert state.frame is not None
    status = yield from run_level(run, state.frame, pipeline, prefix, resume)
    if status == STOPPED:
        return STOPPED
    state.out, state.removed = item_output(state.frame, parent)
    state.frame = None
    return DONE
