"""Instructions per step, counted by valgrind: a measure this noisy machine cannot move.

Run: python benchmarks/bench_instructions.py   (needs `valgrind`: apt-get install valgrind)

Wall-clock figures on a shared virtual machine move up to 2x from one minute
to the next; the number of instructions a step executes does not. Each
workload runs twice under ``valgrind --tool=callgrind`` (N and N + 100 runs of
a 100-step flow), and the difference divided by 100 x 100 is the cost of one
step, without start-up. Reported: instructions per step of a plain loop (the
floor), of a pipeline step (no handler, one handler) and of a graph node, and
the ratios the goals are stated in.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WORKLOAD = """
import sys
from stepkit import END, START, Graph, Pipeline

def bump(ctx):
    return {"n": ctx["n"] + 1}

def plain(ctx):
    ctx = dict(ctx)
    for _ in range(100):
        ctx.update(bump(ctx))
    return ctx

pipeline = Pipeline("p")
for i in range(100):
    pipeline = pipeline.step(f"s{i}", bump)
graph = Graph("g", max_steps=100).add_edge(START, "s0")
for i in range(100):
    graph = graph.add_node(f"s{i}", bump).add_edge(f"s{i}", f"s{i + 1}" if i < 99 else END)

def ignore(event):
    pass

mode, runs = sys.argv[1], int(sys.argv[2])
for _ in range(runs):
    if mode == "floor":
        plain({"n": 0})
    elif mode == "pipeline":
        pipeline.run({"n": 0})
    elif mode == "handler":
        pipeline.run({"n": 0}, on_step_complete=ignore)
    else:
        graph.run({"n": 0})
"""


def instructions(script: Path, mode: str, runs: int) -> int:
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            *(sys.executable, str(script), mode, str(runs)),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"valgrind printed no count:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_step(script: Path, mode: str) -> float:
    return (instructions(script, mode, 120) - instructions(script, mode, 20)) / (100 * 100)


def main() -> None:
    if shutil.which("valgrind") is None:
        print("skipped: valgrind is not installed (apt-get install valgrind)")
        return
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "workload.py"
        script.write_text(WORKLOAD)
        counts = {
            mode: per_step(script, mode) for mode in ("floor", "pipeline", "handler", "graph")
        }
    floor = counts["floor"]
    over = {mode: counts[mode] - floor for mode in ("pipeline", "handler", "graph")}
    print("| workload | instructions per step | over the plain loop | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| plain loop (floor) | {floor:,.0f} | - | - |")
    step = f"{counts['pipeline']:,.0f} | {over['pipeline']:,.0f}"
    print(f"| pipeline step, no handler | {step} | 1.00 |")
    print(
        f"| pipeline step, one handler | {counts['handler']:,.0f} | {over['handler']:,.0f} | "
        f"{over['handler'] / over['pipeline']:.2f} x the step's |"
    )
    print(
        f"| graph node, plain edges | {counts['graph']:,.0f} | {over['graph']:,.0f} | "
        f"{over['graph'] / over['pipeline']:.2f} x the step's (goal <= 1.5) |"
    )


if __name__ == "__main__":
    main()
