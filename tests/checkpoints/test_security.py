"""Checkpoints that leave the process: signing, rotation, expiry, compression,
definition changes and migrations. Resumes run through run() and arun()."""

from __future__ import annotations

import base64
import json
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import Recorder

from stepkit import (
    CheckpointError,
    CheckpointExpiredError,
    CheckpointMismatchError,
    CheckpointSignatureError,
    InvalidCheckpointError,
    Pipeline,
    PipelineDefinitionError,
    decode_checkpoint,
)
from stepkit.testing import FakeClock

OLD, NEW, OTHER = "old-secret-0123456789", "new-secret-0123456789", "other-secret-01234567"


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, ctx):
        self.calls += 1
        return {"sent": self.calls}


def flow(secret=None, send=None, **options) -> Pipeline:
    return (
        Pipeline("flow", secret=secret, **options)
        .step("draft", lambda ctx: {"draft": ctx.get("text", "") + "!"})
        .step("send", send or Counter())
    )


def paused(pipeline: Pipeline, runner, **run_options) -> str:
    rec = Recorder(stop_at="draft")
    runner.run(pipeline, {"text": "hi"}, on_step_complete=rec, **run_options)
    return rec.checkpoints["draft"]


class TestSigning:
    def test_signed_round_trip(self, runner):
        """A signed checkpoint resumes with the same secret."""
        cp = paused(flow(NEW), runner)
        assert runner.resume(flow(NEW), cp)["sent"] == 1
        info = decode_checkpoint(cp, secret=NEW)
        assert info.signed
        assert info.verified

    def test_decode_without_secret_is_unverified(self):
        """decode_checkpoint without a secret inspects, and says it did not verify."""
        cp = flow(NEW).run({"text": "x"}).checkpoint
        info = decode_checkpoint(cp)
        assert info.signed
        assert not info.verified
        assert info.context["draft"] == "x!"

    def test_unsigned_checkpoint_is_rejected_by_a_signing_pipeline(self, runner):
        """A pipeline with a secret refuses unsigned checkpoints, and runs nothing."""
        send = Counter()
        cp = paused(flow(None), runner)
        with pytest.raises(CheckpointSignatureError):
            runner.resume(flow(NEW, send), cp)
        assert send.calls == 0

    def test_wrong_key_is_rejected(self, runner):
        """A checkpoint signed with another key is rejected."""
        cp = paused(flow(OTHER), runner)
        with pytest.raises(CheckpointSignatureError):
            runner.resume(flow(NEW), cp)

    def test_rotation(self, runner):
        """Sign with the newest key, still accept the older ones."""
        old_cp = paused(flow(OLD), runner)
        rotated = flow([NEW, OLD])
        assert runner.resume(rotated, old_cp)["sent"] == 1
        new_cp = paused(rotated, runner)
        assert decode_checkpoint(new_cp, secret=NEW).verified
        with pytest.raises(CheckpointSignatureError):
            decode_checkpoint(new_cp, secret=OLD)

    def test_every_single_character_mutation_is_rejected(self):
        """Changing any one character of a signed checkpoint is detected; nothing runs."""
        send = Counter()
        pipeline = flow(NEW, send)
        cp = paused(pipeline, _SyncRunner())
        alphabet = string.ascii_letters + string.digits + "-_"
        for i, ch in enumerate(cp):
            other = alphabet[(alphabet.index(ch) + 7) % len(alphabet)]
            mutated = cp[:i] + other + cp[i + 1 :]
            with pytest.raises(CheckpointError):
                pipeline.run_checkpoint(mutated)
        assert send.calls == 0

    def test_every_single_byte_mutation_is_rejected(self):
        """Flipping bits of any byte of a signed checkpoint is detected; nothing runs."""
        send = Counter()
        pipeline = flow(NEW, send)
        cp = paused(pipeline, _SyncRunner())
        raw = base64.urlsafe_b64decode(cp + "=" * (-len(cp) % 4))
        for i in range(len(raw)):
            for mask in (0x01, 0x80, 0xFF):
                mutated = bytearray(raw)
                mutated[i] ^= mask
                text = base64.urlsafe_b64encode(bytes(mutated)).decode().rstrip("=")
                with pytest.raises(CheckpointError):
                    pipeline.run_checkpoint(text)
        assert send.calls == 0

    def test_every_truncation_is_rejected(self):
        """Every prefix of a signed checkpoint is rejected."""
        pipeline = flow(NEW)
        cp = paused(pipeline, _SyncRunner())
        for end in range(len(cp)):
            with pytest.raises(CheckpointError):
                pipeline.run_checkpoint(cp[:end])

    def test_bad_secret_is_a_definition_error(self):
        """A too-short secret is rejected when the pipeline is built, with advice."""
        with pytest.raises(PipelineDefinitionError, match="minimum 16"):
            flow("short")

    def test_a_str_secret_that_is_not_utf8_is_a_definition_error(self):
        """A str secret holding a lone surrogate is refused at build time, not a UnicodeError."""
        with pytest.raises(PipelineDefinitionError, match="not valid UTF-8"):
            flow("a-long-enough-secret-\ud800")


