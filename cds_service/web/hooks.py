"""Discovery, hook and feedback routes (CDS Hooks 2.0)."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson

from flask import Blueprint, Response, current_app, g, request

from .. import logs
from ..protocol.errors import (InvalidRequest, PayloadTooLarge, Unauthorized, UnknownService,
                               UnsupportedMediaType)
from ..security.jwt_auth import AuthFailure
from ..protocol.request import request_validator
from ..protocol.response import cards_response
from ..services import SERVICES, SERVICES_BY_ID, HookEnvironment

bp = Blueprint("cds", __name__)


def utc_now() -> datetime:
    """The evaluation clock (a function, so tests can pin it)."""
    return datetime.now(timezone.utc)


def json_response(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def read_json_body() -> object:
    """The request's JSON body, or a ServiceError with the status the problem deserves."""
    mimetype = request.mimetype or ""
    if not (mimetype == "application/json" or mimetype.endswith("+json")):
        raise UnsupportedMediaType("Content-Type must be application/json")
    limit = current_app.extensions["cds"].settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"request body larger than {limit} bytes")
    # Chunked bodies have no Content-Length: read one byte past the limit to know.
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise PayloadTooLarge(f"request body larger than {limit} bytes")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        if "depth" in str(error).lower():
            raise InvalidRequest("request body nests too deeply") from None
        raise InvalidRequest("request body is not valid JSON") from None


@bp.before_request
def authenticate() -> None:
    """With CDS_AUTH_REQUIRED, every hook and feedback call carries a valid client JWT; discovery
    is checked when signed. The client is told only that authentication failed; the log says
    which check failed (never the token)."""
    verifier = current_app.extensions["cds"].verifier
    if verifier is None or request.method == "OPTIONS":
        return
    if request.endpoint == "cds.discovery" and "Authorization" not in request.headers:
        return
    try:
        g.client = verifier.verify(request.headers.get("Authorization"), audience=endpoint_url())
    except AuthFailure as failure:
        logs.event("auth_failed", check=failure.check, route=request.url_rule.rule if request.url_rule else None)
        raise Unauthorized("authentication failed") from None


def endpoint_url() -> str:
    """This endpoint's URL as the client should address it (the JWT audience)."""
    base = current_app.extensions["cds"].settings.public_base_url or request.host_url
    return base.rstrip("/") + request.path


@bp.get("/cds-services")
def discovery() -> Response:
    local = current_app.extensions["cds"].local_codes
    return json_response({"services": [service.discovery(local) for service in SERVICES]})


@bp.post("/cds-services/<service_id>")
def call_hook(service_id: str) -> Response:
    service = SERVICES_BY_ID.get(service_id)
    if service is None:
        raise UnknownService("no CDS service with this id; see GET /cds-services")
    g.service_id = service.id
    runtime = current_app.extensions["cds"]
    hook_request = request_validator().parse(read_json_body(), service.hook,
                                             max_entries=runtime.settings.max_prefetch_entries)
    g.hook_instance = hook_request.hook_instance
    env = HookEnvironment(settings=runtime.settings, now=utc_now(),
                          executor=runtime.executor, docs_base_url=docs_base_url(),
                          client=runtime.fhir_client(hook_request, g.get("client")))
    cards = service.handler(hook_request, env)
    g.card_kinds = [card.topic for card in cards]
    return json_response(cards_response(cards))


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    if service_id not in SERVICES_BY_ID:
        raise UnknownService("no CDS service with this id; see GET /cds-services")
    g.service_id = service_id
    items = request_validator().check_feedback(read_json_body())
    outcomes: dict[str, int] = {}
    for item in items:
        outcomes[item["outcome"]] = outcomes.get(item["outcome"], 0) + 1
    logs.event("feedback", service=service_id, outcomes=outcomes)
    return json_response({"received": len(items)})


def docs_base_url() -> str:
    base = current_app.extensions["cds"].settings.public_base_url or request.host_url
    return base.rstrip("/") + "/docs/rules"
