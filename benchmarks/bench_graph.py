"""Per-node overhead of a graph against a pipeline step's, both over a plain loop.

Run: python benchmarks/bench_graph.py

Goal (issue 12): a node execution costs at most 1.5x a pipeline step's
overhead. Three shapes of 100 node executions of a trivial function: a chain
of 100 nodes joined by plain edges, one node looping on itself through a
conditional edge (a selector call per node), and the pipeline of 100 steps.
Ratios are taken in one process, against the plain loop measured in the same
run; nothing here is a test.
"""

from __future__ import annotations

from typing import Any

from _report import emit, interleaved, machine

from stepkit import END, START, Graph, Pipeline

STEPS = 100


def bump(ctx: Any) -> dict[str, int]:
    return {"n": ctx["n"] + 1}


def again(ctx: Any) -> str:
    return "again" if ctx["n"] < STEPS else "done"


PIPELINE = Pipeline("bench")
for i in range(STEPS):
    PIPELINE = PIPELINE.step(f"s{i}", bump)

CHAIN = Graph("chain", max_steps=STEPS).add_edge(START, "s0")
for i in range(STEPS):
    CHAIN = CHAIN.add_node(f"s{i}", bump).add_edge(f"s{i}", f"s{i + 1}" if i + 1 < STEPS else END)

LOOP = (
    Graph("loop", max_steps=STEPS)
    .add_node("bump", bump)
    .add_edge(START, "bump")
    .add_conditional_edges("bump", again, {"again": "bump", "done": END})
)


def plain_loop(ctx: dict[str, Any]) -> dict[str, Any]:
    ctx = dict(ctx)
    for _ in range(STEPS):
        ctx.update(bump(ctx))
    return ctx


def routed_loop(ctx: dict[str, Any]) -> dict[str, Any]:
    """The floor of the conditional graph: the same step and the same selector, in a loop."""
    ctx = dict(ctx)
    while True:
        ctx.update(bump(ctx))
        if again(ctx) != "again":
            return ctx


def main() -> None:
    ctx = {"n": 0}
    assert CHAIN.run(ctx)["n"] == LOOP.run(ctx)["n"] == PIPELINE.run(ctx)["n"] == STEPS
    assert routed_loop(ctx)["n"] == STEPS
    shapes = (
        ("pipeline step", PIPELINE, plain_loop),
        ("graph node, plain edges", CHAIN, plain_loop),
        ("graph node, conditional edge (selector in the floor too)", LOOP, routed_loop),
    )
    rows = [
        (label, interleaved(lambda flow=flow: flow.run(ctx), lambda f=floor: f(ctx), number=300))
        for label, flow, floor in shapes
    ]
    base = rows[0][1].overhead
    lines = [
        f"Measured on {machine()}: {STEPS} executions of a trivial step, medians of 7 "
        "alternating rounds against a plain loop doing the same work (for the conditional "
        "edge: the step and the selector) in the same process.",
        "",
        "| shape | us per node | floor (us) | overhead (us) | x pipeline overhead | goal |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, got in rows:
        lines.append(
            f"| {label} | {got.candidate / STEPS * 1e6:.2f} | {got.floor / STEPS * 1e6:.2f} | "
            f"{got.overhead / STEPS * 1e6:.2f} | {got.overhead / base:.2f} | ≤ 1.5 |"
        )
    emit("graph", "\n".join(lines))


if __name__ == "__main__":
    main()
