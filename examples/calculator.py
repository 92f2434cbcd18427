"""The calculator from the spec: run it, then resume from a checkpoint with new data.

Run: python examples/calculator.py
"""

from __future__ import annotations

from stepkit import Pipeline, StepEvent

calc = (
    Pipeline("calc")
    .step("add-one", lambda ctx: {"a": ctx["a"] + 1})
    .step("double", lambda ctx: {"a": ctx["a"] * 2})
    .step("finish", lambda ctx: {"sum": ctx["a"] + ctx.get("b", 0)})
)


def main() -> dict[str, object]:
    checkpoints: dict[str, str] = {}

    def keep(event: StepEvent) -> None:
        checkpoints[event.step_name] = event.checkpoint

    result = calc.run({"a": 1}, on_step_complete=keep)
    print("run:   ", dict(result))  # {'a': 4, 'sum': 4}

    resumed = calc.run_checkpoint(checkpoints["double"], override_data={"b": 10})
    print("resume:", dict(resumed))  # {'a': 4, 'b': 10, 'sum': 14}
    return {"run": dict(result), "resumed": dict(resumed)}


if __name__ == "__main__":
    main()
