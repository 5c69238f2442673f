"""A small FHIR REST client for the prefetch fallback: reads and searches with bounded time.

Every request has connect/read timeouts cut to the hook's remaining deadline; searches follow
``Bundle.link[next]`` up to a page bound and only on the same server; redirects are not followed
(an access token must not travel to another host).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator, Mapping
from urllib.parse import urlsplit

import requests

FHIR_JSON = "application/fhir+json"


class FetchError(Exception):
    """A query could not be answered; the message is safe to show (no patient data)."""


_local = threading.local()


def _session() -> requests.Session:
    """One pooled session per worker thread (sessions are not shared across threads)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        session.headers["Accept"] = FHIR_JSON
        _local.session = session
    return session


class FhirClient:
    def __init__(self, base_url: str, access_token: str | None, *, connect_timeout: float,
                 read_timeout: float, max_pages: int):
        self.base_url = base_url.rstrip("/")
        self._origin = urlsplit(self.base_url)
        self._headers = {"Authorization": f"Bearer {access_token}"} if access_token else {}
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_pages = max_pages

    def url_for(self, relative: str) -> str:
        return f"{self.base_url}/{relative.lstrip('/')}"

    def same_server(self, url: str) -> bool:
        """`url` is on this FHIR server: same scheme and host, a path under the base (by segment)."""
        try:
            parts = urlsplit(url)
        except ValueError:
            return False
        base_path = self._origin.path.rstrip("/") + "/"
        return ((parts.scheme, parts.netloc) == (self._origin.scheme, self._origin.netloc)
                and (parts.path.rstrip("/") + "/").startswith(base_path))

    def get_json(self, url: str, deadline: float) -> Mapping[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError("deadline reached")
        timeout = (min(self._connect_timeout, remaining), min(self._read_timeout, remaining))
        try:
            response = _session().get(url, headers=self._headers, timeout=timeout,
                                      allow_redirects=False)
        except requests.Timeout:
            raise FetchError("timed out") from None
        except requests.RequestException as error:
            raise FetchError(f"unreachable ({type(error).__name__})") from None
        if response.status_code != 200:
            raise FetchError(f"HTTP {response.status_code}")
        try:
            body = response.json()
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
            raise FetchError("response was not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
            raise FetchError("response was not a FHIR resource")
        if body["resourceType"] == "OperationOutcome":
            raise FetchError("server answered with an OperationOutcome")
        return body

    def resources(self, relative: str, deadline: float) -> "Fetched":
        """A read (one resource) or a search (all entries, following next pages)."""
        first = self.get_json(self.url_for(relative), deadline)
        rest = self.following_pages(first, deadline)
        return Fetched(list(bundle_resources(first)) + rest.resources, rest.incomplete)

    def following_pages(self, first: Mapping[str, Any], deadline: float) -> "Fetched":
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
            found.extend(bundle_resources(page))
            pages += 1
        return Fetched(found, None)


@dataclass(frozen=True)
class Fetched:
    resources: list[Mapping[str, Any]]
    incomplete: str | None  # why some pages are missing, or None


def bundle_resources(value: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """A Bundle's entry resources (outcome entries of a search skipped), or the resource itself."""
    if value.get("resourceType") != "Bundle":
        yield value
        return
    entries = value.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            continue  # one malformed entry does not spoil the bundle
        search = entry.get("search")
        if isinstance(search, dict) and search.get("mode") == "outcome":
            continue
        yield resource


def next_link(bundle: Mapping[str, Any]) -> str | None:
    if bundle.get("resourceType") != "Bundle":
        return None
    links = bundle.get("link")
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None
