"""Checkpoints are untrusted input (SPEC §2.4, §2.5, §7): fuzz decoding and resuming.

Whatever string (or non-string) is passed, ``decode_checkpoint`` and
``run_checkpoint`` either succeed or raise a ``CheckpointError`` subclass,
never a bare ``KeyError``/``TypeError``/``StopIteration``/... and never after
running a step.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepkit import (
    CheckpointError,
    CheckpointExpiredError,
    CheckpointMismatchError,
    CheckpointSignatureError,
    InvalidCheckpointError,
    Pipeline,
    decode_checkpoint,
)

FIXTURE_OK = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
)
SECRET = "fuzz-secret-0123456789abcdef"


# -- the pipeline under test ----------------------------------------------------


class Subject:
    """A pipeline with nested, branch and parallel steps whose step calls are counted.

    Its steps ignore the values in the context, so that any context a mutated
    checkpoint brings in runs to the end without a step failing.
    """

    def __init__(self, name: str = "fuzz", **options: Any) -> None:
        self.calls: Counter[str] = Counter()
        fn = self._fn
        inner = Pipeline("inner").step("i1", fn("i1")).step("i2", fn("i2"))
        odd = Pipeline("odd").step("o1", fn("o1")).step("o2", fn("o2"))
        left = Pipeline("left").step("l1", fn("l1")).step("l2", fn("l2"))
        right = Pipeline("right").step("r1", fn("r1"))
        self.pipeline = (
            Pipeline(name, compress_threshold=None, **options)
            .step("first", fn("first"))
            .step("nest", inner)
            .branch(
                "route",
                on=lambda ctx: "odd" if ctx.get("n") == 1 else "even",
                cases={"odd": odd, "even": fn("e1")},
            )
            .step("par", left, fn("pf"), right)
            .transform("shape", self._transform)
            .step("last", fn("last"))
        )

    def _fn(self, name: str):
        def step(ctx: Mapping[str, Any]) -> dict[str, Any]:
            self.calls[name] += 1
            return {name: len(self.calls)}

        step.__name__ = name
        return step

    def _transform(self, ctx: Mapping[str, Any]) -> dict[str, Any]:
        self.calls["shape"] += 1
        return {**ctx, "shaped": True}

    def checkpoints(self, n: int) -> dict[str, str]:
        """The checkpoint of every event of a run with input ``{"n": n}``.

        Through arun(), whose order of parallel items is fixed, so that the
        checkpoints (and the examples drawn from them) are the same every time.
        """
        out: dict[str, str] = {}

        def keep(event: Any) -> None:
            out[event.step_name] = event.checkpoint

        asyncio.run(self.pipeline.arun({"n": n}, on_step_complete=keep))
        self.calls.clear()
        return out


SUBJECT = Subject()
CHECKPOINTS = {**SUBJECT.checkpoints(0), **SUBJECT.checkpoints(1)}
STEP_PATHS = SUBJECT.pipeline.step_paths()
SEGMENTS = sorted({part for path in STEP_PATHS for part in path.split("/")})


def to_doc(checkpoint: str) -> Any:
    """The JSON document of a plain (unsigned, uncompressed) checkpoint."""
    return json.loads(base64.urlsafe_b64decode(checkpoint + "=" * (-len(checkpoint) % 4)))


def to_checkpoint(doc: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


def test_the_subject_pipeline_has_every_kind_of_position():
    """The fuzzed checkpoints include positions inside nests, both cases and parallel items."""
    assert len(CHECKPOINTS) == 15  # par/pf: a parallel function item fires its own event
    assert {"nest/i1", "route/odd/o1", "route/even/e1", "par/l1", "par/r1"} <= set(CHECKPOINTS)
    assert to_doc(CHECKPOINTS["route/odd/o1"])["position"] == {
        "at": "route",
        "case": "odd",
        "in": {"done": "o1"},
    }
    par = to_doc(CHECKPOINTS["par/r1"])["position"]
    assert par["at"] == "par"
    assert [item is not None and "out" in item for item in par["items"]] == [True, True, False]


# -- strategies --------------------------------------------------------------------

TAGS = [
    "float",
    "datetime",
    "time",
    "date",
    "timedelta",
    "Decimal",
    "UUID",
    "bytes",
    "bytearray",
    "tuple",
    "set",
    "frozenset",
    "dict",
    "type",
    "nope",
]
POSITION_KEYS = ["done", "at", "in", "case", "items", "out", "set", "del"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
    st.sampled_from([*SEGMENTS, "odd", "even", "default", "nope", ""]),
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(POSITION_KEYS) | st.text(max_size=5), children, max_size=4),
        st.fixed_dictionaries({"$t": st.sampled_from(TAGS), "v": children}),
    )


json_values = st.recursive(scalars, _containers, max_leaves=12)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (sequence of keys and indices) into ``doc``, the root excluded."""
    out: list[tuple[Any, ...]] = []
    items = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    )
    for key, value in items:
        out.append((*prefix, key))
        out += _paths(value, (*prefix, key))
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _retype(value: Any) -> list[Any]:
    """Values of other types that stand for ``value``."""
    return [None, 0, -1, 1.5, True, "", str(value), [value], {"v": value}, [], {}]


