"""Durable runs: persisted step by step, resumed by run id, exactly once, with history.

Every test runs against every store (memory, file, SQLite) and through both
drivers (the ``runner`` fixture; resumes use ``resume``/``aresume``).
"""

from __future__ import annotations

import pytest
from support import Recorder, resume

from stepkit import (
    CheckpointMismatchError,
    InvalidArgumentError,
    Pipeline,
    RunConflictError,
    RunExpiredError,
    RunNotFoundError,
    StepFailedError,
)
from stepkit.durable._persister import SNAPSHOT_EVERY
from stepkit.stores import MemoryStore, SQLiteStore


class Sent:
    """A step with a side effect we can count."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, ctx):
        self.calls += 1
        return {"sent": ctx.get("approved", False)}


def approval(send: Sent | None = None) -> Pipeline:
    return (
        Pipeline("approval")
        .step("generate", lambda ctx: {"reply": ctx["body"].upper()})
        .step("review", lambda ctx: None)
        .step("send", send or Sent())
    )


def pause_at(step: str) -> Recorder:
    return Recorder(stop_at=step)


def start_paused(runner, store, *, send=None, run_id="r", at="review", **options):
    """Start the approval run and leave it paused after step ``at``."""
    return runner.run(
        approval(send),
        {"body": "hi"},
        store=store,
        run_id=run_id,
        on_step_complete=pause_at(at),
        **options,
    )


class TestPersisting:
    def test_every_step_is_a_version(self, runner, store):
        """Each completed step appends a version with its changed keys."""
        result = runner.run(approval(), {"body": "hi"}, store=store, run_id="r1")
        assert result.run_id == "r1"
        record = store.get("r1")
        assert (record.status, record.version, record.step_name) == ("completed", 4, "send")
        history = store.history("r1")
        assert [(v.version, v.parent, v.step_name) for v in history] == [
            (1, None, None),
            (2, 1, "generate"),
            (3, 2, "review"),
            (4, 3, "send"),
        ]
        assert store.snapshot("r1", 2) == {"body": "hi", "reply": "HI"}
        assert store.snapshot("r1") == dict(result)

    def test_run_id_defaults_to_a_new_id(self, runner, store):
        """Without run_id a unique id is made and reported."""
        a = runner.run(approval(), {"body": "x"}, store=store)
        b = runner.run(approval(), {"body": "x"}, store=store)
        assert a.run_id != b.run_id
        assert store.get(a.run_id).status == "completed"

    def test_stop_leaves_the_run_paused(self, runner, store):
        """stop_pipeline() leaves the run paused at that step."""
        result = runner.run(
            approval(), {"body": "hi"}, store=store, run_id="r", on_step_complete=pause_at("review")
        )
        assert result.status == "stopped"
        record = store.get("r")
        assert (record.status, record.step_name, record.owner) == ("paused", "review", None)

    def test_failure_leaves_the_run_failed_with_the_error(self, runner, store):
        """A failed step leaves the run failed, with the error recorded."""

        def broken(ctx):
            raise ConnectionError("smtp down")

        with pytest.raises(StepFailedError):
            runner.run(approval(broken), {"body": "hi"}, store=store, run_id="r")
        record = store.get("r")
        assert record.status == "failed"
        assert "smtp down" in record.error
        assert record.step_name == "review"

    def test_removed_keys_are_recorded(self, runner, store):
        """A transform that drops keys records them as removed."""
        p = (
            Pipeline("p")
            .step("a", lambda ctx: {"a": 1})
            .transform("t", lambda ctx: {"a": ctx["a"]})
        )
        runner.run(p, {"x": 1, "y": 2}, store=store, run_id="r")
        last = store.history("r")[-1]
        assert set(last.removed) == {"x", "y"}
        assert store.snapshot("r") == {"a": 1}

    def test_bad_store_argument(self, runner):
        """store= must be a stepkit store."""
        with pytest.raises(InvalidArgumentError, match="store="):
            runner.run(approval(), {"body": "x"}, store={"not": "a store"})


class TestResume:
    def test_resume_a_paused_run(self, runner, store):
        """resume() continues after the last persisted step with the override."""
        send = Sent()
        start_paused(runner, store, send=send)
        result = resume(runner, approval(send), "r", store=store, override_data={"approved": True})
        assert result == {"body": "hi", "reply": "HI", "approved": True, "sent": True}
        assert send.calls == 1
        assert store.get("r").status == "completed"

    def test_resuming_a_completed_run_returns_the_stored_result(self, runner, store):
        """A second resume of the same pause runs nothing and returns the stored result."""
        send = Sent()
        start_paused(runner, store, send=send)
        first = resume(runner, approval(send), "r", store=store, override_data={"approved": True})
        again = resume(runner, approval(send), "r", store=store, override_data={"approved": False})
        assert dict(again) == dict(first)
        assert again.status == "completed"
        assert send.calls == 1

    def test_resume_a_failed_run_after_a_fix(self, runner, store):
        """A failed run resumes from its last persisted step."""
        state = {"ok": False}

        def flaky(ctx):
            if not state["ok"]:
                raise ConnectionError("down")
            return {"sent": True}

        with pytest.raises(StepFailedError):
            runner.run(approval(flaky), {"body": "hi"}, store=store, run_id="r")
        state["ok"] = True
        assert resume(runner, approval(flaky), "r", store=store)["sent"] is True

    def test_running_run_needs_recover(self, runner, store):
        """A run left running is taken over only with recover=True."""
        start_paused(runner, store, at="generate")
        store.claim("r", owner="a-process-that-died")
        with pytest.raises(RunConflictError, match="recover=True"):
            resume(runner, approval(), "r", store=store)
        assert resume(runner, approval(), "r", store=store, recover=True)["sent"] is False
        assert store.list(status="running") == []

    def test_expired_lease_makes_a_running_run_resumable(self, runner, store):
        """With a lease, a crashed run becomes resumable once the lease has expired."""
        start_paused(runner, store, at="generate")
        store.claim("r", owner="dead", lease=30)
        with pytest.raises(RunConflictError):
            resume(runner, approval(), "r", store=store)
        store.test_clock.now += 31
        assert resume(runner, approval(), "r", store=store).status == "completed"

    def test_idempotent_start(self, runner, store):
        """run(run_id=X) returns X's stored result if completed, refuses if unfinished."""
        send = Sent()
        first = runner.run(approval(send), {"body": "hi"}, store=store, run_id="done")
        again = runner.run(approval(send), {"body": "other"}, store=store, run_id="done")
        assert dict(again) == dict(first)
        assert send.calls == 1
        start_paused(runner, store, run_id="half")
        with pytest.raises(RunConflictError, match="resume it"):
            runner.run(approval(), {"body": "hi"}, store=store, run_id="half")

    def test_missing_run(self, runner, store):
        """Resuming an unknown run id is a RunNotFoundError (a KeyError)."""
        with pytest.raises(RunNotFoundError) as info:
            resume(runner, approval(), "nope", store=store)
        assert isinstance(info.value, KeyError)

    def test_run_of_another_pipeline(self, runner, store):
        """A run of another pipeline is refused and left as it was."""
        runner.run(
            approval(), {"body": "hi"}, store=store, run_id="r", on_step_complete=pause_at("review")
        )
        with pytest.raises(CheckpointMismatchError):
            resume(runner, Pipeline("other").step("s", lambda ctx: None), "r", store=store)
        assert store.get("r").status == "paused"

    def test_refused_resume_releases_the_claim(self, runner, store):
        """If the pipeline no longer has the recorded step, the run stays resumable."""
        runner.run(
            approval(), {"body": "hi"}, store=store, run_id="r", on_step_complete=pause_at("review")
        )
        changed = Pipeline("approval").step("generate", lambda ctx: None)
        with pytest.raises(CheckpointMismatchError):
            resume(runner, changed, "r", store=store)
        assert store.get("r").status == "paused"
        assert resume(runner, approval(), "r", store=store).status == "completed"

    def test_resume_inside_a_parallel_nested_item(self, runner, store):
        """A run paused inside a parallel item resumes without re-running finished work."""
        calls = []

        def step(name):
            def fn(ctx):
                calls.append(name)
                return {name: True}

            fn.__name__ = name
            return fn

        left = Pipeline("l").step("l1", step("l1")).step("l2", step("l2"))
        right = Pipeline("r").step("r1", step("r1"))
        p = Pipeline("p").step("par", right, left).step("after", step("after"))
        runner.run(p, {}, store=store, run_id="r", on_step_complete=pause_at("par/l1"))
        calls.clear()
        result = resume(runner, p, "r", store=store)
        assert dict(result) == {"l1": True, "l2": True, "r1": True, "after": True}
        # l1 never runs again; r1 runs again only if its thread had not started it
        # when the stop came (under run(), parallel items are threads)
        assert "l1" not in calls
        assert calls[-2:] == ["l2", "after"] or sorted(calls) == ["after", "l2", "r1"]
        assert calls.count("l2") == 1


