"""The `runs` command line: list, show, history, resume, delete, purge."""

from __future__ import annotations

import io
import sys
import textwrap

import pytest

from stepkit.cli import main as cli
from stepkit.stores import SQLiteStore


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A store with one paused and one completed run, and an importable pipeline module."""
    (tmp_path / "flows_cli.py").write_text(
        textwrap.dedent(
            """
            from stepkit import Pipeline

            def pause(event):
                if event.step_name == "a":
                    event.stop_pipeline()

            demo = (
                Pipeline("demo")
                .step("a", lambda ctx: {"a": 1})
                .step("b", lambda ctx: {"b": ctx.get("extra", 2)})
                .transform("t", lambda ctx: {"a": ctx["a"], "b": ctx["b"]})
            )
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import flows_cli

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    with SQLiteStore(tmp_path / "runs.db") as store:
        flows_cli.demo.run(
            {"x": 1}, store=store, run_id="paused-1", on_step_complete=flows_cli.pause
        )
        flows_cli.demo.run({"x": 1}, store=store, run_id="done-1")
    yield url
    sys.modules.pop("flows_cli", None)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli(list(argv), out), out.getvalue()


def test_list(workspace):
    """list shows runs with status, version and step, newest first."""
    code, out = run("runs", "--store", workspace, "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "RUN",
        "ID",
        "PIPELINE",
        "STATUS",
        "VERSION",
        "STEP",
        "UPDATED",
        "(UTC)",
    ]
    rows = {line.split()[0]: line.split()[1:5] for line in lines[1:]}
    assert rows == {
        "paused-1": ["demo", "paused", "2", "a"],
        "done-1": ["demo", "completed", "4", "t"],
    }
    code, out = run("runs", "--store", workspace, "list", "--status", "paused")
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["paused-1"]


def test_show(workspace):
    """show prints the record and the decoded context."""
    code, out = run("runs", "--store", workspace, "show", "paused-1")
    assert code == 0
    assert "status:      paused" in out
    assert "step:        a" in out
    assert "  x: 1" in out
    assert "  a: 1" in out


def test_history(workspace):
    """history lists versions with parents, changed and removed keys."""
    _code, out = run("runs", "--store", workspace, "history", "done-1")
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [r[:5] for r in rows] == [
        ["1", "-", "(start)", "-", "-"],
        ["2", "1", "a", "a", "-"],
        ["3", "2", "b", "b", "-"],
        ["4", "3", "t", "a,", "b"],
    ]
    assert "x" in out.splitlines()[-1]


def test_resume(workspace):
    """resume continues a paused run with the named pipeline and an override."""
    code, out = run(
        "runs",
        "--store",
        workspace,
        "resume",
        "paused-1",
        "--pipeline",
        "flows_cli:demo",
        "--override",
        '{"extra": 7}',
    )
    assert (code, out) == (0, "run paused-1: completed\n")
    code, out = run("runs", "--store", workspace, "show", "paused-1")
    assert "  b: 7" in out


def test_delete_and_purge(workspace):
    """delete removes one run; purge --older-than 0 removes the rest."""
    assert run("runs", "--store", workspace, "delete", "done-1") == (0, "deleted run done-1\n")
    assert run("runs", "--store", workspace, "purge", "--older-than", "0") == (
        0,
        "purged 1 run(s)\n",
    )
    assert run("runs", "--store", workspace, "list") == (0, "no runs\n")


def test_errors_are_one_line(workspace, capsys):
    """A missing run or a bad store URL prints one line on stderr and exits 1."""
    assert run("runs", "--store", workspace, "show", "nope")[0] == 1
    assert (
        capsys.readouterr().err.strip()
        == "stepkit runs: RunNotFoundError: no run 'nope' in this store"
    )
    assert run("runs", "--store", "ftp://x", "list")[0] == 1
    assert "InvalidArgumentError" in capsys.readouterr().err
