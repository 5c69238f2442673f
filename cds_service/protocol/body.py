"""A hook request's JSON body -> the data the service reads, reusing the resources already
read by an earlier call.

EHRs send the same resources again and again: every chart opening sends the patient's record,
order-select fires at each selection and order-sign at signing, and only the results that are
new since the last call differ. From the second call for a patient within the memo's time,
`ResourceMemo` keeps the prefetched resources by their exact bytes: a resource sent again is
neither parsed nor read again (the fact readers keep what they made of it on the resource,
`SharedResource.readings`). The key is the resource's complete JSON text, so two entries are
the same only when the data is the same: no client can make the service use facts of a
resource it did not send.

Remembered: the entries of prefetched Bundles, a Bundle's whole
entry array (a search answered again with the same entries is one look-up, `SharedEntries`),
and a prefetch value that is a single resource (Patient, Encounter; by its members' JSON); and,
in the same way, what the FHIR server answers when the EHR sent no prefetch (`parse_fetched`).
Everything else (the context, draft orders, a Bundle's own members) is parsed as usual, and
any body the skeleton decoder does not accept is parsed whole with orjson, which gives the
same data and the same errors as before (tests/test_body.py compares the two over every
fixture). msgspec finds the members' bytes in one pass without parsing them (orjson cannot);
orjson parses them.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple, TypedDict, cast

import msgspec
import orjson


class SharedEntries(list):
    """A prefetched Bundle's `entry` array shared by the calls that send the same bytes: never
    modified. A search answered again with the same entries (the patient's medications, the
    results with no new one) gives the same array, so its entries are neither walked nor looked
    up one by one; `resources` keeps what fhir/client.bundle_resources made of it. The
    `fullUrl`, `search` and `resource` of each entry are in the bytes: the same bytes, the same
    entries (a Bundle's own `id`, `meta` and `link`, new at every search, are not)."""

    __slots__ = ("found_again", "resources")

    def __init__(self, entries: list) -> None:
        super().__init__(entries)  # every entry holds a kept resource (ResourceMemo.entries)
        self.found_again = False
        self.resources: list | None = None


class SharedResource(dict):
    """A prefetched resource shared by the calls that send the same bytes: never modified.
    `readings` holds what each fact reader made of it (guideline/facts/patient.py);
    `found_again` whether a later call found it (what the memo's admission watches); `key` the
    JSON it is kept by (an entry array found again brings its resources along by it)."""

    __slots__ = ("readings", "found_again", "key", "__weakref__")  # weak: guideline/facts/patient.py

    def __init__(self, data: dict) -> None:
        super().__init__(data)
        self.readings: dict[object, Any] = {}
        self.found_again = False
        self.key = b""


# Memory: a resource larger than this is read but never kept, and the JSON kept may average at
# most this much per resource of CDS_RESOURCE_MEMO_SIZE (an EHR's decorated lab result is ~1.3
# KB; parsed, a kept resource takes about five times its JSON).
MAX_KEPT_BYTES = 16 * 1024
# A Bundle's entry array is kept (besides its resources, by its own bytes, in the same count of
# JSON) when it is at most this share of a generation's JSON: one search's answer never fills it.
KEPT_ENTRIES_SHARE = 8
AVERAGE_KEPT_BYTES = 2 * 1024
# Admission: when the older generation is dropped full and more than this share of what it
# held was never found again, the memo is thrashing; it is then left aside for PAUSE_CALLS calls.
MAX_UNUSED_SHARE = 0.8
PAUSE_CALLS = 500


class ResourceMemo:
    """Recently seen prefetched resources by their JSON bytes: at most `size`, each kept at most
    about `seconds` after it was last sent.

    It works per patient. The first call for a patient not called for recently is parsed and
    read like any request, and only a hash of the patient id is noted: a worker that mostly
    sees patients once pays nothing for the memo (finding the resources' bytes costs ~15 % of a
    call, and keeping every new resource would make it hold and collect tens of thousands of
    objects per call). From the next call for that patient on, each prefetched resource is
    looked up by its bytes and kept.

    Two generations, for the resources and for the patients: what is found in the older one
    moves to the newer; the older is dropped when the newer holds `size / 2` entries (or, for
    resources, JSON of `size / 2 * AVERAGE_KEPT_BYTES`) or is `seconds / 2` old (checked at each
    call and, for an idle process, by one background thread per process). A patient is thus
    remembered for `seconds / 2` to `seconds`, or until `size / 2` other patients came.

    Admission: when a full older generation is dropped and most of it was never found again,
    more patients come back than the memo can hold; keeping more would only cost (kept, dropped
    unused, collected: measured 2.4x the CPU of a call without the memo), so the next
    PAUSE_CALLS calls are read as usual."""

    def __init__(self, size: int, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.seconds = seconds
        self._clock = clock
        self._lock = threading.Lock()
        # Resources (bytes '{...}') and Bundle entry arrays (bytes '[...]') by their JSON.
        self._current: dict[bytes, SharedResource | SharedEntries] = {}
        self._previous: dict[bytes, SharedResource | SharedEntries] = {}
        self._previous_size = 0  # entries the older generation had when it became the older
        self._patients: set[int] = set()  # hashes of the patient ids called for
        self._patients_before: set[int] = set()
        self._started = clock()
        self._half = max(1, size // 2)
        self._half_bytes = self._half * AVERAGE_KEPT_BYTES
        self._current_bytes = 0
        self._current_arrays = 0  # entry arrays in the newer generation: not in its count
        self._paused_calls = 0
        _MEMOS.add(self)
        _start_sweeper()

    def __len__(self) -> int:
        """Resources and entry arrays kept."""
        return len(self._current) + len(self._previous)

    def rotate_if_due(self) -> None:
        """Drop the older generations when the newer ones have lived `seconds / 2` (called at
        each call and by the background thread)."""
        _start_sweeper()  # after a fork, in the new process
        if self._clock() - self._started >= self.seconds / 2:
            with self._lock:
                if self._clock() - self._started >= self.seconds / 2:  # not just done by another thread
                    self._rotate_resources(full=False)
                    self._patients_before, self._patients = self._patients, set()
                    self._started = self._clock()

    def called_before(self, patient_id: str) -> bool:
        """Whether a call for this patient came recently (and note this one)."""
        self.rotate_if_due()
        key = hash(patient_id)
        if key in self._patients:
            return True
        seen = key in self._patients_before
        if len(self._patients) >= self._half:
            with self._lock:
                if len(self._patients) >= self._half:
                    self._patients_before, self._patients = self._patients, set()
        self._patients.add(key)
        return seen

    def paused(self) -> bool:
        """Whether this call should skip the memo (see Admission above)."""
        if self._paused_calls <= 0:
            return False
        with self._lock:
            self._paused_calls -= 1
        return True

    def _rotate_resources(self, *, full: bool) -> None:
        """The newer generation becomes the older; the older is dropped (called under the lock)."""
        if full and self._previous_size >= self._half // 2:
            # A copy first: other threads take what they find out of the older generation
            # without the lock (iterating the dict itself could fail the call).
            unused = sum(1 for resource in list(self._previous.values()) if not resource.found_again)
            if unused > MAX_UNUSED_SHARE * self._previous_size:
                self._paused_calls = PAUSE_CALLS
        self._previous, self._current = self._current, {}
        self._previous_size = len(self._previous)
        self._current_bytes = 0
        self._current_arrays = 0

    def _full(self) -> bool:
        # Resources count (an entry array only holds resources the memo counts); JSON counts all.
        return (len(self._current) - self._current_arrays >= self._half
                or self._current_bytes >= self._half_bytes)

    def _keep(self, raw: bytes, resource: SharedResource | SharedEntries) -> None:
        if self._full():
            with self._lock:  # the newer generation is full: the older one goes
                if self._full():
                    self._rotate_resources(full=True)
        self._current[raw] = resource
        self._current_bytes += len(raw)
        if type(resource) is SharedEntries:
            self._current_arrays += 1

    def parsed(self, raw: bytes, tally: Tally) -> Any:
        """The JSON value of these bytes: the remembered one, or parsed now (and remembered
        when it is an object of at most MAX_KEPT_BYTES)."""
        if raw[:1] == b"[":  # not a resource (the readers skip it); never an entry array's twin
            tally.misses += 1
            return orjson.loads(raw)
        found = self._current.get(raw)
        if found is not None:
            tally.hits += 1
            found.found_again = True
            return found
        kept = cast("SharedResource | None", self._previous.pop(raw, None))  # '{': a resource
        if kept is None:
            tally.misses += 1
            parsed = orjson.loads(raw)
            if type(parsed) is not dict or len(raw) > MAX_KEPT_BYTES:
                return parsed  # not a resource (the readers skip it), or outsized: not kept
            kept = SharedResource(parsed)
        else:
            tally.hits += 1
            kept.found_again = True
        kept.key = raw
        self._keep(raw, kept)
        return kept

    def entries(self, raw: bytes, tally: Tally) -> Any:
        """The entry array of a prefetched Bundle, from these bytes (its JSON text): the
        remembered one, or read now (each resource through `parsed`) and remembered when it is a
        list of at most a KEPT_ENTRIES_SHARE-th of a generation (resources and JSON) whose every entry holds a
        resource the memo keeps itself (so an array keeps alive nothing the memo would not:
        never a resource over MAX_KEPT_BYTES). The keys of entry arrays start with '[', those of
        resources with '{'."""
        if raw[:1] != b"[":
            return orjson.loads(raw)  # not a list: read as sent, never a resource's twin
        found = self._current.get(raw)
        if found is None:
            found = self._previous.pop(raw, None)
            if found is None:
                entries = _read_entries(raw, self, tally)
                if entries is None:
                    return orjson.loads(raw)
                if (len(entries) > self._half // KEPT_ENTRIES_SHARE
                        or len(raw) > self._half_bytes // KEPT_ENTRIES_SHARE
                        or any(type(entry.get("resource")) is not SharedResource for entry in entries)):
                    return entries
                kept = SharedEntries(entries)
                return kept if self._keep_with_resources(raw, kept) else entries
            found = cast(SharedEntries, found)  # a key starting with '[' is an entry array's
            if not self._keep_with_resources(raw, found):
                return list(found)
        found = cast(SharedEntries, found)
        tally.hits += len(found)  # one kept resource per entry
        found.found_again = True  # its resources move with it: never left behind unused
        return found

    def _keep_with_resources(self, raw: bytes, entries: SharedEntries) -> bool:
        """Keep an entry array in the newer generation, then its resources that are in the
        older one (taken out of it all at once, so that a rotation while they move cannot drop
        them): every resource of a kept array is in the same generation as the array or a newer
        one, so the memo holds, and counts, every resource an array keeps alive, and a search
        with one new result still finds the others. False, and the array not kept, when some
        of its resources are no longer in the memo (a generation dropped while the call read
        them)."""
        self._keep(raw, entries)  # first: a rotation it brings moves the resources too
        previous = self._previous
        moving = []
        for entry in entries:
            key = entry["resource"].key
            resource = previous.pop(key, None)  # other threads may take it too: pop, never del
            if resource is not None:
                moving.append((key, resource))
        for key, resource in moving:  # out of the older generation: a rotation cannot drop them
            self._keep(key, resource)
        current, previous = self._current, self._previous  # as they are now (a rotation may have come)
        if all(current.get(entry["resource"].key) is entry["resource"]
               or previous.get(entry["resource"].key) is entry["resource"] for entry in entries):
            return True
        if current.pop(raw, None) is not None:
            self._current_arrays -= 1
        previous.pop(raw, None)
        return False


class Tally:
    """Prefetched resources of one call found in the memo (hits) and parsed (misses)."""

    __slots__ = ("hits", "misses")

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0


class Parsed(NamedTuple):
    body: Any
    tally: Tally | None  # None: parsed without the memo, and what is fetched for the call too


class _Entry(TypedDict, total=False):
    resource: msgspec.Raw
    search: msgspec.Raw  # search.mode 'outcome' entries are skipped (fhir/client.py)


class _Request(TypedDict, total=False):
    # The members of a CDS Hooks 2.0 request; other top-level members are not read. Each
    # prefetch value is an object read member by member (or null): one pass over the body.
    hook: msgspec.Raw
    hookInstance: msgspec.Raw
    fhirServer: msgspec.Raw
    fhirAuthorization: msgspec.Raw
    context: msgspec.Raw
    prefetch: dict[str, dict[str, msgspec.Raw] | None] | None


_REQUEST = msgspec.json.Decoder(_Request)
_ENTRIES = msgspec.json.Decoder(list[_Entry])
# What the service reads of a prefetched Bundle: its type, entries and paging links.
_BUNDLE_MEMBERS = ("resourceType", "entry", "link")


def parse_body(raw: bytes, memo: ResourceMemo | None) -> Parsed:
    """The body as orjson parses it, with only the members the service reads (those of a
    CDS Hooks request, of a Bundle and of its entries) and prefetched resources from
    `memo` when it has them. Raises orjson.JSONDecodeError exactly where orjson.loads would.

    Every value the service reads is parsed by orjson, and the whole body is checked for UTF-8.
    Members it does not read are checked for JSON syntax only (msgspec skips them): an
    out-of-range number (1e400) in a Bundle's `meta`, say, is refused by a patient's first call
    (orjson parses the whole body then) and not by the next ones (tests/test_body.py)."""
    if memo is None:
        return Parsed(orjson.loads(raw), None)
    try:
        return _parse_with_memo(raw, memo)
    except (msgspec.DecodeError, ValueError, RecursionError):
        # Not a JSON object of the expected shape (a prefetch value that is neither an object
        # nor null, say), or not JSON at all: the plain parse gives the answer (the same data,
        # or the error the client is told about).
        return Parsed(orjson.loads(raw), None)


def _parse_with_memo(raw: bytes, memo: ResourceMemo) -> Parsed:
    if not raw.isascii():
        raw.decode("utf-8")  # invalid UTF-8 anywhere is refused, as orjson does (UnicodeDecodeError)
    members: dict[str, Any] = cast(dict, _REQUEST.decode(raw))
    context = orjson.loads(memoryview(members["context"])) if "context" in members else None
    patient_id = context.get("patientId") if isinstance(context, dict) else None
    if not isinstance(patient_id, str) or not memo.called_before(patient_id) or memo.paused():
        return Parsed(orjson.loads(raw), None)  # the first call for this patient: read as usual
    tally = Tally()
    if members.get("prefetch") is None:
        # Nothing prefetched: parsed as usual; what is fetched for it may use the memo
        # (parse_fetched).
        return Parsed(orjson.loads(raw), tally)
    body: dict[str, Any] = {}
    for name, value in members.items():
        if name == "context":
            body[name] = context
        elif name != "prefetch":
            body[name] = orjson.loads(memoryview(value))
        else:
            body[name] = {key: _prefetch_value(item, memo, tally) for key, item in value.items()}
    return Parsed(body, tally)


def _prefetch_value(members: dict[str, msgspec.Raw] | None, memo: ResourceMemo, tally: Tally) -> Any:
    """A prefetch value from its members' JSON: a Bundle's members the service reads, its
    entry array through the memo; or a single resource (Patient, Encounter) through the memo."""
    if members is None:
        return None
    kind = members.get("resourceType")
    if kind is not None and orjson.loads(memoryview(kind)) == "Bundle":
        return {name: memo.entries(bytes(value), tally) if name == "entry" else orjson.loads(memoryview(value))
                for name, value in members.items() if name in _BUNDLE_MEMBERS}
    # The resource's JSON as an object of its members' exact JSON (only the white space between
    # members may differ from what was sent): the same text, the same resource, as for entries.
    text = b"{" + b",".join(orjson.dumps(name) + b":" + bytes(value) for name, value in members.items()) + b"}"
    return memo.parsed(text, tally)


_MEMBERS = msgspec.json.Decoder(dict[str, msgspec.Raw])


def parse_fetched(raw: bytes, memo: ResourceMemo, tally: Tally) -> Any:
    """A FHIR server's answer (a search Bundle or one resource) read like a prefetch value,
    through the memo: a search answered again with the same entries, or a resource read again,
    is neither parsed nor read again. For the calls that use the memo (`Parsed.tally` set):
    without prefetch, an EHR's FHIR server answers every chart opening with the same bytes
    but for a new result. Raises orjson.JSONDecodeError where orjson.loads would (anything
    that is not a JSON object, or not UTF-8, is parsed by orjson as it is), with parse_body's
    one leniency: a member the service does not read (a Bundle's `total` or `meta`, an entry's
    `response`, the first of two members of one name) is checked for JSON syntax only, so a
    number beyond orjson's range there (1e400) is not refused as it is on a first call."""
    try:
        if not raw.isascii():
            raw.decode("utf-8")
        return _prefetch_value(_MEMBERS.decode(raw), memo, tally)
    except (msgspec.DecodeError, ValueError, RecursionError):  # as parse_body: orjson answers
        return orjson.loads(raw)


def _read_entries(raw: bytes, memo: ResourceMemo, tally: Tally) -> list | None:
    """A Bundle's entry array read entry by entry (each resource through the memo); None when
    it is not a list of objects (it is then parsed as it is, and never kept)."""
    try:
        members = _ENTRIES.decode(raw)
    except msgspec.ValidationError:
        return None
    entries = []
    parsed = memo.parsed  # hot loop: every entry of every prefetched Bundle not seen as a whole
    for member in members:
        entry = {}
        if "resource" in member:
            entry["resource"] = parsed(bytes(member["resource"]), tally)
        if "search" in member:
            entry["search"] = _search(bytes(member["search"]))
        entries.append(entry)
    return entries


_SEARCHES: dict[bytes, Any] = {}  # {"mode":"match"} and the like: a few short values, shared


def _search(raw: bytes) -> Any:
    """An entry's `search` member (read-only, like the resources)."""
    found = _SEARCHES.get(raw)
    if found is None:
        found = orjson.loads(raw)
        if len(raw) <= 64 and len(_SEARCHES) < 16:  # no patient data: a mode and a score
            _SEARCHES[raw] = found
    return found


# One thread per process drops what idle memos hold past their time (a worker that answers no
# call for an hour must not keep patient data for an hour).
_MEMOS: weakref.WeakSet[ResourceMemo] = weakref.WeakSet()
_SWEEP_SECONDS = 10.0
_sweeper_pid: int | None = None
_sweeper_lock = threading.Lock()


def _start_sweeper() -> None:
    global _sweeper_pid
    if _sweeper_pid == os.getpid():
        return
    with _sweeper_lock:
        if _sweeper_pid != os.getpid():  # not started yet in this process (or only before a fork)
            _sweeper_pid = os.getpid()
            threading.Thread(target=_sweep, name="resource-memo-expiry", daemon=True).start()


def _sweep() -> None:
    while True:
        time.sleep(_SWEEP_SECONDS)
        sweep_once()


def sweep_once() -> None:
    """What the background thread does every _SWEEP_SECONDS: every memo of the process drops
    what has outlived its time, even when no call comes."""
    for memo in list(_MEMOS):
        memo.rotate_if_due()
