"""The checkpoint codec: tagged values, the versioned JSON document, the signed envelope.

The layer under everything that persists or hands out state; it imports only
:mod:`stepkit.errors` and :mod:`stepkit.events`.
"""
