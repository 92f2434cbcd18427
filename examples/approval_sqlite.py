"""Human approval on a SQLite store: pause in one process, approve from another.

    python examples/approval_sqlite.py request "My order has not arrived"   # prints a run id
    python examples/approval_sqlite.py approve RUN_ID                        # sends, exactly once
    python examples/approval_sqlite.py reject RUN_ID
    python examples/approval_sqlite.py list

Run without arguments for a demo that does all of it in separate processes.
The database is ``approvals.db`` in the current directory (or $APPROVALS_DB).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from stepkit import Pipeline, RunConflictError, RunNotFoundError, StepEvent
from stepkit.stores import SQLiteStore

DB = os.environ.get("APPROVALS_DB", "approvals.db")
OUTBOX = DB + ".outbox"  # one line per message actually sent


def generate(ctx: Any) -> dict[str, Any]:
    return {"reply": f"Thanks for writing: {ctx['body']!r}. We are on it."}


def send(ctx: Any) -> dict[str, Any]:
    if not ctx.get("approved"):
        return {"sent": False}
    with open(OUTBOX, "a", encoding="utf-8") as outbox:
        outbox.write(ctx["reply"] + "\n")
    return {"sent": True}


reply_flow = Pipeline("reply").step("generate", generate).step("send", send)


def pause_after_generate(event: StepEvent) -> None:
    if event.step_name == "generate":
        event.stop_pipeline()


def request(store: SQLiteStore, body: str) -> str:
    result = reply_flow.run({"body": body}, store=store, on_step_complete=pause_after_generate)
    return result.run_id


def decide(store: SQLiteStore, run_id: str, approved: bool) -> dict[str, Any]:
    result = reply_flow.resume(run_id, store=store, override_data={"approved": approved})
    return dict(result)


def main(argv: list[str]) -> int:
    with SQLiteStore(DB) as store:
        if argv[:1] == ["request"] and len(argv) == 2:
            print(request(store, argv[1]))
        elif argv[:1] in (["approve"], ["reject"]) and len(argv) == 2:
            action, run_id = argv
            before = store.get(run_id)
            try:
                outcome = decide(store, run_id, approved=action == "approve")
            except (RunNotFoundError, RunConflictError) as exc:
                print(f"cannot {action} {run_id}: {exc}", file=sys.stderr)
                return 1
            if before is not None and before.status == "completed":
                print(f"already decided: sent={outcome['sent']}")  # the stored result
            else:
                print(f"{action}: sent={outcome['sent']}")
        elif argv == ["list"]:
            for run in store.list(pipeline="reply"):
                print(run.run_id, run.status, run.step_name)
        elif not argv:
            return demo()
        else:
            print(__doc__, file=sys.stderr)
            return 2
    return 0


def demo() -> int:
    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, __file__, *args], capture_output=True, text=True, check=False
        )
        return (done.stdout + done.stderr).strip()

    first = cli("request", "My order has not arrived")
    second = cli("request", "Please cancel my subscription")
    print("requested (process 1, 2):", first, second)
    print("approve  (process 3):", cli("approve", first))
    print("approve again (process 4):", cli("approve", first))
    print("reject   (process 5):", cli("reject", second))
    print("runs:\n" + cli("list"))
    with open(OUTBOX, encoding="utf-8") as outbox:
        print("outbox:", outbox.read().splitlines())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
