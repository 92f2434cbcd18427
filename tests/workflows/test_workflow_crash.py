"""Workflow workers under real SIGKILLs and races between processes, on SQLite (SPEC §4).

The children run ``tests/workflows/workflow_worker.py``. A kill lands exactly
where the child holds (it blocks on its stdin at a mark); a recovering worker
sees the killed owner's lease as expired because its clock runs ahead. No
test sleeps: every wait is a bounded read of a pipe.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from durable_worker import Child

from stepkit.workflows import Client, SQLiteDriver

from .workflow_worker import OPS, WORKER, reference, register_gate


class WorkflowChild(Child):
    """A child running the workflow worker script (the durable worker's pipes and kill)."""

    def __init__(self, *args: str) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        env = dict(os.environ)
        src = str(Path(WORKER).parents[2] / "src")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )
        self._buffer = b""


def lines(log: Path, run_id: str) -> list[str]:
    if not log.exists():
        return []
    return [ln.split()[1] for ln in log.read_text().splitlines() if ln.split()[0] == run_id]


def ops_recorded(store_path: Path, run_id: str) -> list[str]:
    client = Client(driver=SQLiteDriver(store_path))
    try:
        return [v.step_name for v in client.store.history(run_id) if v.kind == "op"]
    finally:
        client.store.close()


KEYS = [f"{name}#0" for name in OPS]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("k", "phase"),
    [(1, "start"), (1, "logged"), (4, "logged"), (5, "done"), (10, "logged"), (10, "done")],
)
def test_a_sigkilled_worker_is_recovered_once_its_lease_expired(
    tmp_path: Path, k: int, phase: str
) -> None:
    """SIGKILL mid-run: a worker with a live lease in view leaves it; once expired, it finishes.

    Every op body ran once, except the one in flight at the kill (logged, not recorded).
    """
    store, log, run_id = tmp_path / "wf.db", tmp_path / "ops.log", f"kill-{k}-{phase}"
    with WorkflowChild(
        "start", str(store), str(log), run_id, "--mark", f"{k}:{phase}", "--hold"
    ) as child:
        assert child.line() == "mark"
        assert child.kill() == -9
    recorded = ops_recorded(store, run_id)
    assert recorded == KEYS[: k if phase == "done" else k - 1]
    with WorkflowChild("recover", str(store), str(log), run_id) as child:
        early = child.finish()
    assert early == {"advanced": 0, "status": "running", "result": None}  # its lease holds
    with WorkflowChild("recover", str(store), str(log), run_id, "--ahead", "3600") as child:
        late = child.finish()
    assert late == {"advanced": 1, "status": "completed", "result": reference()}
    in_flight = [KEYS[k - 1]] if phase == "logged" else []
    assert Counter(lines(log, run_id)) == Counter(KEYS + in_flight)
    assert ops_recorded(store, run_id) == [*KEYS, "result"]


@pytest.mark.slow
def test_a_recovering_worker_killed_in_turn_is_recovered_too(tmp_path: Path) -> None:
    """Two kills in a row (the starter at op 3, the first recoverer at op 7): one result."""
    store, log, run_id = tmp_path / "wf.db", tmp_path / "ops.log", "twice"
    with WorkflowChild("start", str(store), str(log), run_id, "--mark", "3:logged", "--hold") as c:
        assert c.line() == "mark"
        assert c.kill() == -9
    args = ("recover", str(store), str(log), run_id, "--ahead", "3600")
    with WorkflowChild(*args, "--mark", "7:logged", "--hold") as c:
        assert c.line() == "mark"
        assert c.kill() == -9
    with WorkflowChild(*args[:4], "--ahead", "7200") as c:
        assert c.finish() == {"advanced": 1, "status": "completed", "result": reference()}
    assert Counter(lines(log, run_id)) == Counter([*KEYS, KEYS[2], KEYS[6]])


@pytest.mark.slow
def test_four_processes_run_the_step_after_a_signal_exactly_once(tmp_path: Path) -> None:
    """4 processes call run_due on one run woken by a signal: the next step runs once."""
    store, side = tmp_path / "wf.db", tmp_path / "sent.log"
    client = Client(driver=SQLiteDriver(store), owner="parent")
    register_gate(client, str(side))
    handle = client.start_workflow("gate", run_id="gate")
    assert handle.status().status == "waiting"
    assert handle.signal("go", 1).status == "delivered"
    with contextlib.ExitStack() as stack:
        children = [
            stack.enter_context(WorkflowChild("race", str(store), str(side))) for _ in range(4)
        ]
        for child in children:  # a barrier: each child is ready, blocked on its stdin
            assert child.line() == "ready"
        for child in children:
            child.send("go\n")
        answers: list[dict[str, Any]] = [child.finish() for child in children]
    assert sorted(a["advanced"] for a in answers) == [0, 0, 0, 1]
    assert side.read_text().splitlines() == ["sent"]
    assert handle.result() == "sent 1"
    client.store.close()
