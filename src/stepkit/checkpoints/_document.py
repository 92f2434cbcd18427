"""Checkpoint documents: state -> versioned JSON -> envelope string, and back.

The JSON document (format 1) holds the pipeline's name, version and
fingerprint, the run id, times, the step path, the resume position and the
tag-encoded context. :mod:`stepkit.checkpoints._envelope` signs and compresses it;
:mod:`stepkit.checkpoints._encode` encodes the values. Decoding treats input as hostile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from stepkit.checkpoints._decode import loads
from stepkit.checkpoints._encode import dumps, encode_context, to_json
from stepkit.checkpoints._envelope import (
    DEFAULT_COMPRESS_THRESHOLD,
    normalize_keys,
    open_envelope,
    seal,
)
from stepkit.checkpoints._registry import TypeRegistry
from stepkit.errors import CheckpointEncodeError, InvalidCheckpointError
from stepkit.events import Checkpoint

FORMAT = 1
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Meta:
    """What every checkpoint of one run shares."""

    pipeline: str
    version: str | None
    fingerprint: str
    run_id: str
    keys: tuple[bytes, ...] = ()
    ttl: float | None = None
    compress_threshold: int | None = DEFAULT_COMPRESS_THRESHOLD
    registry: TypeRegistry | None = None
    clock: Clock = time.time


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def encode_checkpoint(
    meta: Meta, position: Any, step_name: str | None, context: Mapping[str, Any]
) -> str:
    """Encode one state as a checkpoint string (may raise CheckpointEncodeError)."""
    now = meta.clock()
    doc = {
        "format": FORMAT,
        "pipeline": meta.pipeline,
        "version": meta.version,
        "fingerprint": meta.fingerprint,
        "run_id": meta.run_id,
        "created_at": _iso(now),
        "expires_at": None if meta.ttl is None else _iso(now + meta.ttl),
        "step": step_name,
        "position": to_json(position, path="position", registry=meta.registry),
        "context": encode_context(context, registry=meta.registry),
    }
    try:
        document = dumps(doc).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CheckpointEncodeError(
            "the context contains a str with a lone surrogate, which is not valid "
            "UTF-8; clean the text (for example with .encode('utf-8', 'replace'))",
            type_name="str",
        ) from exc
    return seal(document, keys=meta.keys, compress_threshold=meta.compress_threshold)


def decode_checkpoint(
    checkpoint: object,
    *,
    secret: Any = None,
    registry: TypeRegistry | None = None,
) -> Checkpoint:
    """Decode and check a checkpoint string; verify it when ``secret`` is given.

    Without a secret the result is for inspection only (``verified`` is
    false). Raises an :class:`~stepkit.errors.InvalidCheckpointError` for
    anything malformed and :class:`~stepkit.errors.CheckpointSignatureError`
    when a secret is given and the signature does not match.
    """
    return decode_with_keys(checkpoint, normalize_keys(secret), registry)


def decode_with_keys(
    checkpoint: object, keys: tuple[bytes, ...], registry: TypeRegistry | None = None
) -> Checkpoint:
    opened = open_envelope(checkpoint, keys=keys)
    doc = loads(opened.document, registry=registry)
    if not isinstance(doc, dict):
        raise InvalidCheckpointError("a checkpoint document is a JSON object")
    fmt = doc.get("format")
    if fmt != FORMAT:
        raise InvalidCheckpointError(
            f"unknown checkpoint format {fmt!r}; this version of stepkit reads format {FORMAT}"
        )
    context = doc.get("context")
    if not isinstance(context, dict) or not all(isinstance(k, str) for k in context):
        raise InvalidCheckpointError("the checkpoint's context is not an object")
    if "position" not in doc:
        raise InvalidCheckpointError("the checkpoint has no resume position")
    if not doc.get("run_id"):
        raise InvalidCheckpointError("the checkpoint's 'run_id' field is missing or empty")
    return Checkpoint(
        pipeline=_field(doc, "pipeline", str),
        step_name=_field(doc, "step", str, optional=True),
        context=context,
        run_id=_field(doc, "run_id", str),
        created_at=_time(doc, "created_at"),  # type: ignore[arg-type]
        expires_at=_time(doc, "expires_at", optional=True),
        version=_field(doc, "version", str, optional=True),
        fingerprint=_field(doc, "fingerprint", str),
        position=doc.get("position"),
        format=FORMAT,
        signed=opened.signed,
        verified=opened.verified,
        compressed=opened.compressed,
    )


def _field(doc: dict[str, Any], name: str, kind: type, optional: bool = False) -> Any:
    value = doc.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, kind):
        raise InvalidCheckpointError(
            f"the checkpoint's {name!r} field is missing or not a {kind.__name__}"
        )
    return value


def _time(doc: dict[str, Any], name: str, optional: bool = False) -> datetime | None:
    text = _field(doc, name, str, optional)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidCheckpointError(f"the checkpoint's {name!r} is not an ISO time") from None
    if value.tzinfo is None:
        raise InvalidCheckpointError(f"the checkpoint's {name!r} has no time zone")
    return value
