"""A dry replay of a stored run against today's code (``stepkit.testing.assert_replays``)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from stepkit.checkpoints._decode import from_json
from stepkit.errors import InvalidArgumentError, WorkflowDeterminismError
from stepkit.workflows._core import Frontier, Replay
from stepkit.workflows._definition import Workflow, WorkflowContext
from stepkit.workflows._drivers import Driver, store_of
from stepkit.workflows._perform import AsyncPerformer, SyncPerformer
from stepkit.workflows._step import AsyncStep, Step

__all__ = ["check_replay"]


class _NoClient:
    """``step.invoke`` in a dry replay: any workflow id is accepted (nothing is started)."""

    def workflow_named(self, workflow_id: str) -> Any:
        return workflow_id


def check_replay(workflow: Any, store_or_driver: Any, run_id: str) -> None:
    if not isinstance(workflow, Workflow):
        raise InvalidArgumentError(f"assert_replays() takes a workflow, got {workflow!r}")
    if isinstance(store_or_driver, Driver) and store_or_driver.store is None:
        raise InvalidArgumentError("the driver has no store yet: no client has used it")
    store = store_of(store_or_driver, time.time)
    record = store.get(run_id)
    versions = store.history(run_id)
    try:
        signals = store.signals(run_id)
    except NotImplementedError:
        signals = []
    core = Replay(
        run_id=run_id, versions=versions, signals=signals, clock=lambda: float("inf"), dry=True
    )
    core.lost = None
    try:
        meta = json.loads(record.meta) if record is not None else {}
    except ValueError:
        meta = {}
    started = str(meta.get("version", workflow.version))
    data = None if core.input_json is None else from_json(core.input_json)
    ctx = WorkflowContext(
        core,
        run_id=run_id,
        workflow_id=workflow.id,
        version=workflow.version,
        started_version=started,
        input=workflow.migrate(data, started) if started != workflow.version else data,
        attempt=core.attempt,
    )
    client = _NoClient()
    finished = False
    try:
        if workflow.is_async:
            performer = AsyncPerformer(core, store, "dry-replay", 1.0, _refuse)

            async def body() -> Any:
                return await workflow.fn(ctx, AsyncStep(core, workflow, client, performer.start))

            asyncio.run(body())
        else:
            performer2 = SyncPerformer(core, store, "dry-replay", 1.0, _refuse)
            workflow.fn(ctx, Step(core, workflow, client, performer2.drive))
        finished = True
    except Frontier:
        pass
    except Exception:
        pass  # the workflow's own error: replay reached it, which is not drift
    if core.fatal is not None:
        raise core.fatal
    missing = sorted(set(core.records) - core.visited)
    if finished and record is not None and record.status == "completed" and missing:
        raise WorkflowDeterminismError(
            f"run {run_id!r} recorded step(s) {', '.join(missing)} that today's code "
            "no longer reaches",
            step_key=missing[0],
        )


def _refuse(*args: Any) -> Any:  # pragma: no cover - a dry replay never creates a child
    raise AssertionError("a dry replay creates no child run")
