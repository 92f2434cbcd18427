"""The one contract every store honours, run against each backend, sync and async."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from stepkit.errors import (
    InvalidArgumentError,
    RunConflictError,
    RunExpiredError,
    RunNotFoundError,
    StoreError,
)
from stepkit.stores import RunRecord, Store, VersionRecord, rebuild

from .store_helpers import run, version


def start(api: Any, clock: Any, run_id: str = "run-1", *, owner: str = "w1", **kw: Any) -> None:
    """Create ``run_id`` as the engine does: running under ``owner``, with its first version."""
    api.create(
        run(run_id, now=clock.now, status="running", version=1, owner=owner, **kw),
        version(1, run_id, snapshot={"k1": 1}),
    )


def paused(api: Any, clock: Any, run_id: str = "run-1", **kw: Any) -> None:
    """Create ``run_id`` with one version and pause it."""
    start(api, clock, run_id, **kw)
    api.finish(run_id, owner="w1", status="paused")


class TestCreateAndGet:
    def test_store_satisfies_the_protocol(self, api: Any) -> None:
        """Every backend is a Store."""
        assert isinstance(api.store, Store)

    def test_create_then_get_returns_the_same_record(self, api: Any, clock: Any) -> None:
        """get() returns exactly what create() stored, opaque meta included."""
        record = run(now=clock.now, meta='{"fingerprint": "é\\u2603", "n": [1, 2]}')
        api.create(record)
        assert api.get("run-1") == record

    def test_get_of_a_missing_run_is_none(self, api: Any) -> None:
        """get() of an unknown id returns None."""
        assert api.get("nope") is None

    def test_create_of_an_existing_run_conflicts(self, api: Any, clock: Any) -> None:
        """A second create() with the same id raises RunConflictError and changes nothing."""
        start(api, clock)
        before = api.get("run-1")
        with pytest.raises(RunConflictError, match="already exists"):
            api.create(run(now=clock.now, pipeline="other"))
        assert api.get("run-1") == before
        assert [v.version for v in api.history("run-1")] == [1]

    def test_create_checks_record_and_first_version_agree(self, api: Any, clock: Any) -> None:
        """record.version must be 0 without a first version, else the first's number."""
        with pytest.raises(InvalidArgumentError, match=r"record\.version"):
            api.create(run(now=clock.now, version=1))
        with pytest.raises(InvalidArgumentError, match="run_id"):
            api.create(run(now=clock.now, version=1), version(1, "other"))
        assert api.get("run-1") is None

    @pytest.mark.parametrize("run_id", ["", "a\x00b", "\ud800", None])
    def test_bad_run_ids_are_rejected(self, api: Any, clock: Any, run_id: Any) -> None:
        """Empty, NUL-containing or non-str run ids raise InvalidArgumentError."""
        with pytest.raises(InvalidArgumentError):
            api.get(run_id)
        with pytest.raises(InvalidArgumentError):
            api.create(dataclasses.replace(run(now=clock.now), run_id=run_id))

    @pytest.mark.parametrize("run_id", ["../x", "a/b", ".", "..", "Run", "run", "%41", "x" * 300])
    def test_any_run_id_is_stored_under_its_own_name(
        self, api: Any, clock: Any, run_id: str
    ) -> None:
        """Ids with slashes, dots, case or great length round-trip and never collide."""
        api.create(run(run_id, now=clock.now))
        assert api.get(run_id) == run(run_id, now=clock.now)
        assert {r.run_id for r in api.list()} == {run_id}


