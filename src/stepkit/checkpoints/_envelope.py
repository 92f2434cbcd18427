"""The byte-level outer layer of a checkpoint string: base64, HMAC signing, zlib compression.

This module only sees the JSON document as opaque bytes; it frames, signs and
compresses it on the way out and checks, verifies and (boundedly) decompresses
it on the way in.

Format. A checkpoint string is base64url (RFC 4648 §5) without padding of either:

- the **plain form** ``document`` itself, used when the document is neither
  signed nor compressed, so ``urlsafe_b64decode`` of the (re-padded) string is
  the JSON; a document always starts with ``{`` (0x7B); or
- the **envelope** ``MAGIC (0x01) | FLAGS | PAYLOAD [| TAG]``: FLAGS bit0 means
  PAYLOAD is a zlib stream of the document (else the raw document), bit1 means
  a 32-byte ``TAG = HMAC-SHA256(key, MAGIC | FLAGS | PAYLOAD)`` follows, so the
  flags are covered by the tag. Other flag bits, and FLAGS = 0, are invalid.
  There is no key id: verification tries each key, newest first.

On input the standard alphabet (``+/``) is accepted too, padding is optional,
and the encoding must be canonical (zero trailing bits); anything else
(whitespace included) is an :class:`InvalidCheckpointError`.
"""

from __future__ import annotations

import binascii
import hmac
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from stepkit.checkpoints._limits import MAX_DOCUMENT, MAX_SIZE
from stepkit.errors import CheckpointSignatureError, InvalidArgumentError, InvalidCheckpointError

__all__ = [
    "DEFAULT_COMPRESS_THRESHOLD",
    "Opened",
    "normalize_keys",
    "open_envelope",
    "seal",
]

# Compress documents longer than this (None = never). Smaller ones stay plain base64 JSON:
# compressing costs more than the base64 it saves, and a 1 KB context is URL-sized anyway.
DEFAULT_COMPRESS_THRESHOLD = 2048
# zlib level 6 (its default) with an 8 KB window and a small hash table: about 50 KB of
# state per call instead of 270 KB (zlib.compress), for output within a few percent.
_ZLIB_LEVEL, _ZLIB_WBITS, _ZLIB_MEMLEVEL = 6, 13, 5

MAGIC = 0x01
FLAG_COMPRESSED = 0x01
FLAG_SIGNED = 0x02
TAG_SIZE = 32
MIN_KEY_SIZE = 16
_DOCUMENT_START = ord("{")
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/"
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")


def normalize_keys(secret: str | bytes | Sequence[str | bytes] | None) -> tuple[bytes, ...]:
    """Turn a ``secret`` argument (a key, or a list of keys newest first) into key bytes."""
    if secret is None:
        return ()
    hint = "pass a str or bytes key, or a list of them newest first"
    if _is_bytes(secret) and not isinstance(secret, bytes):
        raise InvalidArgumentError(
            f"secret must be str or bytes, got {_tn(secret)}; use bytes(secret)"
        )
    if isinstance(secret, str | bytes):
        items: Sequence[object] = [secret]
    elif isinstance(secret, Sequence):
        items = secret
        if not items:
            raise InvalidArgumentError(f"secret is an empty list; {hint}, or None not to sign")
    else:
        raise InvalidArgumentError(
            f"secret must be a str, bytes or a list of them, got {_tn(secret)}; {hint}"
        )
    keys = []
    for i, item in enumerate(items):
        where = "secret" if isinstance(secret, str | bytes) else f"secret[{i}]"
        if isinstance(item, str):
            try:
                key = item.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidArgumentError(
                    f"{where} is a str that is not valid UTF-8 (it holds a lone surrogate); "
                    "use a random key such as secrets.token_urlsafe(32), or pass bytes"
                ) from None
        elif isinstance(item, bytes):
            key = item
        else:
            raise InvalidArgumentError(
                f"{where} must be a str or bytes key, got {_tn(item)}; {hint}"
            )
        if not key:
            raise InvalidArgumentError(f"{where} is empty; use a random key of at least 32 bytes")
        if len(key) < MIN_KEY_SIZE:
            raise InvalidArgumentError(
                f"{where} is {len(key)} bytes, shorter than the minimum {MIN_KEY_SIZE}; "
                "use a random key such as secrets.token_urlsafe(32)"
            )
        keys.append(key)
    return tuple(keys)


