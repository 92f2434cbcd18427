"""The tagged-value codec of checkpoint contexts (SPEC §2.4 "Values")."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import json
import os
import sys
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import Box, Color, Point, context_values, contexts, json_values, same

from stepkit.checkpoints._decode import from_json, loads
from stepkit.checkpoints._encode import dumps, encode_context, to_json
from stepkit.checkpoints._registry import DEFAULT_REGISTRY, TypeRegistry, register_type
from stepkit.checkpoints._tags import MAX_DEPTH, MAX_INT_DIGITS
from stepkit.errors import CheckpointEncodeError, InvalidArgumentError, InvalidCheckpointError

SLOW_OK = settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
JSON_TYPES = (dict, list, str, int, float, bool, type(None))


def round_trip(value: Any, registry: TypeRegistry | None = None) -> Any:
    return loads(dumps(to_json(value, registry=registry)), registry=registry)


def is_plain_json(data: Any) -> bool:
    if isinstance(data, dict):
        return all(type(k) is str and is_plain_json(v) for k, v in data.items())
    if isinstance(data, list):
        return all(is_plain_json(x) for x in data)
    return type(data) in JSON_TYPES


def nested_lists(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def zone(key: str) -> ZoneInfo:
    try:
        return ZoneInfo(key)
    except Exception:
        pytest.skip("no time zone database")


# ---------------------------------------------------------------- round trips


def test_same_compares_types_and_values_exactly() -> None:
    """The comparison helper tells apart what == would not."""
    paris = zone("Europe/Paris")
    assert same([float("nan"), Decimal("NaN")], [float("nan"), Decimal("NaN")])
    assert not same(1, True)
    assert not same(0.0, -0.0)
    assert not same((1,), [1])
    assert not same(Decimal("1.0"), Decimal("1.00"))
    assert not same({"a": 1, "b": 2}, {"b": 2, "a": 1})
    assert not same(dt.datetime(2024, 1, 1, fold=1), dt.datetime(2024, 1, 1))
    utc_noon = dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone.utc)
    assert not same(utc_noon, utc_noon.astimezone(paris))


@SLOW_OK
@given(context_values())
def test_every_supported_value_round_trips_with_exact_types(value: Any) -> None:
    """Any supported value, nested, decodes to an equal value of exactly the same types."""
    assert same(round_trip(value), value)


@given(contexts())
def test_contexts_round_trip_through_encode_context(context: dict[str, Any]) -> None:
    """encode_context + dumps + loads gives back the context exactly."""
    assert same(loads(dumps(encode_context(context))), context)


@given(context_values())
def test_encoded_values_are_plain_json(value: Any) -> None:
    """to_json yields only dict/list/str/int/float/bool/None, dumpable with allow_nan=False."""
    data = to_json(value)
    assert is_plain_json(data)
    json.dumps(data, allow_nan=False)


@given(context_values())
def test_from_json_decodes_what_json_loads_parsed(value: Any) -> None:
    """from_json on an already-parsed document equals loads on its text."""
    assert same(from_json(json.loads(dumps(to_json(value)))), value)


@given(json_values())
def test_plain_json_passes_through_unchanged(value: Any) -> None:
    """JSON data without '$t' keys encodes to itself."""
    assert same(to_json(value), value)


def test_bool_and_int_keep_their_types() -> None:
    """bool is not flattened to int, nor int to bool."""
    value = [True, 1, False, 0, 1.0, {1: True}, {True: 1}]
    assert same(round_trip(value), value)


def test_ints_up_to_the_digit_limit_round_trip() -> None:
    """Ints of up to MAX_INT_DIGITS digits are native JSON numbers."""
    big = -(10**MAX_INT_DIGITS - 1)
    assert round_trip(big) == big


def test_ints_beyond_the_digit_limit_fail_to_encode() -> None:
    """A larger int is an encode error that suggests str or Decimal."""
    with pytest.raises(CheckpointEncodeError, match="digits"):
        to_json({"n": 10**MAX_INT_DIGITS})


def test_special_floats_are_tagged() -> None:
    """nan, inf and -inf become tagged values; -0.0 keeps its sign."""
    assert to_json(float("inf")) == {"$t": "float", "v": "inf"}
    assert same(
        round_trip([float("nan"), float("-inf"), -0.0]), [float("nan"), -float("inf"), -0.0]
    )


def test_sets_of_nans_keep_their_size() -> None:
    """Each decoded NaN is a fresh object, so a set of two NaNs stays two NaNs."""
    assert len(round_trip({float("nan"), float("nan")})) == 2


def test_dicts_with_reserved_or_non_str_keys_use_pairs() -> None:
    """A '$t' key or any non-str key switches the dict to a list of [key, value] pairs."""
    value = {"$t": "tuple", "v": [1], (1, "a"): frozenset({2}), None: b"x"}
    assert to_json({"$t": 1}) == {"$t": "dict", "v": [["$t", 1]]}
    assert same(round_trip(value), value)


def test_zoneinfo_datetimes_keep_key_and_fold() -> None:
    """A ZoneInfo datetime stores wall time, zone key and fold, and rebuilds ZoneInfo(key)."""
    value = dt.datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=zone("America/New_York"))
    data = to_json(value)
    assert data == {
        "$t": "datetime",
        "v": "2024-11-03T01:30:00",
        "tz": "America/New_York",
        "fold": 1,
    }
    assert same(round_trip(value), value)
    assert round_trip(value).utcoffset() == dt.timedelta(hours=-5)


def test_fixed_offsets_keep_offset_and_name() -> None:
    """timezone.utc, bare offsets and named offsets round-trip; the name only when set."""
    named = dt.timezone(dt.timedelta(hours=5, minutes=30, seconds=7), "IST+")
    values = [
        dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        dt.datetime(2024, 1, 1, 12, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=-3))),
        dt.time(23, 59, tzinfo=named),
        dt.time(1, 2, 3, fold=1),
    ]
    assert "tzn" not in to_json(values[0])
    assert to_json(values[2])["tzn"] == "IST+"
    assert same(round_trip(values), values)
    assert round_trip(values[0]).tzinfo is dt.timezone.utc


class _ImportSpy:
    """A meta-path finder that records every module name Python tries to import."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        self.names.append(name)


