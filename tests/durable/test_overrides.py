"""What a resume says is part of the run: ``override_data`` is checked up front and persisted.

A durable resume stores its override as a version of its own (``kind="override"``)
right after the claim and before the next step, so a later pause, a failure or
a crash never loses it. Every test runs through both drivers and, where a store
is involved, against every store.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from support import Recorder, resume

from stepkit import InvalidArgumentError, Pipeline, RunConflictError, StepFailedError


class Flaky:
    """A step that fails until told otherwise; records the approvals it saw."""

    def __init__(self) -> None:
        self.ok = False
        self.seen: list[Any] = []

    def __call__(self, ctx):
        self.seen.append(ctx.get("approved"))
        if not self.ok:
            raise ConnectionError("smtp down")
        return {"sent": ctx.get("approved")}


def approval(send: Any) -> Pipeline:
    return (
        Pipeline("approval")
        .step("generate", lambda ctx: {"reply": ctx["body"].upper()})
        .step("review", lambda ctx: None)
        .step("send", send)
        .step("archive", lambda ctx: {"archived": ctx.get("approved")})
    )


#: A context large enough that versions hold diffs, not full snapshots (as in real runs).
BLOB = "x" * 20_000


def paused(runner, store, send: Any, run_id: str = "r") -> Pipeline:
    pipeline = approval(send)
    result = runner.run(
        pipeline,
        {"body": "hi", "blob": BLOB},
        store=store,
        run_id=run_id,
        on_step_complete=Recorder("review"),
    )
    assert result.status == "stopped"
    return pipeline


class TestPersisted:
    def test_an_override_survives_a_failure_of_the_next_step(self, runner, store):
        """Resume with an approval, the next step fails; a plain resume still sees the approval."""
        send = Flaky()
        pipeline = paused(runner, store, send)
        with pytest.raises(StepFailedError):
            resume(runner, pipeline, "r", store=store, override_data={"approved": True})
        assert store.get("r").status == "failed"
        send.ok = True
        result = resume(runner, pipeline, "r", store=store)
        assert send.seen == [True, True]
        assert (result["sent"], result["archived"]) == (True, True)

    def test_an_override_survives_a_second_pause(self, runner, store):
        """Resume with an approval, pause again; the next resume (no override) still has it."""
        send = Flaky()
        send.ok = True
        pipeline = paused(runner, store, send)
        again = resume(
            runner,
            pipeline,
            "r",
            store=store,
            override_data={"approved": "alice"},
            on_step_complete=Recorder("send"),
        )
        assert again.status == "stopped"
        result = resume(runner, pipeline, "r", store=store)
        assert result["archived"] == "alice"

    def test_a_completed_run_stores_the_override(self, runner, store):
        """The stored context of a completed run contains the approval; so does its result."""
        send = Flaky()
        send.ok = True
        pipeline = paused(runner, store, send)
        resume(runner, pipeline, "r", store=store, override_data={"approved": True})
        assert store.snapshot("r")["approved"] is True
        stored = resume(runner, pipeline, "r", store=store)  # completed: the stored result
        assert stored["approved"] is True
        assert not stored.steps

    def test_history_shows_the_override_version(self, runner, store, request):
        """The override is one version: after the paused step, its keys, parented on the pause."""
        send = Flaky()
        send.ok = True
        pipeline = paused(runner, store, send)
        store.test_clock.advance(5)
        resume(runner, pipeline, "r", store=store, override_data={"approved": True, "by": "bo"})
        history = store.history("r")
        assert [(v.version, v.parent, v.step_name) for v in history] == [
            (1, None, None),
            (2, 1, "generate"),
            (3, 2, "review"),
            (4, 3, "review"),  # the override, recorded after the step it resumes after
            (5, 4, "send"),
            (6, 5, "archive"),
        ]
        override = history[3]
        assert json.loads(override.changes) == {"approved": True, "by": "bo"}
        assert override.removed == ()
        assert override.created_at == store.test_clock.now
        assert store.snapshot("r", 4) == {
            "body": "hi",
            "blob": BLOB,
            "reply": "HI",
            "approved": True,
            "by": "bo",
        }
        assert all(v.snapshot is None for v in history)  # history() leaves snapshots out
        assert [v.kind for v in history] == ["start", "step", "step", "override", "step", "step"]

    def test_no_override_writes_no_version(self, runner, store):
        """override_data None or {} adds nothing to the history."""
        send = Flaky()
        send.ok = True
        pipeline = paused(runner, store, send)
        resume(runner, pipeline, "r", store=store, override_data={})
        assert [v.step_name for v in store.history("r")] == [
            None,
            "generate",
            "review",
            "send",
            "archive",
        ]

    def test_a_fork_records_its_start_then_the_override(self, runner, store, request):
        """fork=True: the new run starts with the context at that version, then the override."""
        send = Flaky()
        send.ok = True
        pipeline = approval(send)
        runner.run(pipeline, {"body": "hi", "blob": BLOB}, store=store, run_id="orig")
        before = store.history("orig")
        forked = resume(
            runner,
            pipeline,
            "orig",
            store=store,
            version=3,
            fork=True,
            override_data={"approved": "fork"},
        )
        assert forked["archived"] == "fork"
        assert store.history("orig") == before
        history = store.history(forked.run_id)
        assert [(v.version, v.parent, v.step_name) for v in history] == [
            (1, None, "review"),
            (2, 1, "review"),
            (3, 2, "send"),
            (4, 3, "archive"),
        ]
        assert store.snapshot(forked.run_id, 1) == {"body": "hi", "blob": BLOB, "reply": "HI"}
        assert store.snapshot(forked.run_id, 2)["approved"] == "fork"
        assert [v.kind for v in history] == ["start", "override", "step", "step"]

    def test_time_travel_parents_the_override_on_the_version_gone_back_to(self, runner, store):
        """resume(version=v, override_data=...) records the override with parent v."""
        send = Flaky()
        send.ok = True
        pipeline = paused(runner, store, send)
        result = resume(
            runner, pipeline, "r", store=store, version=2, override_data={"approved": 1}
        )
        assert result["archived"] == 1
        history = store.history("r")
        assert [(v.version, v.parent, v.step_name) for v in history][3:] == [
            (4, 2, "generate"),
            (5, 4, "review"),
            (6, 5, "send"),
            (7, 6, "archive"),
        ]


BAD_OVERRIDES = [
    ({1: "x"}, "keys must be str"),
    ({"$t": "x"}, r"'\$t'"),
    ({"ok": object()}, r"override_data\['ok'\]"),
    ({"deep": [1, {"x": object()}]}, r"override_data\['deep'\]\[1\]"),
    (["approved"], "must be a mapping"),
]


class TestChecked:
    @pytest.mark.parametrize(("override", "message"), BAD_OVERRIDES)
    def test_a_bad_override_is_refused_before_anything_runs_or_is_stored(
        self, runner, store, override, message
    ):
        """Bad keys or values the codec cannot encode: InvalidArgumentError, run untouched."""
        send = Flaky()
        send.ok = True
        pipeline = paused(runner, store, send)
        record, history = store.get("r"), store.history("r")
        with pytest.raises(InvalidArgumentError, match=message):
            resume(runner, pipeline, "r", store=store, override_data=override)
        assert send.seen == []
        assert store.get("r") == record
        assert store.history("r") == history

    @pytest.mark.parametrize(("override", "message"), BAD_OVERRIDES)
    def test_run_checkpoint_checks_its_override_too(self, runner, override, message):
        """run_checkpoint(): the same checks, before any step runs."""
        calls: list[str] = []
        pipeline = (
            Pipeline("p")
            .step("a", lambda ctx: {"a": 1})
            .step("b", lambda ctx: calls.append("b") or {"b": 1})
        )
        rec = Recorder("a")
        runner.run(pipeline, {}, on_step_complete=rec)
        with pytest.raises(InvalidArgumentError, match=message):
            runner.resume(pipeline, rec.checkpoint("a"), override)
        assert calls == []

    @pytest.mark.parametrize("key", [1, ("a",), "$t"])
    def test_the_input_of_a_run_needs_str_keys(self, runner, key):
        """run(): input keys must be str other than '$t', checked before any step."""
        calls: list[str] = []
        pipeline = Pipeline("p").step("a", lambda ctx: calls.append("a") or {})
        with pytest.raises(InvalidArgumentError, match="keys must be str"):
            runner.run(pipeline, {key: 1})
        assert calls == []

    def test_the_input_of_a_durable_run_must_be_storable(self, runner, store):
        """run(store=) with a value the codec cannot encode: refused, naming it, nothing stored."""
        calls: list[str] = []
        pipeline = Pipeline("p").step("a", lambda ctx: calls.append("a") or {})
        with pytest.raises(InvalidArgumentError, match=r"context\['x'\]\[0\]"):
            runner.run(pipeline, {"x": [object()]}, store=store, run_id="r")
        assert calls == []
        assert store.get("r") is None

    @pytest.mark.parametrize("option", ["ttl", "lease"])
    def test_durable_options_need_a_store(self, runner, option):
        """ttl= and lease= without store= say they need a store."""
        pipeline = Pipeline("p").step("a", lambda ctx: {})
        with pytest.raises(InvalidArgumentError, match=f"{option}= needs a store"):
            runner.run(pipeline, {}, **{option: 5})
        with pytest.raises(InvalidArgumentError, match="need a store"):
            runner.run(pipeline, {}, ttl=5, lease=5, store=None)
        rec = Recorder()
        runner.run(pipeline, {}, on_step_complete=rec)
        # run_checkpoint() has no store at all: its signature has no such option
        with pytest.raises(TypeError, match=option):
            runner.resume(pipeline, rec.checkpoint("a"), None, **{option: 5})


def test_a_resume_answered_twice_keeps_the_first_answer(runner, store):
    """The second resume of a completed run neither runs nor records its override."""
    send = Flaky()
    send.ok = True
    pipeline = paused(runner, store, send)
    resume(runner, pipeline, "r", store=store, override_data={"approved": True})
    versions = len(store.history("r"))
    again = resume(runner, pipeline, "r", store=store, override_data={"approved": False})
    assert again["approved"] is True
    assert len(store.history("r")) == versions
    with pytest.raises(RunConflictError):
        resume(runner, pipeline, "r", store=store, version=2, override_data={"approved": False})
