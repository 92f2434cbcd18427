"""The resume position: where a run is, as small typed values, and its JSON form.

One owner for the position: it is produced from the running frames
(:func:`position_of`), serialised to and from the JSON tree stored in
checkpoints and stores (:func:`to_tree`, :func:`from_tree`), renamed for
``Pipeline(renamed=...)`` (:func:`rename_position`) and checked against a
pipeline before a resume (:func:`check_position`). At each level a position
is ``None`` (nothing done yet), :class:`Done`, or inside a container:
:class:`InNested`, :class:`InCase` or :class:`InParallel`. At a graph level
it is an :class:`InGraph` around one of those: the node executions so far.

The JSON tree, unchanged since the first checkpoints: ``{"done": name}``;
``{"at": name, "in": ...}`` (nested); ``{"at": name, "case": key, "in": ...}``
(branch), both with ``"set"``/``"del"`` when the container runs on its own
copy of the context; ``{"at": name, "items": [...]}`` (parallel), an item
being ``null``, ``{"out": {...}, "del": [...]}`` or ``{"in": ..., "set":
{...}, "del": [...]}``. A graph level adds ``"steps": n`` (and ``"limit": m``
when a limit was given on resume, ``"end": true`` once it routed to END) to
its level's tree: ``{"done": "review", "steps": 3}``. Pipeline trees never
hold those keys, so they are unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, final

from stepkit.engine._frames import Frame, item_output
from stepkit.errors import CheckpointMismatchError, InvalidCheckpointError
from stepkit.pipeline._plan import FnItem, PipeItem

if TYPE_CHECKING:
    from stepkit.pipeline._builder import PipelineBuilder as Pipeline

__all__ = [
    "Done",
    "InCase",
    "InGraph",
    "InNested",
    "InParallel",
    "ItemDone",
    "ItemRunning",
    "Position",
    "Writes",
    "check_position",
    "from_tree",
    "position_of",
    "position_tree",
    "rename_position",
    "to_tree",
]


@final
@dataclass(frozen=True, slots=True)
class Writes:
    """What the steps of a frame on its own copy of the context wrote, and removed."""

    changed: Mapping[str, Any]
    removed: tuple[str, ...] = ()


@final
@dataclass(frozen=True, slots=True)
class Done:
    """Node ``name`` of this level has completed."""

    name: str


@final
@dataclass(frozen=True, slots=True)
class InNested:
    """Inside the nested pipeline of step ``name``, at ``inner``."""

    name: str
    inner: Position | None
    writes: Writes | None = None  # set when the step has a merge= rule other than override


@final
@dataclass(frozen=True, slots=True)
class InCase:
    """Inside case ``case`` of branch ``name``, at ``inner``."""

    name: str
    case: str
    inner: Position | None
    writes: Writes | None = None


@final
@dataclass(frozen=True, slots=True)
class ItemDone:
    """A parallel item that finished: its output and the keys it removed."""

    out: Mapping[str, Any]
    removed: tuple[str, ...] = ()


@final
@dataclass(frozen=True, slots=True)
class ItemRunning:
    """A nested parallel item stopped midway: its position and what it wrote so far."""

    inner: Position | None
    writes: Writes


@final
@dataclass(frozen=True, slots=True)
class InParallel:
    """Inside parallel step ``name``: one progress per item (``None``: not started)."""

    name: str
    items: tuple[ItemDone | ItemRunning | None, ...]


NodePosition = Done | InNested | InCase | InParallel


@final
@dataclass(frozen=True, slots=True)
class InGraph:
    """A graph level: ``steps`` node executions so far, at ``at``.

    ``Done(x)`` at a graph level means node ``x`` completed and was not yet
    routed: its out-edge is decided on resume, on the context as it is then.
    ``limit`` is a ``max_steps`` given on resume (it holds for the rest of the
    run); ``ended`` says the level routed to END.
    """

    steps: int
    at: NodePosition | None
    limit: int | None = None
    ended: bool = False


Position = NodePosition | InGraph


# -- produced from the frames -------------------------------------------------------


def position_of(frame: Frame) -> Position | None:
    """The resume position of ``frame`` and everything running below it."""
    walk = frame.walk
    if walk is not None:
        return InGraph(walk.steps, _node_position(frame), walk.given, walk.ended)
    return _node_position(frame)


def _node_position(frame: Frame) -> NodePosition | None:
    child = frame.child
    if child is None:
        return None if frame.done is None else Done(frame.done)
    kind = child[0]
    if kind == "nest":
        return InNested(child[1], position_of(child[2]), _writes_of(child[2], frame))
    if kind == "case":
        return InCase(child[1], child[2], position_of(child[3]), _writes_of(child[3], frame))
    _, name, states, parent = child
    items: list[ItemDone | ItemRunning | None] = []
    for state in states:
        inner = state.frame
        if state.out is not None:
            items.append(ItemDone(state.out, tuple(state.removed)))
        elif inner is not None and (inner.done is not None or inner.child is not None):
            changed, removed = item_output(inner, parent)
            items.append(ItemRunning(position_of(inner), Writes(changed, tuple(removed))))
        else:
            items.append(None)
    return InParallel(name, tuple(items))


def _writes_of(inner: Frame, frame: Frame) -> Writes | None:
    """A container on its own copy of the context (merge= not override) carries its writes."""
    if inner.ctx is frame.ctx:
        return None
    changed, removed = item_output(inner, frame.ctx)
    return Writes(changed, tuple(removed))


def position_tree(frame: Frame) -> Any:
    """The JSON tree of ``frame``'s position (the common top-level case without a walk)."""
    if frame.child is None and frame.walk is None:
        return None if frame.done is None else {"done": frame.done}
    return to_tree(position_of(frame))


