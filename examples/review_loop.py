"""A review loop as a graph: draft -> review -> (approved? send : draft again).

The run pauses after "review" (the human gate) and is stored in SQLite. The
route out of "review" is decided when the run *leaves* it, on the context as
it is then, so resuming with ``override_data={"approved": True}`` goes on to
"send", and resuming without it loops back to "draft". ``max_steps`` bounds
the loop over the whole run, resumes included.

Run: python examples/review_loop.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from stepkit import END, START, Graph, StepEvent
from stepkit.stores import SQLiteStore

OUTBOX: list[str] = []


def draft(ctx: Any) -> dict[str, Any]:
    n = ctx.get("drafts", 0) + 1
    return {"drafts": n, "text": f"Reply to {ctx['topic']!r}, draft {n}"}


def send(ctx: Any) -> dict[str, Any]:
    OUTBOX.append(ctx["text"])
    return {"sent": True}


def verdict(ctx: Any) -> str:
    return "yes" if ctx.get("approved") else "redo"


review = (
    Graph("review-loop", max_steps=10)
    .add_node("draft", draft)
    .add_node("review", lambda ctx: None)  # the human gate: the run stops after it
    .add_node("send", send, retries=3)
    .add_edge(START, "draft")
    .add_edge("draft", "review")
    .add_conditional_edges("review", verdict, {"yes": "send", "redo": "draft"})
    .add_edge("send", END)
)


def pause_for_a_person(event: StepEvent) -> None:
    if event.step_name == "review":
        event.stop_pipeline()


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        store = SQLiteStore(Path(folder) / "runs.db")
        try:
            first = review.run(
                {"topic": "late parcel"},
                store=store,
                run_id="ticket-7",
                on_step_complete=pause_for_a_person,
            )
            print(f"paused at {first.stopped_at}: {first['text']}")
            # the reviewer asks for another draft: no approval, so the route loops back
            second = review.resume("ticket-7", store=store, on_step_complete=pause_for_a_person)
            print(f"paused at {second.stopped_at}: {second['text']}")
            # approved: the same route now goes to send
            done = review.resume("ticket-7", store=store, override_data={"approved": True})
            print(f"{done.status}: sent {OUTBOX}")
            return dict(done)
        finally:
            store.close()


if __name__ == "__main__":
    main()
