"""Resuming is equivalent to not having stopped (SPEC §2.5), for random pipelines.

Pipelines come from ``pipeline_strategies``: nested pipelines, branches,
parallel steps, transforms and ``when=`` predicates, up to three levels deep,
with pure step functions whose calls are counted.

For every step event of an uninterrupted run, a run stopped at that event and
resumed must end with the same context, and between them emit every event of
the uninterrupted run with the same context. Resuming from ``result.checkpoint``
(taken when the stopped run has settled) is exact: no event twice, every step
function called as often as in one run. Resuming from the stop event's own
checkpoint is exact too, except for parallel siblings still running when the
handler read it (``run()`` drives parallel items in threads): those are not in
that checkpoint and run again.

Parallel items run concurrently, so the order of events is only checked where
it is forced: inner steps before their container, and the steps of one level
(of one parallel item) in order.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pipeline_strategies import (
    BIG,
    BranchNode,
    Compiled,
    Fn,
    NestNode,
    ParNode,
    PipeSpec,
    StepNode,
    Transform,
    TransformNode,
    inputs,
    pipe_specs,
)

from stepkit import Pipeline, StepFailedError

FIXTURE_OK = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
)

Event = tuple[str, dict[str, Any]]


class Tape:
    """An on_step_complete handler: records (step name, context copy) of every event.

    With ``stop_at=name`` it stops the run at that step, keeping the event's
    checkpoint and (if ``compiled`` is given) the call counts at that moment;
    with ``keep_last=True`` it keeps the checkpoint of the latest event.
    """

    def __init__(
        self,
        stop_at: str | None = None,
        compiled: Compiled | None = None,
        keep_last: bool = False,
    ) -> None:
        self.events: list[Event] = []
        self.stop_at = stop_at
        self.compiled = compiled
        self.keep_last = keep_last
        self.checkpoint: str | None = None
        self.calls_at_stop: Counter[str] | None = None

    def __call__(self, event: Any) -> None:
        self.events.append((event.step_name, dict(event.context)))
        if self.keep_last or event.step_name == self.stop_at:
            self.checkpoint = event.checkpoint
        if event.step_name == self.stop_at:
            event.stop_pipeline()
            if self.compiled is not None:
                self.calls_at_stop = self.compiled.calls_now()

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.events]


class Reference:
    """The uninterrupted run of a spec: final context, events, call counts."""

    def __init__(self, runner: Any, spec: PipeSpec, inp: Mapping[str, Any]) -> None:
        self.compiled = Compiled(spec)
        tape = Tape(keep_last=True)
        result = runner.run(self.compiled.pipeline, inp, on_step_complete=tape)
        assert result.status == "completed"
        assert result.stopped_at is None
        self.final = dict(result)
        self.events = tape.events
        self.names = tape.names
        self.contexts = dict(tape.events)
        assert len(self.contexts) == len(self.events), "step paths are unique"
        self.last_checkpoint = tape.checkpoint
        self.calls = Counter(self.compiled.calls)

    def forced(self, a: str, b: str) -> bool:
        """Whether step ``a``, which came before ``b`` here, must come before it in any run."""
        sa, sb = a.split("/"), b.split("/")
        if sa[: len(sb)] == sb:
            return True  # b is a container of a
        i = 0
        while i < min(len(sa), len(sb)) and sa[i] == sb[i]:
            i += 1
        if i < len(sa) and i < len(sb) and i > 0:
            members = self.compiled.par_items.get(sa[i - 1])
            if members is not None and members[sa[i]] != members[sb[i]]:
                return False  # in different items of one parallel step
        return True

    def check_events(self, *runs: list[Event], exact: bool = True) -> None:
        """Check the events of consecutive runs against this run's events.

        Each event has the reference's context, the runs emit every reference
        event between them, each run keeps the forced order; ``exact``: no
        event is emitted twice.
        """
        seen: list[str] = []
        for events in runs:
            for name, context in events:
                assert name in self.contexts, f"unexpected event {name}"
                assert context == self.contexts[name], f"context of {name}"
            names = [name for name, _ in events]
            assert len(set(names)) == len(names), "an event twice in one run"
            self._check_order(names)
            seen += names
        assert set(seen) == set(self.names), "events lost"
        if exact:
            assert len(seen) == len(self.names), "events emitted twice"
            self._check_order(seen)

    def _check_order(self, names: list[str]) -> None:
        where = {name: i for i, name in enumerate(names)}
        present = [name for name in self.names if name in where]
        for i, a in enumerate(present):
            for b in present[i + 1 :]:
                if self.forced(a, b):
                    assert where[a] < where[b], f"{a} must come before {b}: {names}"


def _stop_at(runner: Any, spec: PipeSpec, inp: Mapping[str, Any], name: str):
    """Run ``spec``, stopping at step ``name``; return (compiled, tape, result)."""
    compiled = Compiled(spec)
    tape = Tape(stop_at=name, compiled=compiled)
    result = runner.run(compiled.pipeline, inp, on_step_complete=tape)
    assert result.status == "stopped"
    assert result.stopped_at == name
    assert tape.checkpoint is not None
    return compiled, tape, result


def _resume(runner: Any, spec: PipeSpec, checkpoint: str, stop_at: str | None = None):
    """Resume in a freshly built pipeline, as another process would: (compiled, tape, result)."""
    compiled = Compiled(spec)
    tape = Tape(stop_at=stop_at, compiled=compiled)
    result = runner.resume(compiled.pipeline, checkpoint, on_step_complete=tape)
    return compiled, tape, result


def _check_every_position(runner: Any, spec: PipeSpec, inp: Mapping[str, Any]) -> None:
    ref = Reference(runner, spec, inp)
    for name in ref.names:
        stopped, tape, result = _stop_at(runner, spec, inp, name)
        at_stop = tape.calls_at_stop
        assert at_stop is not None

        # 1. from result.checkpoint: the state once the stopped run has settled
        again, resumed, final = _resume(runner, spec, result.checkpoint)
        assert final.status == "completed"
        assert final.stopped_at is None
        assert dict(final) == ref.final, f"stopped at {name}"
        ref.check_events(tape.events, resumed.events)
        assert stopped.calls + again.calls == ref.calls, f"stopped at {name}"

        # 2. from the stop event's checkpoint: the state when the handler ran
        again, resumed, final = _resume(runner, spec, tape.checkpoint)
        assert final.status == "completed"
        assert dict(final) == ref.final, f"stopped at {name}"
        before = tape.events[: tape.names.index(name) + 1]
        exact = runner.mode == "async"  # one thread: nothing was running but the handler
        ref.check_events(before, resumed.events, exact=exact)
        for fn in ref.calls:
            # the steps not done at the stop run again, no more, no less
            assert ref.calls[fn] - at_stop[fn] <= again.calls[fn] <= ref.calls[fn], fn
            if exact:
                assert again.calls[fn] == ref.calls[fn] - at_stop[fn], fn


# -- properties --------------------------------------------------------------


@FIXTURE_OK
@given(spec=pipe_specs(min_nodes=2), inp=inputs)
def test_stop_at_every_event_then_resume_equals_uninterrupted_run(runner, spec, inp):
    """Stopping at any event and resuming gives the remaining events, final context, calls."""
    _check_every_position(runner, spec, inp)


@FIXTURE_OK
@given(spec=pipe_specs(min_nodes=2), inp=inputs, data=st.data())
def test_stopping_twice_then_resuming_equals_uninterrupted_run(runner, spec, inp, data):
    """Stop, resume and stop later, resume again: same events, context and calls as one run."""
    ref = Reference(runner, spec, inp)
    assume(len(ref.names) >= 2)
    k = data.draw(st.integers(0, len(ref.names) - 2), label="first stop")
    j = data.draw(st.integers(k + 1, len(ref.names) - 1), label="second stop")
    first, tape1, result = _stop_at(runner, spec, inp, ref.names[k])
    second, tape2, result = _resume(runner, spec, result.checkpoint, stop_at=ref.names[j])
    if ref.names[j] in tape1.names:  # (ran alongside the first stop, in another thread)
        assert result.status == "completed"
        third, tape3 = Compiled(spec), Tape()
    else:
        assert result.status == "stopped"
        assert result.stopped_at == ref.names[j]
        third, tape3, result = _resume(runner, spec, result.checkpoint)
    assert result.status == "completed"
    assert dict(result) == ref.final
    ref.check_events(tape1.events, tape2.events, tape3.events)
    assert first.calls + second.calls + third.calls == ref.calls


@FIXTURE_OK
@given(spec=pipe_specs(min_nodes=2), inp=inputs, override=inputs)
def test_checkpoint_of_last_event_resumes_at_once(runner, spec, inp, override):
    """The last event's checkpoint resumes to the final context (plus override), no steps run."""
    ref = Reference(runner, spec, inp)
    assume(ref.events)
    compiled = Compiled(spec)
    tape = Tape()
    result = runner.resume(compiled.pipeline, ref.last_checkpoint, on_step_complete=tape)
    assert result.status == "completed"
    assert dict(result) == ref.final
    assert tape.events == []
    assert not +compiled.calls
    if ref.names[-1] == compiled.pipeline.describe()[-1]:
        # (otherwise later steps were skipped by when=, which sees the override)
        result = runner.resume(compiled.pipeline, ref.last_checkpoint, override)
        assert dict(result) == {**ref.final, **override}
        assert not +compiled.calls