# -- the JSON tree ------------------------------------------------------------------


def to_tree(pos: Position | None) -> Any:
    """The JSON-ready tree of a position (values in ``set``/``out`` left to the codec)."""
    if pos is None:
        return None
    if type(pos) is Done:
        return {"done": pos.name}
    if type(pos) is InGraph:
        tree: dict[str, Any] = to_tree(pos.at) or {}
        tree["steps"] = pos.steps
        if pos.limit is not None:
            tree["limit"] = pos.limit
        if pos.ended:
            tree["end"] = True
        return tree
    if type(pos) is InNested:
        return _add_writes({"at": pos.name, "in": to_tree(pos.inner)}, pos.writes)
    if type(pos) is InCase:
        case = {"at": pos.name, "case": pos.case, "in": to_tree(pos.inner)}
        return _add_writes(case, pos.writes)
    assert type(pos) is InParallel
    return {"at": pos.name, "items": [_item_tree(item) for item in pos.items]}


def _add_writes(tree: dict[str, Any], writes: Writes | None) -> dict[str, Any]:
    if writes is not None:
        tree["set"], tree["del"] = writes.changed, list(writes.removed)
    return tree


def _item_tree(item: ItemDone | ItemRunning | None) -> Any:
    if item is None:
        return None
    if type(item) is ItemDone:
        return {"out": item.out, "del": list(item.removed)}
    assert type(item) is ItemRunning
    return {"in": to_tree(item.inner), "set": item.writes.changed, "del": list(item.writes.removed)}


