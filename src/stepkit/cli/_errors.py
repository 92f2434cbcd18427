"""The command line's own errors: a one-line message and the exit status it stands for."""

from __future__ import annotations

__all__ = ["CommandError", "UsageError"]


class CommandError(Exception):
    """The command could not do its work: one line on stderr, exit status 1."""

    status = 1


class UsageError(CommandError):
    """The command line itself is wrong (an argument, a form): exit status 2, like argparse."""

    status = 2
