"""``WorkflowHandle``: a run by id — its status, its result (or error), signals, cancelling."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from stepkit._checks import check_seconds
from stepkit.checkpoints._decode import from_json
from stepkit.errors import (
    CheckpointEncodeError,
    InvalidInputError,
    RunNotFoundError,
    StepFailedError,
    StepTimeoutError,
    StoreError,
    WorkflowCancelledError,
    WorkflowDeterminismError,
    WorkflowError,
)
from stepkit.stores import RunRecord, VersionRecord
from stepkit.workflows._history import RecordedFailure

if TYPE_CHECKING:
    from stepkit.workflows._client import Client
    from stepkit.workflows._conversations import SignalReceipt

__all__ = ["WorkflowHandle", "error_from"]

_PENDING: Any = object()
_FINISHED = ("completed", "failed", "cancelled")


def error_from(info: dict[str, Any], run_id: str) -> Exception:
    """Rebuild a run's stored error as the stepkit error it was (never by importing a name)."""
    kind, message = str(info.get("type", "")), str(info.get("message", ""))
    if kind == "WorkflowDeterminismError":
        return WorkflowDeterminismError(
            message,
            step_key=str(info.get("step", "")),
            recorded=str(info.get("recorded", "")),
            called=str(info.get("called", "")),
        )
    if kind == "StepFailedError":
        error = StepFailedError(
            message,
            step_name=str(info.get("step", "")),
            attempts=int(info.get("attempts", 1)),
            run_id=run_id,
        )
        cause = info.get("cause")
        if isinstance(cause, dict):
            text = str(cause.get("message", ""))
            prefix = f"{cause.get('type')}: "
            text = text[len(prefix) :] if text.startswith(prefix) else text
            error.__cause__ = RecordedFailure(str(cause.get("type", "Exception")), text)
        return error
    simple: dict[str, type[Exception]] = {
        "StepTimeoutError": StepTimeoutError,
        "CheckpointEncodeError": CheckpointEncodeError,
        "InvalidInputError": InvalidInputError,
    }
    if kind in simple:
        return simple[kind](message)
    error2 = WorkflowError(f"workflow run {run_id!r} failed: {kind}: {message}")
    error2.__cause__ = RecordedFailure(kind, message)
    return error2


def outcome(record: RunRecord | None, versions: list[VersionRecord] | None, run_id: str) -> Any:
    """The run's result, or raise its error; ``_PENDING`` while it is not finished."""
    if record is None:
        raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id)
    if record.status == "cancelled":
        raise WorkflowCancelledError(
            f"workflow run {run_id!r} was cancelled"
            + (f": {record.error}" if record.error else ""),
            run_id=run_id,
            reason=record.error,
        )
    if record.status not in _FINISHED or versions is None:
        return _PENDING
    wanted = "result" if record.status == "completed" else "error"
    for version in reversed(versions):
        if version.kind == "op" and version.step_name == wanted:
            try:
                data = json.loads(version.changes)[wanted]
            except (ValueError, KeyError, TypeError) as exc:
                raise StoreError(f"corrupt {wanted} of run {run_id!r}") from exc
            if wanted == "result":
                return from_json(data["value"])
            raise error_from(data, run_id)
    raise WorkflowError(f"workflow run {run_id!r} {record.status}: {record.error or ''}")


class WorkflowHandle:
    """A workflow run by id: ``result()``, ``status()``, ``signal()``, ``cancel()`` and twins."""

    __slots__ = ("_client", "run_id")

    def __init__(self, client: Client, run_id: str) -> None:
        self._client = client
        self.run_id = run_id

    def __repr__(self) -> str:
        return f"WorkflowHandle({self.run_id!r})"

    def status(self) -> RunRecord:
        """The run's record; status: running, sleeping, waiting, completed, failed, cancelled."""
        record = self._client.store.get(self.run_id)
        if record is None:
            raise RunNotFoundError(f"no run {self.run_id!r}", run_id=self.run_id)
        return record

    async def astatus(self) -> RunRecord:
        """Async :meth:`status`."""
        record = await self._client.store.aget(self.run_id)
        if record is None:
            raise RunNotFoundError(f"no run {self.run_id!r}", run_id=self.run_id)
        return record

    def _check(self, record: RunRecord | None) -> bool:
        return record is not None and record.status in _FINISHED and record.status != "cancelled"

    def result(self, timeout: float | None = None) -> Any:
        """The workflow's return value, or raise the run's error.

        Waits (polling the store) up to ``timeout`` seconds for an unfinished
        run (``None``: as long as it takes); then ``StepTimeoutError``. Runs
        advance only in workers (``run_due``/``run_worker``), not here.
        """
        check_seconds(timeout, "timeout", allow_zero=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            record = self._client.store.get(self.run_id)
            versions = self._client.store.history(self.run_id) if self._check(record) else None
            value = outcome(record, versions, self.run_id)
            if value is not _PENDING:
                return value
            if deadline is not None and time.monotonic() >= deadline:
                raise StepTimeoutError(
                    f"workflow run {self.run_id!r} is still {record.status if record else '?'}",
                    timeout=timeout or 0.0,
                )
            time.sleep(0.05)

    async def aresult(self, timeout: float | None = None) -> Any:
        """Async :meth:`result`."""
        check_seconds(timeout, "timeout", allow_zero=True)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            record = await self._client.store.aget(self.run_id)
            versions = (
                await self._client.store.ahistory(self.run_id) if self._check(record) else None
            )
            value = outcome(record, versions, self.run_id)
            if value is not _PENDING:
                return value
            if deadline is not None and loop.time() >= deadline:
                raise StepTimeoutError(
                    f"workflow run {self.run_id!r} is still {record.status if record else '?'}",
                    timeout=timeout or 0.0,
                )
            await asyncio.sleep(0.05)

    def signal(
        self, signal: str, data: Any = None, *, idempotency_key: str | None = None
    ) -> SignalReceipt:
        """Send ``signal`` to this run (see ``Client.send_signal``)."""
        return self._client.send_signal(
            signal, data, run_id=self.run_id, idempotency_key=idempotency_key
        )

    async def asignal(
        self, signal: str, data: Any = None, *, idempotency_key: str | None = None
    ) -> SignalReceipt:
        """Async :meth:`signal`."""
        return await self._client.asend_signal(
            signal, data, run_id=self.run_id, idempotency_key=idempotency_key
        )

    def cancel(self, reason: str | None = None) -> None:
        """Cancel this run."""
        self._client.cancel(self.run_id, reason)

    async def acancel(self, reason: str | None = None) -> None:
        """Async :meth:`cancel`."""
        await self._client.acancel(self.run_id, reason)
