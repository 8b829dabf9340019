"""Login page, logout, the guard in front of every route, and CSRF protection (when a password is set).

Every request needs a session cookie or an ``Authorization: Bearer`` token except the login page itself, the
static CSS/JS (public code, no data) and ``/healthz`` (answers only ``{"ok": true}``; Docker's health check
calls it without credentials). Unknown paths get 401 too, so nothing reveals which routes exist.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface

from materialsearch.auth import Authenticator
from materialsearch.errors import ApiErrorCode
from materialsearch.web.problems import error_response

auth = Blueprint("auth", __name__)

AUTH_KEY = "materialsearch.auth"
SESSION_COOKIE = "materialsearch_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Reachable without credentials; everything else is not.
# The installable app's parts hold no data: browsers fetch a manifest without cookies, and a picture shared from
# the phone is held (see web/install.py) before the page it opens asks for the login.
PUBLIC_ENDPOINTS = frozenset(
    {
        "auth.login",
        "auth.login_submit",
        "auth.logout",
        "static",
        "api.healthz",
        "install.manifest",
        "install.service_worker",
        "install.offline",
        "install.favicon",
        "install.share",
    }
)
# Pages a browser navigates to: without a session they redirect to the login page instead of answering 401.
HTML_ENDPOINTS = frozenset({"pages.index", "pages.duplicates", "reference.docs"})


class _SessionInterface(SecureCookieSessionInterface):
    """Signed-cookie sessions whose cookie is marked Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        # Per request, so one deployment works on plain http on the LAN and behind an HTTPS proxy.
        return request.is_secure or super().get_cookie_secure(app)


def authenticator(app: Flask | None = None) -> Authenticator:
    """The app's Authenticator."""
    return (app or current_app).extensions[AUTH_KEY]


def init_app(app: Flask, authn: Authenticator) -> None:
    """Install sessions, the guard and the login routes on ``app``."""
    app.extensions[AUTH_KEY] = authn
    app.secret_key = authn.secret
    app.session_interface = _SessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,  # distinct: cookies are shared by every port of a NAS's address
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(days=authn.settings.session_days),
    )
    app.before_request(_guard)
    app.context_processor(_template_values)
    app.register_blueprint(auth)


def csrf_token() -> str:
    """This session's CSRF token (made on first use); empty when login is off (nothing to protect)."""
    if not authenticator().enabled:
        return ""
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _csrf_ok(sent: str | None) -> bool:
    expected = session.get("csrf")
    return isinstance(expected, str) and bool(expected) and bool(sent) and hmac.compare_digest(sent, expected)


def _template_values() -> dict:
    return {"auth_enabled": authenticator().enabled, "csrf_token": csrf_token}


def _unauthorized(message: str, code: ApiErrorCode):
    if request.endpoint in HTML_ENDPOINTS and request.method in SAFE_METHODS:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if request.headers.get("Sec-Fetch-Mode") == "navigate" and request.method not in SAFE_METHODS:
        # A form the page submitted (the zip download) after the session expired: the login page, not JSON; the
        # form cannot be replayed, so back to the page afterwards.
        return redirect(url_for("auth.login", next=url_for("pages.index")))
    response = error_response(401, message, code=code)
    response.headers["WWW-Authenticate"] = 'Bearer realm="materialsearch"'
    return response


def _guard():
    """Before every request: let it through only with a valid session (plus CSRF token) or API token."""
    authn = authenticator()
    if not authn.enabled or request.endpoint in PUBLIC_ENDPOINTS:
        return None
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or authn.verify_token(token.strip()) is None:
            return _unauthorized("the API token is missing, malformed or revoked", ApiErrorCode.INVALID_TOKEN)
        return None
    if not authn.session_valid(session.get("stamp")):
        return _unauthorized(
            "log in first (or send an API token: Authorization: Bearer …)", ApiErrorCode.LOGIN_REQUIRED
        )
    if request.method not in SAFE_METHODS:
        # A session cookie rides along on requests other sites make; only our own page knows this token.
        sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD)
        if not _csrf_ok(sent):
            return error_response(
                403, f"missing or wrong CSRF token (send the {CSRF_HEADER} header)", code=ApiErrorCode.CSRF_FAILED
            )
    return None


def _safe_next(target: str | None) -> str:
    """Where to go after logging in: only a path on this site (no scheme, no host, no //evil.example)."""
    if not target:
        return url_for("pages.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith(("//", "/\\")):
        return url_for("pages.index")
    return target


def _client_key() -> str:
    # With MS_TRUSTED_PROXY set, waitress has already put the real client's address here.
    return request.remote_addr or "unknown"


@auth.get("/login")
def login():
    """The login form (or straight on, when already logged in or login is off)."""
    authn = authenticator()
    target = _safe_next(request.args.get("next"))
    if not authn.enabled or authn.session_valid(session.get("stamp")):
        return redirect(target)
    return render_template("login.html", next=target, error=None)


@auth.post("/login")
def login_submit():
    """Check the password; rate-limited per client address."""
    authn = authenticator()
    target = _safe_next(request.form.get("next"))
    if not authn.enabled:
        return redirect(target)
    wait = authn.limiter.retry_after(_client_key())
    if wait:
        page = render_template("login.html", next=target, error="too_many", retry_after=wait)
        return page, 429, {"Retry-After": str(wait)}
    if not _csrf_ok(request.form.get(CSRF_FIELD)):
        return render_template("login.html", next=target, error="expired"), 400
    if not authn.check_password(request.form.get("password", "")):
        authn.limiter.fail(_client_key())
        return render_template("login.html", next=target, error="wrong")  # a page saying why, not a 401
    authn.limiter.reset(_client_key())
    session.clear()  # a fresh session (and CSRF token) after login
    session["stamp"] = authn.session_stamp
    session["csrf"] = secrets.token_urlsafe(32)
    session.permanent = True
    return redirect(target)


@auth.post("/logout")
def logout():
    """End this browser's session."""
    if authenticator().enabled and not _csrf_ok(request.form.get(CSRF_FIELD)):
        return error_response(403, "missing or wrong CSRF token", code=ApiErrorCode.CSRF_FAILED)
    session.clear()
    return redirect(url_for("auth.login"))
