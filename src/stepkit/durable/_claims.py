"""Loading a stored run back: find it, claim it for a resume, rebuild its state, give it back."""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from stepkit.checkpoints._decode import from_json, loads
from stepkit.durable._store_calls import StoreGen
from stepkit.errors import (
    CheckpointMismatchError,
    InvalidArgumentError,
    RunConflictError,
    RunNotFoundError,
    StepkitError,
    StoreError,
)
from stepkit.stores import RunRecord, VersionRecord, rebuild


@dataclass(slots=True)
class State:
    """A run's state as loaded from a store."""

    record: RunRecord
    context: dict[str, Any]
    position: Any
    position_text: str  # the position as stored (what an override version repeats)
    step_name: str | None
    version: int  # the version this state is
    fingerprint: str
    pipeline_version: str | None
    snapshot_size: int
    since_snapshot: int
    versions_since: int
    previous: RunRecord | None = None  # the record before our claim, to give it back


def new_owner() -> str:
    return uuid.uuid4().hex


def existing_run(record: RunRecord | None, run_id: str, pipeline: str) -> StoreGen:
    """``run(run_id=X)`` for an X that exists: its stored result if completed."""
    if record is None:
        return None
    if record.pipeline != pipeline:
        raise RunConflictError(
            f"run id {run_id!r} is already used by a run of pipeline {record.pipeline!r}; "
            "choose another run_id",
            run_id=run_id,
        )
    if record.status != "completed":
        raise RunConflictError(
            f"run {run_id!r} already exists and is {record.status}; resume it with "
            f"pipeline.resume({run_id!r}, store=...) instead of starting it again",
            run_id=run_id,
        )
    return (yield from load(record, None))


def _check_version(record: RunRecord, version: int | None) -> None:
    if version is not None and (
        isinstance(version, bool)
        or not isinstance(version, int)
        or not 1 <= version <= record.version
    ):
        raise InvalidArgumentError(
            f"version= must be a version number of run {record.run_id!r}, from 1 to "
            f"{record.version}; got {version!r}"
        )


def load(record: RunRecord, version: int | None) -> StoreGen:
    """Load the state of ``record`` at ``version`` (default: its latest)."""
    _check_version(record, version)
    chain = yield ("versions", (record.run_id,), {"upto": version})
    return state_of(record, chain)


def state_of(record: RunRecord, chain: list[VersionRecord]) -> State:
    """The state a chain of versions (as ``store.versions`` gives it) rebuilds."""
    run_id = record.run_id
    try:
        encoded, last = rebuild(chain)
        context = {k: from_json(v) for k, v in encoded.items()}
        position = loads(last.position)
        meta = json.loads(record.meta)
        fingerprint, pipeline_version = meta["fingerprint"], meta["version"]
        if not isinstance(fingerprint, str) or not isinstance(pipeline_version, str | None):
            raise ValueError("bad meta")
    except StoreError:
        raise
    except (StepkitError, ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"the stored state of run {run_id!r} is corrupt: {exc}") from exc
    since = 0
    for v in reversed(chain):
        if v.snapshot is not None:
            break
        since += len(v.changes) + len(v.position)
    first = chain[0]
    return State(
        record=record,
        context=context,
        position=position,
        position_text=last.position,
        step_name=last.step_name,
        version=last.version,
        fingerprint=fingerprint,
        pipeline_version=pipeline_version,
        snapshot_size=len(first.snapshot or ""),
        since_snapshot=since,
        versions_since=len(chain) - 1,
    )


class _Completed(Exception):
    """Raised by the claim's check: the run is completed (its stored result is the answer)."""

    def __init__(self, record: RunRecord) -> None:
        super().__init__(record.run_id)
        self.record = record


