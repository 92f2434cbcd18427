"""``python -m stepkit``: the parser, the dispatch to each command, and the exit status.

Exit status: 0 when the command did its work; 1 for an error from stepkit (a
malformed checkpoint, a missing run, a store that does not exist, a step that
failed during ``runs resume``, a pipeline that cannot be loaded); 2 for a
usage error (an unknown command or option, a malformed argument).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from stepkit import __version__
from stepkit.cli._errors import CommandError
from stepkit.cli._inspect import add_parser as add_inspect_parser
from stepkit.cli._output import escape, escape_lines
from stepkit.cli._runs import add_parser as add_runs_parser
from stepkit.cli._targets import load_target
from stepkit.errors import StepkitError

__all__ = ["main"]

_DESCRIPTION = "Inspect checkpoints, draw pipelines and manage durable runs."
_EPILOG = """\
synopsis:
  inspect CHECKPOINT [--secret S | --secret-env VAR] [--json]
                                 decode a checkpoint (- reads standard input)
  graph MODULE:ATTR              print a pipeline's Mermaid diagram
  runs --store URL list          list stored runs
  runs --store URL show RUN_ID   print a run's record and context
  runs --store URL history RUN_ID
                                 list a run's versions
  runs --store URL resume RUN_ID --pipeline MODULE:ATTR [--override JSON] [--recover]
                                 resume a run and say which steps ran
  runs --store URL delete RUN_ID
                                 delete a run
  runs --store URL purge [--older-than SECONDS] [--status STATUS]
                                 delete expired (and old) runs

Run "python -m stepkit COMMAND --help" for a command's options.

exit status: 0 success, 1 error from stepkit (one line on stderr), 2 usage error."""


def _graph(args: argparse.Namespace, out: TextIO) -> int:
    out.write(escape_lines(load_target(args.target).to_mermaid()))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stepkit",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"stepkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    add_inspect_parser(sub)
    graph = sub.add_parser(
        "graph",
        help="print the Mermaid diagram of a pipeline",
        description="Print the Mermaid flowchart of the pipeline named module:attribute.",
    )
    graph.add_argument(
        "target",
        metavar="MODULE:ATTR",
        help="the pipeline, e.g. app.flows:reply (the current folder is on the import path)",
    )
    graph.set_defaults(func=_graph)
    add_runs_parser(sub)
    return parser


def _fail(command: str, message: str) -> None:
    print(f"stepkit {command}: {escape(message)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; return the exit status (help and --version go to ``out``)."""
    out = out or sys.stdout
    try:
        with contextlib.redirect_stdout(out):
            args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help, --version (0) or a usage error (2)
        return 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 2
    command: str = args.command
    try:
        status: Any = args.func(args, out)
    except CommandError as exc:
        _fail(command, str(exc))
        return exc.status
    except StepkitError as exc:
        _fail(command, f"{type(exc).__name__}: {exc}")
        return 1
    return int(status)
