"""Graphs that stop and resume: routing on leave, step limits, routing errors, durable runs.

Every test runs through run() and arun() (the ``runner`` fixture); durable
ones against every store.
"""

from __future__ import annotations

import threading

import pytest
from support import Recorder, Runner, resume

from stepkit import (
    END,
    START,
    CheckpointMismatchError,
    CheckpointSignatureError,
    Graph,
    GraphRoutingError,
    GraphStepLimitError,
    InvalidArgumentError,
    Pipeline,
    RunConflictError,
    decode_checkpoint,
)
from stepkit.stores import SQLiteStore

KEY = "graph-signing-key-0123456789"
OTHER_KEY = "another-signing-key-9876543210"


def verdict(ctx):
    return "yes" if ctx.get("approved") else "redo"


def up_to_ten(ctx):
    return "again" if ctx["n"] < 10 else "done"


class Sent:
    """The send node: counts its calls (exactly once matters)."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, ctx):
        with self.lock:
            self.calls += 1
        return {"sent": ctx["draft"]}


def draft(ctx):
    n = ctx.get("drafts", 0) + 1
    return {"drafts": n, "draft": f"draft {n}"}


def approval_loop(send=None, **options):
    """draft -> review -> (approved? send : draft again) -> END; review is the human gate."""
    return (
        Graph("review", **options)
        .add_node("draft", draft)
        .add_node("review", lambda ctx: None)
        .add_node("send", send or Sent(), retries=3)
        .add_edge(START, "draft")
        .add_edge("draft", "review")
        .add_conditional_edges(
            "review",
            lambda ctx: "yes" if ctx.get("approved") else "redo",
            {"yes": "send", "redo": "draft"},
        )
        .add_edge("send", END)
    )


def run_to_review(runner, graph, input=None, **kw):
    recorder = Recorder(stop_at="review")
    result = runner.run(graph, input or {}, on_step_complete=recorder, **kw)
    return result, recorder


class TestRoutingOnLeave:
    def test_stop_at_review_resume_with_approval_sends(self, runner):
        """Paused after review, resumed with {'approved': True}: the route goes to send."""
        send = Sent()
        g = approval_loop(send)
        paused, _recorder = run_to_review(runner, g)
        assert paused.status == "stopped"
        assert paused.stopped_at == "review"
        assert send.calls == 0
        result = runner.resume(g, paused.checkpoint, {"approved": True})
        assert result.status == "completed"
        assert result["sent"] == "draft 1"
        assert [s.name for s in result.steps] == ["send"]
        assert send.calls == 1

    def test_resume_without_approval_loops_back(self, runner):
        """Resumed without approval, the same checkpoint routes back to draft."""
        g = approval_loop()
        paused, _ = run_to_review(runner, g)
        recorder = Recorder(stop_at="review")
        again = runner.resume(g, paused.checkpoint, on_step_complete=recorder)
        assert [e.step_name for e in recorder.events] == ["draft", "review"]
        assert again["drafts"] == 2
        done = runner.resume(g, again.checkpoint, {"approved": True})
        assert done["sent"] == "draft 2"

    def test_checkpoint_records_done_not_routed_with_the_count(self, runner):
        """The position after review: done review (not yet routed), 2 node executions."""
        paused, _ = run_to_review(runner, approval_loop())
        cp = decode_checkpoint(paused.checkpoint)
        assert cp.position == {"done": "review", "steps": 2}
        assert cp.step_name == "review"

    def test_decisions_before_the_stop_stay_taken(self, runner):
        """A route taken before the stop is not decided again by the resume's override."""

        def mark(name):
            return lambda ctx: {"trail": (*ctx.get("trail", ()), name)}

        g = (
            Graph("fork")
            .add_node("a", mark("a"))
            .add_node("b", mark("b"))
            .add_node("c", mark("c"))
            .add_node("d", mark("d"))
            .set_entry_point("a")
            .add_conditional_edges("a", lambda ctx: ctx["go"], {"b": "b", "c": "c"})
            .add_edge("b", "d")
            .add_edge("c", "d")
            .add_edge("d", END)
        )
        paused = runner.run(g, {"go": "b"}, on_step_complete=Recorder(stop_at="b"))
        result = runner.resume(g, paused.checkpoint, {"go": "c"})
        assert result["trail"] == ("a", "b", "d")

    def test_completed_graph_checkpoint_does_not_route_again(self, runner):
        """A completed run's checkpoint has routed to END: resuming it runs nothing."""
        g = approval_loop()
        paused, _ = run_to_review(runner, g)
        done = runner.resume(g, paused.checkpoint, {"approved": True})
        assert decode_checkpoint(done.checkpoint).position["end"] is True
        again = runner.resume(g, done.checkpoint, {"approved": False})
        assert again.steps == ()
        assert again["approved"] is False

    def test_stop_inside_a_nested_pipeline_node(self, runner):
        """A nested pipeline node may be stopped inside; it counts once and routes when done."""
        inner = Pipeline("inner").step("x", lambda ctx: {"x": 1}).step("y", lambda ctx: {"y": 1})
        g = (
            Graph("nested", max_steps=2)
            .add_node("sub", inner)
            .add_node("last", lambda ctx: {"last": True})
            .set_entry_point("sub")
            .add_conditional_edges(
                "sub", lambda ctx: "on" if ctx.get("go") else "stop", {"on": "last", "stop": END}
            )
            .add_edge("last", END)
        )
        paused = runner.run(g, on_step_complete=Recorder(stop_at="sub/x"))
        cp = decode_checkpoint(paused.checkpoint)
        assert cp.position == {"at": "sub", "in": {"done": "x"}, "steps": 1}
        recorder = Recorder()
        result = runner.resume(g, paused.checkpoint, {"go": True}, on_step_complete=recorder)
        assert [e.step_name for e in recorder.events] == ["sub/y", "sub", "last"]
        assert result == {"x": 1, "y": 1, "go": True, "last": True}

    def test_abort_before_a_node_keeps_the_count(self, runner):
        """An abort between nodes: the checkpoint counts only the nodes that ran."""
        from stepkit import PipelineAbortedError

        abort = threading.Event()

        def bump(ctx):
            if ctx["n"] == 1:
                abort.set()
            return {"n": ctx["n"] + 1}

        g = (
            Graph("loop", max_steps=4)
            .add_node("bump", bump)
            .set_entry_point("bump")
            .add_conditional_edges(
                "bump", lambda ctx: "a" if ctx["n"] < 4 else "d", {"a": "bump", "d": END}
            )
        )
        with pytest.raises(PipelineAbortedError) as info:
            runner.run(g, {"n": 0}, abort=abort)
        assert decode_checkpoint(info.value.checkpoint).position == {"done": "bump", "steps": 2}
        assert runner.resume(g, info.value.checkpoint) == {"n": 4}


