"""``python -m stepkit runs --store URL list|show|history|resume|delete|purge``."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from typing import Any, TextIO

from stepkit.errors import RunNotFoundError
from stepkit.stores import RunRecord, open_store


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


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
        (r.run_id, r.pipeline, r.status, str(r.version), r.step_name or "-", _when(r.updated_at))
        for r in runs
    ]
    out.write(_table(rows) + "\n")


def _show(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    r = _record(store, args.run_id)
    fields = [
        ("run id", r.run_id),
        ("pipeline", r.pipeline),
        ("status", r.status),
        ("version", str(r.version)),
        ("step", r.step_name or "(before the first step)"),
        ("error", r.error or "-"),
        ("created", _when(r.created_at)),
        ("updated", _when(r.updated_at)),
        ("expires", _when(r.expires_at) if r.expires_at else "never"),
        ("lease until", _when(r.lease_until)),
    ]
    for key, value in fields:
        out.write(f"{key + ':':<13}{value}\n")
    out.write("context:\n")
    for key, value in store.snapshot(args.run_id).items():
        out.write(f"  {key}: {value!r}\n")


def _history(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    rows: list[tuple[str, ...]] = [
        ("VERSION", "PARENT", "STEP", "CHANGED", "REMOVED", "SNAPSHOT", "CREATED (UTC)")
    ]
    for v in store.history(args.run_id):
        changed = ", ".join(json.loads(v.changes)) or "-"
        rows.append(
            (
                str(v.version),
                "-" if v.parent is None else str(v.parent),
                v.step_name or "(start)",
                changed,
                ", ".join(v.removed) or "-",
                "yes" if v.snapshot is not None else "",
                _when(v.created_at),
            )
        )
    out.write(_table(rows) + "\n")


def _resume(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    from stepkit.cli._main import load_target

    pipeline = load_target(args.pipeline_target)
    override = json.loads(args.override) if args.override else None
    result = pipeline.resume(args.run_id, store=store, recover=args.recover, override_data=override)
    out.write(f"run {result.run_id}: {result.status}\n")


def _delete(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    if not store.delete(args.run_id):
        raise RunNotFoundError(f"no run {args.run_id!r} in this store", run_id=args.run_id)
    out.write(f"deleted run {args.run_id}\n")


def _purge(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    count = store.purge(
        expired=not args.keep_expired, older_than=args.older_than, status=args.status
    )
    out.write(f"purged {count} run(s)\n")


def add_parser(sub: Any) -> None:
    runs = sub.add_parser("runs", help="manage durable runs in a store")
    runs.add_argument(
        "--store", required=True, help="store URL: sqlite:///runs.db, file://dir, ..."
    )
    runs.set_defaults(func=run_command)
    actions = runs.add_subparsers(dest="action", required=True)
    lst = actions.add_parser("list", help="list runs, newest first")
    lst.add_argument("--pipeline")
    lst.add_argument("--status", choices=["running", "paused", "completed", "failed"])
    lst.add_argument("--limit", type=int, default=50)
    lst.set_defaults(action_fn=_list)
    for name, fn, text in (
        ("show", _show, "a run's record and context"),
        ("history", _history, "a run's versions"),
        ("delete", _delete, "delete a run"),
    ):
        p = actions.add_parser(name, help=text)
        p.add_argument("run_id")
        p.set_defaults(action_fn=fn)
    res = actions.add_parser("resume", help="resume a run with the pipeline module:attribute")
    res.add_argument("run_id")
    res.add_argument("--pipeline", dest="pipeline_target", required=True, help="module:attribute")
    res.add_argument("--recover", action="store_true", help="take over a run left running")
    res.add_argument("--override", help="override data as a JSON object")
    res.set_defaults(action_fn=_resume)
    purge = actions.add_parser("purge", help="delete expired (and optionally old) runs")
    purge.add_argument("--older-than", type=float, metavar="SECONDS")
    purge.add_argument("--status", choices=["running", "paused", "completed", "failed"])
    purge.add_argument("--keep-expired", action="store_true", help="do not purge expired runs")
    purge.set_defaults(action_fn=_purge)


def run_command(args: argparse.Namespace, out: TextIO) -> int:
    with open_store(args.store) as store:
        args.action_fn(store, args, out)
    return 0
