"""stepkit side by side with LangGraph and DBOS, each against a floor measured in the same run.

Run it in a throw-away environment (the peers are never dependencies of stepkit)::

    python3 -m venv /tmp/peers && /tmp/peers/bin/pip install -e . langgraph \\
        langgraph-checkpoint-sqlite langgraph-checkpoint-postgres "psycopg[binary]" \\
        psycopg-pool dbos
    eval "$(.ci/servers start)"      # optional: part d needs STEPKIT_TEST_POSTGRES_URL
    /tmp/peers/bin/python benchmarks/bench_peers.py [--quick] [--dir PATH]

A peer that is not importable is reported as ``skipped: <package> not importable``
and the stepkit rows are still measured. One process; every comparison is made of
alternating rounds (``_report.interleaved``) with its floor measured in the same run:

a. **Per node execution**: a 100-node chain on plain edges, and one node looping
   100 times through a conditional edge: ``stepkit.Graph`` and LangGraph's
   ``StateGraph`` (no checkpointer), each over a plain loop doing the same work
   (for the loop: the step and the selector).
b. **Per step in memory**: a ``stepkit.Pipeline`` of 100 trivial steps and a
   LangGraph ``StateGraph`` chain of the same 100 functions, over a plain loop.
c. **Durable workflows on SQLite** (WAL, ``synchronous=FULL`` for all): the time
   of a 100-op workflow (one persisted op per ``step.run`` / ``@task`` /
   ``@DBOS.step``, run to completion) divided by 100, against 100 raw
   ``INSERT`` + ``COMMIT`` on a plain ``sqlite3`` connection, divided by 100.
d. **PostgreSQL** (when ``STEPKIT_TEST_POSTGRES_URL`` is set): a 20-step flow
   with one persisted step each (stepkit ``PostgresStore``, LangGraph
   ``PostgresSaver`` with ``durability="sync"``, DBOS on PostgreSQL), divided by
   20, against 20 ``INSERT`` + ``COMMIT`` (autocommit) on the same server.

The durable figures divide a whole run by its steps, so each includes its run's
creation and completion (and each framework's own reads) shared among the steps.
Printed: medians, and the spread (min-max) of the per-round ratios.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

from _report import Interleaved, interleaved, machine

from stepkit import END, START, Graph, Pipeline
from stepkit.stores import SQLiteStore
from stepkit.workflows import Client, SQLiteDriver

NODES = 100  # node executions per run in a and b
OPS = 100  # persisted ops per workflow in c
PG_STEPS = 20  # persisted steps per run in d
PG = os.environ.get("STEPKIT_TEST_POSTGRES_URL", "")
SKIPPED: list[str] = []


def peer(module: str, package: str) -> Any:
    """``module`` if it imports, else ``None`` (and a skip line, printed once per package)."""
    try:
        return importlib.import_module(module)
    except Exception:
        line = f"skipped: {package} not importable"
        if line not in SKIPPED:
            SKIPPED.append(line)
            print(line)
        return None


def version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version(package)
    except PackageNotFoundError:
        return "not installed"


def us(seconds: float, per: int = 1) -> str:
    return f"{seconds / per * 1e6:.2f}"


# -- a and b: in memory -----------------------------------------------------------------------


class State(TypedDict):
    n: int


def bump(ctx: Any) -> dict[str, int]:
    return {"n": ctx["n"] + 1}


def again(ctx: Any) -> str:
    return "again" if ctx["n"] < NODES else "done"


def plain_loop(ctx: dict[str, Any]) -> dict[str, Any]:
    ctx = dict(ctx)
    for _ in range(NODES):
        ctx.update(bump(ctx))
    return ctx


def routed_loop(ctx: dict[str, Any]) -> dict[str, Any]:
    ctx = dict(ctx)
    while True:
        ctx.update(bump(ctx))
        if again(ctx) != "again":
            return ctx


def stepkit_shapes() -> dict[str, Any]:
    pipeline = Pipeline("bench")
    for i in range(NODES):
        pipeline = pipeline.step(f"s{i}", bump)
    chain = Graph("chain", max_steps=NODES).add_edge(START, "s0")
    for i in range(NODES):
        chain = chain.add_node(f"s{i}", bump).add_edge(
            f"s{i}", f"s{i + 1}" if i + 1 < NODES else END
        )
    loop = (
        Graph("loop", max_steps=NODES)
        .add_node("bump", bump)
        .add_edge(START, "bump")
        .add_conditional_edges("bump", again, {"again": "bump", "done": END})
    )
    return {"pipeline": pipeline, "chain": chain, "loop": loop}


def langgraph_chain(n: int, checkpointer: Any = None) -> Any:
    from langgraph.graph import END as LG_END
    from langgraph.graph import START as LG_START
    from langgraph.graph import StateGraph

    builder = StateGraph(State)
    for i in range(n):
        builder.add_node(f"s{i}", bump)
        builder.add_edge(f"s{i - 1}" if i else LG_START, f"s{i}")
    builder.add_edge(f"s{n - 1}", LG_END)
    return builder.compile(checkpointer=checkpointer)


def langgraph_loop() -> Any:
    from langgraph.graph import END as LG_END
    from langgraph.graph import START as LG_START
    from langgraph.graph import StateGraph

    builder = StateGraph(State)
    builder.add_node("bump", bump)
    builder.add_edge(LG_START, "bump")
    builder.add_conditional_edges("bump", again, {"again": "bump", "done": LG_END})
    return builder.compile()


LG_CONFIG = {"recursion_limit": 10 * NODES}


def node_row(label: str, got: Interleaved) -> str:
    return (
        f"| {label} | {us(got.candidate, NODES)} | {us(got.floor, NODES)} | "
        f"**{us(got.overhead, NODES)}** | {got.spread()} |"
    )


def in_memory(rounds: int) -> None:
    ctx = {"n": 0}
    sk = stepkit_shapes()
    assert sk["pipeline"].run(ctx)["n"] == sk["chain"].run(ctx)["n"] == NODES
    assert sk["loop"].run(ctx)["n"] == routed_loop(ctx)["n"] == plain_loop(ctx)["n"] == NODES
    have_lg = peer("langgraph.graph", "langgraph") is not None

    def run_sk(name: str) -> Callable[[], object]:
        return lambda: sk[name].run(ctx)

    sk_rows = {
        "chain": interleaved(run_sk("chain"), lambda: plain_loop(ctx), rounds=rounds, number=300),
        "loop": interleaved(run_sk("loop"), lambda: routed_loop(ctx), rounds=rounds, number=300),
        "pipeline": interleaved(
            run_sk("pipeline"), lambda: plain_loop(ctx), rounds=rounds, number=300
        ),
    }
    lg_rows: dict[str, Interleaved] = {}
    direct: dict[str, Interleaved] = {}
    if have_lg:
        lg = {"chain": langgraph_chain(NODES), "loop": langgraph_loop()}
        for graph in lg.values():
            assert graph.invoke(ctx, LG_CONFIG)["n"] == NODES

        def run_lg(name: str) -> Callable[[], object]:
            return lambda: lg[name].invoke(ctx, LG_CONFIG)

        lg_rows["chain"] = interleaved(
            run_lg("chain"), lambda: plain_loop(ctx), rounds=rounds, number=10
        )
        lg_rows["loop"] = interleaved(
            run_lg("loop"), lambda: routed_loop(ctx), rounds=rounds, number=10
        )
        # the same rounds for both frameworks: a direct ratio of whole runs, with its spread
        direct["chain"] = interleaved(run_lg("chain"), run_sk("chain"), rounds=rounds, number=10)
        direct["loop"] = interleaved(run_lg("loop"), run_sk("loop"), rounds=rounds, number=10)
        direct["pipeline"] = interleaved(
            run_lg("chain"), run_sk("pipeline"), rounds=rounds, number=10
        )

    print(f"\n### a. Per node execution ({NODES} executions of a trivial step, no checkpointer)\n")
    print("| framework, shape | us per node | floor (us) | **overhead (us)** | / floor (spread) |")
    print("|---|---:|---:|---:|---:|")
    for shape, text in (("chain", "100 nodes, plain edges"), ("loop", "1 node, conditional edge")):
        print(node_row(f"stepkit Graph, {text}", sk_rows[shape]))
        if have_lg:
            print(node_row(f"LangGraph StateGraph, {text}", lg_rows[shape]))
    if have_lg:
        print("\n| shape | LangGraph / stepkit overhead | LangGraph / stepkit whole run (spread) |")
        print("|---|---:|---:|")
        for shape in ("chain", "loop"):
            print(
                f"| {shape} | **{lg_rows[shape].overhead / sk_rows[shape].overhead:.1f}x** | "
                f"{direct[shape].spread()} |"
            )

    print(f"\n### b. Per step in memory ({NODES} trivial steps, floor: a plain loop)\n")
    print("| framework | us per step | floor (us) | **overhead (us)** | / floor (spread) |")
    print("|---|---:|---:|---:|---:|")
    print(node_row("stepkit Pipeline", sk_rows["pipeline"]))
    if have_lg:
        print(node_row("LangGraph StateGraph chain", lg_rows["chain"]))
        print(
            f"\nLangGraph / stepkit: overhead per step **"
            f"{lg_rows['chain'].overhead / sk_rows['pipeline'].overhead:.1f}x**, "
            f"whole run {direct['pipeline'].spread()}"
        )


# -- c: durable workflows on SQLite -----------------------------------------------------------


def sqlite_floor(path: Path, n: int) -> Callable[[], None]:
    """``n`` x (``INSERT`` of an op's version row into stepkit's own table, ``COMMIT``)."""
    SQLiteStore(path).close()  # the same table and indexes as the store
    db = sqlite3.connect(path, isolation_level=None)
    assert db.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    db.execute("PRAGMA synchronous=FULL")
    run_id, counter, now = uuid.uuid4().hex, iter(range(1, 10**9)), time.time()
    changes = '{"op#17":{"kind":"run","value":17}}'

    def insert() -> None:
        for _ in range(n):
            v = next(counter)
            db.execute("BEGIN")
            db.execute(
                "INSERT INTO stepkit_versions (run_id, version, parent, step_name, changes, "
                "removed, position, snapshot, created_at, renew_lease, kind) "
                "VALUES (?, ?, ?, ?, ?, '[]', '', NULL, ?, ?, 'op')",
                (run_id, v, v - 1 or None, "op#17", changes, now, now + 30.0),
            )
            db.execute("COMMIT")

    return insert


def stepkit_workflow(path: Path) -> tuple[Callable[[], object], Callable[[], None]]:
    client = Client(driver=SQLiteDriver(path))  # WAL, synchronous=FULL (the default)

    @client.workflow(id="ops")
    def ops(ctx: Any, step: Any) -> int:
        total = 0
        for i in range(OPS):
            total += step.run("op", int, i)
        return total

    def run() -> object:
        return client.start_workflow(ops)

    assert client.start_workflow(ops).result() == sum(range(OPS))
    return run, lambda: client.store.close()


def langgraph_workflow(path: Path) -> tuple[Callable[[], object], Callable[[], None]] | None:
    if peer("langgraph.checkpoint.sqlite", "langgraph-checkpoint-sqlite") is None:
        return None
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.func import entrypoint, task

    conn = sqlite3.connect(path, check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()  # sets journal_mode=WAL
    conn.execute("PRAGMA synchronous=FULL")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    @task
    def op(i: int) -> int:
        return i

    @entrypoint(checkpointer=saver)
    def ops(n: int) -> int:
        total = 0
        for i in range(n):
            total += op(i).result()
        return total

    def run() -> object:
        config = {"configurable": {"thread_id": uuid.uuid4().hex}}
        return ops.invoke(OPS, config, durability="sync")

    assert run() == sum(range(OPS))
    return run, conn.close


DBOS_FLOWS: dict[str, Any] = {}


def dbos_launch(url: str, schema: str | None = None) -> Any:
    """DBOS (a process-wide singleton) on ``url``, with a workflow of ``n`` steps registered."""
    from dbos import DBOS

    config: dict[str, Any] = {
        "name": "stepkit-bench",
        "system_database_url": url,
        "log_level": "WARNING",
    }
    if schema:
        config["dbos_system_schema"] = schema
    DBOS(config=config)  # type: ignore[arg-type]
    if not DBOS_FLOWS:

        @DBOS.step()
        def op(i: int) -> int:
            return i

        @DBOS.workflow()
        def ops(n: int) -> int:
            total = 0
            for i in range(n):
                total += op(i)
            return total

        DBOS_FLOWS["ops"] = ops
    DBOS.launch()
    return DBOS


def dbos_workflow(path: Path) -> tuple[Callable[[], object], Callable[[], None]] | None:
    if peer("dbos", "dbos") is None:
        return None
    db = sqlite3.connect(path)  # WAL is a property of the file: DBOS keeps it
    assert db.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    db.close()
    dbos = dbos_launch(f"sqlite:///{path}")

    def run() -> object:
        return DBOS_FLOWS["ops"](OPS)

    assert run() == sum(range(OPS))
    return run, lambda: dbos.destroy()


def durable_sqlite(folder: Path, rounds: int) -> None:
    floor = sqlite_floor(folder / "floor.db", OPS)
    print(f"\n### c. Durable workflows on SQLite, per persisted op ({OPS}-op workflow)\n")
    print(
        f"SQLite {sqlite3.sqlite_version}, WAL, synchronous=FULL for every framework and the "
        f"floor; databases in {folder.parent}. Floor: {OPS} x raw INSERT+COMMIT.\n"
    )
    print("| framework | us per op | floor (us) | **op / floor (spread)** |")
    print("|---|---:|---:|---:|")
    makers = (
        ("stepkit.workflows, SQLiteDriver", stepkit_workflow),
        ("LangGraph @entrypoint/@task, SqliteSaver, durability=sync", langgraph_workflow),
        ("DBOS @workflow/@step on SQLite", dbos_workflow),
    )
    for label, make in makers:
        made = make(folder / f"{make.__name__}.db")
        if made is None:
            continue
        run, close = made
        try:
            got = interleaved(run, floor, rounds=rounds, number=4)
        finally:
            close()
        print(f"| {label} | {us(got.candidate, OPS)} | {us(got.floor, OPS)} | **{got.spread()}** |")


# -- d: PostgreSQL ----------------------------------------------------------------------------


def pg_schema(name: str, drop: bool = False) -> None:
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        if drop:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        else:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"')


def pg_floor(schema: str, n: int) -> tuple[Callable[[], None], Callable[[], None]]:
    """``n`` x (``INSERT`` of a step's row into stepkit's versions table, autocommit)."""
    import psycopg

    conn = psycopg.connect(PG, autocommit=True)
    run_id, counter, now = uuid.uuid4().hex, iter(range(2, 10**9)), time.time()
    sql = (
        f'INSERT INTO "{schema}".stepkit_versions (run_id, version, parent, step_name, changes, '
        "removed, position, snapshot, created_at, kind) "
        "VALUES (%s, %s, %s, %s, %s, '[]', %s, NULL, %s, 'step')"
    )

    def insert() -> None:
        for _ in range(n):
            v = next(counter)
            conn.execute(sql, (run_id, v, v - 1, f"s{v}", json.dumps({"n": v}), "{}", now))

    return insert, conn.close


def stepkit_pg(schema: str) -> tuple[Callable[[], object], Callable[[], None]]:
    from stepkit.stores import PostgresStore

    store = PostgresStore(PG, schema=schema)
    pipeline = Pipeline("pg")
    for i in range(PG_STEPS):
        pipeline = pipeline.step(f"s{i}", bump)

    def run() -> object:
        return pipeline.run({"n": 0}, store=store)

    assert run()["n"] == PG_STEPS
    return run, store.close


def langgraph_pg(schema: str) -> tuple[Callable[[], object], Callable[[], None]] | None:
    if peer("langgraph.checkpoint.postgres", "langgraph-checkpoint-postgres") is None:
        return None
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row

    conn = psycopg.connect(
        PG,
        autocommit=True,
        prepare_threshold=0,
        row_factory=dict_row,
        options=f"-c search_path={schema}",
    )
    saver = PostgresSaver(conn)
    saver.setup()
    graph = langgraph_chain(PG_STEPS, checkpointer=saver)

    def run() -> object:
        config = {"configurable": {"thread_id": uuid.uuid4().hex}}
        return graph.invoke({"n": 0}, config, durability="sync")

    assert run()["n"] == PG_STEPS
    return run, conn.close


def dbos_pg(schema: str) -> tuple[Callable[[], object], Callable[[], None]] | None:
    if peer("dbos", "dbos") is None:
        return None
    dbos = dbos_launch(PG, schema=schema)

    def run() -> object:
        return DBOS_FLOWS["ops"](PG_STEPS)

    assert run() == sum(range(PG_STEPS))
    return run, lambda: dbos.destroy()


def durable_postgres(rounds: int) -> None:
    if not PG:
        print("\nskipped: d. PostgreSQL (STEPKIT_TEST_POSTGRES_URL is not set)")
        return
    psycopg = peer("psycopg", "psycopg")
    if psycopg is None:
        return
    try:
        psycopg.connect(PG, connect_timeout=5).close()
    except psycopg.OperationalError as error:
        print(f"\nskipped: d. PostgreSQL (cannot connect: {str(error).splitlines()[0]})")
        return
    space = "bench_peers_" + uuid.uuid4().hex[:8]
    schemas = {name: f"{space}_{name}" for name in ("stepkit", "langgraph", "dbos")}
    print(f"\n### d. PostgreSQL, per persisted step ({PG_STEPS}-step flow)\n")
    print(f"Floor: {PG_STEPS} x INSERT+COMMIT (autocommit) on the same server.\n")
    print("| framework | us per step | floor (us) | **step / floor (spread)** |")
    print("|---|---:|---:|---:|")
    try:
        pg_schema(schemas["langgraph"])
        made_stepkit = stepkit_pg(schemas["stepkit"])  # creates the floor's table too
        floor, close_floor = pg_floor(schemas["stepkit"], PG_STEPS)
        makers = (
            ("stepkit Pipeline, PostgresStore", lambda: made_stepkit),
            (
                "LangGraph StateGraph, PostgresSaver, durability=sync",
                lambda: langgraph_pg(schemas["langgraph"]),
            ),
            ("DBOS @workflow/@step on PostgreSQL", lambda: dbos_pg(schemas["dbos"])),
        )
        for label, make in makers:
            made = make()
            if made is None:
                continue
            run, close = made
            try:
                got = interleaved(run, floor, rounds=rounds, number=5)
            finally:
                close()
            print(
                f"| {label} | {us(got.candidate, PG_STEPS)} | {us(got.floor, PG_STEPS)} | "
                f"**{got.spread()}** |"
            )
        close_floor()
    finally:
        for name in schemas.values():
            pg_schema(name, drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds instead of 9")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the databases")
    args = parser.parse_args()
    rounds = 5 if args.quick else 9
    print(f"Measured on {machine()}; medians of {rounds} alternating rounds.")
    print(
        "Versions: "
        + ", ".join(
            f"{name} {version(name)}"
            for name in (
                "stepkit",
                "langgraph",
                "langgraph-checkpoint-sqlite",
                "langgraph-checkpoint-postgres",
                "dbos",
                "psycopg",
            )
        )
    )
    started = time.perf_counter()
    in_memory(rounds)
    folder = Path(tempfile.mkdtemp(prefix="stepkit-peers-", dir=args.dir))
    try:
        durable_sqlite(folder, rounds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    durable_postgres(rounds)
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
