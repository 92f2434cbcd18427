"""How ``runs show`` and ``runs history`` print a workflow run: input, wake time, ops.

A workflow run's first version holds its input; each later version records one
op under its key ``id#n`` (``{"kind": "run", "value": ...}`` and the like, see
``docs/workflows.md``). Stored values are decoded for display; one that cannot
be decoded is shown as its raw JSON.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, TextIO

from stepkit.checkpoints import decode_context
from stepkit.cli._output import escape, table, when
from stepkit.errors import StepkitError
from stepkit.stores import RunRecord, VersionRecord

__all__ = ["describe_op", "is_workflow", "show_workflow", "workflow_history"]

#: The longest value a history row shows; longer ones end in an ellipsis.
WIDTH = 60


def is_workflow(record: RunRecord) -> bool:
    """Whether a run was started by ``stepkit.workflows`` (its meta names the workflow)."""
    if not record.meta.startswith('{"workflow"'):
        return False
    try:
        meta = json.loads(record.meta)
    except ValueError:
        return False
    return isinstance(meta, dict) and isinstance(meta.get("workflow"), str)


def _decoded(encoded: Any) -> str:
    try:
        value = decode_context({"v": encoded})["v"]
    except StepkitError as exc:
        return f"{json.dumps(encoded, ensure_ascii=False)} (not decoded: {exc})"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()  # step.now(): shorter than its repr
    return repr(value)


def _short(text: str) -> str:
    return text if len(text) <= WIDTH else text[: WIDTH - 1] + "…"


def _error(info: Any) -> str:
    if not isinstance(info, dict):
        return "failed"
    return f"{info.get('type', 'Exception')}: {info.get('message', '')}"


def _until(moment: Any) -> str:
    return "no timeout" if moment is None else f"until {when(float(moment))}"


def describe_op(record: Any) -> tuple[str, str]:
    """An op record as (kind, what it holds), for people."""
    if not isinstance(record, dict):
        return "?", _short(json.dumps(record))
    kind = str(record.get("kind", "?"))
    if kind in ("result", "run", "now", "uuid") and "value" in record:
        return kind, _decoded(record["value"])
    if kind == "run" and "retry" in record:
        return kind, f"attempt {record['retry']} failed ({_error(record.get('error'))}); " + (
            f"retry at {when(float(record['at']))}"
        )
    if kind == "run":
        return kind, f"failed after {record.get('attempts', 1)} attempt(s): " + _error(
            record.get("error")
        )
    if kind == "sleep":
        return kind, _until(record.get("until"))
    if kind == "signal":
        name = record.get("signal", "?")
        if "value" in record:
            return kind, f"{name} #{record.get('seq', '?')}: {_decoded(record['value'])}"
        if record.get("timeout"):
            return kind, f"{name}: timed out"
        if "error" in record:
            return kind, f"{name}: refused by its schema ({_error(record['error'])})"
        return kind, f"waiting for {name}, {_until(record.get('until'))}"
    if kind == "invoke":
        child = record.get("child", "?")
        if "value" in record:
            return kind, f"{child}: {_decoded(record['value'])}"
        if "error" in record:
            return kind, f"{child}: {_error(record['error'])}"
        return kind, f"started {child}, {_until(record.get('until'))}"
    if kind == "error":
        return kind, _error(record)
    if kind == "resume":
        return kind, "resumed after a failure"
    return kind, json.dumps(record, ensure_ascii=False)


def workflow_history(versions: list[VersionRecord], out: TextIO) -> None:
    """One row per version: its number, the op's key ``id#n``, kind and value."""
    rows: list[tuple[str, ...]] = [("VERSION", "KEY", "KIND", "VALUE", "CREATED (UTC)")]
    for v in versions:
        try:
            changes = json.loads(v.changes)
        except ValueError:
            changes = None
        if v.kind == "start" and isinstance(changes, dict):
            rows.append(
                (
                    str(v.version),
                    "-",
                    "start",
                    _short("input " + _decoded(changes.get("input"))),
                    when(v.created_at),
                )
            )
            continue
        if not isinstance(changes, dict) or not changes:
            rows.append((str(v.version), v.step_name or "-", v.kind, "?", when(v.created_at)))
            continue
        for key, record in changes.items():
            kind, value = describe_op(record)
            rows.append((str(v.version), key, kind, _short(value), when(v.created_at)))
    out.write(table(rows) + "\n")


def show_workflow(store: Any, record: RunRecord, out: TextIO) -> None:
    """The parts of ``runs show`` that only workflow runs have: wake time, signals, input."""
    wake = when(record.wake_at) if record.wake_at is not None else "-"
    waiting = ", ".join((record.waiting_for or "").split("\n")) or "-"
    out.write(f"{'wakes at:':<13}{escape(wake)}\n")
    out.write(f"{'waiting for:':<13}{escape(waiting)}\n")
    versions = store.history(record.run_id)
    ops = sum(1 for v in versions if v.kind == "op")
    out.write(f"{'ops:':<13}{ops} recorded (see 'runs history')\n")
    first = versions[0] if versions else None
    try:
        data = json.loads(first.changes) if first is not None else {}
    except ValueError:
        data = {}
    shown = _decoded(data.get("input")) if isinstance(data, dict) else "?"
    out.write(f"input:       {escape(shown)}\n")
