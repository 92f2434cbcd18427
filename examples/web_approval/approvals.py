"""What both web apps share: settings, the reply pipeline, the outbox and the approval desk.

A customer message becomes a run of the ``support-reply`` pipeline: ``draft``
writes a reply, ``review`` is the human gate (the run pauses after it, persisted
in a SQLite store), ``send`` puts the reply in the outbox if it was approved.
:class:`StoreDesk` is everything a web handler calls; ``fastapi_app.py`` and
``flask_app.py`` only map HTTP to it (and :class:`RunConflictError` to 409).
``signed_approvals.py`` is the stateless variant, without a store;
``workflow_approvals.py`` the durable-workflows one (a workflow that waits for
an ``approve`` signal).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from stepkit import Pipeline, StepEvent
from stepkit.stores import SQLiteStore

__all__ = [
    "GATE",
    "PIPELINE",
    "BadRequest",
    "Desk",
    "Handled",
    "Outbox",
    "Pending",
    "Settings",
    "StoreDesk",
    "check_approver",
    "check_request",
    "cross_site",
    "decision",
    "draft_reply",
    "pause_at_gate",
    "reply_pipeline",
]

PIPELINE = "support-reply"
GATE = "review"  # the step after which every run waits for a person
_MAX_NAME, _MAX_MESSAGE = 80, 2000


@dataclass(frozen=True, slots=True)
class Settings:
    """Where the apps keep their data, and the signed variant's key and expiry.

    From the environment (:meth:`from_env`):

    - ``STEPKIT_APPROVALS_DB`` — the SQLite database of the runs (default:
      ``approvals.db`` in a ``stepkit-web-approval`` folder of the system's temporary
      folder, never the current one). Sent replies go to ``<db>.outbox.jsonl``.
    - ``STEPKIT_APPROVALS_SECRET`` — the key that signs the stateless variant's
      checkpoints; without it each process draws a random one (its forms then
      die with the process, and several workers cannot share them).
    - ``STEPKIT_APPROVALS_TTL`` — seconds a signed approval form stays valid (default a day).
    - ``STEPKIT_APPROVALS_WORKFLOW_DB`` — the SQLite database of the workflow
      variant's runs (default: ``<db>.workflows.db`` beside the runs database).
    - ``STEPKIT_APPROVALS_TIMEOUT`` — seconds a workflow waits for a decision
      before it gives up and sends nothing (default three days).
    """

    db: Path
    secret: bytes
    checkpoint_ttl: float = 86_400.0
    secret_is_random: bool = False
    workflow_db: Path | None = None
    approval_timeout: float = 3 * 86_400.0

    @property
    def outbox(self) -> Path:
        return self.db.with_name(self.db.name + ".outbox.jsonl")

    @property
    def workflows(self) -> Path:
        """The workflow variant's database."""
        return self.workflow_db or self.db.with_name(self.db.name + ".workflows.db")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        default_db = Path(tempfile.gettempdir()) / "stepkit-web-approval" / "approvals.db"
        secret = environ.get("STEPKIT_APPROVALS_SECRET", "")
        return cls(
            db=Path(environ.get("STEPKIT_APPROVALS_DB") or default_db),
            secret=secret.encode() if secret else secrets.token_bytes(32),
            checkpoint_ttl=float(environ.get("STEPKIT_APPROVALS_TTL") or 86_400.0),
            secret_is_random=not secret,
            workflow_db=Path(environ["STEPKIT_APPROVALS_WORKFLOW_DB"])
            if environ.get("STEPKIT_APPROVALS_WORKFLOW_DB")
            else None,
            approval_timeout=float(environ.get("STEPKIT_APPROVALS_TIMEOUT") or 3 * 86_400.0),
        )


class BadRequest(Exception):
    """A form the apps refuse (HTTP 400); the message says what to fix."""


