"""Running pipelines: results, context rules, events, stop, resume and failures.

Every test runs through both run() and arun() (the ``runner`` fixture).
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading

import pytest
from support import Recorder

from stepkit import (
    CheckpointMismatchError,
    EventLoopError,
    InvalidArgumentError,
    InvalidCheckpointError,
    Pipeline,
    PipelineAbortedError,
    StepFailedError,
    StepkitError,
    decode_checkpoint,
)


def calc() -> Pipeline:
    return (
        Pipeline("calc")
        .step("add-one", lambda ctx: {"a": ctx["a"] + 1})
        .step("double", lambda ctx: {"a": ctx["a"] * 2})
        .step("finish", lambda ctx: {"sum": ctx["a"] + ctx.get("b", 0)})
    )


class TestRunning:
    def test_calculator(self, runner):
        """The calculator of the spec gives {'a': 4, 'sum': 4}."""
        result = runner.run(calc(), {"a": 1})
        assert result == {"a": 4, "sum": 4}
        assert result.status == "completed"
        assert result.stopped_at is None
        assert [s.name for s in result.steps] == ["add-one", "double", "finish"]
        assert all(s.status == "completed" and s.attempts == 1 for s in result.steps)

    def test_result_is_a_read_only_mapping(self, runner):
        """A RunResult is a Mapping that cannot be changed."""
        result = runner.run(calc(), {"a": 1})
        assert dict(result) == {"a": 4, "sum": 4}
        with pytest.raises(TypeError):
            result["a"] = 5  # type: ignore[index]
        with pytest.raises(TypeError):
            result.context["a"] = 5  # type: ignore[index]

    def test_input_is_never_mutated(self, runner):
        """The caller's input dict is left as it was."""
        data = {"a": 1}
        runner.run(calc(), data)
        assert data == {"a": 1}

    def test_step_cannot_mutate_the_context(self, runner):
        """The context a step receives is read-only at top level."""

        def sneaky(ctx):
            ctx["a"] = 99

        with pytest.raises(StepFailedError, match="return the changes instead") as info:
            runner.run(Pipeline("p").step("sneaky", sneaky), {"a": 1})
        assert isinstance(info.value.__cause__, TypeError)  # the original, not re-typed

    def test_writing_the_context_in_a_parallel_item_says_how_to_fix(self, runner):
        """The read-only hint also names a parallel item that wrote into the context."""

        def sneaky(ctx):
            del ctx["a"]

        p = Pipeline("p").step("both", sneaky, lambda ctx: {"b": 1})
        with pytest.raises(StepFailedError, match="read-only: return the changes instead"):
            runner.run(p, {"a": 1})

    def test_none_output_changes_nothing(self, runner):
        """A step returning None leaves the context as it is."""
        assert runner.run(Pipeline("p").step("noop", lambda ctx: None), {"a": 1}) == {"a": 1}

    def test_async_steps_and_handlers(self, runner):
        """Async step functions, selectors, predicates and handlers all work."""
        seen = []

        async def step(ctx):
            await asyncio.sleep(0)
            return {"b": ctx["a"] + 1}

        async def pred(ctx):
            return True

        async def select(ctx):
            return "yes"

        async def handler(event):
            seen.append(event.step_name)

        p = Pipeline("p").step("s", step, when=pred).branch("b", on=select, cases={"yes": step})
        assert runner.run(p, {"a": 1}, on_step_complete=handler) == {"a": 1, "b": 2}
        assert seen == ["s", "b/yes/step", "b"]

    def test_input_none_is_an_empty_context(self, runner):
        """run() without input starts from an empty context."""
        assert runner.run(Pipeline("p").step("s", lambda ctx: {"n": len(ctx)})) == {"n": 0}

    @pytest.mark.parametrize("bad", [5, "text", [("a", 1)]])
    def test_bad_input_is_rejected(self, runner, bad):
        """Input that is not a mapping is an InvalidArgumentError."""
        with pytest.raises(InvalidArgumentError, match="mapping"):
            runner.run(calc(), bad)

    def test_unknown_run_option_is_rejected(self, runner):
        """A misspelt run option is Python's own TypeError, naming it."""
        with pytest.raises(TypeError, match="on_step_completed"):
            runner.run(calc(), {"a": 1}, on_step_completed=print)

    def test_run_id(self, runner):
        """Each run gets a unique id unless one is given."""
        a, b = runner.run(calc(), {"a": 1}), runner.run(calc(), {"a": 1})
        assert a.run_id != b.run_id
        assert runner.run(calc(), {"a": 1}, run_id="r-1").run_id == "r-1"

    def test_transform_replaces_the_context(self, runner):
        """A transform's result becomes the whole context."""
        p = Pipeline("p").transform("only-a", lambda ctx: {"a": ctx["a"]})
        assert runner.run(p, {"a": 1, "b": 2}) == {"a": 1}

    @pytest.mark.parametrize("bad", [None, 5])
    def test_transform_must_return_a_mapping(self, runner, bad):
        """A transform returning None or a non-mapping fails with an explanation."""
        p = Pipeline("p").transform("t", lambda ctx: bad)
        with pytest.raises(StepFailedError, match="whole new context") as info:
            runner.run(p, {"a": 1})
        assert info.value.step_name == "t"
        assert ("return {} to clear the context on purpose" in str(info.value)) == (bad is None)

    def test_step_returning_a_non_mapping_names_the_step(self, runner):
        """A step must return a mapping or None; anything else names the step."""
        p = Pipeline("p").step("bad", lambda ctx: 42)
        with pytest.raises(StepFailedError, match="step 'bad' returned int"):
            runner.run(p, {})

    def test_when(self, runner):
        """A step whose when= is false is skipped, recorded, and emits no event."""
        rec = Recorder()
        p = (
            Pipeline("p")
            .step("yes", lambda ctx: {"y": 1}, when=lambda ctx: ctx["go"])
            .step("no", lambda ctx: {"n": 1}, when=False)
            .step("never", lambda ctx: {"v": 1}, when=lambda ctx: not ctx["go"])
        )
        result = runner.run(p, {"go": True}, on_step_complete=rec)
        assert result == {"go": True, "y": 1}
        assert rec.names == ["yes"]
        assert [(s.name, s.status) for s in result.steps] == [
            ("yes", "completed"),
            ("no", "skipped"),
            ("never", "skipped"),
        ]


