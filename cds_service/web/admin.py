"""Analytics for the guideline owner (/analytics, /analytics.json) and Prometheus metrics
(/metrics). Both show how the service is used, never patient data, and both are closed to
callers without CDS_ADMIN_TOKEN (or, when it is not set, to all but loopback callers)."""

from __future__ import annotations

import hmac
import ipaddress

import orjson
import sqlalchemy.exc
from flask import Blueprint, Response, current_app, render_template, request

from .. import logs
from ..metrics import AUTH_FAILURES, exposition
from ..protocol.errors import Forbidden, InvalidRequest, StoreUnavailable, Unauthorized
from ..store.analytics import Period, parse_day, summary
from .hooks import json_response

bp = Blueprint("admin", __name__, template_folder="templates", static_folder="static",
               static_url_path="/analytics/static")

PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def is_loopback_caller() -> bool:
    """The TCP peer is this machine and no proxy says it forwarded someone else's request."""
    if any(header in request.headers for header in PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address((request.remote_addr or "").split("%")[0]).is_loopback
    except ValueError:
        return False


def require_admin() -> None:
    """Bearer CDS_ADMIN_TOKEN when it is set (compared in constant time); loopback otherwise."""
    expected = current_app.extensions["cds"].settings.admin_token
    if not expected:
        if not is_loopback_caller():
            AUTH_FAILURES.labels(check="admin: not loopback").inc()
            raise Forbidden("set CDS_ADMIN_TOKEN to open analytics and metrics to other hosts")
        return
    given = request.headers.get("Authorization", "")
    token = given[len("Bearer "):].strip() if given.startswith("Bearer ") else ""
    if not hmac.compare_digest(token.encode(), expected.encode()):
        AUTH_FAILURES.labels(check="admin token").inc()
        logs.event("auth_failed", check="admin token", route=request.path)
        raise Unauthorized("authentication failed")


@bp.before_request
def guard() -> None:
    if request.endpoint != "admin.static":  # the chart library and page script hold no data
        require_admin()


def requested_period() -> Period:
    try:
        period = Period(parse_day(request.args.get("since"), "since"),
                        parse_day(request.args.get("until"), "until"))
    except ValueError as error:
        raise InvalidRequest(str(error)) from None
    if period.since and period.until and period.since > period.until:
        raise InvalidRequest("since is after until")
    return period


def figures(period: Period) -> dict:
    runtime = current_app.extensions["cds"]
    runtime.recorder.flush()  # include the cards this process issued a moment ago
    try:
        return summary(runtime.store.engine, period)
    except sqlalchemy.exc.SQLAlchemyError as error:
        logs.event("analytics_unavailable", error=type(error).__name__)
        raise StoreUnavailable("the state database cannot be read now") from None


@bp.get("/analytics.json")
def analytics_json() -> Response:
    response = json_response(figures(requested_period()))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/analytics")
def analytics_page() -> Response:
    period = requested_period()
    data = figures(period)
    html = render_template("analytics.html", data=data, period=period,
                           data_json=script_safe_json(data),
                           silent_kinds=sorted(current_app.extensions["cds"].silent_kinds))
    response = Response(html, mimetype="text/html")
    # Scripts only from this service (Chart.js is served here: no CDN); the figures travel as JSON.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def script_safe_json(value: object) -> str:
    """JSON to embed in a <script> element: <, > and & escaped, so that override codes sent in
    feedback cannot close the element."""
    return (orjson.dumps(value).decode().replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026"))


@bp.get("/metrics")
def metrics() -> Response:
    body, content_type = exposition()
    return Response(body, content_type=content_type)
