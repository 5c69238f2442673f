"""The URL policy (issue 11): one parse decides and connects; `*` is public and loopback only."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.fhir.client import FhirClient, FetchError
from cds_service.security.urlpolicy import UrlPolicy, UrlRefused, open_address_allowed, parse_url

from .hostile_upstream import HostileServer
from cds_service.testing import factories as f

A = "http://a.example/ok/fhir"


@pytest.mark.parametrize("url, why", [
    ("http://b.example\\@a.example/ok/fhir", "backslash"),
    ("http://b.example\\.a.example/ok/fhir", "backslash"),
    ("http://user:pw@a.example/ok/fhir", "userinfo"),
    ("http://@a.example/ok/fhir", "userinfo"),
    ("http://a.example/ok/fhir/../../admin", "dot segment"),
    ("http://a.example/ok/fhir/%2e%2e/admin", "percent-escape"),
    ("http://a.example/ok/fhir/..%2fadmin", "percent-escape"),
    ("http://a.example/ok/fhir/x%", "percent-escape"),
    ("http://a.example/ok/fhir/x%zz", "percent-escape"),
    ("http://a.example/ok/fhir#frag", "fragment"),
    ("http://a.example/ok/fhir x", "whitespace"),
    ("ftp://a.example/ok/fhir", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("//a.example/ok/fhir", "absolute"),
    ("http://a%2eexample/ok/fhir", "percent-escape in host"),
    ("http://[fe80::1%25eth0]/ok/fhir", "percent-escape in host"),
    ("http://a.example:0/ok/fhir", "port"),
    ("http://a.example:99999/ok/fhir", "port"),
    ("http://a.example:/ok/fhir", "port"),
    ("http://1.2.3.4.5/ok/fhir", "numeric host"),
    ("http://08.1.1.1/ok/fhir", "numeric host"),
    ("http://a.example\u3002evil/ok/fhir", "non-ASCII"),
])
def test_refused_forms(url, why):
    with pytest.raises(UrlRefused, match=why):
        UrlPolicy([A]).check(url)


def test_finding_1_backslash_and_userinfo_never_pass_a_listed_base():
    policy = UrlPolicy(["http://a.example/ok/fhir"])
    assert policy.check("http://a.example/ok/fhir").listed
    assert not policy.allows("http://b.example\\@a.example/ok/fhir")
    assert not policy.allows("http://token:x@a.example/ok/fhir")
    assert not policy.allows("http://a.example/ok/fhir/../../admin")
    assert not policy.allows("http://a.example/ok/fhir-admin")


@pytest.mark.parametrize("host", [
    "169.254.169.254", "0xa9.0xfe.0xa9.0xfe", "0xa9fea9fe", "2852039166", "0251.0376.0251.0376",
    "169.254.43518", "[::ffff:169.254.169.254]", "[::ffff:a9fe:a9fe]", "10.0.0.1", "0xa.1",
    "192.168.1.1", "172.16.0.1", "100.64.0.1", "224.0.0.1", "0.0.0.0", "0", "[::]", "[fe80::1]",
    "[fd00:ec2::254]", "[2002:a00:1::]", "[64:ff9b::a9fe:a9fe]", "[::a9fe:a9fe]",
    "metadata.google.internal", "metadata", "instance-data", "169.254.169.254.",
])
def test_finding_7_open_policy_refuses_internal_addresses_in_every_form(host):
    with pytest.raises(UrlRefused):
        UrlPolicy(["*"]).check(f"http://{host}/latest/meta-data")


@pytest.mark.parametrize("host, canonical", [
    ("127.0.0.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("2130706433", "127.0.0.1"),
    ("017700000001", "127.0.0.1"), ("[::1]", "::1"), ("[::ffff:127.0.0.1]", "127.0.0.1"),
    ("LOCALHOST.", "localhost"), ("8.8.8.8", "8.8.8.8"), ("fhir.example.org", "fhir.example.org"),
])
def test_open_policy_allows_public_and_loopback_in_canonical_form(host, canonical):
    target = UrlPolicy(["*"]).check(f"http://{host}:8080/fhir")
    assert target.parsed.host == canonical and not target.listed
    assert target.url.startswith(f"http://{'[' + canonical + ']' if ':' in canonical else canonical}:8080/")


def test_a_hospital_may_list_an_internal_server_explicitly():
    policy = UrlPolicy(["http://10.1.2.3/fhir", "https://ehr.hospital.internal/r4", "*"])
    assert policy.check("http://10.1.2.3/fhir/Patient/1").listed
    assert policy.check("http://0x0a010203/fhir").listed  # the same address in another form
    assert policy.check("https://ehr.hospital.internal/r4").listed
    assert not policy.allows("http://10.1.2.4/fhir")


def test_allowed_list_entries_are_checked_at_start_up():
    with pytest.raises(ValueError, match="not acceptable"):
        UrlPolicy(["http://a\\b/fhir"])


# --- property tests: whatever the policy approves is exactly what the connection will use -------

ALLOWED_BASE = "http://a.example:8080/ok/fhir"
hosts = st.one_of(
    st.just("a.example"), st.just("a.example"), st.just("a.example"),
    st.sampled_from(["a.example", "A.EXAMPLE", "a.example.", "b.example", "a.example.evil",
                     "evil.a.example", "127.0.0.1", "[::1]", "localhost"]),
    st.integers(0, 2 ** 32 - 1).map(lambda n: str(ipaddress.IPv4Address(n))),
    st.integers(0, 2 ** 32 - 1).map(str),
    st.integers(0, 2 ** 32 - 1).map(hex),
    st.integers(0, 2 ** 32 - 1).map(lambda n: "0" + oct(n)[2:]),
    st.lists(st.integers(0, 255), min_size=4, max_size=4).map(
        lambda p: ".".join(st_fmt(i, n) for i, n in enumerate(p))),
    st.integers(0, 2 ** 128 - 1).map(lambda n: f"[{ipaddress.IPv6Address(n)}]"),
    st.integers(0, 2 ** 32 - 1).map(lambda n: f"[::ffff:{ipaddress.IPv4Address(n)}]"),
)


def st_fmt(index: int, n: int) -> str:
    return [str(n), hex(n), "0" + oct(n)[2:]][index % 3]


_odd = st.sampled_from(["\\", "@", "%", "%2e", "%2f", "%5c", "..", ".", "/", "//", ":", "#", "?", "%40",
                        "%00", "\t", " ", "é", "user:pw@", "\\@", "%25", ";"])
noise = st.one_of(st.just(""), st.just(""), st.just(""), _odd)  # mostly clean, often not
paths = st.lists(st.one_of(st.sampled_from(["ok", "fhir", "Patient", "Observation", "p-1"]),
                           st.sampled_from(["..", ".", "%2e%2e", "x%2Fy", "", "a b", "%41"])),
                 max_size=5).map(lambda parts: "/".join(parts))
paths = st.tuples(st.one_of(st.just("/ok/fhir/"), st.just("/ok/fhir/"), st.sampled_from(["/ok/", "/", "/ok/fhir-x/"])),
                  paths).map("".join)
@settings(max_examples=400, deadline=None)
@given(scheme=st.one_of(st.sampled_from(["http", "https", "HTTP"]), st.sampled_from(["ftp", "file", "gopher"])),
       pre=noise, host=hosts, mid=noise,
       port=st.one_of(st.sampled_from([":8080", "", ":80"]), st.sampled_from([":0", ":65536", ":x", ":"])),
       path=paths, post=noise)
def test_property_approved_urls_are_canonical_and_under_an_allowed_base(scheme, pre, host, mid, port,
                                                                        path, post):
    raw = f"{scheme}://{pre}{host}{mid}{port}{path}{post}"
    for allowed in ([ALLOWED_BASE], ["*"]):
        policy = UrlPolicy(allowed)
        try:
            target = policy.check(raw)
        except UrlRefused:
            continue
        url = target.url
        # What the standard library (and urllib3) read from the canonical URL is what was checked.
        parts = urlsplit(url)
        assert "\\" not in url and "@" not in parts.netloc and "#" not in url
        assert parts.scheme in ("http", "https")
        assert parse_url(url) == target.parsed  # canonical: parsing again changes nothing
        assert not any(seg in (".", "..") for seg in parts.path.split("/"))
        host_seen = parts.hostname
        if allowed == ["*"]:
            if target.parsed.ip is not None:
                assert open_address_allowed(ipaddress.ip_address(host_seen))
        else:
            assert (host_seen, parts.port or 80) == ("a.example", 8080)
            assert (parts.path + "/").startswith("/ok/fhir/")


@settings(max_examples=300, deadline=None)
@given(scheme=st.sampled_from(["http", "https"]), n=st.integers(0, 2 ** 32 - 1),
       name=st.from_regex(r"[a-z]([a-z0-9-]{0,9}[a-z0-9])?(\.[a-z][a-z0-9]{0,10}){1,3}", fullmatch=True),
       use_name=st.booleans(), port=st.integers(1, 65535),
       segments=st.lists(st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True), max_size=4))
def test_property_clean_urls_are_approved_unchanged_when_their_address_may_be_reached(
        scheme, n, name, use_name, port, segments):
    host = name if use_name else str(ipaddress.IPv4Address(n))
    url = f"{scheme}://{host}:{port}/" + "/".join(segments)
    reachable = use_name and not (name in ("metadata",) or name.endswith(".internal")) or (
        not use_name and open_address_allowed(ipaddress.IPv4Address(n)))
    assert UrlPolicy(["*"]).allows(url) == reachable
    if reachable:
        target = UrlPolicy(["*"]).check(url)
        default = {"http": 80, "https": 443}[scheme]
        assert target.url == (url if port != default else url.replace(f":{port}/", "/", 1))
    # and a hospital that lists it reaches it whatever its address
    assert UrlPolicy([f"{scheme}://{host}:{port}"]).check(url).listed


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 2 ** 32 - 1), form=st.sampled_from(["dec", "hex", "oct", "dotted-hex", "mapped", "short"]))
def test_property_numeric_forms_are_read_as_the_resolver_reads_them(n, form):
    address = ipaddress.IPv4Address(n)
    text = {"dec": str(n), "hex": hex(n), "oct": "0" + oct(n)[2:],
            "dotted-hex": ".".join(hex(int(b)) for b in str(address).split(".")),
            "mapped": f"[::ffff:{address}]",
            "short": f"{str(address).split('.')[0]}.{n & 0xFFFFFF}"}[form]
    parsed = parse_url(f"http://{text}/fhir")
    assert parsed.ip == address
    if form != "mapped":
        assert socket.inet_aton(text) == address.packed  # the C library agrees
    assert UrlPolicy(["*"]).allows(f"http://{text}/fhir") == open_address_allowed(address)


# --- connect-time checks: every address actually connected to -----------------------------------


def test_finding_7_a_name_resolving_to_an_internal_address_is_refused_at_connect(monkeypatch):
    """DNS rebinding: the name resolves to loopback (allowed) once, then to the metadata
    address; the second connection is refused although the URL was approved."""
    with HostileServer("normal", [f.patient()]) as upstream:
        answers = iter([("127.0.0.1", upstream.port), ("169.254.169.254", upstream.port)])
        real = socket.getaddrinfo

        def rebinding(host, port, *args, **kwargs):
            if host == "rebind.example":
                address, port = next(answers)
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
            return real(host, port, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", rebinding)
        target = UrlPolicy(["*"]).check(f"http://rebind.example:{upstream.port}/fhir")
        import time

        client = FhirClient(target, "secret", connect_timeout=1, read_timeout=1, max_pages=1)
        assert client.get_json(client.url_for("Patient/pat-1"), time.monotonic() + 5)["id"] == "pat-1"
        from cds_service.security import outbound

        outbound._local.sessions = {}  # a new connection (as after keep-alive expiry)
        with pytest.raises(FetchError) as refused:
            client.get_json(client.url_for("Patient/pat-1"), time.monotonic() + 5)
        assert refused.value.kind == "policy"
        assert len(upstream.paths) == 1


@pytest.mark.parametrize("url", [
    "http://a.example/ok/fhir/Observation?_getpages=ab%2Fcd%2B%3D%3D&_count=20",
    "http://a.example/ok/fhir/Patient?name=J%C3%A9r%C3%B4me",
    "http://a.example/ok/fhir/Observation?code=http%3A%2F%2Floinc.org%7C2601-3",
    "http://a.example/ok/fhir/Observation?code=http://loinc.org|2601-3&patient=p-1",
])
def test_real_paging_and_search_queries_pass(url):
    assert UrlPolicy([A]).check(url).url == url


@pytest.mark.parametrize("url", ["http://a.example/ok/fhir/Patient?x=%00", "http://a.example/ok/fhir/Patient?x=%0d%0aSet-Cookie:a",
                                 "http://a.example/ok/fhir/Patient?x=%zz"])
def test_escaped_control_characters_are_refused_in_the_query_too(url):
    assert not UrlPolicy([A]).allows(url)
