"""A small FHIR REST client for the prefetch fallback: reads and searches, bounded.

Every URL goes through the URL policy (security/urlpolicy.py) and is fetched in its canonical
form by security/outbound.py: connect/read timeouts cut to the hook's remaining deadline, a
watchdog that ends the fetch at the deadline, a byte cap counted while decompressing, no cookies,
no environment proxies. Searches follow ``Bundle.link[next]`` up to a page bound and only under
the same base URL; a hook reads at most `max_entries` resources; redirects are not followed (an
access token must not travel to another host).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, cast
from collections.abc import Mapping

from .. import logs
from ..metrics import FETCHED_RESOURCES
from ..protocol.body import ResourceMemo, SharedEntries, Tally, parse_fetched
from ..security.outbound import FetchFailure, bounded_get, parse_json
from ..security.urlpolicy import Target, UrlRefused, parse_url

FHIR_JSON = "application/fhir+json"
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_ENTRIES = 5000


class FetchError(Exception):
    """A query could not be answered; the message is safe to show (no patient data).
    `kind` classifies it for the log: timeout, policy, too large, http, unreachable, invalid, busy."""

    def __init__(self, message: str, kind: str = "invalid", status: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status


class FhirClient:
    """One hook call's view of one FHIR server (created per call: the token and the entry
    budget belong to the call). With `memo` (a call that uses the resource memo), answers are
    read through it (protocol/body.parse_fetched)."""

    def __init__(self, base: Target | str, access_token: str | None, *, connect_timeout: float,
                 read_timeout: float, max_pages: int,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
                 max_entries: int = DEFAULT_MAX_ENTRIES, memo: ResourceMemo | None = None):
        # A plain string is a base the caller vouches for (listed); the runtime passes the
        # Target its URL policy approved.
        target = base if isinstance(base, Target) else Target(parse_url(base), listed=True)
        path = target.parsed.path.rstrip("/")
        self._base = parse_url(f"{target.parsed.scheme}://{target.parsed.netloc}{path}")
        self._check_addresses = not target.listed
        self.base_url = self._base.url()
        self._headers = {"Accept": FHIR_JSON}
        if access_token:
            self._headers["Authorization"] = f"Bearer {access_token}"
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_pages = max_pages
        self._max_bytes = max_response_bytes
        self._max_entries = max_entries
        self._entries = 0
        self._entries_lock = threading.Lock()
        self._memo = memo

    @property
    def origin(self) -> tuple[str, str, int]:
        """The server (scheme, host, port): the fetch pool limits concurrent fetches per server."""
        return self._base.origin

    def url_for(self, relative: str) -> str:
        return f"{self.base_url}/{relative.lstrip('/')}"

    def _approved(self, url: str) -> str:
        """The canonical form of `url` when it is on this server under the base path."""
        try:
            parsed = parse_url(url)
        except UrlRefused as refusal:
            raise FetchError(f"refused by the URL policy ({refusal})", "policy") from None
        if not parsed.under(self._base):
            raise FetchError("refused by the URL policy (not under the FHIR base)", "policy")
        return parsed.url()

    def same_server(self, url: str) -> bool:
        """`url` is on this FHIR server: same scheme, host and port, a path under the base (by
        segment), and acceptable to the URL policy (no dot segments, no odd escapes)."""
        try:
            self._approved(url)
        except FetchError:
            return False
        return True

    def get_json(self, url: str, deadline: float) -> Mapping[str, Any]:
        try:
            return self._get_json(url, deadline)
        except FetchError as error:
            logs.event("fhir_fetch_failed", failure=error.kind, status=error.status, server=self._base.netloc,
                       resource_type=_resource_type(self._base, url))
            raise

    def _get_json(self, url: str, deadline: float) -> Mapping[str, Any]:
        url = self._approved(url)
        try:
            raw = bounded_get(url, check_addresses=self._check_addresses, headers=self._headers,
                              deadline=deadline, connect_timeout=self._connect_timeout,
                              read_timeout=self._read_timeout, max_bytes=self._max_bytes)
        except FetchFailure as failure:
            message = "timed out" if failure.kind == "timeout" else str(failure)
            raise FetchError(message, failure.kind, failure.status) from None
        try:
            body = parse_json(raw) if self._memo is None else self._parse_through_memo(raw)
        except FetchFailure as failure:
            raise FetchError(str(failure), failure.kind) from None
        if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
            raise FetchError("response was not a FHIR resource")
        if body["resourceType"] == "OperationOutcome":
            raise FetchError("server answered with an OperationOutcome")
        return body

    def _parse_through_memo(self, raw: bytes) -> object:
        """parse_json's checks and errors, the resources from the memo (one tally per fetch:
        the fetches of a call run in threads of their own)."""
        memo = cast(ResourceMemo, self._memo)
        tally = Tally()
        body = parse_json(raw, loads=lambda data: parse_fetched(data, memo, tally))
        if tally.hits:
            FETCHED_RESOURCES.labels(memo="hit").inc(tally.hits)
        if tally.misses:
            FETCHED_RESOURCES.labels(memo="miss").inc(tally.misses)
        return body

    def _take(self, resources: list[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], bool]:
        """`resources` within the hook's entry budget, and whether some were dropped."""
        with self._entries_lock:
            room = max(0, self._max_entries - self._entries)
            kept = resources[:room]
            self._entries += len(kept)
        return kept, len(kept) < len(resources)

    def resources(self, relative: str, deadline: float) -> Fetched:
        """A read (one resource) or a search (all entries, following next pages)."""
        first = self.get_json(self.url_for(relative), deadline)
        kept, dropped = self._take(bundle_resources(first))
        if dropped:
            return Fetched(kept, f"more than {self._max_entries} entries")
        rest = self.following_pages(first, deadline)
        return Fetched(kept + rest.resources, rest.incomplete)

    def following_pages(self, first: Mapping[str, Any], deadline: float) -> Fetched:
        """The resources of the pages after `first`, up to the page bound, on this server only.

        A page that cannot be read ends the walk: what was read is kept and `incomplete` says why.
        """
        found: list[Mapping[str, Any]] = []
        page, pages = first, 1
        while (next_url := next_link(page)) is not None:
            if pages >= self._max_pages:
                return Fetched(found, f"more than {self._max_pages} pages")
            if not self.same_server(next_url):
                return Fetched(found, "next page on another server")
            try:
                page = self.get_json(next_url, deadline)
            except FetchError as error:
                return Fetched(found, f"a further page: {error}")
            kept, dropped = self._take(bundle_resources(page))
            found.extend(kept)
            if dropped:
                return Fetched(found, f"more than {self._max_entries} entries")
            pages += 1
        return Fetched(found, None)