class TestStepLimit:
    def loop(self, **options):
        return (
            Graph("loop", **options)
            .add_node("bump", lambda ctx: {"n": ctx["n"] + 1})
            .set_entry_point("bump")
            .add_conditional_edges(
                "bump",
                lambda ctx: "again" if ctx["n"] < 10 else "done",
                {"again": "bump", "done": END},
            )
        )

    def test_exceeding_the_limit_raises_with_a_checkpoint(self, runner):
        """The (N+1)-th node execution raises GraphStepLimitError naming node and limit."""
        with pytest.raises(GraphStepLimitError) as info:
            runner.run(self.loop(max_steps=3), {"n": 0})
        err = info.value
        assert err.node == "bump"
        assert err.limit == 3
        assert err.steps == 3
        assert "max_steps=3" in str(err)
        cp = decode_checkpoint(err.checkpoint)
        assert cp.position == {"done": "bump", "steps": 3}
        assert cp.context == {"n": 3}

    def test_resume_with_a_higher_limit_keeps_the_count(self, runner):
        """max_steps= on resume replaces the limit; the executions so far still count."""
        g = self.loop(max_steps=3)
        with pytest.raises(GraphStepLimitError) as first:
            runner.run(g, {"n": 0})
        with pytest.raises(GraphStepLimitError) as second:
            runner.resume(g, first.value.checkpoint, max_steps=5)
        assert second.value.limit == 5
        assert decode_checkpoint(second.value.checkpoint).context == {"n": 5}
        assert runner.resume(g, second.value.checkpoint, max_steps=10) == {"n": 10}

    def test_repeated_resumes_cannot_exceed_the_limit(self, runner):
        """Stopping and resuming at every node does not reset the count."""
        g = self.loop(max_steps=4)
        checkpoint = runner.run(g, {"n": 0}, on_step_complete=Recorder(stop_at="bump")).checkpoint
        for _ in range(3):
            checkpoint = runner.resume(
                g, checkpoint, on_step_complete=Recorder(stop_at="bump")
            ).checkpoint
        with pytest.raises(GraphStepLimitError):
            runner.resume(g, checkpoint, on_step_complete=Recorder(stop_at="bump"))
        assert decode_checkpoint(checkpoint).context == {"n": 4}

    def test_a_given_limit_holds_for_the_rest_of_the_run(self, runner):
        """A limit given on resume is recorded and applies to later resumes too."""
        g = self.loop(max_steps=2)
        paused = runner.run(g, {"n": 0}, on_step_complete=Recorder(stop_at="bump"))
        again = runner.resume(g, paused.checkpoint, max_steps=4, on_step_complete=Recorder("bump"))
        assert decode_checkpoint(again.checkpoint).position == {
            "done": "bump",
            "steps": 2,
            "limit": 4,
        }
        with pytest.raises(GraphStepLimitError) as info:
            runner.resume(g, again.checkpoint)
        assert info.value.limit == 4

    @pytest.mark.parametrize("bad", [0, -3, True, "5"])
    def test_bad_limit_on_resume(self, runner, bad):
        """max_steps= on resume must be an int >= 1."""
        g = self.loop()
        paused = runner.run(g, {"n": 0}, on_step_complete=Recorder(stop_at="bump"))
        with pytest.raises(InvalidArgumentError, match="max_steps"):
            runner.resume(g, paused.checkpoint, max_steps=bad)


