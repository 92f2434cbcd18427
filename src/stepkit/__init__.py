"""stepkit: step pipelines that pause at any step and resume from a portable checkpoint.

>>> from stepkit import Pipeline
>>> calc = Pipeline("calc").step("add-one", lambda ctx: {"a": ctx["a"] + 1})
>>> calc.run({"a": 1}) == {"a": 2}
True
"""

import logging

from stepkit.checkpoints._document import decode_checkpoint
from stepkit.checkpoints._registry import register_type
from stepkit.errors import (
    CheckpointEncodeError,
    CheckpointError,
    CheckpointExpiredError,
    CheckpointMismatchError,
    CheckpointSignatureError,
    EventLoopError,
    InvalidArgumentError,
    InvalidCheckpointError,
    NonRetryableError,
    PipelineAbortedError,
    PipelineDefinitionError,
    RunConflictError,
    RunExpiredError,
    RunNotFoundError,
    StepFailedError,
    StepkitError,
    StepTimeoutError,
    StoreError,
)
from stepkit.events import Checkpoint, RunResult, StepEvent, StepRecord, StepStartEvent
from stepkit.pipeline._backoff import exponential_backoff
from stepkit.pipeline._builder import Pipeline
from stepkit.stores import open_store

__version__ = "0.1.0"

# a library logs, it does not print: without this, warnings would reach stderr
# through logging's last-resort handler when the application configured none
logging.getLogger("stepkit").addHandler(logging.NullHandler())

__all__ = [
    "Checkpoint",
    "CheckpointEncodeError",
    "CheckpointError",
    "CheckpointExpiredError",
    "CheckpointMismatchError",
    "CheckpointSignatureError",
    "EventLoopError",
    "InvalidArgumentError",
    "InvalidCheckpointError",
    "NonRetryableError",
    "Pipeline",
    "PipelineAbortedError",
    "PipelineDefinitionError",
    "RunConflictError",
    "RunExpiredError",
    "RunNotFoundError",
    "RunResult",
    "StepEvent",
    "StepFailedError",
    "StepRecord",
    "StepStartEvent",
    "StepTimeoutError",
    "StepkitError",
    "StoreError",
    "__version__",
    "decode_checkpoint",
    "exponential_backoff",
    "open_store",
    "register_type",
]
