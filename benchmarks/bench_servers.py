"""Durable runs on PostgreSQL and Redis, against each server's own floor measured alongside.

Run (servers from .ci/servers, or any, named by the same variables)::

    eval "$(.ci/servers start)"
    PYTHONPATH=$PWD/src python benchmarks/bench_servers.py [--quick]

1. Per persisted step: the marginal cost of a step of a persisted run over the
   same step without a store (a 30-step pipeline, run with and without
   ``store=``, divided by 30) and ``store.save_step`` alone, against the floor:
   one ``INSERT`` of the row a step writes + ``COMMIT`` (PostgreSQL, autocommit,
   same table and indexes); one ``SET`` of the version's JSON (Redis). Goal <= 1.5x.
2. Per resume of a run paused with one step left (claim and load, the step, the
   release) against its floor in raw commands: PostgreSQL: the claim and read in
   one transaction, the step's ``INSERT``, the release ``UPDATE``; Redis: an
   ``HSET`` claim, a ``GET`` of the stored context, the step's ``SET``, an ``HSET``
   release. Goal <= 1.5x.
3. Throughput: 1 to 4 worker processes sharing one PostgreSQL (and Redis), each
   running 5-step pipelines as fast as it can: runs per second, all workers together.

Numbers depend on the machine and its disk (PostgreSQL commits wait for fsync);
the ratios are taken within each round. Median and spread of interleaved rounds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from stepkit import Pipeline
from stepkit.stores import BaseStore, PostgresStore, RedisStore

PG = os.environ.get("STEPKIT_TEST_POSTGRES_URL", "")
REDIS = os.environ.get("STEPKIT_TEST_REDIS_URL", "")
LENGTH = 30
CONTEXT: dict[str, Any] = {"user": "ana", "items": list(range(20)), "note": "x" * 200}


def linear(n: int, name: str = "bench") -> Pipeline:
    pipeline = Pipeline(name)
    for i in range(n):
        pipeline = pipeline.step(f"s{i}", lambda ctx, i=i: {"i": i})
    return pipeline


def rounds(
    calls: dict[str, tuple[Callable[[], object], int]], repeat: int
) -> dict[str, list[float]]:
    """Seconds per call of each function, in ``repeat`` interleaved rounds."""
    for fn, _ in calls.values():
        fn()
    samples: dict[str, list[float]] = {}
    for _ in range(repeat):
        for name, (fn, number) in calls.items():
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            samples.setdefault(name, []).append((time.perf_counter() - t0) / number)
    return samples


def spread(values: list[float], scale: float = 1e6, digits: int = 0) -> str:
    lo, mid, hi = min(values) * scale, statistics.median(values) * scale, max(values) * scale
    return f"{mid:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def open_server(kind: str, space: str) -> BaseStore:
    if kind == "postgres":
        return PostgresStore(PG, schema=space)
    return RedisStore(REDIS, prefix=space + ":")


def drop(kind: str, space: str) -> None:
    if kind == "postgres":
        import psycopg

        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{space}" CASCADE')
    else:
        import redis

        client = redis.Redis.from_url(REDIS)
        keys = list(client.scan_iter(match=space + ":*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
        client.close()


# -- floors -----------------------------------------------------------------------------------


def pg_floor_step(space: str) -> Callable[[], None]:
    """One INSERT of a step's row into the store's own versions table, committed."""
    import psycopg

    conn = psycopg.connect(PG, autocommit=True)
    run_id, counter, now = uuid.uuid4().hex, iter(range(2, 10**9)), time.time()
    sql = (
        f'INSERT INTO "{space}".stepkit_versions (run_id, version, parent, step_name, changes, '
        "removed, position, snapshot, created_at, kind) "
        "VALUES (%s, %s, %s, %s, %s, '[]', %s, NULL, %s, 'step')"
    )

    def insert() -> None:
        n = next(counter)
        conn.execute(sql, (run_id, n, n - 1, f"s{n}", json.dumps({"i": n}), "{}", now))

    return insert


def redis_floor_step(space: str) -> Callable[[], None]:
    """One SET of a step's JSON."""
    import redis

    client = redis.Redis.from_url(REDIS)
    run_id, counter = uuid.uuid4().hex, iter(range(2, 10**9))

    def put() -> None:
        n = next(counter)
        client.set(f"{space}:floor:{run_id}:{n}", json.dumps({"i": n, "step": f"s{n}"}))

    return put