class TestHistory:
    def test_snapshots_match_the_contexts_seen_by_handlers(self, runner, store):
        """Each version rebuilds to exactly the context after its step."""
        rec = Recorder()
        p = Pipeline("p")
        for i in range(12):
            p = p.step(f"s{i}", lambda ctx, i=i: {f"k{i % 4}": i, "n": ctx.get("n", 0) + 1})
        runner.run(p, {"n": 0}, store=store, run_id="r", on_step_complete=rec)
        for version, expected in enumerate(rec.contexts, start=2):
            assert store.snapshot("r", version) == expected

    def test_time_travel(self, runner, store):
        """resume(version=v) continues from an earlier version; versions stay monotonic.

        The override is the first version of the new branch: its parent is v.
        """
        send = Sent()
        start_paused(runner, store, send=send)
        result = resume(
            runner, approval(send), "r", store=store, version=2, override_data={"body": "x"}
        )
        assert result["reply"] == "HI"  # version 2 is after 'generate'; it does not run again
        assert result["body"] == "x"
        history = store.history("r")
        assert [(v.version, v.parent, v.step_name) for v in history][-3:] == [
            (4, 2, "generate"),
            (5, 4, "review"),
            (6, 5, "send"),
        ]
        assert store.snapshot("r", 4) == {"body": "x", "reply": "HI"}

    def test_fork(self, runner, store):
        """fork=True continues from a version as a new run; the original is untouched."""
        runner.run(approval(), {"body": "hi"}, store=store, run_id="orig")
        before = store.history("orig")
        forked = resume(
            runner,
            approval(),
            "orig",
            store=store,
            version=2,
            fork=True,
            override_data={"approved": True},
        )
        assert forked.run_id != "orig"
        assert forked["sent"] is True
        assert store.history("orig") == before
        assert store.get(forked.run_id).status == "completed"

    def test_time_travel_on_a_completed_run_needs_fork(self, runner, store):
        """A completed run is not reopened in place."""
        runner.run(approval(), {"body": "hi"}, store=store, run_id="r")
        with pytest.raises(RunConflictError, match="fork=True"):
            resume(runner, approval(), "r", store=store, version=2)

    @pytest.mark.parametrize("bad", [0, 99, "2", True])
    def test_bad_version(self, runner, store, bad):
        """version= must be an existing version number."""
        runner.run(
            approval(), {"body": "hi"}, store=store, run_id="r", on_step_complete=pause_at("review")
        )
        with pytest.raises(InvalidArgumentError, match="version="):
            resume(runner, approval(), "r", store=store, version=bad)
        assert store.get("r").status == "paused"

    def test_rebuilding_reads_a_bounded_chain(self, runner, store):
        """Periodic snapshots keep the chain needed to rebuild a version bounded."""
        p = Pipeline("p")
        for i in range(SNAPSHOT_EVERY + 40):
            p = p.step(f"s{i}", lambda ctx, i=i: {"i": i})
        runner.run(p, {"big": "x" * 2000}, store=store, run_id="r")
        assert len(store.versions("r")) <= SNAPSHOT_EVERY + 1
        assert store.snapshot("r") == {"big": "x" * 2000, "i": SNAPSHOT_EVERY + 39}


