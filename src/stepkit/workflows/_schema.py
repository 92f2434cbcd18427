"""Duck-typed validation of workflow input and signal data: pass or fail, never a rewrite."""

from __future__ import annotations

from typing import Any

from stepkit.errors import InvalidInputError

__all__ = ["check_schema", "validate"]


def check_schema(schema: Any, name: str) -> Any:
    """A schema is ``None``, an object with ``model_validate`` (pydantic) or a callable."""
    from stepkit.errors import InvalidArgumentError

    if schema is not None and not (
        callable(getattr(schema, "model_validate", None)) or callable(schema)
    ):
        raise InvalidArgumentError(
            f"{name}= must be a callable validator or an object with model_validate, got {schema!r}"
        )
    return schema


def validate(schema: Any, data: Any, what: str) -> None:
    """Check ``data`` against ``schema``; ``InvalidInputError`` (cause chained) if it fails.

    ``model_validate`` is preferred when present; a plain callable fails by
    raising or by returning ``False``. What it returns is otherwise ignored:
    the data stored and replayed is the data given.
    """
    if schema is None:
        return
    check = getattr(schema, "model_validate", None)
    if not callable(check):
        check = schema
    try:
        verdict = check(data)
    except Exception as exc:
        raise InvalidInputError(f"{what} failed its schema: {type(exc).__name__}: {exc}") from exc
    if verdict is False:
        raise InvalidInputError(f"{what} failed its schema (the validator returned False)")
