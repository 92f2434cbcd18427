"""In-memory pipelines against their floors: step overhead, building, resuming.

Run: python benchmarks/bench_pipeline.py [--write]   (--write updates docs/performance.md)

Goals (SPEC §8), each measured against a floor in the same process, in
alternating rounds (median, and the spread of the per-round ratios):

- a step costs at most 0.5 us over a plain loop of the same functions, at most
  1 us with one handler, flat from 1 to 100,000 context keys;
- building a pipeline of n steps is O(n): 10,000 steps in at most 50 ms;
- resuming from a checkpoint costs at most 3x its floor (decoding the
  checkpoint with base64 + json, and running the one step left), and does not
  depend on where in the pipeline the checkpoint was taken.
"""

from __future__ import annotations

import base64
import json
import time
from functools import partial
from typing import Any

from _report import emit, interleaved, machine

from stepkit import Pipeline, StepEvent

STEPS = 100


def bump(ctx: Any) -> dict[str, int]:
    return {"n": ctx["n"] + 1}


def linear(n: int) -> Pipeline:
    p = Pipeline("bench")
    for i in range(n):
        p = p.step(f"s{i}", bump)
    return p


PIPELINE = linear(STEPS)


def plain_loop(ctx: dict[str, Any]) -> dict[str, Any]:
    ctx = dict(ctx)
    for _ in range(STEPS):
        ctx.update(bump(ctx))
    return ctx


def ignore(event: StepEvent) -> None:
    pass


def overhead_rows() -> list[str]:
    lines = [
        "| context keys | plain loop (us/step) | run() | overhead (us) | goal | "
        "run() + handler | overhead (us) | goal |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for keys in (1, 100, 10_000, 100_000):
        ctx = {"n": 0, **{f"k{i}": i for i in range(keys - 1)}}
        number = 200 if keys <= 100 else 20
        floor = partial(plain_loop, ctx)  # copies its input once, as a run does
        bare = interleaved(lambda ctx=ctx: PIPELINE.run(ctx), floor, number=number)
        handled = interleaved(
            lambda ctx=ctx: PIPELINE.run(ctx, on_step_complete=ignore), floor, number=number
        )
        us = 1e6 / STEPS
        lines.append(
            f"| {keys:,} | {bare.floor * us:.2f} | {bare.candidate * us:.2f} | "
            f"**{bare.overhead * us:.2f}** | 0.5 | "
            f"{handled.candidate * us:.2f} | **{handled.overhead * us:.2f}** | 1.0 |"
        )
    return lines


def build_rows() -> list[str]:
    lines = ["| steps | build (ms) | floor: a list of the same steps (ms) | ratio | goal |"]
    lines.append("|---:|---:|---:|---:|---:|")
    for n in (1_000, 10_000):

        def floor(n: int = n) -> object:  # the same functions and names, in a plain list
            return [(f"s{i}", bump) for i in range(n)]

        got = interleaved(lambda n=n: linear(n), floor, rounds=5, number=3)
        goal = "≤ 50 ms" if n == 10_000 else ""
        lines.append(
            f"| {n:,} | **{got.candidate * 1e3:.1f}** | {got.floor * 1e3:.2f} | "
            f"{got.ratio:.0f}x | {goal} |"
        )
    return lines


def _checkpoint_after(pipeline: Pipeline, step: str) -> str:
    saved: list[str] = []

    def keep(event: StepEvent) -> None:
        if event.step_name == step:
            saved.append(event.checkpoint)
            event.stop_pipeline()

    pipeline.run({"n": 0, "text": "x" * 200}, on_step_complete=keep)
    return saved[0]


def resume_rows() -> list[str]:
    lines = [
        "| pipeline | resumed after | run_checkpoint (us) | floor (us) | ratio (spread) | goal |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for n, after in ((2, "s0"), (10_000, "s9998"), (10_000, "s10")):
        pipeline = linear(n)
        cp = _checkpoint_after(pipeline, after)
        left = n - 1 - int(after[1:])

        def floor(cp: str = cp, left: int = left) -> object:
            ctx = json.loads(base64.urlsafe_b64decode(cp + "=" * (-len(cp) % 4)))["context"]
            for _ in range(left):
                ctx.update(bump(ctx))
            return ctx

        number = 2000 if left == 1 else 20
        got = interleaved(lambda cp=cp, p=pipeline: p.run_checkpoint(cp), floor, number=number)
        goal = "≤ 3x" if left == 1 else f"{left:,} steps left"
        lines.append(
            f"| {n:,} steps | {after} | {got.candidate * 1e6:.1f} | {got.floor * 1e6:.1f} | "
            f"{got.spread()} | {goal} |"
        )
    return lines


def main() -> None:
    t0 = time.perf_counter()
    lines = [
        f"Measured on {machine()}: medians of 7 alternating rounds against a floor measured "
        "in the same process; (spread) is the range of the per-round ratios.",
        "",
        f"**Step overhead** ({STEPS}-step pipeline of trivial steps; the handler does not read "
        "the checkpoint):",
        "",
        *overhead_rows(),
        "",
        "**Building** (`Pipeline(...).step(...)` n times):",
        "",
        *build_rows(),
        "",
        "**Resuming from a checkpoint** (floor: base64 + json decoding of the same checkpoint, "
        "then the steps left as a plain loop). The cost does not depend on the position:",
        "",
        *resume_rows(),
    ]
    emit("pipeline", "\n".join(lines))
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
