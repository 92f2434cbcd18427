"""Observability: logging and the run summary, start/complete hooks, a diagram, inspect.

Run: python examples/observability.py
"""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

from stepkit import Pipeline, StepEvent, StepStartEvent

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def started(event: StepStartEvent) -> None:
    logging.getLogger("example").info("-> %s", event.step_name)


def completed(event: StepEvent) -> None:
    logging.getLogger("example").info("<- %s (%.3f ms)", event.step_name, event.duration * 1000)


review = Pipeline("review").step("draft", lambda ctx: {"draft": ctx["topic"].title()})
publish = (
    Pipeline("publish", log=True)  # log a summary table after every run
    .step("research", lambda ctx: {"notes": f"about {ctx['topic']}"})
    .step("write", review)
    .branch(
        "route",
        on=lambda ctx: "short" if len(ctx["draft"]) < 20 else "long",
        cases={"short": lambda ctx: {"channel": "tweet"}, "long": lambda ctx: {"channel": "blog"}},
    )
    .with_hooks(on_step_start=started, on_step_complete=completed)
)


def main() -> Any:
    result = publish.run({"topic": "checkpoints"})
    print(publish.to_mermaid())
    # the inspect command decodes a checkpoint for humans
    shown = subprocess.run(
        [sys.executable, "-m", "stepkit", "inspect", result.checkpoint],
        capture_output=True,
        text=True,
        check=True,
    )
    print(shown.stdout)
    return dict(result)


if __name__ == "__main__":
    main()
