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
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

import jwt
import requests

from .issuers import TrustedIssuer

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


def fetch_jwks(url: str) -> Mapping[str, Any]:
    response = requests.get(url, timeout=(1.0, 2.0), allow_redirects=False,
                            headers={"Accept": "application/json"})
    response.raise_for_status()
    return response.json()


class JwksCache:
    """JWKS by URL, kept for `ttl` seconds; an unknown `kid` refetches (at most every `min_refresh`)."""

    def __init__(self, fetch: Callable[[str], Mapping[str, Any]] = fetch_jwks, *, ttl: float = 3600,
                 min_refresh: float = 30, clock: Callable[[], float] = time.monotonic):
        self._fetch = fetch
        self._ttl = ttl
        self._min_refresh = min_refresh
        self._clock = clock
        self._sets: dict[str, tuple[float, dict[str, dict]]] = {}
        self._lock = threading.Lock()

    def _load(self, url: str) -> dict[str, dict]:
        try:
            document = self._fetch(url)
            keys = {jwk["kid"]: jwk for jwk in document.get("keys", [])
                    if isinstance(jwk, dict) and isinstance(jwk.get("kid"), str)
                    and jwk.get("use", "sig") == "sig"}
        except (requests.RequestException, ValueError, AttributeError, TypeError, RecursionError):
            raise AuthFailure("jwks unavailable") from None
        self._sets[url] = (self._clock(), keys)
        return keys

    def key(self, url: str, kid: str) -> dict:
        """The JWK (as JSON) with this kid from the JWKS at `url`."""
        with self._lock:
            fetched_at, keys = self._sets.get(url, (None, {}))
            now = self._clock()
            if fetched_at is None or now - fetched_at > self._ttl:
                keys = self._load(url)
            elif kid not in keys and now - fetched_at > self._min_refresh:
                keys = self._load(url)  # key rotation: refresh once on an unknown kid
            if kid not in keys:
                raise AuthFailure("unknown kid")
            return keys[kid]


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
        if not authorization or not authorization.startswith("Bearer "):
            raise AuthFailure("no bearer token")
        token = authorization[len("Bearer "):].strip()
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
        jku = header.get("jku")
        if jku is not None:
            if not isinstance(jku, str) or jku not in issuer.jku_allowed:
                raise AuthFailure("jku not allowed for issuer")
            jwks_url = jku
        elif issuer.jwks_url:
            jwks_url = issuer.jwks_url
        else:
            raise AuthFailure("no jwks for issuer")
        key = signing_key(self._jwks.key(jwks_url, kid), alg)
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
        now = self._clock()
        if claims["iat"] > now + self._leeway:
            raise AuthFailure("issued in the future")
        if claims["exp"] - claims["iat"] > self._max_lifetime:
            raise AuthFailure("lifetime too long")  # a long-lived token is a stolen token's friend
        if not self._replay.first_use(issuer.iss, str(claims["jti"]), float(claims["exp"]) + self._leeway, now):
            raise AuthFailure("replayed jti")
        return Client(issuer.iss, claims.get("sub"), issuer)