@FIXTURE_OK
@given(spec=pipe_specs(min_nodes=2), inp=inputs, data=st.data())
def test_resume_after_failure_equals_uninterrupted_run(runner, spec, inp, data):
    """A step failing once: resuming from StepFailedError.checkpoint gives the same result."""
    ref = Reference(runner, spec, inp)
    ran = [name for name in ref.compiled.fn_names if ref.calls[name]]
    assume(ran)
    failing = data.draw(st.sampled_from(ran), label="failing step")
    compiled = Compiled(spec, fail_once=failing)
    before = Tape()
    with pytest.raises(StepFailedError) as info:
        runner.run(compiled.pipeline, inp, on_step_complete=before)
    err = info.value
    assert err.step_name.rsplit("/", 1)[-1] == failing
    assert isinstance(err.__cause__, RuntimeError)
    assert not any(name.rsplit("/", 1)[-1] == failing for name in before.names)
    after = Tape()
    result = runner.resume(compiled.pipeline, err.checkpoint, on_step_complete=after)
    assert result.status == "completed"
    assert dict(result) == ref.final
    ref.check_events(before.events, after.events)
    assert compiled.calls == ref.calls + Counter({failing: 1})


# -- a fixed pipeline with every construct -------------------------------------


def _set(*dst: str, src: tuple[str, ...] = (), mul: int = 1, add: int = 1) -> Fn:
    return Fn("set", dst, src, mul, add)


