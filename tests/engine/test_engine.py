"""The pure engine, driven by hand: commands in, results and exceptions sent back.

No driver runs here: each test plays the driver's part, so it shows exactly
which command the core asks for at each point and what it decides from the
answer (retries, stop, parallel merging, resume positions).
"""

from __future__ import annotations

from typing import Any

import pytest

from stepkit import Pipeline, StepFailedError
from stepkit.engine._commands import (
    DONE,
    STOPPED,
    Call,
    CallTimeout,
    Emit,
    ErrorHooks,
    Gen,
    Parallel,
    Persist,
    Sleep,
    StartHooks,
)
from stepkit.engine._level import run_level
from stepkit.engine._position import (
    Done,
    InCase,
    InNested,
    InParallel,
    ItemDone,
    ItemRunning,
    Writes,
    check_position,
    from_tree,
    rename_position,
    to_tree,
)
from stepkit.engine._run import Run
from stepkit.errors import CheckpointMismatchError, InvalidCheckpointError, NonRetryableError


def fn_a(ctx: Any) -> Any:
    return {"a": 1}


def fn_b(ctx: Any) -> Any:
    return {"b": 2}


def new_run(ctx: dict[str, Any] | None = None, **hooks: Any) -> Run:
    return Run(
        ctx if ctx is not None else {}, "run-1", encoder=lambda pos, step, ctx: "cp", **hooks
    )


def start(pipeline: Pipeline, run: Run, resume: Any = None) -> tuple[Gen, Any]:
    gen = run_level(run, run.root, pipeline, "", resume)
    return gen, gen.send(None)


def finish(gen: Gen, value: Any = None) -> Any:
    """Send the last result in; the level must end, and its outcome is returned."""
    with pytest.raises(StopIteration) as stop:
        gen.send(value)
    return stop.value.value


class TestSteps:
    def test_a_plain_step_is_one_call(self):
        """A plain step asks for fn(view); its output is merged and the level ends DONE."""
        run = new_run({"x": 0})
        gen, cmd = start(Pipeline("p").step("a", fn_a), run)
        assert type(cmd) is Call
        assert cmd.fn is fn_a
        assert cmd.arg == {"x": 0}
        assert finish(gen, {"a": 1}) == DONE
        assert run.ctx == {"x": 0, "a": 1}
        assert run.records == [("a", "completed", run.records[0][2], 1, None)]

    def test_when_is_asked_first(self):
        """A when= predicate is a Call of its own; false skips the step without calling it."""

        def never(ctx: Any) -> bool:
            return False

        run = new_run()
        gen, cmd = start(Pipeline("p").step("a", fn_a, when=never), run)
        assert cmd == Call(never, run.root.view)
        assert finish(gen, False) == DONE
        assert [r[:2] for r in run.records] == [("a", "skipped")]

    def test_handlers_get_an_emit_after_the_call(self):
        """With handlers, a completed step is announced with Emit(handlers, event)."""
        handlers = (lambda event: None,)
        run = new_run(handlers=handlers)
        gen, _ = start(Pipeline("p").step("a", fn_a).step("b", fn_b), run)
        emit = gen.send({"a": 1})
        assert type(emit) is Emit
        assert emit.handlers == handlers
        assert (emit.event.step_name, emit.event.output) == ("a", {"a": 1})
        assert type(gen.send(None)) is Call  # step b

    def test_stop_during_emit_ends_every_level(self):
        """stop_pipeline() during the Emit makes the level return STOPPED; b never starts."""
        run = new_run(handlers=(lambda event: None,))
        gen, _ = start(Pipeline("p").step("a", fn_a).step("b", fn_b), run)
        emit = gen.send({"a": 1})
        emit.event.stop_pipeline()  # what a handler would do
        assert finish(gen) == STOPPED
        assert run.stopped_at == "a"

    def test_start_hooks_come_before_the_call(self):
        """on_step_start handlers are a StartHooks command before the step's Call."""
        hooks = (lambda event: None,)
        run = new_run(start_hooks=hooks)
        gen, cmd = start(Pipeline("p").step("a", fn_a), run)
        assert type(cmd) is StartHooks
        assert cmd.event.step_name == "a"
        assert type(gen.send(None)) is Call

    def test_durable_runs_persist_each_step(self):
        """With a persister, a completed step is a Persist of the top-level keys it changed."""
        run = new_run()
        run.persister = persister = object()
        gen, _ = start(Pipeline("p").step("a", fn_a), run)
        assert gen.send({"a": 1}) == Persist(persister, "a", ("a",), ())
        assert finish(gen) == DONE


