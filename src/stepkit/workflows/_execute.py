"""One execution of a claimed workflow run: replay, then complete, suspend, retry or fail.

:func:`lifecycle` is the one conversation (a generator of store calls plus one
:data:`BODY` command that runs the workflow function); :func:`execute` performs
it with the store's sync methods and :func:`aexecute` with its async twins.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Generator
from functools import partial
from typing import Any

from stepkit.checkpoints._decode import from_json
from stepkit.checkpoints._encode import dumps, to_json
from stepkit.durable._hold import Hold
from stepkit.durable._store_calls import adrive_store, drive_store
from stepkit.errors import (
    CheckpointEncodeError,
    StepFailedError,
    StepkitError,
    StoreError,
    WorkflowDeterminismError,
)
from stepkit.stores import RunRecord, VersionRecord
from stepkit.workflows._core import Replay, Suspend, child_signal
from stepkit.workflows._definition import Workflow, WorkflowContext
from stepkit.workflows._perform import Abandon, AsyncPerformer, SyncPerformer, run_awaitable
from stepkit.workflows._step import AsyncStep, Step

__all__ = ["aexecute", "describe_error", "execute", "parse_meta"]

log = logging.getLogger("stepkit")
BODY = "__body__"
#: what a store call may raise into a run's lifecycle; anything else propagates at once
_THROWN_IN = (StepkitError, NotImplementedError)
Conversation = Generator[tuple[str, tuple[Any, ...], dict[str, Any]], Any, str]


def parse_meta(record: RunRecord) -> dict[str, Any]:
    try:
        meta = json.loads(record.meta)
    except (ValueError, RecursionError):
        return {}
    return meta if isinstance(meta, dict) else {}


def describe_error(exc: BaseException) -> dict[str, Any]:
    info: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, StepFailedError):
        info["step"] = exc.step_name
        info["attempts"] = exc.attempts
        cause = exc.__cause__
        if cause is not None:
            info["cause"] = {
                "type": getattr(cause, "type_name", type(cause).__name__),
                "message": str(cause),
            }
    if isinstance(exc, WorkflowDeterminismError):
        info.update(step=exc.step_key, recorded=exc.recorded, called=exc.called)
    return info


def _marker(core: Replay, key: str, record: dict[str, Any], now: float) -> VersionRecord:
    core.version += 1
    n = core.version
    return VersionRecord(
        core.run_id, n, n - 1 if n > 1 else None, key, dumps({key: record}), (), "", None, now, "op"
    )


def lifecycle(
    client: Any,
    workflow: Workflow[Any],
    record: RunRecord,
    versions: list[VersionRecord] | None,
    resumed: bool,
) -> Conversation:
    run_id, owner, lease = record.run_id, client.owner, client.lease
    meta = parse_meta(record)
    signals: list[Any] = []
    if versions is None:
        versions = yield ("history", (run_id,), {})
        try:
            signals = yield ("signals", (run_id,), {})
        except NotImplementedError:
            signals = []  # a store without a mailbox: runs without signals still work
    deadline = None if workflow.timeout is None else record.created_at + workflow.timeout
    hooks = tuple(w + c for w, c in zip(workflow.hooks, client.hooks, strict=True))
    core = Replay(
        run_id=run_id,
        versions=versions,
        signals=signals,
        clock=client.clock,
        policy=workflow.policy,
        hooks=hooks,
        deadline=deadline,
    )
    core.lost = None
    started = str(meta.get("version", workflow.version))
    try:
        if resumed:
            yield (
                "append",
                (_marker(core, "resume", {"kind": "resume"}, client.clock()),),
                {
                    "owner": owner,
                    "lease": lease,
                },
            )
        while True:
            data = None if core.input_json is None else from_json(core.input_json)
            if started != workflow.version:
                data = workflow.migrate(data, started)
            ctx = WorkflowContext(
                core,
                run_id=run_id,
                workflow_id=workflow.id,
                version=workflow.version,
                started_version=started,
                input=data,
                attempt=core.attempt,
            )
            kind, payload = yield (BODY, (core, ctx), {})
            if kind == "abandon":
                return "abandoned"
            if core.fatal is not None:
                kind, payload = "error", core.fatal
            if kind == "suspend":
                status = "waiting" if core.waits else "sleeping"
                waiting_for = "\n".join(sorted(core.waits)) or None
                yield (
                    "finish",
                    (run_id,),
                    {
                        "owner": owner,
                        "status": status,
                        "wake_at": core.wake_at,
                        "waiting_for": waiting_for,
                    },
                )
                log.info("workflow run %s is %s (wakes at %s)", run_id, status, core.wake_at)
                return status
            if kind == "ok":
                try:
                    encoded = to_json(payload, path="the workflow's result")
                except CheckpointEncodeError as exc:
                    kind, payload = "error", exc
                else:
                    now = client.clock()
                    result = {"kind": "result", "value": encoded}
                    yield ("append", (_marker(core, "result", result, now),), {"owner": owner})
                    yield from _notify_parent(meta, {"value": encoded})
                    yield ("finish", (run_id,), {"owner": owner, "status": "completed"})
                    log.info("workflow run %s completed", run_id)
                    return "completed"
            error = describe_error(payload)
            marker = _marker(core, "error", {"kind": "error", **error}, client.clock())
            yield ("append", (marker,), {"owner": owner, "lease": lease})
            if core.fatal is None and core.attempt <= workflow.retries:
                log.info("workflow run %s attempt %d failed; retrying", run_id, core.attempt)
                core.restart()
                continue
            yield from _notify_parent(meta, {"error": error})
            text = f"{error['type']}: {error['message']}"
            yield ("finish", (run_id,), {"owner": owner, "status": "failed", "error": text})
            log.warning("workflow run %s failed: %s", run_id, text)
            return "failed"
    except StoreError as exc:  # cancelled or taken over while we wrote: stop here
        log.warning("workflow run %s lost its claim: %s", run_id, exc)
        return "abandoned"


def _notify_parent(meta: dict[str, Any], outcome: dict[str, Any]) -> Conversation:
    parent, key = meta.get("parent"), meta.get("parent_key")
    if isinstance(parent, str) and isinstance(key, str):
        yield ("deliver", (parent, child_signal(key), dumps(outcome)), {"idempotency_key": "done"})
    return ""


# -- the two drivers --------------------------------------------------------------------


def _body_sync(client: Any, workflow: Workflow[Any], core: Replay, ctx: Any) -> tuple[str, Any]:
    if workflow.is_async:  # an async def workflow under a sync client method
        outcome: tuple[str, Any] = run_awaitable(_body_async(client, workflow, core, ctx))
        return outcome
    store = client.store
    performer = SyncPerformer(core, store, client.owner, client.lease, client.child_records)
    hold = Hold(store, core.run_id, client.owner, client.lease, core)
    hold.start()
    try:
        return "ok", workflow.fn(ctx, Step(core, workflow, client, performer.drive))
    except Abandon:
        return "abandon", None
    except Suspend:
        return "suspend", None
    except Exception as exc:
        return "error", exc
    finally:
        hold.stop()


async def _body_async(
    client: Any, workflow: Workflow[Any], core: Replay, ctx: Any
) -> tuple[str, Any]:
    if not workflow.is_async:  # a def workflow under an async client method
        return await asyncio.to_thread(_body_sync, client, workflow, core, ctx)
    store = client.store
    performer = AsyncPerformer(core, store, client.owner, client.lease, client.child_records)
    hold = Hold(store, core.run_id, client.owner, client.lease, core)
    hold.astart()
    outcome: tuple[str, Any]
    try:
        try:
            outcome = (
                "ok",
                await workflow.fn(ctx, AsyncStep(core, workflow, client, performer.start)),
            )
        except Abandon:
            outcome = "abandon", None
        except Suspend:
            outcome = "suspend", None
        except Exception as exc:
            outcome = "error", exc
        if not await performer.settle():  # ops still in flight land before the run is released
            outcome = "abandon", None
        elif outcome[0] == "ok" and (core.wake_at is not None or core.waits):
            outcome = "suspend", None  # an op suspended that the function did not await
        return outcome
    finally:
        await hold.astop()


def execute(
    client: Any,
    workflow: Workflow[Any],
    record: RunRecord,
    versions: list[VersionRecord] | None = None,
    resumed: bool = False,
) -> str:
    """Run one claimed run with sync calls; return how it ended (``completed``, ``sleeping``...)."""
    gen = lifecycle(client, workflow, record, versions, resumed)
    body = {BODY: partial(_body_sync, client, workflow)}
    status: str = drive_store(gen, client.store, body, _THROWN_IN)
    return status


async def aexecute(
    client: Any,
    workflow: Workflow[Any],
    record: RunRecord,
    versions: list[VersionRecord] | None = None,
    resumed: bool = False,
) -> str:
    """:func:`execute` with the store's async twins and awaited workflow functions."""
    gen = lifecycle(client, workflow, record, versions, resumed)
    body = {BODY: partial(_body_async, client, workflow)}
    status: str = await adrive_store(gen, client.store, body, _THROWN_IN)
    return status