def test_zone_keys_from_data_import_nothing(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A zone key is checked before use: an unknown or malformed one imports nothing named by it."""
    fake = tmp_path / "tzdata" / "zoneinfo"  # a tzdata package, as zoneinfo would fall back to
    fake.mkdir(parents=True)
    (fake.parent / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    spy = _ImportSpy()
    monkeypatch.setattr(sys, "meta_path", [spy, *sys.meta_path])
    try:
        for key in ["Evil_Module/Payload", "Evil_A/B/C", "x" * 65, "../evil", "/evil", "a/../b"]:
            text = json.dumps({"$t": "datetime", "v": "2024-01-01T00:00", "tz": key})
            with pytest.raises(InvalidCheckpointError, match="time zone"):
                loads(text)
    finally:
        for name in set(sys.modules) - before:
            if name.startswith("tzdata"):
                del sys.modules[name]
    assert not [name for name in spy.names if "Evil" in name or "evil" in name]


def test_a_zone_with_a_key_that_names_no_zone_is_not_encoded() -> None:
    """A ZoneInfo whose key names no zone file (from_file) is an encode error, not a checkpoint."""
    import zoneinfo

    paths = [os.path.join(root, "UTC") for root in zoneinfo.TZPATH]
    path = next((p for p in paths if os.path.isfile(p)), None)
    if path is None:
        pytest.skip("no time zone database")
    with open(path, "rb") as f:
        odd = ZoneInfo.from_file(f, key="Evil_Module/Payload")
    with pytest.raises(CheckpointEncodeError, match="ZoneInfo"):
        to_json(dt.datetime(2024, 1, 1, tzinfo=odd))


def test_other_tzinfo_types_fail_with_a_hint() -> None:
    """A tzinfo that is neither ZoneInfo nor timezone is an encode error naming it."""

    class Custom(dt.tzinfo):
        def utcoffset(self, d: dt.datetime | None) -> dt.timedelta:
            return dt.timedelta(0)

        def dst(self, d: dt.datetime | None) -> None:
            return None

        def tzname(self, d: dt.datetime | None) -> str:
            return "Custom"

    with pytest.raises(CheckpointEncodeError, match=r"Custom.*zoneinfo\.ZoneInfo") as info:
        encode_context({"when": dt.datetime(2024, 1, 1, tzinfo=Custom())})
    assert info.value.path == "context['when']"
    assert info.value.type_name == "datetime.datetime"


def test_scalar_tags_have_documented_payloads() -> None:
    """Each built-in tag has a small, readable payload."""
    u = uuid.UUID(int=1)
    assert to_json(dt.timedelta(days=-1, microseconds=3)) == {"$t": "timedelta", "v": [-1, 0, 3]}
    assert to_json(Decimal("-1.50")) == {"$t": "Decimal", "v": "-1.50"}
    assert to_json(u) == {"$t": "UUID", "v": str(u)}
    assert to_json(b"\x00\xff") == {"$t": "bytes", "v": "AP8="}
    assert to_json(bytearray(b"a")) == {"$t": "bytearray", "v": "YQ=="}
    assert to_json(dt.date(2024, 2, 29)) == {"$t": "date", "v": "2024-02-29"}
    assert to_json((1, [2])) == {"$t": "tuple", "v": [1, [2]]}


def test_dumps_is_compact_and_keeps_unicode() -> None:
    """dumps writes no spaces and does not escape non-ASCII text."""
    assert dumps({"a": [1, "é"]}) == '{"a":[1,"é"]}'


def test_loads_accepts_utf8_bytes() -> None:
    """loads takes str or UTF-8 bytes."""
    assert loads('{"a":"é"}'.encode()) == {"a": "é"}


def test_encoding_never_changes_the_context_and_copies_only_what_it_must() -> None:
    """Plain JSON is written as it is; a value needing a tag is encoded into a new container."""
    inner = {"when": (1, 2), "n": 1}
    context = {"plain": {"a": [1, "x", None]}, "inner": inner, "tail": [0.5, [True]]}
    encoded = encode_context(context)
    assert encoded["inner"] == {"when": {"$t": "tuple", "v": [1, 2]}, "n": 1}
    assert inner == {"when": (1, 2), "n": 1}
    assert encoded["plain"] is context["plain"]
    assert encoded["tail"] is context["tail"]
    plain = {"a": 1, "b": [1, {"c": "d"}]}
    assert encode_context(plain) is plain
    listed = [1, 2, {3}, 4]
    assert to_json(listed) == [1, 2, {"$t": "set", "v": [3]}, 4]
    assert listed == [1, 2, {3}, 4]


# ---------------------------------------------------------------- registry


def test_registered_enum_encodes_its_value() -> None:
    """A registered Enum is stored by value under its registered name."""
    assert to_json(Color.PAIR) == {
        "$t": "type",
        "n": "tests.Color",
        "v": {"$t": "tuple", "v": [1, 2]},
    }
    assert round_trip([Color.RED, Color.PAIR]) == [Color.RED, Color.PAIR]


def test_registered_dataclass_encodes_its_fields() -> None:
    """A registered dataclass is stored as a dict of its (recursively encoded) fields."""
    box = Box(item={Point(1, 2)}, label="b")
    data = to_json(box)
    assert data["n"] == "tests.Box"
    assert data["v"]["label"] == "b"
    assert same(round_trip(box), box)


def test_other_classes_register_with_encode_and_decode() -> None:
    """Any class round-trips through its own encode/decode callables."""
    registry = TypeRegistry()

    class Money:
        def __init__(self, cents: int) -> None:
            self.cents = cents

    registry.register(Money, name="money", encode=lambda m: m.cents, decode=Money)
    out = round_trip({"price": Money(250)}, registry)
    assert type(out["price"]) is Money
    assert out["price"].cents == 250


def test_register_type_works_as_call_and_decorator() -> None:
    """register_type(C), @register_type and @register_type(name=...) all return the class."""
    registry = TypeRegistry()

    class A(enum.Enum):
        X = 1

    @register_type(registry=registry)
    class B(enum.Enum):
        Y = 2

    @register_type(name="c", registry=registry)
    @dataclasses.dataclass
    class C:
        z: int

    assert register_type(A, registry=registry) is A
    assert to_json(A.X, registry=registry)["n"].endswith("A")
    assert to_json(C(1), registry=registry)["n"] == "c"
    assert round_trip([A.X, B.Y, C(3)], registry) == [A.X, B.Y, C(3)]


def test_plain_classes_need_encode_and_decode() -> None:
    """Registering a plain class without both callables is an InvalidArgumentError."""
    with pytest.raises(InvalidArgumentError, match="encode= and decode="):
        TypeRegistry().register(type("Plain", (), {}), encode=str)


def test_bad_registrations_are_rejected() -> None:
    """Non-classes, natively supported types and non-callables cannot be registered."""
    registry = TypeRegistry()
    for bad in [Color.RED, tuple, int]:
        with pytest.raises(InvalidArgumentError):
            registry.register(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        registry.register(Color, encode="value")  # type: ignore[arg-type]


def test_a_name_cannot_be_taken_by_another_class() -> None:
    """Registering a different class under a taken name is an InvalidArgumentError."""
    registry = TypeRegistry()

    class Other(enum.Enum):
        A = 1

    registry.register(Color, name="color")
    with pytest.raises(InvalidArgumentError, match="already registered"):
        registry.register(Other, name="color")


def test_reregistering_the_same_class_is_a_no_op() -> None:
    """The same class under the same name again changes nothing; under another name, it fails."""
    registry = TypeRegistry()
    registry.register(Color, name="color")
    registry.register(Color, name="color", encode=lambda c: "ignored")
    assert to_json(Color.GREEN, registry=registry)["v"] == 2
    with pytest.raises(InvalidArgumentError, match="already registered as"):
        registry.register(Color, name="colour")


def test_registry_copies_are_independent() -> None:
    """A copy has the same types; registering on it leaves the original alone."""
    copy = DEFAULT_REGISTRY.copy()

    class Extra(enum.Enum):
        A = 1

    copy.register(Extra)
    assert round_trip(Color.RED, copy) is Color.RED
    with pytest.raises(CheckpointEncodeError):
        to_json(Extra.A)


def test_unknown_type_name_is_rejected_on_decode() -> None:
    """A type name missing from the registry is an InvalidCheckpointError."""
    text = dumps(to_json(Color.RED))
    with pytest.raises(
        InvalidCheckpointError, match=r"unknown registered type name 'tests\.Color'"
    ):
        loads(text, registry=TypeRegistry())


def test_failing_user_decode_is_chained() -> None:
    """A registered decode that raises becomes InvalidCheckpointError with the cause chained."""
    with pytest.raises(InvalidCheckpointError, match=r"tests\.Color") as info:
        loads('{"$t":"type","n":"tests.Color","v":"purple"}')
    assert isinstance(info.value.__cause__, ValueError)


def test_failing_user_encode_is_chained() -> None:
    """A registered encode that raises becomes CheckpointEncodeError with the cause chained."""
    registry = TypeRegistry()

    class Bad:
        pass

    def explode(obj: Bad) -> Any:
        raise RuntimeError("boom")

    registry.register(Bad, encode=explode, decode=lambda v: Bad())
    with pytest.raises(CheckpointEncodeError, match="boom") as info:
        encode_context({"b": [Bad()]}, registry=registry)
    assert info.value.path == "context['b'][0]"
    assert isinstance(info.value.__cause__, RuntimeError)


def test_a_document_naming_os_system_imports_and_runs_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Type names are registry keys only: nothing is imported, looked up or called."""
    calls: list[Any] = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a))
    modules = set(sys.modules)
    for text in [
        '{"$t":"type","n":"os.system","v":"echo hi"}',
        '{"$t":"type","n":"subprocess.run","v":["echo","hi"]}',
        '{"$t":"type","n":"builtins.eval","v":"1"}',
    ]:
        with pytest.raises(InvalidCheckpointError, match="unknown registered type name"):
            loads(text)
    assert calls == []
    assert set(sys.modules) == modules


