"""Shared helpers for the benchmark scripts: timing and writing docs/performance.md."""

from __future__ import annotations

import argparse
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "SAMPLE_CONTEXT",
    "Interleaved",
    "best_of",
    "database_folder",
    "emit",
    "interleaved",
    "machine",
    "write_section",
]

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


@dataclass(frozen=True)
class Interleaved:
    """Seconds per call of a candidate and its floor, and their ratio, over interleaved rounds."""

    candidate: float  # median seconds per call
    floor: float  # median seconds per call
    ratio: float  # median of the per-round ratios
    low: float  # smallest per-round ratio
    high: float  # largest per-round ratio

    @property
    def overhead(self) -> float:
        """Median seconds per call above the floor."""
        return self.candidate - self.floor

    def spread(self) -> str:
        return f"{self.ratio:.2f}x ({self.low:.2f}-{self.high:.2f})"


def interleaved(
    candidate: Callable[[], object],
    floor: Callable[[], object],
    *,
    rounds: int = 7,
    number: int = 2000,
) -> Interleaved:
    """Time ``candidate`` against ``floor`` in this process, in alternating rounds.

    Alternating exposes both to the same drift of a shared machine; the ratio is
    taken within each round, and its median and spread are reported.
    """
    candidate(), floor()  # warm up
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for fn, out in ((candidate, times[0]), (floor, times[1])):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            out.append((time.perf_counter() - t0) / number)
    ratios = [c / f for c, f in zip(*times, strict=True)]
    return Interleaved(
        statistics.median(times[0]),
        statistics.median(times[1]),
        statistics.median(ratios),
        min(ratios),
        max(ratios),
    )


@contextmanager
def database_folder(doc: str | None) -> Iterator[tuple[Path, int]]:
    """Parse ``--write``/``--dir``/``--quick``; a temporary folder for databases, and the rounds.

    ``--dir`` puts the databases on another disk (default: the system's temporary
    folder); ``--quick`` takes 5 rounds instead of 9. The folder is removed after.
    """
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the databases")
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="stepkit-bench-", dir=args.dir))
    try:
        yield folder, 5 if args.quick else 9
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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
