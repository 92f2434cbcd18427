"""Observability: logging, run summaries, hooks, Mermaid diagrams and the CLI."""

from __future__ import annotations

import asyncio
import io
import logging
import subprocess
import sys
import textwrap
import threading

import pytest

from stepkit import (
    InvalidArgumentError,
    Pipeline,
    PipelineAbortedError,
    PipelineDefinitionError,
    StepFailedError,
)
from stepkit.cli import main as cli


def boom(ctx):
    raise RuntimeError("boom")


def _summary(caplog: pytest.LogCaptureFixture, run_id: str) -> list[str]:
    """The lines of the one summary logged for ``run_id``."""
    (text,) = [
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith(f"stepkit run {run_id} ")
    ]
    return text.splitlines()


class TestLogging:
    def test_lifecycle_is_logged_not_printed(self, runner, caplog, capsys):
        """Start, success, skip and failure go to the 'stepkit' logger; nothing is printed."""
        p = (
            Pipeline("p")
            .step("ok", lambda ctx: {"ok": 1})
            .step("skip", lambda ctx: None, when=False)
            .step("bad", boom, on_error="continue")
        )
        with caplog.at_level(logging.DEBUG, logger="stepkit"):
            runner.run(p)
        messages = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "stepkit"]
        assert ("DEBUG", "step ok starting") in messages
        assert any(level == "DEBUG" and m.startswith("step ok completed") for level, m in messages)
        assert ("DEBUG", "step skip skipped (when= is false)") in messages
        assert any(level == "WARNING" and m.startswith("step bad failed") for level, m in messages)
        assert capsys.readouterr() == ("", "")

    def test_summary_table(self, runner, caplog):
        """log=True logs a table of steps with status, attempts, duration, and totals."""
        p = Pipeline("calc").step("a", lambda ctx: {"a": 1}).step("b", lambda ctx: None, when=False)
        with caplog.at_level(logging.INFO, logger="stepkit"):
            runner.run(p, log=True, run_id="r1")
        (summary,) = [r.getMessage() for r in caplog.records if "stepkit run r1" in r.getMessage()]
        lines = summary.splitlines()
        assert lines[0] == "stepkit run r1 of pipeline 'calc': completed"
        assert lines[1].split() == ["step", "status", "attempts", "duration"]
        assert lines[2].split()[:3] == ["a", "completed", "1"]
        assert lines[3].split()[:3] == ["b", "skipped", "0"]
        assert lines[4].startswith("total: 2 steps (1 completed, 1 skipped, 0 failed)")

    def test_summary_to_a_given_logger_and_on_failure(self, runner, caplog):
        """log= may be a Logger; a failed run still gets its summary."""
        logger = logging.getLogger("myapp.runs")
        with caplog.at_level(logging.INFO, logger="myapp.runs"), pytest.raises(StepFailedError):
            runner.run(Pipeline("p", log=logger).step("bad", boom))
        assert any(
            r.name == "myapp.runs" and ": failed" in r.getMessage().splitlines()[0]
            for r in caplog.records
        )

    def test_summary_of_a_failed_run_lists_the_failed_step(self, runner, caplog):
        """A failed run's summary has a row for the step that failed, and counts it."""
        p = Pipeline("p").step("ok", lambda ctx: {"ok": 1}).step("bad", boom)
        with caplog.at_level(logging.INFO, logger="stepkit"), pytest.raises(StepFailedError):
            runner.run(p, log=True, run_id="r1")
        lines = _summary(caplog, "r1")
        assert lines[0] == "stepkit run r1 of pipeline 'p': failed"
        assert lines[3].split()[:3] == ["bad", "failed", "1"]
        assert lines[4].startswith("total: 2 steps (1 completed, 0 skipped, 1 failed)")

    def test_summary_of_a_failed_parallel_step(self, runner, caplog):
        """A parallel step that fails under parallel_mode='all' shows its items and itself."""

        def good(ctx):
            return {"good": 1}

        p = Pipeline("p").step("par", good, boom)
        with caplog.at_level(logging.INFO, logger="stepkit"), pytest.raises(StepFailedError):
            runner.run(p, log=True, run_id="r1")
        rows = {line.split()[0]: line.split()[1] for line in _summary(caplog, "r1")[2:-4]}
        assert rows == {"par/good": "completed", "par/boom": "failed", "par": "failed"}

    def test_parallel_item_failing_under_all_logs_a_warning(self, runner, caplog):
        """A parallel function item that fails logs a WARNING in both parallel modes."""
        for mode in ("all", "settled"):
            caplog.clear()
            p = Pipeline("p").step("par", lambda ctx: None, boom, parallel_mode=mode)
            with caplog.at_level(logging.WARNING, logger="stepkit"):
                try:
                    runner.run(p)
                except StepFailedError:
                    assert mode == "all"
            warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
            assert any(m.startswith("step par/boom failed after 1 attempt(s)") for m in warnings)

    def test_cancelled_and_aborted_runs_are_not_summarised_as_failed(self, caplog):
        """A run interrupted or aborted says so in its summary's first line."""

        def interrupt(ctx):
            raise KeyboardInterrupt

        p = Pipeline("p").step("stop", interrupt)
        with caplog.at_level(logging.INFO, logger="stepkit"), pytest.raises(KeyboardInterrupt):
            p.run(log=True, run_id="r1")
        assert _summary(caplog, "r1")[0].endswith(": cancelled")

        async def cancelled(ctx):
            raise asyncio.CancelledError

        p = Pipeline("p").step("c", cancelled)
        with caplog.at_level(logging.INFO, logger="stepkit"), pytest.raises(asyncio.CancelledError):
            asyncio.run(p.arun(log=True, run_id="r2"))
        assert _summary(caplog, "r2")[0].endswith(": cancelled")

        abort = threading.Event()
        abort.set()
        with caplog.at_level(logging.INFO, logger="stepkit"), pytest.raises(PipelineAbortedError):
            p.run(log=True, run_id="r3", abort=abort)
        assert _summary(caplog, "r3")[0].endswith(": aborted")

    def test_summary_has_average_slowest_and_fastest(self, runner, caplog):
        """Below the totals, the summary gives the average, slowest and fastest completed step."""
        p = Pipeline("p").step("a", lambda ctx: None).step("b", lambda ctx: None)
        with caplog.at_level(logging.INFO, logger="stepkit"):
            runner.run(p, log=True, run_id="r1")
        lines = _summary(caplog, "r1")
        assert lines[-3].startswith("average: ")
        assert lines[-3].endswith(" ms per completed step")
        assert lines[-2].split()[:2] in (["slowest:", "a"], ["slowest:", "b"])
        assert lines[-1].split()[:2] in (["fastest:", "a"], ["fastest:", "b"])

    def test_log_false_leaves_a_step_out_of_summary_and_debug_logs(self, runner, caplog):
        """log=False on a step (or a container) hides it and its inner steps from the logs."""
        inner = Pipeline("inner").step("x", lambda ctx: {"x": 1})
        p = (
            Pipeline("p")
            .step("shown", lambda ctx: {"a": 1})
            .step("secret", lambda ctx: {"b": 1}, log=False)
            .step("nest", inner, log=False)
            .transform("t", lambda ctx: dict(ctx), log=False)
            .branch("br", on=lambda ctx: "y", cases={"y": lambda ctx: None}, log=False)
        )
        with caplog.at_level(logging.DEBUG, logger="stepkit"):
            result = runner.run(p, log=True, run_id="r1")
        lines = _summary(caplog, "r1")
        assert [line.split()[0] for line in lines[2:-4]] == ["shown"]
        assert lines[-4].startswith("total: 1 steps (1 completed")
        debug = " ".join(r.getMessage() for r in caplog.records if r.levelname == "DEBUG")
        assert "step shown starting" in debug
        for hidden in ("secret", "nest", "nest/x", "t", "br"):
            assert f"step {hidden} " not in debug
        # the result still records every step
        assert [s.name for s in result.steps] == [
            "shown", "secret", "nest/x", "nest", "t", "br/y/step-1", "br",
        ]  # fmt: skip

    def test_log_must_be_a_bool(self):
        """log= on a step is True or False, checked when the pipeline is built."""
        with pytest.raises(PipelineDefinitionError, match="log="):
            Pipeline("p").step("s", lambda ctx: None, log="no")

    def test_bad_log_option(self, runner):
        """log= must be a bool or a logger."""
        with pytest.raises(InvalidArgumentError, match="log="):
            runner.run(Pipeline("p").step("s", lambda ctx: None), log="yes")


