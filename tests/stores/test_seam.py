"""The store seam: cheap store checks, snapshot() through the codec's public face, layering."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

import stepkit.stores
from stepkit.checkpoints import decode_context
from stepkit.errors import InvalidCheckpointError, StoreError
from stepkit.stores import AsyncStore, BaseStore, Store, is_async_store, is_store

from .conftest import EXAMPLE
from .store_helpers import run, version

STORES = Path(stepkit.stores.__file__).parent


def test_every_backend_is_a_store_and_an_async_store(store: BaseStore) -> None:
    """Each backend (the example store too) passes is_store, is_async_store and both protocols."""
    assert is_store(store)
    assert is_async_store(store)
    assert isinstance(store, Store)
    assert isinstance(store, AsyncStore)


def test_is_store_accepts_a_duck_typed_store_and_refuses_others() -> None:
    """is_store checks for the methods, not the class; is_async_store for their twins."""

    class Duck:
        def __getattr__(self, name: str) -> Any:
            if name.startswith("a") and name != "append":
                raise AttributeError(name)
            return lambda *args, **kwargs: None

    assert is_store(Duck())
    assert not is_async_store(Duck())
    for thing in (None, object(), {"get": 1}, "memory://", BaseStore):
        assert not is_store(thing)
        assert not is_async_store(thing)


def test_snapshot_decodes_through_the_public_codec_function(store: BaseStore, clock: Any) -> None:
    """snapshot() rebuilds the encoded context and decodes it with checkpoints.decode_context."""
    encoded = {"n": 1, "when": {"$t": "set", "v": [1, 2]}}
    store.create(
        run(now=clock.now, status="running", version=1, owner="w"), version(1, snapshot=encoded)
    )
    assert store.snapshot("run-1") == decode_context(encoded) == {"n": 1, "when": {1, 2}}


def test_snapshot_of_a_corrupt_context_is_a_store_error(store: BaseStore, clock: Any) -> None:
    """A stored value the codec refuses surfaces as StoreError, the codec's error chained."""
    bad = {"x": {"$t": "no-such-tag"}}
    store.create(
        run(now=clock.now, status="running", version=1, owner="w"), version(1, snapshot=bad)
    )
    with pytest.raises(StoreError, match="corrupt stored context") as info:
        store.snapshot("run-1")
    assert isinstance(info.value.__cause__, InvalidCheckpointError)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted(STORES.glob("*.py")), ids=lambda p: p.name)
def test_stores_import_only_errors_their_own_modules_and_the_public_codec(path: Path) -> None:
    """No store module reaches into the engine, the durable layer or the codec's internals."""
    ours = {m for m in _imports(path) if m == "stepkit" or m.startswith("stepkit.")}
    allowed = {"stepkit.errors", "stepkit._checks", "stepkit.checkpoints", "stepkit.stores"}
    assert {m for m in ours if m not in allowed and not m.startswith("stepkit.stores.")} == set()


def test_a_subclass_needs_only_the_primitives() -> None:
    """The example store of docs/stores.md implements seven primitives and nothing public."""
    from .conftest import DictStore

    own = {name for name in vars(DictStore) if not name.startswith("__")}
    assert {"_insert", "_update", "_get", "_list", "_delete", "_purge", "_version"} <= own
    assert not {name for name in own if not name.startswith("_")}


def test_the_docs_show_the_example_store_as_tested() -> None:
    """docs/stores.md shows exactly the DictStore that the contract suite runs."""
    source = EXAMPLE.read_text()
    example = source[source.index("class DictStore") : source.index("# -- using it")].rstrip()
    docs = (EXAMPLE.parents[1] / "docs" / "stores.md").read_text()
    assert example in docs
