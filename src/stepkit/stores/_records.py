"""The value objects every store persists, and :func:`rebuild` of a context from versions.

Stores treat the JSON text fields (``meta``, ``changes``, ``position``, ``snapshot``)
as opaque: only :func:`rebuild` parses them, with plain :func:`json.loads`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

from stepkit._checks import check_count, check_id, check_seconds
from stepkit.errors import InvalidArgumentError, StoreError

builtins_list = list

__all__ = [
    "RUN_STATUSES",
    "VERSION_KINDS",
    "RunRecord",
    "RunStatus",
    "SignalRecord",
    "VersionKind",
    "VersionRecord",
    "check_id",
    "check_seconds",
    "check_status",
    "check_version_number",
    "check_wake",
    "rebuild",
    "run_from_json",
    "run_problem",
    "run_to_json",
    "signals_from_json",
    "signals_to_json",
    "version_problem",
]

#: A version stepkit built itself, as ``BaseStore.save_step`` takes it: (run_id, version,
#: parent, step_name, changes, removed, position, snapshot, created_at). A plain tuple:
#: the fields of a :class:`VersionRecord` without its kind, cheap to make once per step.
StepRow = tuple[str, int, int | None, str | None, str, tuple[str, ...], str, str | None, float]

RunStatus = Literal["running", "paused", "completed", "failed", "sleeping", "waiting", "cancelled"]
RUN_STATUSES: tuple[RunStatus, ...] = (
    "running",
    "paused",
    "completed",
    "failed",
    "sleeping",
    "waiting",
    "cancelled",
)
#: Statuses of a run that nobody holds and that becomes due at its ``wake_at`` (workflows).
SUSPENDED: tuple[RunStatus, ...] = ("sleeping", "waiting")
VersionKind = Literal["start", "step", "override", "op"]
VERSION_KINDS: tuple[VersionKind, ...] = ("start", "step", "override", "op")


@dataclass(frozen=True, slots=True)
class RunRecord:
    """The current state of one durable run (one row per run).

    ``version`` is the latest persisted version (0 before any), ``owner`` and
    ``lease_until`` describe the claim while the run is ``running``, and
    ``meta`` is opaque JSON text written by the engine.

    Workflow runs also use ``wake_at`` and ``waiting_for``: a ``sleeping`` or
    ``waiting`` run is *due* once ``wake_at <= now`` (a ``waiting`` run with no
    ``wake_at`` waits until a signal comes); ``waiting_for`` holds the signal
    names it waits on, one per line. A signal delivered while the run is
    ``running`` sets ``wake_at`` (a "poke"), so that the run, if it then
    suspends to wait, is due at once; a claim clears both.
    """

    run_id: str
    pipeline: str
    status: RunStatus
    version: int
    step_name: str | None
    error: str | None
    created_at: float
    updated_at: float
    expires_at: float | None
    owner: str | None
    lease_until: float | None
    meta: str
    wake_at: float | None = None
    waiting_for: str | None = None

    def waits_for(self, signal: str) -> bool:
        """Whether this run is ``waiting`` on ``signal``."""
        return (
            self.status == "waiting"
            and self.waiting_for is not None
            and signal in self.waiting_for.split("\n")
        )


@dataclass(frozen=True, slots=True)
class SignalRecord:
    """One message in a run's signal mailbox (workflows), in delivery order.

    ``seq`` numbers the run's messages from 1, ``data`` is the JSON text the
    codec produced, ``idempotency_key`` de-duplicates deliveries (``None``:
    never a duplicate). Stores never change or consume a message: which ones
    were consumed is recorded by the run's own versions.
    """

    run_id: str
    seq: int
    signal: str
    data: str
    idempotency_key: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """One persisted step of a run: a diff against ``parent``, maybe a full snapshot.

    ``changes`` is JSON text of ``{key: encoded value}``, ``removed`` the removed
    top-level keys, ``snapshot`` the JSON text of the whole encoded context at
    this version (or ``None``), ``position`` the opaque resume position.
    ``kind`` says what wrote it: ``"start"`` for the first version of a run,
    ``"step"`` for a persisted step, ``"override"`` for the ``override_data``
    of a resume, persisted before the next step runs, ``"op"`` for a completed
    workflow operation (``step_name`` is its key ``"id#n"``).
    """

    run_id: str
    version: int
    parent: int | None
    step_name: str | None
    changes: str
    removed: tuple[str, ...]
    position: str
    snapshot: str | None
    created_at: float
    kind: VersionKind = "step"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_time(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _optional(check: Callable[[object], bool], value: object) -> bool:
    return value is None or check(value)


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def check_status(value: object, allowed: tuple[str, ...] = RUN_STATUSES) -> None:
    if value is not None and value not in allowed:
        raise InvalidArgumentError(f"status must be one of {', '.join(allowed)}; got {value!r}")


def check_wake(status: object, wake_at: object, waiting_for: object) -> None:
    """The wake time and awaited signals of a run suspended by ``finish()``."""
    if status not in SUSPENDED:
        raise InvalidArgumentError(
            f"wake_at= and waiting_for= are for status sleeping or waiting, not {status!r}"
        )
    if status == "sleeping" and wake_at is None:
        raise InvalidArgumentError("a sleeping run needs wake_at= (the time it is due)")
    if wake_at is not None and not _is_time(wake_at):
        raise InvalidArgumentError(f"wake_at= must be a time stamp or None, got {wake_at!r}")
    if waiting_for is not None and (status != "waiting" or not isinstance(waiting_for, str)):
        raise InvalidArgumentError(
            f"waiting_for= is a str of signal names for a waiting run, got {waiting_for!r}"
        )


def check_version_number(value: object, name: str, minimum: int) -> None:
    """A version number or count >= ``minimum``, or ``None``."""
    if value is not None:
        check_count(value, name, minimum=minimum)


def run_problem(record: object) -> str | None:
    """Return what is wrong with a run record (field types, ranges), or ``None``."""
    if not isinstance(record, RunRecord):
        return f"expected a RunRecord, got {type(record).__name__}"
    r = record
    checks = (
        ("run_id", isinstance(r.run_id, str) and r.run_id != ""),
        ("pipeline", isinstance(r.pipeline, str)),
        ("status", r.status in RUN_STATUSES),
        ("version", _is_int(r.version) and r.version >= 0),
        ("step_name", _optional(_is_str, r.step_name)),
        ("error", _optional(_is_str, r.error)),
        ("created_at", _is_time(r.created_at)),
        ("updated_at", _is_time(r.updated_at)),
        ("expires_at", _optional(_is_time, r.expires_at)),
        ("owner", r.owner is None or (isinstance(r.owner, str) and r.owner != "")),
        ("lease_until", _optional(_is_time, r.lease_until)),
        ("meta", isinstance(r.meta, str)),
        ("wake_at", _optional(_is_time, r.wake_at)),
        ("waiting_for", _optional(_is_str, r.waiting_for)),
    )
    for name, ok in checks:
        if not ok:
            return f"bad RunRecord.{name}: {getattr(r, name)!r}"
    return None


def version_problem(version: object) -> str | None:
    """Return what is wrong with a version record, or ``None``."""
    if not isinstance(version, VersionRecord):
        return f"expected a VersionRecord, got {type(version).__name__}"
    v = version
    if (  # the common, valid case in one short-circuiting test (saving a step is hot)
        type(v.run_id) is str
        and v.run_id
        and type(v.version) is int
        and v.version >= 1
        and (v.parent is None or (type(v.parent) is int and 1 <= v.parent < v.version))
        and (v.step_name is None or type(v.step_name) is str)
        and type(v.changes) is str
        and type(v.position) is str
        and (v.snapshot is None or type(v.snapshot) is str)
        and type(v.removed) is tuple
        and all(type(k) is str for k in v.removed)
        and type(v.created_at) in (int, float)
        and math.isfinite(v.created_at)
        and v.kind in VERSION_KINDS
    ):
        return None
    checks = (
        ("run_id", isinstance(v.run_id, str) and v.run_id != ""),
        ("version", _is_int(v.version) and v.version >= 1),
        (
            "parent",
            v.parent is None or (_is_int(v.parent) and 1 <= v.parent < v.version),
        ),
        ("step_name", _optional(_is_str, v.step_name)),
        ("changes", isinstance(v.changes, str)),
        (
            "removed",
            isinstance(v.removed, tuple) and all(isinstance(k, str) for k in v.removed),
        ),
        ("position", isinstance(v.position, str)),
        ("snapshot", _optional(_is_str, v.snapshot)),
        ("created_at", _is_time(v.created_at)),
        ("kind", isinstance(v.kind, str) and v.kind in VERSION_KINDS),
    )
    for name, ok in checks:
        if not ok:
            return f"bad VersionRecord.{name}: {getattr(v, name)!r}"
    return None


def load_object(text: str | bytes, what: str) -> dict[str, Any]:
    """Parse a stored JSON object; malformed contents are a StoreError.

    Store contents are untrusted: never a raw JSONDecodeError or RecursionError.
    """
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise StoreError(f"corrupt {what}: not valid JSON") from exc
    if not isinstance(value, dict):
        raise StoreError(f"corrupt {what}: expected a JSON object, got {type(value).__name__}")
    return value


def rebuild(versions: Sequence[VersionRecord]) -> tuple[dict[str, Any], VersionRecord]:
    """Rebuild the encoded top-level context at the last of ``versions``.

    ``versions`` is what :meth:`Store.versions` returns: a chain that starts at
    a snapshot (or at a root version, whose parent is ``None``) and follows
    ``parent`` links. Values stay tag-encoded JSON; the caller decodes them::

        context, last = rebuild(store.versions("run-1"))
    """
    if not versions:
        raise InvalidArgumentError("rebuild() needs at least one version")
    context: dict[str, Any] = {}
    previous: VersionRecord | None = None
    for record in versions:
        if not isinstance(record, VersionRecord):
            raise InvalidArgumentError(
                f"rebuild() takes VersionRecord objects, got {type(record).__name__}"
            )
        label = f"version {record.version} of run {record.run_id!r}"
        if previous is None:
            if record.snapshot is None and record.parent is not None:
                raise InvalidArgumentError(
                    f"rebuild() must start at a snapshot or a root version; {label} is neither"
                )
        elif record.parent != previous.version or record.run_id != previous.run_id:
            raise InvalidArgumentError(
                f"rebuild() needs a parent chain: {label} does not derive from "
                f"version {previous.version}"
            )
        if record.snapshot is not None:
            context = load_object(record.snapshot, f"snapshot of {label}")
        else:
            context.update(load_object(record.changes, f"changes of {label}"))
            for key in record.removed:
                context.pop(key, None)
        previous = record
    assert previous is not None
    return context, previous


_RUN_FIELDS = tuple(field.name for field in fields(RunRecord))


_SIGNAL_FIELDS = tuple(field.name for field in fields(SignalRecord))


def signals_to_json(messages: Sequence[SignalRecord]) -> str:
    """The JSON text of a mailbox (used by file-like backends)."""
    return json.dumps([{n: getattr(m, n) for n in _SIGNAL_FIELDS} for m in messages])


def signals_from_json(text: str | bytes, where: str) -> builtins_list[SignalRecord]:
    """Parse :func:`signals_to_json` output read from storage; bad data is a StoreError."""
    try:
        items = json.loads(text)
        found = [SignalRecord(**{n: item[n] for n in _SIGNAL_FIELDS}) for item in items]
    except (ValueError, RecursionError, KeyError, TypeError) as exc:
        raise StoreError(f"corrupt signal mailbox in {where}") from exc
    for i, m in enumerate(found, 1):
        if (
            m.seq != i
            or not isinstance(m.signal, str)
            or not isinstance(m.data, str)
            or not _optional(_is_str, m.idempotency_key)
            or not _is_time(m.created_at)
        ):
            raise StoreError(f"corrupt signal mailbox in {where}: message {i}")
    return found


def run_to_json(record: RunRecord) -> dict[str, Any]:
    """The JSON-ready form of a run record (used by file-like backends)."""
    return {name: getattr(record, name) for name in _RUN_FIELDS}


#: Fields added since the first format: absent in older files, they take their defaults.
_OPTIONAL_FIELDS = frozenset({"wake_at", "waiting_for"})


def run_from_json(data: Mapping[str, Any], where: str) -> RunRecord:
    """Parse :func:`run_to_json` output read from storage; bad data is a StoreError."""
    try:
        record = RunRecord(
            **{
                name: data[name]
                for name in _RUN_FIELDS
                if name in data or name not in _OPTIONAL_FIELDS
            }
        )
    except (KeyError, TypeError) as exc:
        raise StoreError(f"corrupt run record in {where}: missing field {exc}") from exc
    problem = run_problem(record)
    if problem is not None:
        raise StoreError(f"corrupt run record in {where}: {problem}")
    return record
