"""Crash tests of durable runs: the child-process worker, and the parent side that kills it.

Run as a script, in a child process (by tests/test_durable_crash.py and
benchmarks/soak_crash.py)::

    python tests/durable_worker.py run     KIND STORE LOG RUN_ID [--mark K:PHASE] [--hold]
                                           [--spin SEED] [--lease SECONDS]
    python tests/durable_worker.py recover KIND STORE LOG RUN_ID [same options]
                                           [--dead-owner OWNER] [--go] [--ahead SECONDS]
                                           [--override JSON] [--api resume|aresume]
    python tests/durable_worker.py race    KIND STORE SIDE RUN_ID [--api resume|aresume]

``KIND`` is ``sqlite``, ``file`` or ``url`` (``STORE`` is then a server store's
URL). ``run`` starts the persisted pipeline of
:func:`crash_pipeline`; ``recover`` resumes it with ``recover=True`` (naming
the killed owner with ``--dead-owner``; with ``--go`` it first says ``ready``
and waits for a start line; ``--ahead`` runs its store clock that many seconds
ahead, so the killed owner's lease has expired for it; a refused claim ends
with ``done {"status": "conflict"}``); ``race`` resumes the paused run of
:func:`race_pipeline` once told to start.

The child talks on stdout, one line per message: ``mark`` when it reaches
``--mark K:PHASE`` (step K, 1-based; PHASE ``start``: before the step runs,
``logged``: inside the step, right after its log line is on disk, before the
step returns, ``done``: in ``on_step_complete``, after the step's version was
persisted). With ``--hold`` it then blocks reading stdin, so that a SIGKILL
lands exactly there (end of stdin makes it exit). ``ready`` (race) means it
waits for one line on stdin, the start signal. Last comes ``done <json>``.

Imported (the tests directory on ``sys.path``), it gives the parent side:
:class:`KillPlan`, :func:`default_plans`, :func:`calibrate` and
:func:`crash_and_recover`, which kills a child as planned and checks what
the store and the log file say. Checks raise :class:`AssertionError` with
the details, also under ``python -O``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORKER = Path(__file__).resolve()
SRC = WORKER.parent.parent / "src"
if str(SRC) not in sys.path:  # pragma: no cover - when run from a checkout without install
    sys.path.append(str(SRC))

from stepkit import Pipeline, RunConflictError, StepEvent  # noqa: E402
from stepkit.stores import FileStore, SQLiteStore  # noqa: E402

#: The steps of the crash pipeline, in order.
STEPS: tuple[str, ...] = tuple(f"s{i:02d}" for i in range(1, 11))
N = len(STEPS)
#: Its input; each step changes ``acc`` (order-sensitive), ``trail`` and its own key.
INPUT: dict[str, Any] = {"acc": 7, "trail": []}
PHASES = ("start", "logged", "done")
#: Upper bound, in seconds, of every wait for a child.
TIMEOUT = float(os.environ.get("STEPKIT_CRASH_TIMEOUT", "60"))
#: Upper bound of the CPU work (loop iterations) before and after each step's log line.
SPIN_MAX = 4000


# -- the pipelines ---------------------------------------------------------------------


def append_line(path: str, line: str) -> None:
    """Append one line with a single write (O_APPEND), then fsync: durable before returning."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def _spin(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i
    return x


def crash_pipeline(
    log: str | None,
    run_id: str,
    *,
    spin: int | None = None,
    on_logged: Callable[[int], None] | None = None,
) -> Pipeline:
    """Ten steps; each logs ``<run_id> <step>`` to ``log`` and returns a small change.

    ``spin`` seeds a random amount of CPU work before and after each log line
    (so kills land at varied moments); ``on_logged(k)`` is called right after
    step k's line is on disk.
    """
    rng = random.Random(spin)
    work = [(rng.randrange(SPIN_MAX), rng.randrange(SPIN_MAX)) for _ in STEPS]
    if spin is None:
        work = [(0, 0)] * N

    def make(k: int, name: str) -> Callable[[Any], dict[str, Any]]:
        before, after = work[k - 1]

        def step(ctx: Any) -> dict[str, Any]:
            _spin(before)
            if log is not None:
                append_line(log, f"{run_id} {name}")
            if on_logged is not None:
                on_logged(k)
            _spin(after)
            return {
                name: k,
                "acc": (ctx["acc"] * 31 + k) % 1_000_003,
                "trail": [*ctx["trail"], name],
            }

        return step

    pipeline = Pipeline("crash")
    for k, name in enumerate(STEPS, 1):
        pipeline = pipeline.step(name, make(k, name))
    return pipeline


