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

            def pause_after_b(event):
                if event.step_name == "b":
                    event.stop_pipeline()

            class _Pausing:
                def resume(self, run_id, **options):
                    return demo.resume(run_id, on_step_complete=pause_after_b, **options)

            pausing = _Pausing()

            def boom(ctx):
                raise RuntimeError("boom\\nsecond line")

            failing = (
                Pipeline("demo")
                .step("a", lambda ctx: {"a": 1})
                .step("b", boom)
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
    """history lists versions with parents, kinds, steps, changed and removed keys."""
    _code, out = run("runs", "--store", workspace, "history", "done-1")
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [r[:6] for r in rows] == [
        ["1", "-", "start", "-", "-", "-"],
        ["2", "1", "step", "a", "a", "-"],
        ["3", "2", "step", "b", "b", "-"],
        ["4", "3", "step", "t", "a,", "b"],
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
    assert (code, out) == (0, "run paused-1: completed\nsteps run: b, t\n")
    code, out = run("runs", "--store", workspace, "show", "paused-1")
    assert "  b: 7" in out
    code, out = run("runs", "--store", workspace, "history", "paused-1")
    override = [line.split() for line in out.splitlines() if " override " in line]
    assert [row[2:5] for row in override] == [["override", "a", "extra"]]


def test_history_shows_the_values_of_an_override(workspace):
    """history prints each override version's values (who decided what, when), escaped."""
    override = '{"extra": 7, "approver": "al\\u001bice", "decided_at": "2030-01-02T03:04:05Z"}'
    argv = ["runs", "--store", workspace, "resume", "paused-1", "--pipeline", "flows_cli:demo"]
    assert run(*argv, "--override", override)[0] == 0
    code, out = run("runs", "--store", workspace, "history", "paused-1")
    assert code == 0
    assert_clean(out)
    assert out.split("\n\n", 1)[1] == (
        "override values:\n"
        "  version 3 (after a):\n"
        "    extra: 7\n"
        "    approver: 'al\\x1bice'\n"
        "    decided_at: '2030-01-02T03:04:05Z'\n"
    )


def test_resume_of_a_completed_run_says_nothing_ran(workspace):
    """Resuming a completed run returns its stored result and says that no step ran."""
    code, out = run(
        "runs", "--store", workspace, "resume", "done-1", "--pipeline", "flows_cli:demo"
    )
    assert (code, out) == (0, "run done-1: completed\nsteps run: none\n")


def test_resume_that_pauses_again_says_where(workspace):
    """A resume stopped by a handler reports the step it is paused after."""
    code, out = run(
        "runs", "--store", workspace, "resume", "paused-1", "--pipeline", "flows_cli:pausing"
    )
    assert (code, out) == (0, "run paused-1: paused after b\nsteps run: b\n")


def test_resume_with_a_failing_step_exits_1(workspace, capsys):
    """A step failing during resume prints the error on one line and exits 1."""
    code, out = run(
        "runs", "--store", workspace, "resume", "paused-1", "--pipeline", "flows_cli:failing"
    )
    assert (code, out) == (1, "")
    err = capsys.readouterr().err
    assert err.startswith("stepkit runs: StepFailedError:")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("override", ["{not json", "[1, 2]", '"text"'])
def test_override_must_be_a_json_object(workspace, capsys, override):
    """--override that is not a JSON object is a usage error (status 2); nothing runs."""
    argv = ["runs", "--store", workspace, "resume", "paused-1"]
    code, _ = run(*argv, "--pipeline", "flows_cli:demo", "--override", override)
    assert code == 2
    assert "--override" in capsys.readouterr().err
    assert "status:      paused" in run("runs", "--store", workspace, "show", "paused-1")[1]


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


READ_ONLY = [
    ["list"],
    ["show", "r"],
    ["history", "r"],
    ["delete", "r"],
    ["purge"],
    ["resume", "r", "--pipeline", "flows_cli:demo"],
]


@pytest.mark.parametrize("action", READ_ONLY, ids=lambda a: a[0])
def test_a_missing_sqlite_database_is_an_error(tmp_path, capsys, action):
    """runs on a database that does not exist names the path, exits 1 and creates nothing."""
    missing = tmp_path / "missing.db"
    code, out = run("runs", "--store", f"sqlite:///{missing}", *action)
    assert (code, out) == (1, "")
    err = capsys.readouterr().err
    assert str(missing) in err
    assert "no runs" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("action", READ_ONLY, ids=lambda a: a[0])
def test_a_missing_file_store_folder_is_an_error(tmp_path, capsys, action):
    """runs on a FileStore folder that does not exist names it and creates nothing."""
    missing = tmp_path / "runs"
    code, out = run("runs", "--store", f"file://{missing}", *action)
    assert (code, out) == (1, "")
    assert str(missing) in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_relative_missing_database_is_named(tmp_path, monkeypatch, capsys):
    """A relative sqlite:/// path is checked against the current folder."""
    monkeypatch.chdir(tmp_path)
    assert run("runs", "--store", "sqlite:///missing.db", "list") == (1, "")
    assert "missing.db" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_in_memory_stores_need_no_file(capsys):
    """memory:// and sqlite:// open empty stores: nothing to check, nothing created."""
    assert run("runs", "--store", "memory://", "list") == (0, "no runs\n")
    assert run("runs", "--store", "sqlite://", "list") == (0, "no runs\n")


def test_data_is_escaped_in_tables(tmp_path, capsys):
    """Run ids, step names and context values with control characters print escaped."""
    evil = "r\x1b[2J\x9b31m\u202e"
    path = tmp_path / "runs.db"
    with SQLiteStore(path) as store:
        (
            __import__("stepkit")
            .Pipeline(evil)
            .step(evil, lambda ctx: {evil: evil})
            .run({}, store=store, run_id=evil)
        )
    url = f"sqlite:///{path}"
    for argv in (["list"], ["show", evil], ["history", evil]):
        code, out = run("runs", "--store", url, *argv)
        assert code == 0
        assert_clean(out)
        assert "r\\x1b[2J" in out
    assert (
        run("runs", "--store", url, "delete", evil)[1] == "deleted run r\\x1b[2J\\x9b31m\\u202e\n"
    )


def assert_clean(text: str) -> None:
    """No control character other than newline, and no bidi override, in ``text``."""
    bad = {c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F}
    bad |= {c for c in text if 0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069}
    assert not bad, sorted(map(hex, map(ord, bad)))


def _crash(workspace: str) -> str:
    """Leave run paused-1 'running' under a live lease of a process that died: its owner."""
    path = workspace.removeprefix("sqlite:///")
    with SQLiteStore(path) as store:
        store.claim("paused-1", owner="dead-proc", lease=3600)
    return "dead-proc"


def test_show_names_the_owner_of_a_running_run(workspace):
    """show prints the owner token that --dead-owner takes."""
    owner = _crash(workspace)
    code, out = run("runs", "--store", workspace, "show", "paused-1")
    assert code == 0
    assert f"owner:       {owner}" in out


def test_recover_refuses_a_live_lease_and_dead_owner_takes_over(workspace, capsys):
    """--recover alone cannot take a live lease (exit 1); --dead-owner OWNER can."""
    owner = _crash(workspace)
    argv = ["runs", "--store", workspace, "resume", "paused-1", "--pipeline", "flows_cli:demo"]
    code, out = run(*argv, "--recover")
    assert (code, out) == (1, "")
    assert "RunConflictError" in capsys.readouterr().err
    code, out = run(*argv, "--dead-owner", owner)
    assert (code, out) == (0, "run paused-1: completed\nsteps run: b, t\n")


def test_expect_version_guards_a_stale_resume(workspace, capsys):
    """--expect-version N resumes only a run still at version N; otherwise exit 1, nothing runs."""
    argv = ["runs", "--store", workspace, "resume", "paused-1", "--pipeline", "flows_cli:demo"]
    code, _ = run(*argv, "--expect-version", "1")
    assert code == 1
    assert "RunConflictError" in capsys.readouterr().err
    assert "status:      paused" in run("runs", "--store", workspace, "show", "paused-1")[1]
    code, out = run(*argv, "--expect-version", "2")
    assert (code, out) == (0, "run paused-1: completed\nsteps run: b, t\n")


@pytest.fixture
def workflow_store(tmp_path):
    """A SQLite store with workflow runs: one waiting for a signal, one completed, one sleeping."""
    from stepkit.testing import FakeClock
    from stepkit.workflows import Client, SQLiteDriver

    clock = FakeClock(1_800_000_000.0)
    client = Client(driver=SQLiteDriver(tmp_path / "wf.db"), clock=clock)

    @client.workflow(id="order")
    def order(ctx, step):
        for item in ctx.input["items"]:
            step.run("pack", lambda item=item: f"packed {item}")
        when = step.now("stamp")
        approval = step.wait_for_signal("approval", signal="approve", timeout=3600)
        return {"approved": approval, "at": when.year}

    @client.workflow(id="nap")
    def nap(ctx, step):
        step.sleep("cool-off", 600)
        return "woke"

    client.start_workflow(order, {"items": ["a", "b"]}, run_id="waits")
    client.start_workflow(order, {"items": ["c"]}, run_id="done")
    client.send_signal("approve", {"by": "ana"}, run_id="done")
    client.run_due()
    client.start_workflow(nap, run_id="sleeps")
    client.store.close()
    return f"sqlite:///{tmp_path / 'wf.db'}"


def test_list_filters_workflow_statuses(workflow_store):
    """--status accepts sleeping, waiting and cancelled (the statuses of workflow runs)."""
    for status, expected in (("waiting", ["waits"]), ("sleeping", ["sleeps"]), ("cancelled", [])):
        code, out = run("runs", "--store", workflow_store, "list", "--status", status)
        assert code == 0
        assert [line.split()[0] for line in out.splitlines()[1:]] == expected or (
            expected == [] and out == "no runs\n"
        )


def test_show_prints_wake_time_and_awaited_signal_of_a_workflow_run(workflow_store):
    """show of a workflow run: its workflow, when it wakes, what it waits for, its input."""
    code, out = run("runs", "--store", workflow_store, "show", "waits")
    assert code == 0
    assert "workflow:    order" in out
    assert "status:      waiting" in out
    assert "wakes at:    2027-01-15 09:00:00" in out  # the signal's timeout: start + 1 h
    assert "waiting for: approve" in out
    assert "ops:         4 recorded" in out
    assert "input:       {'items': ['a', 'b']}" in out
    _, out = run("runs", "--store", workflow_store, "show", "sleeps")
    assert "wakes at:    2027-01-15 08:10:00" in out
    assert "waiting for: -" in out


def test_history_shows_workflow_ops_readably(workflow_store):
    """history of a workflow run: one row per op — key id#n, kind and the value it holds."""
    code, out = run("runs", "--store", workflow_store, "history", "done")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["VERSION", "KEY", "KIND", "VALUE", "CREATED", "(UTC)"]
    rows = [line.rsplit(maxsplit=2)[0].split(maxsplit=3) for line in lines[1:]]
    assert rows == [
        ["1", "-", "start", "input {'items': ['c']}"],
        ["2", "pack#0", "run", "'packed c'"],
        ["3", "stamp#0", "now", "2027-01-15T08:00:00+00:00"],
        ["4", "approval#0", "signal", "waiting for approve, until 2027-01-15 09:00:00"],
        ["5", "approval#0", "signal", "approve #1: {'by': 'ana'}"],
        ["6", "result", "result", "{'approved': {'by': 'ana'}, 'at': 2027}"],
    ]
    _, out = run("runs", "--store", workflow_store, "history", "waits")
    assert "pack#1      run     'packed b'" in out
    _, out = run("runs", "--store", workflow_store, "history", "sleeps")
    assert "cool-off#0  sleep  until 2027-01-15 08:10:00" in out
