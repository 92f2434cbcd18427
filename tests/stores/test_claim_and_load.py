"""What a resume asks of a store: claim and read at once; a run's state advanced by its steps.

Run against every backend (BaseStore's default ``claim_and_load`` and SQLite's
one-transaction override), sync and async.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from stepkit.errors import (
    InvalidArgumentError,
    RunConflictError,
    RunNotFoundError,
    StoreError,
)
from stepkit.stores import RunRecord, SQLiteStore, rebuild
from stepkit.testing import FakeClock

from .store_helpers import run, version
from .test_contract import paused, start


def test_purge_keeps_a_run_whose_lease_its_last_step_renewed(api: Any, clock: Any) -> None:
    """A lease renewed by append() protects the run from purge(), like one renewed by claim."""
    start(api, clock)  # claimed without a lease
    clock.advance(100)
    api.append(version(2), owner="w1", lease=60)
    assert api.get("run-1").lease_until == clock.now + 60
    assert api.purge(expired=False, older_than=0) == 0
    clock.advance(60)
    assert api.purge(expired=False, older_than=0) == 1


def test_purge_by_age_reads_the_update_time_of_the_last_step(api: Any, clock: Any) -> None:
    """older_than= counts from a running run's last saved step, not from its claim."""
    start(api, clock)
    clock.advance(100)
    api.append(version(2), owner="w1")
    clock.advance(10)
    assert api.purge(expired=False, older_than=50) == 0
    clock.advance(50)
    assert api.purge(expired=False, older_than=50) == 1


class TestClaimAndLoad:
    def test_claims_and_returns_the_chain(self, api: Any, clock: Any) -> None:
        """The record before, the claimed record, and versions() up to the latest."""
        paused(api, clock)
        before = api.get("run-1")
        clock.advance(1)
        was, claimed, chain = api.claim_and_load("run-1", owner="w2", lease=30)
        assert was == before
        assert (claimed.status, claimed.owner, claimed.lease_until) == (
            "running",
            "w2",
            clock.now + 30,
        )
        assert api.get("run-1") == claimed
        assert chain == api.versions("run-1")
        assert rebuild(chain)[0] == {"k1": 1}

    def test_upto_reads_an_earlier_version(self, api: Any, clock: Any) -> None:
        """upto= gives the chain of that version (time travel); the claim is the same."""
        start(api, clock)
        api.append(version(2), owner="w1")
        api.finish("run-1", owner="w1", status="paused")
        _, claimed, chain = api.claim_and_load("run-1", owner="w2", upto=1)
        assert claimed.version == 2
        assert [v.version for v in chain] == [1]

    def test_check_refuses_before_anything_is_written(self, api: Any, clock: Any) -> None:
        """check(record) sees the run first; if it raises, the run stays as it was."""
        paused(api, clock)
        before = api.get("run-1")
        seen: list[RunRecord] = []

        def check(record: RunRecord) -> None:
            seen.append(record)
            raise RunConflictError("not this one", run_id="run-1")

        with pytest.raises(RunConflictError, match="not this one"):
            api.claim_and_load("run-1", owner="w2", check=check)
        assert seen == [before]
        assert api.get("run-1") == before

    def test_the_claim_rules_hold(self, api: Any, clock: Any) -> None:
        """A live lease is not taken over; a missing run is not found; arguments are checked."""
        start(api, clock, owner="w1")
        api.claim("run-1", owner="w1", lease=30, recover=True)
        with pytest.raises(RunConflictError, match="live owner"):
            api.claim_and_load("run-1", owner="w2", lease=30)
        with pytest.raises(RunNotFoundError):
            api.claim_and_load("nope", owner="w2")
        with pytest.raises(InvalidArgumentError):
            api.claim_and_load("run-1", owner="")
        with pytest.raises(InvalidArgumentError):
            api.claim_and_load("run-1", owner="w2", dead_owner="w1")  # without recover=True
        _, claimed, _ = api.claim_and_load("run-1", owner="w2", recover=True, dead_owner="w1")
        assert claimed.owner == "w2"

    def test_a_version_beyond_the_run_is_refused(self, api: Any, clock: Any) -> None:
        """upto= past the latest version claims nothing."""
        paused(api, clock)
        before = api.get("run-1")
        with pytest.raises(RunNotFoundError, match="no version 5"):
            api.claim_and_load("run-1", owner="w2", upto=5)
        assert api.get("run-1") == before


