"""``open_store(url)``: a store from a URL, for configuration files and the command line."""

from __future__ import annotations

import importlib
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

from stepkit.errors import InvalidArgumentError
from stepkit.stores._memory import MemoryStore
from stepkit.stores._protocol import Store

__all__ = ["open_store"]

_SUPPORTED = (
    "memory://, file://PATH, sqlite:///PATH, postgresql://USER@HOST/DB (stepkit[postgres]), "
    "redis://HOST:PORT/DB (stepkit[redis])"
)
#: scheme -> (module, class, the extra to install, the client packages it needs)
_SERVERS = {
    "postgresql": (
        "stepkit.stores._postgres",
        "PostgresStore",
        "postgres",
        "psycopg, psycopg_pool",
    ),
    "postgres": ("stepkit.stores._postgres", "PostgresStore", "postgres", "psycopg, psycopg_pool"),
    "redis": ("stepkit.stores._redis", "RedisStore", "redis", "redis"),
    "rediss": ("stepkit.stores._redis", "RedisStore", "redis", "redis"),
}
#: stepkit's own query options of a server URL (the rest goes to the driver)
_SERVER_OPTIONS = {"PostgresStore": ("schema", "timeout"), "RedisStore": ("prefix", "timeout")}
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
    ``sqlite:///runs.db?synchronous=NORMAL&busy_timeout=5``.

    Server stores, with their optional extras installed::

        postgresql://user:pw@host:5432/db?schema=app   PostgresStore  (stepkit[postgres])
        redis://:pw@host:6379/0?prefix=app:            RedisStore     (stepkit[redis])

    Their URLs go to the driver as they are (``sslmode=``, ``rediss://`` for TLS...),
    except stepkit's options ``schema`` / ``prefix`` and ``timeout`` (seconds).
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
    if scheme in _SERVERS:
        return _server_store(scheme, url, rest, query)
    if scheme.startswith(("redis+", "postgresql+", "postgres+")):
        base = scheme.partition("+")[0]
        raise InvalidArgumentError(
            f"{scheme}:// is not a store URL: write {base}://... (stepkit picks the driver)"
        )
    raise InvalidArgumentError(
        f"unknown store URL scheme {scheme!r} in {url!r}; supported: {_SUPPORTED}"
    )


def _server_store(scheme: str, url: str, rest: str, query: str) -> Store:
    """A PostgresStore or RedisStore, or which extra to install for it."""
    module_name, class_name, extra, clients = _SERVERS[scheme]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidArgumentError(
            f"the {scheme}:// store needs the optional extra stepkit[{extra}] "
            f"(pip install 'stepkit[{extra}]', which installs {clients}): {exc}"
        ) from exc
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise InvalidArgumentError(f"bad query string in the {scheme}:// store URL") from exc
    ours = _SERVER_OPTIONS[class_name]
    options: dict[str, Any] = {k: v for k, v in pairs if k in ours}
    driver = urlencode([(k, v) for k, v in pairs if k not in ours])
    if "timeout" in options:
        try:
            options["timeout"] = float(options["timeout"])
        except ValueError:
            raise InvalidArgumentError(
                f"timeout must be seconds in the {scheme}:// store URL"
            ) from None
    store: Store = getattr(module, class_name)(
        f"{scheme}://{rest}" + (f"?{driver}" if driver else ""), **options
    )
    return store
