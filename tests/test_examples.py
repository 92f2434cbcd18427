"""Every file in examples/ runs, and the two spec examples behave as documented."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from stepkit import decode_checkpoint

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
    """Each example runs as `python examples/NAME.py`, exits 0 and leaves no file behind."""
    done = subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert list(tmp_path.iterdir()) == []


def test_calculator_example():
    """run({'a': 1}) gives {'a': 4, 'sum': 4}; resuming from 'double' with b=10 gives sum 14."""
    out = load("calculator").main()
    assert out == {"run": {"a": 4, "sum": 4}, "resumed": {"a": 4, "b": 10, "sum": 14}}


class TestApprovalExample:
    def test_main_shows_the_pause_the_checkpoint_and_the_resume(self, tmp_path):
        """The main example prints its checkpoint, decodes it, and resumes with an approval."""
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / "approval.py")],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        lines = done.stdout.splitlines()
        assert lines[0].startswith("paused after 'generate'")
        checkpoint = lines[lines.index(next(x for x in lines if "the checkpoint" in x)) + 1]
        mod = load("approval")
        cp = decode_checkpoint(checkpoint.strip(), secret=mod.SECRET)
        assert (cp.step_name, cp.verified, cp.context["body"]) == (
            "generate",
            True,
            "My order has not arrived",
        )
        assert "after step 'generate', verified=True" in done.stdout
        assert "approve -> {" in done.stdout
        assert "'sent': True" in done.stdout
        resumed = mod.reply_flow.run_checkpoint(checkpoint.strip(), {"approved": True})
        assert resumed["sent"] is True

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


def sqlite_example(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / "approval_sqlite.py"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


def test_sqlite_approval_across_processes(tmp_path):
    """Pause in one process, approve from others: the message is sent exactly once."""
    db = str(tmp_path / "a.db")
    run_id = sqlite_example("--db", db, "request", "hello", cwd=tmp_path).stdout.strip()
    assert sqlite_example("--db", db, "approve", run_id, cwd=tmp_path).stdout.strip() == (
        "approve: sent=True"
    )
    assert sqlite_example("--db", db, "approve", run_id, cwd=tmp_path).stdout.strip() == (
        "already decided: sent=True"
    )
    outbox = (tmp_path / "a.db.outbox").read_text().splitlines()
    assert len(outbox) == 1
    missing = sqlite_example("--db", db, "approve", "no-such-run", cwd=tmp_path)
    assert missing.returncode == 1
    assert "no run 'no-such-run'" in missing.stderr


def test_sqlite_demo_is_fresh_every_run(tmp_path):
    """The demo uses a temporary database: every run sends exactly one message, leaves nothing."""
    outputs = [sqlite_example(cwd=tmp_path) for _ in range(2)]
    for done in outputs:
        assert done.returncode == 0, done.stderr
        assert "outbox: 1 message(s) sent" in done.stdout
    assert list(tmp_path.iterdir()) == []


def test_sqlite_example_needs_a_database_path(tmp_path):
    """The commands need --db: no database appears in the current folder by default."""
    done = sqlite_example("list", cwd=tmp_path)
    assert done.returncode == 2
    assert "--db" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_order_workflow_example(tmp_path):
    """The approved order ships once; the unapproved one is refunded after a day."""
    module = load("order_workflow")
    assert module.main(tmp_path) == [{"status": "shipped", "by": "ana"}, {"status": "refunded"}]
    assert [line.split()[0] for line in module.ledger] == ["charge", "charge", "ship", "refund"]


def test_review_loop_example():
    """examples/review_loop.py: paused at review twice, sent once, with the second draft."""
    mod = load("review_loop")
    out = mod.main()
    assert out["sent"] is True
    assert out["drafts"] == 2
    assert mod.OUTBOX == ["Reply to 'late parcel', draft 2"]