def test_large_context_small_changes_write_little(tmp_path):
    """100 steps over a 1 MB context, each changing one small key, store well under 2 MB."""
    store = MemoryStore()
    p = Pipeline("p")
    for i in range(100):
        p = p.step(f"s{i}", lambda ctx, i=i: {"counter": i})
    p.run({"blob": "x" * 1_000_000}, store=store, run_id="r")
    written = sum(
        len(v.changes) + len(v.position) + len(v.snapshot or "") for v in store.history("r")
    ) + sum(len(v.snapshot or "") for v in store.versions("r", upto=1))
    assert written < 2_000_000


class TestExpiry:
    def test_expired_run_cannot_be_resumed_and_is_purged(self, runner, store):
        """ttl= makes a run expire: no resume, and purge() deletes it."""
        start_paused(runner, store, ttl=60)
        store.test_clock.now += 61
        with pytest.raises(RunExpiredError):
            resume(runner, approval(), "r", store=store)
        assert store.purge() == 1
        assert store.get("r") is None


def test_run_id_of_another_pipeline_is_a_conflict(runner, store):
    """run(run_id=X) refuses an X used by another pipeline, even if completed."""
    runner.run(approval(), {"body": "hi"}, store=store, run_id="shared")
    other = Pipeline("other").step("s", lambda ctx: {"s": 1})
    with pytest.raises(RunConflictError, match="pipeline 'approval'"):
        runner.run(other, {}, store=store, run_id="shared")


