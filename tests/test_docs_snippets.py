"""The documentation's code runs as written, and what it claims holds.

Every ```python block of README.md runs; in docs/*.md a block runs when the line
before its fence is ``<!-- runnable -->`` (most pages show fragments). Each block
runs on its own, in a fresh namespace, in an empty temporary working folder.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from stepkit import Pipeline, StepFailedError, StepTimeoutError
from stepkit.testing import FakeSleep

ROOT = Path(__file__).resolve().parent.parent
MARK = "<!-- runnable -->"
BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)


def blocks(path: Path, *, all_blocks: bool) -> list[tuple[str, str]]:
    """(``file:line``, code) of the runnable python blocks in ``path``."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in BLOCK.finditer(text):
        lines_before = text[: match.start()].splitlines()
        marked = bool(lines_before) and lines_before[-1].strip() == MARK
        if all_blocks or marked:
            line = len(lines_before) + 1
            found.append((f"{path.relative_to(ROOT)}:{line}", match.group(1)))
    return found


SNIPPETS = blocks(ROOT / "README.md", all_blocks=True) + [
    snippet
    for page in sorted((ROOT / "docs").glob("*.md"))
    for snippet in blocks(page, all_blocks=False)
]


def test_snippets_are_found():
    """The README's two blocks and the marked docs blocks are collected."""
    names = [name for name, _ in SNIPPETS]
    assert sum(name.startswith("README.md") for name in names) >= 2
    assert any(name.startswith("docs/policies.md") for name in names)


@pytest.mark.parametrize(("where", "code"), SNIPPETS, ids=[name for name, _ in SNIPPETS])
def test_snippet_runs_as_written(where, code, tmp_path, monkeypatch):
    """A runnable block of the documentation runs without error, on its own."""
    monkeypatch.chdir(tmp_path)
    # exec: the code is our own documentation, read from this repository
    exec(compile(code, where, "exec"), {"__name__": "__snippet__"})


def test_a_step_timeout_is_a_step_failed_error_caused_by_a_timeout(runner):
    """As docs/policies.md says: the run raises StepFailedError, its __cause__ StepTimeoutError."""

    async def slow(ctx):
        await asyncio.Event().wait()  # never set

    pipeline = Pipeline("p").step("slow", slow, timeout=0.01, retries=2)
    with pytest.raises(StepFailedError) as info:
        runner.run(pipeline, sleep=FakeSleep())
    assert not isinstance(info.value, TimeoutError)
    assert isinstance(info.value.__cause__, StepTimeoutError)
    assert (info.value.step_name, info.value.attempts) == ("slow", 3)
    assert info.value.__cause__.timeout == 0.01
