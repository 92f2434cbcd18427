"""What workflow hooks receive: one event per op attempt started, completed or failed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["WorkflowStepEvent"]


@dataclass(frozen=True, slots=True)
class WorkflowStepEvent:
    """An op of a workflow run: ``on_step_start``, ``on_step_complete`` and ``on_error`` get one.

    ``step_key`` is ``"id#n"``, ``kind`` the op's kind (``"run"``...), ``attempt``
    counts from 1; ``duration`` (seconds) and ``output`` (the decoded value) are
    set on completion, ``error`` on failure.
    """

    run_id: str
    step_key: str
    kind: str
    attempt: int = 1
    duration: float | None = None
    output: Any = None
    error: BaseException | None = None
