"""Cost of producing a checkpoint: encoding, signing, compression; and its size.

Run: python benchmarks/bench_checkpoint.py [--write]   (--write updates docs/performance.md)

Budget (issue 4): signing adds at most 5 us per checkpoint for a 1 KB context,
and a signed 1 KB-context checkpoint fits in a URL. Budget (SPEC §8): a checkpoint
read after every step costs at most 1.2x base64(json) of the same document
(metadata included), and at most 2x base64(json(context)) for a 1 KB context.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from _report import SAMPLE_CONTEXT, best_of, emit, interleaved, machine

from stepkit import Pipeline, StepEvent
from stepkit.checkpoints._document import Meta, encode_checkpoint
from stepkit.checkpoints._encode import dumps, encode_context
from stepkit.checkpoints._envelope import (
    DEFAULT_COMPRESS_THRESHOLD,
    normalize_keys,
    open_envelope,
    seal,
)

CONTEXT: dict[str, Any] = SAMPLE_CONTEXT
SIZE = len(json.dumps(CONTEXT))
SECRET = "a-32-byte-secret-for-the-benchmark!!"
POSITION = {"done": "generate"}


def meta(keys: tuple[bytes, ...], threshold: int | None) -> Meta:
    return Meta("reply", None, "0123456789abcdef", "run-1", keys=keys, compress_threshold=threshold)


def _b64_json(doc: Any) -> bytes:
    return base64.urlsafe_b64encode(json.dumps(doc).encode())


def floors() -> list[str]:
    """A checkpoint read after a step, against base64(json) floors measured alongside."""
    m = Meta("reply", None, "0123456789abcdef", "run-1")
    tiny: dict[str, Any] = {"a": 1}
    cp = encode_checkpoint(m, POSITION, "generate", tiny)
    document = json.loads(base64.urlsafe_b64decode(cp + "=" * (-len(cp) % 4)))
    lines = [
        "| checkpoint read (defaults) | stepkit (us) | floor (us) | ratio (spread) | goal |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, context, floor, floor_label, goal in (
        ("tiny context", tiny, lambda: _b64_json(document), "b64(json(document))", 1.2),
        (f"{SIZE:,}-byte context", CONTEXT, lambda: _b64_json(CONTEXT), "b64(json(context))", 2.0),
    ):
        got = interleaved(
            lambda context=context: encode_checkpoint(m, POSITION, "generate", context), floor
        )
        lines.append(
            f"| {label} vs {floor_label} | {got.candidate * 1e6:.2f} | {got.floor * 1e6:.2f} | "
            f"{got.spread()} | ≤ {goal}x |"
        )
    return lines


def main() -> None:
    rows = []
    for label, keys, threshold in (
        ("unsigned, uncompressed", (), None),
        ("signed (HMAC-SHA256), uncompressed", normalize_keys(SECRET), None),
        ("unsigned, compressed (zlib)", (), 0),
        (
            "signed, compressed above the default threshold",
            normalize_keys(SECRET),
            DEFAULT_COMPRESS_THRESHOLD,
        ),
    ):
        m = meta(keys, threshold)
        seconds = best_of(
            lambda m=m: encode_checkpoint(m, POSITION, "generate", CONTEXT), number=2000
        )
        length = len(encode_checkpoint(m, POSITION, "generate", CONTEXT))
        rows.append((label, seconds, length))
    # signing on its own: the same document sealed with and without a key
    keys = normalize_keys(SECRET)
    document = dumps(
        {"format": 1, "context": encode_context(CONTEXT), "position": POSITION}
    ).encode()
    plain_seal = best_of(lambda: seal(document, compress_threshold=None), number=20000)
    signed_seal = best_of(lambda: seal(document, keys=keys, compress_threshold=None), number=20000)
    signed_extra = signed_seal - plain_seal
    token = seal(document, keys=keys, compress_threshold=None)
    plain_open = best_of(
        lambda: open_envelope(seal(document, compress_threshold=None)), number=5000
    )
    verify = best_of(lambda: open_envelope(token, keys=keys), number=5000)

    pipeline = Pipeline("reply", secret=SECRET).step("generate", lambda ctx: None)
    saved: dict[str, str] = {}

    def keep(event: StepEvent) -> None:
        saved["cp"] = event.checkpoint

    resume_seconds = best_of(lambda: pipeline.run(CONTEXT, on_step_complete=keep), number=500)
    decode_seconds = best_of(lambda: pipeline.run_checkpoint(saved["cp"]), number=500)

    lines = [
        f"Measured on {machine()}; context of {SIZE} bytes of JSON, best of 7 rounds.",
        "",
        "| checkpoint | encode (us) | length (chars) |",
        "|---|---:|---:|",
    ]
    lines += [f"| {label} | {s * 1e6:.1f} | {n:,} |" for label, s, n in rows]
    lines += [
        "",
        f"Signing adds **{signed_extra * 1e6:.1f} us** per checkpoint (budget: 5 us): "
        f"sealing the {len(document):,}-byte document takes {plain_seal * 1e6:.1f} us "
        f"unsigned and {signed_seal * 1e6:.1f} us signed; opening and verifying a signed one "
        f"takes {verify * 1e6:.1f} us (unsigned seal+open: {plain_open * 1e6:.1f} us). "
        f"With default options the signed checkpoint is {rows[3][2]:,} characters of URL-safe "
        "base64 (a 1 KB context is below the compression threshold): "
        "it fits in a URL (browsers and servers accept at least 8,000 characters; keep "
        "contexts small if you target 2,000).",
        "",
        f"A one-step signed run that reads its checkpoint: {resume_seconds * 1e6:.1f} us; "
        f"verifying, decoding and resuming that checkpoint: {decode_seconds * 1e6:.1f} us.",
        "",
        "Median of 7 interleaved rounds, each floor measured in the same process:",
        "",
        *floors(),
    ]
    emit("checkpoint", "\n".join(lines))


if __name__ == "__main__":
    main()
