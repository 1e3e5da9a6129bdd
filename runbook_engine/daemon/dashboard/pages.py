"""The dashboard's pages, mounted at ``/ui`` by ``daemon.app``.

Reads go to the store and the document library; the two things a person can do to an
execution go through the engine exactly as the API's do: an approval or rejection is
``Engine.signal`` with the logged-in user as principal (``config.principal_arn``, so the
runbook's ``Approvers`` match the dashboard user by name), a cancel is ``Engine.stop``.
A dashboard user who is also named in ``policies`` gets that policy here too: documents
and parameters outside it are hidden, and signals/cancels need
SendAutomationSignal/StopAutomationExecution.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlencode

import anyio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route

from runbook_engine.daemon import logs
from runbook_engine.daemon.config import DaemonConfig
from runbook_engine.daemon.dashboard import views
from runbook_engine.daemon.dashboard.graph_svg import graph_svg
from runbook_engine.daemon.dashboard.passwords import decoy_hash, verify_password
from runbook_engine.daemon.dashboard.providers import (
    Providers,
    ScheduleDeleter,
    library_documents,
    stored_documents,
)
from runbook_engine.daemon.dashboard.sessions import (
    LOGIN_COOKIE,
    LOGIN_FORM_SECONDS,
    SESSION_COOKIE,
    SessionKeeper,
)
from runbook_engine.daemon.dashboard.web import PREFIX, BadForm, Context, Web, safe_next
from runbook_engine.engine import Engine
from runbook_engine.errors import (
    DocumentNotFound,
    ExecutionNotFound,
    RunbookError,
    ScheduleMissing,
)
from runbook_engine.graph import build_graph
from runbook_engine.model import Runbook
from runbook_engine.status import SignalType, Status, StopType
from runbook_engine.store import ExecutionQuery
from runbook_engine.validation import validate_text

PAGE_SIZE = 25
NOTICES = {
    "approved": "Approval sent.",
    "rejected": "Rejection sent.",
    "cancelled": "Cancellation requested.",
    "deleted": "Schedule deleted.",
}


def build_dashboard(
    config: DaemonConfig,
    engine: Engine,
    notify: Callable[[], None],
    providers: Providers | None = None,
) -> Mount:
    providers = providers or Providers()
    sessions = SessionKeeper(
        config.dashboard_secret or secrets.token_urlsafe(32),
        config.dashboard_session_seconds,
        config.dashboard_user,
    )
    web = Web(config, sessions)

    # -- logging in -----------------------------------------------------------------------

    def login_form(request: Request, message: str = "", status: int = 200) -> Response:
        cookie = sessions.login_nonce()
        response = web.render(
            "login.html",
            {
                "token": sessions.login_token(cookie),
                "next": safe_next(request.query_params.get("next")),
                "message": message,
                "configured": bool(config.dashboard_users),
            },
            status=status,
        )
        web.set_cookie(response, LOGIN_COOKIE, cookie, LOGIN_FORM_SECONDS, f"{PREFIX}/login")
        return response

    async def login(request: Request) -> Response:
        if request.method == "GET":
            if web.session_of(request) is not None:
                return RedirectResponse(safe_next(request.query_params.get("next")), 303)
            return login_form(request)
        try:
            form = await web.read_form(request)
        except BadForm as exc:
            return web.refuse(400, str(exc).capitalize() + ".")
        if not web.same_origin(request) or not sessions.check_login(
            request.cookies.get(LOGIN_COOKIE), form.get("csrf")
        ):
            return web.refuse(403, "The login form's CSRF token is missing or wrong; reload it.")
        name, password = form.get("name", ""), form.get("password", "")
        user = config.dashboard_user(name)
        stored = user.password_hash if user else decoy_hash()
        matches = await anyio.to_thread.run_sync(verify_password, password, stored)
        if user is None or not matches:
            logs.event("dashboard_login", user=name[:64], outcome="refused")
            return login_form(request, "Wrong user name or password.", 401)
        logs.event("dashboard_login", user=user.name, outcome="ok")
        response = RedirectResponse(safe_next(form.get("next")), 303)
        web.set_cookie(
            response, SESSION_COOKIE, sessions.issue(user), int(sessions.lifetime), PREFIX
        )
        response.delete_cookie(LOGIN_COOKIE, path=f"{PREFIX}/login")
        return response

    async def logout(request: Request, context: Context) -> Response:
        response = RedirectResponse(f"{PREFIX}/login", 303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return response

    # -- executions -----------------------------------------------------------------------

    async def executions(request: Request, context: Context) -> Response:
        if not context.policy.allows_operation("DescribeAutomationExecutions"):
            return web.refuse(403, "You may not list executions.", context)
        params = request.query_params
        status = params.get("status", "")
        if status and status not in {s.value for s in Status}:
            status = ""
        prefix = params.get("prefix", "").strip()[:128]
        page = int(params["page"]) if params.get("page", "").isdigit() else 1
        page = min(max(page, 1), 100_000)
        query = ExecutionQuery(
            statuses=(status,) if status else (),
            document_name_prefixes=(prefix,) if prefix else (),
        )
        found = await engine.store.list_executions(
            limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE, query=query
        )
        rows = [r for r in found[:PAGE_SIZE] if context.policy.allows_document(r.document_name)]

        def link(number: int) -> str:
            fields = {"status": status, "prefix": prefix, "page": str(number)}
            return "?" + urlencode({k: v for k, v in fields.items() if v})

        return web.render(
            "executions.html",
            {
                "rows": rows,
                "statuses": [s.value for s in Status],
                "status": status,
                "name_prefix": prefix,
                "page": page,
                "previous": link(page - 1) if page > 1 else None,
                "following": link(page + 1) if len(found) > PAGE_SIZE else None,
                "counts": dict(sorted((await engine.store.count_executions()).items())),
            },
            context=context,
        )

    async def execution_page(
        request: Request, context: Context, *, error: str = "", status: int = 200
    ) -> Response:
        execution_id = request.path_params["execution_id"]
        if not context.policy.allows_operation("GetAutomationExecution"):
            return web.refuse(403, "You may not see executions.", context)
        try:
            execution = await engine.store.get_execution(execution_id)
        except ExecutionNotFound:
            return web.refuse(404, f"There is no execution {execution_id}.", context)
        if not context.policy.allows_document(execution.document_name):
            return web.refuse(403, f"You may not see executions of {execution.document_name}.",
                              context)  # fmt: skip
        steps = await engine.store.get_steps(execution_id)
        runbook: Runbook | None
        try:
            runbook = engine.runbook_of(execution)
        except RunbookError:
            runbook = None
        graph = (
            graph_svg(build_graph(runbook), views.latest_statuses(steps), "#step-")
            if runbook
            else ""
        )
        children = await engine.store.list_executions(parent_execution_id=execution_id, limit=100)
        live = not execution.status.terminal
        return web.render(
            "execution.html",
            {
                "execution": execution,
                "timeline": views.timeline(execution, steps, datetime.now(UTC)),
                "graph": graph,
                "approvals": [(s, views.approvers(s)) for s in views.waiting_approvals(steps)],
                "children": children,
                "can_signal": live and context.policy.allows_operation("SendAutomationSignal"),
                "can_cancel": live
                and execution.status != Status.CANCELLING
                and context.policy.allows_operation("StopAutomationExecution"),
                "refresh": execution.status in views.LIVE_STATUSES,
                "notice": NOTICES.get(request.query_params.get("notice", ""), ""),
                "error": error,
            },
            context=context,
            status=status,
        )

    async def execution(request: Request, context: Context) -> Response:
        return await execution_page(request, context)

    async def decide(request: Request, context: Context) -> Response:
        execution_id = request.path_params["execution_id"]
        decision = context.form.get("decision", "")
        if decision not in (SignalType.APPROVE.value, SignalType.REJECT.value):
            return web.refuse(400, "The decision must be Approve or Reject.", context)
        if not context.policy.allows_operation("SendAutomationSignal"):
            return web.refuse(403, "You may not send signals (SendAutomationSignal).", context)
        comment = context.form.get("comment", "").strip()[:2048]
        try:
            execution = await engine.store.get_execution(execution_id)
            if not context.policy.allows_document(execution.document_name):
                return web.refuse(403, "You may not act on this execution.", context)
            await engine.signal(
                execution_id,
                decision,
                step_name=context.form.get("step") or None,
                payload={"Comment": [comment]} if comment else None,
                principal=config.principal_arn(context.user),
            )
        except ExecutionNotFound:
            return web.refuse(404, f"There is no execution {execution_id}.", context)
        except RunbookError as exc:
            return await execution_page(request, context, error=exc.message, status=409)
        notify()
        logs.event("dashboard_signal", user=context.user, execution_id=execution_id,
                   signal=decision)  # fmt: skip
        notice = "approved" if decision == SignalType.APPROVE.value else "rejected"
        return RedirectResponse(f"{PREFIX}/executions/{execution_id}?notice={notice}", 303)

    async def cancel(request: Request, context: Context) -> Response:
        execution_id = request.path_params["execution_id"]
        if not context.policy.allows_operation("StopAutomationExecution"):
            return web.refuse(403, "You may not stop executions.", context)
        try:
            execution = await engine.store.get_execution(execution_id)
            if not context.policy.allows_document(execution.document_name):
                return web.refuse(403, "You may not act on this execution.", context)
            await engine.stop(execution_id, StopType.CANCEL)
        except ExecutionNotFound:
            return web.refuse(404, f"There is no execution {execution_id}.", context)
        except RunbookError as exc:
            return await execution_page(request, context, error=exc.message, status=409)
        notify()
        logs.event("dashboard_cancel", user=context.user, execution_id=execution_id)
        return RedirectResponse(f"{PREFIX}/executions/{execution_id}?notice=cancelled", 303)

    # -- documents, parameters, schedules -------------------------------------------------

    async def documents(request: Request, context: Context) -> Response:
        entries = library_documents(engine.library) + await stored_documents(engine.store)
        shown = [e for e in entries if context.policy.allows_document(e.name)]
        return web.render("documents.html", {"documents": shown}, context=context)

    async def document(request: Request, context: Context) -> Response:
        name = request.path_params["name"]
        if not context.policy.allows_document(name):
            return web.refuse(403, f"You may not see the document {name}.", context)
        try:
            text = engine.library.find_by_name(name)
        except DocumentNotFound:
            return web.refuse(404, f"There is no document {name} on this daemon.", context)
        report = validate_text(text.content, text.path, engine.registry.schemas(), name=name)
        runbook = report.document if isinstance(report.document, Runbook) else None
        return web.render(
            "document.html",
            {
                "name": name,
                "text": text,
                "runbook": runbook,
                "diagnostics": report.diagnostics,
                "graph": graph_svg(build_graph(runbook)) if runbook else "",
            },
            context=context,
        )

    async def parameters(request: Request, context: Context) -> Response:
        path = request.query_params.get("path", "").strip()[:2048]
        source = providers.parameters
        entries = list(await source.list_parameters(path or None)) if source else []
        entries = [e for e in entries if context.policy.allows_parameter(e.name)]
        return web.render(
            "parameters.html",
            {"configured": source is not None, "entries": entries, "path": path},
            context=context,
        )

    async def schedules(request: Request, context: Context) -> Response:
        source = providers.schedules
        entries = list(await source.list_schedules()) if source else []
        shown = [e for e in entries if context.policy.allows_document(e.document_name)]
        return web.render(
            "schedules.html",
            {
                "configured": source is not None,
                "entries": shown,
                "can_delete": isinstance(source, ScheduleDeleter)
                and context.policy.allows_operation("DeleteAssociation"),
                "notice": NOTICES.get(request.query_params.get("notice", ""), ""),
            },
            context=context,
        )

    async def delete_schedule(request: Request, context: Context) -> Response:
        """Delete a schedule (DeleteAssociation's rights); its executions are kept."""
        association_id = request.path_params["association_id"]
        source = providers.schedules
        if not isinstance(source, ScheduleDeleter):
            return web.refuse(404, "Schedules cannot be deleted on this daemon.", context)
        if not context.policy.allows_operation("DeleteAssociation"):
            return web.refuse(403, "You may not delete schedules (DeleteAssociation).", context)
        assert source is not None
        entry = next(
            (e for e in await source.list_schedules() if e.association_id == association_id),
            None,
        )
        if entry is None:
            return web.refuse(404, f"There is no schedule {association_id}.", context)
        if not context.policy.allows_document(entry.document_name):
            return web.refuse(403, f"You may not delete schedules of {entry.document_name}.",
                              context)  # fmt: skip
        try:
            await source.delete_schedule(association_id)
        except ScheduleMissing:  # deleted meanwhile (another user, the API, the CLI)
            return web.refuse(404, f"There is no schedule {association_id}.", context)
        logs.event("dashboard_schedule_deleted", user=context.user, association_id=association_id)
        return RedirectResponse(f"{PREFIX}/schedules?notice=deleted", 303)

    async def stylesheet(request: Request) -> Response:
        return Response(
            web.stylesheet,
            media_type="text/css",
            headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    async def home(request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/executions", 303)

    return Mount(
        PREFIX,
        routes=[
            Route("/", home, methods=["GET"]),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/logout", web.page(logout), methods=["POST"]),
            Route("/static/dashboard.css", stylesheet, methods=["GET"]),
            Route("/executions", web.page(executions), methods=["GET"]),
            Route("/executions/{execution_id}", web.page(execution), methods=["GET"]),
            Route("/executions/{execution_id}/signal", web.page(decide), methods=["POST"]),
            Route("/executions/{execution_id}/cancel", web.page(cancel), methods=["POST"]),
            Route("/documents", web.page(documents), methods=["GET"]),
            Route("/documents/{name}", web.page(document), methods=["GET"]),
            Route("/parameters", web.page(parameters), methods=["GET"]),
            Route("/schedules", web.page(schedules), methods=["GET"]),
            Route(
                "/schedules/{association_id}/delete", web.page(delete_schedule), methods=["POST"]
            ),
        ],
    )
