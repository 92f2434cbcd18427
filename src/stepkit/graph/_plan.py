"""A graph checked as a whole and compiled to the plan the engine runs.

:func:`compile_graph` raises :class:`~stepkit.errors.PipelineDefinitionError`
for what only the whole graph shows (no entry point, unknown nodes, a node
with no way out, unreachable nodes, loops that never reach ``END``) and
returns a :class:`GraphPlan`: the nodes as one engine level, plus
:class:`~stepkit.pipeline._routes.Routes` saying how each node is left.
"""

from __future__ import annotations

from typing import Any

from stepkit.errors import PipelineDefinitionError
from stepkit.graph._builder import END, START, EdgeAdded, GraphBuilder, NodeAdded, Target
from stepkit.pipeline._builder import PipelineBuilder
from stepkit.pipeline._paths import shape
from stepkit.pipeline._plan import Node
from stepkit.pipeline._routes import Conditional, Routes

__all__ = ["GraphPlan", "compile_graph"]


class GraphPlan(PipelineBuilder):
    """A checked graph as the engine runs it: a level of nodes, and its routes."""

    __slots__ = ("_edge_shape", "_routes")

    _routes: Routes
    _edge_shape: list[Any]

    def routes(self) -> Routes:
        return self._routes

    @property
    def fingerprint(self) -> str:
        """A hash of the structure: nodes, edges, path maps, entry point (not code or limits)."""
        if self._fingerprint is None:
            import hashlib
            import json

            text = json.dumps(
                ["graph", shape(self), self._edge_shape], separators=(",", ":"), sort_keys=True
            )
            object.__setattr__(self, "_fingerprint", hashlib.sha256(text.encode()).hexdigest()[:16])
        assert self._fingerprint is not None
        return self._fingerprint

    def to_mermaid(self) -> str:
        from stepkit.graph._mermaid import graph_mermaid

        return graph_mermaid(self)


def compile_graph(graph: GraphBuilder) -> GraphPlan:
    """Check ``graph`` as a whole and compile it; raise with a message that says how to fix it."""
    name = graph.name
    changes = graph.changes()
    nodes = tuple(c.node for c in changes if isinstance(c, NodeAdded))
    if not nodes:
        raise PipelineDefinitionError(
            f"graph {name!r} has no nodes; add_node('name', fn) for each step"
        )
    index = {node.name: i for i, node in enumerate(nodes)}
    end = len(nodes)

    def to(target: Target | None, what: str) -> int:
        if target is END:
            return end
        assert isinstance(target, str)
        i = index.get(target)
        if i is None:
            raise PipelineDefinitionError(
                f"graph {name!r}: {what} goes to {target!r}, which is not a node; its nodes "
                f"are {', '.join(map(repr, index))}. Add the node, or fix the name"
            )
        return i

    entry: int | None = None
    edges: dict[int, int | Conditional] = {}
    for change in changes:
        if not isinstance(change, EdgeAdded):
            continue
        if change.src is START:
            entry = to(change.dst, "the entry edge (from START)")
            continue
        src = index.get(change.src)
        if src is None:
            raise PipelineDefinitionError(
                f"graph {name!r}: an edge leaves {change.src!r}, which is not a node; its "
                f"nodes are {', '.join(map(repr, index))}. Add the node, or fix the name"
            )
        if change.selector is None:
            edges[src] = to(change.dst, f"the edge from {change.src!r}")
        else:
            assert change.path_map is not None
            targets = {
                key: to(target, f"path_map[{key!r}] of node {change.src!r}")
                for key, target in change.path_map.items()
            }
            edges[src] = Conditional(change.selector, targets)
    if entry is None:
        raise PipelineDefinitionError(
            f"graph {name!r} has no entry point; set_entry_point('first node') "
            "(or add_edge(START, 'first node'))"
        )
    stuck = [node.name for i, node in enumerate(nodes) if i not in edges]
    if stuck:
        raise PipelineDefinitionError(
            f"graph {name!r}: node(s) {', '.join(map(repr, stuck))} have no outgoing edge; "
            "say where each goes next: add_edge(node, next_node), add_edge(node, END) or "
            "add_conditional_edges(node, selector, path_map)"
        )
    ordered = tuple(edges[i] for i in range(end))
    _check_reach(name, nodes, entry, ordered)
    plan = object.__new__(GraphPlan)
    plan._init(name, nodes, graph.options)
    routes = Routes(entry, ordered, graph.max_steps)
    setattr_ = object.__setattr__
    setattr_(plan, "_routes", routes)
    setattr_(plan, "_edge_shape", _edge_shape(nodes, entry, ordered))
    return plan


def _successors(edge: int | Conditional) -> list[int]:
    return [edge] if isinstance(edge, int) else list(edge.targets.values())


def _check_reach(
    name: str, nodes: tuple[Node, ...], entry: int, edges: tuple[int | Conditional, ...]
) -> None:
    """Every node is reachable from the entry, and END from every node."""
    end = len(nodes)
    seen, todo = {entry}, [entry]
    while todo:
        for nxt in _successors(edges[todo.pop()]):
            if nxt != end and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    unreachable = [node.name for i, node in enumerate(nodes) if i not in seen]
    if unreachable:
        raise PipelineDefinitionError(
            f"graph {name!r}: node(s) {', '.join(map(repr, unreachable))} cannot be reached "
            f"from the entry point {nodes[entry].name!r}; add an edge (or a path_map entry) "
            "that leads to them, or remove them"
        )
    before: dict[int, list[int]] = {i: [] for i in range(end + 1)}
    for i, edge in enumerate(edges):
        for nxt in _successors(edge):
            before[nxt].append(i)
    ends, todo = {end}, [end]
    while todo:
        for prev in before[todo.pop()]:
            if prev not in ends:
                ends.add(prev)
                todo.append(prev)
    trapped = [node.name for i, node in enumerate(nodes) if i not in ends]
    if trapped:
        raise PipelineDefinitionError(
            f"graph {name!r}: from node(s) {', '.join(map(repr, trapped))} the run can never "
            "reach END (a loop with no way out); give the loop an exit, e.g. "
            "add_conditional_edges(node, selector, {'done': END, 'again': ...})"
        )


def _edge_shape(
    nodes: tuple[Node, ...], entry: int, edges: tuple[int | Conditional, ...]
) -> list[Any]:
    """The routes as JSON-ready data for the fingerprint (END is ``None``)."""

    def name(i: int) -> str | None:
        return nodes[i].name if i < len(nodes) else None

    out: list[Any] = [name(entry)]
    for edge in edges:
        if isinstance(edge, int):
            out.append(name(edge))
        else:
            out.append({key: name(i) for key, i in edge.targets.items()})
    return out