def pg_floor_resume(space: str, n: int) -> Callable[[], None]:
    """A resume in raw SQL: claim and read in one transaction, the step, the release."""
    import psycopg

    conn = psycopg.connect(PG, autocommit=True)
    now, snapshot = time.time(), json.dumps(CONTEXT)
    ids = [uuid.uuid4().hex for _ in range(n)]
    s = f'"{space}"'
    with conn.transaction():
        for run_id in ids:
            conn.execute(
                f"INSERT INTO {s}.stepkit_runs (run_id, pipeline, status, version, step_name, "
                "created_at, updated_at, meta) "
                "VALUES (%s, 'floor', 'paused', 1, 's0', %s, %s, '{}')",
                (run_id, now, now),
            )
            conn.execute(
                f"INSERT INTO {s}.stepkit_versions (run_id, version, changes, removed, position, "
                "snapshot, created_at) VALUES (%s, 1, '{}', '[]', '{}', %s, %s)",
                (run_id, snapshot, now),
            )
    todo = iter(ids)

    def resume() -> None:
        run_id = next(todo)
        with conn.transaction():
            claimed = conn.execute(
                f"UPDATE {s}.stepkit_runs SET status = 'running', owner = 'bench', "
                "lease_until = %s, updated_at = %s WHERE run_id = %s AND status = 'paused'",
                (now + 30, now, run_id),
            ).rowcount
            rows = conn.execute(
                f"SELECT changes, position, snapshot FROM {s}.stepkit_versions WHERE run_id = %s "
                "ORDER BY version",
                (run_id,),
            ).fetchall()
        assert claimed == 1
        json.loads(rows[0][2])
        conn.execute(
            f"INSERT INTO {s}.stepkit_versions (run_id, version, parent, changes, removed, "
            "position, created_at) VALUES (%s, 2, 1, %s, '[]', '{}', %s)",
            (run_id, json.dumps({"i": 1}), now),
        )
        conn.execute(
            f"UPDATE {s}.stepkit_runs SET status = 'completed', owner = NULL, lease_until = NULL, "
            "version = 2, updated_at = %s WHERE run_id = %s AND owner = 'bench'",
            (now, run_id),
        )

    return resume


def redis_floor_resume(space: str, n: int) -> Callable[[], None]:
    """A resume in raw commands: HSET claim, GET the context, SET the step, HSET release."""
    import redis

    client = redis.Redis.from_url(REDIS)
    snapshot = json.dumps(CONTEXT)
    ids = [uuid.uuid4().hex for _ in range(n)]
    for run_id in ids:
        client.set(f"{space}:floor:{run_id}:1", snapshot)
    todo = iter(ids)

    def resume() -> None:
        run_id = next(todo)
        client.hset(f"{space}:floor:{run_id}", mapping={"status": "running", "owner": "bench"})
        json.loads(client.get(f"{space}:floor:{run_id}:1") or b"{}")
        client.set(f"{space}:floor:{run_id}:2", json.dumps({"i": 1}))
        client.hset(f"{space}:floor:{run_id}", mapping={"status": "completed", "owner": ""})

    return resume


# -- 1 and 2 ----------------------------------------------------------------------------------


def save_step_alone(store: BaseStore) -> Callable[[], None]:
    """``store.save_step``: what the engine calls once per persisted step."""
    from stepkit.stores import RunRecord, VersionRecord

    run_id, now = uuid.uuid4().hex, time.time()
    first = VersionRecord(run_id, 1, None, None, "{}", (), "null", json.dumps(CONTEXT), now)
    store.create(
        RunRecord(run_id, "bench", "running", 1, None, None, now, now, None, "bench", None, "{}"),
        first,
    )
    counter = iter(range(2, 10**9))

    def save() -> None:
        n = next(counter)
        store.save_step(
            run_id, n, n - 1, f"s{n}", json.dumps({"i": n}), (), "{}", None, now, "bench", 30.0
        )

    return save


