"""Every file in examples/ runs, and the two spec examples behave as documented."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_example_runs_as_a_script(path, tmp_path):
    """Each example runs as `python examples/NAME.py` and exits 0."""
    done = subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


def test_calculator_example():
    """run({'a': 1}) gives {'a': 4, 'sum': 4}; resuming from 'double' with b=10 gives sum 14."""
    out = load("calculator").main()
    assert out == {"run": {"a": 4, "sum": 4}, "resumed": {"a": 4, "b": 10, "sum": 14}}


class TestApprovalExample:
    def test_approve_sends_exactly_once(self):
        """Approving resumes the run; the send step runs once, a second approve fails."""
        mod = load("approval")
        desk = mod.ApprovalDesk()
        approval_id = desk.request("hello")
        assert mod.SENT == []
        result = desk.approve(approval_id)
        assert result["sent"] is True
        assert len(mod.SENT) == 1
        with pytest.raises(mod.UnknownApprovalError, match="no pending approval"):
            desk.approve(approval_id)
        assert len(mod.SENT) == 1

    def test_reject_deletes_the_pending_run(self):
        """Rejecting removes the checkpoint and sends nothing."""
        mod = load("approval")
        desk = mod.ApprovalDesk()
        approval_id = desk.request("hello")
        desk.reject(approval_id)
        assert desk.store == {}
        assert mod.SENT == []

    def test_missing_id_is_a_clear_error(self):
        """An unknown approval id raises an error that says what happened."""
        mod = load("approval")
        with pytest.raises(mod.UnknownApprovalError, match="never requested"):
            mod.ApprovalDesk().approve("nope")


def test_sqlite_approval_across_processes(tmp_path):
    """Pause in one process, approve from others: the message is sent exactly once."""
    script = str(EXAMPLES / "approval_sqlite.py")
    env = {**__import__("os").environ, "APPROVALS_DB": str(tmp_path / "a.db")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, script, *args], capture_output=True, text=True, env=env, timeout=60
        )

    run_id = cli("request", "hello").stdout.strip()
    assert cli("approve", run_id).stdout.strip() == "approve: sent=True"
    assert cli("approve", run_id).stdout.strip() == "already decided: sent=True"
    outbox = (tmp_path / "a.db.outbox").read_text().splitlines()
    assert len(outbox) == 1
    missing = cli("approve", "no-such-run")
    assert missing.returncode == 1
    assert "no run 'no-such-run'" in missing.stderr
