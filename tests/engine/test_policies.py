"""Step policies: retries, timeouts, error modes, merge rules, parallel modes, cancellation.

Every pipeline test runs through run() and arun(); sleeping is faked, so no
test waits for a retry delay.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from support import Recorder

from stepkit import (
    Pipeline,
    PipelineAbortedError,
    StepFailedError,
    StepTimeoutError,
    decode_checkpoint,
    exponential_backoff,
)
from stepkit.engine._threads import PARALLEL_THREADS
from stepkit.errors import NonRetryableError
from stepkit.testing import FakeSleep


def failing(times: int, exc: type[Exception] = ConnectionError, out=None):
    """A step that raises ``exc`` on its first ``times`` calls, then returns ``out``."""
    calls = []

    def step(ctx):
        calls.append(1)
        if len(calls) <= times:
            raise exc(f"failure {len(calls)}")
        return out if out is not None else {"ok": len(calls)}

    step.calls = calls  # type: ignore[attr-defined]
    return step


class TestRetries:
    def test_retries_until_success(self, runner):
        """retries=N allows N+1 attempts; the record counts them."""
        step = failing(2)
        sleep = FakeSleep()
        result = runner.run(Pipeline("p").step("s", step, retries=2, retry_delay=0.5), sleep=sleep)
        assert result == {"ok": 3}
        assert result.steps[0].attempts == 3
        assert sleep.delays == [0.5, 0.5]

    def test_last_error_is_chained_under_step_failed(self, runner):
        """After the last attempt the original exception is the cause, with attempts."""
        step = failing(5)
        with pytest.raises(StepFailedError) as info:
            runner.run(Pipeline("p").step("s", step, retries=2), sleep=FakeSleep())
        assert info.value.attempts == 3
        assert isinstance(info.value.__cause__, ConnectionError)
        assert str(info.value.__cause__) == "failure 3"
        assert len(step.calls) == 3

    def test_retry_on_stops_early(self, runner):
        """retry_on limits which exceptions are retried."""
        step = failing(5, exc=KeyError)
        with pytest.raises(StepFailedError) as info:
            runner.run(
                Pipeline("p").step("s", step, retries=3, retry_on=ConnectionError),
                sleep=FakeSleep(),
            )
        assert info.value.attempts == 1
        assert len(step.calls) == 1

    @pytest.mark.parametrize(
        "retry_on", [None, NonRetryableError, Exception, lambda exc: True], ids=repr
    )
    def test_non_retryable_error_stops_at_once(self, runner, retry_on):
        """NonRetryableError fails the step on its first attempt, even when retry_on matches it."""
        step = failing(5, exc=NonRetryableError)
        options = {} if retry_on is None else {"retry_on": retry_on}
        sleep = FakeSleep()
        with pytest.raises(StepFailedError) as info:
            runner.run(Pipeline("p").step("s", step, retries=3, **options), sleep=sleep)
        assert info.value.attempts == 1
        assert isinstance(info.value.__cause__, NonRetryableError)
        assert len(step.calls) == 1
        assert sleep.delays == []

    def test_retry_on_predicate(self, runner):
        """retry_on may be a predicate of the exception."""
        step = failing(2, exc=ValueError)
        result = runner.run(
            Pipeline("p").step("s", step, retries=3, retry_on=lambda e: "failure" in str(e)),
            sleep=FakeSleep(),
        )
        assert result.steps[0].attempts == 3

    def test_delay_callable_gets_attempt_and_exception(self, runner):
        """retry_delay(attempt, exc) is called with (1, e1), (2, e2), ..."""
        seen = []

        def delay(attempt, exc):
            seen.append((attempt, str(exc)))
            return attempt * 10

        sleep = FakeSleep()
        runner.run(Pipeline("p").step("s", failing(3), retries=3, retry_delay=delay), sleep=sleep)
        assert seen == [(1, "failure 1"), (2, "failure 2"), (3, "failure 3")]
        assert sleep.delays == [10, 20, 30]

    def test_async_sleep_is_awaited(self, runner):
        """An async fake sleep works with both drivers."""
        delays = []

        async def sleep(seconds):
            delays.append(seconds)

        runner.run(Pipeline("p").step("s", failing(1), retries=1, retry_delay=2), sleep=sleep)
        assert delays == [2]

    def test_pipeline_defaults_and_step_override(self, runner):
        """Pipeline-level retries apply to every step unless a step sets its own."""
        a, b = failing(1), failing(1)
        p = Pipeline("p", retries=1).step("a", a).step("b", b, retries=0)
        with pytest.raises(StepFailedError) as info:
            runner.run(p, sleep=FakeSleep())
        assert info.value.step_name == "b"
        assert len(a.calls) == 2

    def test_on_error_hook_called_once_per_failed_step(self, runner):
        """Error hooks fire once per failed step, not per attempt."""
        seen = []
        with pytest.raises(StepFailedError):
            runner.run(
                Pipeline("p").step("s", failing(9), retries=3),
                sleep=FakeSleep(),
                on_error=lambda name, exc: seen.append((name, str(exc))),
            )
        assert seen == [("s", "failure 4")]

    def test_resume_after_a_retried_step(self, runner):
        """A checkpoint taken after a retried step resumes normally."""
        rec = Recorder()
        p = Pipeline("p").step("s", failing(1), retries=1).step("t", lambda ctx: {"t": 1})
        runner.run(p, sleep=FakeSleep(), on_step_complete=rec)
        assert runner.resume(p, rec.checkpoints["s"]) == {"ok": 2, "t": 1}

    def test_retries_log_each_retry(self, runner, caplog):
        """Each retry is logged on the 'stepkit' logger."""
        with caplog.at_level(logging.INFO, logger="stepkit"):
            runner.run(Pipeline("p").step("s", failing(2), retries=2), sleep=FakeSleep())
        retries = [r for r in caplog.records if "retrying" in r.getMessage()]
        assert len(retries) == 2


def test_exponential_backoff_without_jitter():
    """The bound doubles per attempt and is capped."""
    delay = exponential_backoff(base=1, factor=2, max_delay=5, jitter=False)
    assert [delay(n, Exception()) for n in (1, 2, 3, 4, 100, 10_000)] == [1, 2, 4, 5, 5, 5]


def test_exponential_backoff_with_jitter_stays_in_bounds():
    """Full jitter draws from [0, bound]."""
    delay = exponential_backoff(base=1, factor=2, max_delay=5)
    assert all(0 <= delay(n, Exception()) <= min(5, 2 ** (n - 1)) for n in range(1, 20))


class TestTimeouts:
    def test_slow_async_step_is_cancelled(self, runner):
        """An async step past its timeout is cancelled, and the cancellation awaited."""
        state = {"cancelled": False}

        async def slow(ctx):
            try:
                await asyncio.Event().wait()  # never set
            except asyncio.CancelledError:
                state["cancelled"] = True
                raise

        with pytest.raises(StepFailedError) as info:
            runner.run(Pipeline("p").step("slow", slow, timeout=0.05))
        assert isinstance(info.value.__cause__, StepTimeoutError)
        assert state["cancelled"] is True

    def test_timed_out_step_succeeds_on_a_later_fast_attempt(self, runner):
        """A timeout is retryable: a later attempt that is fast succeeds."""
        calls = []
        release = threading.Event()

        async def sometimes_slow(ctx):
            calls.append(1)
            if len(calls) == 1:
                await asyncio.Event().wait()
            return {"done": len(calls)}

        result = runner.run(
            Pipeline("p").step("s", sometimes_slow, timeout=0.05, retries=1), sleep=FakeSleep()
        )
        assert result == {"done": 2}
        assert result.steps[0].attempts == 2
        release.set()

    def test_sync_step_timeout_abandons_the_thread(self, runner):
        """A sync step past its timeout fails the attempt; its thread finishes in the background."""
        release = threading.Event()
        finished = threading.Event()

        def blocking(ctx):
            release.wait(5)
            finished.set()
            return {"late": True}

        with pytest.raises(StepFailedError) as info:
            runner.run(Pipeline("p").step("block", blocking, timeout=0.05))
        assert isinstance(info.value.__cause__, StepTimeoutError)
        assert info.value.__cause__.step_name == "block"
        assert "late" not in info.value.context
        release.set()
        assert finished.wait(5)

    def test_hung_timed_steps_leave_the_default_executor_free(self):
        """Under arun(), a hung sync step with timeout= does not take the loop's own threads."""
        release = threading.Event()

        def hung(ctx):
            release.wait()
            return {}

        async def main():
            loop = asyncio.get_running_loop()
            loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
            try:
                with pytest.raises(StepFailedError) as info:
                    await Pipeline("p").step("hung", hung, timeout=0.01).arun()
                assert isinstance(info.value.__cause__, StepTimeoutError)
                # the application's own to_thread call still finds a free thread
                return await asyncio.wait_for(asyncio.to_thread(lambda: "free"), 10)
            finally:
                release.set()

        assert asyncio.run(main()) == "free"

    def test_step_raising_timeout_error_is_not_a_step_timeout(self, runner):
        """A TimeoutError raised by a timed step is its own failure, not the step's timeout."""

        def raises(ctx):
            raise TimeoutError("the API timed out")

        async def araises(ctx):
            raise TimeoutError("the API timed out")

        for fn in (raises, araises):
            with pytest.raises(StepFailedError) as info:
                runner.run(Pipeline("p").step("s", fn, timeout=30))
            cause = info.value.__cause__
            assert type(cause) is TimeoutError
            assert str(cause) == "the API timed out"

    def test_hung_timed_step_does_not_block_interpreter_exit(self, tmp_path):
        """The thread of an abandoned sync step never keeps the process alive at exit."""
        script = tmp_path / "hung.py"
        script.write_text(
            textwrap.dedent(
                """\
                import asyncio, threading
                from stepkit import Pipeline, StepFailedError

                never = threading.Event()
                p = Pipeline("p").step("hung", lambda ctx: never.wait(), timeout=0.01)
                for call in (p.run, lambda: asyncio.run(p.arun())):
                    try:
                        call()
                    except StepFailedError:
                        print("timed out")
                """
            )
        )
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["timed", "out", "timed", "out"]

    def test_timeout_error_is_a_timeout_error(self):
        """StepTimeoutError is also the built-in TimeoutError."""
        assert issubclass(StepTimeoutError, TimeoutError)