def reference_context() -> dict[str, Any]:
    """The final context of an uninterrupted run (no store, no log)."""
    return dict(crash_pipeline(None, "reference").run(INPUT))


def race_pipeline(effect: Callable[[], None]) -> Pipeline:
    """Three steps; ``s2`` has the side effect that must happen exactly once."""

    def send(ctx: Any) -> dict[str, Any]:
        effect()
        return {"sent": ctx["n"] + 1}

    return (
        Pipeline("race")
        .step("s1", lambda ctx: {"n": 1})
        .step("s2", send)
        .step("s3", lambda ctx: {"done": True})
    )


def stop_after_s1(event: StepEvent) -> None:
    if event.step_name == "s1":
        event.stop_pipeline()


RACE_RESULT = {"n": 1, "sent": 2, "done": True}


def open_kind(kind: str, path: str | os.PathLike[str], **options: Any) -> Any:
    """A fresh store object of ``kind`` (``sqlite`` or ``file``) at ``path``."""
    if kind == "sqlite":
        return SQLiteStore(path, **options)
    if kind == "file":
        return FileStore(path, **options)
    if kind == "url":  # a server store (tests/stores/test_server_durable.py): path is its URL
        from stepkit.stores import open_store

        store = open_store(str(path))
        store._clock = options.get("clock", store._clock)  # type: ignore[attr-defined]
        return store
    raise ValueError(f"unknown store kind {kind!r}")


# -- the child -------------------------------------------------------------------------


def _say(message: str) -> None:
    os.write(1, message.encode() + b"\n")


def _block() -> None:
    """Wait for the parent's SIGKILL; if the parent went away instead, exit."""
    sys.stdin.readline()
    os._exit(3)


def _child_crash(args: argparse.Namespace) -> None:
    options: dict[str, Any] = {}
    if args.ahead:
        options["clock"] = lambda: time.time() + args.ahead
    store = open_kind(args.kind, args.store, **options)
    mark: tuple[int, str] | None = None
    if args.mark:
        k, _, phase = args.mark.partition(":")
        mark = (int(k), phase)
    began: list[float] = []

    def hit(k: int, phase: str) -> None:
        if (k, phase) == mark:
            _say("mark")
            if args.hold:
                _block()

    def on_start(event: Any) -> None:
        if not began:
            began.append(time.perf_counter())
        hit(STEPS.index(event.step_name) + 1, "start")

    def on_complete(event: StepEvent) -> None:
        hit(STEPS.index(event.step_name) + 1, "done")

    pipeline = crash_pipeline(
        args.file, args.run_id, spin=args.spin, on_logged=lambda k: hit(k, "logged")
    )
    hooks = {"on_step_start": on_start, "on_step_complete": on_complete, "lease": args.lease}
    if args.mode == "run":
        result = pipeline.run(INPUT, store=store, run_id=args.run_id, **hooks)
    else:
        if args.go:
            _say("ready")
            if not sys.stdin.readline():
                os._exit(3)
        hooks["dead_owner"] = args.dead_owner
        if args.override:
            hooks["override_data"] = json.loads(args.override)
        try:
            if args.api == "aresume":
                result = asyncio.run(
                    pipeline.aresume(args.run_id, store=store, recover=True, **hooks)
                )
            else:
                result = pipeline.resume(args.run_id, store=store, recover=True, **hooks)
        except RunConflictError as exc:
            store.close()
            _say("done " + json.dumps({"status": "conflict", "error": str(exc)}))
            return
    elapsed = time.perf_counter() - began[0] if began else 0.0
    store.close()
    _say(
        "done "
        + json.dumps({"status": result.status, "elapsed": elapsed, "steps": len(result.steps)})
    )