class TestClaim:
    @pytest.mark.parametrize("status", ["paused", "failed"])
    def test_claim_of_a_paused_or_failed_run_makes_it_running(
        self, api: Any, clock: Any, status: str
    ) -> None:
        """claim() moves the run to running under the owner, clears the error, stamps the time."""
        start(api, clock)
        api.finish("run-1", owner="w1", status=status, error="boom" if status == "failed" else None)
        clock.advance(5)
        claimed = api.claim("run-1", owner="w2")
        assert (claimed.status, claimed.owner, claimed.error) == ("running", "w2", None)
        assert claimed.updated_at == clock.now
        assert claimed.lease_until is None
        assert api.get("run-1") == claimed

    def test_claim_of_a_completed_run_conflicts(self, api: Any, clock: Any) -> None:
        """A completed run cannot be claimed."""
        start(api, clock)
        api.finish("run-1", owner="w1", status="completed")
        with pytest.raises(RunConflictError, match="completed"):
            api.claim("run-1", owner="w2")

    def test_claim_of_a_running_run_conflicts_unless_recovering(self, api: Any, clock: Any) -> None:
        """A running run needs recover=True, which takes it over from the old owner."""
        start(api, clock)
        with pytest.raises(RunConflictError, match="pass recover=True if its process is gone"):
            api.claim("run-1", owner="w2")
        assert api.claim("run-1", owner="w2", recover=True).owner == "w2"
        with pytest.raises(RunConflictError, match="lost the claim"):
            api.append(version(2), owner="w1")

    def test_an_expired_lease_frees_the_run(self, api: Any, clock: Any) -> None:
        """Once lease_until <= now another owner may claim, without recover."""
        paused(api, clock)
        assert api.claim("run-1", owner="w2", lease=10).lease_until == clock.now + 10
        clock.advance(9.5)
        with pytest.raises(RunConflictError, match="live owner"):
            api.claim("run-1", owner="w3")
        clock.advance(0.5)
        assert api.claim("run-1", owner="w3").owner == "w3"

    def test_append_renews_the_lease(self, api: Any, clock: Any) -> None:
        """append(lease=) moves lease_until forward; without lease it stays."""
        paused(api, clock)
        api.claim("run-1", owner="w2", lease=10)
        clock.advance(8)
        api.append(version(2), owner="w2", lease=10)
        assert api.get("run-1").lease_until == clock.now + 10
        clock.advance(1)
        api.append(version(3), owner="w2")
        assert api.get("run-1").lease_until == clock.now - 1 + 10

    def test_expect_version_guards_against_a_stale_read(self, api: Any, clock: Any) -> None:
        """claim(expect_version=) fails unless the run is still at that version."""
        paused(api, clock)
        with pytest.raises(RunConflictError, match="version 1, not 0"):
            api.claim("run-1", owner="w2", expect_version=0)
        assert api.claim("run-1", owner="w2", expect_version=1).version == 1

    def test_claim_of_a_missing_run_is_not_found(self, api: Any) -> None:
        """RunNotFoundError (also a KeyError) for an unknown id."""
        with pytest.raises(RunNotFoundError) as info:
            api.claim("nope", owner="w")
        assert isinstance(info.value, KeyError)
        assert info.value.run_id == "nope"

    def test_claim_of_an_expired_run_raises_expired(self, api: Any, clock: Any) -> None:
        """Past expires_at a run can no longer be resumed."""
        paused(api, clock, expires_at=clock.now + 60)
        clock.advance(61)
        with pytest.raises(RunExpiredError):
            api.claim("run-1", owner="w2")

    @pytest.mark.parametrize(
        "kwargs", [{"owner": ""}, {"owner": "w", "lease": 0}, {"owner": "w", "lease": -1.0}]
    )
    def test_bad_claim_arguments_are_rejected(self, api: Any, clock: Any, kwargs: Any) -> None:
        """An empty owner or a non-positive lease raises InvalidArgumentError."""
        paused(api, clock)
        with pytest.raises(InvalidArgumentError):
            api.claim("run-1", **kwargs)


class TestAppendAndFinish:
    def test_append_advances_the_run(self, api: Any, clock: Any) -> None:
        """append() moves version, step_name and updated_at, and stores the version."""
        start(api, clock)
        clock.advance(3)
        api.append(version(2, changes={"a": 1}), owner="w1")
        record = api.get("run-1")
        assert (record.version, record.step_name, record.updated_at) == (2, "step-2", clock.now)
        assert api.history("run-1")[-1] == version(2, changes={"a": 1})

    def test_append_by_another_owner_conflicts(self, api: Any, clock: Any) -> None:
        """Only the claim holder may append."""
        start(api, clock)
        with pytest.raises(RunConflictError, match="lost the claim"):
            api.append(version(2), owner="intruder")
        assert api.get("run-1").version == 1

    @pytest.mark.parametrize("number", [1, 3])
    def test_append_of_a_wrong_version_conflicts(self, api: Any, clock: Any, number: int) -> None:
        """A version number other than current + 1 is a lost compare-and-set."""
        start(api, clock)
        with pytest.raises(RunConflictError, match="lost the claim"):
            api.append(version(number, parent=1 if number == 3 else None), owner="w1")
        assert api.get("run-1").version == 1
        assert [v.version for v in api.history("run-1")] == [1]

    def test_append_to_a_paused_run_conflicts(self, api: Any, clock: Any) -> None:
        """After finish() the former owner can no longer append."""
        paused(api, clock)
        with pytest.raises(RunConflictError):
            api.append(version(2), owner="w1")

    def test_append_to_a_missing_run_is_not_found(self, api: Any) -> None:
        """RunNotFoundError when the run does not exist."""
        with pytest.raises(RunNotFoundError):
            api.append(version(1, "nope"), owner="w1")

    def test_finish_releases_the_run(self, api: Any, clock: Any) -> None:
        """finish() sets status and error and clears owner and lease."""
        paused(api, clock)
        api.claim("run-1", owner="w2", lease=30)
        clock.advance(1)
        done = api.finish("run-1", owner="w2", status="failed", error="ValueError: bad input")
        assert (done.status, done.error, done.owner, done.lease_until) == (
            "failed",
            "ValueError: bad input",
            None,
            None,
        )
        assert done.updated_at == clock.now
        assert api.get("run-1") == done

    def test_finish_by_another_owner_conflicts(self, api: Any, clock: Any) -> None:
        """finish() is a compare-and-set on the owner."""
        start(api, clock)
        with pytest.raises(RunConflictError, match="lost the claim"):
            api.finish("run-1", owner="w2", status="completed")
        assert api.get("run-1").status == "running"

    @pytest.mark.parametrize("status", ["running", "done", None])
    def test_finish_needs_a_final_status(self, api: Any, clock: Any, status: Any) -> None:
        """finish(status=) is paused, completed or failed."""
        start(api, clock)
        with pytest.raises(InvalidArgumentError, match="status"):
            api.finish("run-1", owner="w1", status=status)