class TestErrorModes:
    def boom(self, ctx):
        raise RuntimeError("boom")

    def test_continue(self, runner):
        """on_error='continue': the step contributes nothing and the next step runs."""
        p = (
            Pipeline("p")
            .step("bad", self.boom, on_error="continue")
            .step("next", lambda ctx: {"next": True})
        )
        result = runner.run(p, {"a": 1})
        assert result == {"a": 1, "next": True}
        bad = result.steps[0]
        assert (bad.name, bad.status) == ("bad", "failed")
        assert isinstance(bad.error, RuntimeError)

    def test_skip_remaining_at_top_level(self, runner):
        """on_error='skip_remaining' ends the pipeline and returns what it has."""
        p = (
            Pipeline("p")
            .step("one", lambda ctx: {"one": 1})
            .step("bad", self.boom, on_error="skip_remaining")
            .step("never", lambda ctx: {"never": 1})
        )
        result = runner.run(p)
        assert result == {"one": 1}
        assert result.status == "completed"

    def test_skip_remaining_inside_nested_ends_only_that_pipeline(self, runner):
        """Inside a nested pipeline, skip_remaining ends only the nested pipeline."""
        inner = (
            Pipeline("inner")
            .step("bad", self.boom, on_error="skip_remaining")
            .step("skipped", lambda ctx: {"skipped": 1})
        )
        rec = Recorder()
        p = Pipeline("p").step("nest", inner).step("after", lambda ctx: {"after": 1})
        result = runner.run(p, on_step_complete=rec)
        assert result == {"after": 1}
        assert rec.names == ["nest", "after"]

    def test_continue_inside_nested(self, runner):
        """on_error='continue' in a nested step lets the nested pipeline go on."""
        inner = (
            Pipeline("inner")
            .step("bad", self.boom, on_error="continue")
            .step("next", lambda ctx: {"next": 1})
        )
        assert runner.run(Pipeline("p").step("nest", inner)) == {"next": 1}

    def test_container_error_mode_catches_inner_failure(self, runner):
        """A nested step's failure is the container's failure, under its own on_error."""
        inner = Pipeline("inner").step("ok", lambda ctx: {"ok": 1}).step("bad", self.boom)
        p = (
            Pipeline("p")
            .step("nest", inner, on_error="continue")
            .step("after", lambda ctx: {"after": 1})
        )
        result = runner.run(p)
        assert result == {"ok": 1, "after": 1}
        assert [(s.name, s.status) for s in result.steps] == [
            ("nest/ok", "completed"),
            ("nest/bad", "failed"),
            ("nest", "failed"),
            ("after", "completed"),
        ]

    def test_error_hooks_see_continued_failures(self, runner):
        """Error hooks are called for failures that the error mode lets pass."""
        seen = []
        runner.run(
            Pipeline("p").step("bad", self.boom, on_error="continue"),
            on_error=lambda name, exc: seen.append(name),
        )
        assert seen == ["bad"]


