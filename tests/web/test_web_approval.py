"""Human approval in the FastAPI and Flask apps, driven in a real headless Chromium.

Every scenario runs against both apps (the ``site`` fixture). Sends are counted
in the outbox file the ``send`` step writes, not in logs.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Response

from stepkit import decode_checkpoint
from stepkit.cli import main as cli

from .conftest import EXAMPLE, TTL, Site

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
ORDER = "My order #1042 has not arrived yet. Can you check where it is?"


def new_request(page: Page, site: Site, customer: str, message: str = ORDER) -> str:
    """Fill in the request form; return the run id of the new row in the list."""
    page.goto(site.url + "/")
    before = set(page.locator("tr.pending").evaluate_all("rows => rows.map(r => r.id)"))
    page.get_by_label("Customer").fill(customer)
    page.get_by_label("Message").fill(message)
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Draft a reply").click()
    assert_redirected_after_post(nav.value, "/")
    after = set(page.locator("tr.pending").evaluate_all("rows => rows.map(r => r.id)"))
    (new,) = after - before
    return str(new).removeprefix("run-")


def assert_redirected_after_post(response: Response | None, path: str) -> None:
    """POST -> 303 -> GET ``path``, answered with 200."""
    assert response is not None
    assert response.status == 200
    post = response.request.redirected_from
    assert post is not None
    assert post.method == "POST"
    answer = post.response()
    assert answer is not None
    assert answer.status == 303
    url = urlsplit(response.url)
    assert f"{url.path}?{url.query}".startswith(path)


def decide(page: Page, run_id: str, approver: str, button: str) -> Response | None:
    row = page.locator(f"#run-{run_id}")
    row.get_by_placeholder("Your name").fill(approver)
    with page.expect_navigation() as nav:
        row.get_by_role("button", name=button).click()
    return nav.value


def history(site: Site, run_id: str) -> str:
    out = io.StringIO()
    assert cli(["runs", "--store", f"sqlite:///{site.settings.db}", "history", run_id], out) == 0
    return out.getvalue()


class TestStoreDesk:
    def test_approve_sends_once_and_records_who_and_when(self, site: Site, page: Page):
        """A request is listed with its draft; Approve sends it once and redirects (303)."""
        run_id = new_request(page, site, "Ann Lee")
        row = page.locator(f"#run-{run_id}")
        assert "Dear Ann Lee, thank you" in row.locator(".reply").inner_text()
        assert "My order #1042" in row.inner_text()
        assert site.sends(run_id) == 0

        assert_redirected_after_post(decide(page, run_id, "Alice", "Approve and send"), "/")
        assert page.locator(f"#run-{run_id}").count() == 0
        done = page.locator(f"#done-{run_id}")
        assert "approved by Alice" in done.inner_text()
        assert done.locator(".sent").inner_text() == "sent"
        assert site.sends(run_id) == 1
        text = history(site, run_id)
        assert "override" in text
        assert "    approver: 'Alice'\n" in text
        assert "    decided_at: '2030-03-17T17:46:40Z'\n" in text

    def test_reject_sends_nothing_and_records_the_decision(self, site: Site, page: Page):
        """Reject ends the run without sending; the rejection and its author are in history."""
        run_id = new_request(page, site, "Bo Chen", "Please cancel my subscription.")
        assert_redirected_after_post(decide(page, run_id, "Rita", "Reject"), "/")
        done = page.locator(f"#done-{run_id}")
        assert "rejected by Rita" in done.inner_text()
        assert done.locator(".sent").inner_text() == "not sent"
        assert site.sends(run_id) == 0
        text = history(site, run_id)
        assert "    approved: False\n" in text
        assert "    approver: 'Rita'\n" in text

    def test_double_click_on_approve_sends_once(self, site: Site, page: Page):
        """A double click on Approve sends the reply once; the page then says it was sent.

        Chromium posts the form once or twice (it may drop the second submission
        while the first is in flight); a second POST is answered 409.
        """
        run_id = new_request(page, site, "Cy Diaz")
        posts: list[str] = []
        answers: list[int] = []
        page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
        page.on(
            "response", lambda r: answers.append(r.status) if r.request.method == "POST" else None
        )
        row = page.locator(f"#run-{run_id}")
        row.get_by_placeholder("Your name").fill("Alice")
        row.get_by_role("button", name="Approve and send").dblclick()
        outcome = page.locator(f"#conflict, #done-{run_id}")
        outcome.wait_for()
        assert 1 <= len(posts) <= 2
        assert set(answers) <= {303, 409}
        assert answers.count(303) <= 1
        assert site.sends(run_id) == 1
        assert history(site, run_id).count(" override ") == 1
        assert "sent" in outcome.inner_text()

    def test_two_tabs_approving_at_once_send_once(self, site: Site, tabs: Callable[[], Page]):
        """Two tabs submit the same approval together: one send, one "already handled" (409)."""
        run_id = new_request(tabs(), site, "Dee Evans")
        first, second = tabs(), tabs()
        for tab, name in ((first, "Alice"), (second, "Bob")):
            tab.goto(site.url + "/")
            tab.locator(f"#run-{run_id}").get_by_placeholder("Your name").fill(name)
        with first.expect_navigation() as one, second.expect_navigation() as two:
            for tab in (first, second):  # submit both before either answer arrives
                tab.locator(f"#run-{run_id} form").evaluate("form => form.requestSubmit()")
        statuses = sorted(r.status for r in (one.value, two.value) if r is not None)
        assert statuses == [200, 409]
        loser = first if one.value is not None and one.value.status == 409 else second
        assert loser.locator("h1").inner_text() == "This request was already handled"
        assert "nothing was sent twice" in loser.locator("#conflict").inner_text()
        assert "the reply was sent" in loser.locator("#conflict").inner_text()
        assert site.sends(run_id) == 1
        assert history(site, run_id).count(" override ") == 1

    def test_a_post_from_another_site_is_refused(self, site: Site, page: Page):
        """A form on another origin posting an approval gets 403; nothing is sent."""
        run_id = new_request(page, site, "Eve Fox")
        version = page.locator(f"#run-{run_id} input[name=version]").get_attribute("value")
        page.goto("about:blank")  # an opaque origin: the browser sends "Origin: null"
        page.set_content(
            f'<form method="post" action="{site.url}/runs/{run_id}/approve">'
            f'<input name="version" value="{version}"><input name="approver" value="x">'
            "<button>win a prize</button></form>"
        )
        with page.expect_navigation() as nav:
            page.get_by_role("button").click()
        assert nav.value is not None
        assert nav.value.status == 403
        assert site.sends(run_id) == 0
        page.goto(site.url + "/")
        assert page.locator(f"#run-{run_id}").count() == 1


def new_signed_request(page: Page, site: Site, customer: str) -> None:
    """Create a request on the signed variant; end on its review page."""
    page.goto(site.url + "/signed/")
    page.get_by_label("Customer").fill(customer)
    page.get_by_label("Message").fill(ORDER)
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Draft a reply").click()
    assert_redirected_after_post(nav.value, "/signed/review?checkpoint=")
    assert page.locator("h1").inner_text() == "Review this reply"


def submit_signed(page: Page, button: str) -> Response:
    page.get_by_placeholder("Your name").fill("Alice")
    with page.expect_navigation() as nav:
        page.get_by_role("button", name=button).click()
    assert nav.value is not None
    return nav.value


# Edit the reply inside the hidden checkpoint, keeping the old signature.
EDIT_REPLY = """field => {
  const b64 = field.value.replace(/-/g, '+').replace(/_/g, '/');
  const bytes = atob(b64 + '==='.slice((b64.length + 3) % 4));
  const edited = bytes.replace('within a day', 'within a year');
  field.value = btoa(edited).replace(/[+]/g, '-').replace(/[/]/g, '_').replace(/=+$/, '');
  return field.value;
}"""


class TestSignedForms:
    def test_approve_resumes_the_checkpoint_from_the_form(self, site: Site, page: Page):
        """The review page carries the signed checkpoint; approving sends and redirects."""
        new_signed_request(page, site, "Fay Gold")
        assert "Dear Fay Gold" in page.locator(".reply").inner_text()
        response = submit_signed(page, "Approve and send")
        assert_redirected_after_post(response, "/signed/?done=sent")
        assert page.locator("#done").inner_text() == "Approved: the reply was sent."
        assert site.sends("sig-1") == 1

    def test_a_tampered_form_is_a_400(self, site: Site, page: Page):
        """Editing the reply inside the hidden checkpoint breaks its signature: 400, no send."""
        new_signed_request(page, site, "Gus Hall")
        field = page.locator("input[name=checkpoint]")
        tampered = field.evaluate(EDIT_REPLY)
        assert "within a year" in decode_checkpoint(tampered).context["reply"]  # well-formed
        response = submit_signed(page, "Approve and send")
        assert response.status == 400
        assert page.locator("h1").inner_text() == "Invalid approval form"
        assert "altered" in page.locator("#problem").inner_text()
        assert site.sends("sig-1") == 0

    def test_an_expired_form_is_a_400(self, site: Site, page: Page):
        """A form posted after the checkpoint's ttl: 400 saying it expired, no send."""
        new_signed_request(page, site, "Hal Ito")
        site.clock.advance(TTL + 1)
        response = submit_signed(page, "Approve and send")
        assert response.status == 400
        assert page.locator("h1").inner_text() == "Approval form expired"
        assert site.sends("sig-1") == 0


