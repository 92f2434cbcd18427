"""``open_store(url)``: a store from a URL, for configuration files and the command line."""

from __future__ import annotations

from typing import Literal
from urllib.parse import parse_qsl

from stepkit.errors import InvalidArgumentError
from stepkit.stores._memory import MemoryStore
from stepkit.stores._protocol import Store

__all__ = ["open_store"]

_SUPPORTED = "memory://, file://PATH, sqlite:///PATH"
_LATER = ("redis", "rediss", "postgres", "postgresql")
_TRUE = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def _options(query: str, allowed: tuple[str, ...], url: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise InvalidArgumentError(f"bad query string in store URL {url!r}") from exc
    options = dict(pairs)
    unknown = sorted(set(options) - set(allowed))
    if unknown or len(options) != len(pairs):
        what = f"unknown option(s) {', '.join(unknown)}" if unknown else "a repeated option"
        accepted = ", ".join(allowed) or "none"
        raise InvalidArgumentError(f"store URL {url!r} has {what}; accepted: {accepted}")
    return options


def open_store(url: str) -> Store:
    """Open a store described by a URL. Supported forms::

        memory://                      a new, empty MemoryStore
        file://runs                    FileStore("runs")       (relative to the cwd)
        file:///var/lib/app/runs       FileStore("/var/lib/app/runs")
        sqlite:///runs.db              SQLiteStore("runs.db")  (SQLAlchemy convention:
        sqlite:////var/lib/app/runs.db SQLiteStore("/var/lib/app/runs.db")  four slashes
        sqlite://  or sqlite:///:memory:  an in-memory SQLiteStore    for an absolute path)

    Everything after the scheme's slashes is the path, taken literally (no
    percent-decoding). Options go in the query string: ``file://runs?fsync=false``,
    ``sqlite:///runs.db?synchronous=NORMAL&busy_timeout=5``. ``redis://`` and
    ``postgresql://`` are reserved for the coming optional extras.
    """
    if not isinstance(url, str):
        raise InvalidArgumentError(f"store URL must be a str, got {url!r}")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or not scheme:
        raise InvalidArgumentError(f"not a store URL: {url!r}; supported: {_SUPPORTED}")
    rest, _, query = rest.partition("?")
    if scheme == "memory":
        _options(query, (), url)
        if rest:
            raise InvalidArgumentError(f"memory:// takes no path, got {url!r}")
        return MemoryStore()
    if scheme == "file":
        options = _options(query, ("fsync",), url)
        if not rest:
            raise InvalidArgumentError(f"file:// needs a folder, e.g. file://runs; got {url!r}")
        fsync = _TRUE.get(options.get("fsync", "true").lower())
        if fsync is None:
            raise InvalidArgumentError(f"fsync must be true or false in {url!r}")
        from stepkit.stores._file import FileStore  # loads fcntl & co. only when used

        return FileStore(rest, fsync=fsync)
    if scheme == "sqlite":
        options = _options(query, ("busy_timeout", "synchronous"), url)
        if rest and not rest.startswith("/"):
            raise InvalidArgumentError(
                f"sqlite URLs have no host: use sqlite:///relative.db, sqlite:////abs/path.db "
                f"or sqlite:///:memory:; got {url!r}"
            )
        path = rest[1:] or ":memory:"
        synchronous: Literal["NORMAL", "FULL"]
        level = options.get("synchronous", "FULL").upper()
        if level == "NORMAL":
            synchronous = "NORMAL"
        elif level == "FULL":
            synchronous = "FULL"
        else:
            raise InvalidArgumentError(f"synchronous must be NORMAL or FULL in {url!r}")
        try:
            busy_timeout = float(options.get("busy_timeout", "30"))
        except ValueError:
            raise InvalidArgumentError(f"busy_timeout must be seconds in {url!r}") from None
        from stepkit.stores._sqlite import SQLiteStore  # loads sqlite3 only when used

        return SQLiteStore(path, synchronous=synchronous, busy_timeout=busy_timeout)
    if scheme in _LATER or scheme.startswith(("redis+", "postgresql+", "postgres+")):
        raise InvalidArgumentError(
            f"the {scheme}:// store is not available yet; it will come as an optional extra "
            f"(stepkit[redis] / stepkit[postgres]). Available now: {_SUPPORTED}"
        )
    raise InvalidArgumentError(
        f"unknown store URL scheme {scheme!r} in {url!r}; supported: {_SUPPORTED}"
    )
