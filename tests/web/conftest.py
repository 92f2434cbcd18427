"""Fixtures of the browser tests: Debian's Chromium driven by Playwright, the apps on loopback.

Nothing is mocked: each app runs in a real HTTP server (uvicorn for FastAPI,
werkzeug for Flask) in a thread of this process, over a fresh SQLite store and
outbox in ``tmp_path``; one headless Chromium serves the whole package.
The desks get a :class:`FakeClock` (store times, checkpoint expiry, the
workflow client's wake times and timeouts) and
counting run ids, so pages, and the screenshots taken of them, are the same
on every run.
"""

from __future__ import annotations

import itertools
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stepkit.testing import FakeClock

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "web_approval"
sys.path.insert(0, str(EXAMPLE))

import fastapi_app  # noqa: E402
import flask_app  # noqa: E402
import uvicorn  # noqa: E402
from approvals import Settings, StoreDesk  # noqa: E402
from playwright.sync_api import BrowserContext, Page, sync_playwright  # noqa: E402
from signed_approvals import SignedDesk  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402
from workflow_approvals import WorkflowDesk  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START = 1_900_000_000.0  # 2030-03-17 17:46:40 UTC: every page shows the same times
TTL = 600.0
WAIT = 3600.0  # how long a workflow waits for a decision
KEY = b"a test key of thirty-two bytes!!"
APPS = ["fastapi", "flask"]


@pytest.fixture(scope="package")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """One headless Chromium (a fresh profile folder) for every browser test."""
    if not CHROMIUM.exists():
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            viewport={"width": 1100, "height": 800},
        )
        context.set_default_timeout(15_000)
        yield context
        context.close()


@pytest.fixture
def tabs(browser: BrowserContext) -> Iterator[Callable[[], Page]]:
    """Open tabs with ``tabs()``; all are closed after the test."""
    opened: list[Page] = []

    def new_tab() -> Page:
        opened.append(browser.new_page())
        return opened[-1]

    yield new_tab
    for page in opened:
        page.close()


@pytest.fixture
def page(tabs: Callable[[], Page]) -> Page:
    return tabs()


@dataclass
class Site:
    """An app being served, the desks behind it and its fake clock."""

    url: str
    desk: StoreDesk
    signed: SignedDesk
    workflow: WorkflowDesk
    clock: FakeClock
    settings: Settings

    def sends(self, request_id: str) -> int:
        """How many times the reply of ``request_id`` was sent (lines in the outbox)."""
        return sum(m["request_id"] == request_id for m in self.desk.outbox.messages())


@pytest.fixture(params=APPS)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    """Each app, served on a free loopback port over a fresh store."""
    clock = FakeClock(START)
    settings = Settings(
        db=tmp_path / "approvals.db", secret=KEY, checkpoint_ttl=TTL, approval_timeout=WAIT
    )
    runs, forms, flows = itertools.count(1), itertools.count(1), itertools.count(1)
    desk = StoreDesk(settings, clock=clock, new_id=lambda: f"req-{next(runs)}")
    signed = SignedDesk(settings, clock=clock, new_id=lambda: f"sig-{next(forms)}")
    workflow = WorkflowDesk(settings, clock=clock, new_id=lambda: f"wf-{next(flows)}")
    serve = _uvicorn if request.param == "fastapi" else _werkzeug
    module: Any = fastapi_app if request.param == "fastapi" else flask_app
    try:
        with serve(module.create_app(desk, signed, workflow)) as url:
            yield Site(url, desk, signed, workflow, clock, settings)
    finally:
        desk.close()
        workflow.close()


@contextmanager
def _uvicorn(app: Any) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:  # readiness, not timing: fails only if it never starts
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


@contextmanager
def _werkzeug(app: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(20)
        server.server_close()
