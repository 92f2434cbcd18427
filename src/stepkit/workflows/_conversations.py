"""The client's conversations with its store, written once for sync and async methods.

Each is a generator that yields ``(method, args, kwargs)``: a store method
(performed with the sync method or its ``a`` twin) or :data:`EXECUTE` (run a
claimed run). The decisions — validation, routing a signal, which due run to
claim — are made here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Literal

from stepkit._checks import check_count, check_id
from stepkit.checkpoints._encode import dumps, to_json
from stepkit.errors import (
    InvalidArgumentError,
    RunConflictError,
    RunExpiredError,
    RunNotFoundError,
    SignalConflictError,
)
from stepkit.stores import RunRecord, VersionRecord
from stepkit.workflows._definition import Workflow
from stepkit.workflows._schema import validate
from stepkit.workflows._step import check_signal

__all__ = [
    "EXECUTE",
    "SignalReceipt",
    "cancel",
    "claim_for_resume",
    "is_workflow_run",
    "new_run",
    "run_due",
    "send_signal",
    "start",
]

EXECUTE = "__execute__"
Talk = Generator[tuple[str, tuple[Any, ...], dict[str, Any]], Any, Any]
#: How often one run_due() call may advance the same run (a guard against busy loops).
MAX_PASSES = 100
#: Due runs read per query.
BATCH = 256


@dataclass(frozen=True, slots=True)
class SignalReceipt:
    """What became of a signal: ``delivered`` (a wait was due), ``buffered`` (kept for a
    later wait), ``duplicate`` (its idempotency key was seen) or ``undelivered``
    (no run waits on it, or the run is finished)."""

    run_id: str | None
    status: Literal["delivered", "buffered", "duplicate", "undelivered"]


def is_workflow_run(record: RunRecord) -> bool:
    return record.meta.startswith('{"workflow"')


def new_run(
    client: Any,
    flow: Workflow[Any],
    run_id: str,
    encoded_input: Any,
    *,
    wait: bool,
    parent: tuple[str, str] | None = None,
) -> tuple[RunRecord, VersionRecord]:
    """A new run's record (claimed by ``client`` if ``wait``, else due now) and first version."""
    now = client.clock()
    meta: dict[str, Any] = {"workflow": flow.id, "version": flow.version}
    if parent is not None:
        meta["parent"], meta["parent_key"] = parent
    record = RunRecord(
        run_id=run_id,
        pipeline=flow.id,
        status="running" if wait else "sleeping",
        version=1,
        step_name=None,
        error=None,
        created_at=now,
        updated_at=now,
        expires_at=None if flow.ttl is None else now + flow.ttl,
        owner=client.owner if wait else None,
        lease_until=now + client.lease if wait else None,
        meta=json.dumps(meta),
        wake_at=None if wait else now,
    )
    first = VersionRecord(
        run_id, 1, None, None, dumps({"input": encoded_input}), (), "", None, now, "start"
    )
    return record, first


def start(client: Any, flow: Workflow[Any], data: Any, run_id: str | None, wait: bool) -> Talk:
    """Create a run; return ``(record to execute or None, first version)``."""
    if run_id is not None:
        check_id(run_id, "run_id")
    validate(flow.input_schema, data, f"the input of workflow {flow.id!r}")
    encoded = to_json(data, path="input")
    record, first = new_run(client, flow, run_id or uuid.uuid4().hex, encoded, wait=bool(wait))
    try:
        yield ("create", (record, first), {})
    except RunConflictError:
        existing = yield ("get", (record.run_id,), {})
        if existing is None or existing.pipeline != flow.id:
            raise RunConflictError(
                f"run {record.run_id!r} exists and is not a run of workflow {flow.id!r}",
                run_id=record.run_id,
            ) from None
        return None, first  # idempotent start: a handle on the existing run
    return record, first


