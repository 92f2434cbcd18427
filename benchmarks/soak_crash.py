"""Soak test of durable runs: SIGKILL a persisting process at many points, recover, check.

Run: python benchmarks/soak_crash.py [--kills 200] [--store sqlite|file|both]
                                     [--seed N] [--dir PATH] [--keep-going]

The loop of tests/test_durable_crash.py with more kill points: each runs the
ten-step pipeline of tests/durable_worker.py in a child process that logs
every step to a file, kills it with SIGKILL (exactly at a step boundary, as
soon as a step signals, or after a random delay; some recovering children are
killed too), opens the store fresh, resumes the run with ``recover=True``
and checks the final context, the history and the log (each step ran, and
only the one in flight at a kill ran twice). Prints a summary; exits 1 if
any kill point failed its checks.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from durable_worker import (
    N,
    Outcome,
    calibrate,
    crash_and_recover,
    default_plans,
    reference_context,
)


def soak(kind: str, kills: int, seed: int, folder: Path, keep_going: bool) -> bool:
    path = str(folder / ("runs" if kind == "file" else "runs.db"))
    log = str(folder / f"{kind}-steps.log")
    reference = reference_context()
    t0 = time.perf_counter()
    run_seconds = calibrate(kind, path, log, "calibration")
    plans = default_plans(random.Random(seed), kills, run_seconds)
    outcomes: list[Outcome] = []
    failures: list[str] = []
    for i, plan in enumerate(plans):
        try:
            outcomes.append(crash_and_recover(kind, path, log, f"kill-{i}", plan, reference))
        except AssertionError as exc:
            failures.append(str(exc))
            print(f"FAILED kill point {i}: {exc}", file=sys.stderr)
            if not keep_going:
                break
        if (i + 1) % 50 == 0:
            print(f"  {kind}: {i + 1}/{len(plans)} kill points", flush=True)
    elapsed = time.perf_counter() - t0

    segments = [s for o in outcomes for s in o.segments]
    how = Counter(s.plan.how for s in segments)
    status = Counter(s.status for s in segments)
    persisted = Counter(s.after for s in segments)
    killed = sum(s.exit_code == -9 for s in segments)
    doubled = sum(bool(o.duplicates) for o in outcomes)
    in_flight = sum(s.logged > s.after - s.before for s in segments)
    print(f"\n{kind}: {len(outcomes)}/{len(plans)} kill points passed in {elapsed:.1f} s")
    print(f"  a clean run takes {run_seconds * 1000:.1f} ms (calibration)")
    print(f"  kills: {len(segments)} ({killed} by SIGKILL, the rest had exited); ", end="")
    print(", ".join(f"{k}: {v}" for k, v in sorted(how.items())))
    print("  status after the kill: " + ", ".join(f"{k}: {v}" for k, v in sorted(status.items())))
    print(
        "  steps persisted at the kill: "
        + " ".join(f"{n}:{persisted[n]}" for n in range(N + 1) if persisted[n])
    )
    print(f"  kills with a step in flight (logged, not persisted): {in_flight}")
    print(f"  runs where a step ran twice (allowed: the one in flight): {doubled}")
    print(f"  steps run by the recovering process: {sum(o.recovered_steps for o in outcomes)}")
    print(f"  failures: {len(failures)}")
    return not failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=200, help="kill points per store")
    parser.add_argument("--store", choices=("sqlite", "file", "both"), default="both")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--dir", type=Path, default=None, help="keep the stores and logs here")
    parser.add_argument("--keep-going", action="store_true", help="do not stop at a failure")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"soak_crash: {args.kills} kill points per store, seed {seed}")
    kinds = ("sqlite", "file") if args.store == "both" else (args.store,)
    ok = True
    with tempfile.TemporaryDirectory(prefix="stepkit-soak-") as temp:
        for kind in kinds:
            folder = (args.dir or Path(temp)) / kind
            folder.mkdir(parents=True, exist_ok=True)
            ok = soak(kind, args.kills, seed, folder, args.keep_going) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
