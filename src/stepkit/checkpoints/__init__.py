"""The checkpoint codec: tagged values, the versioned JSON document, the signed envelope.

The layer under everything that persists or hands out state; it imports only
:mod:`stepkit.errors` and :mod:`stepkit.events`. :func:`decode_context` is the
one name other layers (the stores) may use without reaching into its modules.
"""

from stepkit.checkpoints._context import decode_context

__all__ = ["decode_context"]
