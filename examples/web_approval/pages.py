"""The HTML pages of both apps: plain strings, every value escaped, no JavaScript.

``base`` is the path the approval routes are mounted under: ``""`` for the
store-backed desk, ``"/workflow"`` for the durable-workflow one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from approvals import Handled, Pending
from signed_approvals import Review

__all__ = ["conflict", "index", "problem", "signed_index", "signed_review"]

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem 2rem;
       color: #1d232a; }
nav { display: flex; gap: 1.5rem; border-bottom: 1px solid #d0d7de; padding-bottom: .6rem; }
nav a { color: #0b5cad; text-decoration: none; } nav strong { margin-right: auto; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .5rem; border-bottom: 1px solid #e5e8eb; }
th { font-size: .8rem; text-transform: uppercase; color: #57606a; }
.reply { background: #f6f8fa; border-left: 3px solid #0b5cad; padding: .4rem .6rem; }
.muted { color: #57606a; font-size: .85rem; }
form.decide { display: flex; gap: .4rem; flex-wrap: wrap; align-items: center; }
input, textarea { font: inherit; padding: .3rem .4rem; border: 1px solid #c7ced5;
                  border-radius: 4px; }
textarea { width: 100%; }
button { font: inherit; padding: .3rem .8rem; border-radius: 4px; border: 1px solid #c7ced5;
         background: #fff; cursor: pointer; }
button.approve { background: #1f883d; border-color: #1f883d; color: #fff; }
.box { border: 1px solid #d0d7de; border-radius: 6px; padding: 1rem 1.2rem; }
.warn { border-color: #d4a72c; background: #fff8c5; }
.bad { border-color: #cf222e; background: #ffebe9; }
.ok { border-color: #1f883d; background: #dafbe1; }
"""


def _when(ts: float | None) -> str:
    if ts is None:
        return "never"
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{_STYLE}</style></head>
<body><nav><strong>stepkit approvals</strong>
<a href="/">Approval desk (SQLite store)</a><a href="/workflow/">Durable workflow</a>
<a href="/signed/">Signed forms (no store)</a></nav>
<h1>{escape(title)}</h1>
{body}
</body></html>
"""


def _request_form(action: str) -> str:
    return f"""<h2>New customer message</h2>
<form method="post" action="{escape(action)}" class="box">
  <p><label>Customer <input name="customer" required maxlength="80"></label></p>
  <p><label>Message<br><textarea name="message" rows="3" required maxlength="2000"></textarea>
  </label></p>
  <button type="submit">Draft a reply</button>
</form>"""


def _decide_form(action: str, hidden: dict[str, Any]) -> str:
    """Approve and Reject buttons of one form: same fields, two actions, both POST."""
    fields = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(str(v))}">'
        for k, v in hidden.items()
    )
    return f"""<form method="post" action="{escape(action)}/approve" class="decide">{fields}
  <input name="approver" placeholder="Your name" required maxlength="80" aria-label="Your name">
  <button type="submit" class="approve">Approve and send</button>
  <button type="submit" formaction="{escape(action)}/reject">Reject</button>
</form>"""


def index(pending: Sequence[Pending], handled: Sequence[Handled], *, base: str = "") -> str:
    """The desk: what waits (and what will be sent), what was decided, a new request."""
    rows = "".join(
        f"""<tr id="run-{escape(p.run_id)}" class="pending">
<td><strong>{escape(p.customer)}</strong><div class="muted">{escape(p.run_id)} ·
 {_when(p.requested_at)} · version {p.version}</div><p>{escape(p.message)}</p></td>
<td><div class="reply">{escape(p.reply)}</div></td>
<td>{_decide_form(f"{base}/runs/{quote(p.run_id, safe='')}", {"version": p.version})}</td>
</tr>"""
        for p in pending
    )
    waiting = (
        f"<table><tr><th>Request</th><th>Will be sent</th><th>Decision</th></tr>{rows}</table>"
        if pending
        else '<p class="muted" id="none-waiting">Nothing waits for approval.</p>'
    )
    done_rows = "".join(
        f"""<tr id="done-{escape(h.run_id)}" class="handled">
