"""The Flask application factory: configuration, blueprints, CORS, error handlers, logging."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, request
from flask.json.provider import DefaultJSONProvider
from flask_cors import CORS
from werkzeug.exceptions import HTTPException

from . import logs
from .config import Settings
from .protocol.errors import InvalidRequest, ServiceError, outcome
from .runtime import Runtime
from .metrics import HOOK_CALLS, HOOK_SECONDS
from .web import admin, docs, hooks
from .web.hooks import json_response

_HTTP_ISSUE_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found",
                     405: "not-supported", 413: "too-costly", 415: "not-supported"}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app; `config` overrides settings read from CDS_* environment variables."""
    settings = Settings.from_env().merged(config)
    app = Flask(__name__)
    if isinstance(app.json, DefaultJSONProvider):  # the provider Flask installs
        app.json.sort_keys = False
    app.extensions["cds"] = Runtime(settings)
    logger = logs.configure(settings.log_level)

    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()] or "*"
    CORS(app, resources={r"/cds-services*": {"origins": origins}},
         allow_headers=["Authorization", "Content-Type"], methods=["GET", "POST", "OPTIONS"],
         max_age=86400)

    app.register_blueprint(hooks.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(admin.bp)
    _register_error_handlers(app)
    _register_request_log(app)
    _register_host_check(app, settings)

    @app.get("/")
    def home() -> Response:
        return json_response({"service": "tacrolimus-magnesium CDS Hooks service",
                              "discovery": "/cds-services", "rules": "/docs/rules", "docs": "/docs"})

    @app.get("/healthz")
    def health() -> Response:
        return json_response({"status": "ok"})

    runtime = app.extensions["cds"]
    logger.info("started", extra={"fields": {"fhir_deadline_s": settings.fhir_deadline,
                                             "max_body_bytes": settings.max_body_bytes,
                                             "auth_required": settings.auth_required,
                                             "trusted_issuers": sorted(runtime.issuers),
                                             "silent_kinds": sorted(runtime.silent_kinds) or None}})
    if not settings.auth_required:
        logger.warning("authentication off: any client may call the hooks "
                       "(set CDS_AUTH_REQUIRED=true and CDS_TRUSTED_ISSUERS in production)")
    if "*" in runtime.fhir_allowed:
        logger.warning("any FHIR server may be called (set CDS_FHIR_ALLOWED_SERVERS in production)")
    return app


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def service_error(error: ServiceError) -> Response:
        g.error = type(error).__name__
        response = json_response(error.outcome(), error.status)
        if error.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        g.error = type(error).__name__
        response = json_response(outcome(status, error.description or error.name,
                                         _HTTP_ISSUE_CODES.get(status, "exception")), status)
        allowed = getattr(error, "valid_methods", None)  # set on MethodNotAllowed
        if status == 405 and allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        # A defect, not bad input: log where it happened (file:line, no message, no locals,
        # which could hold patient data) and answer without a stack trace.
        frames = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}"
                  for f in traceback.extract_tb(error.__traceback__)]
        g.error = type(error).__name__
        logs.event("unhandled_error", logging.ERROR, error=type(error).__name__, frames=frames)
        return json_response(outcome(500, "internal error; the request was not evaluated"), 500)


def _register_host_check(app: Flask, settings: Settings) -> None:
    """Without CDS_PUBLIC_BASE_URL, links (and the JWT audience) are built from the request's
    Host header: only CDS_ALLOWED_HOSTS are accepted then, so a caller cannot point the cards'
    links at a host of its choosing."""
    if settings.public_base_url:
        return
    allowed = {h.strip().lower() for h in settings.allowed_hosts.split(",") if h.strip()}
    if "*" in allowed:
        return

    @app.before_request
    def check_host() -> None:
        if request.path == "/healthz":
            return  # builds no link; load balancers probe it by address
        host = (request.host or "").lower()
        name = host[:host.index("]") + 1] if host.startswith("[") and "]" in host else host.rsplit(":", 1)[0]
        if name not in allowed:
            g.error = "HostNotAllowed"
            logs.event("host_refused", route=request.url_rule.rule if request.url_rule else None)
            raise InvalidRequest("Host header not allowed (see CDS_ALLOWED_HOSTS)")


def _register_request_log(app: Flask) -> None:
    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def log_request(response: Response) -> Response:
        if request.path.startswith("/cds-services"):
            logs.event("request", method=request.method, route=request.url_rule.rule if request.url_rule else None,
                       service=g.get("service_id"), hook_instance=g.get("hook_instance"),
                       status=response.status_code, cards=g.get("card_kinds"),
                       silent=g.get("silent_kinds"), error=g.get("error"),
                       issuer=g.client.iss if g.get("client") else None,
                       ms=round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2))
        if request.endpoint == "cds.call_hook" and request.method == "POST":
            service = g.get("service_id") or "unknown"  # unknown ids share one label
            HOOK_CALLS.labels(service=service, status=str(response.status_code)).inc()
            HOOK_SECONDS.labels(service=service).observe(time.perf_counter() - g.get("started", time.perf_counter()))
        return response
