"""The durable-workflows desk (``/workflow/``) of both apps, driven in a real headless Chromium.

A decision is the run's ``approve`` signal, sent with one idempotency key per
wait; sends are counted in the outbox, signals in the run's mailbox. Time only
moves with the fixture's FakeClock (the workflow client's clock): nothing sleeps.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, Response

from stepkit import RunConflictError
from stepkit.cli import main as cli
from stepkit.testing import FakeClock

from .conftest import KEY, START, WAIT, Settings, Site, WorkflowDesk
from .test_web_approval import ORDER, _save, assert_redirected_after_post

BASE = "/workflow"


def new_request(page: Page, site: Site, customer: str, message: str = ORDER) -> str:
    """Fill in the workflow desk's request form; return the run id of the new row."""
    page.goto(f"{site.url}{BASE}/")
    before = set(page.locator("tr.pending").evaluate_all("rows => rows.map(r => r.id)"))
    page.get_by_label("Customer").fill(customer)
    page.get_by_label("Message").fill(message)
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Draft a reply").click()
    assert_redirected_after_post(nav.value, f"{BASE}/")
    after = set(page.locator("tr.pending").evaluate_all("rows => rows.map(r => r.id)"))
    (new,) = after - before
    return str(new).removeprefix("run-")


def decide(page: Page, run_id: str, approver: str, button: str) -> Response | None:
    row = page.locator(f"#run-{run_id}")
    row.get_by_placeholder("Your name").fill(approver)
    with page.expect_navigation() as nav:
        row.get_by_role("button", name=button).click()
    return nav.value


def history(site: Site, run_id: str) -> list[str]:
    """``python -m stepkit runs history`` of a workflow run, one string per row."""
    out = io.StringIO()
    store = f"sqlite:///{site.settings.workflows}"
    assert cli(["runs", "--store", store, "history", run_id], out) == 0
    return out.getvalue().splitlines()


def signals(site: Site, run_id: str) -> int:
    """How many decisions the run's mailbox holds."""
    return len(site.workflow.client.store.signals(run_id))


# Post a decision form (from the site's own origin) for any run id.
POST_FORM = """url => {
  const form = Object.assign(document.createElement('form'), {method: 'post', action: url});
  for (const [name, value] of [['version', '3'], ['approver', 'x']]) {
    form.appendChild(Object.assign(document.createElement('input'), {name, value}));
  }
  document.body.appendChild(form);
  form.submit();
}"""


