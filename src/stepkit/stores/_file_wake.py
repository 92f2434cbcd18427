"""The signal mailbox of :class:`~stepkit.stores.FileStore`: ``signals.json`` in a run's folder.

A signal and the wake of its run are written under the run's lock.
"""

from __future__ import annotations

import builtins
import dataclasses
import os
import sys

from stepkit.errors import RunNotFoundError
from stepkit.stores._base import Change
from stepkit.stores._records import RunRecord, SignalRecord, signals_from_json, signals_to_json

if sys.platform != "win32":
    pass

from stepkit.stores._file_layout import FileLayout, _read

__all__ = ["FileWake"]


class FileWake(FileLayout):
    """Signals into a run's mailbox, kept as one JSON file per run."""

    def _deliver(self, signal: SignalRecord, change: Change) -> RunRecord | None:
        with self._locked(signal.run_id) as run_dir:
            record = self._read_run(run_dir, signal.run_id)
            if record is None:
                raise RunNotFoundError(f"no run {signal.run_id!r}", run_id=signal.run_id)
            box = self._read_mail(run_dir)
            key = signal.idempotency_key
            if key is not None and any(m.idempotency_key == key for m in box):
                return None
            now = self._clock()
            updated = change(record, now)
            box.append(dataclasses.replace(signal, seq=len(box) + 1, created_at=now))
            # the run first: a crash in between wakes the run for nothing (harmless), and
            # the sender, who got no receipt, sends again
            self._write_run(run_dir, updated)
            self._write(run_dir, "signals.json", signals_to_json(box).encode())
            self._sync_dir(run_dir)
            return record

    def _read_mail(self, run_dir: str) -> builtins.list[SignalRecord]:
        path = os.path.join(run_dir, "signals.json")
        data = _read(path)
        return [] if data is None else signals_from_json(data, path)

    def _signals(self, run_id: str) -> builtins.list[SignalRecord] | None:
        run_dir = self._dir(run_id)
        if self._read_run(run_dir, run_id) is None:
            return None
        return self._read_mail(run_dir)
