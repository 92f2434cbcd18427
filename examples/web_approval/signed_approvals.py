"""The stateless variant: no store, the paused run travels in the page as a signed checkpoint.

Creating a request runs the pipeline up to the gate and hands out its checkpoint,
signed with ``Settings.secret`` and expiring after ``Settings.checkpoint_ttl``:
the review page (what an e-mailed link would open) carries it in a hidden form
field, and the POST resumes it. A tampered or expired form raises a
:class:`~stepkit.CheckpointError` that the apps turn into a 400 page.

Stateless checkpoints cannot give exactly-once by themselves: the same form
posted twice resumes twice. A real app records the ids of used checkpoints
(``Checkpoint.run_id``) in a table with a unique key and refuses a second use —
which is a store again; see docs/web-approval.md.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from approvals import (
    GATE,
    PIPELINE,
    Outbox,
    Settings,
    check_request,
    decision,
    pause_at_gate,
    reply_pipeline,
)

from stepkit import CheckpointExpiredError, CheckpointMismatchError, decode_checkpoint

__all__ = ["Review", "SignedDesk"]


@dataclass(frozen=True, slots=True)
class Review:
    """What the review page shows, read from a verified checkpoint."""

    checkpoint: str
    request_id: str
    customer: str
    message: str
    reply: str
    expires_at: float | None


class SignedDesk:
    """Approvals whose only state is the signed checkpoint in the approver's form."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] | None = None,
        new_id: Callable[[], str] | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = Outbox(settings.outbox)
        self.pipeline = reply_pipeline(self.outbox, secret=settings.secret)
        self._clock = clock or time.time
        self._new_id = new_id or (lambda: f"sig-{secrets.token_hex(4)}")

    def request(self, customer: str, message: str) -> str:
        """Run to the gate; return the signed, expiring checkpoint (the approval link's data)."""
        customer, message = check_request(customer, message)
        request_id = self._new_id()
        result = self.pipeline.run(
            {"request_id": request_id, "customer": customer, "message": message},
            run_id=request_id,
            on_step_complete=pause_at_gate,
            checkpoint_ttl=self.settings.checkpoint_ttl,
            clock=self._clock,
        )
        assert result.stopped_at == GATE
        assert result.checkpoint is not None
        return result.checkpoint

    def review(self, checkpoint: str) -> Review:
        """Verify the checkpoint (signature, expiry) and read what it asks to approve."""
        cp = decode_checkpoint(checkpoint, secret=self.settings.secret)
        if (cp.pipeline, cp.step_name) != (PIPELINE, GATE):
            raise CheckpointMismatchError("not a checkpoint of a reply waiting for review")
        expires = None if cp.expires_at is None else cp.expires_at.timestamp()
        if expires is not None and self._clock() >= expires:
            raise CheckpointExpiredError(
                f"the checkpoint expired at {cp.expires_at}", expires_at=cp.expires_at
            )
        ctx = cp.context
        return Review(
            checkpoint=checkpoint,
            request_id=cp.run_id,
            customer=ctx["customer"],
            message=ctx["message"],
            reply=ctx["reply"],
            expires_at=expires,
        )

    def decide(self, checkpoint: str, *, approved: bool, approver: str) -> bool:
        """Resume the checkpoint with the decision; True if the reply was sent.

        The pipeline verifies the signature and the expiry before any step runs.
        """
        override = decision(approved, approver, self._clock())
        result = self.pipeline.run_checkpoint(checkpoint, override, clock=self._clock)
        return bool(result["sent"])