EVERYTHING = PipeSpec(
    (
        StepNode(_set("a", add=3)),
        StepNode(Fn("none")),
        StepNode(_set("b"), when=("a", 0)),  # a == 3: skipped
        NestNode(
            PipeSpec(
                (
                    StepNode(_set("c", src=("a",), mul=2)),
                    TransformNode(Transform("rename", "c", "d")),
                    StepNode(Fn("copy", ("b",), ("d",))),
                )
            )
        ),
        BranchNode(
            "a",  # a == 3 -> choices[3 % 4] == "unknown-key" -> default
            cases=(_set("x"), PipeSpec((StepNode(_set("y")),))),
            default=PipeSpec(
                (
                    StepNode(_set("e", src=("b",))),
                    ParNode((_set("f"), PipeSpec((StepNode(_set("g")), StepNode(_set("h")))))),
                )
            ),
            nones=1,
        ),
        ParNode(
            (
                PipeSpec((StepNode(_set("p", src=("a",))), TransformNode(Transform("drop", "e")))),
                _set("q", src=("p",)),
                PipeSpec(
                    (
                        BranchNode("a", cases=(PipeSpec((StepNode(_set("r")),)), _set("s"))),
                        NestNode(PipeSpec((StepNode(_set("t")),))),
                    )
                ),
            )
        ),
        TransformNode(Transform("keep")),
        StepNode(_set("z", src=("a", "b", "p", "t"))),
    )
)