def from_tree(tree: Any, prefix: str = "") -> Position | None:
    """Read a position from its JSON tree (decoded values); malformed -> InvalidCheckpointError.

    Only the structure is checked here; whether the pipeline has these steps
    is :func:`check_position`'s question.
    """
    if tree is None:
        return None
    bad = InvalidCheckpointError(f"malformed resume position at {prefix or 'top level'}")
    if not isinstance(tree, dict):
        raise bad
    if "steps" in tree:
        return _graph_level(tree, prefix, bad)
    if "done" in tree:
        if not isinstance(tree["done"], str):
            raise bad
        return Done(tree["done"])
    name = tree.get("at")
    if not isinstance(name, str):
        raise bad
    here = prefix + name + "/"
    writes = None
    if "set" in tree or "del" in tree:
        if not _writes_ok(tree):
            raise InvalidCheckpointError(f"malformed resume position at {prefix + name!r}")
        writes = Writes(tree.get("set", {}), tuple(tree.get("del", ())))
    if "case" in tree:
        case = tree["case"]
        if not isinstance(case, str):
            raise InvalidCheckpointError(f"malformed branch case at {prefix + name!r}")
        return InCase(name, case, from_tree(tree.get("in"), f"{here}{case}/"), writes)
    if "items" in tree:
        items = tree["items"]
        if not isinstance(items, list):
            raise _items_changed(prefix + name)
        return InParallel(name, tuple(_item(saved, here) for saved in items))
    return InNested(name, from_tree(tree.get("in"), here), writes)


def _graph_level(tree: dict[str, Any], prefix: str, bad: Exception) -> InGraph:
    steps, limit, ended = tree["steps"], tree.get("limit"), tree.get("end", False)
    if (
        type(steps) is not int
        or steps < 0
        or (limit is not None and (type(limit) is not int or limit < 1))
        or (ended is not True and ended is not False)
    ):
        raise bad
    rest = {k: v for k, v in tree.items() if k not in _GRAPH_KEYS}
    at = from_tree(rest, prefix) if rest else None
    assert type(at) is not InGraph  # its tree has no "steps" left
    return InGraph(steps, at, limit, ended)


_GRAPH_KEYS = frozenset({"steps", "limit", "end"})


def _item(saved: Any, here: str) -> ItemDone | ItemRunning | None:
    if saved is None:
        return None
    if (
        not isinstance(saved, dict)
        or ("out" in saved and not _str_keys(saved["out"]))
        or not _writes_ok(saved)
    ):
        raise InvalidCheckpointError(f"malformed parallel progress in step {here[:-1]!r}")
    removed = tuple(saved.get("del", ()))
    if "out" in saved:
        return ItemDone(saved["out"], removed)
    return ItemRunning(from_tree(saved.get("in"), here), Writes(saved.get("set", {}), removed))


def _str_keys(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and k != "$t" for k in value)


def _writes_ok(saved: dict[str, Any]) -> bool:
    """Whether the optional ``"set"`` and ``"del"`` of a tree are well formed."""
    if "set" in saved and not _str_keys(saved["set"]):
        return False
    removed = saved.get("del", [])
    return isinstance(removed, list) and all(isinstance(k, str) for k in removed)


def _items_changed(path: str) -> CheckpointMismatchError:
    return CheckpointMismatchError(
        f"the checkpoint is inside parallel step {path!r}, whose items have changed since"
    )


# -- renamed steps ------------------------------------------------------------------


def rename_position(
    pos: Position | None, renamed: Mapping[str, str], prefix: str = ""
) -> Position | None:
    """Rewrite the names in a position according to ``renamed`` (old -> new full paths).

    ``renamed`` may rename a step within its parent, and a branch case; moving
    a step to another parent is a :class:`CheckpointMismatchError`.
    """
    if pos is None or not renamed:
        return pos
    if type(pos) is InGraph:
        at = rename_position(pos.at, renamed, prefix)
        assert type(at) is not InGraph
        return InGraph(pos.steps, at, pos.limit, pos.ended)
    old_path = prefix + pos.name
    name = pos.name
    if old_path in renamed:
        new_path = renamed[old_path]
        new_prefix, _, name = new_path.rpartition("/")
        if (new_prefix + "/" if new_prefix else "") != prefix:
            raise CheckpointMismatchError(
                f"renamed={{{old_path!r}: {new_path!r}}} moves the step to another parent; "
                "renamed= can only rename a step within its parent"
            )
    if type(pos) is Done:
        return Done(name)
    here = prefix + name + "/"
    if type(pos) is InCase:
        case_path = old_path + "/" + pos.case
        case = renamed[case_path].rpartition("/")[2] if case_path in renamed else pos.case
        base = _rebase(renamed, case_path, here + case)
        return InCase(name, case, rename_position(pos.inner, base, here + case + "/"), pos.writes)
    base = _rebase(renamed, old_path, prefix + name)
    if type(pos) is InNested:
        return InNested(name, rename_position(pos.inner, base, here), pos.writes)
    assert type(pos) is InParallel
    return InParallel(
        name,
        tuple(
            ItemRunning(rename_position(item.inner, base, here), item.writes)
            if type(item) is ItemRunning
            else item
            for item in pos.items
        ),
    )


