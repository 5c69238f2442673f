"""Trusted CDS clients (JWT issuers) and the FHIR servers the service may call."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from urllib.parse import urlsplit


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
        issuers[iss] = TrustedIssuer(iss, spec.get("jwks_url"), jku, tuple(spec.get("fhir_servers", ())))
    return issuers


def _link_local(host: str) -> bool:
    """Cloud metadata and other link-local addresses (169.254.0.0/16, fe80::/10)."""
    try:
        return ipaddress.ip_address(host).is_link_local
    except ValueError:
        return False


def url_allowed(url: str, allowed: tuple[str, ...] | list[str]) -> bool:
    """True when `url` is on one of the `allowed` base URLs (same scheme, host and port, and
    a path under the allowed one); ``*`` allows any http(s) URL except link-local addresses
    (cloud metadata services), which must be listed explicitly."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # not a URL at all (e.g. "http://[::1/fhir", a port out of range)
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    for base in allowed:
        if base == "*":
            if _link_local(parts.hostname):
                continue
            return True
        b = urlsplit(base)
        if ((b.scheme, b.hostname, b.port) == (parts.scheme, parts.hostname, port)
                and (parts.path.rstrip("/") + "/").startswith(b.path.rstrip("/") + "/")):
            return True
    return False
