"""The types of the builder's keyword options, and the marker of an option not given.

Signatures are explicit (an IDE completes them, ``mypy --strict`` catches a
misspelt one); :data:`UNSET` tells "not given, inherit the default" apart from
an explicit ``None`` (``timeout=None`` switches a pipeline-wide timeout off).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypedDict

__all__ = [
    "UNSET",
    "ErrorMode",
    "Hook",
    "MergeMode",
    "ParallelMode",
    "PipelineOptions",
    "RetryDelayOption",
    "RetryOnOption",
    "Secret",
    "Unset",
    "When",
    "given",
]


class Unset(enum.Enum):
    """The type of :data:`UNSET`."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


#: An option that was not given: the pipeline's default (or stepkit's) applies.
UNSET = Unset.UNSET

ErrorMode = Literal["raise", "continue", "skip_remaining"]
MergeMode = Literal["override", "error", "warn", "skip"]
ParallelMode = Literal["all", "settled"]
#: A handler, or several called in order.
Hook = Callable[..., Any] | Sequence[Callable[..., Any]]
#: One signing key, or several (newest first) while keys rotate.
Secret = str | bytes | Sequence[str | bytes]
#: ``when=``: a bool, or a (sync or async) predicate of the context.
When = bool | Callable[[Mapping[str, Any]], Any]
RetryDelayOption = float | Callable[[int, BaseException], float]
RetryOnOption = (
    type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
)


class PipelineOptions(TypedDict, total=False):
    """The keyword options of ``Pipeline(...)``, for ``with_options(**options)``."""

    on_step_complete: Hook | None
    on_step_start: Hook | None
    on_error: Hook | None
    log: bool | None
    secret: Secret | None
    version: str | int | None
    migrations: Mapping[str, Callable[[dict[str, Any]], Mapping[str, Any]]] | None
    renamed: Mapping[str, str] | None
    compress_threshold: int | None
    retries: int
    retry_delay: RetryDelayOption
    retry_on: RetryOnOption
    timeout: float | None
    merge: MergeMode
    parallel_mode: ParallelMode


def given(**options: Any) -> dict[str, Any]:
    """The options that were given: neither :data:`UNSET` nor (for hooks and the like) ``None``.

    ``None`` is kept for ``timeout`` and ``compress_threshold``, where it is a choice.
    """
    return {
        k: v
        for k, v in options.items()
        if v is not UNSET and (v is not None or k in _NONE_IS_A_CHOICE)
    }


_NONE_IS_A_CHOICE = frozenset({"timeout", "compress_threshold"})