@pytest.mark.parametrize("site", ["fastapi"], indirect=True)
def test_screenshots_for_the_docs(site: Site, tabs: Callable[[], Page]):
    """The list page and the conflict page, saved to docs/images/ for docs/web-approval.md."""
    page = tabs()
    first = new_request(page, site, "Ann Lee")
    new_request(page, site, "Bo Chen", "Please cancel my subscription from next month on.")
    third = new_request(page, site, "Cy Diaz", "The invoice for March shows the wrong address.")
    decide(page, third, "Rita", "Approve and send")
    _save(page, "web-approval-list.png")
    other = tabs()
    other.goto(site.url + "/")
    decide(page, first, "Alice", "Approve and send")
    conflict = decide(other, first, "Bob", "Approve and send")
    assert conflict is not None
    assert conflict.status == 409
    _save(other, "web-approval-conflict.png")


def _save(page: Page, name: str) -> None:
    """Write the screenshot only when it changed, so a test run leaves git clean."""
    image = page.screenshot(full_page=True)
    path = DOCS_IMAGES / name
    if not path.exists() or path.read_bytes() != image:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(image)


def test_importing_the_apps_writes_nothing(tmp_path):
    """Both app modules import (module-level ``app``) without creating a file or folder."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(EXAMPLE), *sys.path]),
        "STEPKIT_APPROVALS_DB": str(tmp_path / "db" / "approvals.db"),
    }
    code = "import fastapi_app, flask_app; print(type(fastapi_app.app).__name__, flask_app.app)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("FastAPI <Flask 'flask_app'>")
    assert list(tmp_path.iterdir()) == []
