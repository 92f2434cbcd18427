"""rebuild() turns a snapshot and a chain of diffs into the context, and checks its input."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepkit.errors import InvalidArgumentError
from stepkit.stores import RunRecord, VersionRecord, rebuild

from .store_helpers import version

keys = st.sampled_from(["a", "b", "c", "d"])
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=5,
)
steps = st.lists(
    st.tuples(st.dictionaries(keys, values, max_size=3), st.sets(keys, max_size=2), st.booleans()),
    min_size=1,
    max_size=12,
)


@given(steps)
def test_rebuild_from_any_snapshot_equals_applying_every_diff(
    plan: list[tuple[dict[str, Any], set[str], bool]],
) -> None:
    """For every version, rebuilding from its nearest snapshot gives the naive result."""
    context: dict[str, Any] = {}
    records: list[VersionRecord] = []
    truths: list[dict[str, Any]] = []
    for number, (changes, removed, snap) in enumerate(plan, start=1):
        context = {k: v for k, v in {**context, **changes}.items() if k not in removed}
        truths.append(context)
        records.append(
            version(
                number,
                changes=changes,
                removed=tuple(sorted(removed)),
                snapshot=context if snap or number == 1 else None,
            )
        )
    for number, truth in enumerate(truths, start=1):
        start = max(i for i in range(number) if records[i].snapshot is not None)
        rebuilt, last = rebuild(records[start:number])
        assert rebuilt == json.loads(json.dumps(truth))
        assert last is records[number - 1]


def test_a_root_version_without_snapshot_starts_from_empty() -> None:
    """A first version with no parent and no snapshot is a diff against {}."""
    assert rebuild([version(1, changes={"a": 1})])[0] == {"a": 1}


def test_rebuild_needs_versions() -> None:
    """An empty sequence is an InvalidArgumentError."""
    with pytest.raises(InvalidArgumentError, match="at least one"):
        rebuild([])


def test_rebuild_must_start_at_a_snapshot() -> None:
    """A chain starting mid-history without a snapshot cannot be rebuilt."""
    with pytest.raises(InvalidArgumentError, match="start at a snapshot"):
        rebuild([version(2), version(3)])


def test_rebuild_needs_a_parent_chain() -> None:
    """Each version must derive from the one before it in the sequence."""
    with pytest.raises(InvalidArgumentError, match="does not derive from version 1"):
        rebuild([version(1, snapshot={}), version(3, parent=2)])
    with pytest.raises(InvalidArgumentError, match="VersionRecord"):
        rebuild([{"version": 1}])  # type: ignore[list-item]


def test_values_stay_encoded() -> None:
    """rebuild() parses with plain json.loads: tagged values come back as stored."""
    tagged = {"when": {"$t": "datetime", "v": "2024-01-01T00:00:00"}}
    record = dataclasses.replace(version(1), changes=json.dumps(tagged))
    assert rebuild([record])[0] == tagged


def test_records_are_slotted() -> None:
    """Records are slotted dataclasses: no per-instance dict."""
    assert not hasattr(version(1), "__dict__")
    assert "__slots__" in vars(RunRecord)
