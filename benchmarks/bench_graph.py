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

from _report import best_of, emit, machine

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


def main() -> None:
    ctx = {"n": 0}
    assert CHAIN.run(ctx)["n"] == LOOP.run(ctx)["n"] == PIPELINE.run(ctx)["n"] == STEPS
    floor = best_of(lambda: plain_loop(ctx), number=300) / STEPS
    rows = []
    for label, flow in (("pipeline step", PIPELINE), ("graph node, plain edges", CHAIN)):
        rows.append((label, best_of(lambda flow=flow: flow.run(ctx), number=300) / STEPS))
    loop = best_of(lambda: LOOP.run(ctx), number=300) / STEPS
    loop_floor = best_of(lambda: [again(ctx) for _ in range(STEPS)], number=300) / STEPS
    rows.append(("graph node, conditional edge", loop))
    base = rows[0][1] - floor
    lines = [
        f"Measured on {machine()}, {STEPS} executions of a trivial step, best of 7 rounds.",
        "",
        "| shape | us per node | overhead over a plain loop (us) | x pipeline overhead |",
        "|---|---:|---:|---:|",
        f"| plain loop | {floor * 1e6:.2f} | - | - |",
    ]
    for label, seconds in rows:
        over = seconds - floor
        lines.append(f"| {label} | {seconds * 1e6:.2f} | {over * 1e6:.2f} | {over / base:.2f} |")
    lines += [
        "",
        f"A conditional edge also calls its selector once per node ({loop_floor * 1e6:.2f} us "
        "here, in the plain loop's terms); the goal is at most 1.5x a pipeline step's overhead.",
    ]
    emit("graph", "\n".join(lines))


if __name__ == "__main__":
    main()
