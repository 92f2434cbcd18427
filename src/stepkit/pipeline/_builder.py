"""The immutable fluent builder of pipelines, validated at build time.

Every builder call returns a new pipeline and leaves the original unchanged,
so a base pipeline can be shared across threads and requests and extended.
:class:`PipelineBuilder` knows nothing of running: the public
:class:`stepkit.Pipeline` adds the run methods on top of it, one layer up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from stepkit.errors import PipelineDefinitionError
from stepkit.pipeline._options import (
    DEFAULT_NAME,
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
    When,
    checked_options,
    given,
    step_options,
)
from stepkit.pipeline._paths import MAX_NESTING, check_paths, nesting, shape, walk_paths
from stepkit.pipeline._plan import (
    FnItem,
    Item,
    Node,
    PipeItem,
    Policy,
    check_name,
    check_options,
    compile_level,
)

if TYPE_CHECKING:
    from stepkit.pipeline._routes import Routes

_B = TypeVar("_B", bound="PipelineBuilder")

# appending to a shared node list is check-then-act: one builder at a time
_APPEND = threading.Lock()


def _fn_name(fn: Callable[..., Any], position: int) -> str:
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str) or not name or name == "<lambda>" or "/" in name:
        return f"step-{position}"
    return name


class PipelineBuilder(OptionMethods):
    """An immutable, named sequence of steps over a dict context (without run methods).

    Use :class:`stepkit.Pipeline`, which adds ``run``, ``resume`` and friends.
    """

    __slots__ = (
        "_compiled",
        "_depth",
        "_fingerprint",
        "_len",
        "_name",
        "_names",
        "_nodes",
        "_options",
        "_shared",
    )

    # The nodes live in a list shared, append-only, by a chain of builders, so
    # adding a step is O(1) (a pipeline of n steps builds in O(n), not O(n²));
    # each pipeline sees the first ``_len`` of them, and materialises its tuple
    # on first use. ``_names`` maps each shared node's name to its index.
    _name: str
    _shared: list[Node]
    _names: dict[str, int]
    _len: int
    _depth: int
    _nodes: tuple[Node, ...] | None
    _options: Mapping[str, Any]
    _fingerprint: str | None
    _compiled: tuple[tuple[Policy, ...], tuple[Callable[..., Any] | None, ...]] | None

    def __init__(
        self,
        name: str = DEFAULT_NAME,
        *,
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
        """Name the pipeline and set its options (all keyword-only).

        Hooks and ``log`` apply to every run; ``secret`` signs checkpoints;
        ``version``/``migrations``/``renamed`` upgrade old checkpoints; the
        step options (``retries`` ... ``parallel_mode``) are defaults for every step.
        """
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
        self._init(name, (), checked_options(name, options))

    def _init(
        self,
        name: str,
        nodes: tuple[Node, ...],
        options: Mapping[str, Any],
        shared: tuple[list[Node], dict[str, int], int, int] | None = None,
    ) -> None:
        """``shared``: (node list, name index, nesting depth, length) of a chain of builders."""
        if shared is None:
            names = {n.name: i for i, n in enumerate(nodes)}
            shared = list(nodes), names, max(map(nesting, nodes), default=0), len(nodes)
        setattr_ = object.__setattr__
        setattr_(self, "_name", name)
        setattr_(self, "_shared", shared[0])
        setattr_(self, "_names", shared[1])
        setattr_(self, "_depth", shared[2])
        setattr_(self, "_len", shared[3])
        setattr_(self, "_nodes", nodes if len(nodes) == shared[3] else None)
        setattr_(self, "_options", options)
        setattr_(self, "_compiled", None)
        setattr_(self, "_fingerprint", None)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Pipeline is immutable: builder methods return a new one")

    def _with(self: _B, node: Node) -> _B:
        index = self._names.get(node.name)
        if index is not None and index < self._len:
            raise PipelineDefinitionError(
                f"pipeline {self._name!r} already has a step named {node.name!r}; "
                "step names must be unique at each level"
            )
        depth = self._depth
        items = node.items
        if node.cases or len(items) != 1 or type(items[0]) is not FnItem:  # not one function
            depth = max(depth, nesting(node))
        if depth > MAX_NESTING:
            raise PipelineDefinitionError(
                f"step {node.name!r} nests pipelines {depth} levels deep, but a checkpoint "
                f"records at most {MAX_NESTING} levels of nested pipelines, branches and "
                "parallel steps; flatten the structure (run the inner part as a pipeline "
                "of its own)"
            )
        with _APPEND:
            shared, names = self._shared, self._names
            if len(shared) != self._len:  # extending an older pipeline: branch off a copy
                shared = shared[: self._len]
                names = {n.name: i for i, n in enumerate(shared)}
            shared.append(node)
            length = len(shared)
            names[node.name] = length - 1
        new = object.__new__(type(self))
        new._init(self._name, (), self._options, (shared, names, depth, length))
        return new

    # -- building ----------------------------------------------------------

    def step(
        self: _B,
        name: str | Callable[..., Any] | PipelineBuilder,
        /,
        *items: Callable[..., Any] | PipelineBuilder,
        when: When | Unset = UNSET,
        retries: int | Unset = UNSET,
        retry_delay: RetryDelayOption | Unset = UNSET,
        retry_on: RetryOnOption | Unset = UNSET,
        timeout: float | Unset | None = UNSET,
        on_error: ErrorMode | Unset = UNSET,
        merge: MergeMode | Unset = UNSET,
        parallel_mode: ParallelMode | Unset = UNSET,
        log: bool | Unset = UNSET,
    ) -> _B:
        """Add a step: ``step("name", fn_or_pipeline, ...)`` or ``step(fn)``.

        Several items run in parallel, each seeing the context as it was
        before the step; their outputs merge in argument order. The step
        options are described in docs/policies.md.
        """
        if (
            when is UNSET
            and retries is UNSET
            and retry_delay is UNSET
            and retry_on is UNSET
            and timeout is UNSET
            and on_error is UNSET
            and merge is UNSET
            and parallel_mode is UNSET
            and log is UNSET
        ):  # the common call, kept cheap: building is O(1) per step
            options: dict[str, Any] = {}
        else:
            options = step_options(locals())
        if not isinstance(name, str):
            if items:
                raise PipelineDefinitionError(
                    f"step({name!r}, ...): a step with several items needs a name "
                    "as its first argument, e.g. step('fetch', fn_a, fn_b)"
                )
            if isinstance(name, PipelineBuilder):
                items, name = (name,), name.name
            elif callable(name):
                items, name = (name,), _fn_name(name, self._len + 1)
            else:
                raise PipelineDefinitionError(
                    f"step() takes a name and step functions, got {name!r}"
                )
        check_name(name)
        where = f"step {name!r}"
        if not items:
            raise PipelineDefinitionError(f"{where} has no step function or pipeline")
        built = build_items(items, where)
        opts = check_options(options, where) if options else options
        if ("retries" in opts or "timeout" in opts) and all(isinstance(i, PipeItem) for i in built):
            raise PipelineDefinitionError(
                f"{where}: retries= and timeout= apply to step functions; "
                "set them on the steps of the nested pipeline instead"
            )
        check_paths(name, built)
        return self._with(Node(name, "step", built, opts))

    def transform(
        self: _B,
        name: str | Callable[..., Any],
        fn: Callable[..., Any] | None = None,
        /,
        *,
        when: When | Unset = UNSET,
        retries: int | Unset = UNSET,
        retry_delay: RetryDelayOption | Unset = UNSET,
        retry_on: RetryOnOption | Unset = UNSET,
        timeout: float | Unset | None = UNSET,
        on_error: ErrorMode | Unset = UNSET,
        merge: MergeMode | Unset = UNSET,
        parallel_mode: ParallelMode | Unset = UNSET,
        log: bool | Unset = UNSET,
    ) -> _B:
        """Add a step whose function returns the *whole new* context.

        ``transform("name", fn)``, or ``transform(fn)`` named after the function.
        """
        options = step_options(locals())
        if fn is None and callable(name) and not isinstance(name, PipelineBuilder):
            fn, name = name, _fn_name(name, self._len + 1)
        check_name(name)
        if fn is None or not callable(fn) or isinstance(fn, PipelineBuilder):
            raise PipelineDefinitionError(
                f"transform {name!r} needs a function of the context, got {fn!r}"
            )
        opts = check_options(options, f"transform {name!r}")
        assert isinstance(name, str)
        return self._with(Node(name, "transform", (FnItem(name, fn),), opts))

    def branch(
        self: _B,
        name: str,
        /,
        *,
        on: Callable[..., Any],
        cases: Mapping[str, Callable[..., Any] | PipelineBuilder],
        default: Callable[..., Any] | PipelineBuilder | None = None,
        when: When | Unset = UNSET,
        retries: int | Unset = UNSET,
        retry_delay: RetryDelayOption | Unset = UNSET,
        retry_on: RetryOnOption | Unset = UNSET,
        timeout: float | Unset | None = UNSET,
        on_error: ErrorMode | Unset = UNSET,
        merge: MergeMode | Unset = UNSET,
        parallel_mode: ParallelMode | Unset = UNSET,
        log: bool | Unset = UNSET,
    ) -> _B:
        """Add a branch: ``on(ctx)`` returns a key of ``cases`` (or ``None`` to skip).

        The chosen case's steps are named ``<branch>/<case>/<step>``; the
        ``default`` target, if given, is the case ``"default"``.
        """
        options = step_options(locals())
        check_name(name)
        where = f"branch {name!r}"
        if not callable(on):
            raise PipelineDefinitionError(f"{where}: on= must be a callable, got {on!r}")
        if not isinstance(cases, Mapping) or not cases:
            raise PipelineDefinitionError(f"{where}: cases= must be a non-empty mapping")
        built: list[tuple[str, PipelineBuilder]] = []
        for key, target in cases.items():
            check_name(key, f"{where}: case key")
            built.append((key, _target(target, f"{where} case {key!r}")))
        if default is not None:
            if "default" in cases:
                raise PipelineDefinitionError(
                    f"{where}: default= is the case named 'default', but cases= "
                    "already has a key 'default'; rename one of them"
                )
            built.append(("default", _target(default, f"{where} default")))
        opts = check_options(options, where)
        return self._with(Node(name, "branch", (), opts, selector=on, cases=tuple(built)))

    def _replaced(self: _B, options: Mapping[str, Any]) -> _B:
        new = object.__new__(type(self))
        merged = {**self._options, **options}
        new._init(self._name, self.nodes, checked_options(self._name, merged))
        return new

    # -- introspection -----------------------------------------------------

    @property
    def name(self) -> str:
        """The pipeline's name, recorded in its checkpoints."""
        return self._name

    @property
    def version(self) -> str | None:
        """The user's ``version=`` option (as a str), or ``None``."""
        v = self._options.get("version")
        return None if v is None else str(v)

    @property
    def nodes(self) -> tuple[Node, ...]:
        nodes = self._nodes
        if nodes is None:
            nodes = tuple(self._shared[: self._len])
            object.__setattr__(self, "_nodes", nodes)
        return nodes

    @property
    def options(self) -> Mapping[str, Any]:
        return self._options

    def index_of(self, name: str) -> int | None:
        """The position of the top-level step ``name``, or ``None``: O(1), for resuming."""
        index = self._names.get(name)
        if index is None or index >= self._len or self._shared[index].name != name:
            return None
        return index

    def describe(self) -> list[str]:
        """The names of the top-level steps, in order."""
        return [n.name for n in self.nodes]

    def step_paths(self) -> list[str]:
        """Every step path, nested and branch steps included, in order."""
        out: list[str] = []
        walk_paths(self, "", out)
        return out

    @property
    def fingerprint(self) -> str:
        """A hash of the structure (names, kinds, nesting, cases), not the code."""
        if self._fingerprint is None:
            import hashlib  # here, not at import: most pipelines never need their fingerprint
            import json

            text = json.dumps(shape(self), separators=(",", ":"))
            fp = hashlib.sha256(text.encode()).hexdigest()[:16]
            object.__setattr__(self, "_fingerprint", fp)
        assert self._fingerprint is not None
        return self._fingerprint

    def routes(self) -> Routes | None:
        """How the level moves on: ``None`` for a pipeline (the next node, in order).

        A graph's compiled plan returns its :class:`~stepkit.pipeline._routes.Routes`.
        """
        return None

    def policies(self) -> tuple[Policy, ...]:
        """The resolved policy of each top-level node (cached)."""
        return self._compile()[0]

    def plain_steps(self) -> tuple[Callable[..., Any] | None, ...]:
        """Per node, its function if it is a plain step (one function, no policy), else None.

        The engine runs those on a short path; decided once, here, not per step.
        """
        return self._compile()[1]

    def _compile(self) -> tuple[tuple[Policy, ...], tuple[Callable[..., Any] | None, ...]]:
        if self._compiled is None:
            object.__setattr__(self, "_compiled", compile_level(self.nodes, self._options))
        assert self._compiled is not None
        return self._compiled

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name!r}, steps={self.describe()!r})"

    def to_mermaid(self) -> str:
        """A Mermaid flowchart of the whole structure."""
        from stepkit.pipeline._mermaid import to_mermaid

        return to_mermaid(self)


def build_items(items: Sequence[Any], where: str) -> tuple[Item, ...]:
    out: list[Item] = []
    for position, item in enumerate(items, 1):
        if isinstance(item, PipelineBuilder):
            out.append(PipeItem(item))
        elif callable(item):
            name = _fn_name(item, position)
            if name.startswith("step-"):
                name = f"item-{position}"
            out.append(FnItem(name, item))
        else:
            raise PipelineDefinitionError(
                f"{where}: item {position} must be a step function or a Pipeline, "
                f"got {type(item).__name__} {item!r}"
            )
    return tuple(out)


def _target(target: Any, where: str) -> PipelineBuilder:
    if isinstance(target, PipelineBuilder):
        return target
    if callable(target):
        return PipelineBuilder("case").step(target)
    raise PipelineDefinitionError(
        f"{where}: a branch target must be a Pipeline or a step function, got {target!r}"
    )