class TestRetries:
    def test_a_failed_attempt_sleeps_then_calls_again(self):
        """retries=2: an exception thrown in is followed by Sleep(delay) and another Call."""
        run = new_run()
        gen, cmd = start(Pipeline("p").step("a", fn_a, retries=2, retry_delay=0.5), run)
        assert type(cmd) is Call
        assert gen.throw(ConnectionError("down")) == Sleep(0.5)
        assert type(gen.send(None)) is Call
        assert finish(gen, {"a": 1}) == DONE
        assert run.records[0][3] == 2  # attempts

    def test_retry_on_decides(self):
        """An exception that retry_on does not match fails at once: no Sleep."""
        run = new_run()
        gen, _ = start(Pipeline("p").step("a", fn_a, retries=3, retry_on=ConnectionError), run)
        with pytest.raises(StepFailedError) as info:
            gen.throw(KeyError("k"))
        assert info.value.attempts == 1

    def test_non_retryable_error_fails_at_once(self):
        """NonRetryableError is never retried, even when retry_on matches it."""
        run = new_run(error_hooks=(lambda name, exc: None,))
        gen, _ = start(Pipeline("p").step("a", fn_a, retries=3, retry_on=Exception), run)
        hooks = gen.throw(NonRetryableError("card declined"))
        assert type(hooks) is ErrorHooks
        assert hooks.step_name == "a"
        with pytest.raises(StepFailedError) as info:
            gen.send(None)
        assert info.value.attempts == 1

    def test_timeout_asks_for_a_timed_call(self):
        """timeout= turns the Call into CallTimeout(fn, view, seconds, path)."""
        run = new_run()
        gen, cmd = start(Pipeline("p").step("a", fn_a, timeout=2.5), run)
        assert cmd == CallTimeout(fn_a, run.root.view, 2.5, "a")
        assert finish(gen, {"a": 1}) == DONE


class TestParallel:
    def test_items_are_generators_and_merge_in_order(self):
        """A parallel step yields Parallel(gens); outcomes sent back are merged in order."""
        run = new_run({"x": 0})
        gen, cmd = start(Pipeline("p").step("par", fn_a, fn_b), run)
        assert type(cmd) is Parallel
        outcomes = []
        for item, out in zip(cmd.gens, ({"a": 1, "same": "a"}, {"b": 2, "same": "b"}), strict=True):
            call = item.send(None)
            assert type(call) is Call
            assert call.arg == {"x": 0}  # every item sees the context before the step
            outcomes.append((True, finish(item, out)))
        assert finish(gen, outcomes) == DONE
        assert run.ctx == {"x": 0, "a": 1, "b": 2, "same": "b"}
        assert [r[0] for r in run.records] == ["par/fn_a", "par/fn_b", "par"]

    def test_a_failed_item_fails_the_step_under_all(self):
        """A failed item (an exception sent back as an outcome) fails the step under 'all'."""
        run = new_run()
        gen, cmd = start(Pipeline("p").step("par", fn_a, fn_b), run)
        first, second = cmd.gens
        first.send(None)
        ok = (True, finish(first, {"a": 1}))
        second.send(None)
        with pytest.raises(Exception, match="bad item") as failure:  # the internal StepFailure
            second.throw(ValueError("bad item"))
        with pytest.raises(StepFailedError) as info:
            gen.send([ok, (False, failure.value)])
        assert info.value.step_name == "par/fn_b"
        assert ("par/fn_b", "failed") in [r[:2] for r in run.records]


