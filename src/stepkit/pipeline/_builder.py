"""``Pipeline``: the immutable fluent builder, validated at build time.

Every builder call returns a new pipeline and leaves the original unchanged,
so a base pipeline can be shared across threads and requests and extended.
Running is delegated to :mod:`stepkit.engine._entry`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from stepkit.checkpoints._envelope import normalize_keys
from stepkit.checkpoints._migrations import check_migration_options
from stepkit.errors import InvalidArgumentError, PipelineDefinitionError
from stepkit.pipeline._paths import check_paths, shape, walk_paths
from stepkit.pipeline._plan import (
    FnItem,
    Item,
    Node,
    PipeItem,
    Policy,
    as_hooks,
    check_name,
    check_options,
    resolve_policy,
)

if TYPE_CHECKING:
    from stepkit.events import RunResult

PIPELINE_OPTIONS = frozenset(
    {
        "on_step_complete",
        "on_step_start",
        "on_error",
        "log",
        "secret",
        "version",
        "migrations",
        "renamed",
        "compress_threshold",
        # step-policy defaults
        "retries",
        "retry_delay",
        "retry_on",
        "timeout",
        "merge",
        "parallel_mode",
    }
)
_HOOK_OPTIONS = ("on_step_complete", "on_step_start", "on_error")
_POLICY_DEFAULTS = ("retries", "retry_delay", "retry_on", "timeout", "merge", "parallel_mode")


def _fn_name(fn: Callable[..., Any], position: int) -> str:
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str) or not name or name == "<lambda>" or "/" in name:
        return f"step-{position}"
    return name


class Pipeline:
    """An immutable, named sequence of steps over a dict context.

    >>> calc = Pipeline("calc").step("add-one", lambda ctx: {"a": ctx["a"] + 1})
    >>> dict(calc.run({"a": 1}))
    {'a': 2}
    """

    __slots__ = ("_compiled", "_fingerprint", "_name", "_nodes", "_options")

    _name: str
    _nodes: tuple[Node, ...]
    _options: Mapping[str, Any]
    _fingerprint: str | None
    _compiled: tuple[tuple[Policy, ...], tuple[Callable[..., Any] | None, ...]] | None

    def __init__(self, name: str = "pipeline", **options: Any) -> None:
        check_name(name, "pipeline name")
        unknown = set(options) - PIPELINE_OPTIONS
        if unknown:
            raise PipelineDefinitionError(
                f"Pipeline({name!r}): unknown option(s) {', '.join(sorted(unknown))}; "
                f"valid options are {', '.join(sorted(PIPELINE_OPTIONS))}"
            )
        opts = dict(options)
        for hook in _HOOK_OPTIONS:
            if hook in opts:
                opts[hook] = as_hooks(opts[hook], hook)
        defaults = {k: opts[k] for k in _POLICY_DEFAULTS if k in opts}
        opts.update(check_options(defaults, f"Pipeline({name!r})"))
        version = opts.get("version")
        if version is not None and not isinstance(version, str | int):
            raise PipelineDefinitionError(f"version= must be a str or int, got {version!r}")
        threshold = opts.get("compress_threshold")
        if threshold is not None and (
            isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0
        ):
            raise PipelineDefinitionError(
                f"compress_threshold= must be a size in bytes (int >= 0) or None, got {threshold!r}"
            )
        check_migration_options(opts, name)
        if "secret" in opts:
            try:  # normalised once: a tuple of keys, newest first
                opts["secret"] = normalize_keys(opts["secret"])
            except InvalidArgumentError as exc:
                raise PipelineDefinitionError(f"Pipeline({name!r}): {exc}") from None
        self._init(name, (), opts)

    def _init(self, name: str, nodes: tuple[Node, ...], options: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_nodes", nodes)
        object.__setattr__(self, "_options", options)
        object.__setattr__(self, "_compiled", None)
        object.__setattr__(self, "_fingerprint", None)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Pipeline is immutable: builder methods return a new one")

    def _with(self, node: Node) -> Pipeline:
        if any(n.name == node.name for n in self._nodes):
            raise PipelineDefinitionError(
                f"pipeline {self._name!r} already has a step named {node.name!r}; "
                "step names must be unique at each level"
            )
        new = object.__new__(Pipeline)
        new._init(self._name, (*self._nodes, node), self._options)
        return new

    # -- building ----------------------------------------------------------

    def step(self, name: Any, *items: Any, **options: Any) -> Pipeline:
        """Add a step: ``step("name", fn_or_pipeline, ...)`` or ``step(fn)``.

        Several items run in parallel, each seeing the context as it was
        before the step; their outputs merge in argument order.
        """
        if not isinstance(name, str):
            if items:
                raise PipelineDefinitionError(
                    f"step({name!r}, ...): a step with several items needs a name "
                    "as its first argument, e.g. step('fetch', fn_a, fn_b)"
                )
            if isinstance(name, Pipeline):
                items, name = (name,), name.name
            elif callable(name):
                items, name = (name,), _fn_name(name, len(self._nodes) + 1)
            else:
                raise PipelineDefinitionError(
                    f"step() takes a name and step functions, got {name!r}"
                )
        check_name(name)
        where = f"step {name!r}"
        if not items:
            raise PipelineDefinitionError(f"{where} has no step function or pipeline")
        built = _items(items, where)
        opts = check_options(options, where)
        if all(isinstance(i, PipeItem) for i in built) and ("retries" in opts or "timeout" in opts):
            raise PipelineDefinitionError(
                f"{where}: retries= and timeout= apply to step functions; "
                "set them on the steps of the nested pipeline instead"
            )
        check_paths(name, built)
        return self._with(Node(name, "step", built, opts))

    def transform(self, name: str, fn: Callable[..., Any], **options: Any) -> Pipeline:
        """Add a step whose function returns the *whole new* context."""
        check_name(name)
        if not callable(fn) or isinstance(fn, Pipeline):
            raise PipelineDefinitionError(
                f"transform {name!r} needs a function of the context, got {fn!r}"
            )
        opts = check_options(options, f"transform {name!r}")
        return self._with(Node(name, "transform", (FnItem(name, fn),), opts))

    def branch(
        self,
        name: str,
        *,
        on: Callable[..., Any],
        cases: Mapping[str, Any],
        default: Any = None,
        **options: Any,
    ) -> Pipeline:
        """Add a branch: ``on(ctx)`` returns a key of ``cases`` (or ``None`` to skip).

        The chosen case's steps are named ``<branch>/<case>/<step>``; the
        ``default`` target, if given, is the case ``"default"``.
        """
        check_name(name)
        where = f"branch {name!r}"
        if not callable(on):
            raise PipelineDefinitionError(f"{where}: on= must be a callable, got {on!r}")
        if not isinstance(cases, Mapping) or not cases:
            raise PipelineDefinitionError(f"{where}: cases= must be a non-empty mapping")
        built: list[tuple[str, Pipeline]] = []
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

    def with_options(self, **options: Any) -> Pipeline:
        """A copy with these pipeline options replaced (same steps)."""
        new = Pipeline(self._name, **{**self._options, **options})
        new._init(self._name, self._nodes, new._options)
        return new

    def with_hooks(
        self,
        *,
        on_step_complete: Callable[..., Any] | None = None,
        on_step_start: Callable[..., Any] | None = None,
        on_error: Callable[..., Any] | None = None,
    ) -> Pipeline:
        """A copy with these handlers added after the existing ones."""
        added = {
            "on_step_complete": on_step_complete,
            "on_step_start": on_step_start,
            "on_error": on_error,
        }
        merged = {
            name: (*self._options.get(name, ()), *as_hooks(hook, name))
            for name, hook in added.items()
            if hook is not None
        }
        return self.with_options(**merged)

    def without_hooks(self, *handlers: Callable[..., Any]) -> Pipeline:
        """A copy without these handlers (in every hook list they were added to)."""
        kept = {
            name: tuple(h for h in self._options[name] if h not in handlers)
            for name in _HOOK_OPTIONS
            if name in self._options
        }
        return self.with_options(**kept)

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
        return self._nodes

    @property
    def options(self) -> Mapping[str, Any]:
        return self._options

    def describe(self) -> list[str]:
        """The names of the top-level steps, in order."""
        return [n.name for n in self._nodes]

    def step_paths(self) -> list[str]:
        """Every step path, nested and branch steps included, in order."""
        out: list[str] = []
        walk_paths(self, "", out)
        return out

    @property
    def fingerprint(self) -> str:
        """A hash of the structure (names, kinds, nesting, cases), not the code."""
        if self._fingerprint is None:
            text = json.dumps(shape(self), separators=(",", ":"))
            fp = hashlib.sha256(text.encode()).hexdigest()[:16]
            object.__setattr__(self, "_fingerprint", fp)
        assert self._fingerprint is not None
        return self._fingerprint

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
            defaults = {k: self._options[k] for k in _POLICY_DEFAULTS if k in self._options}
            policies = tuple(resolve_policy(defaults, n.options) for n in self._nodes)
            plain = tuple(
                n.items[0].fn
                if n.kind == "step"
                and len(n.items) == 1
                and isinstance(n.items[0], FnItem)
                and p.when is None
                and not p.retries
                and p.timeout is None
                and p.merge == "override"
                else None
                for n, p in zip(self._nodes, policies, strict=True)
            )
            object.__setattr__(self, "_compiled", (policies, plain))
        assert self._compiled is not None
        return self._compiled

    def __repr__(self) -> str:
        return f"Pipeline({self._name!r}, steps={self.describe()!r})"

    def to_mermaid(self) -> str:
        """A Mermaid flowchart of the whole structure."""
        from stepkit.pipeline._mermaid import to_mermaid

        return to_mermaid(self)

    # -- running (implemented in _runner) -----------------------------------

    def run(self, input: Mapping[str, Any] | None = None, **options: Any) -> RunResult:
        """Run synchronously (see docs/pipelines.md for the options).

        With ``store=`` the run is durable: persisted after every step and
        resumable by ``run_id`` (see docs/durable-runs.md).
        """
        if options.get("store") is not None:
            from stepkit.durable._entry import run_durable

            return run_durable(self, input, options)
        from stepkit.engine._entry import run

        return run(self, input, {k: v for k, v in options.items() if k != "store"})

    async def arun(self, input: Mapping[str, Any] | None = None, **options: Any) -> RunResult:
        """Run on the running event loop; step functions may be sync or async."""
        if options.get("store") is not None:
            from stepkit.durable._entry import arun_durable

            return await arun_durable(self, input, options)
        from stepkit.engine._entry import arun

        return await arun(self, input, {k: v for k, v in options.items() if k != "store"})

    def resume(self, run_id: str, **options: Any) -> RunResult:
        """Continue a stored run (paused, failed, or crashed with ``recover=True``).

        ``resume(run_id, store=..., override_data=None, recover=False,
        version=None, fork=False, **run_options)``. A completed run returns
        its stored result without running anything.
        """
        from stepkit.durable._entry import resume

        return resume(self, run_id, options)

    async def aresume(self, run_id: str, **options: Any) -> RunResult:
        """Async twin of :meth:`resume`."""
        from stepkit.durable._entry import aresume

        return await aresume(self, run_id, options)

    def run_checkpoint(
        self, checkpoint: str, override_data: Mapping[str, Any] | None = None, **options: Any
    ) -> RunResult:
        """Resume after the step recorded in ``checkpoint``."""
        from stepkit.engine._entry import run_checkpoint

        return run_checkpoint(self, checkpoint, override_data, options)

    async def arun_checkpoint(
        self, checkpoint: str, override_data: Mapping[str, Any] | None = None, **options: Any
    ) -> RunResult:
        """Async twin of :meth:`run_checkpoint`."""
        from stepkit.engine._entry import arun_checkpoint

        return await arun_checkpoint(self, checkpoint, override_data, options)


def _items(items: Sequence[Any], where: str) -> tuple[Item, ...]:
    out: list[Item] = []
    for position, item in enumerate(items, 1):
        if isinstance(item, Pipeline):
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


def _target(target: Any, where: str) -> Pipeline:
    if isinstance(target, Pipeline):
        return target
    if callable(target):
        return Pipeline("case").step(target)
    raise PipelineDefinitionError(
        f"{where}: a branch target must be a Pipeline or a step function, got {target!r}"
    )
