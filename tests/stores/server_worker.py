"""A worker process sharing runs with others through a server store (run as a script).

    python tests/stores/server_worker.py work  URL LOG [--lease S] [--idle S]
    python tests/stores/server_worker.py write URL IDENT COUNT

``work`` is the recovery loop of docs/stores.md: resume paused runs, and take over
running runs whose lease expired (``recover=True``), until none is left. Each step
appends ``<run_id> <step>`` to ``LOG`` (one O_APPEND write) before it returns, so
the log counts step executions across processes and kills. ``write`` creates
COUNT runs (create, three appends, finish) as fast as it can.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from stepkit import Pipeline, RunConflictError, RunExpiredError, StepEvent
from stepkit.stores import RunRecord, VersionRecord, open_store

#: the mixed pipelines: name -> number of steps after the first one
SHAPES = {"short": 2, "medium": 4, "long": 7}


def append_line(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)


def pipeline(shape: str, log: str | None) -> Pipeline:
    """``s0`` (which the parent's start pauses after), then the shape's steps, each logged."""
    p = Pipeline(shape).step("s0", lambda ctx: {"n": 0})

    def make(k: int) -> Any:
        def step(ctx: Any) -> dict[str, Any]:
            if log is not None:
                append_line(log, f"{ctx['run_id']} s{k}")
            return {"n": ctx["n"] + k}

        return step

    for k in range(1, SHAPES[shape] + 1):
        p = p.step(f"s{k}", make(k))
    return p


def pause_after_s0(event: StepEvent) -> None:
    if event.step_name == "s0":
        event.stop_pipeline()


def expected(shape: str) -> int:
    return sum(range(1, SHAPES[shape] + 1))


def work(url: str, log: str, lease: float, idle: float) -> None:
    """The recovery loop: until no run is paused or running, take what is free."""
    store = open_store(url)
    pipelines = {shape: pipeline(shape, log) for shape in SHAPES}
    quiet_since = time.monotonic()
    while True:
        did = False
        for record in store.list(status="paused", limit=20):
            try:
                pipelines[record.pipeline].resume(record.run_id, store=store, lease=lease)
                did = True
            except RunConflictError:
                pass  # another worker took it first
        now = store.now()
        for record in store.list(status="running", limit=None):
            if record.lease_until is not None and record.lease_until <= now:
                try:  # its worker stopped renewing the lease: it is gone
                    pipelines[record.pipeline].resume(
                        record.run_id, store=store, recover=True, lease=lease
                    )
                    did = True
                except (RunConflictError, RunExpiredError):
                    pass
        if did:
            quiet_since = time.monotonic()
            continue
        finished = not store.list(status="paused", limit=1) and not store.list(status="running")
        if finished or time.monotonic() - quiet_since > idle:
            break
        else:
            time.sleep(0.02)
    store.close()
    print("done", flush=True)


def write(url: str, ident: str, count: int) -> None:
    store = open_store(url)
    for i in range(count):
        run_id, now = f"{ident}-{i}", time.time()

        def v(n: int, run_id: str = run_id, now: float = now) -> VersionRecord:
            changes = f'{{"step": {n}}}'
            snapshot = changes if n == 1 else None
            return VersionRecord(
                run_id, n, n - 1 or None, f"s{n}", changes, (), "{}", snapshot, now
            )

        record = RunRecord(
            run_id, "load", "running", 1, "s1", None, now, now, None, ident, None, "{}"
        )
        store.create(record, v(1))
        for n in (2, 3, 4):
            store.append(v(n), owner=ident)
        store.finish(run_id, owner=ident, status="completed")
    store.close()
    print("done", flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "work":
        args = sys.argv[2:]
        lease = float(args[args.index("--lease") + 1]) if "--lease" in args else 1.0
        idle = float(args[args.index("--idle") + 1]) if "--idle" in args else 60.0
        work(args[0], args[1], lease, idle)
    else:
        write(sys.argv[2], sys.argv[3], int(sys.argv[4]))
