"""The command line as a whole: help, --version, inspect, exit statuses, escaping."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
import uuid
from decimal import Decimal

import pytest

import stepkit
from stepkit import Pipeline
from stepkit.cli import main as cli

SECRET = "0123456789abcdef0123"


def checkpoint(context: dict[str, object], *, secret: str | None = None, run_id: str = "r1") -> str:
    """A checkpoint after one step that leaves ``context`` as it is."""
    pipeline = Pipeline("p", secret=secret) if secret else Pipeline("p")
    return pipeline.step("s", lambda ctx: None).run(context, run_id=run_id).checkpoint


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli(list(argv), out), out.getvalue()


class TestHelp:
    def test_top_level_help_lists_every_command_without_markup(self):
        """python -m stepkit --help names every command and runs action, in plain text."""
        done = subprocess.run(
            [sys.executable, "-m", "stepkit", "--help"], capture_output=True, text=True
        )
        assert done.returncode == 0
        for word in ("inspect", "graph", "runs", "list", "show", "history", "resume"):
            assert word in done.stdout
        assert "delete" in done.stdout
        assert "purge" in done.stdout
        assert "``" not in done.stdout
        assert "exit status" in done.stdout.lower()

    def test_runs_help_lists_its_actions_and_store_urls(self):
        """runs --help lists every action and the store URL forms, in plain text."""
        code, out = run("runs", "--help")
        assert code == 0
        for action in ("list", "show", "history", "resume", "delete", "purge"):
            assert action in out
        assert "sqlite:///" in out
        assert "file://" in out
        assert "``" not in out

    def test_every_action_has_help(self):
        """Each runs action's options are explained."""
        code, out = run("runs", "--store", "memory://", "list", "--help")
        assert code == 0
        assert "--pipeline NAME" in out
        assert "at most" in out


def test_version():
    """--version prints stepkit's version and exits 0."""
    done = subprocess.run(
        [sys.executable, "-m", "stepkit", "--version"], capture_output=True, text=True
    )
    assert (done.returncode, done.stdout) == (0, f"stepkit {stepkit.__version__}\n")


class TestExitStatus:
    def test_usage_errors_exit_2(self, capsys):
        """A missing or unknown command is a usage error: status 2."""
        assert cli([], io.StringIO()) == 2
        assert cli(["frobnicate"], io.StringIO()) == 2
        assert "usage:" in capsys.readouterr().err

    def test_stepkit_errors_exit_1(self, capsys):
        """An error from stepkit prints one line on stderr: status 1."""
        assert run("inspect", "not-a-checkpoint!") == (1, "")
        err = capsys.readouterr().err
        assert err.startswith("stepkit inspect: InvalidCheckpointError:")
        assert len(err.strip().splitlines()) == 1

    def test_graph_target_not_of_the_form_module_attribute(self, capsys):
        """graph with a target lacking ':' is a usage error, not a traceback."""
        assert cli(["graph", "just_a_module"], io.StringIO()) == 2
        assert "module:attribute" in capsys.readouterr().err

    def test_graph_target_that_is_not_a_pipeline(self, capsys):
        """graph naming something that is not a pipeline fails with status 1 and says so."""
        assert cli(["graph", "json:dumps"], io.StringIO()) == 1
        assert "not a pipeline" in capsys.readouterr().err


class TestInspectSecret:
    def test_unset_secret_env_fails(self, monkeypatch, capsys):
        """--secret-env naming an unset variable fails instead of showing 'NOT verified'."""
        monkeypatch.delenv("STEPKIT_TEST_SECRET", raising=False)
        cp = checkpoint({"a": 1}, secret=SECRET)
        code, out = run("inspect", cp, "--secret-env", "STEPKIT_TEST_SECRET")
        assert (code, out) == (2, "")
        err = capsys.readouterr().err
        assert "STEPKIT_TEST_SECRET" in err
        assert "not set" in err

    def test_empty_secret_env_fails(self, monkeypatch, capsys):
        """An empty secret variable is refused too (it would verify nothing)."""
        monkeypatch.setenv("STEPKIT_TEST_SECRET", "")
        cp = checkpoint({"a": 1}, secret=SECRET)
        assert run("inspect", cp, "--secret-env", "STEPKIT_TEST_SECRET")[0] == 2
        assert "empty" in capsys.readouterr().err

    def test_secret_env_verifies(self, monkeypatch):
        """--secret-env reads the secret from the environment and verifies."""
        monkeypatch.setenv("STEPKIT_TEST_SECRET", SECRET)
        cp = checkpoint({"a": 1}, secret=SECRET)
        code, out = run("inspect", cp, "--secret-env", "STEPKIT_TEST_SECRET")
        assert code == 0
        assert "signature verified" in out

    def test_secret_and_secret_env_exclude_each_other(self, monkeypatch):
        """Giving both --secret and --secret-env is a usage error."""
        monkeypatch.setenv("STEPKIT_TEST_SECRET", SECRET)
        cp = checkpoint({"a": 1}, secret=SECRET)
        argv = ["inspect", cp, "--secret", SECRET, "--secret-env", "STEPKIT_TEST_SECRET"]
        assert cli(argv, io.StringIO()) == 2