@st.composite
def mutated_documents(draw: st.DrawFn) -> tuple[str, Any]:
    """A real checkpoint's document with 1-3 random mutations at any depth."""
    step = draw(st.sampled_from(sorted(CHECKPOINTS)), label="checkpoint of")
    doc = to_doc(CHECKPOINTS[step])
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        ops = ["delete", "replace", "retype", "rename", "items", "progress", "position"]
        op = draw(st.sampled_from(ops))
        if op == "position":
            doc["position"] = draw(json_values)
            continue
        if op == "progress":  # a parallel item's saved progress
            saved = [p for p in paths if len(p) > 1 and p[-2] == "items"]
            saved = [p for p in saved if isinstance(_get(doc, p), dict)]
            if not saved:
                continue
            progress = _get(doc, draw(st.sampled_from(saved)))
            key = draw(st.sampled_from(["out", "set", "del", "in"]))
            if key == "del" and isinstance(progress.get("del"), list):
                progress["del"].append(draw(json_values))
            else:
                progress[key] = draw(json_values)
            continue
        if op == "items":
            lists = [p for p in paths if p[-1] == "items" and isinstance(_get(doc, p), list)]
            if not lists:
                continue
            items = _get(doc, draw(st.sampled_from(lists)))
            how = draw(st.sampled_from(["append", "pop", "duplicate", "clear"]))
            if how == "append":
                items.append(draw(json_values))
            elif how == "pop" and items:
                items.pop(draw(st.integers(0, len(items) - 1)))
            elif how == "duplicate" and items:
                items.append(copy.deepcopy(items[0]))
            else:
                items.clear()
            continue
        if op == "rename":
            paths = [p for p in paths if isinstance(_get(doc, p), str)]
        in_position = [p for p in paths if p[0] == "position"]
        if in_position and draw(st.booleans(), label="inside the position"):
            paths = in_position
        if not paths:
            continue
        path = draw(st.sampled_from(paths))
        parent, key = _get(doc, path[:-1]), path[-1]
        if op == "delete":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(json_values)
        elif op == "retype":
            parent[key] = draw(st.sampled_from(_retype(parent[key])))
        else:
            parent[key] = draw(st.sampled_from([*SEGMENTS, "nope", "par/l1", "", "/"]))
    return step, doc


# -- properties ----------------------------------------------------------------


def _only_checkpoint_errors(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except CheckpointError:
        return None


@given(text=st.text(max_size=200))
def test_arbitrary_text_decodes_or_raises_a_checkpoint_error(text):
    """decode_checkpoint of any text: a Checkpoint, or a CheckpointError, nothing else."""
    _only_checkpoint_errors(decode_checkpoint, text)


@given(
    text=st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=", max_size=200
    )
)
def test_base64_looking_text_decodes_or_raises_a_checkpoint_error(text):
    """decode_checkpoint of base64-alphabet text raises only CheckpointError subclasses."""
    _only_checkpoint_errors(decode_checkpoint, text)


