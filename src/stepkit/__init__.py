"""stepkit: step pipelines that pause at any step and resume from a portable checkpoint.

>>> from stepkit import Pipeline
>>> calc = Pipeline("calc").step("add-one", lambda ctx: {"a": ctx["a"] + 1})
>>> calc.run({"a": 1}) == {"a": 2}
True
"""

import typing

from stepkit._pipeline import Pipeline
from stepkit.errors import (
    CheckpointEncodeError,
    CheckpointError,
    CheckpointExpiredError,
    CheckpointMismatchError,
    CheckpointSignatureError,
    EventLoopError,
    GraphRoutingError,
    GraphStepLimitError,
    InvalidArgumentError,
    InvalidCheckpointError,
    InvalidInputError,
    NestedStepError,
    NonRetryableError,
    PipelineAbortedError,
    PipelineDefinitionError,
    RetryAfter,
    RunConflictError,
    RunExpiredError,
    RunNotFoundError,
    SignalConflictError,
    StepFailedError,
    StepkitError,
    StepTimeoutError,
    StoreError,
    WorkflowCancelledError,
    WorkflowDeterminismError,
    WorkflowError,
)

if typing.TYPE_CHECKING:
    from stepkit.checkpoints._document import decode_checkpoint
    from stepkit.checkpoints._registry import register_type
    from stepkit.events import Checkpoint, RunResult, StepEvent, StepRecord, StepStartEvent
    from stepkit.graph import END, START, Graph
    from stepkit.pipeline._backoff import exponential_backoff
    from stepkit.stores import open_store

__version__ = "0.1.0"

# Loaded on first use, so that `import stepkit` stays cheap: the codec, the
# stores (sqlite3, asyncio), graphs and the CLI are not needed to build a pipeline.
_LAZY = {
    "Checkpoint": "stepkit.events",
    "RunResult": "stepkit.events",
    "StepEvent": "stepkit.events",
    "StepRecord": "stepkit.events",
    "StepStartEvent": "stepkit.events",
    "END": "stepkit.graph",
    "Graph": "stepkit.graph",
    "START": "stepkit.graph",
    "decode_checkpoint": "stepkit.checkpoints._document",
    "register_type": "stepkit.checkpoints._registry",
    "exponential_backoff": "stepkit.pipeline._backoff",
    "open_store": "stepkit.stores",
}


def __getattr__(name: str) -> typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'stepkit' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Checkpoint",
    "CheckpointEncodeError",
    "CheckpointError",
    "CheckpointExpiredError",
    "CheckpointMismatchError",
    "CheckpointSignatureError",
    "END",
    "EventLoopError",
    "Graph",
    "GraphRoutingError",
    "GraphStepLimitError",
    "InvalidArgumentError",
    "InvalidCheckpointError",
    "InvalidInputError",
    "NestedStepError",
    "NonRetryableError",
    "Pipeline",
    "PipelineAbortedError",
    "PipelineDefinitionError",
    "RetryAfter",
    "RunConflictError",
    "RunExpiredError",
    "RunNotFoundError",
    "RunResult",
    "START",
    "SignalConflictError",
    "StepEvent",
    "StepFailedError",
    "StepRecord",
    "StepStartEvent",
    "StepTimeoutError",
    "StepkitError",
    "StoreError",
    "WorkflowCancelledError",
    "WorkflowDeterminismError",
    "WorkflowError",
    "__version__",
    "decode_checkpoint",
    "exponential_backoff",
    "open_store",
    "register_type",
]
