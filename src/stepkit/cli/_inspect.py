"""``python -m stepkit inspect CHECKPOINT``: decode a checkpoint and print it, text or JSON."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, TextIO

from stepkit.checkpoints._document import decode_checkpoint
from stepkit.cli._errors import UsageError
from stepkit.cli._output import dump_json, escape

__all__ = ["add_parser"]


def _secret(args: argparse.Namespace) -> str | None:
    """The secret to verify with, or None; a named but unusable one is a usage error."""
    if args.secret_env is not None:
        secret = os.environ.get(args.secret_env)
        if secret is None:
            raise UsageError(
                f"--secret-env: the environment variable {args.secret_env} is not set; "
                "export it, or pass --secret"
            )
        if not secret:
            raise UsageError(f"--secret-env: the environment variable {args.secret_env} is empty")
        return secret
    if args.secret is not None and not args.secret:
        raise UsageError("--secret is empty")
    return str(args.secret) if args.secret is not None else None


def _inspect(args: argparse.Namespace, out: TextIO) -> int:
    secret = _secret(args)
    text = sys.stdin.read().strip() if args.checkpoint == "-" else args.checkpoint
    cp = decode_checkpoint(text, secret=secret)
    if cp.verified:
        trust = "signature verified"
    elif cp.signed:
        trust = "signed, NOT verified (pass --secret or --secret-env to verify)"
    else:
        trust = "unsigned"
    fields: list[tuple[str, Any]] = [
        ("pipeline", cp.pipeline),
        ("version", cp.version),
        ("fingerprint", cp.fingerprint),
        ("step", cp.step_name),
        ("run id", cp.run_id),
        ("created", cp.created_at),
        ("expires", cp.expires_at),
    ]
    if args.json:
        doc = {key.replace(" ", "_"): value for key, value in fields}
        doc.update(signed=cp.signed, verified=cp.verified, compressed=cp.compressed)
        doc["integrity"] = trust
        doc["context"] = dict(cp.context)
        out.write(dump_json(doc) + "\n")
        return 0
    shown = dict(fields)
    shown["version"] = cp.version or "-"
    shown["step"] = cp.step_name or "(before the first step)"
    shown["created"] = cp.created_at.isoformat()
    shown["expires"] = cp.expires_at.isoformat() if cp.expires_at else "never"
    shown["integrity"] = trust + (", compressed" if cp.compressed else "")
    for key, value in shown.items():
        out.write(f"{key + ':':<12} {escape(str(value))}\n")
    out.write("context:\n")
    for key, value in cp.context.items():
        out.write(f"  {escape(key)}: {escape(repr(value))}\n")
    return 0


def add_parser(sub: Any) -> None:
    """Add the ``inspect`` command to the top-level subparsers."""
    inspect = sub.add_parser(
        "inspect",
        help="decode and print a checkpoint",
        description="Decode a checkpoint and print what it holds. Decoding never runs code "
        "from the checkpoint; without a secret its signature is not checked.",
    )
    inspect.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="the checkpoint string, or - to read standard input",
    )
    secret = inspect.add_mutually_exclusive_group()
    secret.add_argument("--secret", help="verify the signature with this secret")
    secret.add_argument(
        "--secret-env",
        metavar="VAR",
        help="verify with the secret in this environment variable (kept out of shell history); "
        "an unset or empty variable is an error",
    )
    inspect.add_argument(
        "--json", action="store_true", help="print one JSON object instead of text"
    )
    inspect.set_defaults(func=_inspect)