class TestWorkflowDesk:
    def test_approve_signals_the_workflow_which_sends_once(self, site: Site, page: Page):
        """A request waits in the list; Approve signals it, it sends once, redirects (303)."""
        run_id = new_request(page, site, "Ann Lee")
        row = page.locator(f"#run-{run_id}")
        assert "Dear Ann Lee, thank you" in row.locator(".reply").inner_text()
        assert site.workflow.client.get_handle(run_id).status().status == "waiting"
        assert site.sends(run_id) == 0

        site.clock.advance(90)  # the approver decides a minute and a half later
        response = decide(page, run_id, "Alice", "Approve and send")
        assert_redirected_after_post(response, f"{BASE}/")
        assert page.locator(f"#run-{run_id}").count() == 0
        done = page.locator(f"#done-{run_id}")
        assert "approved by Alice" in done.inner_text()
        assert "2030-03-17T17:48:10Z" in done.inner_text()
        assert done.locator(".sent").inner_text() == "sent"
        assert site.sends(run_id) == 1
        (letter,) = site.workflow.outbox.messages()
        assert letter["idempotency_key"] == f"{run_id}/send#0"
        assert site.workflow.client.store.signals(run_id)[0].idempotency_key == (
            f"{run_id}/approval#0"
        )

    def test_the_approver_and_the_time_are_in_the_runs_history(self, site: Site, page: Page):
        """``runs history`` shows the approve signal with who decided, at the time of the click."""
        run_id = new_request(page, site, "Ann Lee")
        site.clock.advance(90)
        decide(page, run_id, "Alice", "Approve and send")
        rows = history(site, run_id)
        (received,) = [r for r in rows if " approve #1: " in r]
        assert received.startswith("4 ")
        assert "approval#0  signal  approve #1: {'approved': True, 'approver': 'Alice'" in received
        assert received.endswith("2030-03-17 17:48:10")
        assert any(r.split()[1:3] == ["send#0", "run"] for r in rows[1:])

    def test_reject_ends_the_run_without_sending(self, site: Site, page: Page):
        """Reject sends the same signal with approved=False: nothing is sent, the decision kept."""
        run_id = new_request(page, site, "Bo Chen", "Please cancel my subscription.")
        assert_redirected_after_post(decide(page, run_id, "Rita", "Reject"), f"{BASE}/")
        done = page.locator(f"#done-{run_id}")
        assert "rejected by Rita" in done.inner_text()
        assert done.locator(".sent").inner_text() == "not sent"
        assert site.sends(run_id) == 0
        (received,) = [r for r in history(site, run_id) if " approve #1: " in r]
        assert "{'approved': False, 'approver': 'Rita'" in received
        assert not [r for r in history(site, run_id) if " send#0 " in r]

    def test_double_click_on_approve_sends_once(self, site: Site, page: Page):
        """A double click posts one or two signals with one key: one is kept, one send.

        Chromium posts the form once or twice; when twice, it may drop the first
        answer (the second navigation replaces it), so only the 409 is seen.
        """
        run_id = new_request(page, site, "Cy Diaz")
        answers: list[int] = []
        page.on(
            "response", lambda r: answers.append(r.status) if r.request.method == "POST" else None
        )
        row = page.locator(f"#run-{run_id}")
        row.get_by_placeholder("Your name").fill("Alice")
        row.get_by_role("button", name="Approve and send").dblclick()
        outcome = page.locator(f"#conflict, #done-{run_id}")
        outcome.wait_for()
        assert 1 <= len(answers) <= 2
        assert set(answers) <= {303, 409}
        assert answers.count(303) <= 1
        assert site.sends(run_id) == 1
        assert signals(site, run_id) == 1
        assert "sent" in outcome.inner_text()

    def test_two_tabs_approving_at_once_send_once(self, site: Site, tabs: Callable[[], Page]):
        """Two tabs send the decision together: one is applied, the other is a 409."""
        run_id = new_request(tabs(), site, "Dee Evans")
        first, second = tabs(), tabs()
        for tab, name in ((first, "Alice"), (second, "Bob")):
            tab.goto(f"{site.url}{BASE}/")
            tab.locator(f"#run-{run_id}").get_by_placeholder("Your name").fill(name)
        with first.expect_navigation() as one, second.expect_navigation() as two:
            for tab in (first, second):  # submit both before either answer arrives
                tab.locator(f"#run-{run_id} form").evaluate("form => form.requestSubmit()")
        statuses = sorted(r.status for r in (one.value, two.value) if r is not None)
        assert statuses == [200, 409]
        loser = first if one.value is not None and one.value.status == 409 else second
        assert loser.locator("h1").inner_text() == "This request was already handled"
        said = loser.locator("#conflict").inner_text()
        assert "nothing was sent twice" in said
        # the winner's run may still be sending when the loser's page is made
        assert "the reply was sent" in said or "applying that decision right now" in said
        assert "approved by Alice" in said or "approved by Bob" in said
        assert site.sends(run_id) == 1
        assert signals(site, run_id) == 1

    def test_a_wait_that_times_out_ends_without_sending(self, site: Site, tabs: Callable[[], Page]):
        """Nobody decides in time: the run ends unsent, and a late click is "already handled"."""
        page, stale = tabs(), tabs()
        run_id = new_request(page, site, "Eve Fox")
        stale.goto(f"{site.url}{BASE}/")  # a page rendered while the run still waited
        site.clock.advance(WAIT + 1)
        page.goto(f"{site.url}{BASE}/")  # the demo runs what is due when the list is shown
        assert page.locator(f"#run-{run_id}").count() == 0
        done = page.locator(f"#done-{run_id}")
        assert "timed out: nobody decided" in done.inner_text()
        assert done.locator(".sent").inner_text() == "not sent"
        assert site.workflow.client.get_handle(run_id).result(timeout=0) == {
            "timed_out": True,
            "sent": False,
            "decided_at": "2030-03-17T18:46:41Z",
        }

        late = decide(stale, run_id, "Alice", "Approve and send")
        assert late is not None
        assert late.status == 409
        assert "Nobody decided it in time" in stale.locator("#conflict").inner_text()
        assert site.sends(run_id) == 0
        assert signals(site, run_id) == 0  # a finished run takes no signal
        assert any("approve: timed out" in r for r in history(site, run_id))

    def test_an_unknown_request_is_a_404(self, site: Site, page: Page):
        """A decision for a run id that does not exist: 404, nothing sent."""
        page.goto(f"{site.url}{BASE}/")
        with page.expect_navigation() as nav:
            page.evaluate(POST_FORM, f"{site.url}{BASE}/runs/wf-404/approve")
        assert nav.value is not None
        assert nav.value.status == 404
        assert page.locator("h1").inner_text() == "No such request"


@pytest.mark.parametrize("site", ["fastapi"], indirect=True)
def test_workflow_screenshot_for_the_docs(site: Site, page: Page):
    """The workflow desk with a waiting, an approved and a timed-out request, for the docs."""
    late = new_request(page, site, "Bo Chen", "Please cancel my subscription from next month on.")
    site.clock.advance(WAIT + 1)
    first = new_request(page, site, "Ann Lee")
    new_request(page, site, "Cy Diaz", "The invoice for March shows the wrong address.")
    decide(page, first, "Rita", "Approve and send")
    assert "timed out" in page.locator(f"#done-{late}").inner_text()
    _save(page, "web-approval-workflow-list.png")


def test_without_inline_runs_a_worker_advances_them(tmp_path):
    """``inline=False``: handlers only start runs and send signals; ``run_due`` (a worker) acts."""
    clock = FakeClock(START)
    settings = Settings(db=tmp_path / "approvals.db", secret=KEY, approval_timeout=WAIT)
    web = WorkflowDesk(settings, clock=clock, new_id=lambda: "wf-1", inline=False)
    worker = WorkflowDesk(settings, clock=clock, inline=False).client  # another process's
    try:
        run_id = web.request("Ann Lee", ORDER)
        assert web.pending() == []  # not drafted yet
        assert worker.run_due() == 1
        (waiting,) = web.pending()
        web.decide(run_id, version=waiting.version, approved=True, approver="Alice")
        assert web.pending() == []  # decided, not yet applied
        assert "applying that decision right now" in web.describe(run_id)
        assert web.outbox.messages() == []
        with pytest.raises(RunConflictError):
            web.decide(run_id, version=waiting.version, approved=False, approver="Bob")
        assert worker.run_due() == 1
        assert [m["approver"] for m in web.outbox.messages()] == ["Alice"]
        assert web.describe(run_id).endswith("; the reply was sent.")
    finally:
        web.close()
        worker.store.close()