class TestResume:
    def test_done_position_starts_after_the_step(self):
        """Resuming at Done('a') asks first for step b."""
        run = new_run()
        gen, cmd = start(Pipeline("p").step("a", fn_a).step("b", fn_b), run, Done("a"))
        assert cmd.fn is fn_b
        assert finish(gen, {"b": 2}) == DONE

    def test_inside_parallel_only_unfinished_items_run(self):
        """InParallel with one ItemDone: only the other item is a generator; both merge."""
        run = new_run()
        resume = InParallel("par", (ItemDone({"a": 1}), None))
        gen, cmd = start(Pipeline("p").step("par", fn_a, fn_b), run, resume)
        assert len(cmd.gens) == 1
        (item,) = cmd.gens
        assert item.send(None).fn is fn_b
        assert finish(gen, [(True, finish(item, {"b": 2}))]) == DONE
        assert run.ctx == {"a": 1, "b": 2}


TREES = [
    None,
    {"done": "a"},
    {"at": "nest", "in": {"done": "i1"}},
    {"at": "nest", "in": None, "set": {"k": 1}, "del": ["gone"]},
    {"at": "route", "case": "odd", "in": {"done": "o1"}},
    {
        "at": "par",
        "items": [{"out": {"a": 1}, "del": []}, None, {"in": None, "set": {}, "del": []}],
    },
]


class TestPosition:
    @pytest.mark.parametrize("tree", TREES, ids=repr)
    def test_the_json_tree_round_trips_unchanged(self, tree):
        """Reading then writing a stored position gives back the same tree, key order included."""
        back = to_tree(from_tree(tree))
        assert back == tree
        assert list(back or ()) == list(tree or ())

    def test_typed_values(self):
        """The tree reads as small typed values."""
        assert from_tree(TREES[3]) == InNested("nest", None, Writes({"k": 1}, ("gone",)))
        assert from_tree(TREES[4]) == InCase("route", "odd", Done("o1"))
        assert from_tree(TREES[5]) == InParallel(
            "par", (ItemDone({"a": 1}), None, ItemRunning(None, Writes({})))
        )

    @pytest.mark.parametrize(
        "tree",
        ["a", {"done": 5}, {"in": None}, {"at": "n", "in": "x"}, {"at": "p", "items": ["x"]}],
        ids=repr,
    )
    def test_malformed_trees_are_invalid(self, tree):
        """Malformed positions raise InvalidCheckpointError."""
        with pytest.raises(InvalidCheckpointError):
            from_tree(tree)

    def test_rename(self):
        """renamed= rewrites step and case names at any depth, keeping the rest."""
        pos = InCase("route", "odd", InNested("nest", Done("old")))
        renamed = {  # old full path -> new full path
            "route": "way",
            "route/odd": "way/uneven",
            "route/odd/nest/old": "way/uneven/nest/new",
        }
        assert rename_position(pos, renamed) == InCase(
            "way", "uneven", InNested("nest", Done("new"))
        )

    def test_rename_to_another_parent_is_refused(self):
        """renamed= cannot move a step to another parent."""
        with pytest.raises(CheckpointMismatchError, match="another parent"):
            rename_position(InNested("nest", Done("x")), {"nest/x": "x"})

    def test_check_names_the_vanished_path_and_lists_the_steps(self):
        """A position whose step is gone is a mismatch naming it and listing the steps."""
        pipeline = Pipeline("p").step("a", fn_a).step("nest", Pipeline("i").step("i1", fn_b))
        with pytest.raises(CheckpointMismatchError) as info:
            check_position(pipeline, InNested("nest", Done("gone")))
        assert "'nest/gone'" in str(info.value)
        assert "a, nest/i1, nest" in str(info.value)
