"""The walk of a graph level: which node runs next, how many have run, and the step limit.

A pipeline level iterates ``range(start, len(nodes))``; a graph level iterates
a :class:`Walk` instead, in the same loop (:func:`stepkit.engine._level.run_level`).
The walk follows unconditional edges itself; for a conditional edge the
level loop asks the selector when it leaves the node, through a ``Call``
command (so sync and async selectors work under both drivers), and the walk
checks the key (:meth:`Walk.choose`). The walk also
counts node executions against ``max_steps``: its count and any limit given
on resume are part of the resume position (:class:`~stepkit.engine._position.InGraph`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from stepkit.errors import GraphRoutingError, GraphStepLimitError

if TYPE_CHECKING:
    from stepkit.engine._run import Run
    from stepkit.pipeline._plan import Node
    from stepkit.pipeline._routes import Conditional, Routes

__all__ = ["Walk"]


class Walk:
    """Iterates the node indexes of one graph level, counting executions against the limit.

    ``to`` is the next node once a selector has chosen it (``-1``: follow the
    one edge of the node last left, ``last``). ``given`` is a limit given on
    resume (recorded in positions so that it holds for the rest of the run).
    """

    __slots__ = (
        "edges",
        "end",
        "ended",
        "given",
        "graph",
        "last",
        "limit",
        "nodes",
        "prefix",
        "run",
        "steps",
        "to",
    )

    def __init__(
        self,
        run: Run,
        graph: str,
        routes: Routes,
        nodes: tuple[Node, ...],
        prefix: str,
        steps: int = 0,
        given: int | None = None,
    ) -> None:
        self.run = run
        self.graph = graph
        self.edges: tuple[Any, ...] = routes.edges
        self.nodes = nodes
        self.end = len(nodes)  # the index of END
        self.prefix = prefix
        self.steps = steps
        self.given = given
        self.limit = routes.max_steps if given is None else given
        self.last = -1
        self.to = routes.entry
        self.ended = False

    def __iter__(self) -> Walk:
        return self

    def __next__(self) -> int:
        i = self.to
        if i < 0:  # no selector decided: the node's one unconditional edge (an index)
            i = self.edges[self.last]
        else:
            self.to = -1
        if i == self.end:
            self.ended = True
            raise StopIteration
        steps = self.steps
        if steps >= self.limit:
            self._over_limit(i)
        self.steps = steps + 1
        self.last = i
        return i

    def left(self, index: int) -> None:
        """Node ``index`` completed before the walk started (a resume): route from it."""
        self.last, self.to = index, -1

    def unstarted(self) -> None:
        """The node just counted will not run (the run stops or aborts before it)."""
        self.steps -= 1

    def selector_raised(self, index: int, edge: Conditional, exc: Exception) -> NoReturn:
        """The selector of node ``index`` raised: a routing error, after the node."""
        run, path = self.run, self.prefix + self.nodes[index].name
        raise GraphRoutingError(
            f"the selector of node {path!r} raised {type(exc).__name__}: {exc}; fix it and "
            "resume from this error's checkpoint (the node does not run again)",
            node=path,
            key=None,
            allowed=tuple(edge.targets),
            checkpoint=run.snapshot_now(),
            run_id=run.run_id,
        ) from exc

    def choose(self, index: int, edge: Conditional, key: Any) -> None:
        """Leave node ``index`` by the path its selector chose (``key``): set ``to``."""
        to = edge.targets.get(key) if type(key) is str else None
        if to is None:
            self.unmapped(index, edge, key)
        self.to = to

    def unmapped(self, index: int, edge: Conditional, key: Any) -> NoReturn:
        """The selector of node ``index`` chose a key its path map lacks: a routing error.

        It carries the checkpoint after the node (not yet routed).
        """
        run, path = self.run, self.prefix + self.nodes[index].name
        allowed = tuple(edge.targets)
        shown = repr(key) if len(repr(key)) <= 80 else repr(key)[:77] + "..."
        raise GraphRoutingError(
            f"the selector of node {path!r} returned {shown}, which is not a key of its "
            f"path_map (allowed: {', '.join(map(repr, allowed))}); return one of them or "
            "add the key to the path_map, then resume from this error's checkpoint (the "
            "node does not run again)",
            node=path,
            key=key,
            allowed=allowed,
            checkpoint=run.snapshot_now(),
            run_id=run.run_id,
        )

    def _over_limit(self, index: int) -> None:
        run, path = self.run, self.prefix + self.nodes[index].name
        raise GraphStepLimitError(
            f"graph {self.graph!r} reached its limit of {self.limit} node executions "
            f"(max_steps={self.limit}) before running node {path!r}; if the loop should go "
            "on, resume from this error's checkpoint with a higher limit "
            "(run_checkpoint(err.checkpoint, max_steps=...) or resume(run_id, max_steps=...)), "
            "else check the condition that ends the loop",
            node=path,
            limit=self.limit,
            steps=self.steps,
            checkpoint=run.snapshot_now(),
            run_id=run.run_id,
        )