def send_signal(
    client: Any, signal: str, data: Any, run_id: str | None, idempotency_key: str | None
) -> Talk:
    name = check_signal(signal)
    if idempotency_key is not None:
        check_id(idempotency_key, "idempotency_key")
    encoded = dumps(to_json(data, path="signal data"))
    if run_id is None:
        runs = yield ("waiting", (name,), {"limit": 2})
        if not runs:
            return SignalReceipt(None, "undelivered")
        if len(runs) > 1:
            ids = tuple(r.run_id for r in runs)
            raise SignalConflictError(
                f"several runs wait on signal {name!r} (e.g. {', '.join(map(repr, ids))}): "
                "nothing was delivered; send it with run_id=",
                signal=name,
                run_ids=ids,
            )
        record = runs[0]
    else:
        record = yield ("get", (check_id(run_id, "run_id"),), {})
        if record is None:
            raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id)
    flow = client.workflow_named(record.pipeline)
    if flow is not None:
        validate(flow.signals.get(name), data, f"signal {name!r}")
    status = yield (
        "deliver",
        (record.run_id, name, encoded),
        {"idempotency_key": idempotency_key},
    )
    return SignalReceipt(record.run_id, status)


def run_due(client: Any, run_id: str | None, limit: int | None) -> Talk:
    if limit is not None:
        check_count(limit, "limit")
    if run_id is not None:
        check_id(run_id, "run_id")
    advanced = 0
    passes: dict[str, int] = {}
    while limit is None or advanced < limit:
        if run_id is None:
            batch = yield ("due", (), {"limit": BATCH})
        else:
            one = yield ("get", (run_id,), {})
            batch = [] if one is None else [one]
        progressed = False
        for record in batch:
            if limit is not None and advanced >= limit:
                break
            flow = client.workflow_named(record.pipeline)
            if flow is None or passes.get(record.run_id, 0) >= MAX_PASSES:
                continue  # another client's workflow, or a run that keeps coming back
            try:
                claimed = yield (
                    "claim",
                    (record.run_id,),
                    {"owner": client.owner, "lease": client.lease, "due": True},
                )
            except (RunConflictError, RunExpiredError, RunNotFoundError):
                continue  # another worker won it, or it is not due any more
            passes[record.run_id] = passes.get(record.run_id, 0) + 1
            yield (EXECUTE, (flow, claimed), {})
            advanced += 1
            progressed = True
        if not progressed:
            break
    return advanced


def claim_for_resume(
    client: Any, run_id: str, recover: bool, dead_owner: str | None = None
) -> Talk:
    check_id(run_id, "run_id")
    if dead_owner is not None:
        check_id(dead_owner, "dead_owner")
        if not recover:
            raise InvalidArgumentError(
                "dead_owner= takes over a run whose worker is gone: pass recover=True with it"
            )
    record = yield ("get", (run_id,), {})
    if record is None:
        raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id)
    flow = client.workflow_named(record.pipeline)
    if flow is None:
        raise InvalidArgumentError(
            f"run {run_id!r} is a run of workflow {record.pipeline!r}, which this client "
            "has not registered"
        )
    claimed = yield (
        "claim",
        (run_id,),
        {
            "owner": client.owner,
            "lease": client.lease,
            "recover": bool(recover),
            "dead_owner": dead_owner,
        },
    )
    return claimed, flow


#: Statuses of a child run that cancelling its parent cancels.
UNFINISHED = ("running", "sleeping", "waiting")


def cancel(client: Any, run_id: str, reason: str | None) -> Talk:
    """Cancel a run, then each of its unfinished child runs (and theirs), depth first.

    The children are those the run's ``step.invoke`` ops recorded. A child that
    finished meanwhile, or was deleted, is left as it is.
    """
    check_id(run_id, "run_id")
    yield ("cancel", (run_id,), {"reason": reason})
    why = f"its parent run {run_id!r} was cancelled" + (f": {reason}" if reason else "")
    pending = [run_id]
    while pending:
        parent = pending.pop()
        try:
            versions = yield ("history", (parent,), {})
        except RunNotFoundError:
            continue
        for child in children_of(versions):
            record = yield ("get", (child,), {})
            if record is None or record.status not in UNFINISHED:
                continue
            try:
                yield ("cancel", (child,), {"reason": why})
            except (RunConflictError, RunNotFoundError):
                continue  # it completed (or was deleted) in the meantime
            pending.append(child)


def children_of(versions: list[VersionRecord]) -> list[str]:
    """The child run ids a run's ``step.invoke`` ops recorded, in the order they were started."""
    found: dict[str, None] = {}
    for version in versions:
        if version.kind != "op" or not version.changes.startswith("{"):
            continue
        try:
            changes = json.loads(version.changes)
        except ValueError:
            continue
        for record in changes.values() if isinstance(changes, dict) else ():
            if isinstance(record, dict) and record.get("kind") == "invoke":
                child = record.get("child")
                if isinstance(child, str):
                    found[child] = None
    return list(found)