class TestRoutingErrors:
    def test_fixed_by_an_override_without_running_the_node_again(self, runner):
        """GraphRoutingError's checkpoint is after the node: a resume routes, the node stays run."""
        calls = []

        def review(ctx):
            calls.append(1)

        g = (
            Graph("g")
            .add_node("review", review)
            .add_node("send", lambda ctx: {"sent": True})
            .set_entry_point("review")
            .add_conditional_edges(
                "review", lambda ctx: ctx.get("verdict"), {"ok": "send", "no": END}
            )
            .add_edge("send", END)
        )
        with pytest.raises(GraphRoutingError) as info:
            runner.run(g)
        assert info.value.key is None
        result = runner.resume(g, info.value.checkpoint, {"verdict": "ok"})
        assert result["sent"] is True
        assert len(calls) == 1


class TestUpgrades:
    def test_signed_graph_checkpoints(self, runner):
        """Graph(secret=) signs checkpoints and refuses unsigned or tampered ones."""
        g = approval_loop(secret=KEY)
        paused, _ = run_to_review(runner, g)
        assert decode_checkpoint(paused.checkpoint, secret=KEY).verified
        with pytest.raises(CheckpointSignatureError):
            runner.resume(approval_loop(secret=OTHER_KEY), paused.checkpoint)

    def test_changed_graph_reports_or_refuses(self, runner):
        """A changed graph resumes with definition_changed, or raises under strict=True."""
        paused, _ = run_to_review(runner, approval_loop())
        changed = (
            Graph("review")
            .add_node("draft", draft)
            .add_node("review", lambda ctx: None)
            .add_node("send", Sent())
            .add_node("log", lambda ctx: {"logged": True})
            .add_edge(START, "draft")
            .add_edge("draft", "review")
            .add_conditional_edges(
                "review",
                lambda c: "yes" if c.get("approved") else "redo",
                {"yes": "send", "redo": "draft"},
            )
            .add_edge("send", "log")
            .add_edge("log", END)
        )
        result = runner.resume(changed, paused.checkpoint, {"approved": True})
        assert result.definition_changed
        assert result["logged"] is True
        with pytest.raises(CheckpointMismatchError):
            runner.resume(changed, paused.checkpoint, strict=True)

    def test_renamed_node_and_migrations(self, runner):
        """renamed= maps an old node name; migrations= upgrade the context of an old version."""
        paused, _ = run_to_review(runner, approval_loop(version=1))
        renamed = (
            Graph(
                "review",
                version=2,
                renamed={"review": "check"},
                migrations={"1": lambda ctx: {**ctx, "migrated": True}},
            )
            .add_node("draft", draft)
            .add_node("check", lambda ctx: None)
            .add_node("send", Sent())
            .add_edge(START, "draft")
            .add_edge("draft", "check")
            .add_conditional_edges(
                "check",
                lambda c: "yes" if c.get("approved") else "redo",
                {"yes": "send", "redo": "draft"},
            )
            .add_edge("send", END)
        )
        result = runner.resume(renamed, paused.checkpoint, {"approved": True})
        assert result["migrated"] is True
        assert result["sent"] == "draft 1"

    def test_node_gone_is_a_mismatch(self, runner):
        """A checkpoint whose node no longer exists names it."""
        paused, _ = run_to_review(runner, approval_loop())
        other = Graph("review").add_node("draft", draft).set_entry_point("draft")
        with pytest.raises(CheckpointMismatchError, match="'review' does not exist"):
            runner.resume(other.add_edge("draft", END), paused.checkpoint)

    def test_pipeline_checkpoint_on_a_graph_and_back(self, runner):
        """A pipeline's checkpoint does not resume a graph of the same name, nor the reverse."""
        pipeline = Pipeline("review").step("draft", draft).step("review", lambda c: None)
        cp = runner.run(pipeline, on_step_complete=Recorder(stop_at="draft")).checkpoint
        with pytest.raises(CheckpointMismatchError, match="taken in a pipeline"):
            runner.resume(approval_loop(), cp)
        paused, _ = run_to_review(runner, approval_loop())
        with pytest.raises(CheckpointMismatchError, match="taken in a graph"):
            runner.resume(pipeline, paused.checkpoint)


