"""``Graph``, the public class: the graph builder plus the run methods ``Pipeline`` has.

A graph is compiled (checked as a whole, see :mod:`stepkit.graph._plan`) once,
on first use, and runs on the same engine, checkpoints, stores and CLI as a
pipeline. ``run_checkpoint`` and ``resume`` (and their async twins) add
``max_steps=``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from stepkit._pipeline import Abort, RunMethods, _durable_options, _run_options
from stepkit.graph._builder import GraphBuilder
from stepkit.graph._plan import GraphPlan, compile_graph
from stepkit.pipeline._options import Hook

if TYPE_CHECKING:
    from stepkit.events import RunResult
    from stepkit.stores import Store

__all__ = ["Graph"]

_G = TypeVar("_G", bound="Graph")


class Graph(RunMethods, GraphBuilder):
    """An immutable graph of named nodes over a dict context: conditional edges, loops, a limit.

    >>> from stepkit import END, START, Graph
    >>> count = (
    ...     Graph("count")
    ...     .add_node("bump", lambda ctx: {"n": ctx["n"] + 1})
    ...     .add_edge(START, "bump")
    ...     .add_conditional_edges("bump", lambda ctx: "again" if ctx["n"] < 3 else "done",
    ...                            {"again": "bump", "done": END})
    ... )
    >>> dict(count.run({"n": 0}))
    {'n': 3}
    """

    __slots__ = ()

    def _plan(self) -> GraphPlan:
        plan = self._plan_
        if plan is None:
            plan = compile_graph(self)
            object.__setattr__(self, "_plan_", plan)
        return plan

    def validate(self: _G) -> _G:
        """Check the whole graph now (runs check it too); return it unchanged.

        Raises :class:`~stepkit.errors.PipelineDefinitionError` for no entry
        point, unknown nodes, a node with no outgoing edge, unreachable nodes
        or a node from which END cannot be reached.
        """
        self._plan()
        return self

    @property
    def fingerprint(self) -> str:
        """A hash of the structure (nodes, edges, path maps, entry point), not the code."""
        return self._plan().fingerprint

    def step_paths(self) -> list[str]:
        """Every step path: the nodes, and the steps inside nested pipelines."""
        return self._plan().step_paths()

    def to_mermaid(self) -> str:
        """A Mermaid flowchart: one box per node, conditional edges labelled with their keys."""
        return self._plan().to_mermaid()

    def run_checkpoint(
        self,
        checkpoint: str,
        override_data: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        on_step_complete: Hook | None = None,
        on_step_start: Hook | None = None,
        on_error: Hook | None = None,
        abort: Abort | None = None,
        checkpoint_ttl: float | None = None,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] | None = None,
        log: bool | None = None,
        strict: bool = False,
        max_steps: int | None = None,
    ) -> RunResult:
        """Resume after the node recorded in ``checkpoint``, with ``override_data`` merged in.

        A checkpoint taken after node X routes from X now, on the merged
        context. ``max_steps`` replaces the graph's limit for the rest of the
        run; the node executions before the checkpoint still count.
        """
        run = _run_options(
            run_id=run_id,
            strict=strict,
            max_steps=max_steps,
            on_step_complete=on_step_complete,
            on_step_start=on_step_start,
            on_error=on_error,
            abort=abort,
            checkpoint_ttl=checkpoint_ttl,
            sleep=sleep,
            clock=clock,
            log=log,
        )
        from stepkit.engine._entry import run_checkpoint as from_checkpoint

        return from_checkpoint(self._plan(), checkpoint, override_data, run)

    def resume(
        self,
        run_id: str,
        *,
        store: Store,
        override_data: Mapping[str, Any] | None = None,
        recover: bool = False,
        dead_owner: str | None = None,
        expect_version: int | None = None,
        version: int | None = None,
        fork: bool = False,
        strict: bool = False,
        max_steps: int | None = None,
        on_step_complete: Hook | None = None,
        on_step_start: Hook | None = None,
        on_error: Hook | None = None,
        abort: Abort | None = None,
        checkpoint_ttl: float | None = None,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] | None = None,
        log: bool | None = None,
        ttl: float | None = None,
        lease: float | None = None,
    ) -> RunResult:
        """Continue a stored run: paused, failed (a step limit too), or crashed (``recover=True``).

        A completed run returns its stored result without running anything.
        ``max_steps`` replaces the graph's limit for the rest of the run (the
        count so far is kept), e.g. to continue a run that hit it.
        See docs/durable-runs.md for ``recover``, ``dead_owner``, ``expect_version``,
        ``version`` (time travel) and ``fork``.
        """
        run = _run_options(
            strict=strict,
            max_steps=max_steps,
            on_step_complete=on_step_complete,
            on_step_start=on_step_start,
            on_error=on_error,
            abort=abort,
            checkpoint_ttl=checkpoint_ttl,
            sleep=sleep,
            clock=clock,
            log=log,
        )
        durable = _durable_options(
            "resume()",
            store=store,
            ttl=ttl,
            lease=lease,
            override_data=override_data,
            recover=recover,
            dead_owner=dead_owner,
            expect_version=expect_version,
            version=version,
            fork=fork,
        )
        from stepkit.durable._entry import resume as resume_stored

        return resume_stored(self._plan(), run_id, run, durable)

    async def arun_checkpoint(
        self,
        checkpoint: str,
        override_data: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        on_step_complete: Hook | None = None,
        on_step_start: Hook | None = None,
        on_error: Hook | None = None,
        abort: Abort | None = None,
        checkpoint_ttl: float | None = None,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] | None = None,
        log: bool | None = None,
        strict: bool = False,
        max_steps: int | None = None,
    ) -> RunResult:
        """Async twin of :meth:`run_checkpoint`."""
        run = _run_options(
            run_id=run_id,
            strict=strict,
            max_steps=max_steps,
            on_step_complete=on_step_complete,
            on_step_start=on_step_start,
            on_error=on_error,
            abort=abort,
            checkpoint_ttl=checkpoint_ttl,
            sleep=sleep,
            clock=clock,
            log=log,
        )
        from stepkit.engine._entry import arun_checkpoint as afrom_checkpoint

        return await afrom_checkpoint(self._plan(), checkpoint, override_data, run)

    async def aresume(
        self,
        run_id: str,
        *,
        store: Store,
        override_data: Mapping[str, Any] | None = None,
        recover: bool = False,
        dead_owner: str | None = None,
        expect_version: int | None = None,
        version: int | None = None,
        fork: bool = False,
        strict: bool = False,
        max_steps: int | None = None,
        on_step_complete: Hook | None = None,
        on_step_start: Hook | None = None,
        on_error: Hook | None = None,
        abort: Abort | None = None,
        checkpoint_ttl: float | None = None,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] | None = None,
        log: bool | None = None,
        ttl: float | None = None,
        lease: float | None = None,
    ) -> RunResult:
        """Async twin of :meth:`resume`."""
        run = _run_options(
            strict=strict,
            max_steps=max_steps,
            on_step_complete=on_step_complete,
            on_step_start=on_step_start,
            on_error=on_error,
            abort=abort,
            checkpoint_ttl=checkpoint_ttl,
            sleep=sleep,
            clock=clock,
            log=log,
        )
        durable = _durable_options(
            "resume()",
            store=store,
            ttl=ttl,
            lease=lease,
            override_data=override_data,
            recover=recover,
            dead_owner=dead_owner,
            expect_version=expect_version,
            version=version,
            fork=fork,
        )
        from stepkit.durable._entry import aresume as aresume_stored

        return await aresume_stored(self._plan(), run_id, run, durable)
