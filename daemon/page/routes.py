"""The operator page's routes on the API's own server (127.0.0.1 only, like the API).

    GET  /                     the page (read token), else the sign-in form
    POST /login                token -> a session cookie, then back to /
    GET  /logout               forget the cookie
    POST /page/{action}        halt | resume | flatten: the confirmation form (read token)
    POST /page/{action}/confirm  with the admin token typed in: do it, then back to /

Access: `Authorization: Bearer <token>` (scripts, curl) or the cookie set by /login. The cookie
holds an HMAC of the token, never the token, and is HttpOnly + SameSite=Strict; the page never
writes a token into its HTML. An operator action needs the admin token typed at confirmation,
so a forged cross-site POST (which cannot know it) does nothing. Every action goes through the
same `EngineControl` calls as `POST /v1/halt|resume|flatten`, recorded with actor `page:admin`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import quote

from aiohttp import web

from config.models import Settings
from daemon.auth import Tokens
from daemon.control import ControlError
from daemon.logging import get_logger
from daemon.page import render
from daemon.page.view import gather

log = get_logger("daemon.page")

COOKIE = "tradingd_page"
_COOKIE_CONTEXT = b"tradingd operator page session v1"
MAX_REASON_CHARS = 500
ACTOR = "page:admin"
REFRESH_RANGE_S = (5, 3600)
_HTML = "text/html"
_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                                       "form-action 'self'; frame-ancestors 'none'"}


def session_value(token: str) -> str:
    """What the cookie holds for a token: an HMAC of it, so the cookie is not the token."""
    return hmac.new(token.encode(), _COOKIE_CONTEXT, hashlib.sha256).hexdigest()


class Page:
    def __init__(self, control: Any, settings: Settings, tokens: Tokens):
        self.control = control
        self.settings = settings
        self.tokens = tokens

    # ------------------------------------------------------------------ access

    def role(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() == "bearer" and presented.strip():
            return self.tokens.role(presented.strip())
        cookie = request.cookies.get(COOKIE, "")
        if not cookie:
            return None
        for role, token in (("admin", self.tokens.admin), ("api", self.tokens.api)):
            if token and hmac.compare_digest(cookie, session_value(token)):
                return role
        return None

    # ------------------------------------------------------------------ routes

    async def get_page(self, request: web.Request) -> web.Response:
        role = self.role(request)
        if role is None:
            return _html(render.login(), 401 if request.headers.get("Authorization") else 200)
        view = await gather(self.control, self.settings)
        flash = request.query.get("done")
        text = f"{flash}: done" if flash in render.ACTIONS else None
        return _html(render.page(view, role=role, flash=text, refresh_s=_refresh(request.query.get("refresh"))))

    async def post_login(self, request: web.Request) -> web.Response:
        form = await request.post()
        token = str(form.get("token") or "").strip()
        role = self.tokens.role(token) if token else None
        if role is None:
            log.warning("page_login_refused", code="invalid_token")
            return _html(render.login("That token is not recognised."), 401)
        response = _see_other("/")
        response.set_cookie(COOKIE, session_value(token), httponly=True, samesite="Strict", path="/")
        log.info("page_login", role=role)
        return response

    async def get_logout(self, request: web.Request) -> web.Response:
        response = _see_other("/")
        response.del_cookie(COOKIE, path="/")
        return response

    async def post_action(self, request: web.Request) -> web.Response:
        action = self._action(request)
        if self.role(request) is None:
            return _html(render.login("Sign in first."), 401)
        form = await request.post()
        reason = str(form.get("reason") or "").strip()[:MAX_REASON_CHARS]
        if action in render.NEEDS_REASON and not reason:
            return await self._page_with_error(request, f"{action} needs a reason")
        return _html(render.confirm(action, reason, str(self.control.status().get("trading_state"))))

    async def post_confirm(self, request: web.Request) -> web.Response:
        action = self._action(request)
        form = await request.post()
        reason = str(form.get("reason") or "").strip()[:MAX_REASON_CHARS]
        state = str(self.control.status().get("trading_state"))
        if form.get("confirm") != "yes":
            return _html(render.confirm(action, reason, state, "Not confirmed."), 400)
        presented = str(form.get("admin_token") or "").strip()
        if not presented or self.tokens.role(presented) != "admin":
            log.warning("page_action_refused", action=action, code="admin_required")
            return _html(render.confirm(action, reason, state, "That is not the admin token."), 403)
        if action in render.NEEDS_REASON and not reason:
            return _html(render.confirm(action, reason, state, f"{action} needs a reason."), 400)
        try:
            if action == "halt":
                result = await self.control.halt(reason, ACTOR)
            elif action == "resume":
                result = await self.control.resume(ACTOR)
            else:
                result = await self.control.flatten(reason, ACTOR)
        except ControlError as exc:
            log.warning("operator_command_refused", action=action, actor=ACTOR, reason=exc.code, message=exc.message)
            return await self._page_with_error(request, f"{action} refused: {exc.code}: {exc.message}", exc.http_status)
        log.info("operator_command", action=action, actor=ACTOR, result=result)
        return _see_other(f"/?done={quote(action)}")

    async def _page_with_error(self, request: web.Request, message: str, status: int = 400) -> web.Response:
        view = await gather(self.control, self.settings)
        return _html(render.page(view, role=self.role(request) or "api", error=message), status)

    @staticmethod
    def _action(request: web.Request) -> str:
        action = request.match_info["action"]
        if action not in render.ACTIONS:
            raise web.HTTPNotFound()  # the API's middleware answers it as its 404
        return action


def _refresh(value: str | None) -> int | None:
    """`?refresh=N`: reload every N seconds, N within REFRESH_RANGE_S; anything else: no reload."""
    if value is None or not value.isdigit():
        return None
    seconds = int(value)
    return seconds if REFRESH_RANGE_S[0] <= seconds <= REFRESH_RANGE_S[1] else None


def _see_other(location: str) -> web.Response:
    # A plain response, not aiohttp's HTTPSeeOther: the API's error middleware turns raised HTTP
    # exceptions into JSON refusals.
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type=_HTML, charset="utf-8", headers=_HEADERS)


def register(app: web.Application, control: Any, settings: Settings, tokens: Tokens) -> None:
    """Add the page's routes to the API's application."""
    page = Page(control, settings, tokens)
    app.router.add_get("/", page.get_page)
    app.router.add_post("/login", page.post_login)
    app.router.add_get("/logout", page.get_logout)
    app.router.add_post("/page/{action}", page.post_action)
    app.router.add_post("/page/{action}/confirm", page.post_confirm)
