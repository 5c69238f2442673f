"""Discovery, hook and feedback routes (CDS Hooks 2.0)."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import orjson
import sqlalchemy.exc
from flask import Blueprint, Response, current_app, g, request

from .. import logs
from ..metrics import AUTH_FAILURES, CARDS, FEEDBACK, PREFETCH_RESOURCES
from ..protocol.errors import (InvalidRequest, PayloadTooLarge, StoreUnavailable, Unauthorized,
                               UnknownService, UnsupportedMediaType)
from ..store import IssuedCard
from ..security.jwt_auth import AuthFailure
from ..protocol.body import Parsed, ResourceMemo, parse_body
from ..protocol.request import request_validator
from ..protocol.response import Card, cards_response
from ..services import SERVICES, SERVICES_BY_ID, HookEnvironment

bp = Blueprint("cds", __name__)


def utc_now() -> datetime:
    """The evaluation clock (a function, so tests can pin it)."""
    return datetime.now(timezone.utc)


def json_response(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def read_json_body(memo: ResourceMemo | None = None) -> Parsed:
    """The request's JSON body (`.body`), or a ServiceError with the status the problem
    deserves. With a memo, prefetched resources already seen are not parsed again, and `.tally`
    says that the call uses the memo (protocol/body.py)."""
    parsed = _parse_json_body(memo)
    if parsed.tally is not None:
        PREFETCH_RESOURCES.labels(memo="hit").inc(parsed.tally.hits)
        PREFETCH_RESOURCES.labels(memo="miss").inc(parsed.tally.misses)
    return parsed


def _parse_json_body(memo: ResourceMemo | None) -> Parsed:
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
        return parse_body(raw, memo)
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
        AUTH_FAILURES.labels(check=failure.check).inc()
        raise Unauthorized("authentication failed") from None
    except sqlalchemy.exc.SQLAlchemyError as error:  # the replay check cannot be made: refuse, retryable
        logs.event("replay_check_unavailable", logging.ERROR, error=type(error).__name__)
        raise StoreUnavailable("authentication cannot be completed now; try again later") from None


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
    parsed = read_json_body(runtime.resource_memo)
    hook_request = request_validator().parse(parsed.body, service.hook,
                                             max_entries=runtime.settings.max_prefetch_entries)
    g.hook_instance = hook_request.hook_instance
    memo = runtime.resource_memo if parsed.tally is not None else None  # so do its fetches
    env = HookEnvironment(settings=runtime.settings, now=utc_now(),
                          executor=runtime.executor, docs_base_url=docs_base_url(),
                          client=runtime.fhir_client(hook_request, g.get("client"), memo=memo))
    cards = service.handler(hook_request, env)
    # Silent mode: a kind the hospital is still measuring is evaluated and recorded, not shown.
    shown = [card for card in cards if card.topic not in runtime.silent_kinds]
    record_cards(service.id, cards, runtime.silent_kinds, env.now)
    g.card_kinds = [card.topic for card in shown]
    if len(shown) < len(cards):
        g.silent_kinds = [card.topic for card in cards if card.topic in runtime.silent_kinds]
    return json_response(cards_response(shown))


def record_cards(service_id: str, cards: list[Card], silent_kinds: frozenset[str], now: datetime) -> None:
    """Count every card evaluated and queue it for the state store (written in the background)."""
    issued = []
    for card in cards:
        kind = card.topic or "none"
        silent = kind in silent_kinds
        CARDS.labels(kind=kind, indicator=card.indicator, silent="true" if silent else "false").inc()
        issued.append(IssuedCard(card.uuid, service_id, kind, card.indicator, now, silent))
    runtime = current_app.extensions["cds"]
    if runtime.settings.record_cards and issued:
        runtime.recorder.record(issued)


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    if service_id not in SERVICES_BY_ID:
        raise UnknownService("no CDS service with this id; see GET /cds-services")
    g.service_id = service_id
    items = request_validator().check_feedback(read_json_body().body)
    outcomes: dict[str, int] = {}
    for index, item in enumerate(items):
        outcomes[item["outcome"]] = outcomes.get(item["outcome"], 0) + 1
        item["outcome_at"] = parse_instant(item["outcomeTimestamp"], f"feedback[{index}].outcomeTimestamp")
    runtime = current_app.extensions["cds"]
    runtime.recorder.flush()  # cards this process issued moments ago are known when their feedback comes
    try:
        result = runtime.store.add_feedback(service_id, items, now=utc_now(),
                                            store_comments=runtime.settings.feedback_store_comments)
    except sqlalchemy.exc.SQLAlchemyError as error:
        logs.event("feedback_not_stored", logging.ERROR, error=type(error).__name__)
        raise StoreUnavailable("feedback could not be stored now; send it again later") from None
    for outcome, count in outcomes.items():
        FEEDBACK.labels(outcome=outcome).inc(count)
    logs.event("feedback", service=service_id, outcomes=outcomes, stored=result.stored,
               unknown_cards=result.unknown_cards or None)
    return json_response({"received": result.received, "stored": result.stored,
                          "unknownCards": result.unknown_cards})


def parse_instant(value: str, where: str) -> datetime:
    """An ISO 8601 date-time (a missing offset is read as UTC), or a 400 naming the field. A date
    alone is no outcome time (CDS Hooks 2.0: a date-time)."""
    try:
        text = value.strip()
        if len(text) < 16 or text[10] not in "Tt ":
            raise ValueError("a date-time has a time")
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except (ValueError, OverflowError):  # OverflowError: year 1 with a positive offset
        raise InvalidRequest(f"{where} is not an ISO 8601 date-time", expression=[where]) from None


def docs_base_url() -> str:
    base = current_app.extensions["cds"].settings.public_base_url or request.host_url
    return base.rstrip("/") + "/docs/rules"
