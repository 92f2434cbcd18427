"""The immutable fluent builder of graphs: nodes, edges, conditional edges, an entry point.

Like a pipeline, every builder call returns a new graph and leaves the
original unchanged; each call is O(1) (the additions live in a list shared,
append-only, by a chain of builders). What one call can check it checks at
once (names, options, fan-out); the whole graph is checked by
:meth:`GraphBuilder.validate`, also called before the first run
(:mod:`stepkit.graph._plan`).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union

from stepkit.errors import InvalidArgumentError, PipelineDefinitionError
from stepkit.pipeline._builder import PipelineBuilder, build_items
from stepkit.pipeline._options import (
    UNSET,
    ErrorMode,
    Hook,
    MergeMode,
    OptionMethods,
    ParallelMode,
    RetryDelayOption,
    RetryOnOption,
    Secret,
    Unset,
    checked_options,
    given,
    step_options,
)
from stepkit.pipeline._paths import MAX_NESTING, check_paths, nesting
from stepkit.pipeline._plan import Node, PipeItem, check_name, check_options
from stepkit.pipeline._routes import DEFAULT_MAX_STEPS

if TYPE_CHECKING:
    from stepkit.graph._plan import GraphPlan

__all__ = ["END", "START", "GraphBuilder", "Terminal"]


class Terminal(enum.Enum):
    """The type of :data:`START` and :data:`END`: where a graph begins and ends, not nodes."""

    START = "START"
    END = "END"

    def __repr__(self) -> str:
        return self.value

    __str__ = __repr__


#: The source of a graph's entry edge: ``add_edge(START, "first")``.
START: Literal[Terminal.START] = Terminal.START
#: The target of an edge that ends the run: ``add_edge("last", END)``.
END: Literal[Terminal.END] = Terminal.END

Target = Union[str, Literal[Terminal.END]]  # noqa: UP007 (a runtime alias, Python 3.10)


class NodeAdded:
    __slots__ = ("node",)

    def __init__(self, node: Node) -> None:
        self.node = node


class EdgeAdded:
    """``src`` to ``dst``; or, with a ``selector``, to the value of ``path_map`` it picks."""

    __slots__ = ("dst", "path_map", "selector", "src")

    def __init__(
        self,
        src: str | Literal[Terminal.START],
        dst: Target | None,
        selector: Callable[..., Any] | None = None,
        path_map: Mapping[str, Target] | None = None,
    ) -> None:
        self.src, self.dst, self.selector, self.path_map = src, dst, selector, path_map


Change = NodeAdded | EdgeAdded
_G = TypeVar("_G", bound="GraphBuilder")
_APPEND = threading.Lock()  # appending to a shared log is check-then-act


class GraphBuilder(OptionMethods):
    """An immutable graph of named nodes over a dict context (without run methods).

    Use :class:`stepkit.Graph`, which adds ``run``, ``resume`` and friends.
    """

    __slots__ = ("_depth", "_len", "_log", "_max_steps", "_name", "_names", "_options", "_plan_")

    _name: str
    _options: Mapping[str, Any]
    _max_steps: int
    # the additions, shared append-only by a chain of builders (this one sees the first
    # _len); _names: node name -> its index in the log, and _out(src) -> its out-edge's
    _log: list[Change]
    _names: dict[str, int]
    _len: int
    _depth: int
    _plan_: GraphPlan | None

    def __init__(
        self,
        name: str = "graph",
        *,
        max_steps: int = DEFAULT_MAX_STEPS,
        on_step_complete: Hook | None = None,
        on_step_start: Hook | None = None,
        on_error: Hook | None = None,
        log: bool | None = None,
        secret: Secret | None = None,
        version: str | int | None = None,
        migrations: Mapping[str, Callable[[dict[str, Any]], Mapping[str, Any]]] | None = None,
        renamed: Mapping[str, str] | None = None,
        compress_threshold: int | Unset | None = UNSET,
        retries: int | Unset = UNSET,
        retry_delay: RetryDelayOption | Unset = UNSET,
        retry_on: RetryOnOption | Unset = UNSET,
        timeout: float | Unset | None = UNSET,
        merge: MergeMode | Unset = UNSET,
        parallel_mode: ParallelMode | Unset = UNSET,
    ) -> None:
        """Name the graph, set its step limit and the options a ``Pipeline`` takes.

        ``max_steps`` counts node executions over the whole run (resumes
        included); the step options (``retries`` ... ``parallel_mode``) are
        defaults for every node.
        """
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise InvalidArgumentError(
                f"Graph({name!r}): max_steps= must be an int >= 1 (how many node executions "
                f"a run may make, loops included), got {max_steps!r}"
            )
        options = given(
            on_step_complete=on_step_complete,
            on_step_start=on_step_start,
            on_error=on_error,
            log=log,
            secret=secret,
            version=version,
            migrations=migrations,
            renamed=renamed,
            compress_threshold=compress_threshold,
            retries=retries,
            retry_delay=retry_delay,
            retry_on=retry_on,
            timeout=timeout,
            merge=merge,
            parallel_mode=parallel_mode,
        )
        checked = checked_options(name, options, "Graph", unnamed="graph")
        self._init(name, checked, max_steps, ([], {}, 0, 0))

    def _init(
        self,
        name: str,
        options: Mapping[str, Any],
        max_steps: int,
        shared: tuple[list[Change], dict[str, int], int, int],
    ) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "_name", name)
        setattr_(self, "_options", options)
        setattr_(self, "_max_steps", max_steps)
        setattr_(self, "_log", shared[0])
        setattr_(self, "_names", shared[1])
        setattr_(self, "_depth", shared[2])
        setattr_(self, "_len", shared[3])
        setattr_(self, "_plan_", None)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Graph is immutable: builder methods return a new one")

    def _replaced(self: _G, options: Mapping[str, Any]) -> _G:
        """A copy with these options over its own (same nodes and edges, same step limit)."""
        new = object.__new__(type(self))
        merged = checked_options(self._name, {**self._options, **options}, "Graph", "graph")
        new._init(
            self._name, merged, self._max_steps, (self._log, self._names, self._depth, self._len)
        )
        return new

    def _with(self: _G, change: Change, key: str, depth: int = 0) -> _G:
        """A new graph with ``change`` appended; ``key`` indexes it (a node, an edge's source)."""
        with _APPEND:
            log, names = self._log, self._names
            if len(log) != self._len:  # extending an older graph: branch off a copy
                log = log[: self._len]
                names = _index(log)
            log.append(change)
            names[key] = len(log) - 1
            length = len(log)
        new = object.__new__(type(self))
        shared = (log, names, max(self._depth, depth), length)
        new._init(self._name, self._options, self._max_steps, shared)
        return new

    def _has(self, key: str) -> bool:
        index = self._names.get(key)
        return index is not None and index < self._len

    # -- building ----------------------------------------------------------

    def add_node(
        self: _G,
        name: str | Callable[..., Any] | PipelineBuilder,
        /,
        *items: Callable[..., Any] | PipelineBuilder,
        retries: int | Unset = UNSET,
        retry_delay: RetryDelayOption | Unset = UNSET,
        retry_on: RetryOnOption | Unset = UNSET,
        timeout: float | Unset | None = UNSET,
        on_error: ErrorMode | Unset = UNSET,
        merge: MergeMode | Unset = UNSET,
        parallel_mode: ParallelMode | Unset = UNSET,
        log: bool | Unset = UNSET,
    ) -> _G:
        """Add a node: ``add_node("name", fn_or_pipeline, ...)`` or ``add_node(fn)``.

        A node is a step function, a nested ``Pipeline`` (its steps are named
        ``node/inner``) or several items run in parallel, with the step
        options of ``Pipeline.step`` except ``when=``: routing belongs to edges.
        """
        if not isinstance(name, str):
            if items:
                raise PipelineDefinitionError(
                    f"add_node({name!r}, ...): a node with several items needs a name as "
                    "its first argument, e.g. add_node('fetch', fn_a, fn_b)"
                )
            items, name = (name,), _node_name(name)
        check_name(name, "node name")
        where = f"node {name!r}"
        if self._has(name):
            raise PipelineDefinitionError(
                f"graph {self._name!r} already has a node named {name!r}; node names must be "
                "unique (add_node returns a new graph: add each node once)"
            )
        if not items:
            raise PipelineDefinitionError(f"{where} has no step function or pipeline")
        options = step_options(locals())
        built = build_items(items, where)
        opts = check_options(options, where) if options else options
        if ("retries" in opts or "timeout" in opts) and all(isinstance(i, PipeItem) for i in built):
            raise PipelineDefinitionError(
                f"{where}: retries= and timeout= apply to step functions; "
                "set them on the steps of the nested pipeline instead"
            )
        check_paths(name, built)
        node = Node(name, "step", built, opts)
        depth = nesting(node)
        if depth > MAX_NESTING:
            raise PipelineDefinitionError(
                f"{where} nests pipelines {depth} levels deep, more than the {MAX_NESTING} a "
                "checkpoint records; flatten the structure"
            )
        return self._with(NodeAdded(node), name, depth)

    def add_edge(
        self: _G, src: str | Literal[Terminal.START], dst: str | Literal[Terminal.END]
    ) -> _G:
        """Add an edge: after ``src`` (or at ``START``) the run goes on to ``dst`` (or ``END``)."""
        _check_src(src, "add_edge")
        if dst is not END:
            if _is_start(dst):
                raise PipelineDefinitionError(
                    f"add_edge({src!r}, START): START is where the graph begins, not a node "
                    "to go to; name the node instead"
                )
            check_name(dst, "edge target")
        return self._with(EdgeAdded(src, dst), self._out_key(src, "add_edge"))

    def set_entry_point(self: _G, name: str) -> _G:
        """The node the run starts with: the same as ``add_edge(START, name)``."""
        return self.add_edge(START, name)

    def add_conditional_edges(
        self: _G,
        src: str,
        selector: Callable[..., Any],
        path_map: Mapping[str, str | Literal[Terminal.END]],
    ) -> _G:
        """After ``src``, ``selector(ctx)`` (sync or async) picks a key of ``path_map``.

        The run goes on to that key's node (or ``END``). The selector is called
        when the run leaves ``src``, on the context as it is then; after a stop
        at ``src``, on resume, with the resume's ``override_data`` merged in.
        """
        if _is_start(src):
            raise PipelineDefinitionError(
                "add_conditional_edges(START, ...): a graph starts at one entry node; "
                "set_entry_point(name) (or add_edge(START, name)) and route from that node"
            )
        _check_src(src, "add_conditional_edges")
        where = f"add_conditional_edges({src!r}, ...)"
        if not callable(selector):
            raise PipelineDefinitionError(
                f"{where}: the selector must be a callable of the context, got {selector!r}"
            )
        if not isinstance(path_map, Mapping) or not path_map:
            raise PipelineDefinitionError(
                f"{where}: path_map must be a non-empty mapping of the selector's keys to "
                f"node names or END, got {path_map!r}"
            )
        for key, target in path_map.items():
            if not isinstance(key, str):
                raise PipelineDefinitionError(
                    f"{where}: the keys of path_map are what the selector returns and must "
                    f"be str, got {key!r}"
                )
            if target is not END and not (isinstance(target, str) and target):
                raise PipelineDefinitionError(
                    f"{where}: path_map[{key!r}] must be a node name or END, got {target!r}"
                )
        change = EdgeAdded(src, None, selector, dict(path_map))
        return self._with(change, self._out_key(src, "add_conditional_edges"))

    def _out_key(self, src: str | Literal[Terminal.START], call: str) -> str:
        """The log key of ``src``'s out-edge; a second one is ambiguous fan-out."""
        key = _out(src)
        if self._has(key):
            earlier = self._log[self._names[key]]
            assert isinstance(earlier, EdgeAdded)
            if src is START:
                raise PipelineDefinitionError(
                    f"graph {self._name!r} already has an entry point ({earlier.dst!r}); "
                    "a graph starts at one node: keep one add_edge(START, ...) / "
                    "set_entry_point(...)"
                )
            has = f"an edge to {earlier.dst!r}" if earlier.selector is None else "conditional edges"
            raise PipelineDefinitionError(
                f"{call}({src!r}, ...): node {src!r} already has {has}; a node is left by "
                "one edge or by one set of conditional edges. To choose between several "
                "nodes, use a single add_conditional_edges with every target in its path_map"
            )
        return key

    # -- introspection -----------------------------------------------------

    @property
    def name(self) -> str:
        """The graph's name, recorded in its checkpoints."""
        return self._name

    @property
    def version(self) -> str | None:
        """The user's ``version=`` option (as a str), or ``None``."""
        v = self._options.get("version")
        return None if v is None else str(v)

    @property
    def max_steps(self) -> int:
        """How many node executions a run may make (resumes included)."""
        return self._max_steps

    @property
    def options(self) -> Mapping[str, Any]:
        return self._options

    def changes(self) -> list[Change]:
        """What was added, in order."""
        return self._log[: self._len]

    def describe(self) -> list[str]:
        """The names of the nodes, in the order they were added."""
        return [c.node.name for c in self.changes() if isinstance(c, NodeAdded)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name!r}, nodes={self.describe()!r})"