class TestHooks:
    def test_on_step_start(self, runner):
        """on_step_start fires before each step that runs, with its path and context."""
        seen = []
        inner = Pipeline("inner").step("x", lambda ctx: {"x": 1})
        p = (
            Pipeline("p")
            .step("a", lambda ctx: {"a": 1})
            .step("skip", boom, when=False)
            .step("n", inner)
        )
        runner.run(p, on_step_start=lambda e: seen.append((e.step_name, dict(e.context))))
        assert seen == [("a", {}), ("n", {"a": 1}), ("n/x", {"a": 1})]

    def test_hooks_can_be_added_and_removed(self, runner):
        """with_hooks() adds pipeline-level hooks; without_hooks() removes them."""
        seen = []

        def hook(event):
            seen.append(event.step_name)

        base = Pipeline("p").step("s", lambda ctx: None)
        hooked = base.with_hooks(on_step_complete=hook)
        runner.run(hooked)
        runner.run(hooked.without_hooks(hook))
        runner.run(base)
        assert seen == ["s"]


EVERYTHING = textwrap.dedent(
    """\
    flowchart TD
        start(["all"])
        n1["fetch"]
        n2[/"normalize"/]
        n1 --> n2
        subgraph n3["review"]
            n4["draft"]
        end
        n2 --> n4
        n5{"route"}
        subgraph n6["route/yes"]
            n7["approve"]
        end
        n5 -->|"yes"| n7
        subgraph n8["route/default"]
            n9["reject"]
        end
        n5 -->|"default"| n9
        n4 --> n5
        subgraph n10["notify"]
            direction LR
            n11["email"]
            n12["sms"]
        end
        n5 -.->|none| n11
        n5 -.->|none| n12
        n7 --> n11
        n7 --> n12
        n9 --> n11
        n9 --> n12
        start --> n1
        done([end])
        n11 --> done
        n12 --> done
    """
)


