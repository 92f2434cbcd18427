"""``python -m stepkit``: inspect checkpoints, draw pipelines, manage stored runs."""

from stepkit.cli._main import main

__all__ = ["main"]
