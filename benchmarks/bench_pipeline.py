"""Per-step overhead of a pipeline against a plain loop of the same functions.

Run: python benchmarks/bench_pipeline.py [--write]   (--write updates docs/performance.md)

Budget (issue 2): at most 2 us/step over the plain loop without a handler, at
most 3 us/step with a handler that does not read the checkpoint, and no growth
with context size (1 key vs 10,000 keys) unless a checkpoint is read.
"""

from __future__ import annotations

from typing import Any

from _report import best_of, emit, machine

from stepkit import Pipeline, StepEvent

STEPS = 100


def bump(ctx: Any) -> dict[str, int]:
    return {"n": ctx["n"] + 1}


PIPELINE = Pipeline("bench")
for i in range(STEPS):
    PIPELINE = PIPELINE.step(f"s{i}", bump)


def plain_loop(ctx: dict[str, Any]) -> dict[str, Any]:
    ctx = dict(ctx)
    for _ in range(STEPS):
        ctx.update(bump(ctx))
    return ctx


def ignore(event: StepEvent) -> None:
    pass


def read_checkpoint(event: StepEvent) -> None:
    event.checkpoint  # noqa: B018 - reading it is the point


def main() -> None:
    rows = []
    for keys in (1, 10_000):
        ctx = {"n": 0, **{f"k{i}": i for i in range(keys - 1)}}
        number = 300 if keys == 1 else 30
        floor = best_of(lambda ctx=ctx: plain_loop(ctx), number=number) / STEPS
        bare = best_of(lambda ctx=ctx: PIPELINE.run(ctx), number=number) / STEPS
        handled = (
            best_of(lambda ctx=ctx: PIPELINE.run(ctx, on_step_complete=ignore), number=number)
            / STEPS
        )
        rows.append((keys, floor, bare, handled))
    cp_rows = []
    for keys in (1, 100):
        ctx = {"n": 0, **{f"k{i}": i for i in range(keys - 1)}}
        cp = (
            best_of(lambda ctx=ctx: PIPELINE.run(ctx, on_step_complete=read_checkpoint), number=10)
            / STEPS
        )
        cp_rows.append((keys, cp))

    lines = [
        f"Measured on {machine()}, {STEPS}-step pipeline of trivial steps, best of 7 rounds.",
        "",
        "| context keys | plain loop (us/step) | run(), no handler | overhead | budget | "
        "run(), handler not reading checkpoint | overhead | budget |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for keys, floor, bare, handled in rows:
        lines.append(
            f"| {keys:,} | {floor * 1e6:.2f} | {bare * 1e6:.2f} | "
            f"{(bare - floor) * 1e6:.2f} | 2.00 | {handled * 1e6:.2f} | "
            f"{(handled - floor) * 1e6:.2f} | 3.00 |"
        )
    lines += [
        "",
        "The context is never copied per step, so the cost does not grow with its size.",
        "Reading `event.checkpoint` at every step encodes the whole context each time:",
        "",
        "| context keys | run(), handler reading every checkpoint (us/step) |",
        "|---:|---:|",
    ]
    lines += [f"| {keys:,} | {cp * 1e6:.1f} |" for keys, cp in cp_rows]
    emit("pipeline", "\n".join(lines))


if __name__ == "__main__":
    main()