def _child_race(args: argparse.Namespace) -> None:
    store = open_kind(args.kind, args.store)
    pipeline = race_pipeline(lambda: append_line(args.file, f"{args.run_id} sent"))
    _say("ready")
    if not sys.stdin.readline():
        os._exit(3)
    try:
        if args.api == "aresume":
            result = asyncio.run(pipeline.aresume(args.run_id, store=store))
        else:
            result = pipeline.resume(args.run_id, store=store)
        answer = {"outcome": "ran" if result.steps else "stored", "context": dict(result)}
    except RunConflictError as exc:
        answer = {"outcome": "conflict", "error": str(exc)}
    store.close()
    _say("done " + json.dumps(answer))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("run", "recover", "race"))
    parser.add_argument("kind", choices=("sqlite", "file", "url"))
    parser.add_argument("store")
    parser.add_argument("file", help="the log file (run, recover) or side-effect file (race)")
    parser.add_argument("run_id")
    parser.add_argument("--mark", default=None, help="K:PHASE, PHASE one of " + ", ".join(PHASES))
    parser.add_argument("--hold", action="store_true")
    parser.add_argument("--spin", type=int, default=None)
    parser.add_argument("--lease", type=float, default=None)
    parser.add_argument("--api", choices=("resume", "aresume"), default="resume")
    parser.add_argument("--dead-owner", default=None, help="recover: the killed run's owner")
    parser.add_argument("--go", action="store_true", help="recover: wait for a start line")
    parser.add_argument("--ahead", type=float, default=0.0, help="store clock ahead (seconds)")
    parser.add_argument("--override", default=None, help="recover: override_data as JSON")
    args = parser.parse_args(argv)
    if args.mode == "race":
        _child_race(args)
    else:
        _child_crash(args)


# -- the parent ------------------------------------------------------------------------


class WorkerError(AssertionError):
    """A child did not answer as expected (or in time)."""


def check(condition: object, message: str) -> None:
    if not condition:
        raise AssertionError(message)


class Child:
    """A worker process with a bounded line reader on its stdout; killed on exit."""

    def __init__(self, *args: str) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )
        self._buffer = b""

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
        self._stderr.close()

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-3000:]

    def line(self, timeout: float = TIMEOUT) -> str:
        """The next line the child writes; WorkerError if it exits or stays silent."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerError(f"worker silent for {timeout}s; stderr:\n{self.stderr()}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    code = self.proc.wait(timeout)
                    raise WorkerError(f"worker exited ({code}) early; stderr:\n{self.stderr()}")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def kill(self) -> int:
        """SIGKILL the child if it still runs; its exit code."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it may have exited meanwhile
                os.kill(self.proc.pid, signal.SIGKILL)
        return self.proc.wait(TIMEOUT)

    def finish(self) -> dict[str, Any]:
        """Read up to the final ``done`` line; its JSON."""
        line = self.line()
        check(line.startswith("done "), f"expected 'done ...' from the worker, got {line!r}")
        code = self.proc.wait(TIMEOUT)
        check(code == 0, f"worker exit code {code}; stderr:\n{self.stderr()}")
        result: dict[str, Any] = json.loads(line[5:])
        return result


@dataclass(frozen=True)
class KillPlan:
    """Where one child is killed.

    ``how``: ``hold`` — the child blocks at the mark, the kill lands exactly
    there; ``race`` — killed as soon as the parent reads the mark, while the
    child runs on (it lands a little later, anywhere); ``timer`` — killed
    ``delay`` seconds after the mark (a random moment, maybe after the end).
    ``then`` (with ``step`` counted after the last persisted one) plans a
    second kill, of a child that resumes the run with ``recover=True``.
    """

    step: int
    phase: str
    how: str = "hold"
    delay: float = 0.0
    spin: int = 0
    then: KillPlan | None = None

    def describe(self) -> str:
        text = f"{self.how}@{self.step}:{self.phase}"
        if self.how == "timer":
            text += f"+{self.delay * 1000:.1f}ms"
        return text + (f" then {self.then.describe()}" if self.then else "")


@dataclass
class Segment:
    """What one killed child left: persisted steps before/after, status, lines it logged."""

    plan: KillPlan
    before: int
    after: int
    status: str
    logged: int
    exit_code: int


@dataclass
class Outcome:
    run_id: str
    plan: KillPlan
    segments: list[Segment] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    recovered_steps: int = 0


#: Hold kills at a spread of positions: each phase, first, middle and last steps.
HOLD_POINTS = (
    (1, "start"),
    (1, "logged"),
    (1, "done"),
    (3, "logged"),
    (5, "start"),
    (6, "done"),
    (8, "logged"),
    (10, "logged"),
    (10, "done"),
)