def _resumable(
    record: RunRecord, pipeline: str, expect_version: int | None, version: int | None, fork: bool
) -> None:
    """Raise why ``record`` cannot be resumed as asked (:class:`_Completed` if completed)."""
    run_id = record.run_id
    if record.pipeline != pipeline:
        raise CheckpointMismatchError(
            f"run {run_id!r} belongs to pipeline {record.pipeline!r}, not {pipeline!r}"
        )
    if expect_version is not None and record.version != expect_version:
        raise RunConflictError(
            f"run {run_id!r} stands at version {record.version}, not at expect_version="
            f"{expect_version}: it moved on since (another resume answered that pause)",
            run_id=run_id,
        )
    if record.status == "completed" and not fork:
        if version is None:
            raise _Completed(record)
        raise RunConflictError(
            f"run {run_id!r} is completed; pass fork=True to continue it from version "
            f"{version} as a new run",
            run_id=run_id,
        )
    _check_version(record, version)


def claim_and_load(
    pipeline: str,
    run_id: str,
    *,
    owner: str,
    lease: float,
    recover: bool,
    dead_owner: str | None,
    expect_version: int | None,
    version: int | None,
    fork: bool,
    at_once: bool,
) -> StoreGen:
    """Fetch a run for ``resume``: the state to continue from, claimed unless forking.

    Returns ``(state, claimed)``; a completed run without ``version``/``fork``
    returns its state with ``claimed`` false (the caller returns the stored result).
    ``expect_version`` is the version the run must stand at now, else RunConflictError.
    ``at_once``: the store has ``claim_and_load`` (a :class:`BaseStore`), which checks,
    claims and reads in one go (one transaction on SQLite); other stores get, claim
    (a compare-and-set on the version read) and read the versions in turn.
    """
    if at_once and not fork:
        return (
            yield from _claim_at_once(
                pipeline, run_id, owner, lease, recover, dead_owner, expect_version, version
            )
        )
    record = yield ("get", (run_id,), {})
    if record is None:
        raise RunNotFoundError(f"no run {run_id!r} in this store", run_id=run_id)
    try:
        _resumable(record, pipeline, expect_version, version, fork)
    except _Completed:
        return (yield from load(record, None)), False
    if fork:
        return (yield from load(record, version)), False
    how = {"owner": owner, "lease": lease, "recover": recover, "expect_version": record.version}
    if dead_owner is not None:
        how["dead_owner"] = dead_owner
    claimed = yield ("claim", (run_id,), how)
    try:
        state = yield from load(claimed, version)
    except BaseException:
        yield from release(record, owner, "could not load the stored state")
        raise
    state.previous = record
    return state, True


def _claim_at_once(
    pipeline: str,
    run_id: str,
    owner: str,
    lease: float,
    recover: bool,
    dead_owner: str | None,
    expect_version: int | None,
    version: int | None,
) -> StoreGen:
    seen = False

    def check(record: RunRecord) -> None:
        nonlocal seen
        seen = True
        _resumable(record, pipeline, expect_version, version, False)

    how: dict[str, Any] = {
        "owner": owner,
        "lease": lease,
        "recover": recover,
        "dead_owner": dead_owner,
        "upto": version,
        "check": check,
    }
    try:
        before, claimed, chain = yield ("claim_and_load", (run_id,), how)
    except _Completed as completed:
        return (yield from load(completed.record, None)), False
    except RunNotFoundError:
        if seen:
            raise
        raise RunNotFoundError(f"no run {run_id!r} in this store", run_id=run_id) from None
    try:
        state = state_of(claimed, chain)
    except BaseException:
        yield from release(before, owner, "could not load the stored state")
        raise
    state.previous = before
    return state, True


def release(record: RunRecord, owner: str, why: str) -> StoreGen:
    """Give back a claim that will not be used, leaving the run as it was."""
    status = record.status if record.status in ("paused", "failed") else "failed"
    error = record.error if status == record.status else why
    with contextlib.suppress(StepkitError):  # the original error matters more
        yield ("finish", (record.run_id,), {"owner": owner, "status": status, "error": error})
