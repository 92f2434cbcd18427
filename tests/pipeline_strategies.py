"""Hypothesis strategies for random pipelines, described as data and compiled to ``Pipeline``.

A spec is a tree of frozen dataclasses (so Hypothesis prints and shrinks it
readably); :func:`compile_spec` turns it into a :class:`~stepkit.Pipeline` whose
step functions are pure functions of the context, and counts their calls.

Every step, item and case function gets a unique name (``s1``, ``s2``...), so
step paths never collide, not even between parallel items.

Context values are ints in ``range(BIG, BIG + MOD)``: beyond CPython's cache of
small ints, so that equal values are distinct objects, and a checkpoint round
trip changes which values are identical (``copy`` steps share one object).
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from stepkit import Pipeline

MOD = 200
BIG = 1000  # no int in range(BIG, BIG + MOD) is cached
KEYS = ("a", "b", "c", "d")
MAX_DEPTH = 3
MAX_NODES = 5

# -- specs -------------------------------------------------------------------


@dataclass(frozen=True)
class Fn:
    """A step function: ``set`` (arithmetic of ``src`` into ``dst``), ``copy``, ``none``."""

    kind: str
    dst: tuple[str, ...] = ()
    src: tuple[str, ...] = ()
    mul: int = 1
    add: int = 0


@dataclass(frozen=True)
class Transform:
    """A whole-context transform: ``drop`` ``key``, ``rename`` ``key`` to ``to``, ``keep``."""

    kind: str
    key: str = "a"
    to: str = "b"


# None (no when=), a bool, or (key, parity): run when ctx[key] % 2 == parity
When = None | bool | tuple[str, int]


@dataclass(frozen=True)
class StepNode:
    fn: Fn
    when: When = None


@dataclass(frozen=True)
class TransformNode:
    transform: Transform
    when: When = None


@dataclass(frozen=True)
class NestNode:
    pipe: PipeSpec
    when: When = None


@dataclass(frozen=True)
class ParNode:
    items: tuple[Fn | PipeSpec, ...]
    when: When = None


@dataclass(frozen=True)
class BranchNode:
    """Selector: ``choices[ctx[key] % len(choices)]`` over case keys, ``nones`` Nones,
    and an unknown key (routed to ``default``) when there is a default."""

    key: str
    cases: tuple[Fn | PipeSpec, ...]
    default: Fn | PipeSpec | None = None
    nones: int = 0
    when: When = None


Node = StepNode | TransformNode | NestNode | ParNode | BranchNode


@dataclass(frozen=True)
class PipeSpec:
    nodes: tuple[Node, ...] = field(default_factory=tuple)


# -- strategies ----------------------------------------------------------------

keys = st.sampled_from(KEYS)

fns = st.one_of(
    st.builds(
        Fn,
        kind=st.just("set"),
        dst=st.lists(keys, min_size=1, max_size=2, unique=True).map(tuple),
        src=st.lists(keys, max_size=3).map(tuple),
        mul=st.integers(1, 7),
        add=st.integers(0, MOD - 1),
    ),
    st.builds(Fn, kind=st.just("none")),
    st.builds(Fn, kind=st.just("copy"), dst=keys.map(lambda k: (k,)), src=keys.map(lambda k: (k,))),
)

transforms = st.one_of(
    st.builds(Transform, kind=st.just("drop"), key=keys),
    st.builds(Transform, kind=st.just("rename"), key=keys, to=keys),
    st.builds(Transform, kind=st.just("keep")),
)


@st.composite
def whens(draw: st.DrawFn) -> When:
    """Mostly no ``when=``; else a constant, or the parity of a context value."""
    kind = draw(st.integers(0, 5))
    if kind <= 2:
        return None
    if kind == 3:
        return draw(st.booleans())
    return (draw(keys), draw(st.integers(0, 1)))


def pipe_specs(depth: int = 1, min_nodes: int = 1) -> st.SearchStrategy[PipeSpec]:
    """Pipelines of ``min_nodes``..5 nodes; containers only above ``MAX_DEPTH``."""
    return st.lists(node_specs(depth), min_size=min_nodes, max_size=MAX_NODES).map(
        lambda nodes: PipeSpec(tuple(nodes))
    )


def _targets(depth: int) -> st.SearchStrategy[Fn | PipeSpec]:
    return st.one_of(fns, st.deferred(lambda: pipe_specs(depth + 1, min_nodes=0)))


@st.composite
def node_specs(draw: st.DrawFn, depth: int) -> Node:
    # weighted choice that shrinks towards a plain step
    kind = draw(st.integers(0, 9 if depth < MAX_DEPTH else 4))
    when = draw(whens())
    if kind <= 3:
        return StepNode(draw(fns), when)
    if kind == 4:
        return TransformNode(draw(transforms), when)
    if kind <= 6:
        cases = draw(st.lists(_targets(depth), min_size=2, max_size=3))
        default = draw(st.none() | _targets(depth))
        return BranchNode(draw(keys), tuple(cases), default, draw(st.integers(0, 1)), when)
    if kind == 7:
        return NestNode(draw(pipe_specs(depth + 1, min_nodes=0)), when)
    items = draw(st.lists(_targets(depth), min_size=2, max_size=3))
    return ParNode(tuple(items), when)


# -- compiling -----------------------------------------------------------------


class Compiled:
    """A pipeline built from a spec, with call counts of its step functions by name.

    ``fail_once`` names a step function that raises ``RuntimeError`` on its first
    call (and behaves normally afterwards). ``fn_names`` lists the step
    functions (not transforms) in build order. ``par_items`` maps each parallel
    step's name to ``{name: item index}`` for its item functions and the
    top-level steps of its item pipelines.

    ``run()`` drives parallel items in threads, so counting is locked.
    """

    def __init__(self, spec: PipeSpec, fail_once: str | None = None) -> None:
        self.spec = spec
        self.calls: Counter[str] = Counter()
        self.fail_once = fail_once
        self.fn_names: list[str] = []
        self.par_items: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.pipeline = self._pipe(spec, "main")

    def count(self, name: str) -> int:
        """Count a call of ``name``; return how many calls it has had."""
        with self._lock:
            self.calls[name] += 1
            return self.calls[name]

    def calls_now(self) -> Counter[str]:
        """A copy of the call counts."""
        with self._lock:
            return Counter(self.calls)

    def _name(self) -> str:
        return f"s{next(self._ids)}"

    # functions

    def _fn(self, spec: Fn, name: str) -> Callable[[Mapping[str, Any]], Any]:
        count = self.count
        fail = self.fail_once == name
        self.fn_names.append(name)

        def step(ctx: Mapping[str, Any]) -> dict[str, int] | None:
            if count(name) == 1 and fail:
                raise RuntimeError(f"{name} fails on its first call")
            if spec.kind == "none":
                return None
            if spec.kind == "copy":
                return {spec.dst[0]: ctx.get(spec.src[0], 0)}
            base = sum(ctx.get(k, 0) for k in spec.src) * spec.mul + spec.add
            return {k: BIG + (base + i) % MOD for i, k in enumerate(spec.dst)}

        step.__name__ = step.__qualname__ = name
        return step

    def _target(self, spec: Fn | PipeSpec) -> Any:
        if isinstance(spec, Fn):
            return self._fn(spec, self._name())
        return self._pipe(spec, self._name())

    # pipelines

    def _pipe(self, spec: PipeSpec, pipe_name: str) -> Pipeline:
        p = Pipeline(pipe_name)
        for node in spec.nodes:
            name = self._name()
            opts: dict[str, Any] = {}
            if node.when is not None:
                opts["when"] = _when(node.when)
            if isinstance(node, StepNode):
                p = p.step(name, self._fn(node.fn, name), **opts)
            elif isinstance(node, TransformNode):
                p = p.transform(name, _transform(node.transform, name, self), **opts)
            elif isinstance(node, NestNode):
                p = p.step(name, self._pipe(node.pipe, self._name()), **opts)
            elif isinstance(node, ParNode):
                items: list[Any] = []
                members = self.par_items[name] = {}
                for index, item in enumerate(node.items):
                    if isinstance(item, PipeSpec):
                        inner = self._pipe(item, self._name())
                        members.update(dict.fromkeys(inner.describe(), index))
                        items.append(inner)
                    else:
                        fn_name = self._name()
                        members[fn_name] = index
                        items.append(self._fn(item, fn_name))
                p = p.step(name, *items, **opts)
            else:
                cases = {f"c{i}": self._target(t) for i, t in enumerate(node.cases)}
                default = None if node.default is None else self._target(node.default)
                choices: list[str | None] = [*cases, *([None] * node.nones)]
                if default is not None:
                    choices.append("unknown-key")
                p = p.branch(
                    name, on=_selector(node.key, choices), cases=cases, default=default, **opts
                )
        return p


def _when(when: bool | tuple[str, int]) -> Any:
    if isinstance(when, bool):
        return when
    key, parity = when
    return lambda ctx: ctx.get(key, 0) % 2 == parity


def _selector(key: str, choices: list[str | None]) -> Callable[[Mapping[str, Any]], Any]:
    return lambda ctx: choices[ctx.get(key, 0) % len(choices)]


def _transform(spec: Transform, name: str, compiled: Compiled) -> Callable[..., Any]:
    def transform(ctx: Mapping[str, Any]) -> dict[str, Any]:
        compiled.count(name)
        if spec.kind == "drop":
            return {k: v for k, v in ctx.items() if k != spec.key}
        if spec.kind == "rename" and spec.key in ctx:
            new = {k: v for k, v in ctx.items() if k != spec.key}
            new[spec.to] = ctx[spec.key]
            return new
        return dict(ctx)

    transform.__name__ = transform.__qualname__ = name
    return transform


inputs = st.fixed_dictionaries({}, optional={k: st.integers(BIG, BIG + MOD - 1) for k in KEYS})