# ---------------------------------------------------------------- encode errors


class Avatar:
    pass


class Level(enum.IntEnum):
    LOW = 1


class Name(str, enum.Enum):
    ADA = "ada"


@pytest.mark.parametrize(
    ("context", "path", "type_name"),
    [
        (
            {"user": {"avatar": Avatar()}},
            "context['user']['avatar']",
            "checkpoints.test_values.Avatar",
        ),
        ({"items": [0, 1, 2, Avatar()]}, "context['items'][3]", "checkpoints.test_values.Avatar"),
        ({"pair": ("a", [Avatar()])}, "context['pair'][1][0]", "checkpoints.test_values.Avatar"),
        (
            {"by_id": {7: {"x": Avatar()}}},
            "context['by_id'][7]['x']",
            "checkpoints.test_values.Avatar",
        ),
        ({"s": frozenset({Avatar()})}, "context['s'][0]", "checkpoints.test_values.Avatar"),
        ({"level": Level.LOW}, "context['level']", "checkpoints.test_values.Level"),
        ({"name": [Name.ADA]}, "context['name'][0]", "checkpoints.test_values.Name"),
        ({"f": lambda: 0}, "context['f']", "function"),
        (
            {"od": {"k": __import__("collections").OrderedDict()}},
            "context['od']['k']",
            "collections.OrderedDict",
        ),
    ],
)
def test_encode_errors_name_the_path_and_type(context: Any, path: str, type_name: str) -> None:
    """The error gives the Python path, the type and how to fix it."""
    with pytest.raises(CheckpointEncodeError) as info:
        encode_context(context)
    err = info.value
    assert (err.path, err.type_name) == (path, type_name)
    assert str(err).startswith(f"{path}: cannot encode a value of type {type_name}")
    assert "stepkit.register_type" in str(err)
    assert "convert it" in str(err)


