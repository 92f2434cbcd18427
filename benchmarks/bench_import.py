"""Cost of ``import stepkit`` over a bare interpreter start.

Run: python benchmarks/bench_import.py [--write] [--runs N] [--top N]
(--write updates the "Import time" section of docs/performance.md.)

Starts ``python -c "import stepkit"`` and ``python -c "pass"`` as subprocesses,
N times each (default 20), interleaved so that both see the same machine load,
and reports the median wall time of each and their difference. Then one run
under ``-X importtime`` lists the modules that ``import stepkit`` loads beyond a
bare start, by their own import time, and which heavy standard modules
(asyncio, sqlite3, ...) came with it. Budget (issue 9): at most 30 ms over the
bare interpreter. The stepkit imported is the one this interpreter finds
(run from a checkout with ``PYTHONPATH=src`` to measure the working copy).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from _report import DOC, machine, write_section

BUDGET_MS = 30.0
HEAVY = (
    "asyncio",
    "concurrent.futures",
    "sqlite3",
    "decimal",
    "logging",
    "zoneinfo",
    "uuid",
    "hmac",
    "zlib",
    "json",
    "threading",
    "typing",
    "dataclasses",
)
SECTION = "import"


def _start(code: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "-c", code], capture_output=True, text=True, check=True
    )


def _time(code: str) -> float:
    t0 = time.perf_counter()
    _start(code)
    return time.perf_counter() - t0


def measure(runs: int) -> tuple[list[float], list[float]]:
    """Wall seconds of ``runs`` bare starts and ``runs`` starts importing stepkit, interleaved."""
    _time("pass")  # warm the file system cache
    _time("import stepkit")
    bare: list[float] = []
    with_stepkit: list[float] = []
    for i in range(runs):
        order = [("pass", bare), ("import stepkit", with_stepkit)]
        for code, into in order if i % 2 == 0 else reversed(order):
            into.append(_time(code))
    return bare, with_stepkit


def _importtime(code: str) -> dict[str, tuple[int, int]]:
    """Module -> (own, cumulative) import time in microseconds, from ``-X importtime``."""
    found: dict[str, tuple[int, int]] = {}
    for line in _start(code, "-X", "importtime").stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|")
        found[name.strip()] = (int(self_us), int(cumulative_us))
    return found


def loaded_by_stepkit() -> dict[str, tuple[int, int]]:
    """The modules ``import stepkit`` loads beyond a bare start, with their import times."""
    bare = _importtime("pass")
    return {name: t for name, t in _importtime("import stepkit").items() if name not in bare}


def heavy_loaded() -> list[str]:
    """Which of HEAVY are in sys.modules after ``import stepkit`` (and not after a bare start)."""
    probe = "import sys; print(' '.join(sorted(sys.modules)))"
    bare = set(_start(probe).stdout.split())
    loaded = set(_start("import stepkit; " + probe).stdout.split())
    return [name for name in HEAVY if name in loaded and name not in bare]


def report(runs: int, top: int) -> str:
    bare, with_stepkit = measure(runs)
    bare_ms = statistics.median(bare) * 1000
    stepkit_ms = statistics.median(with_stepkit) * 1000
    cost = stepkit_ms - bare_ms
    where = _start("import stepkit; print(stepkit.__file__)").stdout.strip()
    extra = loaded_by_stepkit()
    ranked = sorted(extra.items(), key=lambda item: item[1][0], reverse=True)[:top]
    heavy = [
        f"`{name}` ({extra[name][1] / 1000:.1f} ms)" if name in extra else f"`{name}`"
        for name in heavy_loaded()
    ]
    verdict = "within" if cost <= BUDGET_MS else "**over**"
    lines = [
        f"Measured on {machine()}; median of {runs} interpreter starts each, interleaved, "
        f"wall time including process start-up. stepkit from `{os.path.relpath(where)}`.",
        "",
        "| command | median (ms) |",
        "|---|---:|",
        f'| `python -c "pass"` | {bare_ms:.1f} |',
        f'| `python -c "import stepkit"` | {stepkit_ms:.1f} |',
        f"| **`import stepkit` itself** | **{cost:.1f}** |",
        "",
        f"Budget: at most {BUDGET_MS:.0f} ms over the bare interpreter: {verdict} budget.",
        "",
        f"`import stepkit` loads {len(extra)} modules beyond a bare start; "
        + (
            "heavy standard modules among them (cumulative import time, one run): "
            + ", ".join(heavy)
            + "."
            if heavy
            else "none of the heavy standard modules (asyncio, sqlite3, decimal, ...)."
        ),
        f"The {len(ranked)} slowest by their own import time (`-X importtime`, one run):",
        "",
        "| module | self (ms) | with its imports (ms) |",
        "|---|---:|---:|",
        *(f"| `{name}` | {own / 1000:.2f} | {cum / 1000:.2f} |" for name, (own, cum) in ranked),
    ]
    return "\n".join(lines)


def write(markdown: str) -> None:
    """Replace the "Import time" section's figures, adding the section if it is missing."""
    text = DOC.read_text(encoding="utf-8")
    if f"<!-- {SECTION}:begin -->" not in text:
        block = f"## Import time\n\n<!-- {SECTION}:begin -->\n<!-- {SECTION}:end -->\n"
        DOC.write_text(text.rstrip() + "\n\n" + block, encoding="utf-8")
    write_section(SECTION, markdown)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    parser.add_argument("--runs", type=int, default=20, help="starts of each kind (default 20)")
    parser.add_argument("--top", type=int, default=10, help="modules to list (default 10)")
    args = parser.parse_args()
    markdown = report(args.runs, args.top)
    print(markdown)
    if args.write:
        write(markdown)
        print(f"(written to {DOC})")


if __name__ == "__main__":
    main()