class TestListDeletePurge:
    def test_list_filters_orders_and_limits(self, api: Any, clock: Any) -> None:
        """list() filters by pipeline and status, newest update first, at most limit."""
        for i, (pipeline, status) in enumerate(
            [("a", "paused"), ("b", "paused"), ("a", "completed"), ("a", "paused")]
        ):
            clock.advance(1)
            paused(api, clock, f"r{i}", pipeline=pipeline)
            if status == "completed":
                api.claim(f"r{i}", owner="w")
                api.finish(f"r{i}", owner="w", status="completed")

        def ids(records: list[RunRecord]) -> list[str]:
            return [r.run_id for r in records]

        assert ids(api.list()) == ["r3", "r2", "r1", "r0"]
        assert ids(api.list(pipeline="a")) == ["r3", "r2", "r0"]
        assert ids(api.list(pipeline="a", status="paused")) == ["r3", "r0"]
        assert ids(api.list(limit=2)) == ["r3", "r2"]
        assert ids(api.list(limit=None)) == ["r3", "r2", "r1", "r0"]
        assert api.list(limit=0) == []
        assert api.list(pipeline="zzz") == []

    def test_list_puts_the_later_created_run_first_on_equal_times(
        self, api: Any, clock: Any
    ) -> None:
        """Runs updated at the same time come later-created first, never by run id."""
        for run_id in ("m", "z", "a", "q"):
            api.create(run(run_id, now=clock.now))
        assert [r.run_id for r in api.list()] == ["q", "a", "z", "m"]
        clock.advance(1)
        api.claim("z", owner="w")  # updated later: first, whatever its creation
        assert [r.run_id for r in api.list()] == ["z", "q", "a", "m"]
        assert [r.run_id for r in api.list(status="paused", limit=2)] == ["q", "a"]

    @pytest.mark.parametrize("kwargs", [{"limit": -1}, {"status": "dormant"}, {"pipeline": 3}])
    def test_bad_list_arguments_are_rejected(self, api: Any, kwargs: Any) -> None:
        """A negative limit, unknown status or non-str pipeline raises InvalidArgumentError."""
        with pytest.raises(InvalidArgumentError):
            api.list(**kwargs)

    def test_delete_removes_the_run_and_its_versions(self, api: Any, clock: Any) -> None:
        """delete() returns True once, then False; the id can be used again afresh."""
        start(api, clock)
        api.append(version(2), owner="w1")
        assert api.delete("run-1") is True
        assert api.delete("run-1") is False
        assert api.get("run-1") is None
        with pytest.raises(RunNotFoundError):
            api.history("run-1")
        api.create(run(now=clock.now))
        assert api.history("run-1") == []

    def _population(self, api: Any, clock: Any) -> None:
        # At t0: "old-done" and "old-failed" updated; "expired" expires at t0+10.
        # At t0+100: "fresh" updated, "leased" claimed with a 1000 s lease.
        for run_id in ("old-done", "old-failed", "expired", "leased"):
            start(api, clock, run_id, expires_at=clock.now + 10 if run_id == "expired" else None)
        api.finish("old-done", owner="w1", status="completed")
        api.finish("old-failed", owner="w1", status="failed", error="x")
        api.finish("expired", owner="w1", status="paused")
        api.finish("leased", owner="w1", status="paused")
        clock.advance(100)
        api.claim("leased", owner="w2", lease=1000)
        paused(api, clock, "fresh")
        clock.advance(1)

    def test_purge_by_default_deletes_only_expired_runs(self, api: Any, clock: Any) -> None:
        """purge() removes runs past expires_at and nothing else."""
        self._population(api, clock)
        assert api.purge() == 1
        assert api.get("expired") is None
        assert len(api.list()) == 4

    def test_purge_older_than_adds_stale_runs(self, api: Any, clock: Any) -> None:
        """older_than also removes runs not updated for that long (OR with expired)."""
        self._population(api, clock)
        assert api.purge(older_than=50) == 3
        assert sorted(r.run_id for r in api.list()) == ["fresh", "leased"]

    def test_purge_status_restricts_every_criterion(self, api: Any, clock: Any) -> None:
        """status= narrows the deletion (AND) to runs with that status."""
        self._population(api, clock)
        assert api.purge(older_than=50, status="failed") == 1
        assert api.get("old-failed") is None
        assert api.get("expired") is not None
        assert api.purge(expired=False, older_than=50, status="paused") == 1
        assert api.get("expired") is None
        assert api.get("old-done") is not None

    def test_purge_never_deletes_a_run_under_a_live_lease(self, api: Any, clock: Any) -> None:
        """A running run whose lease has not run out survives any purge, until it does."""
        self._population(api, clock)
        assert api.purge(expired=False, older_than=0) == 4
        assert [r.run_id for r in api.list()] == ["leased"]
        clock.advance(1000)
        assert api.purge(expired=False, older_than=0) == 1

    def test_purge_without_a_criterion_is_refused(self, api: Any, clock: Any) -> None:
        """expired=False and no older_than would mean 'everything': InvalidArgumentError."""
        self._population(api, clock)
        for kwargs in ({"expired": False}, {"expired": False, "status": "failed"}):
            with pytest.raises(InvalidArgumentError, match="no criterion"):
                api.purge(**kwargs)
        with pytest.raises(InvalidArgumentError):
            api.purge(older_than=-1)
        assert len(api.list()) == 5

    def test_purge_removes_versions_too(self, api: Any, clock: Any) -> None:
        """A purged run's history is gone; the id can be reused."""
        start(api, clock, expires_at=clock.now + 1)
        api.finish("run-1", owner="w1", status="paused")
        clock.advance(2)
        assert api.purge() == 1
        api.create(run(now=clock.now))
        assert api.history("run-1") == []