def default_plans(rng: random.Random, count: int, run_seconds: float) -> list[KillPlan]:
    """``count`` kill plans: the hold points, then random race kills and random-time kills.

    About a third of what follows the hold points are ``timer`` kills (delay
    up to 1.2 x ``run_seconds``, so some land after the run completed); one
    race kill in three also kills the recovering child.
    """
    plans = [
        KillPlan(k, phase, "hold", spin=rng.randrange(2**31))
        for k, phase in HOLD_POINTS[: max(0, count)]
    ]
    rest = max(0, count - len(plans))
    timers = rest // 3
    for i in range(rest - timers):
        then = None
        if i % 3 == 2:
            then = KillPlan(
                rng.randint(1, 4), rng.choice(PHASES), "race", spin=rng.randrange(2**31)
            )
        plans.append(
            KillPlan(
                rng.randint(1, N), rng.choice(PHASES), "race", spin=rng.randrange(2**31), then=then
            )
        )
    for _ in range(timers):
        delay = rng.uniform(0.0, 1.2 * run_seconds)
        plans.append(KillPlan(1, "start", "timer", delay, spin=rng.randrange(2**31)))
    rng.shuffle(plans)
    return plans


def log_lines(log: str, run_id: str) -> list[str]:
    """The step names logged for ``run_id``, in order."""
    try:
        with open(log, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    prefix = run_id + " "
    return [line[len(prefix) :] for line in text.splitlines() if line.startswith(prefix)]


def calibrate(kind: str, store_path: str, log: str, run_id: str) -> float:
    """Run one child to completion, check it, and return its run time in seconds."""
    with Child("run", kind, store_path, log, run_id, "--spin", "1") as child:
        done = child.finish()
    check(done["status"] == "completed", f"calibration run: {done}")
    check(log_lines(log, run_id) == list(STEPS), f"calibration log: {log_lines(log, run_id)}")
    store = open_kind(kind, store_path)
    try:
        record = store.get(run_id)
        check(record is not None and record.status == "completed", f"calibration: {record}")
    finally:
        store.close()
    return float(done["elapsed"])


def owner_of(kind: str, store_path: str, run_id: str) -> str | None:
    """The owner token of ``run_id`` as stored (who holds its claim), or None."""
    store = open_kind(kind, store_path)
    try:
        record = store.get(run_id)
        return None if record is None else record.owner
    finally:
        store.close()


def _kill_child(
    mode: str, kind: str, store_path: str, log: str, run_id: str, plan: KillPlan
) -> int:
    """Start a ``run``/``recover`` child, kill it as planned; its exit code (-9 if killed)."""
    args = [mode, kind, store_path, log, run_id, "--mark", f"{plan.step}:{plan.phase}"]
    args += ["--spin", str(plan.spin)] + (["--hold"] if plan.how == "hold" else [])
    if mode == "recover":  # the previous child was killed: name it as dead
        dead = owner_of(kind, store_path, run_id)
        args += ["--dead-owner", dead] if dead else []
    with Child(*args) as child:
        line = child.line()
        if line.startswith("done "):  # a recovering child with nothing left to run
            check(mode == "recover", f"the run child finished without reaching its mark: {line}")
            return child.kill()
        check(line == "mark", f"expected 'mark' from the worker, got {line!r}")
        if plan.how == "timer":
            # the child's end, or the planned moment to kill it, whichever comes first
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(plan.delay)
        return child.kill()


def _inspect(
    kind: str, store_path: str, log: str, run_id: str, before: int, seen: int
) -> tuple[int, str, list[str]]:
    """After a kill: open the store fresh and check it; (persisted steps, status, new lines)."""
    store = open_kind(kind, store_path)  # must open cleanly after the kill
    try:
        if kind == "sqlite":  # and the file is consistent, says SQLite itself
            db = sqlite3.connect(store_path)
            try:
                verdict = db.execute("PRAGMA integrity_check").fetchall()
            finally:
                db.close()
            check(verdict == [("ok",)], f"integrity_check after the kill: {verdict}")
        record = store.get(run_id)
        check(record is not None, f"run {run_id} is missing from the store after the kill")
        assert record is not None
        check(record.status in ("running", "completed"), f"after the kill: {record}")
        if record.status == "running":
            running = {r.run_id for r in store.list(status="running", limit=None)}
            check(run_id in running, f"list(status='running') misses {run_id}: {running}")
        else:
            check(record.version == N + 1, f"completed, yet not at the last version: {record}")
        persisted = record.version - 1
        check(persisted >= before, f"the store went back from {before} to {persisted} steps")
        history = [v.step_name for v in store.history(run_id)]
        check(history == [None, *STEPS[:persisted]], f"history after the kill: {history}")
        check(
            record.step_name == (STEPS[persisted - 1] if persisted else None),
            f"record.step_name {record.step_name!r} at version {record.version}",
        )
    finally:
        store.close()
    new = log_lines(log, run_id)[seen:]
    # This child started after step `before` and may have logged one step it did not persist.
    allowed = (list(STEPS[before:persisted]), list(STEPS[before : persisted + 1]))
    check(new in allowed, f"child logged {new}; persisted {before}->{persisted}")
    return persisted, record.status, new


def crash_and_recover(
    kind: str,
    store_path: str,
    log: str,
    run_id: str,
    plan: KillPlan,
    reference: dict[str, Any],
) -> Outcome:
    """Run the crash pipeline in a child, SIGKILL it as planned, check, and recover it.

    Recovery is ``resume(run_id, recover=True, dead_owner=<the killed owner>)``
    — in a child killed again if ``plan.then``, finally in this process.
    Checks: the store opens cleanly after each kill; the run is ``running``
    (found by ``list``) or, if the kill came late, ``completed``; its history
    is a prefix of the steps; each child logged exactly the steps it
    persisted, plus at most the one in flight; the final context equals
    ``reference``; every step is logged, and only the step right after each
    kill's last persisted one may be logged twice.
    """
    outcome = Outcome(run_id, plan)
    context = f"run {run_id}, plan {plan.describe()}"
    try:
        persisted, seen, mode, current = 0, 0, "run", plan
        while True:
            code = _kill_child(mode, kind, store_path, log, run_id, current)
            after, status, new = _inspect(kind, store_path, log, run_id, persisted, seen)
            if current.how == "hold" and mode == "run":
                # Exact positions: version k-1 is on disk before step k starts, the
                # step's own version only after it returned; on_step_complete sees it.
                expected = current.step if current.phase == "done" else current.step - 1
                check(after == expected, f"hold kill: {after} steps persisted, not {expected}")
                logged = current.step if current.phase != "start" else current.step - 1
                check(len(new) == logged - persisted, f"hold kill: the child logged {new}")
            outcome.segments.append(Segment(current, persisted, after, status, len(new), code))
            persisted, seen = after, seen + len(new)
            if status != "running" or current.then is None:
                break
            mode = "recover"
            current = KillPlan(
                min(N, persisted + current.then.step),
                current.then.phase,
                current.then.how,
                current.then.delay,
                current.then.spin,
                current.then.then,
            )
        store = open_kind(kind, store_path)
        try:
            record = store.get(run_id)
            dead = record.owner if record is not None else None
            result = crash_pipeline(log, run_id).resume(
                run_id, store=store, recover=True, dead_owner=dead
            )
            check(result.status == "completed", f"recovered run status {result.status}")
            check(not result.definition_changed, "the fingerprint differs between processes")
            check(dict(result) == reference, f"final context {dict(result)} != {reference}")
            record = store.get(run_id)
            check(
                record is not None
                and record.status == "completed"
                and record.owner is None
                and record.version == N + 1,
                f"after recovery: {record}",
            )
            history = [v.step_name for v in store.history(run_id)]
            check(history == [None, *STEPS], f"history after recovery: {history}")
        finally:
            store.close()
        lines = log_lines(log, run_id)
        outcome.recovered_steps = len(lines) - seen
        check(lines[seen:] == list(STEPS[persisted:]), f"recovery logged {lines[seen:]}")
        # The rule as users see it: every step ran; a step ran twice only if it was
        # the one in flight at a kill (right after that kill's last persisted step).
        counts = Counter(lines)
        check(set(counts) == set(STEPS), f"steps missing from the log: {lines}")
        in_flight = Counter(STEPS[s.after] for s in outcome.segments if s.after < N)
        for name, count in counts.items():
            check(count <= 1 + in_flight[name], f"{name} ran {count} times; log {lines}")
            outcome.duplicates += [name] * (count - 1)
    except AssertionError as exc:
        raise AssertionError(f"{context}: {exc}") from exc
    return outcome


if __name__ == "__main__":
    main()
