"""The optional per-run summary: a table of steps with status, attempts and duration.

Steps with ``log=False`` (and every step inside them) are left out, as they
are of the debug logs: :func:`quiet_paths` lists them once per run.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from stepkit.engine._commands import STOPPED
from stepkit.errors import PipelineAbortedError
from stepkit.events import RecordTuple
from stepkit.pipeline._plan import PipeItem

if TYPE_CHECKING:
    from stepkit.pipeline._builder import PipelineBuilder as Pipeline

log = logging.getLogger("stepkit")


def summary_logger(option: object) -> logging.Logger | None:
    """``log=True`` -> the ``stepkit`` logger; a Logger -> itself; falsy -> None."""
    if option is None or option is False:
        return None
    if option is True:
        return log
    if isinstance(option, logging.Logger | logging.LoggerAdapter):
        return option  # type: ignore[return-value]
    from stepkit.errors import InvalidArgumentError

    raise InvalidArgumentError(f"log= must be True, False or a logging.Logger, got {option!r}")


def quiet_paths(pipeline: Pipeline) -> frozenset[str]:
    """The step paths that ``log=False`` leaves out: such steps and every step inside them."""
    out: set[str] = set()
    _walk(pipeline, "", False, out)
    return frozenset(out)


def _walk(pipeline: Pipeline, prefix: str, hidden: bool, out: set[str]) -> None:
    for node, policy in zip(pipeline.nodes, pipeline.policies(), strict=True):
        path = prefix + node.name
        quiet = hidden or not policy.log
        if quiet:
            out.add(path)
        if node.kind == "branch":
            for key, target in node.cases:
                _walk(target, f"{path}/{key}/", quiet, out)
        elif node.kind == "step" and (node.parallel or isinstance(node.items[0], PipeItem)):
            for item in node.items:
                if isinstance(item, PipeItem):
                    _walk(item.pipeline, path + "/", quiet, out)
                elif quiet:
                    out.add(f"{path}/{item.name}")


def run_status(outcome: object, error: BaseException | None) -> str:
    """How a run ended, for its summary: completed, stopped, failed, aborted or cancelled."""
    if error is None:
        return "stopped" if outcome == STOPPED else "completed"
    if isinstance(error, PipelineAbortedError):
        return "aborted"
    if not isinstance(error, Exception):  # KeyboardInterrupt, task cancellation, SystemExit
        return "cancelled"
    return "failed"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def format_summary(
    pipeline: str,
    run_id: str,
    status: str,
    records: Sequence[RecordTuple],
    quiet: Collection[str] = (),
) -> str:
    """A plain-text table of the run's steps (those in ``quiet`` left out), with totals."""
    if quiet:
        records = [r for r in records if r[0] not in quiet]
    rows = [("step", "status", "attempts", "duration")]
    rows += [(name, st, str(attempts), _ms(dur)) for name, st, dur, attempts, _ in records]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"stepkit run {run_id} of pipeline {pipeline!r}: {status}"]
    for row in rows:
        lines.append(
            "  ".join(
                cell.ljust(w) if i < 2 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    counts = {s: sum(1 for r in records if r[1] == s) for s in ("completed", "skipped", "failed")}
    total = sum(r[2] for r in records if "/" not in r[0])
    lines.append(
        f"total: {len(records)} steps ({counts['completed']} completed, {counts['skipped']} "
        f"skipped, {counts['failed']} failed), {_ms(total)} in top-level steps"
    )
    completed = [r for r in records if r[1] == "completed"]
    if completed:
        slowest = max(completed, key=lambda r: r[2])
        fastest = min(completed, key=lambda r: r[2])
        average = sum(r[2] for r in completed) / len(completed)
        lines.append(f"average: {_ms(average)} per completed step")
        lines.append(f"slowest: {slowest[0]} ({_ms(slowest[2])})")
        lines.append(f"fastest: {fastest[0]} ({_ms(fastest[2])})")
    return "\n".join(lines)
