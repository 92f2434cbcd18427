"""Where a run is: frames of the running levels, and the resume position they encode.

A position is a small JSON-ready tree. At each level it is ``None`` (nothing
done yet), ``{"done": name}`` (node ``name`` completed), or ``{"at": name,
...}`` (inside a container: ``"in"`` for a nested pipeline, ``"case"`` and
``"in"`` for a branch, ``"items"`` for parallel items).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from stepkit.errors import CheckpointMismatchError, InvalidCheckpointError
from stepkit.pipeline._plan import FnItem, PipeItem

if TYPE_CHECKING:
    from stepkit.pipeline._builder import Pipeline


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
        # keys written by the steps of a parallel item (None outside parallel items):
        # the item's output is what it wrote, never guessed from value identity
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
    """What a parallel item's steps wrote (still present), and the parent keys it removed."""
    ctx = frame.ctx
    written = frame.written or ()
    return {k: ctx[k] for k in written if k in ctx}, [k for k in parent if k not in ctx]


def position_of(frame: Frame) -> Any:
    """The resume position of ``frame`` and everything running below it."""
    child = frame.child
    if child is None:
        return None if frame.done is None else {"done": frame.done}
    kind = child[0]
    if kind == "nest":
        pos = {"at": child[1], "in": position_of(child[2])}
        return _with_writes(pos, child[2], frame)
    if kind == "case":
        pos = {"at": child[1], "case": child[2], "in": position_of(child[3])}
        return _with_writes(pos, child[3], frame)
    _, name, states, parent = child
    items: list[Any] = []
    for state in states:
        inner = state.frame
        if state.out is not None:
            items.append({"out": state.out, "del": state.removed})
        elif inner is not None and (inner.done is not None or inner.child is not None):
            changed, removed = item_output(inner, parent)
            items.append({"in": position_of(inner), "set": changed, "del": removed})
        else:
            items.append(None)
    return {"at": name, "items": items}


def _with_writes(pos: dict[str, Any], inner: Frame, frame: Frame) -> dict[str, Any]:
    """A container that runs on its own copy (merge= other than override) carries its writes."""
    if inner.ctx is not frame.ctx:
        changed, removed = item_output(inner, frame.ctx)
        pos["set"], pos["del"] = changed, removed
    return pos


def check_position(pipeline: Pipeline, pos: Any) -> None:
    """Raise unless ``pos`` is a position this pipeline can resume from.

    A step path that is gone is a :class:`CheckpointMismatchError` naming it
    and listing the pipeline's current steps; anything malformed is an
    :class:`InvalidCheckpointError`, so that resuming never fails midway.
    """
    _check(pipeline, pos, "", pipeline)


def _check(pipeline: Pipeline, pos: Any, prefix: str, root: Pipeline) -> None:
    if pos is None:
        return
    if not isinstance(pos, dict):
        raise InvalidCheckpointError(f"malformed resume position at {prefix or 'top level'}")
    name = pos.get("done", pos.get("at"))
    if not isinstance(name, str):
        raise InvalidCheckpointError(f"malformed resume position at {prefix or 'top level'}")
    node = next((n for n in pipeline.nodes if n.name == name), None)
    if node is None:
        raise CheckpointMismatchError(
            f"the checkpoint's step {prefix + name!r} does not exist in pipeline "
            f"{root.name!r} any more; its steps are now: "
            f"{', '.join(root.step_paths()) or '(none)'}"
        )
    if "done" in pos:
        return
    path = prefix + name + "/"
    if not _writes_ok(pos):
        raise InvalidCheckpointError(f"malformed resume position at {prefix + name!r}")
    if node.kind == "branch":
        key = pos.get("case")
        target = node.case(key) if isinstance(key, str) else None
        if target is None:
            raise CheckpointMismatchError(
                f"the checkpoint is inside case {key!r} of branch {prefix + name!r}, "
                "which the pipeline no longer has"
            )
        _check(target, pos.get("in"), f"{path}{key}/", root)
    elif node.kind == "step" and len(node.items) > 1:
        items = pos.get("items")
        if not isinstance(items, list) or len(items) != len(node.items):
            raise CheckpointMismatchError(
                f"the checkpoint is inside parallel step {prefix + name!r}, whose items "
                "have changed since"
            )
        for item, saved in zip(node.items, items, strict=True):
            _check_item(item, saved, path, root)
    elif node.kind == "step" and isinstance(node.items[0], PipeItem):
        _check(node.items[0].pipeline, pos.get("in"), path, root)
    else:
        raise CheckpointMismatchError(
            f"the checkpoint is inside step {prefix + name!r}, which is no longer a "
            "nested pipeline, branch or parallel step"
        )


def _str_keys(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and k != "$t" for k in value)


def _writes_ok(saved: dict[str, Any]) -> bool:
    """Whether the optional ``"set"`` and ``"del"`` of a position are well formed."""
    if "set" in saved and not _str_keys(saved["set"]):
        return False
    removed = saved.get("del", [])
    return isinstance(removed, list) and all(isinstance(k, str) for k in removed)


def _check_item(item: FnItem | PipeItem, saved: Any, path: str, root: Pipeline) -> None:
    if saved is None:
        return
    bad = InvalidCheckpointError(f"malformed parallel progress in step {path[:-1]!r}")
    if not isinstance(saved, dict):
        raise bad
    if ("out" in saved and not _str_keys(saved["out"])) or not _writes_ok(saved):
        raise bad
    if "out" not in saved:
        if isinstance(item, FnItem):
            raise bad
        _check(item.pipeline, saved.get("in"), path, root)