def _grow(
    api: Any, clock: Any, steps: list[tuple[int, int | None, bool]]
) -> dict[int, dict[str, Any]]:
    """Append versions (number, parent, snapshot?) to run-1; return the true context of each."""
    truth: dict[int, dict[str, Any]] = {1: {"k1": 1}}
    start(api, clock)
    for number, parent, snap in steps:
        base = truth[parent or number - 1]
        changes = {f"k{number}": number, "shared": [number, {"nested": str(number)}]}
        removed = tuple(k for k in sorted(base) if k.startswith("k") and int(k[1:]) % 3 == 0)
        context = {k: v for k, v in {**base, **changes}.items() if k not in removed}
        truth[number] = context
        api.append(
            version(
                number,
                parent=parent,
                changes=changes,
                removed=removed,
                snapshot=context if snap else None,
            ),
            owner="w1",
        )
    return truth


class TestVersions:
    def test_versions_start_at_the_nearest_snapshot(self, api: Any, clock: Any) -> None:
        """With snapshots at 1 and 5, version 7 needs 5, 6, 7 and version 4 needs 1..4."""
        _grow(api, clock, [(n, None, n == 5) for n in range(2, 9)])

        def numbers(chain: list[VersionRecord]) -> list[int]:
            return [v.version for v in chain]

        assert numbers(api.versions("run-1", upto=7)) == [5, 6, 7]
        assert numbers(api.versions("run-1", upto=4)) == [1, 2, 3, 4]
        assert numbers(api.versions("run-1", upto=5)) == [5]
        assert numbers(api.versions("run-1")) == [5, 6, 7, 8]
        assert api.versions("run-1", upto=5)[0].snapshot is not None

    def test_versions_follow_time_travel_parents(self, api: Any, clock: Any) -> None:
        """Version 4 derived from version 2 rebuilds from 1, 2, 4, skipping 3."""
        truth = _grow(api, clock, [(2, None, False), (3, None, False), (4, 2, False)])
        chain = api.versions("run-1", upto=4)
        assert [v.version for v in chain] == [1, 2, 4]
        assert rebuild(chain) == (truth[4], chain[-1])

    def test_rebuild_equals_applying_every_diff(self, api: Any, clock: Any) -> None:
        """rebuild(versions(upto=n)) is the context at n, for every n, across snapshots."""
        steps = [(n, None, n % 4 == 0) for n in range(2, 11)] + [(11, 6, False), (12, None, True)]
        truth = _grow(api, clock, steps)
        for number, context in truth.items():
            rebuilt, last = rebuild(api.versions("run-1", upto=number))
            assert (rebuilt, last.version) == (context, number)

    def test_snapshots_and_opaque_text_round_trip(self, api: Any, clock: Any) -> None:
        """changes, position and snapshot come back byte for byte."""
        start(api, clock)
        text = json.dumps({"big": "x" * 200_000, "uni": "é☃\U0001f600"}, ensure_ascii=False)
        record = dataclasses.replace(version(2), changes=text, snapshot=text, position='"é"')
        api.append(record, owner="w1")
        assert api.versions("run-1") == [record]

    def test_missing_runs_and_versions_are_not_found(self, api: Any, clock: Any) -> None:
        """Unknown run, version past the latest, or a run with no versions: RunNotFoundError."""
        with pytest.raises(RunNotFoundError):
            api.versions("nope")
        start(api, clock)
        with pytest.raises(RunNotFoundError, match="no version 2"):
            api.versions("run-1", upto=2)
        api.create(run("empty", now=clock.now))
        with pytest.raises(RunNotFoundError):
            api.versions("empty")
        with pytest.raises(InvalidArgumentError):
            api.versions("run-1", upto=0)

    def test_version_kinds_round_trip(self, api: Any, clock: Any) -> None:
        """kind (start, step, override) is stored and returned by versions() and history()."""
        api.create(
            run(now=clock.now, status="running", version=1, owner="w1"),
            dataclasses.replace(version(1, snapshot={"k1": 1}), kind="start"),
        )
        api.append(dataclasses.replace(version(2), kind="override"), owner="w1")
        api.append(version(3), owner="w1")
        assert [v.kind for v in api.history("run-1")] == ["start", "override", "step"]
        assert [v.kind for v in api.versions("run-1")] == ["start", "override", "step"]
        assert api.versions("run-1", upto=2)[-1].kind == "override"

    @pytest.mark.parametrize("kind", ["begin", None, 3])
    def test_an_unknown_version_kind_is_rejected(self, api: Any, clock: Any, kind: Any) -> None:
        """A kind other than start, step or override raises InvalidArgumentError."""
        start(api, clock)
        with pytest.raises(InvalidArgumentError, match="kind"):
            api.append(dataclasses.replace(version(2), kind=kind), owner="w1")
        assert api.get("run-1").version == 1

    def test_history_lists_every_version_without_snapshots(self, api: Any, clock: Any) -> None:
        """history() is every version ascending, time-travel ones included, snapshots omitted."""
        _grow(api, clock, [(2, None, True), (3, 1, False)])
        history = api.history("run-1")
        assert [(v.version, v.parent) for v in history] == [(1, None), (2, 1), (3, 1)]
        assert all(v.snapshot is None for v in history)
        assert history[1] == dataclasses.replace(api.versions("run-1", upto=2)[0], snapshot=None)
        with pytest.raises(RunNotFoundError):
            api.history("nope")


class TestLifecycle:
    def test_a_closed_store_refuses_work(self, api: Any, clock: Any) -> None:
        """After close() every call raises StoreError; closing again is harmless."""
        api.create(run(now=clock.now))
        api.close()
        api.close()
        with pytest.raises(StoreError, match="closed"):
            api.get("run-1")

    def test_stores_are_context_managers(self, api: Any) -> None:
        """'with store:' and 'async with store:' close it on exit."""
        store = api.store
        with store as entered:
            assert entered is store
        with pytest.raises(StoreError):
            store.list()

    async def _async_with(self, store: Any) -> None:
        async with store as entered:
            assert entered is store

    def test_stores_are_async_context_managers(self, api: Any) -> None:
        """'async with store:' closes it on exit."""
        import asyncio

        asyncio.run(self._async_with(api.store))
        with pytest.raises(StoreError):
            api.store.list()


def test_version_records_are_immutable() -> None:
    """Records are frozen: stores can hand them out without copying."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        version(1).version = 2  # type: ignore[misc]
    assert isinstance(version(1), VersionRecord)
