"""The optional per-run summary: a table of steps with status, attempts and duration."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from stepkit.events import RecordTuple

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


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def format_summary(pipeline: str, run_id: str, status: str, records: Sequence[RecordTuple]) -> str:
    """A plain-text table of the run's steps, with totals."""
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
    return "\n".join(lines)
