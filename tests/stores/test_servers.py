"""PostgresStore and RedisStore: URLs, extras, and bad servers (unreachable, dropped, restarted).

The tests that need a server are skipped, saying why, unless
``STEPKIT_TEST_POSTGRES_URL`` / ``STEPKIT_TEST_REDIS_URL`` are set; the restart
tests also need the servers of ``.ci/servers`` (``STEPKIT_SERVERS_DIR``).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stepkit import Pipeline
from stepkit.errors import InvalidArgumentError, StoreError
from stepkit.stores import BaseStore, open_store

from . import servers
from .store_helpers import run, version

ROOT = Path(__file__).resolve().parents[2]
SERVERS = ROOT / ".ci" / "servers"


@pytest.fixture(params=servers.SERVER_KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    servers.skip_unless_available(str(request.param))
    return str(request.param)


@pytest.fixture
def store(kind: str) -> Iterator[BaseStore]:
    make = servers.postgres_store if kind == "postgres" else servers.redis_store
    with make() as opened:
        yield opened
    servers.drop(opened)


# -- URLs and extras (no server needed) --------------------------------------------------


@pytest.mark.parametrize(
    ("make", "url"),
    [
        ("PostgresStore", "postgresql://app:s3cret-pw@127.0.0.1:1/db"),
        ("RedisStore", "redis://:s3cret-pw@127.0.0.1:1/0"),
    ],
)
def test_an_unreachable_server_is_a_store_error_naming_the_url_without_its_password(
    make: str, url: str
) -> None:
    """Opening a store on a server that does not answer: StoreError, URL shown, password not."""
    import stepkit.stores

    cls = getattr(stepkit.stores, make)
    with pytest.raises(StoreError) as caught:
        cls(url, timeout=2)
    message = str(caught.value)
    assert "s3cret-pw" not in message
    assert "127.0.0.1:1" in message
    assert "cannot reach" in message
    with pytest.raises(StoreError, match=r"127\.0\.0\.1:1") as again:
        open_store(url + "?timeout=2")
    assert "s3cret-pw" not in str(again.value)


@pytest.mark.parametrize(
    ("url", "extra", "module"),
    [
        ("postgresql://u@db/runs", "stepkit[postgres]", "psycopg"),
        ("redis://localhost:6379/0", "stepkit[redis]", "redis"),
    ],
)
def test_a_missing_extra_says_which_to_install(
    url: str, extra: str, module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the driver installed, open_store says which extra to pip install."""
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    for name in ("stepkit.stores._postgres", "stepkit.stores._redis"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(InvalidArgumentError, match="pip install") as caught:
        open_store(url)
    assert f"pip install '{extra}'" in str(caught.value)


def test_importing_stepkit_loads_no_server_driver() -> None:
    """import stepkit / stepkit.stores never imports psycopg or redis."""
    code = (
        "import sys, stepkit, stepkit.stores\n"
        "from stepkit.stores import MemoryStore, SQLiteStore\n"
        "print(sorted(m for m in ('psycopg', 'psycopg_pool', 'redis') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT / "src")},
    )
    assert out.stdout.strip() == "[]"


def test_bad_options_are_refused() -> None:
    """A wrong scheme, schema, prefix or timeout raises InvalidArgumentError before connecting."""
    from stepkit.stores import PostgresStore, RedisStore

    with pytest.raises(InvalidArgumentError, match="postgresql://"):
        PostgresStore("mysql://u:pw@h/db")
    with pytest.raises(InvalidArgumentError, match="schema"):
        PostgresStore("postgresql://u@h/db", schema="a; DROP TABLE x")
    with pytest.raises(InvalidArgumentError, match="redis://"):
        RedisStore("http://h")
    with pytest.raises(InvalidArgumentError, match="prefix"):
        RedisStore("redis://h", prefix="")
    with pytest.raises(InvalidArgumentError, match="timeout"):
        open_store("redis://h?timeout=soon")
    with pytest.raises(InvalidArgumentError, match="picks the driver"):
        open_store("postgresql+psycopg://u@db/runs")


# -- on a real server ---------------------------------------------------------------------


def test_open_store_opens_server_stores_with_their_options(kind: str) -> None:
    """postgresql:// and redis:// URLs open PostgresStore / RedisStore, schema= / prefix= kept."""
    space = servers.namespace()
    option = f"schema={space}" if kind == "postgres" else f"prefix={space}:"
    base = servers.URLS[kind]
    store = open_store(base + ("&" if "?" in base else "?") + option)
    try:
        assert type(store).__name__ == ("PostgresStore" if kind == "postgres" else "RedisStore")
        assert space in repr(store)
        store.create(run(now=store.now()))
        assert [r.run_id for r in store.list()] == ["run-1"]
    finally:
        store.close()
        servers.drop(store)


def _kill_connections(kind: str, store: BaseStore) -> int:
    """Drop every connection of the store's server except the killer's own; how many."""
    if kind == "postgres":
        import psycopg

        with psycopg.connect(servers.POSTGRES_URL, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND application_name NOT LIKE 'pytest-keep%'"
            ).fetchall()
        return len(rows)
    import redis

    client = redis.Redis.from_url(servers.REDIS_URL)
    try:
        return int(client.client_kill_filter(skipme=True, _type="normal"))
    finally:
        client.close()


def _race(store: BaseStore, effect: Callable[[], None]) -> Pipeline:
    def middle(ctx: Any) -> dict[str, Any]:
        effect()
        return {"b": 2}

    return (
        Pipeline("faults")
        .step("a", lambda ctx: {"a": 1})
        .step("b", middle)
        .step("c", lambda ctx: {"c": ctx["a"] + ctx["b"]})
    )


@pytest.mark.parametrize("api", ["sync", "async"])
def test_dropped_connections_between_and_during_steps_lose_nothing(
    kind: str, store: BaseStore, api: str
) -> None:
    """Connections killed by the server (pg_terminate_backend / CLIENT KILL) while a run
    holds them: the store reconnects, the run completes, each step ran once."""
    ran: list[str] = []

    def cut() -> None:
        ran.append("b")
        assert _kill_connections(kind, store) >= 1

    pipeline = _race(store, cut)
    if api == "sync":
        result = pipeline.run({}, store=store, run_id="cut")
    else:
        result = asyncio.run(pipeline.arun({}, store=store, run_id="cut"))
    assert result.status == "completed"
    assert dict(result) == {"a": 1, "b": 2, "c": 3}
    assert ran == ["b"]
    _kill_connections(kind, store)
    assert [v.step_name for v in store.history("cut")] == [None, "a", "b", "c"]
    record = store.get("cut")
    assert record is not None
    assert record.status == "completed"


def test_a_write_whose_connection_dies_is_applied_once_or_not_at_all(
    kind: str, store: BaseStore
) -> None:
    """Killing the connections before every write: each append and claim still lands once."""
    now = store.now()
    store.create(run(now=now, status="running", version=1, owner="w"), version(1))
    for n in range(2, 6):
        _kill_connections(kind, store)
        store.append(version(n), owner="w", lease=30)
    _kill_connections(kind, store)
    store.finish("run-1", owner="w", status="paused")
    _kill_connections(kind, store)
    claimed = store.claim("run-1", owner="w2", lease=30)
    assert (claimed.status, claimed.owner, claimed.version) == ("running", "w2", 5)
    assert [v.version for v in store.history("run-1")] == [1, 2, 3, 4, 5]


@pytest.fixture
def restartable(kind: str) -> str:
    if not servers.SERVERS_DIR:
        pytest.skip("STEPKIT_SERVERS_DIR is not set: the restart tests need .ci/servers")
    return kind


def _restart(kind: str) -> None:
    subprocess.run([str(SERVERS), "restart", kind], check=True, capture_output=True, timeout=120)


@pytest.mark.slow
def test_a_server_restarted_in_the_middle_of_a_run(restartable: str, store: BaseStore) -> None:
    """The server restarts while a step runs: the run completes, each step ran once, and the
    history is whole; the store works on without being reopened."""
    ran: list[str] = []

    def restart() -> None:
        ran.append("b")
        _restart(restartable)

    result = _race(store, restart).run({}, store=store, run_id="restarted")
    assert result.status == "completed"
    assert dict(result) == {"a": 1, "b": 2, "c": 3}
    assert ran == ["b"]
    assert [v.step_name for v in store.history("restarted")] == [None, "a", "b", "c"]
    assert store.snapshot("restarted") == {"a": 1, "b": 2, "c": 3}
