"""Human approval on a SQLite store: pause in one process, approve from another.

    python examples/approval_sqlite.py --db approvals.db request "My order has not arrived"
    python examples/approval_sqlite.py --db approvals.db approve RUN_ID   # sends, exactly once
    python examples/approval_sqlite.py --db approvals.db reject RUN_ID
    python examples/approval_sqlite.py --db approvals.db list

Messages "sent" go to an outbox file beside the database (``approvals.db.outbox``).
Run without arguments for a demo that does all of it in separate processes, on
a fresh database in a temporary folder (removed afterwards), so every run of the
demo starts from nothing and leaves nothing behind.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from stepkit import Pipeline, RunConflictError, RunNotFoundError, StepEvent
from stepkit.stores import SQLiteStore


def reply_flow(outbox: Path) -> Pipeline:
    """The pipeline; its send step appends to ``outbox`` (one line per message sent)."""

    def generate(ctx: Any) -> dict[str, Any]:
        return {"reply": f"Thanks for writing: {ctx['body']!r}. We are on it."}

    def send(ctx: Any) -> dict[str, Any]:
        if not ctx.get("approved"):
            return {"sent": False}
        with outbox.open("a", encoding="utf-8") as f:
            f.write(ctx["reply"] + "\n")
        return {"sent": True}

    return Pipeline("reply").step("generate", generate).step("send", send)


def pause_after_generate(event: StepEvent) -> None:
    if event.step_name == "generate":
        event.stop_pipeline()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Approve replies stored in a SQLite database.")
    parser.add_argument("--db", type=Path, required=True, help="the SQLite database file")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("request", help="start a run that waits for approval").add_argument("body")
    actions.add_parser("approve", help="approve: the reply is sent").add_argument("run_id")
    actions.add_parser("reject", help="reject: nothing is sent").add_argument("run_id")
    actions.add_parser("list", help="list the runs")
    return parser


def main(argv: list[str]) -> int:
    if not argv:
        return demo()
    args = _parser().parse_args(argv)
    flow = reply_flow(Path(f"{args.db}.outbox"))
    with SQLiteStore(args.db) as store:
        if args.action == "request":
            result = flow.run(
                {"body": args.body}, store=store, on_step_complete=pause_after_generate
            )
            print(result.run_id)
        elif args.action in ("approve", "reject"):
            before = store.get(args.run_id)
            try:
                outcome = flow.resume(
                    args.run_id, store=store, override_data={"approved": args.action == "approve"}
                )
            except (RunNotFoundError, RunConflictError) as exc:
                print(f"cannot {args.action} {args.run_id}: {exc}", file=sys.stderr)
                return 1
            if before is not None and before.status == "completed":
                print(f"already decided: sent={outcome['sent']}")  # the stored result
            else:
                print(f"{args.action}: sent={outcome['sent']}")
        else:
            for run in store.list(pipeline="reply"):
                print(run.run_id, run.status, run.step_name)
    return 0


def demo() -> int:
    with tempfile.TemporaryDirectory(prefix="stepkit-approval-") as folder:
        db = Path(folder) / "approvals.db"

        def cli(*args: str) -> str:
            done = subprocess.run(
                [sys.executable, __file__, "--db", str(db), *args],
                capture_output=True,
                text=True,
                check=False,
            )
            return (done.stdout + done.stderr).strip()

        first = cli("request", "My order has not arrived")
        second = cli("request", "Please cancel my subscription")
        print("requested (process 1, 2):", first, second)
        print("approve  (process 3):", cli("approve", first))
        print("approve again (process 4):", cli("approve", first))
        print("reject   (process 5):", cli("reject", second))
        print("runs:\n" + cli("list"))
        sent = Path(f"{db}.outbox").read_text(encoding="utf-8").splitlines()
        print(f"outbox: {len(sent)} message(s) sent:", sent)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