def seal(
    document: bytes,
    *,
    keys: tuple[bytes, ...] = (),
    compress_threshold: int | None = DEFAULT_COMPRESS_THRESHOLD,
) -> str:
    """Encode ``document`` as a checkpoint string, signed with ``keys[0]`` if any keys are given.

    It is compressed only when longer than ``compress_threshold`` and smaller for it.
    """
    if not isinstance(document, bytes) or document[:1] != b"{":
        raise InvalidArgumentError("a checkpoint document is JSON object bytes starting with '{'")
    flags, payload = 0, document
    if compress_threshold is not None and len(document) > compress_threshold:
        deflater = zlib.compressobj(_ZLIB_LEVEL, zlib.DEFLATED, _ZLIB_WBITS, _ZLIB_MEMLEVEL)
        packed = deflater.compress(document) + deflater.flush()
        if len(packed) < len(document):
            flags, payload = FLAG_COMPRESSED, packed
    if keys:
        flags |= FLAG_SIGNED
    if not flags:
        return _b64(document)
    body = bytes((MAGIC, flags)) + payload
    if keys:
        body += hmac.digest(keys[0], body, "sha256")  # the one-shot C fast path
    return _b64(body)


@dataclass(frozen=True, slots=True)
class Opened:
    """What :func:`open_envelope` found inside a checkpoint string."""

    document: bytes
    signed: bool  # the envelope carried a signature
    verified: bool  # the signature was checked against one of the keys
    compressed: bool


def open_envelope(
    checkpoint: object,
    *,
    keys: tuple[bytes, ...] = (),
    max_size: int = MAX_SIZE,
    max_document: int = MAX_DOCUMENT,
    require_signature: bool | None = None,
) -> Opened:
    """Decode, verify and decompress a checkpoint string into its document bytes.

    With ``keys`` (or ``require_signature=True``) the checkpoint must carry a tag
    matching one of them, checked before anything is decompressed; without keys
    a signed checkpoint opens unverified, for inspection only.
    """
    if require_signature is None:
        require_signature = bool(keys)
    if require_signature and not keys:
        raise InvalidArgumentError("require_signature=True needs the keys to verify with")
    if not isinstance(checkpoint, str):
        hint = "; decode it first: checkpoint.decode('ascii')" if _is_bytes(checkpoint) else ""
        raise InvalidCheckpointError(f"a checkpoint is a str, got {_tn(checkpoint)}{hint}")
    if len(checkpoint) > max_size:
        raise InvalidCheckpointError(
            f"checkpoint is {len(checkpoint)} characters, more than the limit of {max_size}"
        )
    raw = _unb64(checkpoint)
    if not raw:
        raise InvalidCheckpointError("checkpoint is empty")
    if raw[0] == _DOCUMENT_START:  # plain form: unsigned, uncompressed
        if require_signature:
            raise CheckpointSignatureError("checkpoint is not signed, but a signature is required")
        _check_size(len(raw), max_document)
        return Opened(raw, signed=False, verified=False, compressed=False)
    if raw[0] != MAGIC:
        raise InvalidCheckpointError(f"unknown checkpoint envelope version 0x{raw[0]:02x}")
    if len(raw) < 2:
        raise InvalidCheckpointError("checkpoint is too short: no flags byte")
    flags = raw[1]
    if not flags or flags & ~(FLAG_COMPRESSED | FLAG_SIGNED):
        raise InvalidCheckpointError(f"unknown checkpoint envelope flags 0x{flags:02x}")
    signed, compressed, verified = bool(flags & FLAG_SIGNED), bool(flags & FLAG_COMPRESSED), False
    payload = raw[2:]
    if signed:
        if len(raw) < 2 + TAG_SIZE:
            if keys:
                raise CheckpointSignatureError("checkpoint signature is truncated")
            raise InvalidCheckpointError("checkpoint is too short to hold its signature")
        body, tag, payload = raw[:-TAG_SIZE], raw[-TAG_SIZE:], raw[2:-TAG_SIZE]
        if keys:
            # Try every key (no early exit) so timing does not reveal which one matched.
            matches = [hmac.compare_digest(hmac.digest(k, body, "sha256"), tag) for k in keys]
            if not any(matches):
                raise CheckpointSignatureError(
                    "checkpoint signature does not match any key: tampered, or signed with "
                    "another secret"
                )
            verified = True
    elif require_signature:
        raise CheckpointSignatureError("checkpoint is not signed, but a signature is required")
    document = _inflate(payload, max_document) if compressed else payload
    _check_size(len(document), max_document)
    return Opened(document, signed=signed, verified=verified, compressed=compressed)


