"""Realistic user code that must type-check under mypy --strict (run by .ci/run)."""

from __future__ import annotations

import asyncio
from typing import Any

from stepkit import (
    Checkpoint,
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