class TestMergeRules:
    @pytest.mark.parametrize(
        ("mode", "expected"),
        [("override", {"a": 2, "b": 3}), ("skip", {"a": 1, "b": 3}), ("warn", {"a": 2, "b": 3})],
    )
    def test_collision_with_input_keys(self, runner, mode, expected):
        """An output key that exists already follows the step's merge rule."""
        p = Pipeline("p").step("s", lambda ctx: {"a": 2, "b": 3}, merge=mode)
        assert runner.run(p, {"a": 1}) == expected

    def test_error_names_the_key(self, runner):
        """merge='error' fails the step, naming the key, and changes nothing."""
        p = Pipeline("p").step("s", lambda ctx: {"b": 3, "a": 2}, merge="error")
        with pytest.raises(StepFailedError, match="key 'a'") as info:
            runner.run(p, {"a": 1})
        assert info.value.context == {"a": 1}

    def test_warn_logs_a_warning(self, runner, caplog):
        """merge='warn' overrides and logs a warning per key."""
        with caplog.at_level(logging.WARNING, logger="stepkit"):
            runner.run(Pipeline("p").step("s", lambda ctx: {"a": 2}, merge="warn"), {"a": 1})
        assert any("overrides context key 'a'" in r.getMessage() for r in caplog.records)

    @pytest.mark.parametrize(
        ("mode", "expected"),
        [("override", {"x": "second"}), ("skip", {"x": "first"})],
    )
    def test_collisions_between_parallel_items(self, runner, mode, expected):
        """Parallel items: later items win under override; skip keeps the first."""
        p = Pipeline("p").step(
            "par", lambda ctx: {"x": "first"}, lambda ctx: {"x": "second"}, merge=mode
        )
        assert runner.run(p) == expected

    def test_error_between_parallel_items(self, runner):
        """merge='error' also fails when two parallel items return the same key."""
        p = Pipeline("p").step("par", lambda ctx: {"x": 1}, lambda ctx: {"x": 2}, merge="error")
        with pytest.raises(StepFailedError, match="key 'x'"):
            runner.run(p)


