"""Shared helpers for the benchmark scripts: timing and writing docs/performance.md."""

from __future__ import annotations

import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["SAMPLE_CONTEXT", "best_of", "emit", "machine", "write_section"]

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


# a realistic ~1 KB context (an approval request), shared by the benchmarks
SAMPLE_CONTEXT: dict[str, Any] = {
    "request_id": "req-8f14e45fceea167a5a36dedd4bea2543",
    "customer": {"id": 48213, "name": "Ada Lovelace", "email": "ada@example.com", "tier": "gold"},
    "body": "My order 1234 has not arrived and the tracking page shows no movement since "
    "Tuesday. Could you check with the carrier and let me know what is going on? " * 4,
    "reply": "Thanks for writing. We have contacted the carrier and will update you within a day.",
    "tags": ["shipping", "delayed", "priority"],
    "scores": {"sentiment": -0.42, "urgency": 0.81, "confidence": 0.93},
}


def best_of(fn: Callable[[], object], *, repeat: int = 7, number: int = 200) -> float:
    """The best mean seconds per call of ``fn`` over ``repeat`` rounds of ``number`` calls."""
    fn()  # warm up
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def machine() -> str:
    implementation = platform.python_implementation()
    return f"Python {platform.python_version()} ({implementation}), {platform.machine()}"


def write_section(name: str, markdown: str) -> None:
    """Replace the section between ``<!-- name -->`` markers in docs/performance.md."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    block = f"{begin}\n{markdown.rstrip()}\n{end}"
    if begin in text:
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text)


def emit(name: str, markdown: str) -> None:
    print(markdown)
    if "--write" in sys.argv:
        write_section(name, markdown)
        print(f"(written to {DOC})")
