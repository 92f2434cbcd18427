"""Realistic user code that must type-check under mypy --strict (run by .ci/run)."""

from __future__ import annotations

import asyncio
from typing import Any

from stepkit import (
    END,
    START,
    Checkpoint,
    Graph,
    GraphStepLimitError,
    Pipeline,
    RunResult,
    StepEvent,
    StepFailedError,
    decode_checkpoint,
    exponential_backoff,
    open_store,
)


def add_one(ctx: Any) -> dict[str, int]:
    return {"a": ctx["a"] + 1}


async def double(ctx: Any) -> dict[str, int]:
    return {"a": ctx["a"] * 2}


calc: Pipeline = (
    Pipeline("calc", secret="0123456789abcdef0123")
    .step("add-one", add_one, retries=2, retry_delay=exponential_backoff(base=0.1))
    .step("double", double, timeout=5)
    .branch("parity", on=lambda ctx: "even", cases={"even": add_one}, default=add_one)
)


def keep(event: StepEvent) -> None:
    if event.step_name == "double":
        saved: str = event.checkpoint
        assert saved
        event.stop_pipeline()


def main() -> None:
    result: RunResult = calc.run({"a": 1}, on_step_complete=keep)
    status: str = result.status
    cp: Checkpoint = decode_checkpoint(result.checkpoint, secret="0123456789abcdef0123")
    print(status, cp.step_name, dict(result))
    try:
        calc.run_checkpoint(result.checkpoint, {"b": 1}, strict=True)
    except StepFailedError as exc:
        print(exc.step_name, exc.attempts, exc.checkpoint)
    with open_store("memory://") as store:
        calc.run({"a": 1}, store=store, run_id="r")
        print(calc.resume("r", store=store).run_id)
    asyncio.run(calc.arun({"a": 2}))


def draft(ctx: Any) -> dict[str, Any]:
    return {"drafts": ctx.get("drafts", 0) + 1}


def verdict(ctx: Any) -> str:
    return "yes" if ctx.get("approved") else "redo"


review: Graph = (
    Graph("review", max_steps=20, secret="0123456789abcdef0123")
    .add_node("draft", draft)
    .add_node("review", lambda ctx: None)
    .add_node("send", add_one, retries=3, on_error="raise")
    .add_edge(START, "draft")
    .add_edge("draft", "review")
    .add_conditional_edges("review", verdict, {"yes": "send", "redo": "draft"})
    .add_edge("send", END)
    .validate()
)


def graph_main() -> None:
    nodes: list[str] = review.describe()
    chart: str = review.to_mermaid()
    result: RunResult = review.run({}, on_step_complete=keep)
    try:
        review.run_checkpoint(result.checkpoint, {"approved": True}, max_steps=40)
    except GraphStepLimitError as exc:
        print(exc.node, exc.limit, exc.checkpoint)
    with open_store("memory://") as store:
        review.run({}, store=store, run_id="g")
        print(review.resume("g", store=store, override_data={"approved": True}, max_steps=50))
    asyncio.run(review.arun_checkpoint(result.checkpoint, max_steps=5))
    print(nodes, chart)
