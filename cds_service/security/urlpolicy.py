"""One URL policy for every outbound call (FHIR servers, their next pages, JWKS documents).

A URL is parsed once, strictly, into a canonical form; the decision is taken on that form and
the connection is made to that form, so the check and the connection cannot read the URL
differently (the backslash and userinfo tricks of issue 11). Refused outright: anything but
http(s), backslashes, userinfo, fragments, whitespace and control characters, non-ASCII,
malformed or "odd" percent-escapes (encoded ``/``, ``\\``, NUL, dot segments), and ``.``/``..``
path segments. Numeric hosts are normalised the way resolvers read them (hex, octal, decimal,
short forms, IPv4-mapped IPv6) before any check.

Which addresses may be reached:
- a base URL a hospital lists explicitly may be on any address (its own network);
- ``*`` reaches public and loopback addresses only: never private, link-local, CGNAT,
  multicast, reserved or unspecified ranges, nor cloud metadata names. Names are resolved at
  connect time and **every address actually connected to** is checked there (see
  ``security/http.py``), so DNS rebinding has no window.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 4096
DEFAULT_PORTS = {"http": 80, "https": 443}
# Host names of cloud metadata services, refused under `*` even before resolution.
METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog",
                            "instance-data", "instance-data.ec2.internal", "metadata.azure.com",
                            "metadata.packet.net", "metadata.platformequinix.com"})

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$")
_PORT = re.compile(r"^[0-9]{1,5}$")
_NUMERIC_PART = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)$")
# Percent-escapes a FHIR URL never needs and that servers decode differently: '/', '\', NUL,
# '.', and anything outside printable ASCII.
_ODD_ESCAPES = {"2f", "5c", "00", "2e"}
# Whitespace, control characters and anything outside printable ASCII (code points <= 0x20 or
# >= 0x7f), searched at C speed: a per-character loop cost ~25 µs on a 300-character search URL.
_BAD_CHARACTER = re.compile("[\x00-\x20\x7f-\U0010ffff]")


class UrlRefused(ValueError):
    """The URL is refused by the policy; the message says why (it never quotes the URL)."""


@dataclass(frozen=True)
class ParsedUrl:
    scheme: str
    host: str  # lower-case name, dotted IPv4, or compressed IPv6 (no brackets)
    port: int
    path: str  # "" or starting with "/"; percent-escapes kept as sent
    query: str  # without "?"; "" when none
    ip: IPAddress | None  # the host as an address, when it is one

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    def url(self) -> str:
        """The canonical URL: what is checked is exactly what is connected to."""
        return f"{self.scheme}://{self.netloc}{self.path}" + (f"?{self.query}" if self.query else "")

    def under(self, base: ParsedUrl) -> bool:
        """Same origin, and a path under `base`'s path by whole segments."""
        return (self.origin == base.origin
                and (self.path.rstrip("/") + "/").startswith(base.path.rstrip("/") + "/"))


def parse_url(raw: object) -> ParsedUrl:
    """`raw` parsed strictly into its canonical form, or UrlRefused."""
    if not isinstance(raw, str) or not raw:
        raise UrlRefused("not a URL")
    if len(raw) > MAX_URL_LENGTH:
        raise UrlRefused("URL too long")
    if "\\" in raw:
        raise UrlRefused("backslash in URL")
    if _BAD_CHARACTER.search(raw):
        raise UrlRefused("whitespace, control or non-ASCII character in URL")
    if "#" in raw:
        raise UrlRefused("fragment in URL")
    match = _SCHEME.match(raw)
    if not match:
        raise UrlRefused("not an absolute URL")
    scheme = match.group(1).lower()
    if scheme not in DEFAULT_PORTS:
        raise UrlRefused("scheme is not http or https")
    rest = raw[match.end():]
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, rest = rest[:end], rest[end:]
    path, _, query = rest.partition("?")
    if "@" in authority:
        raise UrlRefused("userinfo in URL")
    if "%" in authority:
        raise UrlRefused("percent-escape in host")
    host, port = _split_host_port(authority)
    ip = _host_address(host) if host else None
    if not host:
        raise UrlRefused("no host")
    if ip is None:
        host = _host_name(host)
    else:
        host = str(ip)
    _check_escapes(path, strict=True)
    _check_escapes(query, strict=False)  # paging tokens carry %2F, %2B, %3D; values UTF-8
    segments = path.split("/")
    if any(_decoded(s) in (".", "..") for s in segments):
        raise UrlRefused("dot segment in path")
    if path and not path.startswith("/"):
        raise UrlRefused("malformed path")
    return ParsedUrl(scheme, host, port if port is not None else DEFAULT_PORTS[scheme], path, query, ip)


def _split_host_port(authority: str) -> tuple[str, int | None]:
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            raise UrlRefused("unclosed IPv6 literal")
        host, after = authority[:close + 1], authority[close + 1:]
        if after and not after.startswith(":"):
            raise UrlRefused("malformed host")
        port_text = after[1:] if after else None
    else:
        host, sep, port_text = authority.partition(":")
        port_text = port_text if sep else None
    if port_text is None or port_text == "":
        if port_text == "":
            raise UrlRefused("empty port")
        return host, None
    if not _PORT.match(port_text) or not 0 < int(port_text) < 65536:
        raise UrlRefused("invalid port")
    return host, int(port_text)


