"""``python -m stepkit runs --store URL list|show|history|resume|delete|purge``.

Pipeline runs and workflow runs (``stepkit.workflows``) live in the same
stores: ``show`` and ``history`` print a workflow run's input, wake time,
awaited signals and ops (see :mod:`stepkit.cli._workflow_runs`).

Every action works on an existing store: a database file or folder that does
not exist is an error naming its path, never a new, empty store.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, TextIO

from stepkit.checkpoints import decode_context
from stepkit.cli._errors import CommandError, UsageError
from stepkit.cli._output import escape, table, when
from stepkit.cli._targets import load_target
from stepkit.cli._workflow_runs import is_workflow, show_workflow, workflow_history
from stepkit.errors import RunNotFoundError, StepkitError
from stepkit.stores import RunRecord, open_store

__all__ = ["add_parser"]

_STATUSES = ["running", "paused", "sleeping", "waiting", "completed", "failed", "cancelled"]
_URLS = """\
store URLs:
  sqlite:///runs.db            SQLiteStore, path relative to the current folder
  sqlite:////var/app/runs.db   SQLiteStore, absolute path (four slashes)
  file://runs                  FileStore folder (file:///abs/path for an absolute one)
  memory://                    an empty in-memory store (for trying things out)
The database file or folder must exist: runs never creates a store."""


def _existing_path(url: str) -> str | None:
    """The file or folder a store URL names, when it names one (see ``open_store``)."""
    scheme, sep, rest = url.partition("://")
    path = rest.partition("?")[0]
    scheme = scheme.lower()
    if sep and scheme == "sqlite" and path.startswith("/") and path[1:] not in ("", ":memory:"):
        return path[1:]
    if sep and scheme == "file" and path:
        return path
    return None


def _open(url: str) -> Any:
    path = _existing_path(url)
    if path is not None:
        folder = url.lower().startswith("file:")
        exists = os.path.isdir(path) if folder else os.path.isfile(path)
        if not exists:
            kind = "FileStore folder" if folder else "SQLite database"
            raise CommandError(
                f"no {kind} at {os.path.abspath(path)!r} (from --store {url!r}); check the "
                "path — runs works on an existing store and never creates one"
            )
    return open_store(url)


def _record(store: Any, run_id: str) -> RunRecord:
    record: RunRecord | None = store.get(run_id)
    if record is None:
        raise RunNotFoundError(f"no run {run_id!r} in this store", run_id=run_id)
    return record


def _list(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    runs = store.list(pipeline=args.pipeline, status=args.status, limit=args.limit)
    if not runs:
        out.write("no runs\n")
        return
    rows: list[tuple[str, ...]] = [
        ("RUN ID", "PIPELINE", "STATUS", "VERSION", "STEP", "UPDATED (UTC)")
    ]
    rows += [
        (r.run_id, r.pipeline, r.status, str(r.version), r.step_name or "-", when(r.updated_at))
        for r in runs
    ]
    out.write(table(rows) + "\n")


def _show(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    r = _record(store, args.run_id)
    fields = [
        ("run id", r.run_id),
        ("pipeline", r.pipeline),
        ("status", r.status),
        ("version", str(r.version)),
        ("step", r.step_name or "(before the first step)"),
        ("error", r.error or "-"),
        ("created", when(r.created_at)),
        ("updated", when(r.updated_at)),
        ("expires", when(r.expires_at) if r.expires_at else "never"),
        ("owner", r.owner or "-"),
        ("lease until", when(r.lease_until)),
    ]
    if is_workflow(r):
        fields[4] = ("workflow", r.pipeline)
        del fields[1]
    for key, value in fields:
        out.write(f"{key + ':':<13}{escape(value)}\n")
    if is_workflow(r):
        show_workflow(store, r, out)
        return
    out.write("context:\n")
    for key, value in store.snapshot(args.run_id).items():
        out.write(f"  {escape(key)}: {escape(repr(value))}\n")


def _history(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    if is_workflow(_record(store, args.run_id)):
        workflow_history(store.history(args.run_id), out)
        return
    rows: list[tuple[str, ...]] = [
        ("VERSION", "PARENT", "KIND", "STEP", "CHANGED", "REMOVED", "SNAPSHOT", "CREATED (UTC)")
    ]
    versions = store.history(args.run_id)
    for v in versions:
        changed = ", ".join(json.loads(v.changes)) or "-"
        rows.append(
            (
                str(v.version),
                "-" if v.parent is None else str(v.parent),
                v.kind,
                v.step_name or "-",
                changed,
                ", ".join(v.removed) or "-",
                "yes" if v.snapshot is not None else "",
                when(v.created_at),
            )
        )
    out.write(table(rows) + "\n")
    overrides = [v for v in versions if v.kind == "override"]
    if overrides:
        out.write("\noverride values:\n")
    for v in overrides:
        after = f" (after {v.step_name})" if v.step_name else ""
        out.write(f"  version {v.version}{escape(after)}:\n")
        for key, value in json.loads(v.changes).items():
            out.write(f"    {escape(key)}: {escape(_value(key, value))}\n")


def _value(key: str, encoded: Any) -> str:
    """One stored value as ``repr`` text; one that cannot be decoded as its raw JSON."""
    try:
        return repr(decode_context({key: encoded})[key])
    except StepkitError as exc:  # e.g. a registered type this process does not know
        raw = json.dumps(encoded, ensure_ascii=False)
        return f"{raw} (not decoded: {exc})"


def _override(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--override is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError(
            f"--override must be a JSON object such as '{{\"approved\": true}}', "
            f"got a {type(value).__name__}"
        )
    return value


def _resume(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    pipeline = load_target(args.pipeline_target, needs="resume")
    result = pipeline.resume(
        args.run_id,
        store=store,
        recover=args.recover or args.dead_owner is not None,
        dead_owner=args.dead_owner,
        expect_version=args.expect_version,
        override_data=args.override_data,
    )
    stopped = result.status == "stopped"
    status = f"paused after {result.stopped_at}" if stopped else result.status
    ran = [s.name if s.status == "completed" else f"{s.name} ({s.status})" for s in result.steps]
    out.write(f"run {escape(result.run_id)}: {escape(status)}\n")
    out.write(f"steps run: {escape(', '.join(ran) or 'none')}\n")


def _delete(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    if not store.delete(args.run_id):
        raise RunNotFoundError(f"no run {args.run_id!r} in this store", run_id=args.run_id)
    out.write(f"deleted run {escape(args.run_id)}\n")


def _purge(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    count = store.purge(
        expired=not args.keep_expired, older_than=args.older_than, status=args.status
    )
    out.write(f"purged {count} run(s)\n")


def _run_command(args: argparse.Namespace, out: TextIO) -> int:
    if args.action == "resume":  # a usage error, found before the store is opened
        args.override_data = _override(args.override)
    with _open(args.store) as store:
        args.action_fn(store, args, out)
    return 0


def add_parser(sub: Any) -> None:
    """Add the ``runs`` command and its actions to the top-level subparsers."""
    runs = sub.add_parser(
        "runs",
        help="manage durable runs in a store: list, show, history, resume, delete, purge",
        description="Manage the durable runs kept in a store.",
        epilog=_URLS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    runs.add_argument("--store", required=True, metavar="URL", help="the store's URL (see below)")
    runs.set_defaults(func=_run_command)
    actions = runs.add_subparsers(dest="action", required=True, metavar="ACTION", title="actions")
    lst = actions.add_parser("list", help="list runs, most recently updated first")
    lst.add_argument("--pipeline", metavar="NAME", help="only runs of this pipeline")
    lst.add_argument("--status", choices=_STATUSES, help="only runs with this status")
    lst.add_argument("--limit", type=int, default=50, help="show at most this many (default 50)")
    lst.set_defaults(action_fn=_list)
    for name, fn, text in (
        ("show", _show, "print a run's record and its current context"),
        ("history", _history, "list a run's versions: the keys each step changed (or its ops)"),
        ("delete", _delete, "delete a run and its history"),
    ):
        p = actions.add_parser(name, help=text)
        p.add_argument("run_id", metavar="RUN_ID")
        p.set_defaults(action_fn=fn)
    res = actions.add_parser(
        "resume",
        help="resume a paused, failed or crashed run with its pipeline",
        description="Resume a run with the pipeline named module:attribute, then say what ran.",
    )
    res.add_argument("run_id", metavar="RUN_ID")
    res.add_argument(
        "--pipeline",
        dest="pipeline_target",
        required=True,
        metavar="MODULE:ATTR",
        help="the pipeline, e.g. app.flows:reply (the current folder is on the import path)",
    )
    res.add_argument(
        "--recover",
        action="store_true",
        help="take over a run left running whose lease has expired (its process died)",
    )
    res.add_argument(
        "--dead-owner",
        metavar="OWNER",
        help="take over a running run now: its owner (see 'runs show') is known to be dead",
    )
    res.add_argument(
        "--expect-version",
        type=int,
        metavar="N",
        help="resume only if the run still stands at version N (else exit 1, nothing runs)",
    )
    res.add_argument("--override", metavar="JSON", help="data for the run, e.g. '{\"ok\": true}'")
    res.set_defaults(action_fn=_resume)
    purge = actions.add_parser("purge", help="delete expired runs (and, if asked, old ones)")
    purge.add_argument(
        "--older-than", type=float, metavar="SECONDS", help="also runs not updated for this long"
    )
    purge.add_argument("--status", choices=_STATUSES, help="only runs with this status")
    purge.add_argument("--keep-expired", action="store_true", help="do not purge expired runs")
    purge.set_defaults(action_fn=_purge)