def _node_name(item: object) -> str:
    if isinstance(item, PipelineBuilder):
        return item.name
    name = getattr(item, "__name__", None)
    if not callable(item):
        raise PipelineDefinitionError(f"add_node() takes a name and step functions, got {item!r}")
    if not isinstance(name, str) or not name or name == "<lambda>":
        raise PipelineDefinitionError(
            f"add_node({item!r}): edges refer to nodes by name, and this function has none "
            "to take; name the node: add_node('review', fn)"
        )
    return name


def _is_start(value: object) -> bool:
    """``value is START``, for arguments typed otherwise (callers are not always typed)."""
    return value is START


def _check_src(src: object, call: str) -> None:
    if src is END:
        raise PipelineDefinitionError(
            f"{call}(END, ...): END is where the run finishes; no edge leaves it"
        )
    if src is not START:
        check_name(src, "edge source")


def _index(log: list[Change]) -> dict[str, int]:
    names: dict[str, int] = {}
    for i, change in enumerate(log):
        if isinstance(change, NodeAdded):
            names[change.node.name] = i
        else:
            names[_out(change.src)] = i
    return names


def _out(src: str | Literal[Terminal.START]) -> str:
    """The index key of an edge's source (node names hold no '/', so keys never collide)."""
    return "/start" if src is START else "/out/" + src