class Delegating:
    """A store that is no BaseStore (only the Store/AsyncStore protocols): durable runs
    then talk to it through the protocol (get, claim, versions) instead of claim_and_load."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name):
        self.calls.append(name)
        return getattr(self.inner, name)


class TestProtocolOnlyStores:
    def test_resume_through_the_protocol(self, runner, tmp_path):
        """A store outside BaseStore resumes once, keeping the override (get, claim, versions)."""
        store = Delegating(SQLiteStore(tmp_path / "runs.db"))
        send = Sent()
        start_paused(runner, store, send=send)
        result = resume(runner, approval(send), "r", store=store, override_data={"approved": True})
        assert result["sent"] is True
        assert send.calls == 1
        names = {n.removeprefix("a") for n in store.calls}
        assert {"get", "claim", "versions"} <= names
        assert "claim_and_load" not in names
        again = resume(runner, approval(send), "r", store=store)  # completed: the stored result
        assert again["sent"] is True
        assert send.calls == 1
        with pytest.raises(RunNotFoundError, match="in this store"):
            resume(runner, approval(send), "nope", store=store)
        store.inner.close()


def test_sqlite_resume_claims_and_loads_in_one_transaction(runner, tmp_path):
    """On SQLite a resume reads nothing outside its claim: one transaction claims and loads,
    then the step's insert and the release: three transactions in all."""
    store = SQLiteStore(tmp_path / "runs.db")
    start_paused(runner, store, at="generate")
    seen: list[str] = []
    original = store._open

    def traced():
        handle = original()
        handle.db.set_trace_callback(seen.append)
        return handle

    store._open = traced
    store._local = __import__("threading").local()  # new connections, traced
    resume(runner, approval(), "r", store=store)
    transactions, inside = 0, False
    for sql in seen:
        word = sql.split(None, 1)[0].upper()
        if word == "BEGIN":
            transactions, inside = transactions + 1, True
        elif word in ("COMMIT", "ROLLBACK"):
            inside = False
        elif not inside and not word.startswith("PRAGMA"):
            transactions += 1
    steps = 2  # review and send are left
    assert transactions == 1 + steps + 1, seen
    store.close()
