"""Checkpoints you can hand to a browser: signed, rotated, expiring, upgraded after a deploy.

Run: python examples/secure_checkpoints.py
"""

from __future__ import annotations

from typing import Any

from stepkit import (
    CheckpointExpiredError,
    CheckpointSignatureError,
    Pipeline,
    StepEvent,
    decode_checkpoint,
)

OLD_KEY = "old-key-from-the-vault-0123456789"
NEW_KEY = "new-key-from-the-vault-9876543210"


def build(version: str, keys: list[str], **options: Any) -> Pipeline:
    return (
        Pipeline("refund", secret=keys, version=version, **options)
        .step("quote", lambda ctx: {"amount_cents": 1999})
        .step("approve", lambda ctx: {"approved_by": ctx.get("approver", "nobody")})
        .step("pay", lambda ctx: {"paid": ctx["amount"] if version >= "2" else ctx["amount_cents"]})
    )


def to_euros(ctx: dict[str, Any]) -> dict[str, Any]:
    """Migration 1 -> 2: amounts are kept in euros instead of cents."""
    upgraded = {k: v for k, v in ctx.items() if k != "amount_cents"}
    upgraded["amount"] = ctx["amount_cents"] / 100
    return upgraded


class Clock:
    """A clock the example can move forward."""

    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


def pause_after_quote(pipeline: Pipeline, **run_options: Any) -> str:
    saved: dict[str, str] = {}

    def handler(event: StepEvent) -> None:
        if event.step_name == "quote":
            saved["cp"] = event.checkpoint
            event.stop_pipeline()

    pipeline.run({"order": 7}, on_step_complete=handler, **run_options)
    return saved["cp"]


def main() -> None:
    v1 = build("1", [OLD_KEY])
    clock = Clock()
    link_token = pause_after_quote(v1, checkpoint_ttl=3600, clock=clock)
    print(f"approval link token: {len(link_token)} chars, URL-safe")

    # anyone can read it (it is not encrypted) but nobody can change it
    info = decode_checkpoint(link_token)
    print("inspect without key:", info.step_name, dict(info.context), "verified:", info.verified)
    tampered = link_token[:-3] + ("AAA" if link_token[-3:] != "AAA" else "BBB")
    try:
        v1.run_checkpoint(tampered, clock=clock)
    except CheckpointSignatureError as exc:
        print("tampered token ->", type(exc).__name__)

    # deploy: new key (old one still accepted), version 2 stores amounts in euros
    v2 = build(
        "2",
        [NEW_KEY, OLD_KEY],
        migrations={"1": to_euros},
    )
    clock.now += 60
    result = v2.run_checkpoint(link_token, {"approver": "grace"}, clock=clock)
    print("resumed after deploy:", dict(result), "changed:", result.definition_changed)

    # an hour later the link has expired
    clock.now += 3600
    try:
        v2.run_checkpoint(link_token, clock=clock)
    except CheckpointExpiredError as exc:
        print("expired ->", exc)


if __name__ == "__main__":
    main()