def test_unencodable_dict_keys_are_named() -> None:
    """A bad non-str key is reported as a dict key, by repr."""
    with pytest.raises(CheckpointEncodeError, match=r"dict key: cannot encode") as info:
        encode_context({"m": {(1, 2): 0, Level.LOW: 1}})
    assert info.value.path == "context['m'][<Level.LOW: 1>]"


def test_subclasses_of_supported_types_get_a_hint() -> None:
    """An unregistered int/str subclass is refused, not flattened, and the message says why."""
    with pytest.raises(CheckpointEncodeError, match="subclasses of supported types"):
        to_json(Level.LOW)


def test_context_keys_must_be_str_and_not_reserved() -> None:
    """Top-level keys must be str other than '$t'."""
    bad_contexts: list[dict[Any, Any]] = [{1: "x"}, {"$t": "x"}]
    for bad in bad_contexts:
        with pytest.raises(CheckpointEncodeError, match="context keys must be str"):
            encode_context(bad)


def test_to_json_paths_start_at_the_given_prefix() -> None:
    """to_json(path=...) roots the error path where the caller says."""
    with pytest.raises(CheckpointEncodeError) as info:
        to_json([Avatar()], path="context['x']")
    assert info.value.path == "context['x'][0]"


def test_circular_references_fail_cleanly() -> None:
    """A self-containing value is reported as too deeply nested or circular."""
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(CheckpointEncodeError, match="too deeply nested or circular") as info:
        encode_context({"loop": loop})
    assert info.value.path.startswith("context['loop'][0][0]")


