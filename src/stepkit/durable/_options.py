"""The options of one durable call (``run(store=)`` or ``resume``), checked once, frozen.

They sit beside the plain run's :class:`~stepkit.engine._options.RunOptions`,
which the durable layer passes on to the engine unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stepkit._checks import check_count, check_id, check_seconds
from stepkit.durable._hold import DEFAULT_LEASE
from stepkit.errors import InvalidArgumentError
from stepkit.stores import is_store

__all__ = ["DurableOptions", "durable_options"]


@dataclass(frozen=True, slots=True)
class DurableOptions:
    """The store and what a durable start or resume asked of it."""

    store: Any
    ttl: float | None = None
    lease: float = DEFAULT_LEASE
    override_data: Mapping[str, Any] | None = None
    recover: bool = False
    dead_owner: str | None = None
    expect_version: int | None = None
    version: int | None = None
    fork: bool = False


def durable_options(
    call: str,
    *,
    store: Any,
    ttl: Any = None,
    lease: Any = None,
    override_data: Any = None,
    recover: Any = False,
    dead_owner: Any = None,
    expect_version: Any = None,
    version: Any = None,
    fork: Any = False,
) -> DurableOptions:
    """Check the durable options of ``call`` (``"run()"`` or ``"resume()"``) and freeze them."""
    if store is None:
        raise InvalidArgumentError(f"{call} needs store=: the store the run is saved in")
    if not is_store(store):
        raise InvalidArgumentError(
            f"{call}: store= must be a stepkit store (MemoryStore, FileStore, SQLiteStore, "
            f"or stepkit.open_store(url)), got {type(store).__name__}"
        )
    for name, flag in (("recover", recover), ("fork", fork)):
        if not isinstance(flag, bool):
            raise InvalidArgumentError(f"{name}= must be True or False, got {flag!r}")
    if dead_owner is not None:
        if not isinstance(dead_owner, str) or not dead_owner:
            raise InvalidArgumentError(
                f"dead_owner= must be the owner token of a run (store.get(run_id).owner), "
                f"got {dead_owner!r}"
            )
        check_id(dead_owner, "dead_owner")
        if not recover:
            raise InvalidArgumentError(
                "dead_owner= takes over a run whose process is gone: pass recover=True with it"
            )
    lease_seconds = check_seconds(lease, "lease")
    return DurableOptions(
        store=store,
        ttl=check_seconds(ttl, "ttl"),
        lease=DEFAULT_LEASE if lease_seconds is None else lease_seconds,
        override_data=override_data,
        recover=recover,
        dead_owner=dead_owner,
        expect_version=None
        if expect_version is None
        else check_count(expect_version, "expect_version", minimum=1),
        version=version,
        fork=fork,
    )