@given(raw=st.binary(max_size=300) | st.binary(max_size=300).map(lambda b: b"\x01" + b))
def test_base64_of_arbitrary_bytes_decodes_or_raises_a_checkpoint_error(raw):
    """decode_checkpoint of base64 of any bytes (envelope headers too): only CheckpointError."""
    _only_checkpoint_errors(decode_checkpoint, base64.urlsafe_b64encode(raw).decode())


@given(doc=json_values)
def test_base64_of_arbitrary_json_decodes_or_raises_a_checkpoint_error(doc):
    """decode_checkpoint of base64 of any JSON value raises only CheckpointError subclasses."""
    _only_checkpoint_errors(decode_checkpoint, to_checkpoint(doc))


@FIXTURE_OK
@given(text=st.text(max_size=200) | json_values.map(to_checkpoint))
def test_arbitrary_text_never_resumes_anything(runner, text):
    """run_checkpoint of any text or JSON raises a CheckpointError and runs no step."""
    subject = Subject()
    with pytest.raises(CheckpointError):
        runner.resume(subject.pipeline, text)
    assert not subject.calls


@pytest.mark.parametrize(
    "value",
    [
        None,
        5,
        1.5,
        True,
        b"eyJ9",
        bytearray(b"eyJ9"),
        memoryview(b"eyJ9"),
        ["x"],
        {"a": 1},
        object(),
    ],
    ids=lambda v: type(v).__name__,
)
def test_non_str_checkpoints_are_invalid(runner, value):
    """A checkpoint that is not a str is an InvalidCheckpointError, for decoding and resuming."""
    with pytest.raises(InvalidCheckpointError, match="a checkpoint is a str"):
        decode_checkpoint(value)
    subject = Subject()
    with pytest.raises(InvalidCheckpointError):
        runner.resume(subject.pipeline, value)
    assert not subject.calls


@FIXTURE_OK
@given(mutated=mutated_documents())
def test_mutated_checkpoints_resume_or_raise_a_checkpoint_error(runner, mutated):
    """A real checkpoint with random changes resumes, or raises CheckpointError before any step."""
    _step, doc = mutated
    subject = Subject()
    checkpoint = to_checkpoint(doc)
    try:
        decoded = decode_checkpoint(checkpoint)
    except CheckpointError:
        decoded = None
    try:
        result = runner.resume(subject.pipeline, checkpoint)
    except CheckpointError:
        assert not subject.calls, "a step ran before the checkpoint was rejected"
        return
    assert decoded is not None, "run_checkpoint accepted what decode_checkpoint rejects"
    assert result.status == "completed"
    assert all(isinstance(key, str) for key in result)
    # what a resumed run hands out is a valid checkpoint again
    assert decode_checkpoint(result.checkpoint).pipeline == "fuzz"


@FIXTURE_OK
@given(mutated=mutated_documents(), secret=st.sampled_from([SECRET, [SECRET, SECRET + "-old"]]))
def test_mutated_checkpoints_are_refused_by_a_signing_pipeline(runner, mutated, secret):
    """A pipeline with a secret refuses every unsigned checkpoint, mutated or not."""
    _step, doc = mutated
    subject = Subject(secret=secret)
    with pytest.raises(CheckpointError) as info:
        runner.resume(subject.pipeline, to_checkpoint(doc))
    assert isinstance(info.value, (CheckpointSignatureError, InvalidCheckpointError))
    assert not subject.calls


# -- specific malformed inputs, with the exact error ---------------------------------

VALID = CHECKPOINTS["nest/i1"]


def _doc_with(**changes: Any) -> str:
    doc = to_doc(VALID)
    for key, value in changes.items():
        if value is _MISSING:
            del doc[key]
        else:
            doc[key] = value
    return to_checkpoint(doc)


_MISSING = object()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


INVALID, MISMATCH = InvalidCheckpointError, CheckpointMismatchError


def _pos(position: Any) -> str:
    return _doc_with(position=position)


def _par(*items: Any) -> str:
    return _pos({"at": "par", "items": list(items)})


