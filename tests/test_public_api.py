"""The public surface: exactly the documented names, and nothing private leaks."""

from __future__ import annotations

import inspect

import stepkit
import stepkit.errors
import stepkit.stores

DOCUMENTED = {
    # building and running
    "Pipeline",
    "Graph",
    "START",
    "END",
    "RunResult",
    "StepEvent",
    "StepStartEvent",
    "StepRecord",
    "Checkpoint",
    "decode_checkpoint",
    "register_type",
    "exponential_backoff",
    "open_store",
    "__version__",
    # the error tree
    "StepkitError",
    "InvalidArgumentError",
    "PipelineDefinitionError",
    "EventLoopError",
    "StepFailedError",
    "StepTimeoutError",
    "PipelineAbortedError",
    "CheckpointError",
    "InvalidCheckpointError",
    "CheckpointSignatureError",
    "CheckpointExpiredError",
    "CheckpointMismatchError",
    "CheckpointEncodeError",
    "StoreError",
    "RunNotFoundError",
    "RunConflictError",
    "RunExpiredError",
    "NonRetryableError",
    # the workflow errors (the error tree is whole at the top; the workflows themselves
    # live in stepkit.workflows, which `import stepkit` does not load)
    "WorkflowError",
    "WorkflowDeterminismError",
    "SignalConflictError",
    "WorkflowCancelledError",
    "InvalidInputError",
    "NestedStepError",
    "RetryAfter",
    "GraphStepLimitError",
    "GraphRoutingError",
}


def test_all_is_exactly_the_documented_names():
    """stepkit.__all__ lists the documented public names, sorted, and no others."""
    assert set(stepkit.__all__) == DOCUMENTED
    assert list(stepkit.__all__) == sorted(stepkit.__all__)


def test_every_exported_name_exists_and_is_public():
    """Every name in __all__ is importable; no private name is exported."""
    for name in stepkit.__all__:
        assert hasattr(stepkit, name), name
        assert not name.startswith("_") or name == "__version__"


def test_no_public_attribute_is_left_out_of_all():
    """Public attributes of the package are either in __all__ or submodules."""
    public = {
        name
        for name, value in vars(stepkit).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public <= set(stepkit.__all__)


def test_error_tree():
    """Every error is a StepkitError, and subclasses the built-in callers catch."""
    for name in stepkit.errors.__all__:
        assert issubclass(getattr(stepkit.errors, name), stepkit.StepkitError)
    assert issubclass(stepkit.PipelineDefinitionError, ValueError)
    assert issubclass(stepkit.InvalidCheckpointError, ValueError)
    assert issubclass(stepkit.InvalidCheckpointError, stepkit.CheckpointError)
    assert issubclass(stepkit.RunNotFoundError, KeyError)
    assert issubclass(stepkit.RunNotFoundError, stepkit.StoreError)
    assert issubclass(stepkit.StepTimeoutError, TimeoutError)
    assert set(stepkit.errors.__all__) <= set(stepkit.__all__)
    assert issubclass(stepkit.WorkflowDeterminismError, stepkit.WorkflowError)


def test_only_what_works_is_exported():
    """TypeRegistry is not part of the public surface; the workflows load only when imported."""
    assert "TypeRegistry" not in stepkit.__all__
    assert not hasattr(stepkit, "TypeRegistry")
    assert "Client" not in stepkit.__all__


def test_workflows_surface():
    """stepkit.workflows exports the client, drivers, handle, step facades and workflow errors."""
    import stepkit.workflows as wf

    assert list(wf.__all__) == sorted(wf.__all__)
    assert {
        "Client",
        "InMemoryDriver",
        "FileSystemDriver",
        "SQLiteDriver",
        "WorkflowHandle",
    } <= set(wf.__all__)
    for name in wf.__all__:
        assert getattr(wf, name) is not None
    assert wf.WorkflowDeterminismError is stepkit.WorkflowDeterminismError


def test_stores_surface():
    """stepkit.stores exports the store protocol, records and backends."""
    assert {"Store", "MemoryStore", "FileStore", "SQLiteStore", "open_store"} <= set(
        stepkit.stores.__all__
    )
    for cls in (stepkit.stores.MemoryStore, stepkit.stores.FileStore, stepkit.stores.SQLiteStore):
        assert issubclass(cls, stepkit.stores.Store)