<td>{escape(h.customer)}<div class="muted">{escape(h.run_id)}</div></td>
<td class="verdict">{_verdict(h)}<div class="muted">{escape(h.decided_at)}</div></td>
<td class="sent">{"sent" if h.sent else "not sent"}</td></tr>"""
        for h in handled
    )
    decided = (
        f"<table><tr><th>Request</th><th>Decision</th><th>Reply</th></tr>{done_rows}</table>"
        if handled
        else '<p class="muted">Nothing decided yet.</p>'
    )
    intro = _INTROS.get(base, "")
    return _page(
        "Replies waiting for approval" + (" (durable workflow)" if base == "/workflow" else ""),
        f"{intro}{waiting}<h2>Decided</h2>{decided}{_request_form(f'{base}/requests')}",
    )


_INTROS = {
    "/workflow": """<p class="muted" id="intro">Each request is a durable workflow run that
drafts the reply and waits for an <code>approve</code> signal; a decision is that signal,
sent once per request (idempotency key). A request nobody decides in time ends unsent.</p>""",
}


def _verdict(h: Handled) -> str:
    if h.timed_out:
        return "timed out: nobody decided"
    return f"{'approved' if h.approved else 'rejected'} by {escape(h.approver)}"


def conflict(run_id: str, what: str, *, base: str = "") -> str:
    """HTTP 409: the request was handled already (double click, second tab, stale page)."""
    return _page(
        "This request was already handled",
        f"""<div class="box warn" id="conflict"><p>Request <strong>{escape(run_id)}</strong>
was decided before your click arrived, so your decision was not applied and nothing
was sent twice.</p><p>{escape(what)}</p></div>
<p><a href="{escape(base)}/">Back to the list</a></p>""",
    )


def problem(title: str, text: str, *, back: str = "/") -> str:
    """A 400/403/404 page that says what was wrong."""
    return _page(
        title,
        f"""<div class="box bad" id="problem"><p>{escape(text)}</p></div>
<p><a href="{escape(back)}">Back</a></p>""",
    )


def signed_index(
    sent: Sequence[dict[str, Any]], *, done: str | None, ttl: float, random_secret: bool
) -> str:
    """The stateless variant's start page: a new request, the outcome of the last decision."""
    notice = ""
    if done == "sent":
        notice = '<div class="box ok" id="done"><p>Approved: the reply was sent.</p></div>'
    elif done == "rejected":
        notice = '<div class="box ok" id="done"><p>Rejected: nothing was sent.</p></div>'
    key = (
        "<p class='muted'>Signing key: a random one for this process (set "
        "STEPKIT_APPROVALS_SECRET to keep forms valid across restarts and workers).</p>"
        if random_secret
        else ""
    )
    outbox = "".join(
        f"<li>{escape(str(m.get('to')))}: {escape(str(m.get('reply')))} "
        f"<span class='muted'>({escape(str(m.get('request_id')))}, "
        f"approved by {escape(str(m.get('approver')))})</span></li>"
        for m in reversed(sent[-10:])
    )
    return _page(
        "Approval by signed form (no store)",
        f"""{notice}<p>The paused run is not stored anywhere: it travels as a signed checkpoint
in the review link and form, valid for {ttl:g} seconds.</p>{key}
{_request_form("/signed/requests")}
<h2>Outbox</h2><ul id="outbox">{outbox or "<li class='muted'>empty</li>"}</ul>""",
    )


def signed_review(review: Review) -> str:
    """What an e-mailed approval link opens: the reply to approve, and the POST form."""
    return _page(
        "Review this reply",
        f"""<div class="box"><p><strong>{escape(review.customer)}</strong> wrote
<span class="muted">({escape(review.request_id)})</span>:</p><p>{escape(review.message)}</p>
<p>Will be sent:</p><div class="reply">{escape(review.reply)}</div>
<p class="muted">This form expires {_when(review.expires_at)}.</p>
{_decide_form("/signed", {"checkpoint": review.checkpoint})}</div>""",
    )