class TestParallelAndNesting:
    def test_parallel_items_see_the_context_before_the_step(self, runner):
        """Parallel items all see the pre-step context; outputs merge in order."""
        p = Pipeline("p").step(
            "par",
            lambda ctx: {"x": ctx["a"] + 1, "same": "first"},
            lambda ctx: {"y": ctx["a"] + 2, "same": "second"},
        )
        assert runner.run(p, {"a": 1}) == {"a": 1, "x": 2, "y": 3, "same": "second"}

    def test_parallel_nested_pipelines(self, runner):
        """Nested pipelines as parallel items each run on their own copy of the context."""
        left = (
            Pipeline("l")
            .step("l1", lambda ctx: {"l": ctx["a"]})
            .step("l2", lambda ctx: {"l": ctx["l"] * 10})
        )
        right = Pipeline("r").step("r1", lambda ctx: {"r": "l" in ctx})
        rec = Recorder()
        result = runner.run(Pipeline("p").step("par", left, right), {"a": 2}, on_step_complete=rec)
        assert result == {"a": 2, "l": 20, "r": False}
        assert rec.names == ["par/l1", "par/l2", "par/r1", "par"]

    def test_parallel_function_items_are_steps(self, runner):
        """Each function item of a parallel step has start and completion events and a record."""
        tries = []

        def flaky(ctx):
            tries.append(1)
            if len(tries) < 4:
                raise ConnectionError("not yet")
            return {"f": ctx["a"]}

        def plain(ctx):
            return {"p": ctx["a"] + 1}

        rec, started = Recorder(), []
        p = Pipeline("p").step("par", flaky, plain, retries=3)
        result = runner.run(
            p,
            {"a": 1},
            on_step_complete=rec,
            on_step_start=lambda e: started.append(e.step_name),
            sleep=lambda s: None,
        )
        assert result == {"a": 1, "f": 1, "p": 2}
        assert sorted(rec.names[:2]) == ["par/flaky", "par/plain"]
        assert rec.names[2] == "par"
        assert started[0] == "par"
        assert sorted(started[1:]) == ["par/flaky", "par/plain"]
        by_name = {e.step_name: e for e in rec.events}
        assert (by_name["par/flaky"].output, by_name["par/flaky"].attempt) == ({"f": 1}, 4)
        assert (by_name["par/plain"].output, by_name["par/plain"].attempt) == ({"p": 2}, 1)
        # an item's event shows the context before the step with the item's own output
        assert by_name["par/plain"].context == {"a": 1, "p": 2}
        records = {s.name: (s.status, s.attempts) for s in result.steps}
        assert records == {
            "par/flaky": ("completed", 4),
            "par/plain": ("completed", 1),
            "par": ("completed", 1),
        }

    def test_stop_at_a_function_item_keeps_its_output(self, runner):
        """Stopping at a parallel function item's event resumes without running it again."""
        calls = []

        def track(name):
            def fn(ctx):
                calls.append(name)
                return {name: True}

            fn.__name__ = name
            return fn

        p = Pipeline("p").step("par", track("a"), track("b")).step("after", track("after"))
        rec = Recorder(stop_at="par/a")
        stopped = runner.run(p, on_step_complete=rec)
        assert stopped.status == "stopped"
        assert stopped.stopped_at == "par/a"
        calls.clear()
        assert runner.resume(p, rec.checkpoints["par/a"]) == {"a": True, "b": True, "after": True}
        assert "a" not in calls
        calls.clear()
        assert runner.resume(p, stopped.checkpoint) == {"a": True, "b": True, "after": True}
        assert calls == ["after"]

    def test_nested_events_inner_before_container(self, runner):
        """Nested steps fire with '/' paths, inner steps before their container."""
        inner = Pipeline("inner").step("x", lambda ctx: {"x": 1}).step("y", lambda ctx: {"y": 2})
        rec = Recorder()
        runner.run(
            Pipeline("p").step("outer", inner).step("z", lambda ctx: None), on_step_complete=rec
        )
        assert rec.names == ["outer/x", "outer/y", "outer", "z"]

    def test_branch_runs_the_selected_case(self, runner):
        """A branch runs the chosen case's steps, then fires for itself."""
        rec = Recorder()
        odd = Pipeline("odd").step("inc", lambda ctx: {"n": ctx["n"] + 1})
        p = Pipeline("p").branch(
            "parity",
            on=lambda ctx: "odd" if ctx["n"] % 2 else "even",
            cases={"odd": odd, "even": lambda ctx: {"even": True}},
        )
        assert runner.run(p, {"n": 3}, on_step_complete=rec) == {"n": 4}
        assert rec.names == ["parity/odd/inc", "parity"]
        assert runner.run(p, {"n": 2}) == {"n": 2, "even": True}

    def test_branch_default_and_skip(self, runner):
        """Unknown keys go to the default case; None skips the branch."""
        p = Pipeline("p").branch(
            "b",
            on=lambda ctx: ctx["k"],
            cases={"a": lambda ctx: {"r": "a"}},
            default=lambda ctx: {"r": "default"},
        )
        assert runner.run(p, {"k": "zzz"})["r"] == "default"
        result = runner.run(p, {"k": None})
        assert "r" not in result
        assert result.steps[0].status == "skipped"

    def test_branch_unknown_key_without_default_is_an_error(self, runner):
        """A selector returning an unknown key, with no default, fails clearly."""
        p = Pipeline("p").branch("b", on=lambda ctx: "c", cases={"a": lambda ctx: None})
        with pytest.raises(StepFailedError, match="returned 'c', which is not one of its cases"):
            runner.run(p, {})