def test_every_construct_stop_anywhere_and_resume(runner):
    """A hand-written pipeline with every construct resumes equivalently from every event."""
    ref = Reference(runner, EVERYTHING, {})
    # the construct under each kind of position is really there
    for name in ("s4/s7", "s9/default/s15/s19", "s20/s23", "s20/s26/c1/s29", "s20/s30/s32"):
        assert name in ref.names
    # parallel function items are steps of their own, with their own events
    assert {"s9/default/s15/s16", "s20/s24"} <= set(ref.names)
    assert "s3" not in ref.names  # when= false
    assert len(ref.names) == 22
    small = {
        "a": 3,
        "b": 7,
        "d": 7,
        "f": 1,
        "g": 1,
        "h": 1,
        "p": 4,
        "q": 1,
        "s": 1,
        "t": 1,
        "z": 16,
    }
    assert ref.final == {key: BIG + value for key, value in small.items()}
    _check_every_position(runner, EVERYTHING, {})


# -- failures inside parallel steps ---------------------------------------------


class Parallel:
    """``prep``, then ``par`` with items in ``order`` (A: nested a1, a2; B: nested b1; f), ``end``.

    ``failing`` raises on its first call. ``wait={"a2": "par/b1"}`` makes a2
    wait (in its thread, under run()) for the event of par/b1,
    ``wait={"b1": "called:a2"}`` makes b1 wait until a2 was called (and has
    failed). Under arun() items run one after the other, in order, so the
    order of ``order`` must agree. Nothing sleeps: items wait on events.
    """

    FINAL: ClassVar[dict[str, int]] = {"prep": 0, "a1": 1, "a2": 2, "b1": 3, "f": 4, "end": 5}

    def __init__(self, failing: str, order: str, wait: Mapping[str, str] | None = None) -> None:
        self.calls: Counter[str] = Counter()
        self.signals: defaultdict[str, threading.Event] = defaultdict(threading.Event)
        self.failing, self.wait = failing, dict(wait or {})
        nested_a = Pipeline("A").step("a1", self._fn("a1")).step("a2", self._fn("a2"))
        items = {"A": nested_a, "B": Pipeline("B").step("b1", self._fn("b1")), "f": self._fn("f")}
        self.pipeline = (
            Pipeline("par-fail")
            .step("prep", self._fn("prep"))
            .step("par", *(items[i] for i in order))
            .step("end", self._fn("end"))
        )
        ran = {"prep", "end"} | ({"a1", "a2"} if "A" in order else set())
        ran |= ({"b1"} if "B" in order else set()) | ({"f"} if "f" in order else set())
        self.final = {k: v for k, v in self.FINAL.items() if k in ran}

    def _fn(self, name: str):
        def step(ctx: Mapping[str, Any]) -> dict[str, Any]:
            if name in self.wait:
                assert self.signals[self.wait[name]].wait(5), f"{name} waited in vain"
            self.calls[name] += 1
            try:
                if name == self.failing and self.calls[name] == 1:
                    raise RuntimeError(f"{name} fails once")
                return {name: self.FINAL[name]}
            finally:
                self.signals[f"called:{name}"].set()

        step.__name__ = name
        return step

    def _event(self, event: Any) -> None:
        self.signals[event.step_name].set()

    def fail_then_resume(self, runner: Any) -> dict[str, Any]:
        with pytest.raises(StepFailedError) as info:
            runner.run(self.pipeline, {}, on_step_complete=self._event)
        assert info.value.step_name.endswith(self.failing)
        result = runner.resume(self.pipeline, info.value.checkpoint)
        assert result.status == "completed"
        return dict(result)


