"""Mermaid flowcharts of graphs: one box per node, conditional edges labelled with their keys.

A node that is a nested pipeline or runs items in parallel is drawn as the
pipeline chart draws such a step (a subgraph); edges leave from its exits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stepkit.pipeline._mermaid import Exit, _Chart, _label, _node

if TYPE_CHECKING:
    from stepkit.graph._plan import GraphPlan

__all__ = ["graph_mermaid"]


def graph_mermaid(plan: GraphPlan) -> str:
    """The Mermaid ``flowchart TD`` text of a compiled graph."""
    chart = _Chart()
    chart.add(0, "flowchart TD")
    chart.add(1, f"start([{_label(plan.name)}])")
    drawn: list[tuple[list[str], list[Exit]]] = [
        _node(chart, node, 1, node.name) for node in plan.nodes
    ]
    chart.add(1, "done([END])")
    ends = [*(entries for entries, _exits in drawn), ["done"]]
    routes = plan.routes()
    for entry in ends[routes.entry]:
        chart.add(1, f"start --> {entry}")
    for (_entries, exits), edge in zip(drawn, routes.edges, strict=True):
        targets: list[tuple[str | None, int]]
        targets = [(None, edge)] if isinstance(edge, int) else list(edge.targets.items())
        for key, index in targets:
            arrow = " --> " if key is None else f" -->|{_label(key)}| "
            for source, _ in exits:
                for entry in ends[index]:
                    chart.add(1, f"{source}{arrow}{entry}")
    return "\n".join(chart.lines) + "\n"
