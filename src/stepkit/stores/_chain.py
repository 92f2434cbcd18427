"""The version chain a rebuild reads: walked back from a version to its snapshot, and checked.

Store contents are untrusted: a chain that does not link up is a ``StoreError``,
never a silently wrong context.
"""

from __future__ import annotations

from collections.abc import Callable

from stepkit.errors import RunNotFoundError, StoreError
from stepkit.stores._records import RunRecord, VersionRecord, version_problem

__all__ = ["checked_chain", "target_version", "walk_chain"]


def target_version(record: RunRecord | None, run_id: str, upto: int | None) -> int:
    """The version ``versions(run_id, upto=)`` rebuilds, or ``RunNotFoundError``."""
    if record is None:
        raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id)
    target = record.version if upto is None else upto
    if not 1 <= target <= record.version:
        raise RunNotFoundError(f"run {run_id!r} has no version {target}", run_id=run_id)
    return target


def walk_chain(
    read: Callable[[int], VersionRecord | None], run_id: str, target: int
) -> list[VersionRecord]:
    """Follow ``parent`` links back from ``target`` to a snapshot: one ``read`` per version."""
    chain: list[VersionRecord] = []
    number: int | None = target
    while number is not None:
        found = read(number)
        if found is None:
            break
        problem = version_problem(found)
        if problem is None and found.version != number:
            problem = f"version {number} is stored as {found.version}"
        if problem is not None:  # also stops a corrupt parent link from looping
            raise StoreError(f"corrupt version {number} of run {run_id!r}: {problem}")
        chain.append(found)
        number = None if found.snapshot is not None else found.parent
    chain.reverse()
    return checked_chain(run_id, target, chain)


def checked_chain(run_id: str, target: int, chain: list[VersionRecord]) -> list[VersionRecord]:
    """Verify a chain read from storage, so that corruption is a StoreError."""
    if not chain or chain[-1].version != target:
        raise RunNotFoundError(f"run {run_id!r} has no version {target}", run_id=run_id)
    for i, found in enumerate(chain):
        problem = version_problem(found)
        if problem is None and found.run_id != run_id:
            problem = f"it belongs to run {found.run_id!r}"
        if problem is None and i == 0 and found.snapshot is None and found.parent is not None:
            problem = f"its parent {found.parent} is missing"
        if problem is None and i > 0 and found.parent != chain[i - 1].version:
            problem = f"its parent {found.parent} is missing"
        if problem is not None:
            raise StoreError(f"corrupt version {found.version} of run {run_id!r}: {problem}")
    return chain
