"""Loading the user's pipeline named ``module:attribute`` on the command line."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from stepkit.cli._errors import CommandError, UsageError

__all__ = ["load_target"]


def load_target(target: str, *, needs: str = "to_mermaid") -> Any:
    """Import ``module:attribute`` (the current folder is on the path); check it has ``needs``.

    This runs the user's module, which is the point: the target is named by the
    person at the terminal, never by a checkpoint or a store.
    """
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise UsageError(f"expected module:attribute (e.g. app.flows:reply), got {target!r}")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # the user's module may raise anything while importing
        raise CommandError(f"cannot load {target!r}: {type(exc).__name__}: {exc}") from exc
    if not hasattr(obj, needs):
        raise CommandError(f"{target} is a {type(obj).__name__}, not a pipeline or graph")
    return obj