def _host_address(host: str) -> IPAddress | None:
    """The host as an address (every numeric form normalised), None for a name."""
    if host.startswith("["):
        inner = host[1:-1]
        if "%" in inner:
            raise UrlRefused("IPv6 zone in host")
        try:
            address = ipaddress.IPv6Address(inner)
        except ValueError:
            raise UrlRefused("malformed IPv6 literal") from None
        return address.ipv4_mapped or address
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts = parts[:-1]  # one trailing dot, as resolvers allow
    if not parts or not _NUMERIC_PART.match(parts[-1]):
        return None  # a name (a last label that is not a number)
    # The last label is a number: resolvers (inet_aton, browsers) read the whole host as IPv4
    # in any of its forms, so it must parse as one here too or be refused.
    if len(parts) > 4 or not all(_NUMERIC_PART.match(p) for p in parts):
        raise UrlRefused("malformed numeric host")
    numbers = [_number(p) for p in parts]
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise UrlRefused("malformed numeric host")
    value = numbers[-1]
    for index, n in enumerate(numbers[:-1]):
        value += n << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _number(part: str) -> int:
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        try:
            return int(part, 8)
        except ValueError:
            raise UrlRefused("malformed numeric host") from None
    return int(part)


def _host_name(host: str) -> str:
    name = host.lower()
    if name.endswith("."):
        name = name[:-1]
    if not name or len(name) > 253 or not all(_LABEL.match(label) and len(label) <= 63
                                              for label in name.split(".")):
        raise UrlRefused("malformed host name")
    return name


def _check_escapes(text: str, strict: bool) -> None:
    """Malformed escapes and escaped control characters are refused everywhere; in the path
    (which servers and proxies normalise differently) also escaped '/', '\\', '.' and non-ASCII."""
    for index in (i for i, c in enumerate(text) if c == "%"):
        code = text[index + 1:index + 3]
        if len(code) != 2 or not all(c in "0123456789abcdefABCDEF" for c in code):
            raise UrlRefused("malformed percent-escape")
        value = int(code, 16)
        if value < 0x20 or value == 0x7f:
            raise UrlRefused("odd percent-escape (control character)")
        if strict and (code.lower() in _ODD_ESCAPES or value > 0x7f):
            raise UrlRefused("odd percent-escape in path")


def _decoded(segment: str) -> str:
    return segment.replace("%2e", ".").replace("%2E", ".")


# --- addresses ----------------------------------------------------------------------------------


def open_address_allowed(address: IPAddress) -> bool:
    """May `*` reach this address? Public and loopback only."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return open_address_allowed(address.ipv4_mapped)
        if address.teredo is not None:
            return False
        if address.sixtofour is not None and not open_address_allowed(address.sixtofour):
            return False
    if address.is_loopback:
        return True
    return (address.is_global and not address.is_multicast and not address.is_reserved
            and not address.is_link_local and not address.is_unspecified)


def normalise_address(text: str) -> IPAddress:
    """A socket's address string as an address (an IPv4-mapped IPv6 address as IPv4)."""
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class Target:
    """An approved URL: its canonical form, and whether its host was listed explicitly (then any
    address it resolves to may be reached) or approved through `*` (public and loopback only)."""

    parsed: ParsedUrl
    listed: bool

    @property
    def url(self) -> str:
        return self.parsed.url()


class UrlPolicy:
    """The allowed base URLs (or ``*``), parsed once at start-up."""

    def __init__(self, allowed: Iterable[str]):
        self.any = False
        self.bases: list[ParsedUrl] = []
        for entry in allowed:
            entry = entry.strip()
            if not entry:
                continue
            if entry == "*":
                self.any = True
                continue
            try:
                base = parse_url(entry)
            except UrlRefused as error:
                raise ValueError(f"allowed URL {entry!r} is not acceptable: {error}") from None
            if base.query:
                raise ValueError(f"allowed URL {entry!r} must not have a query")
            self.bases.append(base)

    def check(self, raw: object) -> Target:
        """The approved target for `raw`, or UrlRefused saying why."""
        parsed = parse_url(raw)
        for base in self.bases:
            if parsed.under(base):
                return Target(parsed, listed=True)
        if not self.any:
            raise UrlRefused("not on the allowed list")
        if parsed.ip is not None and not open_address_allowed(parsed.ip):
            raise UrlRefused("address not allowed without being listed")
        if parsed.ip is None and (parsed.host in METADATA_NAMES or parsed.host.endswith(".internal")):
            raise UrlRefused("metadata host name not allowed without being listed")
        return Target(parsed, listed=False)

    def allows(self, raw: object) -> bool:
        try:
            self.check(raw)
        except UrlRefused:
            return False
        return True


def url_allowed(url: object, allowed: Iterable[str]) -> bool:
    """Convenience: is `url` approved by a policy of `allowed` (decision only; connecting
    through ``security.http`` also checks the resolved addresses)."""
    try:
        return UrlPolicy(allowed).allows(url)
    except ValueError:
        return False
