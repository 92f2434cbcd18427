"""Store conversations: generators that yield ``(method, args, kwargs)``, performed here.

:func:`drive_store` performs each call with the store's sync method and
:func:`adrive_store` with its async twin (``a`` + name), so every conversation
with a store is written once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any

StoreOp = tuple[str, tuple[Any, ...], dict[str, Any]]
StoreGen = Generator[StoreOp, Any, Any]


def drive_store(
    gen: StoreGen,
    store: Any,
    own: Mapping[str, Callable[..., Any]] | None = None,
    catch: type[Exception] | tuple[type[Exception], ...] = Exception,
) -> Any:
    """Perform a store conversation with the store's sync methods.

    ``own`` maps method names that are not the store's to functions that
    perform them (a workflow client's conversations also ask it to execute a
    run). Errors of the kinds in ``catch`` are thrown into the conversation;
    any other propagates at once.
    """
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            method, args, kwargs = gen.send(value) if error is None else gen.throw(error)
        except StopIteration as stop:
            return stop.value
        value, error = None, None
        try:
            call = own.get(method) if own else None
            value = (call or getattr(store, method))(*args, **kwargs)
        except catch as exc:
            error = exc


async def adrive_store(
    gen: StoreGen,
    store: Any,
    own: Mapping[str, Callable[..., Awaitable[Any]]] | None = None,
    catch: type[Exception] | tuple[type[Exception], ...] = Exception,
) -> Any:
    """Perform a store conversation with the store's async twins (``a`` + name); see
    :func:`drive_store` for ``own`` (async functions here)."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            method, args, kwargs = gen.send(value) if error is None else gen.throw(error)
        except StopIteration as stop:
            return stop.value
        value, error = None, None
        try:
            call = own.get(method) if own else None
            value = await (call or getattr(store, "a" + method))(*args, **kwargs)
        except catch as exc:
            error = exc
