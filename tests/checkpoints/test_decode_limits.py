"""Decoding limits (SPEC §2.4 "Limits"): hash floods, memory, and encoder/decoder symmetry.

Nothing here measures time: the work a decode does is counted (equality calls, bytes
allocated), or the input is refused before the work starts.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import tracemalloc
import zlib
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import contexts, same

from stepkit import (
    CheckpointEncodeError,
    InvalidCheckpointError,
    Pipeline,
    decode_checkpoint,
)
from stepkit.checkpoints._decode import from_json, loads
from stepkit.checkpoints._document import Meta, _iso, encode_checkpoint
from stepkit.checkpoints._encode import dumps, to_json
from stepkit.checkpoints._limits import (
    MAX_CONTAINERS,
    MAX_DOCUMENT,
    MAX_SAME_HASH,
    MAX_SIZE,
    MAX_VALUES,
)
from stepkit.checkpoints._registry import TypeRegistry

P = 2**61 - 1  # hash(k * P) == 0 for every int k
SLOW_OK = settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])


def document(context: Any, **fields: Any) -> dict[str, Any]:
    doc = {
        "format": 1,
        "pipeline": "p",
        "version": None,
        "fingerprint": "f",
        "run_id": "r",
        "created_at": "2026-01-01T00:00:00+00:00",
        "expires_at": None,
        "step": None,
        "position": None,
        "context": context,
    }
    return {**doc, **fields}


def checkpoint(doc: dict[str, Any] | bytes, compress: bool = False) -> str:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    if compress:
        raw = b"\x01\x01" + zlib.compress(raw, 9)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def meta() -> Meta:
    return Meta("p", None, "f", "r")


# ---------------------------------------------------------------- hash floods (issue 8, #3)


class TestHashFloods:
    def test_a_set_of_colliding_ints_in_a_megabyte_checkpoint_is_refused(self) -> None:
        """70,000 ints that share one hash, in a set of a 1 MiB checkpoint, are refused."""
        members = ",".join(str(k * P) for k in range(1, 70_001))
        raw = (
            json.dumps(document({"s": "SET"}))
            .encode()
            .replace(b'"SET"', b'{"$t":"set","v":[' + members.encode() + b"]}")
        )
        cp = checkpoint(raw, compress=True)
        assert len(cp) <= MAX_SIZE
        with pytest.raises(InvalidCheckpointError, match="share one hash value"):
            decode_checkpoint(cp)

    @pytest.mark.parametrize(
        "tagged",
        [
            {"$t": "set", "v": [k * P for k in range(1, 100)]},
            {"$t": "frozenset", "v": [k * P for k in range(1, 100)]},
            {"$t": "dict", "v": [[k * P, 0] for k in range(1, 100)]},
            {"$t": "set", "v": [{"$t": "Decimal", "v": str(k * P)} for k in range(1, 100)]},
            {"$t": "set", "v": [{"$t": "tuple", "v": [k * P]} for k in range(1, 100)]},
            {"$t": "set", "v": [{"$t": "UUID", "v": f"{k * P:032x}"} for k in range(1, 100)]},
        ],
        ids=["set", "frozenset", "dict keys", "Decimals", "tuples", "UUIDs"],
    )
    def test_colliding_members_are_refused(self, tagged: dict[str, Any]) -> None:
        """Sets, frozensets and dicts whose members collide are refused, loaded or parsed."""
        with pytest.raises(InvalidCheckpointError, match="share one hash value"):
            loads(json.dumps(tagged))
        with pytest.raises(InvalidCheckpointError, match="share one hash value"):
            from_json(tagged)

    def test_colliding_members_are_never_compared(self) -> None:
        """Members with one hash are refused before a set compares any two of them."""
        registry = TypeRegistry()
        calls = []

        class Flood:
            def __init__(self, n: int) -> None:
                self.n = n

            def __hash__(self) -> int:
                return 0

            def __eq__(self, other: object) -> bool:
                calls.append(other)
                return False

        registry.register(Flood, name="Flood", encode=lambda f: f.n, decode=Flood)
        members = [{"$t": "type", "n": "Flood", "v": n} for n in range(500)]
        with pytest.raises(InvalidCheckpointError, match="share one hash value"):
            loads(json.dumps({"$t": "set", "v": members}), registry=registry)
        assert calls == []

    def test_a_few_collisions_are_fine(self) -> None:
        """Up to MAX_SAME_HASH members may share a hash, as -1 and -2 do."""
        value = {k * P for k in range(MAX_SAME_HASH)} | {-1, -2}
        assert loads(dumps(to_json(value))) == value
        assert from_json(to_json({-1: "a", -2: "b"})) == {-1: "a", -2: "b"}

    def test_the_encoder_refuses_what_the_decoder_would(self) -> None:
        """A set of colliding ints is an encode error naming its path, never a checkpoint."""
        flood = {k * P for k in range(MAX_SAME_HASH + 1)}
        for value, where in [
            (flood, "context['ids']"),
            (frozenset(flood), "context['ids']"),
            ({k: 1 for k in flood}, "context['ids']"),
            ([1, {"deep": flood}], "context['ids'][1]['deep']"),
        ]:
            with pytest.raises(CheckpointEncodeError, match="share one hash value") as info:
                encode_checkpoint(meta(), None, None, {"ids": value})
            assert info.value.path == where

    def test_duplicate_set_members_are_refused(self) -> None:
        """A set the encoder could not have written (members that are equal) is refused."""
        for text in ['{"$t":"set","v":[1,1]}', '{"$t":"frozenset","v":[1,true]}']:
            with pytest.raises(InvalidCheckpointError, match="duplicate members"):
                loads(text)


# ---------------------------------------------------------------- memory (issue 8, #4)


def _peak(fn: Any) -> int:
    tracemalloc.start()
    try:
        with contextlib.suppress(InvalidCheckpointError):
            fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


class TestMemory:
    @pytest.mark.parametrize(
        "item",
        [b"[]", b"{}", b"0.5", b'"ab"', b'{"$t":"set","v":[]}'],
        ids=["lists", "objects", "floats", "strings", "sets"],
    )
    def test_a_small_compressed_checkpoint_cannot_allocate_much(self, item: bytes) -> None:
        """A ~16 KB checkpoint inflating to 8 MiB of tiny values allocates a few MiB at most."""
        count = (MAX_DOCUMENT - 400) // (len(item) + 1)
        raw = json.dumps(document({"a": "ITEMS"})).encode()
        raw = raw.replace(b'"ITEMS"', b"[" + b",".join([item] * count) + b"]")
        assert len(raw) <= MAX_DOCUMENT
        cp = checkpoint(raw, compress=True)
        assert len(cp) < 40_000
        with pytest.raises(InvalidCheckpointError, match="limit"):
            decode_checkpoint(cp)
        assert _peak(lambda: decode_checkpoint(cp)) < 4 * MAX_DOCUMENT

    def test_what_is_accepted_takes_a_bounded_multiple_of_the_limit(self) -> None:
        """At the limits, a decode allocates at most a small multiple of MAX_DOCUMENT."""
        sets = ",".join(['{"$t":"set","v":[]}'] * (MAX_CONTAINERS // 2 - 10))
        strings = ",".join(['"ab"'] * (MAX_VALUES - 2 * MAX_CONTAINERS))
        raw = json.dumps(document({"a": "SETS", "b": "STRINGS"})).encode()
        raw = raw.replace(b'"SETS"', b"[" + sets.encode() + b"]")
        raw = raw.replace(b'"STRINGS"', b"[" + strings.encode() + b"]")
        cp = checkpoint(raw, compress=True)
        assert len(decode_checkpoint(cp).context["a"]) == MAX_CONTAINERS // 2 - 10
        assert _peak(lambda: decode_checkpoint(cp)) < 8 * MAX_DOCUMENT


# ---------------------------------------------------------------- symmetry (issue 8, #7)


class TestEncoderRefusesWhatTheDecoderWould:
    def test_a_document_over_the_size_limit(self) -> None:
        """A context over the decompressed-size limit is an encode error naming its key."""
        with pytest.raises(CheckpointEncodeError, match="more than the limit") as info:
            encode_checkpoint(meta(), None, None, {"small": 1, "blob": "x" * MAX_DOCUMENT})
        assert info.value.path == "context['blob']"

    def test_a_checkpoint_over_the_text_limit(self) -> None:
        """An incompressible context over the checkpoint-text limit is an encode error."""
        noise = os.urandom(MAX_SIZE * 3 // 4)
        with pytest.raises(CheckpointEncodeError, match="characters long") as info:
            encode_checkpoint(meta(), None, None, {"noise": noise, "n": 1})
        assert info.value.path == "context['noise']"

    def test_too_many_containers(self) -> None:
        """A context of more arrays and objects than a decode may build is refused."""
        with pytest.raises(CheckpointEncodeError, match="arrays and objects") as info:
            encode_checkpoint(meta(), None, None, {"rows": [[]] * (MAX_CONTAINERS + 1)})
        assert info.value.path == "context['rows']"

    def test_too_many_values(self) -> None:
        """A context of more values than a decode may build is refused."""
        with pytest.raises(CheckpointEncodeError, match="JSON values") as info:
            encode_checkpoint(meta(), None, None, {"ids": list(range(MAX_VALUES))})
        assert info.value.path == "context['ids']"

    def test_a_lone_surrogate(self) -> None:
        """A str with a lone surrogate is an encode error naming its key."""
        with pytest.raises(CheckpointEncodeError, match="surrogate") as info:
            encode_checkpoint(meta(), None, None, {"ok": "é", "bad": ["x\ud800"]})
        assert info.value.path == "context['bad']"

    def test_just_under_the_limits_round_trips(self) -> None:
        """What the encoder accepts at its limits, the decoder accepts too."""
        context = {"rows": [[]] * (MAX_CONTAINERS - 10), "blob": "x" * (MAX_DOCUMENT // 2)}
        cp = encode_checkpoint(meta(), None, None, context)
        assert decode_checkpoint(cp).context == context


class TestDecoderRefusesWhatTheEncoderNeverWrites:
    @pytest.mark.parametrize(
        "text",
        [
            r'"\ud800"',
            r'"a\udfffb"',
            r'["\ud83d"]',
            r'{"\udc00":1}',
            r'"\ude00\ud83d"',
            r'"\\\ud800"',
        ],
    )
    def test_lone_surrogates(self, text: str) -> None:
        """An escaped lone surrogate, in a value or a key, is an InvalidCheckpointError."""
        with pytest.raises(InvalidCheckpointError, match="surrogate"):
            loads(text)
        with pytest.raises(InvalidCheckpointError, match="surrogate"):
            from_json(json.loads(text))

    def test_escaped_surrogate_pairs_and_backslashes_are_fine(self) -> None:
        """A correctly escaped pair is one character; an escaped backslash is not an escape."""
        assert loads(r'"\ud83d\ude00"') == "\U0001f600"
        assert loads(r'"\\ud800"') == "\\ud800"

    @pytest.mark.parametrize("text", ["1e999", "-1E+400", "[0.5e309]", "1" + "0" * 400 + ".0"])
    def test_numbers_too_large_for_a_float(self, text: str) -> None:
        """A JSON number that overflows to infinity is refused; the encoder tags infinity."""
        with pytest.raises(InvalidCheckpointError, match="too large for a float"):
            loads(text)

    def test_large_finite_numbers_are_fine(self) -> None:
        """Numbers that only look large still decode."""
        assert loads("[1e308, 1e-400, 1.5e+300]") == [1e308, 0.0, 1.5e300]

    def test_a_tagged_value_in_a_header_field(self) -> None:
        """Header fields are plain JSON: a tagged value there is refused, sNaN included."""
        snan = {"$t": "Decimal", "v": "sNaN"}
        for field in ["format", "pipeline", "run_id", "created_at", "step", "fingerprint"]:
            with pytest.raises(InvalidCheckpointError, match=field):
                decode_checkpoint(checkpoint(document({}, **{field: snan})))
        with pytest.raises(InvalidCheckpointError, match="format"):
            decode_checkpoint(checkpoint(document({}, format=True)))

    def test_context_nested_deeper_than_the_encoder_writes(self) -> None:
        """A context value one level deeper than the encoder allows is refused by the decoder."""
        value: Any = 0
        for _ in range(64):
            value = [value]
        assert decode_checkpoint(checkpoint(document({"v": value}))).context["v"] == value
        with pytest.raises(InvalidCheckpointError, match="nested"):
            decode_checkpoint(checkpoint(document({"v": [value]})))


# ---------------------------------------------------------------- sNaN (issue 8, #8)


def test_signaling_nans_round_trip_and_never_raise_invalid_operation() -> None:
    """Decimal('sNaN') encodes and decodes; where it cannot be, a CheckpointError says so."""
    context = {"d": Decimal("sNaN"), "e": [Decimal("-sNaN7")], "t": (Decimal("sNaN"),)}
    cp = encode_checkpoint(meta(), None, None, context)
    assert same(decode_checkpoint(cp).context, context)
    for bad in [
        {"$t": "float", "v": {"$t": "Decimal", "v": "sNaN"}},
        {"$t": "set", "v": [{"$t": "Decimal", "v": "sNaN"}]},
        {"$t": "dict", "v": [[{"$t": "Decimal", "v": "sNaN"}, 1]]},
        {"$t": "datetime", "v": "2024-01-01T00:00", "fold": {"$t": "Decimal", "v": "sNaN"}},
    ]:
        with pytest.raises(InvalidCheckpointError):
            decode_checkpoint(checkpoint(document({"x": bad})))


# ---------------------------------------------------------------- the properties


@SLOW_OK
@given(contexts())
def test_every_checkpoint_the_encoder_writes_decodes(context: dict[str, Any]) -> None:
    """encode_checkpoint either raises CheckpointEncodeError or writes what decodes exactly."""
    try:
        cp = encode_checkpoint(meta(), {"done": "x"}, "x", context)
    except CheckpointEncodeError:
        return
    assert same(decode_checkpoint(cp).context, context)


# raw JSON tokens spliced into generated documents: what json.dumps would never write
RAW_TOKENS = [
    r'"\ud800"',
    r'"a\udfff"',
    r'"\ud83d\ude00"',
    "1e999",
    "-1e400",
    "1e308",
    "1" * 4301,
    "NaN",
    *(str(k * P) for k in range(1, 4)),
]
_raw_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=6),
        st.sampled_from(range(len(RAW_TOKENS))).map(lambda i: f"\x00{i}\x00"),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=3), inner, max_size=3),
        st.fixed_dictionaries(
            {
                "$t": st.sampled_from(["float", "Decimal", "tuple", "set", "dict", "bytes"]),
                "v": inner,
            }
        ),
    ),
    max_leaves=12,
)


def _text_with_raw_tokens(data: Any) -> str:
    """``data`` as JSON text, its placeholder strings replaced by raw tokens."""
    text = json.dumps(data)
    for i, token in enumerate(RAW_TOKENS):
        text = text.replace(f'"\\u0000{i}\\u0000"', token)
    return text


@SLOW_OK
@given(_raw_json)
def test_every_value_the_decoder_accepts_encodes_again(data: Any) -> None:
    """What loads accepts, a checkpoint holds again, and it decodes to the same value."""
    try:
        value = loads(_text_with_raw_tokens(data))
    except InvalidCheckpointError:
        return
    cp = encode_checkpoint(meta(), None, None, {"v": value})  # never raises for it
    assert same(decode_checkpoint(cp).context["v"], value)
    assert same(from_json(json.loads(dumps(to_json(value)))), value)


def test_a_context_that_decodes_also_resumes() -> None:
    """A pipeline resumes every checkpoint that decode_checkpoint accepts (the same limits)."""
    pipeline = Pipeline("p").step("a", lambda ctx: {"done": True})
    cp = pipeline.run({"rows": [[]] * (MAX_CONTAINERS - 100)}).checkpoint
    assert decode_checkpoint(cp).context["done"] is True
    assert pipeline.run_checkpoint(cp)["done"] is True


@given(
    st.one_of(
        st.floats(min_value=0, max_value=2**34, allow_nan=False),
        st.integers(0, 2**34).map(lambda s: s + 0.5e-6),
        st.integers(0, 2**34).map(lambda s: s + 0.9999995),
        st.integers(0, 2**34).map(float),
    )
)
def test_checkpoint_times_are_written_as_datetime_would(ts: float) -> None:
    """The cheap timestamp formatter writes what datetime.isoformat() writes, to the microsecond."""
    expected = dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat()
    assert _iso(ts) == expected
    assert (
        dt.datetime.fromisoformat(_iso(ts)).timestamp()
        == dt.datetime.fromisoformat(expected).timestamp()
    )


def test_the_header_is_serialised_once_per_run() -> None:
    """Meta holds the document's fixed header; a checkpoint starts with it, field order kept."""
    m = Meta("p\u00e9", "2", "fp", "run-1", ttl=60)
    cp = encode_checkpoint(m, {"done": "a"}, "a", {"x": 1})
    text = base64.urlsafe_b64decode(cp + "=" * (-len(cp) % 4)).decode()
    assert text.startswith(m.prefix)
    assert list(json.loads(text)) == [
        *("format", "pipeline", "version", "fingerprint", "run_id", "created_at"),
        *("expires_at", "step", "position", "context"),
    ]
