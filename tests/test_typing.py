"""Public signatures are typed for users: mypy --strict catches misspelt and mistyped options."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

TYPING = Path(__file__).parent / "typing"


def _mypy(path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(path)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
        check=False,
    )
    return done.stdout + done.stderr


@pytest.mark.slow
def test_realistic_user_code_type_checks():
    """tests/typing/user_code.py, written as a user would, is clean under mypy --strict."""
    out = _mypy(TYPING / "user_code.py")
    assert "error" not in out, out


@pytest.mark.slow
def test_mistakes_are_type_errors():
    """Each line of tests/typing/misuse.py marked '# error' is an error, and no other line."""
    path = TYPING / "misuse.py"
    lines = path.read_text().splitlines()
    marked = {n for n, line in enumerate(lines, 1) if re.search(r"\)  # error", line)}
    out = _mypy(path)
    reported = {int(m) for m in re.findall(rf"{re.escape(path.name)}:(\d+): error", out)}
    assert marked, "the file must mark its mistakes"
    assert reported == marked, out
