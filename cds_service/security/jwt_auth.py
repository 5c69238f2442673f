"""JWT authentication of CDS clients, as CDS Hooks 2.0 specifies.

The client signs a short-lived JWT (asymmetric algorithms only) whose `iss` is a trusted
issuer, `aud` is the URL it called, with `exp`, `iat` and a `jti` that is never reused. Keys
come from the issuer's JWKS (its configured URL, or the token's `jku` when that URL is on the
issuer's allowlist), cached and refreshed when an unknown `kid` appears. PyJWT with
cryptography does the cryptography.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol
from collections.abc import Callable, Mapping

import jwt
import requests

from .. import logs
from .issuers import TrustedIssuer
from .outbound import FetchFailure, bounded_get, parse_json
from .urlpolicy import UrlRefused, parse_url

# Asymmetric only: never `none`, never HMAC (a public key must not become a shared secret).
ALLOWED_ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512")


class AuthFailure(Exception):
    """Authentication failed; `check` says which check (for the log, never for the client)."""

    def __init__(self, check: str):
        super().__init__(check)
        self.check = check


@dataclass(frozen=True)
class Client:
    iss: str
    sub: str | None
    issuer: TrustedIssuer


JWKS_DEADLINE_SECONDS = 2.0
DEFAULT_JWKS_MAX_BYTES = 4 * 1024 * 1024


def fetch_jwks(url: str, max_bytes: int = DEFAULT_JWKS_MAX_BYTES) -> Mapping[str, Any]:
    """The JWKS at `url` (a configured URL: the URL policy parses it, any address may be listed),
    within a deadline and a byte cap; AuthFailure otherwise."""
    try:
        canonical = parse_url(url).url()
        raw = bounded_get(canonical, check_addresses=False, headers={"Accept": "application/json"},
                          deadline=time.monotonic() + JWKS_DEADLINE_SECONDS, connect_timeout=1.0,
                          read_timeout=JWKS_DEADLINE_SECONDS, max_bytes=max_bytes)
    except UrlRefused:
        raise AuthFailure("jwks unavailable (refused by the URL policy)") from None
    except FetchFailure as failure:
        raise AuthFailure(f"jwks unavailable ({failure.kind})") from None
    try:
        document = parse_json(raw)
    except FetchFailure as failure:
        raise AuthFailure(f"jwks unavailable ({'not JSON' if failure.kind == 'invalid' else failure.kind})") from None
    if not isinstance(document, dict):
        raise AuthFailure("jwks unavailable (not a JWKS)")
    return document


@dataclass
class _JwksEntry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    keys: dict[str, dict] = field(default_factory=dict)
    fetched_at: float | None = None  # last successful fetch
    failures: int = 0
    retry_at: float = 0.0  # no fetch before this (back-off after failures)


class JwksCache:
    """JWKS by URL, kept for `ttl` seconds; an unknown `kid` refetches at most every `min_refresh`.

    One lock per URL (a slow JWKS server stalls only its own issuer's calls, and concurrent
    callers share one fetch); failures are remembered and retried with exponential back-off
    (`backoff` doubling up to `max_backoff`), so a flood of tokens with unknown `kid`s causes no
    fetch storm; while a refresh fails the last good keys are served (up to `max_stale`).
    """

    def __init__(self, fetch: Callable[[str], Mapping[str, Any]] = fetch_jwks, *, ttl: float = 3600,
                 min_refresh: float = 30, clock: Callable[[], float] = time.monotonic,
                 backoff: float = 5, max_backoff: float = 300, max_stale: float = 86400,
                 wait: float = JWKS_DEADLINE_SECONDS + 1):
        self._fetch = fetch
        self._ttl = ttl
        self._min_refresh = min_refresh
        self._clock = clock
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._max_stale = max_stale
        self._wait = wait
        self._entries: dict[str, _JwksEntry] = {}
        self._lock = threading.Lock()  # guards the dict only, never held during I/O

    def _entry(self, url: str) -> _JwksEntry:
        with self._lock:
            return self._entries.setdefault(url, _JwksEntry())

    def _wanted(self, entry: _JwksEntry, kid: str, now: float) -> bool:
        if now < entry.retry_at:
            return False  # backing off after a failure
        if entry.fetched_at is None or now - entry.fetched_at > self._ttl:
            return True
        return kid not in entry.keys and now - entry.fetched_at > self._min_refresh

    def _load(self, url: str, entry: _JwksEntry) -> None:
        try:
            document = self._fetch(url)
            keys = {jwk["kid"]: jwk for jwk in document.get("keys", [])
                    if isinstance(jwk, dict) and isinstance(jwk.get("kid"), str)
                    and jwk.get("use", "sig") == "sig"}
        except (AuthFailure, requests.RequestException, ValueError, AttributeError, TypeError,
                RecursionError) as error:
            entry.failures += 1
            entry.retry_at = self._clock() + min(self._max_backoff,
                                                 self._backoff * 2 ** (entry.failures - 1))
            logs.event("jwks_fetch_failed", failures=entry.failures,
                       check=error.check if isinstance(error, AuthFailure) else type(error).__name__)
            return
        entry.keys, entry.fetched_at, entry.failures, entry.retry_at = keys, self._clock(), 0, 0.0

    def key(self, url: str, kid: str) -> dict:
        """The JWK (as JSON) with this kid from the JWKS at `url`."""
        entry = self._entry(url)
        if self._wanted(entry, kid, self._clock()):
            if entry.lock.acquire(timeout=self._wait):  # another caller may be fetching it now
                try:
                    if self._wanted(entry, kid, self._clock()):  # not already done meanwhile
                        self._load(url, entry)
                finally:
                    entry.lock.release()
        now = self._clock()
        if entry.fetched_at is None:
            raise AuthFailure("jwks unavailable")
        if now - entry.fetched_at > self._ttl + self._max_stale:
            raise AuthFailure("jwks unavailable (keys too old)")
        if kid not in entry.keys:
            raise AuthFailure("unknown kid")
        return entry.keys[kid]


class ReplayStore(Protocol):
    """Where used `jti` values are kept within their token's lifetime: the service's state
    database (cds_service.store.Store), shared by every worker and every instance using it."""

    def first_use(self, iss: str, jti: str, exp: float, now: float) -> bool:
        """Record the jti; False when it was already used and has not expired."""


_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


def signing_key(jwk: Mapping[str, Any], alg: str) -> Any:
    """The public key of `jwk` for `alg`, refusing a key of another type, curve or algorithm."""
    if jwk.get("alg") not in (None, alg):
        raise AuthFailure("algorithm does not match key")
    kty = "EC" if alg.startswith("ES") else "RSA"
    if jwk.get("kty") != kty or (kty == "EC" and jwk.get("crv") != _CURVES[alg]):
        raise AuthFailure("algorithm does not match key")
    try:
        return jwt.PyJWK(dict(jwk), algorithm=alg).key
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        raise AuthFailure("unusable key") from None


class TokenVerifier:
    def __init__(self, issuers: Mapping[str, TrustedIssuer], jwks: JwksCache, replay: ReplayStore,
                 *, leeway: float = 60, max_lifetime: float = 600,
                 clock: Callable[[], float] = time.time):
        self._max_lifetime = max_lifetime
        self._issuers = issuers
        self._jwks = jwks
        self._replay = replay
        self._leeway = leeway
        self._clock = clock

    def verify(self, authorization: str | None, audience: str) -> Client:
        """The calling client, or AuthFailure naming the failed check."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():  # RFC 6750: the scheme is case-insensitive
            raise AuthFailure("no bearer token")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthFailure("malformed token") from None
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise AuthFailure("algorithm not allowed")
        iss = unverified.get("iss")
        issuer = self._issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise AuthFailure("untrusted issuer")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthFailure("no kid")
        key = signing_key(self._jwks.key(_jwks_url(header, issuer), kid), alg)
        claims = self._decode(token, key, alg, audience, issuer)
        now = self._clock()
        if claims["iat"] > now + self._leeway:
            raise AuthFailure("issued in the future")
        if claims["exp"] - claims["iat"] > self._max_lifetime:
            raise AuthFailure("lifetime too long")  # a long-lived token is a stolen token's friend
        if not self._replay.first_use(issuer.iss, str(claims["jti"]), float(claims["exp"]) + self._leeway, now):
            raise AuthFailure("replayed jti")
        return Client(issuer.iss, claims.get("sub"), issuer)

    def _decode(self, token: str, key: Any, alg: str, audience: str, issuer: TrustedIssuer) -> dict[str, Any]:
        """The claims of a token whose signature, audience, issuer and times check out."""
        try:
            claims = jwt.decode(
                token, key, algorithms=[alg], audience=[audience, audience.rstrip("/") + "/"],
                issuer=issuer.iss, leeway=self._leeway,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]})
        except jwt.InvalidAudienceError:
            raise AuthFailure("wrong audience") from None
        except jwt.ExpiredSignatureError:
            raise AuthFailure("expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthFailure("not yet valid (iat/nbf)") from None
        except jwt.InvalidSignatureError:
            raise AuthFailure("bad signature") from None
        except jwt.MissingRequiredClaimError as error:
            raise AuthFailure(f"missing claim {error.claim}") from None
        except jwt.PyJWTError as error:
            raise AuthFailure(f"invalid token ({type(error).__name__})") from None
        for claim in ("iat", "exp", "nbf"):
            value = claims.get(claim)
            if claim in claims and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise AuthFailure(f"{claim} is not a number")  # PyJWT accepts "123"; RFC 7519 does not
        return claims


def _jwks_url(header: dict[str, Any], issuer: TrustedIssuer) -> str:
    """The token's jku when the issuer allows it, else the issuer's jwks_url."""
    jku = header.get("jku")
    if jku is not None:
        if not isinstance(jku, str) or jku not in issuer.jku_allowed:
            raise AuthFailure("jku not allowed for issuer")
        return jku
    if issuer.jwks_url:
        return issuer.jwks_url
    raise AuthFailure("no jwks for issuer")
