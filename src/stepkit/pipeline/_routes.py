"""How a level moves from one node to the next when it is a graph: its routes.

A pipeline level runs its nodes in order and has no routes. A graph (built in
:mod:`stepkit.graph`) compiles to a plan whose nodes carry :class:`Routes`: an
entry node, and per node either the index of the next node or a
:class:`Conditional` edge whose selector picks it. The index ``len(nodes)``
is ``END``. The engine reads them; nothing here runs user code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, final

__all__ = ["DEFAULT_MAX_STEPS", "Conditional", "Routes"]

#: The node executions a graph may run when ``max_steps=`` is not given.
DEFAULT_MAX_STEPS = 100


@final
@dataclass(frozen=True, slots=True)
class Conditional:
    """A conditional out-edge: ``selector(ctx)`` returns a key of ``targets`` (node indexes)."""

    selector: Callable[[Any], Any]
    targets: Mapping[str, int]


@final
@dataclass(frozen=True, slots=True)
class Routes:
    """The routes of a graph level: where it starts, how each node is left, its step limit."""

    entry: int
    edges: tuple[int | Conditional, ...]
    max_steps: int = DEFAULT_MAX_STEPS