TABLE: list[tuple[str, Any, type[CheckpointError], str]] = [
    # -- not a checkpoint string
    ("empty", "", INVALID, "empty"),
    ("not base64", "not base64!", INVALID, "not base64"),
    ("whitespace", VALID[:20] + " " + VALID[20:], INVALID, "not base64"),
    ("truncated", VALID[: len(VALID) // 8 * 4], INVALID, "JSON"),
    ("length 4n+1", "abcde", INVALID, "length"),
    ("too long", "A" * (2 << 20), INVALID, "limit"),
    ("base64 of text", _b64(b"hello world"), INVALID, "envelope"),
    ("JSON array in an envelope", _b64(b"\x01\x00[1, 2]"), INVALID, "flags"),
    # -- not a JSON object
    ("base64 of bad JSON", _b64(b"{not json"), INVALID, "JSON"),
    ("base64 of a JSON array", _b64(b"[1, 2]"), INVALID, "envelope"),
    ("JSON string", _b64(b'"x"'), INVALID, "envelope"),
    ("trailing garbage", _b64(json.dumps(to_doc(VALID)).encode() + b"x"), INVALID, "JSON"),
    ("duplicate key", _b64(b'{"format":1,"format":1}'), INVALID, "duplicate"),
    ("NaN", _b64(b'{"format":NaN}'), INVALID, "NaN"),
    ("not UTF-8", _b64(b'{"format":"\xff"}'), INVALID, "UTF-8"),
    ("too deep", _b64(b'{"context":{"a":' + b"[" * 200 + b"]" * 200 + b"}}"), INVALID, "deeper"),
    # -- wrong fields
    ("format 2", _doc_with(format=2), INVALID, "format"),
    ("format '1'", _doc_with(format="1"), INVALID, "format"),
    ("no format", _doc_with(format=_MISSING), INVALID, "format"),
    ("no pipeline", _doc_with(pipeline=_MISSING), INVALID, "'pipeline'"),
    ("no run_id", _doc_with(run_id=_MISSING), INVALID, "'run_id'"),
    ("no fingerprint", _doc_with(fingerprint=_MISSING), INVALID, "'fingerprint'"),
    ("no created_at", _doc_with(created_at=_MISSING), INVALID, "'created_at'"),
    ("no context", _doc_with(context=_MISSING), INVALID, "context"),
    ("created_at not ISO", _doc_with(created_at="yesterday"), INVALID, "ISO"),
    ("created_at naive", _doc_with(created_at="2024-01-01T00:00:00"), INVALID, "zone"),
    ("step not a str", _doc_with(step=5), INVALID, "'step'"),
    ("version not a str", _doc_with(version=3), INVALID, "'version'"),
    ("context a list", _doc_with(context=[1]), INVALID, "context"),
    ("context a str", _doc_with(context="x"), INVALID, "context"),
    ("context null", _doc_with(context=None), INVALID, "context"),
    ("context a tagged set", _doc_with(context={"$t": "set", "v": [1]}), INVALID, "context"),
    ("context int keys", _doc_with(context={"$t": "dict", "v": [[1, 2]]}), INVALID, "context"),
    ("unknown tag", _doc_with(context={"a": {"$t": "pickle", "v": "x"}}), INVALID, "tag"),
    ("bad tagged value", _doc_with(context={"a": {"$t": "date", "v": "x"}}), INVALID, "date"),
    (
        "unregistered type",
        _doc_with(context={"a": {"$t": "type", "n": "os.system", "v": 1}}),
        INVALID,
        "registered",
    ),
    # -- malformed positions
    ("position a str", _pos("nest"), INVALID, "position"),
    ("position a list", _pos(["nest"]), INVALID, "position"),
    ("position step a number", _pos({"done": 5}), INVALID, "position"),
    ("position without a step", _pos({"in": None}), INVALID, "position"),
    ("nested position a str", _pos({"at": "nest", "in": "i1"}), INVALID, "nest/"),
    ("parallel progress a str", _par("x", None, None), INVALID, "par"),
    ("parallel out a list", _par({"out": []}, None, None), INVALID, "par"),
    ("parallel del a dict", _par({"out": {}, "del": {}}, None, None), INVALID, "par"),
    ("function item in progress", _par(None, {"in": None}, None), INVALID, "par"),
    # -- positions this pipeline does not have
    ("another pipeline", _doc_with(pipeline="other"), MISMATCH, "'other'"),
    ("unknown top step", _pos({"done": "gone"}), MISMATCH, "'gone'"),
    ("unknown nested step", _pos({"at": "nest", "in": {"done": "gone"}}), MISMATCH, "'nest/gone'"),
    ("unknown case", _pos({"at": "route", "case": "gone", "in": None}), MISMATCH, "'gone'"),
    (
        "unknown step in case",
        _pos({"at": "route", "case": "odd", "in": {"done": "gone"}}),
        MISMATCH,
        "'route/odd/gone'",
    ),
    ("inside a plain step", _pos({"at": "first", "in": None}), MISMATCH, "'first'"),
    ("inside a transform", _pos({"at": "shape", "in": None}), MISMATCH, "'shape'"),
    ("too few items", _par(None, None), MISMATCH, "'par'"),
    ("too many items", _par(None, None, None, None), MISMATCH, "'par'"),
    ("items not a list", _pos({"at": "par", "items": {"0": None}}), MISMATCH, "'par'"),
    ("unknown step in item", _par({"in": {"done": "gone"}}, None, None), MISMATCH, "'par/gone'"),
    # -- expired
    (
        "expired",
        _doc_with(expires_at="2000-01-01T00:00:00+00:00"),
        CheckpointExpiredError,
        "expired",
    ),
]


@pytest.mark.parametrize(
    ("checkpoint", "error", "match"), [row[1:] for row in TABLE], ids=[row[0] for row in TABLE]
)
def test_malformed_checkpoint_raises_the_exact_error(runner, checkpoint, error, match):
    """Each malformed checkpoint raises its own CheckpointError subclass and runs nothing."""
    subject = Subject()
    with pytest.raises(error, match=match) as info:
        runner.resume(subject.pipeline, checkpoint)
    assert type(info.value) is error
    if error is InvalidCheckpointError:
        assert isinstance(info.value, ValueError)
    assert not subject.calls


def test_unknown_step_path_names_the_path_and_the_current_steps(runner):
    """A top-level step gone: CheckpointMismatchError naming it and every step path now."""
    renamed = (
        Pipeline("fuzz")
        .step("first-new", lambda ctx: None)
        .step("nest", Pipeline("inner").step("i1", lambda ctx: None))
    )
    with pytest.raises(CheckpointMismatchError) as info:
        runner.resume(renamed, CHECKPOINTS["first"])
    message = str(info.value)
    assert "'first'" in message
    assert "'fuzz'" in message
    assert "first-new, nest/i1, nest" in message


def test_unknown_nested_step_path_names_the_path_and_the_current_steps(runner):
    """A nested step gone from the pipeline: the message names it and every full step path now."""
    renamed = (
        Pipeline("fuzz")
        .step("first", lambda ctx: None)
        .step("nest", Pipeline("inner").step("i1-new", lambda ctx: None))
    )
    with pytest.raises(CheckpointMismatchError) as info:
        runner.resume(renamed, CHECKPOINTS["nest/i2"])
    message = str(info.value)
    assert "'nest/i2'" in message
    assert "'fuzz'" in message
    assert "first, nest/i1-new, nest" in message


def test_checkpoint_of_another_pipeline_is_a_mismatch(runner):
    """A valid checkpoint of another pipeline is a CheckpointMismatchError naming both."""
    other = Subject("other")
    with pytest.raises(CheckpointMismatchError, match=r"'fuzz'.*'other'"):
        runner.resume(other.pipeline, VALID)
    assert not other.calls


def test_signed_checkpoints_refuse_tampering(runner):
    """A signing pipeline refuses unsigned, re-signed and tampered checkpoints."""
    signed = Subject(secret=SECRET)
    stolen = Subject(secret=SECRET[::-1])
    tape: dict[str, str] = {}
    signed.pipeline.run(
        {"n": 1}, on_step_complete=lambda e: tape.setdefault(e.step_name, e.checkpoint)
    )
    stolen.pipeline.run(
        {"n": 1}, on_step_complete=lambda e: tape.setdefault("x" + e.step_name, e.checkpoint)
    )
    signed.calls.clear()
    good = tape["nest/i1"]
    raw = bytearray(base64.urlsafe_b64decode(good + "=" * (-len(good) % 4)))
    raw[5] ^= 1
    for bad in (
        VALID,
        tape["xnest/i1"],
        base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode(),
    ):
        with pytest.raises(CheckpointSignatureError):
            runner.resume(signed.pipeline, bad)
    assert not signed.calls
    assert runner.resume(signed.pipeline, good).status == "completed"


def test_expired_checkpoint_is_refused(runner):
    """A checkpoint made with checkpoint_ttl= is refused once its time has passed."""
    subject = Subject()
    tape: dict[str, str] = {}
    subject.pipeline.run(
        {"n": 0},
        checkpoint_ttl=10,
        clock=lambda: 1000.0,
        on_step_complete=lambda e: tape.setdefault(e.step_name, e.checkpoint),
    )
    subject.calls.clear()
    with pytest.raises(CheckpointExpiredError):
        runner.resume(subject.pipeline, tape["first"], clock=lambda: 1010.0)
    assert not subject.calls
    assert (
        runner.resume(subject.pipeline, tape["first"], clock=lambda: 1009.0).status == "completed"
    )


# -- known bugs -------------------------------------------------------------------


def _par_doc(item0: Any) -> str:
    doc = to_doc(CHECKPOINTS["par/l1"])
    assert doc["position"]["at"] == "par"
    doc["position"]["items"][0] = item0
    return to_checkpoint(doc)


@pytest.mark.parametrize(
    "item0",
    [
        {"in": {"done": "l1"}, "set": {}, "del": [[1]]},
        {"out": {"l1": 1}, "del": [{"a": 1}]},
    ],
    ids=["in-progress", "done"],
)
def test_parallel_progress_with_bad_del_is_an_invalid_checkpoint(runner, item0):
    """Parallel progress whose 'del' holds non-str keys: InvalidCheckpointError before any step."""
    subject = Subject()
    with pytest.raises(InvalidCheckpointError):
        runner.resume(subject.pipeline, _par_doc(item0))
    assert not subject.calls


@pytest.mark.parametrize(
    "item0",
    [
        {"out": {"$t": "dict", "v": [[1, 2]]}, "del": []},
        {"in": {"done": "l1"}, "set": {"$t": "dict", "v": [[1, 2]]}, "del": []},
    ],
    ids=["out", "set"],
)
def test_parallel_progress_with_non_str_keys_is_an_invalid_checkpoint(runner, item0):
    """Parallel progress bringing non-str context keys: InvalidCheckpointError before any step."""
    subject = Subject()
    with pytest.raises(InvalidCheckpointError):
        runner.resume(subject.pipeline, _par_doc(item0))
    assert not subject.calls


def test_empty_run_id_is_an_invalid_checkpoint(runner):
    """A checkpoint whose run_id is empty is an InvalidCheckpointError."""
    with pytest.raises(InvalidCheckpointError):
        runner.resume(Subject().pipeline, _doc_with(run_id=""))


def test_missing_position_is_an_invalid_checkpoint(runner):
    """A checkpoint document without its resume position is an InvalidCheckpointError."""
    subject = Subject()
    with pytest.raises(InvalidCheckpointError):
        runner.resume(subject.pipeline, _doc_with(position=_MISSING))
    assert not subject.calls


def test_context_nested_deeper_than_encodable_is_an_invalid_checkpoint(runner):
    """A context value nested deeper than a checkpoint may hold is refused before any step."""
    value: Any = 1
    for _ in range(70):
        value = [value]
    subject = Subject()
    with pytest.raises(InvalidCheckpointError):
        runner.resume(subject.pipeline, _doc_with(context={"deep": value}))
    assert not subject.calls
