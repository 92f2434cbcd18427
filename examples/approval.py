"""Human approval: pause after generating a reply, resume when a person approves.

The heart of stepkit in one file: the run *pauses* after the "generate" step
(its handler calls ``stop_pipeline()``), hands out a *checkpoint* - a signed
string holding the context and the position - and later *resumes* from that
checkpoint with the approval added, in this process or any other.

The checkpoint is signed (``secret=``), so it can be stored anywhere - here a
key-value store keyed by an approval id, as a web back end would. ``approve``
takes the checkpoint out of the store *before* resuming, so the send step runs
exactly once even if the approval link is clicked twice.

Run: python examples/approval.py
"""

from __future__ import annotations

import secrets
from collections.abc import MutableMapping
from typing import Any

from stepkit import Pipeline, StepEvent, decode_checkpoint

SECRET = "replace-me-with-a-32-byte-random-secret"  # load from your settings in real code
SENT: list[str] = []  # the outbox: what the send step delivered


def generate(ctx: Any) -> dict[str, Any]:
    return {"reply": f"Thanks for writing: {ctx['body']!r}. We are on it."}


def send(ctx: Any) -> dict[str, Any]:
    if not ctx.get("approved"):
        return {"sent": False}
    SENT.append(ctx["reply"])
    return {"sent": True}


reply_flow = Pipeline("reply", secret=SECRET).step("generate", generate).step("send", send)


class UnknownApprovalError(KeyError):
    """No pending approval has this id (never requested, or already decided)."""

    def __str__(self) -> str:
        return str(self.args[0])


class ApprovalDesk:
    """Starts reply runs that wait for a person, and approves or rejects them."""

    def __init__(self, store: MutableMapping[str, str] | None = None) -> None:
        self.store: MutableMapping[str, str] = {} if store is None else store

    def request(self, body: str) -> str:
        """Generate a reply, park the run, and return the approval id."""
        approval_id = secrets.token_urlsafe(8)

        def pause_after_generate(event: StepEvent) -> None:
            if event.step_name == "generate":
                self.store[approval_id] = event.checkpoint
                event.stop_pipeline()

        result = reply_flow.run({"body": body}, on_step_complete=pause_after_generate)
        assert result.status == "stopped"
        return approval_id

    def _take(self, approval_id: str) -> str:
        try:
            return self.store.pop(approval_id)
        except KeyError:
            raise UnknownApprovalError(
                f"no pending approval {approval_id!r}: it was never requested, or it "
                "has already been approved or rejected"
            ) from None

    def approve(self, approval_id: str) -> dict[str, Any]:
        """Resume the parked run with approved=True; the send step runs once."""
        checkpoint = self._take(approval_id)
        return dict(reply_flow.run_checkpoint(checkpoint, override_data={"approved": True}))

    def reject(self, approval_id: str) -> None:
        """Drop the parked run; nothing is sent."""
        self._take(approval_id)


def main() -> None:
    desk = ApprovalDesk()

    # 1. Run until the pause: "generate" runs, the handler stops the run there.
    first = desk.request("My order has not arrived")
    checkpoint = desk.store[first]
    print(f"paused after 'generate'; approval id {first}")
    print(f"the checkpoint ({len(checkpoint)} characters, safe to store or put in a link):")
    print(f"  {checkpoint}")

    # 2. Anyone with the secret can decode and verify it: what is waiting, and where.
    cp = decode_checkpoint(checkpoint, secret=SECRET)
    print(f"decoded: pipeline {cp.pipeline!r}, after step {cp.step_name!r}, verified={cp.verified}")
    print(f"  context: {dict(cp.context)}")

    # 3. A person approves: the run resumes after "generate" with approved=True.
    print("approve ->", desk.approve(first))
    try:
        desk.approve(first)
    except UnknownApprovalError as exc:
        print("approving twice ->", exc)

    # 4. Another request, rejected: its checkpoint is dropped and nothing is sent.
    second = desk.request("Please cancel my subscription")
    desk.reject(second)
    print("rejected the second request; pending now:", sorted(desk.store))
    print("sent:", SENT)


if __name__ == "__main__":
    main()
