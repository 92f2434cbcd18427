"""Mermaid flowcharts of a pipeline's whole structure.

Nested pipelines and parallel steps are subgraphs (parallel items side by
side), branches are decision nodes with one labelled edge per case and a
dotted ``none`` edge for the selector returning ``None``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stepkit.pipeline._plan import FnItem, Node, PipeItem

if TYPE_CHECKING:
    from stepkit.pipeline._builder import PipelineBuilder as Pipeline

Exit = tuple[str, str]  # (node id, edge label; "" for a plain edge)


class _Chart:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.count = 0

    def new_id(self) -> str:
        self.count += 1
        return f"n{self.count}"

    def add(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def connect(self, depth: int, exits: list[Exit], entries: list[str]) -> None:
        for source, label in exits:
            for target in entries:
                if label == "none":
                    self.add(depth, f"{source} -.->|none| {target}")
                else:
                    self.add(depth, f"{source} --> {target}")


def _label(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def to_mermaid(pipeline: Pipeline) -> str:
    """The Mermaid ``flowchart TD`` text of ``pipeline``."""
    chart = _Chart()
    chart.add(0, "flowchart TD")
    chart.add(1, f"start([{_label(pipeline.name)}])")
    entries, exits = _sequence(chart, pipeline, 1, "")
    chart.connect(1, [("start", "")], entries)
    chart.add(1, "done([end])")
    chart.connect(1, exits, ["done"])
    return "\n".join(chart.lines) + "\n"


def _sequence(
    chart: _Chart, pipeline: Pipeline, depth: int, prefix: str
) -> tuple[list[str], list[Exit]]:
    if not pipeline.nodes:
        node_id = chart.new_id()
        chart.add(depth, f"{node_id}[{_label('(no steps)')}]")
        return [node_id], [(node_id, "")]
    first: list[str] = []
    exits: list[Exit] = []
    for index, node in enumerate(pipeline.nodes):
        entries, node_exits = _node(chart, node, depth, prefix + node.name)
        if index == 0:
            first = entries
        else:
            chart.connect(depth, exits, entries)
        exits = node_exits
    return first, exits


def _node(chart: _Chart, node: Node, depth: int, path: str) -> tuple[list[str], list[Exit]]:
    if node.kind == "branch":
        decision = chart.new_id()
        chart.add(depth, f"{decision}{{{_label(node.name)}}}")
        exits: list[Exit] = [(decision, "none")]
        for key, target in node.cases:
            chart.add(depth, f"subgraph {chart.new_id()}[{_label(f'{node.name}/{key}')}]")
            entries, case_exits = _sequence(chart, target, depth + 1, f"{path}/{key}/")
            chart.add(depth, "end")
            for entry in entries:
                chart.add(depth, f"{decision} -->|{_label(key)}| {entry}")
            exits.extend(case_exits)
        return [decision], exits
    if node.kind == "transform":
        node_id = chart.new_id()
        chart.add(depth, f"{node_id}[/{_label(node.name)}/]")
        return [node_id], [(node_id, "")]
    if len(node.items) == 1 and isinstance(node.items[0], FnItem):
        node_id = chart.new_id()
        chart.add(depth, f"{node_id}[{_label(node.name)}]")
        return [node_id], [(node_id, "")]
    chart.add(depth, f"subgraph {chart.new_id()}[{_label(node.name)}]")
    if node.parallel:
        chart.add(depth + 1, "direction LR")
    starts: list[str] = []
    all_exits: list[Exit] = []
    for item in node.items:
        if isinstance(item, PipeItem):
            item_entries, item_exits = _sequence(chart, item.pipeline, depth + 1, path + "/")
        else:
            item_id = chart.new_id()
            chart.add(depth + 1, f"{item_id}[{_label(item.name)}]")
            item_entries, item_exits = [item_id], [(item_id, "")]
        starts.extend(item_entries)
        all_exits.extend(item_exits)
    chart.add(depth, "end")
    return starts, all_exits