def _rebase(renamed: Mapping[str, str], old: str, new: str) -> dict[str, str]:
    """Renames below ``old`` expressed as if ``old`` had already been renamed to ``new``."""
    if old == new:
        return dict(renamed)
    out: dict[str, str] = {}
    for k, v in renamed.items():
        out[new + k[len(old) :] if k.startswith(old + "/") else k] = v
    return out


# -- checked against a pipeline -----------------------------------------------------


def check_position(pipeline: Pipeline, pos: Position | None) -> None:
    """Raise unless ``pos`` is a position this pipeline can resume from.

    A step path that is gone is a :class:`CheckpointMismatchError` naming it
    and listing the pipeline's current steps; a function item recorded as
    running is an :class:`InvalidCheckpointError` (it cannot be). Resuming
    therefore never fails midway.
    """
    _check(pipeline, pos, "", pipeline)


def _level(prefix: str) -> str:
    return f"step {prefix[:-1]!r}" if prefix else "the top level"


def _check(pipeline: Pipeline, pos: Position | None, prefix: str, root: Pipeline) -> None:
    graph = pipeline.routes() is not None
    if type(pos) is InGraph:
        if not graph:
            raise CheckpointMismatchError(
                f"the checkpoint was taken in a graph at {_level(prefix)}, but "
                f"{root.name!r} has a pipeline there now"
            )
        pos = pos.at
    elif graph and pos is not None:
        raise CheckpointMismatchError(
            f"the checkpoint was taken in a pipeline at {_level(prefix)}, but "
            f"{root.name!r} has a graph there now"
        )
    if pos is None:
        return
    name = pos.name
    index = pipeline.index_of(name)
    node = None if index is None else pipeline.nodes[index]
    if node is None:
        raise CheckpointMismatchError(
            f"the checkpoint's step {prefix + name!r} does not exist in pipeline "
            f"{root.name!r} any more; its steps are now: "
            f"{', '.join(root.step_paths()) or '(none)'}"
        )
    if type(pos) is Done:
        return
    path = prefix + name + "/"
    if node.kind == "branch":
        key = pos.case if type(pos) is InCase else None
        target = node.case(key) if key is not None else None
        if target is None:
            raise CheckpointMismatchError(
                f"the checkpoint is inside case {key!r} of branch {prefix + name!r}, "
                "which the pipeline no longer has"
            )
        assert type(pos) is InCase
        _check(target, pos.inner, f"{path}{key}/", root)
    elif node.kind == "step" and len(node.items) > 1:
        if type(pos) is not InParallel or len(pos.items) != len(node.items):
            raise _items_changed(prefix + name)
        for item, saved in zip(node.items, pos.items, strict=True):
            if type(saved) is ItemRunning:
                if isinstance(item, FnItem):
                    raise InvalidCheckpointError(
                        f"malformed parallel progress in step {prefix + name!r}"
                    )
                _check(item.pipeline, saved.inner, path, root)
    elif node.kind == "step" and isinstance(node.items[0], PipeItem) and type(pos) is InNested:
        _check(node.items[0].pipeline, pos.inner, path, root)
    else:
        raise CheckpointMismatchError(
            f"the checkpoint is inside step {prefix + name!r}, which is no longer a "
            "nested pipeline, branch or parallel step"
        )
