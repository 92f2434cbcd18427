"""Checkpoint documents: state -> versioned JSON -> envelope string, and back.

The JSON document (format 1) holds the pipeline's name, version and
fingerprint, the run id, times, the step path, the resume position and the
tag-encoded context. :mod:`stepkit.checkpoints._envelope` signs and compresses it;
:mod:`stepkit.checkpoints._encode` encodes the values. Decoding treats input as hostile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, NamedTuple

from stepkit.checkpoints._decode import loads
from stepkit.checkpoints._encode import dumps, encode_context, to_json
from stepkit.checkpoints._envelope import (
    DEFAULT_COMPRESS_THRESHOLD,
    Opened,
    normalize_keys,
    open_envelope,
    seal,
)
from stepkit.checkpoints._limits import (
    MAX_CONTAINERS,
    MAX_DOCUMENT,
    MAX_SIZE,
    MAX_VALUES,
    document_problem,
    value_count,
)
from stepkit.checkpoints._registry import TypeRegistry
from stepkit.checkpoints._tags import short
from stepkit.errors import CheckpointEncodeError, InvalidCheckpointError
from stepkit.events import Checkpoint

FORMAT = 1
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Meta:
    """What every checkpoint of one run shares; its JSON header is serialised once."""

    pipeline: str
    version: str | None
    fingerprint: str
    run_id: str
    keys: tuple[bytes, ...] = ()
    ttl: float | None = None
    compress_threshold: int | None = DEFAULT_COMPRESS_THRESHOLD
    registry: TypeRegistry | None = None
    clock: Clock = time.time
    # the document up to the value of "created_at": '{"format":1,...,"created_at":"',
    # made by the first checkpoint of the run (a run that never reads one never pays it)
    _prefix: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def prefix(self) -> str:
        prefix = self._prefix
        if prefix is None:
            head = {
                "format": FORMAT,
                "pipeline": self.pipeline,
                "version": self.version,
                "fingerprint": self.fingerprint,
                "run_id": self.run_id,
            }
            prefix = dumps(head)[:-1] + ',"created_at":"'
            object.__setattr__(self, "_prefix", prefix)
        return prefix


class CheckpointEncoder:
    """Encodes the checkpoints of one run; its :class:`Meta` is made by the first one."""

    __slots__ = ("_make", "_meta")

    def __init__(self, make: Callable[[], Meta]) -> None:
        self._make: Callable[[], Meta] | None = make
        self._meta: Meta | None = None

    def __call__(self, position: Any, step_name: str | None, context: Mapping[str, Any]) -> str:
        meta = self._meta
        if meta is None:
            assert self._make is not None
            meta, self._make = self._make(), None
            self._meta = meta
        return encode_checkpoint(meta, position, step_name, context)


_second: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text
_MAX_TS = 253402300800  # 10000-01-01: the end of what datetime can show


def _iso(ts: float) -> str:
    """``datetime.fromtimestamp(ts, timezone.utc).isoformat()``, without the datetime."""
    global _second
    if not 0 <= ts < _MAX_TS - 1:
        return datetime.fromtimestamp(ts, timezone.utc).isoformat()
    whole = int(ts)
    micro = round((ts - whole) * 1e6)  # half to even, as datetime rounds
    if micro >= 1_000_000:
        whole, micro = whole + 1, micro - 1_000_000
    cached = _second
    if cached[0] == whole:
        text = cached[1]
    else:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second = (whole, text)
    return f"{text}.{micro:06d}+00:00" if micro else f"{text}+00:00"


def encode_checkpoint(
    meta: Meta, position: Any, step_name: str | None, context: Mapping[str, Any]
) -> str:
    """Encode one state as a checkpoint string (may raise CheckpointEncodeError).

    What it returns always decodes: a checkpoint over a decoding limit is refused
    here, naming the context key that makes it so.
    """
    now = meta.clock()
    encoded = encode_context(context, registry=meta.registry)
    tail = {
        "step": step_name,
        "position": to_json(position, path="position", registry=meta.registry),
        "context": encoded,
    }
    expires = "null" if meta.ttl is None else f'"{_iso(now + meta.ttl)}"'
    text = f'{meta.prefix}{_iso(now)}","expires_at":{expires},{dumps(tail)[1:]}'
    try:
        document = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _refuse(
            encoded,
            "holds a str with a lone surrogate, which is not valid UTF-8; clean the text "
            "(for example text.encode('utf-8', 'replace').decode())",
            _surrogates,
        ) from exc
    if len(document) > MAX_DOCUMENT:
        raise _refuse(
            encoded,
            f"makes the checkpoint {len(document):,} bytes of JSON, more than the limit of "
            f"{MAX_DOCUMENT:,}; keep large data outside the context and store a reference",
            _size,
        )
    # smaller documents cannot hold MAX_CONTAINERS arrays and objects (2 bytes each)
    if len(document) >= 2 * min(MAX_CONTAINERS, MAX_VALUES):
        problem = document_problem(document)
        if problem is not None:
            raise _refuse(
                encoded,
                f"makes the checkpoint hold {problem}; keep large data outside the context",
                _values,
            )
    checkpoint = seal(document, keys=meta.keys, compress_threshold=meta.compress_threshold)
    if len(checkpoint) > MAX_SIZE:
        raise _refuse(
            encoded,
            f"makes the checkpoint {len(checkpoint):,} characters long, more than the limit "
            f"of {MAX_SIZE:,}; keep large data outside the context and store a reference",
            _size,
        )
    return checkpoint


def _surrogates(value: Any) -> int:
    try:
        dumps(value).encode("utf-8")
    except UnicodeEncodeError:
        return 1
    return 0


def _size(value: Any) -> int:
    return len(dumps(value).encode("utf-8", "surrogatepass"))


def _values(value: Any) -> int:
    return value_count(dumps(value).encode("utf-8", "surrogatepass"))


def _refuse(
    encoded: dict[str, Any], reason: str, measure: Callable[[Any], int]
) -> CheckpointEncodeError:
    """The error for a checkpoint over a limit, naming the context key that weighs most."""
    weights = {key: measure(value) for key, value in encoded.items()}
    key = max(weights, key=weights.__getitem__, default=None)
    path = "checkpoint" if key is None or not weights[key] else f"context[{short(key)}]"
    return CheckpointEncodeError(f"{path}: {reason}", path=path)


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


def _document(
    checkpoint: object, keys: tuple[bytes, ...], registry: TypeRegistry | None
) -> tuple[dict[str, Any], Opened]:
    """The checked document of a checkpoint, and its envelope."""
    opened = open_envelope(checkpoint, keys=keys)
    doc = loads(opened.document, registry=registry)
    if type(doc) is not dict:
        raise InvalidCheckpointError("a checkpoint document is a JSON object")
    fmt = doc.get("format")
    if type(fmt) is not int or fmt != FORMAT:
        raise InvalidCheckpointError(
            f"unknown checkpoint format {fmt!r}; this version of stepkit reads format {FORMAT}"
        )
    context = doc.get("context")
    if type(context) is not dict or not all(type(k) is str for k in context):
        raise InvalidCheckpointError("the checkpoint's context is not an object")
    if "position" not in doc:
        raise InvalidCheckpointError("the checkpoint has no resume position")
    if not _field(doc, "run_id", str):
        raise InvalidCheckpointError("the checkpoint's 'run_id' field is missing or empty")
    return doc, opened


def decode_with_keys(
    checkpoint: object, keys: tuple[bytes, ...], registry: TypeRegistry | None = None
) -> Checkpoint:
    doc, opened = _document(checkpoint, keys, registry)
    return Checkpoint(
        pipeline=_field(doc, "pipeline", str),
        step_name=_field(doc, "step", str, optional=True),
        context=doc["context"],
        run_id=doc["run_id"],
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


class Resumable(NamedTuple):
    """What resuming needs of a checkpoint (the public :class:`Checkpoint` has more)."""

    pipeline: str
    step_name: str | None
    context: dict[str, Any]
    run_id: str
    expires_at: datetime | None
    version: str | None
    fingerprint: str
    position: Any


def decode_for_resume(checkpoint: object, keys: tuple[bytes, ...]) -> Resumable:
    """Decode and check a checkpoint for ``run_checkpoint``: the same checks, fewer objects.

    The context is the decoder's own fresh dict: the caller may keep it without a copy.
    """
    doc, _opened = _document(checkpoint, keys, None)
    _time(doc, "created_at")  # checked like decode_checkpoint does, not kept
    return Resumable(
        _field(doc, "pipeline", str),
        _field(doc, "step", str, optional=True),
        doc["context"],
        doc["run_id"],
        _time(doc, "expires_at", optional=True),
        _field(doc, "version", str, optional=True),
        _field(doc, "fingerprint", str),
        doc["position"],
    )


def _field(doc: dict[str, Any], name: str, kind: type, optional: bool = False) -> Any:
    value = doc.get(name)
    if value is None and optional:
        return None
    if type(value) is not kind:
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
