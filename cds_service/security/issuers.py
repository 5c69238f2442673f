"""Trusted CDS clients (JWT issuers) and the FHIR servers the service may call."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .urlpolicy import UrlPolicy, UrlRefused, parse_url
from .urlpolicy import url_allowed as _url_allowed


@dataclass(frozen=True)
class TrustedIssuer:
    """A CDS client this service trusts: where its keys are, and which FHIR servers it may name."""

    iss: str
    jwks_url: str | None = None
    jku_allowed: tuple[str, ...] = ()  # JWKS URLs a token's `jku` header may point at
    fhir_servers: tuple[str, ...] = ()  # FHIR base URLs this client may send; empty: the global list


def parse_trusted_issuers(raw: str) -> dict[str, TrustedIssuer]:
    """``{"<iss>": {"jwks_url": ..., "jku": [...], "fhir_servers": [...]}}`` -> issuers by iss."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ValueError("CDS_TRUSTED_ISSUERS is not valid JSON") from None
    if not isinstance(data, dict):
        raise ValueError("CDS_TRUSTED_ISSUERS must be a JSON object keyed by issuer")
    issuers = {}
    for iss, spec in data.items():
        if not isinstance(spec, dict):
            raise ValueError(f"CDS_TRUSTED_ISSUERS[{iss!r}] must be an object")
        jku = tuple(spec.get("jku", ()))
        if not spec.get("jwks_url") and not jku:
            raise ValueError(f"CDS_TRUSTED_ISSUERS[{iss!r}] needs jwks_url or jku")
        for url in ([spec["jwks_url"]] if spec.get("jwks_url") else []) + list(jku):
            try:
                parse_url(url)
            except UrlRefused as refusal:
                raise ValueError(f"CDS_TRUSTED_ISSUERS[{iss!r}]: JWKS URL refused: {refusal}") from None
        servers = tuple(spec.get("fhir_servers", ()))
        UrlPolicy(servers)  # a server URL the policy cannot parse is a configuration error
        issuers[iss] = TrustedIssuer(iss, spec.get("jwks_url"), jku, servers)
    return issuers


def url_allowed(url: str, allowed: tuple[str, ...] | list[str]) -> bool:
    """True when `url` is on one of the `allowed` base URLs (the URL policy of urlpolicy.py)."""
    return _url_allowed(url, allowed)
