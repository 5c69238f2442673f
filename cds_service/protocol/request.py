"""Parse and validate a CDS Hooks 2.0 hook request against the JSON Schemas kept in the package."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from .errors import InvalidRequest, PayloadTooLarge


def load_schema(name: str) -> dict:
    return json.loads(resources.files(__package__).joinpath("schemas", name).read_text("utf-8"))


@dataclass(frozen=True)
class HookRequest:
    """The parts of a hook call the service uses; `context` and `prefetch` as sent."""

    hook: str
    hook_instance: str
    context: Mapping[str, Any]
    fhir_server: str | None
    access_token: str | None
    prefetch: Mapping[str, Any] | None

    @property
    def patient_id(self) -> str:
        return self.context["patientId"]

    @property
    def encounter_id(self) -> str | None:
        value = self.context.get("encounterId")
        return value if isinstance(value, str) and value else None


def _describe(error: ValidationError) -> str:
    """A message that names the place and the rule, never the value the client sent."""
    where = "/".join(str(p) for p in error.absolute_path) or "request body"
    if error.validator == "required":
        return f"{where}: {error.message}"  # "'patientId' is a required property"
    if error.validator == "dependentRequired":
        return f"{where}: fhirAuthorization requires fhirServer"
    if error.validator == "type":
        return f"{where}: must be of type {error.validator_value}"
    if error.validator in ("maxLength", "minLength", "pattern", "const", "enum"):
        return f"{where}: value not allowed ({error.validator})"
    return f"{where}: invalid ({error.validator})"


class RequestValidator:
    """Compiled once per process: the base request schema and one context schema per hook."""

    def __init__(self) -> None:
        self._request = Draft202012Validator(load_schema("hook-request.json"))
        contexts = load_schema("hook-contexts.json")
        self._contexts = {
            hook: Draft202012Validator({"$defs": contexts["$defs"], **definition})
            for hook, definition in contexts["$defs"].items()
            if hook not in ("id", "bundle")
        }
        self._feedback = Draft202012Validator(load_schema("feedback.json"))

    def _check(self, validator: Draft202012Validator, body: Any) -> None:
        error = next(iter(sorted(validator.iter_errors(body), key=lambda e: e.path)), None)
        if error is not None:
            raise InvalidRequest(_describe(error))

    def parse(self, body: Any, expected_hook: str, max_entries: int | None = None) -> HookRequest:
        """Validate `body` for a service of `expected_hook` and return the HookRequest."""
        if not isinstance(body, dict):
            raise InvalidRequest("request body must be a JSON object")
        self._check(self._request, body)
        if body["hook"] != expected_hook:
            raise InvalidRequest(f"this service answers the '{expected_hook}' hook, not another")
        context_validator = self._contexts.get(expected_hook)
        if context_validator is not None:
            self._check(context_validator, body["context"])
        if max_entries is not None and _entry_count(body) > max_entries:
            raise PayloadTooLarge(f"more than {max_entries} Bundle entries in prefetch and draftOrders")
        auth = body.get("fhirAuthorization") or {}
        return HookRequest(
            hook=body["hook"],
            hook_instance=body["hookInstance"],
            context=body["context"],
            fhir_server=body.get("fhirServer"),
            access_token=auth.get("access_token"),
            prefetch=body.get("prefetch"),
        )

    def check_feedback(self, body: Any) -> list[dict]:
        if not isinstance(body, dict):
            raise InvalidRequest("request body must be a JSON object")
        self._check(self._feedback, body)
        return body["feedback"]


def _entry_count(body: Mapping[str, Any]) -> int:
    bundles = list((body.get("prefetch") or {}).values()) + [body["context"].get("draftOrders")]
    return sum(len(b["entry"]) for b in bundles
               if isinstance(b, dict) and isinstance(b.get("entry"), list))


@lru_cache(maxsize=1)
def request_validator() -> RequestValidator:
    return RequestValidator()