def test_nesting_limit_counts_json_levels() -> None:
    """MAX_DEPTH nested lists encode and decode; one more level fails to encode."""
    assert round_trip(nested_lists(MAX_DEPTH)) == nested_lists(MAX_DEPTH)
    with pytest.raises(CheckpointEncodeError, match="too deeply"):
        to_json(nested_lists(MAX_DEPTH + 1))
    with pytest.raises(CheckpointEncodeError, match="too deeply"):
        to_json(Box(nested_lists(MAX_DEPTH)))


WRAPPERS: dict[str, Callable[[Any], Any]] = {
    "list": lambda v: [v],
    "tuple": lambda v: (v,),
    "int-keyed dict": lambda v: {0: v},
    "dataclass": lambda v: Box(v),
}


@given(st.lists(st.sampled_from(sorted(WRAPPERS)), min_size=1, max_size=70))
def test_whatever_encodes_also_decodes(shape: list[str]) -> None:
    """A value within the encoding depth limit decodes, even inside a checkpoint document."""
    value: Any = 1
    for kind in shape:
        value = WRAPPERS[kind](value)
    try:
        data = to_json(value)
    except CheckpointEncodeError:
        return
    document = dumps({"context": {"k": data}})
    assert same(loads(document)["context"]["k"], value)


