"""Prefetch template tokens (CDS Hooks 2.0): ``{{context.X}}`` and the ``{{userXxxId}}`` tokens."""

from __future__ import annotations

import re
from functools import lru_cache
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

_TOKEN = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")
_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


def token_values(context: Mapping[str, Any]) -> dict[str, str]:
    """Every token this context can fill, with its value."""
    values = {f"context.{key}": value for key, value in context.items() if isinstance(value, str)}
    user = context.get("userId")
    if isinstance(user, str) and "/" in user:
        kind, _, ident = user.partition("/")
        for token, resource_type in _USER_TOKENS.items():
            if kind == resource_type:
                values[token] = ident
    return values


@lru_cache(maxsize=256)
def _tokens(template: str) -> tuple[str, ...]:
    return tuple(match.group(1) for match in _TOKEN.finditer(template))


def fillable(template: str, values: Mapping[str, str]) -> bool:
    """Whether `render` would fill every token (without building the query)."""
    return all(token in values and values[token] is not None for token in _tokens(template))


def render(template: str, values: Mapping[str, str]) -> str | None:
    """The query with tokens filled (URL-escaped), or None when a token cannot be filled."""
    missing = False

    def fill(match: re.Match) -> str:
        nonlocal missing
        value = values.get(match.group(1))
        if value is None:
            missing = True
            return ""
        return quote(value, safe="")

    rendered = _TOKEN.sub(fill, template)
    return None if missing else rendered
