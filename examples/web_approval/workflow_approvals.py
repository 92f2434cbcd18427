"""The durable-workflows variant: a workflow waits for an ``approve`` signal, with a timeout.

Each request is a run of the ``support-reply-workflow`` workflow
(``stepkit.workflows``, in its own SQLite database, ``Settings.workflows``):
it drafts the reply (``step.run``), then waits for the ``approve`` signal
(``step.wait_for_signal(..., timeout=)``) and sends the reply (``step.run``)
only if the decision approves it. A wait that times out ends the run with
nothing sent. The Approve and Reject buttons send that one signal with the
decision as its data and an idempotency key per wait (``<run>/approval#0``),
so a second decision on the same request — a double click, another tab, a
stale page — is a ``duplicate`` (or ``undelivered`` once the run finished)
and :meth:`WorkflowDesk.decide` raises :class:`~stepkit.RunConflictError`,
which the apps answer with 409.

Who advances the runs: with ``inline=True`` (the default, for the demo) the
POST that sends a signal runs that run right away (``client.run_due(run_id=)``),
and the list page runs whatever is due (waits that timed out) before listing.
In production pass ``inline=False`` and run a worker beside the web processes::

    python examples/web_approval/workflow_approvals.py     # client.run_worker()
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import secrets
import threading
from collections.abc import Callable
from typing import Any

from approvals import (
    Handled,
    Outbox,
    Pending,
    Settings,
    check_request,
    decision,
    draft_reply,
)

from stepkit import RunConflictError
from stepkit.workflows import Client, SQLiteDriver, Step, Workflow, WorkflowContext

__all__ = ["SIGNAL", "WAIT", "WORKFLOW", "WorkflowDesk", "decision_key", "reply_workflow"]

WORKFLOW = "support-reply-workflow"
SIGNAL = "approve"  # the signal both buttons send; its data says approve or reject
WAIT = "approval"  # the id of the wait; its key in the run is "approval#0"


def decision_key(run_id: str) -> str:
    """The idempotency key of a decision: one per wait, whichever button and tab sends it."""
    return f"{run_id}/{WAIT}#0"


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def reply_workflow(client: Client, outbox: Outbox, *, timeout: float) -> Workflow[Any]:
    """Register the workflow on ``client``: draft, wait for a decision (or time out), send."""

    @client.workflow(id=WORKFLOW, version="1")
    def support_reply(ctx: WorkflowContext, step: Step) -> dict[str, Any]:
        customer, message = ctx.input["customer"], ctx.input["message"]
        reply = step.run("draft", draft_reply, customer, message)
        decided = step.wait_for_signal(WAIT, signal=SIGNAL, timeout=timeout)
        if decided is None:  # nobody decided in time
            gave_up = step.now("gave-up")
            return {"timed_out": True, "sent": False, "decided_at": _iso(gave_up)}
        if not decided.get("approved"):
            return {**decided, "sent": False}
        letter = {
            "request_id": ctx.run_id,
            "to": customer,
            "reply": reply,
            "approver": decided["approver"],
            # the same on a retry of this op: an e-mail API de-duplicates with it
            "idempotency_key": ctx.idempotency_key("send"),
        }
        step.run("send", outbox.send, letter)
        return {**decided, "sent": True}

    return support_reply


class WorkflowDesk:
    """Approval requests as runs of a durable workflow waiting for an ``approve`` signal.

    The client (and its SQLite database) is made on first use, so that
    importing an app writes nothing. ``clock`` is the client's clock (wake
    times, timeouts, leases: a ``FakeClock`` in tests) and ``new_id`` makes run
    ids; ``inline`` is explained in the module's docstring.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] | None = None,
        new_id: Callable[[], str] | None = None,
        inline: bool = True,
    ) -> None:
        self.settings = settings
        self.outbox = Outbox(settings.outbox)
        self.inline = inline
        self._clock = clock
        self._new_id = new_id or (lambda: f"wf-{secrets.token_hex(4)}")
        self._client: Client | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Client:
        with self._lock:
            if self._client is None:
                self.settings.workflows.parent.mkdir(parents=True, exist_ok=True)
                client = Client(driver=SQLiteDriver(self.settings.workflows), clock=self._clock)
                reply_workflow(client, self.outbox, timeout=self.settings.approval_timeout)
                self._client = client
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.store.close()
                self._client = None

    def request(self, customer: str, message: str) -> str:
        """Start a run: inline it drafts the reply and stops at the wait. Returns its run id."""
        customer, message = check_request(customer, message)
        run_id = self._new_id()
        data = {"customer": customer, "message": message}
        self.client.start_workflow(WORKFLOW, data, run_id=run_id, wait=self.inline)
        return run_id

    def pending(self) -> list[Pending]:
        """Runs waiting for a decision that has not been sent yet."""
        client = self.client
        if self.inline:
            client.run_due()  # waits that timed out end now (a worker's job in production)
        waiting = []
        for record in client.list_runs(workflow=WORKFLOW, status="waiting", limit=200):
            if record.waiting_for != SIGNAL or client.store.signals(record.run_id):
                continue  # not at the decision, or decided and not yet applied by a worker
            ops = client.store.snapshot(record.run_id)
            waiting.append(
                Pending(
                    run_id=record.run_id,
                    version=record.version,
                    customer=ops["input"]["customer"],
                    message=ops["input"]["message"],
                    reply=ops["draft#0"]["value"],
                    requested_at=record.created_at,
                )
            )
        return sorted(waiting, key=lambda p: (p.requested_at, p.run_id))

    def handled(self, limit: int = 20) -> list[Handled]:
        done = []
        for record in self.client.list_runs(workflow=WORKFLOW, status="completed", limit=limit):
            ops = self.client.store.snapshot(record.run_id)
            result = ops["result"]["value"]
            done.append(
                Handled(
                    run_id=record.run_id,
                    customer=ops["input"]["customer"],
                    reply=ops["draft#0"]["value"],
                    approved=bool(result.get("approved")),
                    approver=str(result.get("approver", "nobody")),
                    decided_at=str(result.get("decided_at", "?")),
                    sent=bool(result.get("sent")),
                    timed_out=bool(result.get("timed_out")),
                )
            )
        return done

    def decide(self, run_id: str, *, version: int, approved: bool, approver: str) -> None:
        """Send the decision as the run's ``approve`` signal, once per wait.

        ``version`` is not needed here: the idempotency key is per wait, so any
        second decision for it is refused. Raises :class:`~stepkit.RunConflictError`
        when the request was decided already or its run has finished (timed
        out), and :class:`~stepkit.RunNotFoundError` for an unknown run id.
        """
        data = decision(approved, approver, self.client.clock())
        receipt = self.client.send_signal(
            SIGNAL, data, run_id=run_id, idempotency_key=decision_key(run_id)
        )
        if receipt.status in ("duplicate", "undelivered"):
            raise RunConflictError(
                f"request {run_id!r} was decided already (signal {receipt.status})", run_id=run_id
            )
        if self.inline:  # "delivered" (or "buffered": the run was busy): apply it now
            self.client.run_due(run_id=run_id)

    def describe(self, run_id: str) -> str:
        """What became of a run, in a sentence for the "already handled" page."""
        store = self.client.store
        record = store.get(run_id)
        if record is None:
            return "It does not exist (any more)."
        if record.status == "completed":
            result = store.snapshot(run_id)["result"]["value"]
            if result.get("timed_out"):
                at = result.get("decided_at")
                return f"Nobody decided it in time: the wait ended at {at}; nothing was sent."
            return _said(result) + (
                "; the reply was sent." if result.get("sent") else "; nothing was sent."
            )
        mailbox = store.signals(run_id)
        if mailbox:
            try:  # stored text: read as JSON only, and with .get
                first = json.loads(mailbox[0].data)
            except ValueError:
                first = None
            if isinstance(first, dict):
                return _said(first) + "; the workflow is applying that decision right now."
        return f"It is {record.status}; reload the list."


def _said(decided: dict[str, Any]) -> str:
    verdict = "approved" if decided.get("approved") else "rejected"
    return f"It was {verdict} by {decided.get('approver')} at {decided.get('decided_at')}"


if __name__ == "__main__":  # the worker of a production setup (WorkflowDesk(inline=False))
    desk = WorkflowDesk(Settings.from_env(), inline=False)
    print(f"worker over {desk.settings.workflows}; Ctrl-C stops it")
    with contextlib.suppress(KeyboardInterrupt):
        desk.client.run_worker(poll_interval=1.0)
