"""A workflow worker process for the SIGKILL tests (tests/workflows/test_workflow_crash.py).

Run as a script, in a child process::

    python tests/workflows/workflow_worker.py start   STORE LOG RUN_ID [--mark K:PHASE] [--hold]
    python tests/workflows/workflow_worker.py recover STORE LOG RUN_ID [--ahead SECONDS]
                                                      [--mark K:PHASE] [--hold]
    python tests/workflows/workflow_worker.py race    STORE SIDE

``STORE`` is a SQLite file. ``start`` starts the ten-op workflow :func:`tally`
as ``RUN_ID`` and runs it inline; ``recover`` is a worker: one ``run_due()``
with its clock ``--ahead`` seconds in the future (so a killed owner's lease has
run out for it). Each op appends ``<run_id> <key>`` to ``LOG`` (one fsynced
write) inside its body. ``--mark K:PHASE`` prints ``mark`` at op K (1-based):
``start`` before its body, ``logged`` right after its line is on disk,
``done`` after its record was persisted; ``--hold`` then blocks on stdin so
that a SIGKILL lands exactly there.

``race`` is one of several workers contending for the run of :func:`gate`:
it prints ``ready``, waits for a line on stdin, calls ``run_due()`` and
appends ``sent`` to ``SIDE`` in the step after the signal.

Every mode ends with ``done <json>``. Nothing here sleeps: the parent
synchronises through the pipes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[2] / "src"
if str(SRC) not in sys.path:  # pragma: no cover - when run from a checkout without install
    sys.path.append(str(SRC))

from stepkit.workflows import Client, SQLiteDriver  # noqa: E402

WORKER = Path(__file__).resolve()
OPS = tuple(f"s{i:02d}" for i in range(1, 11))
INPUT = {"seed": 7}


def append_line(path: str, line: str) -> None:
    """Append one line with a single write (O_APPEND), then fsync: durable before returning."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def reference() -> int:
    """The result of :func:`tally` on :data:`INPUT`, computed without stepkit."""
    acc = INPUT["seed"]
    for k in range(1, len(OPS) + 1):
        acc = acc * 31 + k
    return acc


def register_tally(client: Client, log: str | None, on_logged: Any = None) -> Any:
    """Ten ``step.run`` ops, each logging its key; the result is order-sensitive."""

    @client.workflow(id="tally")
    def tally(ctx: Any, step: Any) -> int:
        acc = ctx.input["seed"]
        for k, name in enumerate(OPS, start=1):

            def body(acc: int = acc, k: int = k, name: str = name) -> int:
                if log is not None:
                    append_line(log, f"{ctx.run_id} {name}#0")
                if on_logged is not None:
                    on_logged(k)
                return acc * 31 + k

            acc = step.run(name, body)
        return acc

    return tally


def register_gate(client: Client, side: str) -> Any:
    """Waits for ``go``, then a step with a side effect (a line in ``side``)."""

    @client.workflow(id="gate")
    def gate(ctx: Any, step: Any) -> str:
        data = step.wait_for_signal("w", signal="go")
        step.run("send", lambda: append_line(side, "sent"))
        return f"sent {data}"

    return gate


def say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def block() -> None:
    """Wait for the parent (a line on stdin, or its end): a SIGKILL lands here."""
    sys.stdin.readline()


def tally_client(args: argparse.Namespace, ahead: float = 0.0) -> Client:
    mark = None
    if args.mark:
        k, _, phase = args.mark.partition(":")
        mark = (int(k), phase)

    def hit(k: int, phase: str) -> None:
        if mark == (k, phase):
            say("mark")
            if args.hold:
                block()

    def key_of(event: Any) -> int:
        return OPS.index(event.step_key.partition("#")[0]) + 1

    client = Client(
        driver=SQLiteDriver(args.store),
        clock=lambda: time.time() + ahead,
        owner=f"{args.mode}-{os.getpid()}",
        on_step_start=lambda e: hit(key_of(e), "start"),
        on_step_complete=lambda e: hit(key_of(e), "done"),
    )
    register_tally(client, args.log, on_logged=lambda k: hit(k, "logged"))
    return client


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    for mode in ("start", "recover"):
        p = sub.add_parser(mode)
        p.add_argument("store")
        p.add_argument("log")
        p.add_argument("run_id")
        p.add_argument("--mark")
        p.add_argument("--hold", action="store_true")
        p.add_argument("--ahead", type=float, default=0.0)
    race = sub.add_parser("race")
    race.add_argument("store")
    race.add_argument("side")
    args = parser.parse_args(argv)
    if args.mode == "start":
        client = tally_client(args)
        handle = client.start_workflow("tally", INPUT, run_id=args.run_id)
        say("done " + json.dumps({"status": handle.status().status, "result": handle.result()}))
    elif args.mode == "recover":
        client = tally_client(args, ahead=args.ahead)
        advanced = client.run_due()
        record = client.store.get(args.run_id)
        assert record is not None
        result = client.get_handle(args.run_id).result() if record.status == "completed" else None
        say("done " + json.dumps({"advanced": advanced, "status": record.status, "result": result}))
    else:
        client = Client(driver=SQLiteDriver(args.store), owner=f"race-{os.getpid()}")
        register_gate(client, args.side)
        say("ready")
        block()
        say("done " + json.dumps({"advanced": client.run_due()}))


if __name__ == "__main__":
    main()