class TestMergeRulesOfContainers:
    """merge= on a nested pipeline or a branch applies to the keys its inner steps write."""

    def inner(self) -> Pipeline:
        return (
            Pipeline("inner")
            .step("one", lambda ctx: {"a": ctx["a"] + 10, "new": 1})
            .step("two", lambda ctx: {"new": ctx["new"] + 1, "seen": ctx["a"]})
        )

    @pytest.mark.parametrize(
        ("mode", "expected"),
        [
            ("override", {"a": 11, "new": 2, "seen": 11}),
            ("skip", {"a": 1, "new": 2, "seen": 11}),
            ("warn", {"a": 11, "new": 2, "seen": 11}),
        ],
    )
    def test_nested(self, runner, mode, expected):
        """Keys that existed before the container follow its rule; inner steps see their writes."""
        p = Pipeline("p").step("nest", self.inner(), merge=mode)
        assert runner.run(p, {"a": 1}) == expected

    def test_error_names_a_key_that_existed_before_the_container(self, runner):
        """merge='error' fails the container for a key from before it, not for its own keys."""
        p = Pipeline("p").step("nest", self.inner(), merge="error")
        with pytest.raises(StepFailedError, match="key 'a'") as info:
            runner.run(p, {"a": 1})
        assert info.value.step_name == "nest"
        assert info.value.context == {"a": 1}
        # "new" is written twice inside the container: not a collision
        fine = Pipeline("p").step(
            "nest",
            Pipeline("i").step("x", lambda ctx: {"n": 1}).step("y", lambda ctx: {"n": 2}),
            merge="error",
        )
        assert runner.run(fine, {"a": 1}) == {"a": 1, "n": 2}

    def test_warn_logs_the_key(self, runner, caplog):
        """merge='warn' on a container logs each key from before it that its steps override."""
        p = Pipeline("p").step("nest", self.inner(), merge="warn")
        with caplog.at_level(logging.WARNING, logger="stepkit"):
            runner.run(p, {"a": 1})
        messages = [r.getMessage() for r in caplog.records]
        assert any("nest" in m and "'a'" in m for m in messages)
        assert not any("'new'" in m for m in messages)

    def test_branch(self, runner):
        """A branch's merge= applies to the chosen case's writes."""
        p = Pipeline("p").branch(
            "route", on=lambda ctx: "go", cases={"go": self.inner()}, merge="skip"
        )
        assert runner.run(p, {"a": 1}) == {"a": 1, "new": 2, "seen": 11}

    @pytest.mark.parametrize("container", ["nest", "route"])
    def test_resuming_inside_keeps_the_rule(self, runner, container):
        """A checkpoint inside such a container resumes with its writes and its rule."""
        p = (
            Pipeline("p")
            .step("nest", self.inner(), merge="skip")
            .branch("route", on=lambda ctx: "go", cases={"go": self.inner()}, merge="skip")
            .step("after", lambda ctx: {"after": ctx["a"]})
        )
        whole = runner.run(p, {"a": 1})
        rec = Recorder(stop_at=f"{container}/one" if container == "nest" else "route/go/one")
        stopped = runner.run(p, {"a": 1}, on_step_complete=rec)
        assert stopped.status == "stopped"
        # the checkpoint's context is the one outside the container: "a" is still 1
        assert decode_checkpoint(stopped.checkpoint).context["a"] == 1
        assert (
            runner.resume(p, stopped.checkpoint)
            == whole
            == {
                "a": 1,
                "new": 2,
                "seen": 11,
                "after": 1,
            }
        )


