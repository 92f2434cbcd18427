"""The immutable parts a pipeline is made of: nodes, items and step policies.

The builder validates and creates them; the engine only reads them. Nothing
here runs user code. They are ``NamedTuple`` classes: immutable like frozen
dataclasses, but cheaper to create (a pipeline of n steps makes n of each)
and to import (no ``dataclasses`` at ``import stepkit``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from stepkit.errors import PipelineDefinitionError

if TYPE_CHECKING:
    from stepkit.pipeline._builder import PipelineBuilder as Pipeline

ErrorMode = Literal["raise", "continue", "skip_remaining"]
MergeMode = Literal["override", "error", "warn", "skip"]
ParallelMode = Literal["all", "settled"]
RetryDelay = float | Callable[[int, BaseException], float]
RetryOn = tuple[type[BaseException], ...] | Callable[[BaseException], bool]

ERROR_MODES = ("raise", "continue", "skip_remaining")
MERGE_MODES = ("override", "error", "warn", "skip")
PARALLEL_MODES = ("all", "settled")


class Policy(NamedTuple):
    """The resolved options of one step (step options over pipeline defaults)."""

    when: Any = None
    retries: int = 0
    retry_delay: RetryDelay = 0.0
    retry_on: RetryOn = (Exception,)
    timeout: float | None = None
    on_error: ErrorMode = "raise"
    merge: MergeMode = "override"
    parallel_mode: ParallelMode = "all"
    # False: the step (and every step inside it) is left out of the run summary and debug logs
    log: bool = True


POLICY_OPTIONS = frozenset(Policy._fields)
DEFAULT_POLICY = Policy()


class FnItem(NamedTuple):
    """A step function; ``name`` is its path segment when it runs in parallel."""

    name: str
    fn: Callable[..., Any]


class PipeItem(NamedTuple):
    """A nested pipeline; its steps are named ``<step>/<inner step>``."""

    pipeline: Pipeline


Item = FnItem | PipeItem


class Node(NamedTuple):
    """One named step at one pipeline level.

    ``kind`` is ``"step"`` (one or more items), ``"transform"`` (one function
    that returns the whole new context) or ``"branch"`` (``selector`` picks one
    of ``cases``).
    """

    name: str
    kind: Literal["step", "transform", "branch"]
    items: tuple[Item, ...] = ()
    options: Mapping[str, Any] = MappingProxyType({})
    selector: Callable[..., Any] | None = None
    cases: tuple[tuple[str, Pipeline], ...] = ()

    @property
    def parallel(self) -> bool:
        return len(self.items) > 1

    def case(self, key: str) -> Pipeline | None:
        for case_key, target in self.cases:
            if case_key == key:
                return target
        return None


def as_hooks(
    value: object, option: str, error: type[Exception] = PipelineDefinitionError
) -> tuple[Callable[..., Any], ...]:
    """A hook option (a callable, a list of them, or None) as a tuple of callables."""
    if value is None:
        return ()
    if callable(value):
        return (value,)
    if isinstance(value, list | tuple) and all(callable(h) for h in value):
        return tuple(value)
    raise error(f"{option}= must be a callable or a list of callables, got {value!r}")


def check_name(name: object, what: str = "step name") -> str:
    """Return ``name`` if it is a valid path segment, else raise."""
    if not isinstance(name, str) or not name:
        raise PipelineDefinitionError(f"a {what} must be a non-empty str, got {name!r}")
    if "/" in name:
        raise PipelineDefinitionError(
            f"{what} {name!r} contains '/', which separates nested step paths; "
            "use another character such as '-' or '.'"
        )
    return name


def check_options(options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate step options (keyword arguments) at build time."""
    unknown = set(options) - POLICY_OPTIONS
    if unknown:
        raise PipelineDefinitionError(
            f"{where}: unknown option(s) {', '.join(sorted(unknown))}; "
            f"valid options are {', '.join(sorted(POLICY_OPTIONS))}"
        )
    out = dict(options)
    when = out.get("when")
    if "when" in out and not (isinstance(when, bool) or callable(when)):
        raise PipelineDefinitionError(
            f"{where}: when= must be a bool or a callable of the context, got {when!r}"
        )
    if "retries" in out:
        r = out["retries"]
        if isinstance(r, bool) or not isinstance(r, int) or r < 0:
            raise PipelineDefinitionError(f"{where}: retries= must be an int >= 0, got {r!r}")
    if "retry_delay" in out:
        d = out["retry_delay"]
        if not callable(d) and not _non_negative(d):
            raise PipelineDefinitionError(
                f"{where}: retry_delay= must be seconds >= 0 or a callable "
                f"(attempt, exc) -> seconds, got {d!r}"
            )
    if "retry_on" in out:
        out["retry_on"] = _check_retry_on(out["retry_on"], where)
    if "timeout" in out:
        t = out["timeout"]
        if t is not None and (not _non_negative(t) or t == 0):
            raise PipelineDefinitionError(
                f"{where}: timeout= must be seconds > 0 or None, got {t!r}"
            )
    if "log" in out and not isinstance(out["log"], bool):
        raise PipelineDefinitionError(
            f"{where}: log= must be True or False (False leaves the step out of the run "
            f"summary and debug logs), got {out['log']!r}"
        )
    for key, allowed in (
        ("on_error", ERROR_MODES),
        ("merge", MERGE_MODES),
        ("parallel_mode", PARALLEL_MODES),
    ):
        if key in out and out[key] not in allowed:
            raise PipelineDefinitionError(
                f"{where}: {key}= must be one of {', '.join(map(repr, allowed))}, got {out[key]!r}"
            )
    return out


def _non_negative(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def retry_on_of(value: object) -> RetryOn | None:
    """``retry_on=`` as a policy holds it (a tuple of types, or a predicate); None if invalid.

    Shared by pipelines and workflows, which raise their own error for None.
    """
    if isinstance(value, type) and issubclass(value, BaseException):
        return (value,)
    if (
        isinstance(value, tuple)
        and value
        and all(isinstance(t, type) and issubclass(t, BaseException) for t in value)
    ):
        return value
    if callable(value):
        return value
    return None


RETRY_ON_HELP = "retry_on= must be an exception type, a tuple of them, or a callable(exc) -> bool"


def _check_retry_on(value: object, where: str) -> RetryOn:
    checked = retry_on_of(value)
    if checked is None:
        raise PipelineDefinitionError(f"{where}: {RETRY_ON_HELP}, got {value!r}")
    return checked


def resolve_policy(defaults: Mapping[str, Any], options: Mapping[str, Any]) -> Policy:
    """Step options over pipeline defaults, as one immutable policy."""
    if not defaults and not options:
        return DEFAULT_POLICY
    return Policy(**{**defaults, **options})


def compile_level(
    nodes: tuple[Node, ...], options: Mapping[str, Any]
) -> tuple[tuple[Policy, ...], tuple[Callable[..., Any] | None, ...]]:
    """Decide once what running a level needs: each node's resolved policy, and its function
    if it is a plain step (one function, no policy) that the engine may run on its short path.
    """
    defaults = {k: options[k] for k in POLICY_DEFAULT_NAMES if k in options}
    policies = tuple(resolve_policy(defaults, n.options) for n in nodes)
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
        for n, p in zip(nodes, policies, strict=True)
    )
    return policies, plain


#: Pipeline options that are defaults for every step's policy.
POLICY_DEFAULT_NAMES = ("retries", "retry_delay", "retry_on", "timeout", "merge", "parallel_mode")