def test_sqlite_claim_and_load_is_one_transaction(tmp_path: Path) -> None:
    """SQLiteStore claims and reads the chain in ONE transaction (one BEGIN, one COMMIT)."""
    clock = FakeClock()
    with SQLiteStore(tmp_path / "runs.db", clock=clock) as store:
        store.create(
            run(now=clock.now, status="running", version=1, owner="w1"),
            version(1, snapshot={"k1": 1}),
        )
        store.append(version(2), owner="w1")
        store.finish("run-1", owner="w1", status="paused")
        db: sqlite3.Connection = store._local.handle.db
        seen: list[str] = []
        db.set_trace_callback(seen.append)
        store.claim_and_load("run-1", owner="w2", lease=30)
        db.set_trace_callback(None)
    words = [sql.split(None, 1)[0].upper() for sql in seen]
    assert words[0] == "BEGIN", seen
    assert words[-1] == "COMMIT", seen
    assert words.count("BEGIN") == 1, seen
    assert words.count("COMMIT") == 1, seen


def test_sqlite_a_corrupt_chain_leaves_no_claim(tmp_path: Path) -> None:
    """A chain that does not link up is a StoreError, and the run was not claimed."""
    clock = FakeClock()
    path = tmp_path / "runs.db"
    with SQLiteStore(path, clock=clock) as store:
        store.create(
            run(now=clock.now, status="running", version=1, owner="w1"),
            version(1, snapshot={"k1": 1}),
        )
        store.append(version(2), owner="w1")
        store.finish("run-1", owner="w1", status="paused")
        before = store.get("run-1")
        db = sqlite3.connect(path)
        db.execute("UPDATE stepkit_versions SET parent = 7 WHERE version = 2")
        db.commit()
        db.close()
        with pytest.raises(StoreError, match="corrupt"):
            store.claim_and_load("run-1", owner="w2")
        assert store.get("run-1") == before


def test_sqlite_a_saved_step_writes_only_its_version_row(tmp_path: Path) -> None:
    """Saving a step inserts one version row and leaves the run row alone (one page, not two);
    get() still shows the run advanced: its version, step, update time and lease."""
    clock = FakeClock()
    path = tmp_path / "runs.db"
    with SQLiteStore(path, clock=clock) as store:
        store.create(
            run(now=clock.now, status="running", version=1, owner="w1"),
            version(1, snapshot={"k1": 1}),
        )
        db = sqlite3.connect(path)
        row_before = db.execute("SELECT * FROM stepkit_runs").fetchall()
        clock.advance(5)
        store.append(version(2), owner="w1", lease=30)
        assert db.execute("SELECT * FROM stepkit_runs").fetchall() == row_before
        db.close()
        record = store.get("run-1")
        assert (record.version, record.step_name, record.updated_at, record.lease_until) == (
            2,
            "step-2",
            clock.now,
            clock.now + 30,
        )


OLD_TRIGGER = """
CREATE TRIGGER stepkit_versions_advance AFTER INSERT ON stepkit_versions
WHEN NEW.saved_at IS NOT NULL BEGIN
    UPDATE stepkit_runs SET version = NEW.version, step_name = NEW.step_name,
        updated_at = NEW.saved_at, lease_until = COALESCE(NEW.renew_lease, lease_until)
    WHERE run_id = NEW.run_id;
END
"""


def test_sqlite_opening_drops_the_old_trigger_and_keeps_the_runs(tmp_path: Path) -> None:
    """A database whose run rows were advanced by a trigger opens without it, same runs."""
    clock = FakeClock()
    path = tmp_path / "runs.db"
    with SQLiteStore(path, clock=clock) as store:
        store.create(
            run(now=clock.now, status="running", version=1, owner="w1"),
            version(1, snapshot={"k1": 1}),
        )
    db = sqlite3.connect(path)
    db.execute(OLD_TRIGGER)
    db.commit()
    db.close()
    with SQLiteStore(path, clock=clock) as store:
        clock.advance(1)
        store.append(version(2), owner="w1", lease=10)
        db = sqlite3.connect(path)
        triggers = db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
        db.close()
        assert triggers == []
        record = store.get("run-1")
        assert (record.version, record.lease_until) == (2, clock.now + 10)
        assert [v.version for v in store.versions("run-1")] == [1, 2]
