"""The frames of a running pipeline: one per running level, and the progress of parallel items.

The resume position (:mod:`stepkit.engine._position`) is read off these frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stepkit.engine._position import InCase, InNested
    from stepkit.engine._walk import Walk
    from stepkit.pipeline._plan import Policy


class Frame:
    """One running pipeline level: its context, last completed node, and child."""

    __slots__ = ("child", "ctx", "done", "view", "walk", "written")

    def __init__(
        self,
        ctx: dict[str, Any],
        view: Mapping[str, Any] | None = None,
        written: dict[str, Any] | None = None,
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
        # a graph level's walk (its node count and next node); None for a pipeline level
        self.walk: Walk | None = None


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


def container_frame(frame: Frame, policy: Policy, resume: InNested | InCase | None) -> Frame:
    """The frame a nested pipeline or branch case runs in.

    Under ``merge="override"`` (the default) it shares its container's
    context. Under another rule it runs on its own copy, like a parallel item,
    so that what its steps wrote can be merged under the rule when it ends;
    a position inside it carries those writes (``"set"``, ``"del"``).
    """
    writes = None if resume is None else resume.writes
    changed = {} if writes is None else writes.changed
    removed = () if writes is None else writes.removed
    if policy.merge == "override":
        # (writes saved while the step had another merge= rule land in the context itself)
        apply_writes(frame.ctx, frame.written, changed, removed)
        return Frame(frame.ctx, frame.view, frame.written)
    inner = Frame(dict(frame.ctx), written={})
    apply_writes(inner.ctx, inner.written, changed, removed)
    return inner


def apply_writes(
    ctx: dict[str, Any],
    written: dict[str, Any] | None,
    changed: Mapping[str, Any],
    removed: Iterable[str],
) -> None:
    """Replay saved writes (a position's ``set``/``del``) onto a context."""
    ctx.update(changed)
    if written is not None:
        written.update(changed)
    for key in removed:
        ctx.pop(key, None)
