"""Ops: a store primitive written once as a generator, run by a sync or an async client.

An op yields requests for the server (a backend-specific value) and receives
their results, or has the server's exception thrown in; :func:`drive` and
:func:`adrive` run it with a sync or an async ``execute``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

__all__ = ["Op", "adrive", "drive", "safe_url"]

_T = TypeVar("_T")
#: A primitive written once: yields requests, receives results (or their exceptions).
Op = Generator[Any, Any, _T]


def safe_url(url: str) -> str:
    """``url`` without its password (``scheme://user@host:port/path``), for messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{parts.username or ''}@{host}" if parts.username else host
        if parts.port is not None:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    except ValueError:
        return url.split("://", 1)[0] + "://…"


def drive(op: Op[_T], execute: Callable[[Any], Any], errors: tuple[type[BaseException], ...]) -> _T:
    """Run ``op``, performing each request with ``execute``; ``errors`` are thrown into it."""
    try:
        request = next(op)
        while True:
            try:
                result = execute(request)
            except errors as exc:
                request = op.throw(exc)
            else:
                request = op.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def adrive(
    op: Op[_T], execute: Callable[[Any], Awaitable[Any]], errors: tuple[type[BaseException], ...]
) -> _T:
    """:func:`drive` with an async ``execute``."""
    try:
        request = next(op)
        while True:
            try:
                result = await execute(request)
            except errors as exc:
                request = op.throw(exc)
            else:
                request = op.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