def _inflate(payload: bytes, max_document: int) -> bytes:
    """Decompress a zlib stream, producing at most ``max_document + 1`` bytes."""
    inflater = zlib.decompressobj()
    try:
        document = inflater.decompress(payload, max_document + 1)
    except zlib.error as exc:
        raise InvalidCheckpointError(f"checkpoint payload is not valid zlib data: {exc}") from None
    if len(document) > max_document or inflater.unconsumed_tail:
        raise InvalidCheckpointError(f"decompressed size exceeds the limit of {max_document} bytes")
    if not inflater.eof:
        raise InvalidCheckpointError("checkpoint payload is a truncated zlib stream")
    if inflater.unused_data:
        raise InvalidCheckpointError("checkpoint payload has trailing bytes after its zlib stream")
    return document


def _check_size(size: int, max_document: int) -> None:
    if size > max_document:
        raise InvalidCheckpointError(f"decompressed size exceeds the limit of {max_document} bytes")


def _b64(data: bytes) -> str:
    # base64.urlsafe_b64encode, without its two Python-level calls
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()


_B64_VALUE = bytes(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".find(bytes([c])) & 0x3F
    for c in range(256)
)


def _unb64(text: str) -> bytes:
    """Decode base64url or standard base64, padding optional, canonical encodings only."""
    stripped = text.rstrip("=")
    # the alphabet, checked in C: deleting every base64 character leaves nothing
    if (
        not stripped.isascii()
        or len(text) - len(stripped) > 2
        or stripped.encode("ascii").translate(None, _ALPHABET)
    ):
        raise InvalidCheckpointError(
            "checkpoint is not base64: it may only contain A-Z a-z 0-9 - _ (or + /) and '=' padding"
        )
    data = stripped
    if (len(data) % 4 == 1) or (len(data) != len(text) and len(text) % 4):
        raise InvalidCheckpointError("checkpoint is not base64: its length is wrong (truncated?)")
    encoded = data.encode("ascii").translate(_TO_STANDARD)
    rest = len(encoded) % 4
    # canonical: the bits the last character carries beyond the data are zero (else two
    # strings would decode to the same bytes); checked on that one character, in O(1)
    if rest and _B64_VALUE[encoded[-1]] & (0x0F if rest == 2 else 0x03):
        raise InvalidCheckpointError("checkpoint is not canonical base64: last character is off")
    try:  # the alphabet was checked above, so the lenient decoder is exact here
        return binascii.a2b_base64(encoded + b"=" * (-rest % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - excluded by the checks above
        raise InvalidCheckpointError(f"checkpoint is not base64: {exc}") from None


def _is_bytes(value: object) -> bool:
    return isinstance(value, bytes | bytearray | memoryview)


def _tn(value: object) -> str:
    return type(value).__name__
