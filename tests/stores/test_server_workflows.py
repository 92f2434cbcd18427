"""Durable workflows on PostgreSQL and Redis: sleeps, signals and due runs on server stores.

Skipped (saying why) unless the servers' URLs are set (``eval "$(.ci/servers start)"``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stepkit.stores import BaseStore
from stepkit.testing import FakeClock
from stepkit.workflows import Client

from . import servers


@pytest.fixture(params=servers.SERVER_KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    servers.skip_unless_available(str(request.param))
    return str(request.param)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(kind: str, clock: FakeClock) -> Iterator[BaseStore]:
    make = servers.postgres_store if kind == "postgres" else servers.redis_store
    with make(clock=clock) as opened:
        yield opened
    servers.drop(opened)


def test_a_workflow_sleeps_waits_for_a_signal_and_completes(
    store: BaseStore, clock: FakeClock
) -> None:
    """A workflow on a server store suspends on sleep and on a signal, and finishes once due."""
    client = Client(driver=store, clock=clock, owner="worker-1")
    charged: list[int] = []

    def charge(amount: int) -> dict[str, Any]:
        charged.append(amount)
        return {"paid": amount}

    @client.workflow(id="order")
    def order(ctx: Any, step: Any) -> dict[str, Any]:
        payment = step.run("charge", charge, ctx.input["amount"])
        step.sleep("cool-off", 60)
        approval = step.wait_for_signal("approval", signal="approve", timeout=3600)
        return {"payment": payment, "approval": approval}

    handle = client.start_workflow(order, {"amount": 10}, run_id="o-1")
    assert handle.status().status == "sleeping"
    assert client.run_due() == 0  # not due yet
    clock.advance(60)
    assert client.run_due() == 1
    assert handle.status().status == "waiting"
    assert [r.run_id for r in store.waiting("approve")] == ["o-1"]
    receipt = client.send_signal("approve", {"by": "ana"}, run_id="o-1", idempotency_key="k1")
    assert receipt.status == "delivered"
    again = client.send_signal("approve", {"by": "ana"}, run_id="o-1", idempotency_key="k1")
    assert again.status == "duplicate"
    assert client.run_due() == 1
    assert handle.result() == {"payment": {"paid": 10}, "approval": {"by": "ana"}}
    assert charged == [10]
    assert [m.signal for m in store.signals("o-1")] == ["approve"]
    assert [v.kind for v in store.history("o-1")].count("op") >= 3