# ---------------------------------------------------------------- decode errors


BAD_DOCUMENTS = [
    ('{"a":1,"a":2}', "duplicate"),
    ("NaN", "NaN"),
    ('{"x":-Infinity}', "Infinity"),
    ("1" * (MAX_INT_DIGITS + 1), "digits"),
    ('{"a":1', "JSON"),
    ("", "JSON"),
    ('{"a":1} x', "JSON"),
    ('{"$t":"pickle","v":"..."}', "unknown tag"),
    ('{"$t":1,"v":1}', "unknown tag"),
    ('{"$t":"tuple"}', "malformed"),
    ('{"$t":"tuple","v":[],"x":1}', "malformed"),
    ('{"$t":"tuple","v":"ab"}', "malformed"),
    ('{"$t":"float","v":"1.5"}', "malformed"),
    ('{"$t":"float","v":["nan"]}', "malformed"),
    ('{"$t":"datetime","v":"yesterday"}', "malformed"),
    ('{"$t":"datetime","v":20240101}', "malformed"),
    ('{"$t":"datetime","v":"2024-01-01T00:00","tz":"../../etc/passwd"}', "malformed"),
    ('{"$t":"datetime","v":"2024-01-01T00:00","tz":"/etc/localtime"}', "malformed"),
    ('{"$t":"datetime","v":"2024-01-01T00:00","tz":"No/Such_Zone"}', "malformed"),
    ('{"$t":"datetime","v":"2024-01-01T00:00","tz":"zone.tab"}', "malformed"),
    ('{"$t":"datetime","v":"2024-01-01T00:00","tz":"America"}', "malformed"),
    ('{"$t":"datetime","v":"2024-01-01T00:00+01:00","tz":"UTC"}', "malformed"),
    ('{"$t":"datetime","v":"2024-01-01T00:00","tzn":"X"}', "malformed"),
    ('{"$t":"datetime","v":"2024-01-01T00:00","fold":2}', "malformed"),
    ('{"$t":"datetime","v":"2024-01-01T00:00","fold":true}', "malformed"),
    ('{"$t":"time","v":"25:00"}', "malformed"),
    ('{"$t":"date","v":"2024-02-30"}', "malformed"),
    ('{"$t":"timedelta","v":[1,2]}', "malformed"),
    ('{"$t":"timedelta","v":[1,2,true]}', "malformed"),
    ('{"$t":"timedelta","v":[1000000000,0,0]}', "malformed"),
    ('{"$t":"Decimal","v":"one"}', "malformed"),
    ('{"$t":"Decimal","v":1}', "malformed"),
    ('{"$t":"UUID","v":"not-a-uuid"}', "malformed"),
    ('{"$t":"bytes","v":"a"}', "malformed"),
    ('{"$t":"bytes","v":"a!=="}', "malformed"),
    ('{"$t":"bytes","v":"\u00e9"}', "malformed"),
    ('{"$t":"set","v":[[1]]}', "malformed"),
    ('{"$t":"frozenset","v":[{"a":1}]}', "malformed"),
    ('{"$t":"set","v":[{"$t":"Decimal","v":"sNaN"}]}', "malformed"),
    ('{"$t":"dict","v":[[1]]}', "malformed"),
    ('{"$t":"dict","v":[[[1],2]]}', "malformed"),
    ('{"$t":"dict","v":[[1,2],[1,3]]}', "malformed"),
    ('{"$t":"dict","v":{"a":1}}', "malformed"),
    ('{"$t":"type","v":1}', "malformed"),
    ('{"$t":"type","n":7,"v":1}', "malformed"),
    ('{"$t":"type","n":"tests.Point","v":{"x":1,"z":2}}', "tests.Point"),
    ('{"$t":"type","n":"tests.Point","v":[1,2]}', "tests.Point"),
]


@pytest.mark.parametrize(("text", "message"), BAD_DOCUMENTS)
def test_malformed_documents_raise_invalid_checkpoint(text: str, message: str) -> None:
    """Each malformed input is an InvalidCheckpointError that says what is wrong."""
    with pytest.raises(InvalidCheckpointError, match=message):
        loads(text)