def _resource_type(base, url: str) -> str | None:  # type: ignore[no-untyped-def]
    """The resource type a URL addresses (for the log: never ids or query values)."""
    try:
        path = parse_url(url).path
    except UrlRefused:
        return None
    first = path[len(base.path.rstrip("/")):].strip("/").split("/", 1)[0]
    return first if first.isalpha() and first[:1].isupper() else None


@dataclass(frozen=True)
class Fetched:
    resources: list[Mapping[str, Any]]
    incomplete: str | None  # why some pages are missing, or None


def bundle_resources(value: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A Bundle's entry resources (outcome entries of a search skipped), or the resource itself.
    (One plain loop into a list: it runs over every entry of every prefetched Bundle.)"""
    if value.get("resourceType") != "Bundle":
        return [value]
    entries = value.get("entry")
    if type(entries) is SharedEntries:  # the same entries as an earlier call's: read once
        if entries.resources is None:
            entries.resources = _entry_resources(entries)
        return entries.resources[:]
    if not isinstance(entries, list):
        return []
    return _entry_resources(entries)


def _entry_resources(entries: list) -> list[Mapping[str, Any]]:
    resources: list[Mapping[str, Any]] = []
    append = resources.append
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            continue  # one malformed entry does not spoil the bundle
        search = entry.get("search")
        if search is not None and isinstance(search, dict) and search.get("mode") == "outcome":
            continue
        append(resource)
    return resources


def next_link(bundle: Mapping[str, Any]) -> str | None:
    if bundle.get("resourceType") != "Bundle":
        return None
    links = bundle.get("link")
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None