def fetch(ctx):
    return None


def normalize(ctx):
    return dict(ctx)


def draft(ctx):
    return None


def approve(ctx):
    return None


def reject(ctx):
    return None


def email(ctx):
    return None


def sms(ctx):
    return None


ALL = (
    Pipeline("all")
    .step(fetch)
    .transform("normalize", normalize)
    .step("review", Pipeline("r").step(draft))
    .branch("route", on=lambda ctx: ctx.get("ok"), cases={"yes": approve}, default=reject)
    .step("notify", email, sms)
)


def test_mermaid_of_every_construct():
    """to_mermaid() draws steps, transforms, nesting, branches and parallel items."""
    assert ALL.to_mermaid() == EVERYTHING


class TestCli:
    def test_inspect_prints_a_readable_checkpoint(self, capsys):
        """inspect prints pipeline, step, run id, times and the context."""
        cp = Pipeline("p").step("s", lambda ctx: {"b": b"x"}).run({"a": 1}, run_id="r9").checkpoint
        out = io.StringIO()
        assert cli(["inspect", cp], out) == 0
        text = out.getvalue()
        assert "pipeline:    p" in text
        assert "step:        s" in text
        assert "run id:      r9" in text
        assert "created:" in text
        assert "  a: 1" in text
        assert "  b: b'x'" in text

    def test_inspect_reads_standard_input(self, monkeypatch):
        """inspect - reads the checkpoint from standard input."""
        cp = Pipeline("p").step("s", lambda ctx: None).run({"a": 1}).checkpoint
        monkeypatch.setattr(sys, "stdin", io.StringIO(cp + "\n"))
        out = io.StringIO()
        assert cli(["inspect", "-", "--json"], out) == 0
        assert '"context": {\n    "a": 1\n  }' in out.getvalue()

    def test_inspect_verifies_with_a_secret(self):
        """With --secret the signature is verified; a wrong secret fails."""
        secret = "0123456789abcdef0123"
        cp = Pipeline("p", secret=secret).step("s", lambda ctx: None).run().checkpoint
        out = io.StringIO()
        assert cli(["inspect", cp, "--secret", secret], out) == 0
        assert "signature verified" in out.getvalue()
        assert cli(["inspect", cp, "--secret", "another-secret-of-16+"], io.StringIO()) == 1

    def test_malformed_checkpoint_prints_one_line_and_fails(self):
        """A malformed checkpoint gives a one-line error and a non-zero exit."""
        done = subprocess.run(
            [sys.executable, "-m", "stepkit", "inspect", "not-a-checkpoint!"],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 1
        assert done.stdout == ""
        assert len(done.stderr.strip().splitlines()) == 1
        assert "InvalidCheckpointError" in done.stderr

    def test_graph_prints_mermaid(self):
        """graph module:attr prints the pipeline's diagram."""
        done = subprocess.run(
            [sys.executable, "-m", "stepkit", "graph", "test_observability:ALL"],
            capture_output=True,
            text=True,
            cwd=str(__import__("pathlib").Path(__file__).parent),
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == EVERYTHING

    def test_graph_with_a_bad_target(self):
        """graph with an unknown module fails with one line."""
        assert cli(["graph", "no_such_module_xyz:thing"], io.StringIO()) == 1