class Outbox:
    """Where "sent" replies go: one JSON line per message, a stand-in for an e-mail API.

    It is the side effect that must happen exactly once per approval, so the
    tests count its lines.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def send(self, message: Mapping[str, Any]) -> None:
        line = json.dumps(dict(message), ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:  # O_APPEND: whole lines
                f.write(line)

    def messages(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line]


def draft_reply(customer: str, message: str) -> str:
    """The reply a person will approve (a real app calls a language model or templates here)."""
    subject = message.strip().splitlines()[0]
    if len(subject) > 60:
        subject = subject[:60].rsplit(" ", 1)[0] + "…"
    return (
        f"Dear {customer}, thank you for your message "
        f"(“{subject}”). We are on it and will get back to you within a day."
    )


def reply_pipeline(outbox: Outbox, *, secret: bytes | None = None) -> Pipeline:
    """``draft`` → ``review`` (the gate) → ``send``; ``secret`` signs its checkpoints."""

    def draft(ctx: Mapping[str, Any]) -> dict[str, Any]:
        return {"reply": draft_reply(ctx["customer"], ctx["message"])}

    def review(ctx: Mapping[str, Any]) -> None:
        """Nothing to compute: the run pauses after this step until a person decides."""

    def send(ctx: Mapping[str, Any]) -> dict[str, Any]:
        if not ctx.get("approved"):
            return {"sent": False}
        outbox.send(
            {
                "request_id": ctx["request_id"],
                "to": ctx["customer"],
                "reply": ctx["reply"],
                "approver": ctx["approver"],
            }
        )
        return {"sent": True}

    return (
        Pipeline(PIPELINE, secret=secret).step("draft", draft).step(GATE, review).step("send", send)
    )


def pause_at_gate(event: StepEvent) -> None:
    """The ``on_step_complete`` handler that makes every run wait at the gate."""
    if event.step_name == GATE:
        event.stop_pipeline()


def check_request(customer: str, message: str) -> tuple[str, str]:
    customer, message = customer.strip(), message.strip()
    if not customer or len(customer) > _MAX_NAME:
        raise BadRequest(f"Give the customer's name (1 to {_MAX_NAME} characters).")
    if not message or len(message) > _MAX_MESSAGE:
        raise BadRequest(f"Give the customer's message (1 to {_MAX_MESSAGE} characters).")
    return customer, message


def check_approver(approver: str) -> str:
    approver = approver.strip()
    if not approver or len(approver) > _MAX_NAME:
        raise BadRequest(f"Give your name (1 to {_MAX_NAME} characters): it goes on record.")
    return approver


def decision(approved: bool, approver: str, now: float) -> dict[str, Any]:
    """The override a decision resumes the run with: what, who, when (kept in its history)."""
    at = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    return {
        "approved": approved,
        "approver": check_approver(approver),
        "decided_at": at.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def cross_site(origin: str | None, host: str | None) -> bool:
    """True for a POST whose ``Origin`` header names another site than ``Host``.

    Browsers send ``Origin`` with every form POST, so this refuses cross-site
    form posts (CSRF) without tokens or cookies. Behind a proxy that rewrites
    ``Host``, compare with your public host name instead.
    """
    if origin is None:
        return False  # not a browser form post (curl, a test client): authenticate those
    return urlsplit(origin).netloc.lower() != (host or "").lower()


@dataclass(frozen=True, slots=True)
class Pending:
    """A run waiting at the gate, and what will be sent if it is approved."""

    run_id: str
    version: int  # the run's version when the page renders: the form sends it back
    customer: str
    message: str
    reply: str
    requested_at: float


@dataclass(frozen=True, slots=True)
class Handled:
    """A run that has been decided (or, in the workflow variant, whose wait timed out)."""

    run_id: str
    customer: str
    reply: str
    approved: bool
    approver: str
    decided_at: str
    sent: bool
    timed_out: bool = False


class Desk(Protocol):
    """What the approval pages call; each app mounts the same routes for every desk.

    :class:`StoreDesk` implements it with durable pipeline runs (mounted at
    ``/``), ``workflow_approvals.WorkflowDesk`` with a durable workflow that
    waits for an ``approve`` signal (mounted at ``/workflow``). ``decide``
    raises :class:`~stepkit.RunConflictError` when the request was already
    decided (the apps answer 409) and :class:`~stepkit.RunNotFoundError` for an
    unknown run id (404).
    """

    def request(self, customer: str, message: str) -> str: ...
    def pending(self) -> list[Pending]: ...
    def handled(self, limit: int = 20) -> list[Handled]: ...
    def decide(self, run_id: str, *, version: int, approved: bool, approver: str) -> None: ...
    def describe(self, run_id: str) -> str: ...


class StoreDesk:
    """Approval requests as durable runs of :func:`reply_pipeline` in a SQLite store.

    The store is opened on first use, so that importing an app writes nothing.
    ``clock`` (the store's clock) and ``new_id`` are for deterministic tests.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] | None = None,
        new_id: Callable[[], str] | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = Outbox(settings.outbox)
        self.pipeline = reply_pipeline(self.outbox)
        self._clock = clock
        self._new_id = new_id or (lambda: f"req-{secrets.token_hex(4)}")
        self._store: SQLiteStore | None = None
        self._lock = threading.Lock()

    @property
    def store(self) -> SQLiteStore:
        with self._lock:
            if self._store is None:
                self.settings.db.parent.mkdir(parents=True, exist_ok=True)
                if self._clock is None:
                    self._store = SQLiteStore(self.settings.db)
                else:
                    self._store = SQLiteStore(self.settings.db, clock=self._clock)
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def request(self, customer: str, message: str) -> str:
        """Start a run; it drafts the reply and pauses at the gate. Returns its run id."""
        customer, message = check_request(customer, message)
        run_id = self._new_id()
        self.pipeline.run(
            {"request_id": run_id, "customer": customer, "message": message},
            store=self.store,
            run_id=run_id,
            on_step_complete=pause_at_gate,
        )
        return run_id

    def pending(self) -> list[Pending]:
        waiting = []
        for record in self.store.list(pipeline=PIPELINE, status="paused", limit=200):
            if record.step_name != GATE:
                continue  # paused elsewhere (an interrupted run): not a question for a person
            ctx = self.store.snapshot(record.run_id)
            waiting.append(
                Pending(
                    run_id=record.run_id,
                    version=record.version,
                    customer=ctx["customer"],
                    message=ctx["message"],
                    reply=ctx["reply"],
                    requested_at=record.created_at,
                )
            )
        return sorted(waiting, key=lambda p: (p.requested_at, p.run_id))

    def handled(self, limit: int = 20) -> list[Handled]:
        done = []
        for record in self.store.list(pipeline=PIPELINE, status="completed", limit=limit):
            ctx = self.store.snapshot(record.run_id)
            done.append(
                Handled(
                    run_id=record.run_id,
                    customer=ctx["customer"],
                    reply=ctx["reply"],
                    approved=bool(ctx.get("approved")),
                    approver=str(ctx.get("approver", "?")),
                    decided_at=str(ctx.get("decided_at", "?")),
                    sent=bool(ctx.get("sent")),
                )
            )
        return done

    def decide(self, run_id: str, *, version: int, approved: bool, approver: str) -> None:
        """Resume the run with the decision: exactly once, and only the pause at ``version``.

        Raises :class:`~stepkit.RunConflictError` when the run was decided or is
        being decided (a double click, another tab, a stale page), and
        :class:`~stepkit.RunNotFoundError` for an unknown run id.
        """
        override = decision(approved, approver, self.store.now())
        self.pipeline.resume(
            run_id, store=self.store, expect_version=version, override_data=override
        )

    def describe(self, run_id: str) -> str:
        """What became of a run, in a sentence for the "already handled" page."""
        record = self.store.get(run_id)
        if record is None:
            return "It does not exist (any more)."
        if record.status == "running":
            return "Someone is deciding it right now."
        if record.status == "completed":
            ctx = self.store.snapshot(run_id)
            verdict = "approved" if ctx.get("approved") else "rejected"
            sent = "the reply was sent" if ctx.get("sent") else "nothing was sent"
            return f"It was {verdict} by {ctx.get('approver')} at {ctx.get('decided_at')}; {sent}."
        return f"It is {record.status} after step {record.step_name!r}; reload the list."
