"""The approval desk as a Flask app.

    pip install flask
    python examples/web_approval/flask_app.py          # then open http://127.0.0.1:5000

(or ``flask --app examples/web_approval/flask_app run``). Settings come from
the environment: see ``approvals.Settings``. The pattern, in ``decide``: resume
the paused run in the POST handler, map ``RunConflictError`` to 409, redirect
with 303 on success.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import pages
from approvals import BadRequest, Desk, Settings, StoreDesk, cross_site
from flask import Blueprint, Flask, redirect, request
from flask.typing import ResponseReturnValue
from signed_approvals import SignedDesk
from workflow_approvals import WorkflowDesk

from stepkit import CheckpointError, CheckpointExpiredError, RunConflictError, RunNotFoundError

__all__ = ["app", "create_app"]


def _field(name: str) -> str:
    return request.form.get(name, "")


def _version() -> int:
    try:
        return int(_field("version"))
    except ValueError:
        raise BadRequest("The form has no valid version field; reload the list.") from None


def desk_blueprint(desk: Desk, base: str = "", name: str = "desk") -> Blueprint:
    """The list, create, approve and reject routes of one desk, mounted under ``base``."""
    bp = Blueprint(name, __name__, url_prefix=base or None)

    @bp.get("/")
    def index() -> ResponseReturnValue:
        return pages.index(desk.pending(), desk.handled(), base=base)

    @bp.post("/requests")
    def create() -> ResponseReturnValue:
        desk.request(_field("customer"), _field("message"))
        return redirect(f"{base}/", 303)

    @bp.post("/runs/<run_id>/approve")
    def approve(run_id: str) -> ResponseReturnValue:
        return decide(run_id, approved=True)

    @bp.post("/runs/<run_id>/reject")
    def reject(run_id: str) -> ResponseReturnValue:
        return decide(run_id, approved=False)

    def decide(run_id: str, *, approved: bool) -> ResponseReturnValue:
        version, approver = _version(), _field("approver")
        try:
            desk.decide(run_id, version=version, approved=approved, approver=approver)
        except RunConflictError:
            # a double click, a second tab, a stale page: someone else's POST won
            return pages.conflict(run_id, desk.describe(run_id), base=base), 409
        except RunNotFoundError:
            return pages.problem("No such request", f"There is no request {run_id!r}."), 404
        return redirect(f"{base}/", 303)  # POST -> 303 -> GET

    return bp


def signed_blueprint(signed: SignedDesk) -> Blueprint:
    """The stateless variant: the paused run lives in a signed checkpoint in the form."""
    bp = Blueprint("signed", __name__, url_prefix="/signed")

    @bp.get("/")
    def index() -> ResponseReturnValue:
        s = signed.settings
        return pages.signed_index(
            signed.outbox.messages(),
            done=request.args.get("done"),
            ttl=s.checkpoint_ttl,
            random_secret=s.secret_is_random,
        )

    @bp.post("/requests")
    def create() -> ResponseReturnValue:
        checkpoint = signed.request(_field("customer"), _field("message"))
        # In a real app this link goes into the approver's e-mail; GET only shows it.
        return redirect("/signed/review?" + urlencode({"checkpoint": checkpoint}), 303)

    @bp.get("/review")
    def review() -> ResponseReturnValue:
        try:
            return pages.signed_review(signed.review(request.args.get("checkpoint", "")))
        except CheckpointError as exc:
            return invalid(exc)

    @bp.post("/approve")
    def approve() -> ResponseReturnValue:
        return decide(approved=True)

    @bp.post("/reject")
    def reject() -> ResponseReturnValue:
        return decide(approved=False)

    def decide(*, approved: bool) -> ResponseReturnValue:
        checkpoint, approver = _field("checkpoint"), _field("approver")
        try:
            sent = signed.decide(checkpoint, approved=approved, approver=approver)
        except CheckpointError as exc:
            return invalid(exc)
        return redirect(f"/signed/?done={quote('sent' if sent else 'rejected')}", 303)

    return bp


def invalid(exc: CheckpointError) -> ResponseReturnValue:
    """A tampered, foreign or expired signed form: 400 with a page that says which."""
    if isinstance(exc, CheckpointExpiredError):
        text = "This approval form has expired. Ask for a new approval link."
        return pages.problem("Approval form expired", text, back="/signed/"), 400
    text = "This approval form was altered or is not a valid approval form; nothing was done."
    return pages.problem("Invalid approval form", text, back="/signed/"), 400


def create_app(
    desk: Desk | None = None, signed: SignedDesk | None = None, workflow: Desk | None = None
) -> Flask:
    """The app; the desks not given read their settings from the environment."""
    if desk is None or signed is None or workflow is None:
        settings = Settings.from_env()
        desk, signed = desk or StoreDesk(settings), signed or SignedDesk(settings)
        workflow = workflow or WorkflowDesk(settings)
    app = Flask(__name__)
    app.register_blueprint(desk_blueprint(desk))
    app.register_blueprint(signed_blueprint(signed))
    app.register_blueprint(desk_blueprint(workflow, "/workflow", "wf"))  # the workflow variant

    @app.before_request
    def refuse_cross_site_posts() -> ResponseReturnValue | None:
        if request.method == "POST" and cross_site(
            request.headers.get("Origin"), request.headers.get("Host")
        ):
            text = "This form was posted from another site; it was refused."
            return pages.problem("Cross-site request refused", text), 403
        return None

    @app.errorhandler(BadRequest)
    def bad_request(exc: BadRequest) -> ResponseReturnValue:
        return pages.problem("Please check the form", str(exc)), 400

    return app


app = create_app()

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=5000)
