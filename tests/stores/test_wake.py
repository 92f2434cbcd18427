"""Store primitives of workflow runs: suspend, due, claim(due=True), mailbox, cancel."""

from __future__ import annotations

from typing import Any

import pytest

from stepkit.errors import InvalidArgumentError, RunConflictError, RunNotFoundError

from .test_contract import start


def test_a_sleeping_run_is_due_at_its_wake_time(api: Any, clock: Any) -> None:
    """finish(status="sleeping", wake_at=) releases the run; due() lists it once its time came."""
    start(api, clock)
    record = api.finish("run-1", owner="w1", status="sleeping", wake_at=clock.now + 60)
    assert (record.status, record.wake_at, record.owner) == ("sleeping", clock.now + 60, None)
    assert api.due() == []
    clock.advance(60)
    assert [r.run_id for r in api.due()] == ["run-1"]


def test_exactly_one_due_claim_wins(api: Any, clock: Any) -> None:
    """claim(due=True) takes a due run once; a second claimer gets RunConflictError."""
    start(api, clock)
    api.finish("run-1", owner="w1", status="sleeping", wake_at=clock.now)
    claimed = api.claim("run-1", owner="w2", lease=30, due=True)
    assert (claimed.status, claimed.wake_at) == ("running", None)
    with pytest.raises(RunConflictError):
        api.claim("run-1", owner="w3", lease=30, due=True)


def test_a_run_not_due_is_not_claimed_by_a_worker(api: Any, clock: Any) -> None:
    """claim(due=True) refuses a sleeping run before its wake time."""
    start(api, clock)
    api.finish("run-1", owner="w1", status="sleeping", wake_at=clock.now + 5)
    with pytest.raises(RunConflictError):
        api.claim("run-1", owner="w2", lease=30, due=True)


def test_an_expired_lease_makes_a_running_run_due(api: Any, clock: Any) -> None:
    """A running run whose lease ran out (a dead worker) is due, and claimable once."""
    start(api, clock)
    api.renew("run-1", owner="w1", lease=10)
    assert api.due() == []
    clock.advance(11)
    assert [r.run_id for r in api.due()] == ["run-1"]
    assert api.claim("run-1", owner="w2", lease=10, due=True).owner == "w2"


def test_signals_are_kept_in_order_and_deduplicated(api: Any, clock: Any) -> None:
    """deliver() buffers for a run not waiting, de-duplicates by key; signals() reads in order."""
    start(api, clock)
    assert api.deliver("run-1", "a", "1", idempotency_key="k") == "buffered"
    assert api.deliver("run-1", "a", "1", idempotency_key="k") == "duplicate"
    assert api.deliver("run-1", "b", '{"x":2}') == "buffered"
    box = api.signals("run-1")
    assert [(m.seq, m.signal, m.data, m.idempotency_key) for m in box] == [
        (1, "a", "1", "k"),
        (2, "b", '{"x":2}', None),
    ]


def test_a_signal_makes_its_waiting_run_due(api: Any, clock: Any) -> None:
    """A run waiting on a name (no timeout) becomes due when that signal is delivered."""
    start(api, clock)
    api.finish("run-1", owner="w1", status="waiting", wake_at=None, waiting_for="go")
    assert [r.run_id for r in api.waiting("go")] == ["run-1"]
    assert api.due() == []
    assert api.deliver("run-1", "other", "0") == "buffered"
    assert api.due() == []
    assert api.deliver("run-1", "go", "1") == "delivered"
    assert [r.run_id for r in api.due()] == ["run-1"]


def test_a_signal_during_the_run_makes_its_next_wait_due(api: Any, clock: Any) -> None:
    """A signal that comes while the run is held makes it due as soon as it goes waiting."""
    start(api, clock)
    api.deliver("run-1", "go", "1")
    api.finish("run-1", owner="w1", status="waiting", wake_at=clock.now + 3600, waiting_for="go")
    assert [r.run_id for r in api.due()] == ["run-1"]


def test_cancel_stops_the_holder_and_takes_no_signal(api: Any, clock: Any) -> None:
    """cancel() marks the run; its holder's next append fails; signals are undelivered."""
    start(api, clock)
    assert api.cancel("run-1", reason="no").status == "cancelled"
    with pytest.raises(RunConflictError):
        api.finish("run-1", owner="w1", status="completed")
    assert api.deliver("run-1", "go", "1") == "undelivered"
    with pytest.raises(RunConflictError):
        api.claim("run-1", owner="w2", lease=5)


def test_bad_wake_arguments_are_rejected(api: Any, clock: Any) -> None:
    """A sleeping run needs wake_at; waiting_for is for waiting runs; unknown runs are not found."""
    start(api, clock)
    with pytest.raises(InvalidArgumentError):
        api.finish("run-1", owner="w1", status="sleeping")
    with pytest.raises(InvalidArgumentError):
        api.finish("run-1", owner="w1", status="completed", waiting_for="x")
    with pytest.raises(RunNotFoundError):
        api.signals("nope")
    with pytest.raises(RunNotFoundError):
        api.deliver("nope", "go", "1")
