"""The real PostgreSQL and Redis servers of the store tests, named by environment variables.

``eval "$(.ci/servers start)"`` starts both and exports ``STEPKIT_TEST_POSTGRES_URL``
and ``STEPKIT_TEST_REDIS_URL``; without them the server tests are skipped, saying so.
Each store gets a namespace of its own (a PostgreSQL schema, a Redis key prefix),
dropped by :func:`drop`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stepkit.stores import BaseStore

POSTGRES_URL = os.environ.get("STEPKIT_TEST_POSTGRES_URL", "")
REDIS_URL = os.environ.get("STEPKIT_TEST_REDIS_URL", "")
ENV = {"postgres": "STEPKIT_TEST_POSTGRES_URL", "redis": "STEPKIT_TEST_REDIS_URL"}
URLS = {"postgres": POSTGRES_URL, "redis": REDIS_URL}
SERVER_KINDS = tuple(ENV)
#: set by .ci/servers: the servers can then be restarted (``.ci/servers restart KIND``)
SERVERS_DIR = os.environ.get("STEPKIT_SERVERS_DIR", "")


def skip_unless_available(kind: str) -> None:
    """Skip the test, saying how to run it, when ``kind`` is a server without a URL."""
    if kind in ENV and not URLS[kind]:
        pytest.skip(
            f'{ENV[kind]} is not set: run `eval "$(.ci/servers start)"` for a real '
            f"{'PostgreSQL' if kind == 'postgres' else 'Redis'} server"
        )


def namespace() -> str:
    return "t_" + uuid.uuid4().hex[:16]


def postgres_store(
    path: Path | None = None, clock: Callable[[], float] | None = None, **options: Any
) -> BaseStore:
    from stepkit.stores import PostgresStore

    if clock is not None:
        options["clock"] = clock
    return PostgresStore(POSTGRES_URL, schema=options.pop("schema", namespace()), **options)


def redis_store(
    path: Path | None = None, clock: Callable[[], float] | None = None, **options: Any
) -> BaseStore:
    from stepkit.stores import RedisStore

    if clock is not None:
        options["clock"] = clock
    return RedisStore(REDIS_URL, prefix=options.pop("prefix", namespace() + ":"), **options)


def is_server_store(store: object) -> bool:
    return type(store).__name__ in ("PostgresStore", "RedisStore")


def drop(store: object) -> None:
    """Remove what a test's server store wrote (its schema, or its keys)."""
    name = type(store).__name__
    if name == "PostgresStore":
        drop_schema(store._schema)  # type: ignore[attr-defined]
    elif name == "RedisStore":
        drop_prefix(store._prefix)  # type: ignore[attr-defined]


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def drop_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
    finally:
        client.close()