# -- durable -------------------------------------------------------------------------


class TestDurable:
    def test_approval_loop_paused_and_resumed_by_run_id(self, runner, store):
        """A durable graph pauses at review and resumes by run id with the approval."""
        send = Sent()
        g = approval_loop(send)
        _paused, _ = run_to_review(runner, g, store=store, run_id="apr-1")
        assert store.get("apr-1").status == "paused"
        again = resume(runner, g, "apr-1", store=store, on_step_complete=Recorder(stop_at="review"))
        assert again["drafts"] == 2
        done = resume(runner, g, "apr-1", store=store, override_data={"approved": True})
        assert done.status == "completed"
        assert done["sent"] == "draft 2"
        assert send.calls == 1
        assert store.get("apr-1").status == "completed"
        assert resume(runner, g, "apr-1", store=store)["sent"] == "draft 2"
        assert send.calls == 1

    def test_step_limit_fails_the_run_and_a_higher_limit_continues(self, runner, store):
        """A durable run over its limit is recorded failed; resume(max_steps=) continues it."""
        g = approval_loop(max_steps=4)
        with pytest.raises(GraphStepLimitError):
            runner.run(g, {}, store=store, run_id="lim")  # never approved: loops
        record = store.get("lim")
        assert record.status == "failed"
        assert "GraphStepLimitError" in record.error
        with pytest.raises(GraphStepLimitError) as info:
            resume(runner, g, "lim", store=store, max_steps=6)
        assert info.value.limit == 6
        done = resume(runner, g, "lim", store=store, override_data={"approved": True}, max_steps=7)
        assert done["drafts"] == 3
        assert done["sent"] == "draft 3"

    def test_routing_error_fails_the_run_and_an_override_continues(self, runner, store):
        """A durable run whose selector picks no route is failed; an override fixes it."""
        g = (
            Graph("pick")
            .add_node("a", lambda ctx: {"a": 1})
            .add_node("b", lambda ctx: {"b": 1})
            .set_entry_point("a")
            .add_conditional_edges("a", lambda ctx: ctx.get("route"), {"b": "b", "end": END})
            .add_edge("b", END)
        )
        with pytest.raises(GraphRoutingError):
            runner.run(g, {}, store=store, run_id="route")
        assert store.get("route").status == "failed"
        done = resume(runner, g, "route", store=store, override_data={"route": "b"})
        assert done == {"a": 1, "b": 1, "route": "b"}
        assert [s.name for s in done.steps] == ["b"]


