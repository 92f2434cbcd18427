"""Durable workflows: imperative code with steps memoized per run, durable sleeps and waits.

>>> from stepkit.workflows import Client, InMemoryDriver
>>> client = Client(driver=InMemoryDriver())
>>> @client.workflow(id="greet")
... def greet(ctx, step):
...     return step.run("hello", lambda: "hello " + ctx.input["name"])
>>> client.start_workflow(greet, {"name": "ana"}).result()
'hello ana'

See ``docs/workflows.md``. This package loads only when imported: ``import
stepkit`` does not load it.
"""

from stepkit.errors import (
    InvalidInputError,
    NestedStepError,
    NonRetryableError,
    RetryAfter,
    SignalConflictError,
    StepFailedError,
    WorkflowCancelledError,
    WorkflowDeterminismError,
    WorkflowError,
)
from stepkit.workflows._client import Client
from stepkit.workflows._conversations import SignalReceipt
from stepkit.workflows._definition import Workflow, WorkflowContext
from stepkit.workflows._drivers import Driver, FileSystemDriver, InMemoryDriver, SQLiteDriver
from stepkit.workflows._events import WorkflowStepEvent
from stepkit.workflows._handle import WorkflowHandle
from stepkit.workflows._step import AsyncStep, Step

__all__ = [
    "AsyncStep",
    "Client",
    "Driver",
    "FileSystemDriver",
    "InMemoryDriver",
    "InvalidInputError",
    "NestedStepError",
    "NonRetryableError",
    "RetryAfter",
    "SQLiteDriver",
    "SignalConflictError",
    "SignalReceipt",
    "Step",
    "StepFailedError",
    "Workflow",
    "WorkflowCancelledError",
    "WorkflowContext",
    "WorkflowDeterminismError",
    "WorkflowError",
    "WorkflowHandle",
    "WorkflowStepEvent",
]