class _SyncRunner:
    def run(self, pipeline, input=None, **kw):
        return pipeline.run(input, **kw)


class TestExpiry:
    def test_expiry_boundary(self, runner):
        """A checkpoint resumes just before its expiry and not at or after it."""
        clock = FakeClock()
        cp = paused(flow(NEW), runner, checkpoint_ttl=60, clock=clock)
        assert decode_checkpoint(cp).expires_at.timestamp() == clock.now + 60
        clock.now += 59.999
        assert runner.resume(flow(NEW), cp, clock=clock)["sent"] == 1
        clock.now += 0.001
        with pytest.raises(CheckpointExpiredError) as info:
            runner.resume(flow(NEW), cp, clock=clock)
        assert info.value.expires_at.timestamp() == clock.now

    def test_expiry_is_covered_by_the_signature(self):
        """Editing expires_at in a signed checkpoint breaks the signature."""
        cp = flow(NEW).run({}, checkpoint_ttl=1).checkpoint
        raw = bytearray(base64.urlsafe_b64decode(cp + "=" * (-len(cp) % 4)))
        doc_start = raw.index(b"{")
        doc = raw[doc_start:-32].replace(b'"expires_at":"', b'"expires_at":"3')
        forged = bytes(raw[:doc_start]) + bytes(doc) + bytes(raw[-32:])
        with pytest.raises(CheckpointSignatureError):
            flow(NEW).run_checkpoint(base64.urlsafe_b64encode(forged).decode().rstrip("="))


class TestCompression:
    def test_large_checkpoints_are_compressed_and_flagged(self):
        """Above the threshold the document is compressed; small ones stay plain JSON."""
        big = flow(None).run({"text": "x" * 5000}).checkpoint
        small = flow(None).run({"text": "x"}).checkpoint
        assert decode_checkpoint(big).compressed
        assert len(big) < 2000
        assert not decode_checkpoint(small).compressed
        assert json.loads(base64.urlsafe_b64decode(small + "=" * (-len(small) % 4)))

    def test_a_1kb_context_is_not_compressed_by_default(self):
        """Below the default threshold (2,048 bytes) a checkpoint stays plain base64 JSON."""
        cp = Pipeline("one").step("a", lambda ctx: None).run({"text": "x" * 1000}).checkpoint
        assert not decode_checkpoint(cp).compressed
        assert json.loads(base64.urlsafe_b64decode(cp + "=" * (-len(cp) % 4)))

    def test_threshold_is_configurable(self):
        """compress_threshold=None never compresses."""
        cp = flow(None, compress_threshold=None).run({"text": "x" * 5000}).checkpoint
        assert not decode_checkpoint(cp).compressed

    def test_bad_threshold(self):
        """compress_threshold must be a non-negative int or None."""
        with pytest.raises(PipelineDefinitionError, match="compress_threshold"):
            flow(None, compress_threshold=-1)


def v1() -> Pipeline:
    return (
        Pipeline("orders", version="1")
        .step("fetch", lambda ctx: {"amount_cents": 1250})
        .step("review", Pipeline("r").step("check", lambda ctx: None))
        .step("charge", lambda ctx: {"charged": ctx["amount_cents"]})
    )


