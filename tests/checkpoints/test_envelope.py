"""The checkpoint envelope: base64, HMAC signing with key rotation, bounded zlib."""

from __future__ import annotations

import base64
import contextlib
import random
import string
import zlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepkit.checkpoints._envelope import (
    DEFAULT_COMPRESS_THRESHOLD,
    Opened,
    normalize_keys,
    open_envelope,
    seal,
)
from stepkit.errors import (
    CheckpointError,
    CheckpointSignatureError,
    InvalidArgumentError,
    InvalidCheckpointError,
)

OLD = b"old-key-0123456789abcdef"
NEW = b"new-key-0123456789abcdef"
OTHER = b"other-key-0123456789abcdef"
SMALL = b'{"step":"a","context":{"n":1}}'
LARGE = b'{"context":' + b'"abcdefgh",' * 500 + b'"end"}'
ALPHABET = string.ascii_letters + string.digits + "-_"

documents = st.binary(max_size=3000).map(lambda b: b"{" + b)


def _repad(text: str) -> str:
    return text + "=" * (-len(text) % 4)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("compressed", [False, True])
def test_round_trip_every_combination(signed: bool, compressed: bool) -> None:
    """Signed or not, compressed or not, opening a sealed document gives it back with its flags."""
    keys = (NEW,) if signed else ()
    document = LARGE if compressed else SMALL
    checkpoint = seal(document, keys=keys)
    opened = open_envelope(checkpoint, keys=keys)
    assert opened == Opened(document, signed=signed, verified=signed, compressed=compressed)


@given(document=documents, signed=st.booleans(), threshold=st.sampled_from([None, 0, 64, 1024]))
def test_round_trip_any_document(document: bytes, signed: bool, threshold: int | None) -> None:
    """Any document starting with '{' round-trips under any threshold, signed or not."""
    keys = (NEW, OLD) if signed else ()
    opened = open_envelope(seal(document, keys=keys, compress_threshold=threshold), keys=keys)
    assert opened.document == document
    assert opened.verified is signed


def test_unsigned_uncompressed_is_plain_base64url_of_the_document() -> None:
    """The plain form decodes with standard tools straight to the JSON."""
    checkpoint = seal(SMALL)
    assert "=" not in checkpoint
    assert base64.urlsafe_b64decode(_repad(checkpoint)) == SMALL


def test_standard_alphabet_and_padding_accepted() -> None:
    """Standard-alphabet base64, padded or not, opens like base64url."""
    document = b'{"k":"\xfb\xff\xfe?>"}'
    urlsafe = seal(document)
    standard = base64.b64encode(document).decode()
    assert "+" in standard or "/" in standard
    for text in (urlsafe, _repad(urlsafe), standard, standard.rstrip("=")):
        assert open_envelope(text).document == document


@pytest.mark.parametrize(
    "text",
    ["", "e", "e3===", "e30==", "e30 ", " e30", "e 30", "e30\n", "e30!", "e30é", "e31", "e3"],
)
def test_malformed_base64_is_invalid(text: str) -> None:
    """Bad characters, whitespace, bad padding, bad length or non-canonical bits are invalid."""
    with pytest.raises(InvalidCheckpointError):
        open_envelope(text)


@pytest.mark.parametrize(
    ("value", "fragment"), [(5, "got int"), (None, "got NoneType"), (b"eyJ9", "decode")]
)
def test_non_str_is_invalid(value: object, fragment: str) -> None:
    """A checkpoint must be a str; bytes get a hint to decode them."""
    with pytest.raises(InvalidCheckpointError, match=fragment):
        open_envelope(value)


def test_oversize_string_rejected_before_decoding() -> None:
    """A string longer than max_size is rejected, even if it is not base64."""
    with pytest.raises(InvalidCheckpointError, match="limit"):
        open_envelope("!" * 101, max_size=100)


@pytest.mark.parametrize(
    "raw", [b"\x01", b"\x02\x01abc", b"\x01\x00{}", b"\x01\x04{}", b"\x01\xff{}", b"\x00"]
)
def test_unknown_version_flags_or_too_short_is_invalid(raw: bytes) -> None:
    """An unknown magic byte, unknown or zero flags, or a missing flags byte is invalid."""
    with pytest.raises(InvalidCheckpointError):
        open_envelope(base64.urlsafe_b64encode(raw).decode())


def test_every_mutation_of_a_signed_checkpoint_is_rejected() -> None:
    """Replacing any one character of a signed checkpoint with any other is detected."""
    checkpoint = seal(SMALL, keys=(NEW,))
    for i, original in enumerate(checkpoint):
        for char in ALPHABET:
            if char == original:
                continue
            mutated = checkpoint[:i] + char + checkpoint[i + 1 :]
            with pytest.raises((CheckpointSignatureError, InvalidCheckpointError)):
                open_envelope(mutated, keys=(NEW,))