class TestEvents:
    def test_pipeline_handlers_fire_before_run_handlers(self, runner):
        """Pipeline-level handlers are called first, then run-level ones."""
        order = []
        p = Pipeline("p", on_step_complete=lambda e: order.append(("pipe", e.step_name)))
        p = p.step("s", lambda ctx: None)
        runner.run(p, on_step_complete=lambda e: order.append(("run", e.step_name)))
        assert order == [("pipe", "s"), ("run", "s")]

    def test_event_fields(self, runner):
        """An event carries the step name, context, output, attempt and run id."""
        events = []

        def keep(event):
            events.append(
                (event.step_name, dict(event.context), event.output, event.attempt, event.run_id)
            )
            assert event.duration >= 0

        result = runner.run(calc(), {"a": 1}, on_step_complete=keep, run_id="r")
        assert events[1] == ("double", {"a": 4}, {"a": 4}, 1, "r")
        assert result.run_id == "r"

    def test_event_checkpoint_reflects_the_state_after_the_step(self, runner):
        """event.checkpoint decodes to the context and step path after that step."""
        rec = Recorder()
        runner.run(calc(), {"a": 1}, on_step_complete=rec)
        cp = decode_checkpoint(rec.checkpoints["double"])
        assert cp.step_name == "double"
        assert cp.context == {"a": 4}
        assert cp.pipeline == "calc"

    def test_checkpoint_must_be_read_during_the_handler(self, runner):
        """Reading event.checkpoint after the handler returned is a clear error."""
        kept = []
        runner.run(calc(), {"a": 1}, on_step_complete=kept.append)
        with pytest.raises(StepkitError, match="inside the handler"):
            _ = kept[0].checkpoint

    def test_handlers_that_ignore_checkpoints_cause_no_encoding(self, runner):
        """A context value that cannot be encoded is harmless unless a checkpoint is read."""
        p = Pipeline("p").step("s", lambda ctx: {"lock": threading.Lock()})
        result = runner.run(p, on_step_complete=lambda e: None)
        assert "lock" in result

    def test_stop_pipeline(self, runner):
        """stop_pipeline() ends the run after this step with status 'stopped'."""
        rec = Recorder(stop_at="double")
        result = runner.run(calc(), {"a": 1}, on_step_complete=rec)
        assert result.status == "stopped"
        assert result.stopped_at == "double"
        assert result == {"a": 4}
        assert rec.names == ["add-one", "double"]

    def test_stop_inside_nested_stops_every_level(self, runner):
        """A stop in a nested step stops the containers and later steps too."""
        inner = Pipeline("inner").step("x", lambda ctx: {"x": 1}).step("y", lambda ctx: {"y": 1})
        rec = Recorder(stop_at="outer/x")
        p = Pipeline("p").step("outer", inner).step("after", lambda ctx: {"after": 1})
        result = runner.run(p, on_step_complete=rec)
        assert result == {"x": 1}
        assert rec.names == ["outer/x"]
        assert result.stopped_at == "outer/x"

    def test_handler_errors_propagate_unchanged(self, runner):
        """An exception from a handler is not swallowed or re-typed."""

        def boom(event):
            raise KeyError("handler")

        with pytest.raises(KeyError, match="handler"):
            runner.run(calc(), {"a": 1}, on_step_complete=boom)

    def test_abort_signal(self, runner):
        """A set abort signal stops the run before the next step, with a checkpoint."""
        abort = threading.Event()

        def second(ctx):
            abort.set()
            return {"b": 2}

        p = (
            Pipeline("p")
            .step("one", lambda ctx: {"a": 1})
            .step("two", second)
            .step("three", lambda ctx: {"c": 3})
        )
        with pytest.raises(PipelineAbortedError) as info:
            runner.run(p, abort=abort)
        assert decode_checkpoint(info.value.checkpoint).context == {"a": 1, "b": 2}
        assert runner.resume(p, info.value.checkpoint) == {"a": 1, "b": 2, "c": 3}

    def test_abort_must_have_is_set(self, runner):
        """abort= rejects objects without is_set()."""
        with pytest.raises(InvalidArgumentError, match="is_set"):
            runner.run(calc(), {"a": 1}, abort=True)