class TestDefinitionChanges:
    def test_same_definition_resumes_silently(self, runner):
        """An unchanged pipeline resumes with definition_changed False."""
        cp = paused_at(v1(), "fetch", runner)
        assert not runner.resume(v1(), cp).definition_changed

    def test_changed_definition_with_existing_path(self, runner):
        """A changed pipeline resumes after the recorded step and reports the change."""
        cp = paused_at(v1(), "fetch", runner)
        changed = v1().step("notify", lambda ctx: {"notified": True})
        result = runner.resume(changed, cp)
        assert result.definition_changed
        assert result["notified"] is True

    def test_strict_refuses_a_changed_definition(self, runner):
        """strict=True turns an undeclared change into CheckpointMismatchError."""
        cp = paused_at(v1(), "fetch", runner)
        with pytest.raises(CheckpointMismatchError, match="strict"):
            runner.resume(v1().step("notify", lambda ctx: None), cp, strict=True)

    def test_path_gone_names_it_and_lists_steps(self, runner):
        """A recorded path that no longer exists is named, with the current steps."""
        cp = paused_at(v1(), "review/check", runner)
        gone = Pipeline("orders", version="1").step("fetch", lambda ctx: None)
        with pytest.raises(CheckpointMismatchError, match=r"'review'.*fetch"):
            runner.resume(gone, cp)

    def test_chained_migrations(self, runner):
        """Migrations chain 1 -> 2 -> 3 before resuming; strict accepts a declared upgrade."""
        cp = paused_at(v1(), "fetch", runner)
        v3 = (
            Pipeline(
                "orders",
                version="3",
                migrations={
                    "2": lambda ctx: {**ctx, "currency": "EUR"},
                    "1": lambda ctx: {"amount": ctx["amount_cents"] / 100},
                },
            )
            .step("fetch", lambda ctx: None)
            .step("review", Pipeline("r").step("check", lambda ctx: None))
            .step("charge", lambda ctx: {"charged": f"{ctx['amount']} {ctx['currency']}"})
        )
        result = runner.resume(v3, cp, strict=True)
        assert dict(result) == {"amount": 12.5, "currency": "EUR", "charged": "12.5 EUR"}

    def test_missing_migration_is_a_mismatch(self, runner):
        """A version with no migration path is refused with the fix in the message."""
        cp = paused_at(v1(), "fetch", runner)
        with pytest.raises(CheckpointMismatchError, match="no migration from '1'"):
            runner.resume(v1().with_options(version="2"), cp)

    def test_renamed_steps(self, runner):
        """renamed= maps old step paths to new ones, nested paths included."""
        cp = paused_at(v1(), "review/check", runner)
        renamed = (
            Pipeline(
                "orders", version="1", renamed={"review": "audit", "review/check": "audit/verify"}
            )
            .step("fetch", lambda ctx: {"amount_cents": 1250})
            .step(
                "audit",
                Pipeline("r")
                .step("verify", lambda ctx: None)
                .step("log", lambda ctx: {"logged": 1}),
            )
            .step("charge", lambda ctx: {"charged": ctx["amount_cents"]})
        )
        rec = Recorder()
        result = runner.resume(renamed, cp, on_step_complete=rec)
        assert rec.names == ["audit/log", "audit", "charge"]
        assert result["charged"] == 1250


def paused_at(pipeline: Pipeline, step: str, runner) -> str:
    rec = Recorder(stop_at=step)
    runner.run(pipeline, {}, on_step_complete=rec)
    return rec.checkpoints[step]


@settings(max_examples=200)
@given(st.text(max_size=300))
def test_signed_pipeline_rejects_arbitrary_text(text):
    """Arbitrary text given to a signing pipeline raises only CheckpointError subclasses."""
    with pytest.raises(CheckpointError):
        flow(NEW).run_checkpoint(text)


def test_document_naming_a_module_creates_nothing():
    """A checkpoint whose context names os.system decodes to no object and imports nothing."""
    doc = {
        "format": 1,
        "pipeline": "flow",
        "version": None,
        "fingerprint": "x",
        "run_id": "r",
        "created_at": "2026-01-01T00:00:00+00:00",
        "expires_at": None,
        "step": None,
        "position": None,
        "context": {"cmd": {"$t": "type", "n": "os.system", "v": "echo pwned"}},
    }
    cp = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")
    with pytest.raises(InvalidCheckpointError, match=r"os\.system"):
        flow(None).run_checkpoint(cp)
