"""The frames of a running pipeline: one per running level, and the progress of parallel items.

The resume position (:mod:`stepkit.engine._position`) is read off these frames.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


class Frame:
    """One running pipeline level: its context, last completed node, and child."""

    __slots__ = ("child", "ctx", "done", "view", "written")

    def __init__(
        self,
        ctx: dict[str, Any],
        view: Mapping[str, Any] | None = None,
        written: set[str] | None = None,
    ) -> None:
        self.ctx = ctx
        self.view: Mapping[str, Any] = MappingProxyType(ctx) if view is None else view
        # keys written by the steps of a frame running on its own copy of the context
        # (a parallel item, a container with merge= other than override; None otherwise):
        # its output is what it wrote, never guessed from value identity
        self.written = written
        self.done: str | None = None
        # None | ("nest", name, Frame) | ("case", name, key, Frame)
        # | ("par", name, [ItemState], parent ctx)
        self.child: tuple[Any, ...] | None = None


class ItemState:
    """Progress of one parallel item: its frame while running, its output when done."""

    __slots__ = ("frame", "out", "removed")

    def __init__(self) -> None:
        self.frame: Frame | None = None
        self.out: dict[str, Any] | None = None
        self.removed: list[str] = []


def item_output(frame: Frame, parent: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """What a frame on its own copy wrote (still present), and the parent keys it removed."""
    ctx = frame.ctx
    written = frame.written or ()
    return {k: ctx[k] for k in written if k in ctx}, [k for k in parent if k not in ctx]
