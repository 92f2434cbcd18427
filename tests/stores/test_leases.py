"""Leases, not trust: who may take over a running run, and the heartbeat that keeps it held.

Every backend, sync and async (the ``api`` fixture); the rules live once in
``stepkit.stores._transitions``.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from stepkit.errors import InvalidArgumentError, RunConflictError, RunNotFoundError
from stepkit.stores import BaseStore

from .store_helpers import run, version


def held(api: Any, clock: Any, *, lease: float | None = 10, owner: str = "w1") -> None:
    """run-1 paused at version 1, then claimed by ``owner`` (with ``lease``, if any)."""
    api.create(run(now=clock.now, status="running", version=1, owner="w0"), version(1))
    api.finish("run-1", owner="w0", status="paused")
    api.claim("run-1", owner=owner, lease=lease)


class TestClaimOfARunningRun:
    def test_a_live_lease_is_never_taken_over_by_recover(self, api: Any, clock: Any) -> None:
        """recover=True alone cannot take a live lease; the error says until when, and how."""
        held(api, clock, lease=10)
        clock.advance(9)
        for kwargs in ({}, {"recover": True}):
            with pytest.raises(RunConflictError) as info:
                api.claim("run-1", owner="w2", **kwargs)
            message = str(info.value)
            assert "held by a live owner 'w1' until" in message
            assert "wait for the lease to expire" in message
            assert "dead_owner='w1'" in message
            assert info.value.run_id == "run-1"
        assert api.get("run-1").owner == "w1"

    def test_an_expired_lease_is_taken_over_with_or_without_recover(
        self, api: Any, clock: Any
    ) -> None:
        """At lease_until the lease has expired: a claim succeeds and starts a new lease."""
        held(api, clock, lease=10)
        clock.advance(10)
        claimed = api.claim("run-1", owner="w2", lease=30)
        assert (claimed.owner, claimed.lease_until) == ("w2", clock.now + 30)
        clock.advance(30)
        assert api.claim("run-1", owner="w3", recover=True).owner == "w3"

    def test_naming_the_dead_owner_takes_over_a_live_lease(self, api: Any, clock: Any) -> None:
        """recover=True with dead_owner equal to the holder takes over at once."""
        held(api, clock, lease=1000)
        claimed = api.claim("run-1", owner="w2", recover=True, dead_owner="w1", lease=5)
        assert (claimed.status, claimed.owner, claimed.lease_until) == (
            "running",
            "w2",
            clock.now + 5,
        )
        with pytest.raises(RunConflictError, match="lost the claim"):
            api.append(version(2), owner="w1")

    def test_naming_the_wrong_dead_owner_conflicts(self, api: Any, clock: Any) -> None:
        """A dead_owner that is not the holder takes nothing, lease or no lease."""
        for lease in (1000, None):
            api.delete("run-1")
            held(api, clock, lease=lease)
            with pytest.raises(RunConflictError, match="not by the dead_owner 'w9'"):
                api.claim("run-1", owner="w2", recover=True, dead_owner="w9")
            assert api.get("run-1").owner == "w1"

    def test_a_run_claimed_without_a_lease_needs_recover(self, api: Any, clock: Any) -> None:
        """No lease (older runs): recover=True takes it over; without it, a conflict."""
        held(api, clock, lease=None)
        with pytest.raises(RunConflictError, match="pass recover=True if its process is gone"):
            api.claim("run-1", owner="w2")
        assert api.claim("run-1", owner="w2", recover=True).owner == "w2"

    def test_dead_owner_needs_recover(self, api: Any, clock: Any) -> None:
        """dead_owner= without recover=True is a mistake: InvalidArgumentError."""
        held(api, clock)
        with pytest.raises(InvalidArgumentError, match="recover=True"):
            api.claim("run-1", owner="w2", dead_owner="w1")
        with pytest.raises(InvalidArgumentError, match="dead_owner"):
            api.claim("run-1", owner="w2", recover=True, dead_owner="")

    def test_paused_runs_ignore_dead_owner(self, api: Any, clock: Any) -> None:
        """From paused there is no holder to name: the claim succeeds."""
        held(api, clock)
        api.finish("run-1", owner="w1", status="paused")
        assert api.claim("run-1", owner="w2", recover=True, dead_owner="w1").owner == "w2"


class TestRenew:
    def test_renew_extends_the_lease_of_the_holder(self, api: Any, clock: Any) -> None:
        """renew() sets lease_until = now + lease; version and updated_at stay."""
        held(api, clock, lease=10)
        before = api.get("run-1")
        clock.advance(8)
        renewed = api.renew("run-1", owner="w1", lease=10)
        assert renewed.lease_until == clock.now + 10
        assert (renewed.version, renewed.updated_at) == (before.version, before.updated_at)
        assert api.get("run-1") == renewed
        clock.advance(9)
        with pytest.raises(RunConflictError, match="live owner"):
            api.claim("run-1", owner="w2", recover=True)

    def test_renew_works_on_a_run_claimed_without_a_lease(self, api: Any, clock: Any) -> None:
        """A holder may start a lease with its first heartbeat."""
        held(api, clock, lease=None)
        assert api.renew("run-1", owner="w1", lease=5).lease_until == clock.now + 5

    def test_renew_after_losing_the_claim_conflicts(self, api: Any, clock: Any) -> None:
        """Once another owner took over (expired lease), the old holder's renew fails."""
        held(api, clock, lease=10)
        clock.advance(11)
        api.claim("run-1", owner="w2", lease=10)
        with pytest.raises(RunConflictError, match="lost the claim"):
            api.renew("run-1", owner="w1", lease=10)
        assert api.get("run-1").owner == "w2"

    def test_renew_of_a_released_run_conflicts(self, api: Any, clock: Any) -> None:
        """A paused run has no holder: renew() raises RunConflictError."""
        held(api, clock)
        api.finish("run-1", owner="w1", status="paused")
        with pytest.raises(RunConflictError, match="lost the claim"):
            api.renew("run-1", owner="w1", lease=10)

    @pytest.mark.parametrize("lease", [None, 0, -1, float("inf"), "10"])
    def test_renew_needs_a_positive_lease(self, api: Any, clock: Any, lease: Any) -> None:
        """lease= is a positive, finite number of seconds."""
        held(api, clock)
        with pytest.raises(InvalidArgumentError, match="lease"):
            api.renew("run-1", owner="w1", lease=lease)

    def test_renew_of_a_missing_run_is_not_found(self, api: Any) -> None:
        """RunNotFoundError for an unknown id."""
        with pytest.raises(RunNotFoundError):
            api.renew("nope", owner="w1", lease=10)


def test_purge_spares_a_live_lease_and_takes_an_expired_one(api: Any, clock: Any) -> None:
    """A running run is purged only once lease_until <= now."""
    held(api, clock, lease=10)
    clock.advance(9)
    assert api.purge(expired=False, older_than=0) == 0
    clock.advance(1)
    assert api.purge(expired=False, older_than=0) == 1


@pytest.mark.parametrize("how", ["expired", "dead_owner"])
def test_one_of_eight_recovering_threads_wins(store: BaseStore, clock: Any, how: str) -> None:
    """Eight threads recovering the same crashed run at once: exactly one takes it over."""
    store.create(run(now=clock.now, status="running", version=1, owner="w0"), version(1))
    store.finish("run-1", owner="w0", status="paused")
    store.claim("run-1", owner="crashed", lease=10)
    if how == "expired":
        clock.advance(10)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def recover(owner: str) -> None:
        barrier.wait()
        try:
            store.claim("run-1", owner=owner, lease=10, recover=True, dead_owner="crashed")
            outcomes.append(owner)
        except RunConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=recover, args=(f"t{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if o != "conflict"]
    assert len(outcomes) == 8
    assert len(winners) == 1
    record = store.get("run-1")
    assert record is not None
    assert record.owner == winners[0]
