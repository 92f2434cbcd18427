"""The approval desk as a FastAPI app.

    pip install fastapi uvicorn python-multipart
    python examples/web_approval/fastapi_app.py        # then open http://127.0.0.1:8000

(or ``uvicorn --app-dir examples/web_approval fastapi_app:app``). Settings come
from the environment: see ``approvals.Settings``. The pattern, in ``decide``:
resume the paused run in the POST handler, map ``RunConflictError`` to 409,
redirect with 303 on success.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import urlencode

import pages
from approvals import BadRequest, Desk, Settings, StoreDesk, cross_site
from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from signed_approvals import SignedDesk
from workflow_approvals import WorkflowDesk

from stepkit import CheckpointError, CheckpointExpiredError, RunConflictError, RunNotFoundError

__all__ = ["app", "create_app"]

Text = Annotated[str, Form()]


def desk_routes(desk: Desk, base: str = "") -> APIRouter:
    """The list, create, approve and reject routes of one desk, mounted under ``base``."""
    router = APIRouter(prefix=base)

    @router.get("/", response_class=HTMLResponse)
    def index() -> str:
        return pages.index(desk.pending(), desk.handled(), base=base)

    @router.post("/requests")
    def create(customer: Text, message: Text) -> Response:
        desk.request(customer, message)
        return RedirectResponse(f"{base}/", status_code=303)

    @router.post("/runs/{run_id}/approve")
    def approve(run_id: str, version: Annotated[int, Form()], approver: Text) -> Response:
        return decide(run_id, version, approver, approved=True)

    @router.post("/runs/{run_id}/reject")
    def reject(run_id: str, version: Annotated[int, Form()], approver: Text) -> Response:
        return decide(run_id, version, approver, approved=False)

    def decide(run_id: str, version: int, approver: str, *, approved: bool) -> Response:
        try:
            desk.decide(run_id, version=version, approved=approved, approver=approver)
        except RunConflictError:
            # a double click, a second tab, a stale page: someone else's POST won
            html = pages.conflict(run_id, desk.describe(run_id), base=base)
            return HTMLResponse(html, status_code=409)
        except RunNotFoundError:
            html = pages.problem("No such request", f"There is no request {run_id!r}.")
            return HTMLResponse(html, status_code=404)
        return RedirectResponse(f"{base}/", status_code=303)  # POST -> 303 -> GET

    return router


def signed_routes(signed: SignedDesk) -> APIRouter:
    """The stateless variant: the paused run lives in a signed checkpoint in the form."""
    router = APIRouter(prefix="/signed")

    @router.get("/", response_class=HTMLResponse)
    def index(done: str | None = None) -> str:
        s = signed.settings
        sent = signed.outbox.messages()
        return pages.signed_index(
            sent, done=done, ttl=s.checkpoint_ttl, random_secret=s.secret_is_random
        )

    @router.post("/requests")
    def create(customer: Text, message: Text) -> Response:
        checkpoint = signed.request(customer, message)
        # In a real app this link goes into the approver's e-mail; GET only shows it.
        link = "/signed/review?" + urlencode({"checkpoint": checkpoint})
        return RedirectResponse(link, status_code=303)

    @router.get("/review", response_class=HTMLResponse)
    def review(checkpoint: str = "") -> Response:
        try:
            return HTMLResponse(pages.signed_review(signed.review(checkpoint)))
        except CheckpointError as exc:
            return invalid(exc)

    @router.post("/approve")
    def approve(checkpoint: Text, approver: Text) -> Response:
        return decide(checkpoint, approver, approved=True)

    @router.post("/reject")
    def reject(checkpoint: Text, approver: Text) -> Response:
        return decide(checkpoint, approver, approved=False)

    def decide(checkpoint: str, approver: str, *, approved: bool) -> Response:
        try:
            sent = signed.decide(checkpoint, approved=approved, approver=approver)
        except CheckpointError as exc:
            return invalid(exc)
        return RedirectResponse(f"/signed/?done={'sent' if sent else 'rejected'}", 303)

    return router


def invalid(exc: CheckpointError) -> Response:
    """A tampered, foreign or expired signed form: 400 with a page that says which."""
    if isinstance(exc, CheckpointExpiredError):
        text = "This approval form has expired. Ask for a new approval link."
        return HTMLResponse(pages.problem("Approval form expired", text, back="/signed/"), 400)
    text = "This approval form was altered or is not a valid approval form; nothing was done."
    return HTMLResponse(pages.problem("Invalid approval form", text, back="/signed/"), 400)


def create_app(
    desk: Desk | None = None, signed: SignedDesk | None = None, workflow: Desk | None = None
) -> FastAPI:
    """The app; the desks not given read their settings from the environment."""
    if desk is None or signed is None or workflow is None:
        settings = Settings.from_env()
        desk, signed = desk or StoreDesk(settings), signed or SignedDesk(settings)
        workflow = workflow or WorkflowDesk(settings)
    app = FastAPI(title="stepkit approvals", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(desk_routes(desk))
    app.include_router(signed_routes(signed))
    app.include_router(desk_routes(workflow, "/workflow"))  # the durable-workflow variant

    @app.middleware("http")
    async def refuse_cross_site_posts(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.method == "POST" and cross_site(
            request.headers.get("origin"), request.headers.get("host")
        ):
            text = "This form was posted from another site; it was refused."
            return HTMLResponse(pages.problem("Cross-site request refused", text), 403)
        return await call_next(request)

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest) -> Response:
        return HTMLResponse(pages.problem("Please check the form", str(exc)), 400)

    @app.exception_handler(RequestValidationError)
    async def bad_form(request: Request, exc: RequestValidationError) -> Response:
        fields = ", ".join(str(e["loc"][-1]) for e in exc.errors())
        text = f"These fields are missing or malformed: {fields}."
        return HTMLResponse(pages.problem("Please check the form", text), 400)

    return app


app = create_app()

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
