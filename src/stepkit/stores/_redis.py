"""``RedisStore``: runs shared by workers on any number of machines, in one Redis.

redis-py, sync and natively async (``redis.asyncio``). Every write of a run is
one Lua script (one round trip): saving a step checks the owner and version and
stores both in one script; claims, renewals and finishes read the run, decide
with the pure rules and write it back with a compare-and-set script. Needs the
extra: ``pip install 'stepkit[redis]'``.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from stepkit.errors import InvalidArgumentError, RunConflictError, RunNotFoundError, StoreError
from stepkit.stores import _redis_lua as lua
from stepkit.stores import _transitions
from stepkit.stores._base import Change
from stepkit.stores._chain import checked_chain, target_version
from stepkit.stores._records import (
    RunRecord,
    SignalRecord,
    VersionRecord,
    check_seconds,
    version_problem,
)
from stepkit.stores._redis_codec import parse_run, parse_version, run_args, text, version_args
from stepkit.stores._server_base import ServerStore
from stepkit.stores._server_ops import Op, adrive, drive, safe_url
from stepkit.stores._sync_base import Loaded
from stepkit.stores._transitions import PurgeRule
from stepkit.stores._wake_base import due_order

__all__ = ["RedisStore"]

_T = TypeVar("_T")
_LOST = (redis.ConnectionError, redis.TimeoutError)


class _Lost(Exception):
    """The connection broke during a request: it may or may not have been applied."""


class RedisStore(ServerStore):
    """A store in Redis, safe for any number of threads, processes and machines.

    ``url`` is a redis-py URL (``redis://:password@host:6379/0``, ``rediss://`` for
    TLS). Keys start with ``prefix`` (default ``stepkit:``), so one database can
    hold several stores and other data. Durability is the server's: run Redis
    with ``appendonly yes`` (and ``appendfsync always`` if a power loss must not
    lose the last second). ``timeout`` (seconds) bounds connecting and each
    command. Errors name the URL without its password. Needs one Redis (or one
    primary), not Redis Cluster::

        store = RedisStore("redis://cache.internal:6379/0")
    """

    _backend_errors = (redis.RedisError, OSError)

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "stepkit:",
        max_connections: int = 50,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(clock=clock)
        if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
            shown = safe_url(url) if isinstance(url, str) else repr(url)
            raise InvalidArgumentError(f"RedisStore needs a redis:// URL, got {shown}")
        if not isinstance(prefix, str) or not prefix:
            raise InvalidArgumentError(f"prefix must be a non-empty str, got {prefix!r}")
        if type(max_connections) is not int or max_connections < 1:
            raise InvalidArgumentError(
                f"max_connections must be an int >= 1, got {max_connections!r}"
            )
        check_seconds(timeout, "timeout", allow_zero=False)
        self._prefix = prefix
        self._conninfo = url
        self._url = safe_url(url)
        self._password = urlsplit(url).password or ""
        # no silent retries: a write that may have landed is checked by the op itself
        self._options: dict[str, Any] = {
            "socket_timeout": float(timeout),
            "socket_connect_timeout": float(timeout),
            "max_connections": max_connections,
        }
        self._client = redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), **self._options)
        self._scripts = {
            name: self._client.register_script(src) for name, src in lua.SCRIPTS.items()
        }
        self._aclients: dict[int, tuple[asyncio.AbstractEventLoop, redis.asyncio.Redis, Any]] = {}
        self._alock = threading.Lock()
        try:
            self._client.ping()  # an unreachable server fails here, clearly
        except (redis.RedisError, OSError) as exc:
            self._client.close()
            raise self._error(exc) from exc

    def __repr__(self) -> str:
        return f"RedisStore({self._url!r}, prefix={self._prefix!r})"

    def _error(self, exc: BaseException) -> StoreError:
        text = str(exc).strip() or type(exc).__name__
        if self._password:
            text = text.replace(self._password, "***")
        if isinstance(exc, (*_LOST, _Lost)):
            text = f"cannot reach or lost the connection to Redis: {text}"
        return StoreError(f"RedisStore at {self._url}: {text}")

    # -- running ops -----------------------------------------------------------------------

    def _run(self, op: Op[_T]) -> _T:
        def execute(request: tuple[Any, ...]) -> Any:
            try:
                if request[0] == "cmd":
                    return self._client.execute_command(*request[1:])  # type: ignore[no-untyped-call]
                return self._scripts[request[0]](keys=[], args=[self._prefix, *request[1:]])
            except _LOST as exc:
                raise _Lost(str(exc)) from exc

        try:
            return drive(op, execute, (_Lost,))
        except (redis.RedisError, OSError, _Lost) as exc:
            raise self._error(exc) from exc

    def _async_client(self) -> tuple[redis.asyncio.Redis, dict[str, Any]]:
        """The async client of the running event loop (redis.asyncio connections belong to
        one loop; a store may be used from several: ``asyncio.run`` per call, threads)."""
        loop = asyncio.get_running_loop()
        found = self._aclients.get(id(loop))
        if found is not None and found[0] is loop:
            return found[1], found[2]
        client = redis.asyncio.Redis.from_url(
            self._conninfo, retry=Retry(NoBackoff(), 0), **self._options
        )
        scripts = {name: client.register_script(src) for name, src in lua.SCRIPTS.items()}
        with self._alock:
            for key, (other, _, _) in builtins.list(self._aclients.items()):
                if other.is_closed():  # that loop ended: its connections went with it
                    del self._aclients[key]
            self._aclients[id(loop)] = (loop, client, scripts)
        return client, scripts

    async def _arun(self, op: Op[_T]) -> _T:
        try:
            client, scripts = self._async_client()

            async def execute(request: tuple[Any, ...]) -> Any:
                try:
                    if request[0] == "cmd":
                        return await client.execute_command(*request[1:])  # type: ignore[no-untyped-call]
                    return await scripts[request[0]](keys=[], args=[self._prefix, *request[1:]])
                except _LOST as exc:
                    raise _Lost(str(exc)) from exc

            return await adrive(op, execute, (_Lost,))
        except (redis.RedisError, OSError, _Lost) as exc:
            raise self._error(exc) from exc

    def _close(self) -> None:
        self._client.close()
        with self._alock:
            clients, self._aclients = builtins.list(self._aclients.values()), {}
        for loop, client, _ in clients:
            if not loop.is_closed() and not loop.is_running():
                loop.run_until_complete(client.aclose())

    async def _aclose(self) -> None:
        loop = asyncio.get_running_loop()
        with self._alock:
            found = self._aclients.pop(id(loop), None)
        if found is not None and found[0] is loop:
            await found[1].aclose()

    # -- ops -------------------------------------------------------------------------------

    @staticmethod
    def _ask(*request: Any) -> Op[Any]:
        """A read: asked again, on a fresh connection, if the connection broke."""
        try:
            return (yield request)
        except _Lost:
            return (yield request)

    def _read(self, run_id: str) -> Op[tuple[RunRecord, bytes, bytes] | None]:
        flat = yield from self._ask("cmd", "HGETALL", self._prefix + "r:" + run_id)
        return parse_run(flat) if flat else None

    def _op_get(self, run_id: str) -> Op[RunRecord | None]:
        found = yield from self._read(run_id)
        return None if found is None else found[0]

    @staticmethod
    def _place(record: RunRecord) -> builtins.list[str]:
        """Raw status, raw pipeline, score, expiry, wake time, lease end: its index entries."""
        r = record
        return [
            r.status,
            r.pipeline,
            text(r.updated_at),
            text(r.expires_at),
            text(r.wake_at),
            text(r.lease_until),
        ]

    def _op_insert(self, record: RunRecord, first: VersionRecord | None) -> Op[None]:
        args = [record.run_id, *run_args(record), *self._place(record), *version_args(first)]
        try:
            done = yield ("insert", *args)
        except _Lost:
            found = yield from self._op_get(record.run_id)
            done = int(found == record) if found is not None else (yield ("insert", *args))
        if done != 1:
            raise RunConflictError(f"run {record.run_id!r} already exists", run_id=record.run_id)

    def _op_cas(
        self, seq: bytes, rev: bytes, new: RunRecord, version: VersionRecord | None
    ) -> Op[bool]:
        args = [new.run_id, seq, rev, *run_args(new), *self._place(new), *version_args(version)]
        try:
            done = yield ("cas", *args)
        except _Lost:  # applied or not: the run says
            found = yield from self._read(new.run_id)
            return (
                found is not None
                and found[1] == seq
                and int(found[2]) == int(rev) + 1
                and found[0] == new
            )
        return bool(done == 1)

    def _op_update(
        self, run_id: str, change: Change, version: VersionRecord | None
    ) -> Op[RunRecord]:
        while True:  # optimistic: read, decide with the pure rules, compare-and-set
            found = yield from self._read(run_id)
            if found is None:
                raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id)
            record, seq, rev = found
            new = change(record, self._clock())
            if (yield from self._op_cas(seq, rev, new, version)):
                return new

    def _run_and_chain(
        self, run_id: str, upto: int | None
    ) -> Op[tuple[RunRecord, bytes, bytes, builtins.list[VersionRecord]] | None]:
        reply = yield from self._ask("run_and_chain", run_id, "" if upto is None else str(upto))
        if not reply:
            return None
        record, seq, rev = parse_run(reply[0])
        chain = [parse_version(body, snap) for _, body, snap in reversed(reply[1:])]
        return record, seq, rev, chain

    def _op_claim_and_load(
        self, run_id: str, change: Change, upto: int | None, seen: builtins.list[RunRecord]
    ) -> Op[Loaded]:
        wanted = upto if type(upto) is int and upto >= 1 else None  # else change() says why
        while True:
            found = yield from self._run_and_chain(run_id, wanted)
            if found is None:
                raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id)
            record, seq, rev, chain = found
            claimed = change(record, self._clock())
            target = target_version(claimed, run_id, upto)
            chain = checked_chain(run_id, target, chain)  # before claiming: nothing to undo
            if (yield from self._op_cas(seq, rev, claimed, None)):
                return seen[-1], claimed, chain

    def _op_chain(self, run_id: str, upto: int | None) -> Op[builtins.list[VersionRecord]]:
        found = yield from self._run_and_chain(run_id, upto)
        target = target_version(None if found is None else found[0], run_id, upto)
        assert found is not None
        return checked_chain(run_id, target, found[3])

    def _op_append(self, version: VersionRecord, owner: str, lease: float | None) -> Op[None]:
        v, now = version, self._clock()
        lease_until = "" if lease is None else json.dumps(now + lease)
        n, body, link, snapshot = version_args(v)
        args = [v.run_id, json.dumps(owner), n, json.dumps(v.step_name), json.dumps(now)]
        for attempt in (1, 2):
            lost = False
            try:
                done = yield ("append", *args, lease_until, body, link, snapshot)
                if done == 1:
                    return
            except _Lost:
                lost = True  # landed or not: the stored version says
            reply = yield from self._ask("run_and_chain", v.run_id, n)
            record = parse_run(reply[0])[0] if reply else None
            ours = record is not None and record.owner == owner and record.version == v.version
            if ours and len(reply) > 1 and parse_version(reply[1][1], reply[1][2]) == v:
                return  # our own write, applied before the connection broke
            if record is None:
                raise RunNotFoundError(f"no run {v.run_id!r}", run_id=v.run_id)
            _transitions.append(record, now, version=v, owner=owner, lease=lease)  # says why
            if not (lost and attempt == 1):
                break  # else: not applied, and still ours to write: once more
        raise RunConflictError(f"run {v.run_id!r} changed concurrently", run_id=v.run_id)

    def _op_list(
        self, pipeline: str | None, status: str | None, limit: int | None
    ) -> Op[builtins.list[RunRecord]]:
        key = "i:all"
        if status is not None and pipeline is not None:
            key = f"i:s:{status}:{pipeline}"
        elif status is not None:
            key = f"i:s:{status}"
        elif pipeline is not None:
            key = f"i:p:{pipeline}"
        if limit == 0:
            return []
        reply = yield from self._ask("list", key, -1 if limit is None else limit)
        return [parse_run(flat)[0] for flat in reply]

    def _op_delete(self, run_id: str) -> Op[bool]:
        deleted = yield ("delete", run_id, "", "")
        return bool(deleted)

    def _op_purge(self, rule: PurgeRule) -> Op[int]:
        now = self._clock()
        ids: dict[str, None] = {}
        if rule.expired:
            found = yield ("cmd", "ZRANGEBYSCORE", self._prefix + "i:exp", "-inf", f"({now!r}")
            ids.update(dict.fromkeys(x.decode() for x in found))
        if rule.older_than is not None:
            stale = now - rule.older_than
            found = yield ("cmd", "ZRANGEBYSCORE", self._prefix + "i:all", "-inf", f"({stale!r}")
            ids.update(dict.fromkeys(x.decode()[20:] for x in found))
        if not ids:
            return 0
        hashes = yield ("get_many", *ids)
        doomed: builtins.list[Any] = []
        for flat in hashes:
            if flat:
                record, seq, rev = parse_run(flat)
                if rule.matches(record, now):
                    doomed += [record.run_id, seq, rev]
        if not doomed:
            return 0
        deleted = yield ("delete", *doomed)
        return int(deleted)

    def _op_deliver(self, signal: SignalRecord, change: Change) -> Op[RunRecord | None]:
        run_id, key = signal.run_id, signal.idempotency_key
        while True:
            found = yield from self._read(run_id)
            if found is None:
                raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id)
            record, seq, rev = found
            now = self._clock()
            new = change(record, now)
            message = json.dumps([signal.signal, signal.data, key, now])
            args = [run_id, seq, rev, *run_args(new), *self._place(new), *version_args(None)]
            try:
                done = yield ("deliver", *args, message, key or "")
            except _Lost:
                if key is None:  # landed or not: without a key, nothing can tell
                    raise
                continue  # the next round finds it by its key, or delivers it
            if done == -1:
                return None
            if done == 1:
                return record

    def _op_signals(self, run_id: str) -> Op[builtins.list[SignalRecord] | None]:
        reply = yield from self._ask("signals", run_id)
        if reply is None:
            return None
        found = []
        for seq, body in enumerate(reply, 1):
            try:
                name, data, key, created_at = json.loads(body)
            except (ValueError, TypeError, RecursionError) as exc:
                raise StoreError(f"corrupt signal mailbox of run {run_id!r} in Redis") from exc
            found.append(SignalRecord(run_id, seq, name, data, key, created_at))
        return found

    def _op_due(self, now: float, limit: int | None) -> Op[builtins.list[RunRecord]]:
        rows = -1 if limit is None else limit
        woken = yield from self._ask("by_score", "i:wake", repr(now), rows)
        expired = yield from self._ask("by_score", "i:lease", repr(now), rows)
        found = [parse_run(flat)[0] for flat in [*woken, *expired]]
        found = sorted((r for r in found if _transitions.is_due(r, now)), key=due_order)
        return found if limit is None else found[:limit]

    def _op_waiting(self, signal: str, limit: int | None) -> Op[builtins.list[RunRecord]]:
        reply = yield from self._ask("list", "i:s:waiting", -1)
        found = [r for r in (parse_run(flat)[0] for flat in reply) if r.waits_for(signal)]
        found.reverse()  # oldest first
        return found if limit is None else found[:limit]

    def _op_version(self, run_id: str, number: int) -> Op[VersionRecord | None]:
        key = self._prefix + "v:" + run_id
        body, snapshot = yield from self._ask("cmd", "HMGET", key, str(number), f"{number}s")
        return None if body is None else parse_version(body, snapshot)

    def _op_history(self, run_id: str) -> Op[builtins.list[VersionRecord] | None]:
        reply = yield from self._ask("history", run_id)
        if reply is None:
            return None
        found = [parse_version(body, None) for body in reply]
        for v in found:
            problem = version_problem(v)
            if problem is not None:
                raise StoreError(f"corrupt version in Redis: {problem}")
        return found