def test_exactly_once_under_concurrent_resumes(tmp_path):
    """Eight threads resume one paused approval on SQLite: send runs once, the rest conflict."""
    send = Sent()
    g = approval_loop(send)
    store = SQLiteStore(tmp_path / "runs.db")
    g.run({}, store=store, run_id="apr", on_step_complete=Recorder(stop_at="review"))
    barrier = threading.Barrier(8, timeout=30)
    outcomes: list[str] = []

    def contend():
        barrier.wait()
        try:
            result = g.resume("apr", store=store, override_data={"approved": True})
        except RunConflictError:
            outcomes.append("conflict")
        else:
            outcomes.append(result.status)

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    assert send.calls == 1
    assert len(outcomes) == 8
    assert set(outcomes) <= {"completed", "conflict"}
    assert "completed" in outcomes


class TestCommandLine:
    def test_graph_command_draws_a_graph(self, tmp_path, monkeypatch):
        """`python -m stepkit graph module:attr` prints a graph's Mermaid, keys as labels."""
        import io

        from stepkit.cli import main as cli

        (tmp_path / "graph_flows.py").write_text(
            "from stepkit import END, START, Graph\n"
            "flow = (Graph('flow').add_node('a', lambda c: None, log=True)\n"
            "        .add_node('b', lambda c: None).add_edge(START, 'a')\n"
            "        .add_conditional_edges('a', lambda c: 'x', {'x': 'b', 'y': END})\n"
            "        .add_edge('b', END))\n"
        )
        monkeypatch.chdir(tmp_path)
        monkeypatch.syspath_prepend(str(tmp_path))
        out = io.StringIO()
        assert cli(["graph", "graph_flows:flow"], out) == 0
        assert 'n1 -->|"x"| n2' in out.getvalue()
        assert 'n1 -->|"y"| done' in out.getvalue()

    def test_runs_resume_and_inspect_work_for_graphs(self, tmp_path, monkeypatch):
        """`runs resume --pipeline` resumes a stored graph run; `inspect` reads its checkpoint."""
        import io

        from stepkit.cli import main as cli

        (tmp_path / "graph_review.py").write_text(  # (tests/ is on the path under pytest)
            "from graph.test_graph_resume import approval_loop\nflow = approval_loop()\n"
        )
        monkeypatch.chdir(tmp_path)
        monkeypatch.syspath_prepend(str(tmp_path))
        db = tmp_path / "runs.db"
        store = SQLiteStore(db)
        paused, _ = run_to_review(Runner("sync"), approval_loop(), store=store, run_id="cli")
        store.close()
        out = io.StringIO()
        status = cli(
            [
                "runs",
                "--store",
                f"sqlite:///{db}",
                "resume",
                "cli",
                "--pipeline",
                "graph_review:flow",
                "--override",
                '{"approved": true}',
            ],
            out,
        )
        assert status == 0, out.getvalue()
        assert "send" in out.getvalue()
        out = io.StringIO()
        assert cli(["inspect", paused.checkpoint], out) == 0
        assert "review" in out.getvalue()