@pytest.mark.parametrize(("text", "message"), BAD_DOCUMENTS[7:])
def test_from_json_rejects_the_same_malformed_tags(text: str, message: str) -> None:
    """from_json applies the same tag checks to already-parsed data."""
    with pytest.raises(InvalidCheckpointError, match=message):
        from_json(json.loads(text))


def test_from_json_rejects_non_json_data() -> None:
    """from_json refuses Python objects that JSON cannot produce."""
    for bad in [{1: 2}, (1,), float("nan"), 10**MAX_INT_DIGITS, object()]:
        with pytest.raises(InvalidCheckpointError):
            from_json(bad)


def test_invalid_utf8_is_rejected() -> None:
    """Bytes that are not UTF-8 are an InvalidCheckpointError."""
    with pytest.raises(InvalidCheckpointError, match="UTF-8"):
        loads(b'{"a":"\xff"}')


@pytest.mark.parametrize(
    "text",
    [
        "[" * 60_000,
        '{"a":' * 60_000,
        "[" * 30_000 + "]" * 30_000,
        '{"$t":"tuple","v":' * 30_000,
        "[" * (MAX_DEPTH + 3) + "]" * (MAX_DEPTH + 3),
        "[" * 100_000,
        "[" * 100_000 + "]" * 100_000,
    ],
)
def test_deep_nesting_is_rejected_before_parsing(text: str) -> None:
    """Nesting past the limit is refused by the byte scan, never a RecursionError."""
    with pytest.raises(InvalidCheckpointError, match=r"nested|arrays and objects"):
        loads(text)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    """Only real JSON nesting counts toward the depth limit."""
    text = json.dumps(["[" * 1000, '\\"{' * 500])
    assert loads(text) == ["[" * 1000, '\\"{' * 500]


def test_pathological_string_escapes_are_linear() -> None:
    """Unterminated strings full of escaped quotes are rejected by the scan, not a backtrack."""
    with pytest.raises(InvalidCheckpointError, match="nested"):
        loads("[" * 100 + '"' + '\\"' * 200_000)


@given(st.text())
def test_arbitrary_text_raises_only_invalid_checkpoint(text: str) -> None:
    """Random text either decodes or raises InvalidCheckpointError, nothing else."""
    with contextlib.suppress(InvalidCheckpointError):
        loads(text)


@given(st.binary())
def test_arbitrary_bytes_raise_only_invalid_checkpoint(data: bytes) -> None:
    """Random bytes either decode or raise InvalidCheckpointError, nothing else."""
    with contextlib.suppress(InvalidCheckpointError):
        loads(data)


TAGS = ["float", "datetime", "time", "date", "timedelta", "Decimal", "UUID", "bytes"]
TAGS += ["bytearray", "tuple", "set", "frozenset", "dict", "type", "nope"]
_fuzz_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["nan", "2024-01-01T00:00", "UTC", "tests.Color", "tests.Point", "AA=="]),
)
_fuzz_json = st.recursive(
    _fuzz_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["$t", "v", "n", "tz", "tzn", "fold", "x"]), inner, max_size=4
        ),
        st.fixed_dictionaries(
            {"$t": st.sampled_from(TAGS), "v": inner},
            optional={"n": inner, "tz": inner, "fold": inner},
        ),
    ),
    max_leaves=10,
)


@settings(max_examples=500)
@given(_fuzz_json)
def test_tag_shaped_garbage_raises_only_invalid_checkpoint(data: Any) -> None:
    """Random near-miss tagged values decode or raise InvalidCheckpointError, nothing else."""
    with contextlib.suppress(InvalidCheckpointError):
        loads(json.dumps(data))
    with contextlib.suppress(InvalidCheckpointError):
        from_json(data)


def test_the_native_types_are_the_ones_the_encoder_handles() -> None:
    """is_native (used by register_type) names exactly the types the encoder writes itself."""
    from stepkit.checkpoints._encode import _ENCODERS
    from stepkit.checkpoints._tags import NATIVE, PLAIN

    assert set(_ENCODERS) | PLAIN | {int, float, list, dict} == NATIVE
