"""An order as a durable workflow: charge, wait up to a day for approval, then ship or refund.

    python examples/order_workflow.py

The workflow suspends while it waits (no process holds it); "a web handler"
sends the approval signal; a worker (``run_due`` here, ``run_worker`` in a
long-lived process) continues it. A fake clock stands in for the day.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from stepkit.testing import FakeClock
from stepkit.workflows import Client, SQLiteDriver

ledger: list[str] = []


def charge(order: dict[str, Any], key: str) -> dict[str, Any]:
    ledger.append(f"charge {order['amount']} (idempotency key {key})")
    return {"charge_id": "ch-" + order["order_id"], "amount": order["amount"]}


def ship(charge: dict[str, Any]) -> str:
    ledger.append(f"ship for {charge['charge_id']}")
    return "shipped"


def refund(charge: dict[str, Any]) -> str:
    ledger.append(f"refund {charge['charge_id']}")
    return "refunded"


def validate_order(data: Any) -> bool:
    return isinstance(data, dict) and data.get("amount", 0) > 0 and "order_id" in data


def build(client: Client) -> Any:
    @client.workflow(id="process-order", input_schema=validate_order, version="1")
    def process_order(ctx: Any, step: Any) -> Any:
        payment = step.run("charge", lambda: charge(ctx.input, ctx.idempotency_key("charge")))
        approval = step.wait_for_signal("approval", signal="approve", timeout=24 * 3600)
        if approval is None or not approval.get("ok"):
            return {"status": step.run("refund", refund, payment)}
        return {"status": step.run("ship", ship, payment), "by": approval["by"]}

    return process_order


def web_handler(client: Client, run_id: str, by: str) -> str:
    """What an approval endpoint does: send the signal (a double click is a duplicate)."""
    receipt = client.send_signal(
        "approve", {"ok": True, "by": by}, run_id=run_id, idempotency_key=f"{run_id}:approve"
    )
    return receipt.status


def main(folder: Path) -> list[Any]:
    clock = FakeClock()
    client = Client(driver=SQLiteDriver(folder / "orders.db"), clock=clock)
    build(client)
    approved = client.start_workflow("process-order", {"order_id": "1", "amount": 10})
    expired = client.start_workflow("process-order", {"order_id": "2", "amount": 20})
    print("after start:", approved.status().status, expired.status().status)
    print("approve click:", web_handler(client, approved.run_id, "ana"))
    print("double click:", web_handler(client, approved.run_id, "ana"))
    worker = Client(driver=client.driver, clock=clock, owner="worker")  # another process
    build(worker)
    print("worker advanced", worker.run_due(), "run(s)")
    clock.advance(24 * 3600)  # a day later, nobody approved order 2
    print("worker advanced", worker.run_due(), "run(s)")
    results = [approved.result(), expired.result()]
    print("results:", results)
    print("ledger:", ledger)
    return results


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        main(Path(tmp))
