"""Merge rules for a step's output keys that already exist in the context."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("stepkit")


def merge_into(ctx: dict[str, Any], out: Mapping[str, Any], mode: str, path: str) -> None:
    """Merge ``out`` into ``ctx`` under ``mode`` (``"override"`` is plain ``update``).

    ``"error"`` raises ``ValueError`` naming the first existing key and changes
    nothing; ``"warn"`` overrides and logs a warning per key; ``"skip"`` keeps
    the existing values.
    """
    if mode == "override":
        ctx.update(out)
    elif mode == "error":
        clash = [k for k in out if k in ctx]
        if clash:
            raise ValueError(
                f"step {path!r} returned key {clash[0]!r}, which is already in the context "
                "(merge='error'); rename the key or choose merge='override'"
            )
        ctx.update(out)
    elif mode == "warn":
        for key in out:
            if key in ctx:
                log.warning("step %s overrides context key %r (merge='warn')", path, key)
        ctx.update(out)
    else:  # "skip"
        for key, value in out.items():
            if key not in ctx:
                ctx[key] = value
