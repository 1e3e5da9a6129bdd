"""The dashboard's plumbing: templates (autoescaped), security headers, form bodies, and
the guard every page goes through (a session, and on POST a CSRF token and same origin).

Pages are handlers ``(request, context) -> Response``; ``Web.page`` wraps one so that it
runs only for a logged-in user. A GET without a session is sent to the login page; a POST
without a session, without the right CSRF token, or from another origin gets 403 and
changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from runbook_engine.daemon.config import DaemonConfig, Policy
from runbook_engine.daemon.dashboard import views
from runbook_engine.daemon.dashboard.sessions import SESSION_COOKIE, Session, SessionKeeper

PREFIX = "/ui"
MAX_FORM_BYTES = 64 * 1024
# Which item of the navigation a template belongs to.
SECTIONS = {
    "executions.html": "executions",
    "execution.html": "executions",
    "documents.html": "documents",
    "document.html": "documents",
    "parameters.html": "parameters",
    "schedules.html": "schedules",
}
SECURITY_HEADERS = {
    # No script at all, styles only from our own file, forms only back to us.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Context:
    """Who is asking: the session, their policy, and (on POST) the form fields."""

    session: Session
    policy: Policy
    form: Mapping[str, str] = field(default_factory=dict)

    @property
    def user(self) -> str:
        return self.session.user


Page = Callable[[Request, Context], Awaitable[Response]]


class BadForm(Exception):
    pass


class Web:
    def __init__(self, config: DaemonConfig, sessions: SessionKeeper) -> None:
        self.config = config
        self.sessions = sessions
        self.secure_cookies = bool(config.tls_certificate)
        self.templates = Environment(
            loader=PackageLoader("runbook_engine.daemon.dashboard", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters.update(when=views.when, pretty=views.pretty, duration=views.duration)
        self.stylesheet = (
            resources.files("runbook_engine.daemon.dashboard")
            .joinpath("static/dashboard.css")
            .read_text(encoding="utf-8")
        )

    # -- responses ----------------------------------------------------------------------

    def render(
        self,
        template: str,
        values: Mapping[str, Any],
        *,
        context: Context | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        page = self.templates.get_template(template).render(
            prefix=PREFIX,
            section=SECTIONS.get(template, ""),
            user=context.user if context else None,
            csrf=self.sessions.csrf_token(context.session) if context else "",
            **values,
        )
        return HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)

    def refuse(self, status: int, message: str, context: Context | None = None) -> HTMLResponse:
        return self.render("error.html", {"status": status, "message": message}, context=context,
                           status=status)  # fmt: skip

    def set_cookie(
        self, response: Response, name: str, value: str, max_age: int, path: str
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=path,
            httponly=True,
            samesite="strict",
            secure=self.secure_cookies,
        )

    # -- requests -----------------------------------------------------------------------

    async def read_form(self, request: Request) -> dict[str, str]:
        """An urlencoded form (the only kind our pages send); first value of each field."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise BadForm("the form must be sent urlencoded")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise BadForm("the form is too large")
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadForm(f"the form cannot be read: {exc}") from None
        return {key: values[0] for key, values in fields.items()}

    @staticmethod
    def same_origin(request: Request) -> bool:
        """A browser's POST from another site is refused even before the CSRF check."""
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return False
        origin = request.headers.get("origin")
        if origin is None:
            return True
        return urlsplit(origin).netloc == request.headers.get("host", "")

    def session_of(self, request: Request) -> Session | None:
        return self.sessions.read(request.cookies.get(SESSION_COOKIE))

    def page(self, handler: Page) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = self.session_of(request)
            if session is None:
                if request.method == "GET":
                    target = request.url.path + (
                        f"?{request.url.query}" if request.url.query else ""
                    )
                    return RedirectResponse(f"{PREFIX}/login?next={quote(target, safe='')}", 303)
                return self.refuse(403, "Log in first.")
            context = Context(session, self.config.policy(session.user))
            if request.method == "POST":
                if not self.same_origin(request):
                    return self.refuse(403, "The form came from another site.", context)
                try:
                    form = await self.read_form(request)
                except BadForm as exc:
                    return self.refuse(400, str(exc).capitalize() + ".", context)
                if not self.sessions.check_csrf(session, form.get("csrf")):
                    return self.refuse(
                        403, "The form's CSRF token is missing or wrong; reload the page.", context
                    )
                context = Context(session, context.policy, form)
            return await handler(request, context)

        return endpoint


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a dashboard page of ours, never another site."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//"):
        if "\\" not in target and urlsplit(target).netloc == "":
            return target
    return f"{PREFIX}/executions"
