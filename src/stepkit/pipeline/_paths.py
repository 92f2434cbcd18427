"""Structure of a pipeline as data: step paths, path collisions, the fingerprint's shape."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from stepkit.errors import PipelineDefinitionError
from stepkit.pipeline._plan import FnItem, Item, Node, PipeItem

if TYPE_CHECKING:
    from stepkit.pipeline._builder import PipelineBuilder as Pipeline


#: How deeply nested pipelines, branch cases and parallel steps may nest. A
#: checkpoint's resume position grows by up to three JSON levels per level of
#: nesting and the codec reads at most 64, so deeper structures are refused
#: when built rather than when their first checkpoint is taken.
MAX_NESTING = 16


def nesting(node: Node) -> int:
    """How many levels of pipelines ``node`` holds below its own level (0 for a function)."""
    if not node.cases and all(type(i) is FnItem for i in node.items):
        return 0  # functions only: the common case, without building a list
    inner = [i.pipeline for i in node.items if isinstance(i, PipeItem)]
    inner.extend(target for _key, target in node.cases)
    return max((1 + p._depth for p in inner), default=0)


def check_paths(name: str, items: tuple[Item, ...]) -> None:
    """Raise if two parallel items of step ``name`` would produce the same step path."""
    if len(items) == 1:
        return
    seen: set[str] = set()
    for item in items:
        paths: Iterable[str] = (
            [item.name] if isinstance(item, FnItem) else item.pipeline.step_paths()
        )
        for path in paths:
            if path in seen:
                raise PipelineDefinitionError(
                    f"step {name!r}: two parallel items produce the step path "
                    f"'{name}/{path}'; rename one of them"
                )
            seen.add(path)


def walk_paths(pipeline: Pipeline, prefix: str, out: list[str]) -> None:
    """Append every step path of ``pipeline`` (run order) to ``out``."""
    for node in pipeline.nodes:
        path = prefix + node.name
        if node.kind == "branch":
            for key, target in node.cases:
                walk_paths(target, f"{path}/{key}/", out)
        elif node.kind == "step" and (node.parallel or isinstance(node.items[0], PipeItem)):
            for item in node.items:
                if isinstance(item, PipeItem):
                    walk_paths(item.pipeline, path + "/", out)
                else:
                    out.append(f"{path}/{item.name}")
        out.append(path)


def shape(pipeline: Pipeline) -> list[Any]:
    """The structure as JSON-ready lists: names, kinds, nesting, cases (not code)."""
    out: list[Any] = []
    for node in pipeline.nodes:
        if node.kind == "branch":
            out.append([node.name, "branch", [[k, shape(t)] for k, t in node.cases]])
        else:
            # a lone function's name is not part of any step path, so not of the shape
            items = [
                ["fn", i.name if node.parallel else ""]
                if isinstance(i, FnItem)
                else ["pipe", shape(i.pipeline)]
                for i in node.items
            ]
            out.append([node.name, node.kind, items])
    return out
