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
from typing import TYPE_CHECKING

from stepkit.engine._attempts import call_with_policy, check_output, merge
from stepkit.engine._commands import (
    DONE,
    STOPPED,
    Call,
    Emit,
    Gen,
    StartHooks,
)
from stepkit.engine._containers import branch, nested, parallel
from stepkit.engine._frames import Frame
from stepkit.engine._position import (
    Done,
    InCase,
    InGraph,
    InNested,
    InParallel,
    Position,
)
from stepkit.engine._run import Run, StepFailure, log
from stepkit.engine._step import (
    complete,
    failed,
    record_failure,
    run_transform,
)
from stepkit.engine._walk import Walk
from stepkit.errors import PipelineAbortedError, StepFailedError
from stepkit.events import StepEvent, StepStartEvent
from stepkit.pipeline._plan import FnItem, Node, Policy

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
    emit: Emit | None = None  # ... and its event command, when handlers listen
    ask: Call | None = None  # a graph's selector call, refilled per conditional edge
    quick = run.persister is None and not run.handlers  # nothing to save or announce
    announce = run.persister is None and not quick  # handlers only: their event inline too
    records, view, written, update = run.records, frame.view, frame.written, frame.ctx.update
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
                    update(out)
                    if written is not None:
                        written.update(out)
            except Exception as exc:
                status = yield from run_node(
                    run, frame, nodes[i], policies[i], prefix, plain_error=exc
                )
            else:
                name = nodes[i].name
                path = prefix + name
                if quick:  # what complete() does when nothing is saved, logged or announced
                    frame.done = name
                    run.last_step = path
                    records.append((path, "completed", _clock() - t0, 1, None))
                    if walk is None:
                        continue
                    edge = walk.edges[i]
                    if type(edge) is int:  # a graph's plain edge: the walk goes on there
                        walk.to = edge
                        continue
                    status = DONE
                elif announce:  # ... and when only handlers listen: the event, inline
                    frame.done = name
                    run.last_step = path
                    duration = _clock() - t0
                    records.append((path, "completed", duration, 1, None))
                    event = StepEvent(path, view, out, duration, 1, run.run_id, run)
                    if emit is None:
                        emit = Emit(run.handlers, event)
                    else:
                        emit.event = event
                    try:
                        yield emit
                    finally:
                        event._close()
                    if run.stopped:
                        status = STOPPED
                    elif walk is None:
                        continue
                    else:
                        status = DONE
                else:
                    status = yield from complete(run, frame, name, path, out, _clock() - t0, 1)
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
            return (yield from branch(run_level, run, frame, node, policy, path, resume))
        if len(items) == 1:
            assert resume is None or type(resume) is InNested
            return (yield from nested(run_level, run, frame, node, policy, path, resume))
        assert resume is None or type(resume) is InParallel
        return (yield from parallel(run_level, run, frame, node, policy, path, resume))
    except StepFailure as failure:
        return (yield from failed(run, frame, node, policy, path, failure.exc, failure.attempts))
    except StepFailedError as exc:
        # a step inside this container failed; its hooks have been called
        if policy.on_error == "raise":
            run.records.append((path, "failed", 0.0, exc.attempts, exc))  # the container too
            raise
        return (yield from record_failure(run, frame, node, policy, path, exc, exc.attempts))
