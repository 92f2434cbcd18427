"""``decode_context``: a stored, tag-encoded context back to Python values.

The one function of the codec that stores use (``store.snapshot()``), so that
they depend on this public name and never on the decoder's internals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["decode_context"]


def decode_context(encoded: Mapping[str, Any]) -> dict[str, Any]:
    """Decode a context whose top-level values are tag-encoded JSON data.

    That is what :func:`stepkit.stores.rebuild` returns; bad data raises
    :class:`~stepkit.errors.InvalidCheckpointError`::

        context, _last = rebuild(store.versions("run-1"))
        values = decode_context(context)
    """
    from stepkit.checkpoints._decode import from_json  # the decoder loads on first use

    return {key: from_json(value) for key, value in encoded.items()}
