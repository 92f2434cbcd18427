"""stepkit.testing: the helpers offered to users' own tests."""

from __future__ import annotations

import doctest

import pytest

import stepkit.testing
from stepkit import Pipeline
from stepkit.testing import EventRecorder, FakeClock, FakeSleep


def test_doctest():
    """The module's example runs."""
    assert doctest.testmod(stepkit.testing).failed == 0


def test_recorder_keeps_copies_and_checkpoints(runner):
    """EventRecorder keeps copied contexts and checkpoints that resume."""
    recorder = EventRecorder()
    p = Pipeline("p").step("a", lambda c: {"n": 1}).step("b", lambda c: {"n": c["n"] + 1})
    runner.run(p, on_step_complete=recorder)
    assert [e.context for e in recorder.events] == [{"n": 1}, {"n": 2}]
    assert runner.resume(p, recorder.checkpoint("a")) == {"n": 2}
    with pytest.raises(KeyError, match="no recorded checkpoint"):
        recorder.checkpoint("zzz")


def test_fake_sleep_advances_a_fake_clock(runner):
    """FakeSleep records delays and can move a FakeClock."""
    clock = FakeClock(100)
    sleep = FakeSleep(clock)
    calls = []

    def flaky(ctx):
        calls.append(1)
        if len(calls) < 3:
            raise ValueError("again")

    runner.run(Pipeline("p").step("s", flaky, retries=2, retry_delay=5), sleep=sleep)
    assert sleep.delays == [5, 5]
    assert clock() == 110
