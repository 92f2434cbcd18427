"""User code that must NOT type-check: every line marked ``# error`` is a mistake mypy catches.

``tests/test_typing.py`` runs ``mypy --strict`` on this file and checks that
mypy reports an error on each marked line, and on no other.
"""

from __future__ import annotations

from typing import Any

from stepkit import END, START, Graph, Pipeline
from stepkit.stores import MemoryStore


def inc(ctx: Any) -> dict[str, int]:
    return {"a": ctx["a"] + 1}


p = Pipeline("p").step("inc", inc)
store = MemoryStore()

Pipeline("p", on_step_completed=print)  # error: misspelt pipeline option
Pipeline("p", retries="3")  # error: wrong type
Pipeline("p").step("s", inc, retires=3)  # error: misspelt step option
Pipeline("p").step("s", inc, merge="replace")  # error: not a merge mode
Pipeline("p").step("s", inc, on_error="ignore")  # error: not an error mode
Pipeline("p").transform("t", inc, timeout="5")  # error: wrong type
Pipeline("p").branch("b", on=str, cases={"x": inc}, parallel_mode="any")  # error: not a mode
Pipeline("p").with_options(secrets="k")  # error: misspelt option
p.run({"a": 1}, on_step_completed=print)  # error: misspelt run option
p.run({"a": 1}, checkpoint_ttl="1h")  # error: wrong type
p.run_checkpoint("cp", {"b": 1}, strict="yes")  # error: wrong type
p.resume("r", store=store, overide_data={"x": 1})  # error: misspelt resume option
p.resume("r")  # error: store= is required
p.resume("r", store=store, recover="yes")  # error: wrong type
g = Graph("g").add_node("inc", inc).add_edge(START, "inc").add_edge("inc", END)
Graph("g").add_node("s", inc, when=True)  # error: routing belongs to edges, not when=
Graph("g", max_steps="10")  # error: wrong type
Graph("g").add_edge("inc", START)  # error: START is no edge target
Graph("g").add_edge(END, "inc")  # error: END is no edge source
Graph("g").add_conditional_edges("inc", inc, {"x": 1})  # error: not a node name or END
g.run_checkpoint("cp", max_steps="5")  # error: wrong type
g.resume("r", store=store, max_step=5)  # error: misspelt option
p.run_checkpoint("cp", max_steps=5)  # error: pipelines have no step limit
