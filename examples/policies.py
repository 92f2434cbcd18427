"""Step policies: retries with backoff, a timeout, error modes, merge rules, parallel modes.

Run: python examples/policies.py
"""

from __future__ import annotations

import asyncio
from typing import Any

from stepkit import Pipeline, StepFailedError, exponential_backoff

attempts: list[int] = []


def flaky_fetch(ctx: Any) -> dict[str, Any]:
    """Fails twice with a connection error, then answers."""
    attempts.append(1)
    if len(attempts) < 3:
        raise ConnectionError(f"upstream unavailable (attempt {len(attempts)})")
    return {"prices": [3, 1, 2]}


async def slow_enrichment(ctx: Any) -> dict[str, Any]:
    await asyncio.sleep(10)  # far past its timeout: it is cancelled
    return {"enriched": True}


def optional_tracking(ctx: Any) -> dict[str, Any]:
    raise RuntimeError("tracking service down")


def cheapest(ctx: Any) -> dict[str, Any]:
    return {"best": min(ctx["prices"])}


def from_cache(ctx: Any) -> dict[str, Any]:
    return {"source": "cache"}


def from_api(ctx: Any) -> dict[str, Any]:
    raise TimeoutError("api too slow")


shop = (
    Pipeline("shop")
    .step(
        "fetch",
        flaky_fetch,
        retries=3,
        retry_on=ConnectionError,
        retry_delay=exponential_backoff(base=0.01, max_delay=0.1),
    )
    .step("enrich", slow_enrichment, timeout=0.05, on_error="continue")
    .step("track", optional_tracking, on_error="continue")
    .step("lookup", from_cache, from_api, parallel_mode="settled")
    .step("pick", cheapest, merge="error")
)


def main() -> dict[str, Any]:
    result = shop.run({"user": "ada"})
    print("result:", dict(result))
    for record in result.steps:
        error = f"  ({type(record.error).__name__}: {record.error})" if record.error else ""
        print(f"  {record.name:<16} {record.status:<10} attempts={record.attempts}{error}")

    # merge="error": a step may not silently overwrite an existing key
    try:
        shop.run({"best": 0})
    except StepFailedError as exc:
        print("merge='error' ->", exc.__cause__)
    return dict(result)


if __name__ == "__main__":
    main()