def test_every_truncation_of_a_signed_checkpoint_is_rejected() -> None:
    """Any proper prefix or suffix of a signed checkpoint is rejected."""
    checkpoint = seal(SMALL, keys=(NEW,))
    for n in range(len(checkpoint)):
        for part in (checkpoint[:n], checkpoint[len(checkpoint) - n :]):
            with pytest.raises((CheckpointSignatureError, InvalidCheckpointError)):
                open_envelope(part, keys=(NEW,))


@pytest.mark.parametrize("new_flags", [0x00, 0x01, 0x03])
def test_flipping_the_flags_byte_is_detected(new_flags: int) -> None:
    """The tag covers the flags: changing them fails verification or validation."""
    raw = bytearray(base64.urlsafe_b64decode(_repad(seal(SMALL, keys=(NEW,)))))
    raw[1] = new_flags
    with pytest.raises((CheckpointSignatureError, InvalidCheckpointError)):
        open_envelope(base64.urlsafe_b64encode(bytes(raw)).decode(), keys=(NEW,))


@pytest.mark.parametrize("sealed_with", [OLD, NEW])
def test_key_rotation_accepts_any_listed_key(sealed_with: bytes) -> None:
    """Checkpoints signed with the old or the new key open with [new, old]."""
    opened = open_envelope(seal(SMALL, keys=(sealed_with,)), keys=(NEW, OLD))
    assert opened.document == SMALL
    assert opened.verified


def test_seal_signs_with_the_newest_key() -> None:
    """seal uses keys[0]: the result opens with the new key alone, not the old one."""
    checkpoint = seal(SMALL, keys=(NEW, OLD))
    assert open_envelope(checkpoint, keys=(NEW,)).verified
    with pytest.raises(CheckpointSignatureError):
        open_envelope(checkpoint, keys=(OLD,))


def test_other_key_fails() -> None:
    """A checkpoint signed with a key not in the list is rejected."""
    with pytest.raises(CheckpointSignatureError, match="does not match"):
        open_envelope(seal(SMALL, keys=(NEW,)), keys=(OTHER,))


@pytest.mark.parametrize("document", [SMALL, LARGE])
def test_unsigned_checkpoint_with_keys_fails(document: bytes) -> None:
    """When keys are given, unsigned checkpoints (plain or compressed) are rejected."""
    with pytest.raises(CheckpointSignatureError, match="not signed"):
        open_envelope(seal(document), keys=(NEW,))


def test_unsigned_checkpoint_with_keys_opens_when_signature_not_required() -> None:
    """require_signature=False admits unsigned checkpoints but still verifies signed ones."""
    assert open_envelope(seal(SMALL), keys=(NEW,), require_signature=False).document == SMALL
    with pytest.raises(CheckpointSignatureError):
        open_envelope(seal(SMALL, keys=(OTHER,)), keys=(NEW,), require_signature=False)


def test_signed_checkpoint_without_keys_opens_unverified() -> None:
    """Without keys a signed checkpoint opens for inspection only."""
    opened = open_envelope(seal(LARGE, keys=(NEW,)))
    assert opened == Opened(LARGE, signed=True, verified=False, compressed=True)


def test_truncated_tag_is_a_signature_error_with_keys() -> None:
    """A signed envelope too short to hold its tag fails verification when keys are given."""
    text = base64.urlsafe_b64encode(b"\x01\x02{}" + b"\x00" * 10).decode()
    with pytest.raises(CheckpointSignatureError, match="truncated"):
        open_envelope(text, keys=(NEW,))
    with pytest.raises(InvalidCheckpointError, match="too short"):
        open_envelope(text)


def test_require_signature_without_keys_is_a_bad_argument() -> None:
    """Requiring a signature with nothing to verify it is a programming error."""
    with pytest.raises(InvalidArgumentError):
        open_envelope(seal(SMALL), require_signature=True)


def test_compression_above_threshold_is_smaller_and_flagged() -> None:
    """A compressible document above the threshold is compressed; one at it is not."""
    assert len(LARGE) > DEFAULT_COMPRESS_THRESHOLD
    checkpoint = seal(LARGE)
    assert len(checkpoint) < len(seal(LARGE, compress_threshold=None))
    assert open_envelope(checkpoint).compressed
    assert not open_envelope(seal(LARGE, compress_threshold=len(LARGE))).compressed