class TestResume:
    def test_resume_from_double_with_override(self, runner):
        """The spec's calculator resume gives {'a': 4, 'b': 10, 'sum': 14}."""
        rec = Recorder()
        runner.run(calc(), {"a": 1}, on_step_complete=rec)
        result = runner.resume(calc(), rec.checkpoints["double"], {"b": 10})
        assert result == {"a": 4, "b": 10, "sum": 14}

    def test_steps_before_the_checkpoint_do_not_run(self, runner):
        """Resuming runs only the steps after the recorded one and emits only their events."""
        rec = Recorder()
        runner.run(calc(), {"a": 1}, on_step_complete=rec)
        after = Recorder()
        runner.resume(calc(), rec.checkpoints["add-one"], on_step_complete=after)
        assert after.names == ["double", "finish"]

    def test_checkpoint_of_the_last_step_returns_at_once(self, runner):
        """A checkpoint after the last step runs nothing, but applies the override."""
        result = runner.run(calc(), {"a": 1})
        rec = Recorder()
        again = runner.resume(calc(), result.checkpoint, {"x": 1}, on_step_complete=rec)
        assert again == {"a": 4, "sum": 4, "x": 1}
        assert rec.names == []

    def test_resume_keeps_the_run_id(self, runner):
        """A resumed run keeps the run id recorded in the checkpoint."""
        rec = Recorder()
        runner.run(calc(), {"a": 1}, on_step_complete=rec, run_id="keep-me")
        assert runner.resume(calc(), rec.checkpoints["double"]).run_id == "keep-me"

    def test_branch_decision_stays_taken(self, runner):
        """A checkpoint inside case 'odd' continues in 'odd' whatever the override says."""
        case = (
            Pipeline("case")
            .step("one", lambda ctx: None)
            .step("two", lambda ctx: {"went": ctx["case"]})
        )
        p = (
            Pipeline("p")
            .step("set", lambda ctx: {"case": "odd" if ctx["n"] % 2 else "even"})
            .branch("b", on=lambda ctx: ctx["case"], cases={"odd": case, "even": case})
        )
        rec = Recorder()
        runner.run(p, {"n": 1}, on_step_complete=rec)
        result = runner.resume(p, rec.checkpoints["b/odd/one"], {"case": "even", "n": 2})
        assert result["went"] == "even"  # the case's own step reads ctx; the case stays odd
        assert decode_checkpoint(result.checkpoint).position == {"done": "b"}
        rec2 = Recorder()
        runner.resume(p, rec.checkpoints["b/odd/one"], {"n": 2}, on_step_complete=rec2)
        assert rec2.names == ["b/odd/two", "b"]

    def test_parallel_siblings_are_not_rerun(self, runner):
        """A checkpoint inside a parallel group keeps finished siblings' outputs."""
        calls = []

        def track(name, out):
            def fn(ctx):
                calls.append(name)
                return out

            fn.__name__ = name
            return fn

        left = Pipeline("l").step("l1", track("l1", {"l1": 1})).step("l2", track("l2", {"l2": 2}))
        right = Pipeline("r").step("r1", track("r1", {"r1": 3}))
        p = Pipeline("p").step("par", right, left, track("f", {"f": 4}))
        rec = Recorder(stop_at="par/l1")
        stopped = runner.run(p, on_step_complete=rec)
        assert stopped.status == "stopped"
        # siblings already running finish their step; result.checkpoint keeps them
        calls.clear()
        result = runner.resume(p, stopped.checkpoint)
        assert result == {"l1": 1, "l2": 2, "r1": 3, "f": 4}
        assert calls == ["l2"]
        # the stop event's own checkpoint is as of that moment: never l1 again
        calls.clear()
        assert runner.resume(p, rec.checkpoints["par/l1"]) == dict(result)
        assert "l1" not in calls
        assert "l2" in calls

    def test_checkpoint_of_another_pipeline_is_rejected(self, runner):
        """Resuming another pipeline's checkpoint is a CheckpointMismatchError."""
        result = runner.run(calc(), {"a": 1})
        with pytest.raises(CheckpointMismatchError, match="belongs to pipeline 'calc'"):
            runner.resume(Pipeline("other").step("s", lambda ctx: None), result.checkpoint)

    def test_unknown_step_path_is_rejected_and_named(self, runner):
        """A recorded step that no longer exists is named, with the current steps."""
        rec = Recorder()
        runner.run(calc(), {"a": 1}, on_step_complete=rec)
        changed = Pipeline("calc").step("add-one", lambda ctx: None).step("other", lambda ctx: None)
        with pytest.raises(CheckpointMismatchError, match=r"'double'.*add-one, other"):
            runner.resume(changed, rec.checkpoints["double"])

    def test_definition_changed_is_reported(self, runner):
        """A changed pipeline whose recorded step still exists resumes and says so."""
        rec = Recorder()
        runner.run(calc(), {"a": 1}, on_step_complete=rec)
        changed = calc().step("extra", lambda ctx: {"extra": True})
        result = runner.resume(changed, rec.checkpoints["double"])
        assert result.definition_changed
        assert result["extra"] is True
        assert not runner.resume(calc(), rec.checkpoints["double"]).definition_changed
        with pytest.raises(CheckpointMismatchError, match="strict"):
            runner.resume(changed, rec.checkpoints["double"], strict=True)

    @pytest.mark.parametrize(
        "bad",
        [
            None,
            42,
            b"eyJ9",
            "not base64 !!",
            base64.urlsafe_b64encode(b"not json").decode(),
            base64.urlsafe_b64encode(b"[1, 2]").decode(),
            base64.urlsafe_b64encode(json.dumps({"format": 99}).encode()).decode(),
            base64.urlsafe_b64encode(json.dumps({"format": 1}).encode()).decode(),
        ],
    )
    def test_malformed_checkpoints_are_invalid(self, runner, bad):
        """Anything malformed is an InvalidCheckpointError (a ValueError) and runs nothing."""
        with pytest.raises(InvalidCheckpointError) as info:
            runner.resume(calc(), bad)
        assert isinstance(info.value, ValueError)

    def test_bad_override_is_rejected(self, runner):
        """override_data must be a mapping."""
        result = runner.run(calc(), {"a": 1})
        with pytest.raises(InvalidArgumentError, match="override_data"):
            runner.resume(calc(), result.checkpoint, [1])


