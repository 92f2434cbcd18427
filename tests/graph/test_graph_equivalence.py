"""For generated graphs, stopping at any node execution and resuming equals one uninterrupted run.

Graphs have loops and conditional edges: node ``i`` is left either by a plain
edge or by a selector over the context (sync or async) whose path map always
has a key to ``i + 1`` (or END), so every node is reachable and END can be
reached; other keys jump anywhere, loops included. Selectors move on once a
run has made enough node executions, so every run ends. Some nodes are nested
pipelines, so stops also happen inside a node.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import Runner

from stepkit import END, START, Graph, Pipeline
from stepkit.testing import EventRecorder


@dataclass(frozen=True)
class NodeSpec:
    nested: bool
    jumps: tuple[int, ...]  # targets of the extra keys (len(nodes) is END); () = a plain edge
    salt: int
    async_selector: bool


@st.composite
def graph_specs(draw: Any) -> tuple[NodeSpec, ...]:
    size = draw(st.integers(1, 5))
    targets = st.integers(0, size)
    return tuple(
        NodeSpec(
            nested=draw(st.booleans()),
            jumps=tuple(draw(st.lists(targets, max_size=2))),
            salt=draw(st.integers(0, 7)),
            async_selector=draw(st.booleans()),
        )
        for _ in range(size)
    )


BUDGET = 12  # node executions after which every selector moves forward


def build(specs: tuple[NodeSpec, ...]) -> Graph:
    names = [f"n{i}" for i in range(len(specs))]

    def name(i: int) -> Any:
        return END if i == len(specs) else names[i]

    g = Graph("generated", max_steps=BUDGET + len(specs) + 1)
    for i, spec in enumerate(specs):

        def step(ctx: Any, i: int = i) -> dict[str, Any]:
            return {"t": ctx.get("t", 0) + 1, f"v{i}": ctx.get(f"v{i}", 0) + ctx.get("t", 0)}

        if spec.nested:
            inner = Pipeline(f"p{i}").step("x", step).step("y", lambda ctx: {"y": ctx["t"]})
            g = g.add_node(names[i], inner)
        else:
            g = g.add_node(names[i], step)
    g = g.add_edge(START, names[0])
    for i, spec in enumerate(specs):
        if not spec.jumps:
            g = g.add_edge(names[i], name(i + 1))
            continue
        keys = ["next", *(f"k{j}" for j in range(len(spec.jumps)))]
        path_map = {"next": name(i + 1)}
        path_map.update({f"k{j}": name(t) for j, t in enumerate(spec.jumps)})

        def pick(ctx: Any, keys: list[str] = keys, salt: int = spec.salt) -> str:
            t = ctx.get("t", 0)
            return "next" if t >= BUDGET else keys[(t * 3 + salt) % len(keys)]

        async def apick(ctx: Any, pick: Any = pick) -> str:
            return str(pick(ctx))

        g = g.add_conditional_edges(names[i], apick if spec.async_selector else pick, path_map)
    return g


def events(recorder: EventRecorder) -> list[tuple[str, dict[str, Any]]]:
    return [(e.step_name, e.context) for e in recorder.events]


@pytest.mark.parametrize("mode", ["sync", "async"], ids=["run", "arun"])
@settings(max_examples=40, deadline=None)
@given(specs=graph_specs())
def test_stop_anywhere_and_resume_equals_one_run(mode: str, specs: tuple[NodeSpec, ...]) -> None:
    """Run-stop-resume at every node execution: same final context, same remaining events."""
    runner = Runner(mode)
    graph = build(specs)
    whole = EventRecorder(checkpoints=False)
    final = runner.run(graph, {}, on_step_complete=whole)
    assert final.status == "completed"
    expected = events(whole)
    for k in range(len(expected)):
        counted = iter(range(len(expected)))

        def stop_at(event: Any, k: int = k, counted: Any = counted) -> None:
            if next(counted) == k:
                event.stop_pipeline()

        paused = runner.run(graph, {}, on_step_complete=stop_at)
        assert paused.status == "stopped"
        rest = EventRecorder(checkpoints=False)
        resumed = runner.resume(graph, paused.checkpoint, on_step_complete=rest)
        assert resumed.status == "completed"
        assert dict(resumed) == dict(final)
        assert events(rest) == expected[k + 1 :]


def test_generated_graphs_build() -> None:
    """The generator's graphs validate (a smoke check of the strategy itself)."""
    spec = NodeSpec(nested=True, jumps=(0, 2), salt=1, async_selector=True)
    graph = build((spec, spec))
    assert graph.validate().describe() == ["n0", "n1"]
    assert asyncio.run(graph.arun({}))["t"] >= 1
