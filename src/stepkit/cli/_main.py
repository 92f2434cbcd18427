"""Command line: ``python -m stepkit inspect|graph ...``.

``inspect`` decodes a checkpoint (verifying it with ``--secret``); ``graph``
prints the Mermaid diagram of a pipeline named ``module:attribute``. Errors
print one line on stderr and exit with status 1 (2 for usage errors).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from stepkit.checkpoints._document import decode_checkpoint
from stepkit.cli._runs import add_parser as add_runs_parser
from stepkit.errors import StepkitError


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def _inspect(args: argparse.Namespace, out: TextIO) -> int:
    text = sys.stdin.read().strip() if args.checkpoint == "-" else args.checkpoint
    secret = args.secret if args.secret is not None else os.environ.get(args.secret_env or "")
    cp = decode_checkpoint(text, secret=secret or None)
    if cp.verified:
        trust = "signature verified"
    elif cp.signed:
        trust = "signed, NOT verified (pass --secret to verify)"
    else:
        trust = "unsigned"
    fields = [
        ("pipeline", cp.pipeline),
        ("version", cp.version or "-"),
        ("fingerprint", cp.fingerprint),
        ("step", cp.step_name or "(before the first step)"),
        ("run id", cp.run_id),
        ("created", cp.created_at.isoformat()),
        ("expires", cp.expires_at.isoformat() if cp.expires_at else "never"),
        ("integrity", trust + (", compressed" if cp.compressed else "")),
    ]
    if args.json:
        doc = {k.replace(" ", "_"): v for k, v in fields}
        doc["context"] = _jsonable(dict(cp.context))
        json.dump(doc, out, indent=2, ensure_ascii=False)
        out.write("\n")
        return 0
    for key, value in fields:
        out.write(f"{key + ':':<12} {value}\n")
    out.write("context:\n")
    for key, value in cp.context.items():
        out.write(f"  {key}: {value!r}\n")
    return 0


def load_target(target: str) -> Any:
    """Import ``module:attribute`` (named by the user on the command line)."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise SystemExit(f"stepkit: expected module:attribute, got {target!r}")
    sys.path.insert(0, os.getcwd())
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not hasattr(obj, "to_mermaid"):
        raise SystemExit(f"stepkit: {target} is a {type(obj).__name__}, not a pipeline")
    return obj


def _graph(args: argparse.Namespace, out: TextIO) -> int:
    out.write(load_target(args.target).to_mermaid())
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stepkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    inspect = sub.add_parser("inspect", help="decode and print a checkpoint")
    inspect.add_argument("checkpoint", help="the checkpoint string, or - to read standard input")
    inspect.add_argument("--secret", help="verify the signature with this secret")
    inspect.add_argument(
        "--secret-env", metavar="VAR", help="read the secret from this environment variable"
    )
    inspect.add_argument("--json", action="store_true", help="print JSON instead of text")
    inspect.set_defaults(func=_inspect)
    graph = sub.add_parser("graph", help="print the Mermaid diagram of module:pipeline")
    graph.add_argument("target", help="module:attribute naming a Pipeline")
    graph.set_defaults(func=_graph)
    add_runs_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args, out or sys.stdout))
    except StepkitError as exc:
        print(f"stepkit {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except (ImportError, AttributeError) as exc:
        target = getattr(args, "target", None) or getattr(args, "pipeline_target", "")
        print(f"stepkit {args.command}: cannot load {target!r}: {exc}", file=sys.stderr)
        return 1
    except json.JSONDecodeError as exc:
        print(f"stepkit {args.command}: --override is not valid JSON: {exc}", file=sys.stderr)
        return 2