def test_threshold_none_never_compresses() -> None:
    """compress_threshold=None keeps even a large document plain."""
    checkpoint = seal(LARGE, compress_threshold=None)
    assert base64.urlsafe_b64decode(_repad(checkpoint)) == LARGE


def test_incompressible_document_is_not_compressed() -> None:
    """Compression is used only when it makes the result smaller."""
    document = b"{" + random.Random(7).randbytes(2048)
    opened = open_envelope(seal(document, compress_threshold=0))
    assert opened.document == document
    assert not opened.compressed


def _envelope(payload: bytes, flags: int = 0x01) -> str:
    return base64.urlsafe_b64encode(bytes((0x01, flags)) + payload).decode().rstrip("=")


def _bomb(size: int) -> bytes:
    packer = zlib.compressobj(9)
    chunk = b"\x00" * (1 << 20)
    parts = [packer.compress(chunk) for _ in range(size >> 20)]
    return b"".join(parts) + packer.flush()


def test_decompression_bomb_is_rejected() -> None:
    """200 MB of zeros compressed to a few hundred KB is refused without inflating it."""
    with pytest.raises(InvalidCheckpointError, match="decompressed size exceeds"):
        open_envelope(_envelope(_bomb(200 << 20)))


def test_document_over_max_document_is_rejected() -> None:
    """max_document bounds compressed and plain documents alike."""
    with pytest.raises(InvalidCheckpointError, match="exceeds"):
        open_envelope(seal(LARGE), max_document=len(LARGE) - 1)
    with pytest.raises(InvalidCheckpointError, match="exceeds"):
        open_envelope(seal(SMALL), max_document=len(SMALL) - 1)
    assert open_envelope(seal(LARGE), max_document=len(LARGE)).document == LARGE


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (zlib.compress(LARGE)[:-5], "truncated"),
        (zlib.compress(LARGE) + b"xx", "trailing"),
        (b"not zlib at all", "not valid zlib"),
    ],
)
def test_broken_zlib_stream_is_invalid(payload: bytes, fragment: str) -> None:
    """A truncated, trailing-garbage or corrupt zlib payload is invalid."""
    with pytest.raises(InvalidCheckpointError, match=fragment):
        open_envelope(_envelope(payload))


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        (None, ()),
        ("s" * 16, (b"s" * 16,)),
        (b"k" * 32, (b"k" * 32,)),
        ("é" * 8, (("é" * 8).encode(),)),
        ([NEW, OLD.decode()], (NEW, OLD)),
        ((NEW,), (NEW,)),
    ],
)
def test_normalize_keys_accepts(secret: Any, expected: Any) -> None:
    """None, a str or bytes key, or a list of them (newest first) normalize to key bytes."""
    assert normalize_keys(secret) == expected


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [
        ([], "empty list"),
        ("", "empty"),
        (b"", "empty"),
        ("short", "shorter than"),
        ([NEW, b"short"], r"secret\[1\]"),
        ([NEW, 42], "got int"),
        (42, "got int"),
        ({NEW}, "got set"),
        (bytearray(NEW), "got bytearray"),
        ("a-long-enough-key-\ud800", "not valid UTF-8"),
        ([NEW, "a-long-enough-key-\udfff"], r"secret\[1\] is a str that is not valid UTF-8"),
    ],
)
def test_normalize_keys_rejects(secret: Any, fragment: str) -> None:
    """Empty, short or wrongly typed secrets raise InvalidArgumentError saying what to fix."""
    with pytest.raises(InvalidArgumentError, match=fragment):
        normalize_keys(secret)


def test_seal_rejects_non_document() -> None:
    """seal only frames JSON object bytes."""
    with pytest.raises(InvalidArgumentError):
        seal(b"[1]")


@given(text=st.text(), with_keys=st.booleans())
def test_arbitrary_strings_raise_only_checkpoint_errors(text: str, with_keys: bool) -> None:
    """Whatever the string, open_envelope returns or raises a CheckpointError."""
    with contextlib.suppress(CheckpointError):
        open_envelope(text, keys=(NEW,) if with_keys else ())


@given(raw=st.binary(), with_keys=st.booleans())
def test_arbitrary_decoded_bytes_raise_only_checkpoint_errors(raw: bytes, with_keys: bool) -> None:
    """Whatever bytes the base64 carries, open_envelope returns or raises a CheckpointError."""
    for text in (base64.urlsafe_b64encode(raw).decode(), _envelope(raw), _envelope(raw, 0x03)):
        with contextlib.suppress(CheckpointError):
            open_envelope(text, keys=(NEW,) if with_keys else ())