@pytest.mark.parametrize("order", ["BfA", "AfB", "fAB", "Bf"])
def test_failed_function_item_resume_does_not_rerun_completed_siblings(runner, order):
    """A parallel function item failing once: resume completes, no nested sibling re-runs."""
    case = Parallel("f", order)
    assert case.fail_then_resume(runner) == case.final
    assert case.calls == Counter(dict.fromkeys(case.final, 1)) + Counter(f=1)


@pytest.mark.parametrize("order", ["BA", "BfA", "fBA"])
def test_failure_in_nested_item_does_not_rerun_sibling_that_finished_first(runner, order):
    """A nested item failing at its 2nd step: resume skips finished siblings and its 1st step."""
    case = Parallel("a2", order, wait={"a2": "par/b1"})
    assert case.fail_then_resume(runner) == case.final
    assert case.calls == Counter(dict.fromkeys(case.final, 1)) + Counter(a2=1)


@pytest.mark.parametrize("order", ["AB", "AfB"])
def test_failure_in_nested_item_does_not_rerun_sibling_that_finished_later(runner, order):
    """A nested item failing: a sibling that finished after the failure does not re-run."""
    case = Parallel("a2", order, wait={"b1": "called:a2"})
    assert case.fail_then_resume(runner) == case.final
    assert case.calls == Counter(dict.fromkeys(case.final, 1)) + Counter(a2=1)


# -- value identity ---------------------------------------------------------------


def test_parallel_item_output_does_not_depend_on_object_identity(runner):
    """A nested item setting a key to the value it already has merges the same way after resume."""
    inner = Pipeline("inner").step("x", lambda ctx: {"a": ctx["b"]})
    pipeline = (
        Pipeline("identity")
        .step("s0", lambda ctx: {"b": "hel" + "lo" * ctx["n"]})
        .step("s1", lambda ctx: {"a": ctx["b"]})
        .step("par", lambda ctx: {"a": "other"}, inner)
    )
    final = dict(runner.run(pipeline, {"n": 1}))
    tape = Tape(stop_at="s1")
    runner.run(pipeline, {"n": 1}, on_step_complete=tape)
    assert dict(runner.resume(pipeline, tape.checkpoint)) == final


def test_parallel_step_inside_a_parallel_item_keeps_its_output(runner):
    """A parallel step nested in a parallel item: its merged output is the item's output too."""
    inner = (
        Pipeline("inner")
        .step("split", lambda ctx: {"a": 2}, lambda ctx: {"b": 2})
        .step("copy", lambda ctx: {"c": ctx["a"]})
    )
    pipeline = Pipeline("par-in-par").step("par", lambda ctx: {"a": 1}, inner)
    expected = {"a": 2, "b": 2, "c": 2}  # the item that comes later wins
    tape = Tape()
    assert dict(runner.run(pipeline, {}, on_step_complete=tape)) == expected
    # function items are steps too; items' events may interleave under run()'s threads
    assert sorted(tape.names) == sorted(
        ["par/item-1", "par/split/item-1", "par/split/item-2", "par/split", "par/copy", "par"]
    )
    assert tape.names[-1] == "par"
    for name in tape.names:
        stopped = Tape(stop_at=name)
        result = runner.run(pipeline, {}, on_step_complete=stopped)
        assert dict(runner.resume(pipeline, stopped.checkpoint)) == expected, name
        assert dict(runner.resume(pipeline, result.checkpoint)) == expected, name