def per_step(kind: str, repeat: int) -> dict[str, list[float]]:
    space = "bench_" + uuid.uuid4().hex[:8]
    store = open_server(kind, space)
    try:
        pipeline, runs = linear(LENGTH), 3
        floor = pg_floor_step(space) if kind == "postgres" else redis_floor_step(space)
        s = rounds(
            {
                "durable": (lambda: pipeline.run(CONTEXT, store=store), runs),
                "plain": (lambda: pipeline.run(CONTEXT), runs),
                "save_step": (save_step_alone(store), runs * LENGTH),
                "floor": (floor, runs * LENGTH),
            },
            repeat,
        )
    finally:
        store.close()
        drop(kind, space)
    s["persisting"] = [(d - p) / LENGTH for d, p in zip(s["durable"], s["plain"], strict=True)]
    s["ratio"] = [p / f for p, f in zip(s["persisting"], s["floor"], strict=True)]
    s["save ratio"] = [p / f for p, f in zip(s["save_step"], s["floor"], strict=True)]
    return s


def per_resume(kind: str, repeat: int) -> dict[str, list[float]]:
    space = "bench_" + uuid.uuid4().hex[:8]
    store = open_server(kind, space)
    number = 20
    try:
        two = (
            Pipeline("resume-bench").step("s0", lambda ctx: {"i": 0}).step("s1", lambda c: {"i": 1})
        )

        def pause(event: Any) -> None:
            event.stop_pipeline()

        ids = iter(
            [
                two.run(CONTEXT, store=store, on_step_complete=pause).run_id
                for _ in range((repeat + 1) * number + 1)
            ]
        )
        floor = (pg_floor_resume if kind == "postgres" else redis_floor_resume)(
            space, (repeat + 1) * number
        )
        s = rounds(
            {
                "resume": (lambda: two.resume(next(ids), store=store), number),
                "floor": (floor, number),
            },
            repeat,
        )
    finally:
        store.close()
        drop(kind, space)
    s["ratio"] = [r / f for r, f in zip(s["resume"], s["floor"], strict=True)]
    return s


# -- 3. throughput ------------------------------------------------------------------------------


def _worker(kind: str, space: str, runs: int, start: Any, done: Any) -> None:
    store = open_server(kind, space)
    pipeline = linear(5, "throughput")
    pipeline.run(CONTEXT, store=store)  # warm up: connections, imports
    start.wait()
    for _ in range(runs):
        pipeline.run(CONTEXT, store=store)
    done.put(time.perf_counter())
    store.close()


def throughput(kind: str, workers: int, runs: int) -> float:
    """Runs per second of ``workers`` processes each running ``runs`` 5-step runs."""
    space = "bench_" + uuid.uuid4().hex[:8]
    open_server(kind, space).close()  # the schema, before the workers race for it
    ctx = multiprocessing.get_context("spawn")
    start, done = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(kind, space, runs, start, done)) for _ in range(workers)
    ]
    for p in procs:
        p.start()
    time.sleep(2.0)  # let every worker connect and warm up before the start signal
    t0 = time.perf_counter()
    start.set()
    ends = [done.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(60)
    drop(kind, space)
    return workers * runs / (max(ends) - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and runs")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    kinds = [k for k, url in (("postgres", PG), ("redis", REDIS)) if url]
    if not kinds:
        sys.exit('no server: run `eval "$(.ci/servers start)"` first')
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; rounds: {repeat}\n")
    print(
        "| server | step, persisting (us) | save_step (us) | floor (us) | "
        "**persisting / floor** | save_step / floor |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for kind in kinds:
        s = per_step(kind, repeat)
        print(
            f"| {kind} | {spread(s['persisting'])} | {spread(s['save_step'])} | "
            f"{spread(s['floor'])} | **{spread(s['ratio'], 1, 2)}** | "
            f"{spread(s['save ratio'], 1, 2)} |"
        )
    print("\n| server | resume (us) | floor (us) | **resume / floor** |")
    print("| --- | --- | --- | --- |")
    for kind in kinds:
        r = per_resume(kind, repeat)
        print(
            f"| {kind} | {spread(r['resume'])} | {spread(r['floor'])} | "
            f"**{spread(r['ratio'], 1, 2)}** |"
        )
    runs = 40 if args.quick else 150
    print(f"\nThroughput, 5-step runs, {runs} per worker (runs/s, all workers together):\n")
    print("| server | " + " | ".join(f"{w} worker{'s' * (w > 1)}" for w in range(1, 5)) + " |")
    print("| --- |" + " --- |" * 4)
    for kind in kinds:
        rates = [throughput(kind, w, runs) for w in range(1, 5)]
        print(f"| {kind} | " + " | ".join(f"{r:.0f}" for r in rates) + " |")


if __name__ == "__main__":
    main()