class TestParallelModes:
    def test_all_fails_on_any_failure(self, runner):
        """parallel_mode='all': one failing item fails the step."""

        def bad(ctx):
            raise ValueError("bad item")

        p = Pipeline("p").step("par", lambda ctx: {"a": 1}, bad)
        with pytest.raises(StepFailedError) as info:
            runner.run(p)
        assert info.value.step_name == "par/bad"
        assert isinstance(info.value.__cause__, ValueError)

    def test_settled_merges_what_succeeded(self, runner, capsys):
        """parallel_mode='settled': successes merge; failures go to hooks and records."""
        seen = []

        def bad(ctx):
            raise ValueError("sync failure")

        async def abad(ctx):
            raise KeyError("async failure")

        p = Pipeline("p").step("par", lambda ctx: {"a": 1}, bad, abad, parallel_mode="settled")
        result = runner.run(p, on_error=lambda name, exc: seen.append(name))
        assert result == {"a": 1}
        assert sorted(seen) == ["par/abad", "par/bad"]
        failed = sorted(s.name for s in result.steps if s.status == "failed")
        assert failed == ["par/abad", "par/bad"]
        assert capsys.readouterr() == ("", "")

    def test_settled_with_every_item_failing(self, runner):
        """With every item failing, settled mode completes the step with no output."""

        def bad(ctx):
            raise ValueError("x")

        def worse(ctx):
            raise ValueError("y")

        p = (
            Pipeline("p")
            .step("par", bad, worse, parallel_mode="settled")
            .step("next", lambda ctx: {"next": 1})
        )
        assert runner.run(p, {"a": 0}) == {"a": 0, "next": 1}

    def test_failure_checkpoint_keeps_finished_items(self, runner):
        """After a parallel failure, resuming re-runs only the failed item."""
        calls = []
        fixed = {"ok": False}

        def good(ctx):
            calls.append("good")
            return {"good": 1}

        def flaky(ctx):
            calls.append("flaky")
            if not fixed["ok"]:
                raise ValueError("not yet")
            return {"flaky": 1}

        p = Pipeline("p").step("par", good, flaky)
        with pytest.raises(StepFailedError) as info:
            runner.run(p)
        fixed["ok"] = True
        calls.clear()
        assert runner.resume(p, info.value.checkpoint) == {"good": 1, "flaky": 1}
        assert calls == ["flaky"]

    def test_sync_items_run_concurrently_in_run(self):
        """In run(), sync parallel items run at the same time in threads."""
        barrier = threading.Barrier(3, timeout=5)

        def item(name):
            def fn(ctx):
                barrier.wait()  # only passes if all three run at once
                return {name: True}

            fn.__name__ = name
            return fn

        p = Pipeline("p").step("par", item("a"), item("b"), item("c"))
        assert p.run() == {"a": True, "b": True, "c": True}

    def test_many_sync_items_run_on_a_bounded_set_of_threads(self):
        """In run(), a parallel step of many sync items uses at most PARALLEL_THREADS threads."""
        items = 200
        first_wave = threading.Barrier(PARALLEL_THREADS, timeout=10)
        threads = set()

        def item(i):
            def fn(ctx):
                threads.add(threading.get_ident())
                if i < PARALLEL_THREADS:
                    first_wave.wait()  # passes only if that many items run at once
                return {f"k{i}": ctx["base"] + i}

            fn.__name__ = f"i{i}"
            return fn

        p = Pipeline("p").step("par", *(item(i) for i in range(items)))
        result = p.run({"base": 1})
        assert dict(result) == {"base": 1, **{f"k{i}": 1 + i for i in range(items)}}
        assert len(threads) == PARALLEL_THREADS

    def test_async_items_run_concurrently_in_arun(self):
        """In arun(), async parallel items run as concurrent tasks."""

        async def main():
            both = asyncio.Barrier(2) if hasattr(asyncio, "Barrier") else None
            arrived = []
            go = asyncio.Event()

            async def meet():
                if both is not None:
                    await asyncio.wait_for(both.wait(), 5)
                    return
                arrived.append(1)
                if len(arrived) == 2:
                    go.set()
                await asyncio.wait_for(go.wait(), 5)  # times out unless both run at once

            async def left(ctx):
                await meet()
                return {"left": True}

            async def right(ctx):
                await meet()
                return {"right": True}

            return await Pipeline("p").step("par", left, right).arun()

        assert asyncio.run(main()) == {"left": True, "right": True}


class TestCancellation:
    def test_cancelling_arun_cancels_the_step_and_keeps_the_last_checkpoint(self):
        """Cancelling arun() cancels the running step; the last checkpoint still resumes."""
        saved = {}
        state = {"cancelled": False}
        entered = None

        async def slow(ctx):
            entered.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                state["cancelled"] = True
                raise

        def keep(event):
            saved["last"] = event.checkpoint

        p = Pipeline("p").step("one", lambda ctx: {"one": 1}).step("slow", slow)

        async def main():
            nonlocal entered
            entered = asyncio.Event()
            task = asyncio.ensure_future(p.arun(on_step_complete=keep))
            await entered.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        assert state["cancelled"]
        cp = decode_checkpoint(saved["last"])
        assert cp.step_name == "one"
        assert cp.context == {"one": 1}

    def test_abort_between_steps_in_both_drivers(self, runner):
        """abort= is checked between steps and raises with the last checkpoint."""
        abort = threading.Event()
        abort.set()
        with pytest.raises(PipelineAbortedError) as info:
            runner.run(Pipeline("p").step("s", lambda ctx: {"s": 1}), {"a": 1}, abort=abort)
        assert decode_checkpoint(info.value.checkpoint).context == {"a": 1}