class TestInspectJson:
    def test_values_are_json_not_python_reprs(self):
        """--json prints dates, bytes, decimals, sets... as plain JSON values."""
        when = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc)
        context = {
            "when": when,
            "day": dt.date(2024, 5, 1),
            "at": dt.time(9, 15),
            "wait": dt.timedelta(minutes=1, microseconds=500_000),
            "price": Decimal("12.50"),
            "id": uuid.UUID(int=1),
            "blob": b"\x00\xff",
            "tags": {"b", "a"},
            "pair": (1, 2),
            "big": 10**30,
            "nan": float("nan"),
            "inf": float("-inf"),
            "nested": {"k": [dt.date(2024, 1, 2)]},
            "keys": {1: "one", (1, 2): "pair"},
        }
        code, out = run("inspect", checkpoint(context), "--json")
        assert code == 0
        doc = json.loads(out)  # strict: no NaN or Infinity literals
        assert doc["context"] == {
            "when": "2024-05-01T12:30:00+00:00",
            "day": "2024-05-01",
            "at": "09:15:00",
            "wait": 60.5,
            "price": "12.50",
            "id": "00000000-0000-0000-0000-000000000001",
            "blob": "AP8=",
            "tags": ["a", "b"],
            "pair": [1, 2],
            "big": 10**30,
            "nan": "NaN",
            "inf": "-Infinity",
            "nested": {"k": ["2024-01-02"]},
            "keys": {"1": "one", "[1, 2]": "pair"},
        }
        assert doc["created"].endswith("+00:00")
        assert doc["run_id"] == "r1"

    def test_json_parses_strictly(self):
        """The JSON output is accepted by a strict parser (no NaN/Infinity constants)."""
        code, out = run("inspect", checkpoint({"x": float("inf")}), "--json")
        assert code == 0

        def refuse(name: str) -> None:
            raise AssertionError(f"non-standard JSON constant {name}")

        json.loads(out, parse_constant=refuse)


class TestEscaping:
    EVIL = "x\x1b[31mred\x1b]0;title\x07\x9b2J\u202eevil\r\n"

    def test_inspect_text_escapes_control_characters(self):
        """Control characters from a checkpoint never reach the terminal raw."""
        cp = checkpoint({self.EVIL: self.EVIL, "b": [self.EVIL]}, run_id=self.EVIL)
        code, out = run("inspect", cp)
        assert code == 0
        assert_clean(out)
        assert "run id:      x\\x1b[31mred" in out

    def test_inspect_json_escapes_control_characters(self):
        """--json output escapes them as \\u sequences and stays valid JSON."""
        cp = checkpoint({self.EVIL: self.EVIL}, run_id=self.EVIL)
        code, out = run("inspect", cp, "--json")
        assert code == 0
        assert_clean(out)
        doc = json.loads(out)
        assert doc["run_id"] == self.EVIL
        assert doc["context"] == {self.EVIL: self.EVIL}

    def test_error_messages_escape_control_characters(self, capsys, monkeypatch):
        """An error naming untrusted data prints it escaped, on one line."""
        monkeypatch.setenv("STEPKIT_TEST_SECRET", SECRET)
        cp = checkpoint({"a": 1}, secret="another-secret-of-16+", run_id=self.EVIL)
        assert run("inspect", cp, "--secret-env", "STEPKIT_TEST_SECRET")[0] == 1
        err = capsys.readouterr().err
        assert_clean(err)
        assert len(err.strip().splitlines()) == 1


def assert_clean(text: str) -> None:
    """No control character other than newline, and no bidi override, in ``text``."""
    bad = {c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F}
    bad |= {c for c in text if 0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069}
    assert not bad, sorted(map(hex, map(ord, bad)))


@pytest.mark.parametrize("argv", [["inspect", "-"], ["inspect", "-", "--json"]])
def test_inspect_reads_standard_input(argv, monkeypatch):
    """inspect - reads the checkpoint from standard input, in either format."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(checkpoint({"a": 1}) + "\n"))
    assert run(*argv)[0] == 0