class TestFailures:
    def test_step_failed_error_carries_everything(self, runner):
        """StepFailedError has the step, attempts, cause, context before it, and a checkpoint."""
        fixed = {"ok": False}

        def flaky(ctx):
            if not fixed["ok"]:
                raise ConnectionError("down")
            return {"sent": True}

        p = calc().step("send", flaky)
        with pytest.raises(StepFailedError) as info:
            runner.run(p, {"a": 1}, run_id="r")
        err = info.value
        assert err.step_name == "send"
        assert err.attempts == 1
        assert err.run_id == "r"
        assert isinstance(err.__cause__, ConnectionError)
        assert err.context == {"a": 4, "sum": 4}
        fixed["ok"] = True
        assert runner.resume(p, err.checkpoint) == {"a": 4, "sum": 4, "sent": True}

    def test_failure_inside_nested_names_the_inner_path(self, runner):
        """A failing nested step is reported with its full path."""
        inner = Pipeline("inner").step("x", lambda ctx: 1 / 0)
        with pytest.raises(StepFailedError) as info:
            runner.run(Pipeline("p").step("outer", inner))
        assert info.value.step_name == "outer/x"
        assert isinstance(info.value.__cause__, ZeroDivisionError)

    def test_on_error_hooks_called_once_per_failed_step(self, runner):
        """on_error(step_name, exc) is called once for the failed step."""
        seen = []
        inner = Pipeline("inner").step("x", lambda ctx: 1 / 0)
        p = Pipeline("p", on_error=lambda name, exc: seen.append(("pipe", name)))
        p = p.step("outer", inner)
        with pytest.raises(StepFailedError):
            runner.run(p, on_error=lambda name, exc: seen.append(("run", name)))
        assert seen == [("pipe", "outer/x"), ("run", "outer/x")]


def test_run_with_async_step_inside_a_running_loop_points_to_arun():
    """run() called from async code with an async step raises EventLoopError."""

    async def step(ctx):
        return {"a": 1}

    async def main():
        with pytest.raises(EventLoopError, match="arun"):
            Pipeline("p").step("s", step).run()

    asyncio.run(main())


def test_run_with_async_step_outside_a_loop_works():
    """run() runs async steps on a private loop when none is running."""

    async def step(ctx):
        await asyncio.sleep(0)
        return {"a": 1}

    assert Pipeline("p").step("s", step).run() == {"a": 1}
