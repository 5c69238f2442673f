"""Medication requests, statements and administrations -> medication use (sections 1, 3 and 7).

A drug is classified by its code first, then by its name (the value sets of codes.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

import orjson

from .. import codes
from ...fhir.references import literal_reference
from .model import MagnesiumGiven, MedicationUse
from .values import (Resource, clip, coding_keys, codings, concept_text, medication_key,
                     parse_datetime)

# Section 3: magnesium given since the result.
GIVEN_ADMINISTRATION_STATUSES = frozenset({"completed", "in-progress"})


_TACROLIMUS_CODES = codes.keys((codes.TACROLIMUS, *codes.TACROLIMUS_PRODUCTS))
_TACROLIMUS_PATTERN = codes.name_pattern(codes.TACROLIMUS_NAMES)
_TOPICAL_PATTERN = codes.name_pattern(codes.TOPICAL_WORDS)
_SUPPLEMENT_PATTERN = codes.name_pattern(codes.MAGNESIUM_SUPPLEMENT_NAMES)
_LOCAL_FORM_PATTERN = codes.name_pattern(codes.LOCAL_FORM_WORDS)


class _DrugIndex:
    """Section 8 lists, indexed once: RxNorm ingredient code and whole-word names -> class."""

    def __init__(self, classes: Iterable[codes.DrugClass]):
        classes = tuple(classes)
        self.by_code: dict[str, tuple[str, str]] = {}
        names: dict[str, tuple[str, str]] = {}
        for drug_class in classes:
            for ingredient, rxcui in drug_class.ingredients.items():
                if rxcui:
                    self.by_code[rxcui] = (drug_class.key, ingredient)
                names[codes.name_key(ingredient)] = (drug_class.key, ingredient)
            for brand, ingredient in drug_class.brands.items():
                names[codes.name_key(brand)] = (drug_class.key, ingredient)
        self.by_name = names
        self.pattern = codes.name_pattern(
            [n for c in classes for n in (*c.ingredients, *c.brands)])

    def match(self, rxnorm_codes: Iterable[str], text: str) -> tuple[str, str] | None:
        hit = None
        for rxcui in rxnorm_codes:
            hit = self.by_code.get(rxcui)
            if hit:
                break
        if hit is None:
            # Every name in the text: in "nirmatrelvir/ritonavir" the inhibitor is named second.
            found = [self.by_name[codes.name_key(m.group(0))] for m in self.pattern.finditer(text)
                     if codes.name_key(m.group(0)) in self.by_name]
            hit = next((h for h in found if h[1] in codes.BOOSTERS), found[0] if found else None)
        if hit is not None and hit[1] in codes.INTERACTING_INGREDIENT:
            return hit[0], codes.INTERACTING_INGREDIENT[hit[1]]
        return hit


WASTING_INDEX = _DrugIndex(codes.MAGNESIUM_WASTING)
RAISING_INDEX = _DrugIndex(codes.RAISES_TACROLIMUS)
LOWERING_INDEX = _DrugIndex(codes.LOWERS_TACROLIMUS)


def medication_concept(request: Resource, medications: Mapping[str, Resource]) -> tuple[Any, Resource | None]:
    """The medication's CodeableConcept and the Medication resource it came from, if any.

    Resolves medicationReference to a contained Medication ('#id') or to a Medication found
    in the patient data: 'Medication/id', or '<fhirServer>/Medication/id' naming the hook's own
    server (`medications` holds those under that absolute key: patient.py). A Medication on any
    other server is not this patient data's: unresolved, as fhir/data.py never reads it.
    """
    concept = request.get("medicationCodeableConcept")
    if isinstance(concept, dict):
        return concept, None
    reference = request.get("medicationReference")
    if not isinstance(reference, dict):
        return None, None
    ref = reference.get("reference")
    medication: Resource | None = None
    if isinstance(ref, str) and ref.startswith("#"):
        contained_resources = request.get("contained")
        for contained in contained_resources if isinstance(contained_resources, list) else []:
            if isinstance(contained, dict) and contained.get("id") == ref[1:]:
                medication = contained
                break
    else:
        named = literal_reference(reference, "Medication")
        if named is not None:
            base, med_id = named
            medication = medications.get(med_id if base is None else medication_key(base, med_id))
    display = reference.get("display")
    if medication is None:
        # An unresolvable reference still often carries a display.
        return ({"text": display} if isinstance(display, str) else None), None
    return _with_ingredients(medication, display), medication


def _with_ingredients(medication: Resource, display: Any) -> Any:
    """Medication.code, completed for a product without an RxNorm code (a compounded
    suspension, a pharmacy-made mix): its ingredients' codings, and as text the code's own, the
    reference's display, or the ingredients' names (section 1: tacrolimus by ingredient 42316)."""
    code = medication.get("code")
    code = code if isinstance(code, dict) else {}
    codings = [c for c in code.get("coding") or [] if isinstance(c, dict)]
    if any(c.get("system") == codes.RXNORM for c in codings):
        return medication.get("code")
    names: list[str] = []
    ingredients = medication.get("ingredient")
    for ingredient in ingredients if isinstance(ingredients, list) else []:
        item = ingredient.get("itemCodeableConcept") if isinstance(ingredient, dict) else None
        if not isinstance(item, dict):
            continue
        codings += [c for c in item.get("coding") or [] if isinstance(c, dict)]
        name = item.get("text") or next((c.get("display") for c in item.get("coding") or []
                                         if isinstance(c, dict) and isinstance(c.get("display"), str)), None)
        if isinstance(name, str):
            names.append(name)
    if not codings and not names and not isinstance(display, str):
        return medication.get("code")
    text = code.get("text") if isinstance(code.get("text"), str) else (
        display if isinstance(display, str) else " / ".join(names) or None)
    completed: dict = {**code, "coding": codings}
    if text:
        completed["text"] = text
    return completed


_TOPICAL_ROUTE_PATTERN = codes.name_pattern(codes.TOPICAL_ROUTE_WORDS)
_BOWEL_PREP_PATTERN = codes.name_pattern(codes.BOWEL_PREP_WORDS)
_IV_WORDS = re.compile(r"\b(?:intravenous|IV|infusion|injection|injectable)\b", re.IGNORECASE)
_ORAL_WORDS = re.compile(r"\b(?:oral|by mouth|PO|tablet|capsule)\b", re.IGNORECASE)


def _dosages(request: Resource) -> list[Mapping[str, Any]]:
    dosages = request.get("dosageInstruction")
    if dosages is None:
        dosages = request.get("dosage")
    return [d for d in dosages if isinstance(d, dict)] if isinstance(dosages, list) else []


def _is_topical(request: Resource, name: str, medication: Resource | None) -> bool:
    """Section 1: topical only from the route, the dose form and the product name; never from
    dosageInstruction.text or patientInstruction ("use sunscreen cream" is not a route)."""
    for dosage in _dosages(request):
        route = dosage.get("route")
        if _has_topical_route_code(route) or _names_topical_route(concept_text(route)):
            return True
    form = concept_text(medication.get("form")) if medication is not None else ""
    return _names_topical_product(f"{name} {form}")


def _has_topical_route_code(route: Any) -> bool:
    """The route's codings hold the topical route code (compared as coding_keys does)."""
    for coding in codings(route):
        code = coding.get("code")
        if (code is not None and str(code) == codes.TOPICAL_ROUTE.code
                and str(coding.get("system", "")) == codes.TOPICAL_ROUTE.system):
            return True
    return False


def _route(request: Resource, name: str, medication: Resource | None) -> str:
    """'intravenous', 'oral' or '' from the route, else the dose form and product name."""
    texts = [concept_text(d.get("route")) for d in _dosages(request)]
    texts += [concept_text(medication.get("form")) if medication is not None else "", name]
    for text in texts:
        word = _route_word(text)
        if word:
            return word
    return ""


# The words of routes, dose forms and product names, by text: the same few texts ("Oral
# route", a formulary's product names) come back in every order of every record, and the
# regexes were half of reading an order. Bounded: texts beyond the bound are matched each time.
@lru_cache(maxsize=2048)
def _route_word(text: str) -> str:
    if _IV_WORDS.search(text):
        return "intravenous"
    return "oral" if _ORAL_WORDS.search(text) else ""


@lru_cache(maxsize=2048)
def _names_topical_route(text: str) -> bool:
    return bool(_TOPICAL_ROUTE_PATTERN.search(text))


@lru_cache(maxsize=2048)
def _names_topical_product(text: str) -> bool:
    return bool(_TOPICAL_PATTERN.search(text))


def _ended_on(request: Resource) -> datetime | None:
    """Dosage bounds end, dispense validity end or (statements) the effective period end."""
    ends = []
    for dosage in _dosages(request):
        timing = dosage.get("timing")
        repeat = timing.get("repeat") if isinstance(timing, dict) else None
        bounds = repeat.get("boundsPeriod") if isinstance(repeat, dict) else None
        if isinstance(bounds, dict):
            ends.append(parse_datetime(bounds.get("end")))
    dispense = request.get("dispenseRequest")
    validity = dispense.get("validityPeriod") if isinstance(dispense, dict) else None
    if isinstance(validity, dict):
        ends.append(parse_datetime(validity.get("end")))
    period = request.get("effectivePeriod")
    if isinstance(period, dict):
        ends.append(parse_datetime(period.get("end")))
    found = [e for e in ends if e is not None]
    return max(found) if found else None


def is_supplement_name(name: str) -> bool:
    """A magnesium supplement by name, bowel preparations excluded (section 8)."""
    if not _SUPPLEMENT_PATTERN.search(name) or _BOWEL_PREP_PATTERN.search(name):
        return False
    # Magnesium citrate as a liquid is the laxative / bowel preparation.
    return not (re.search(r"\bmagnesium citrate\b", name, re.I) and re.search(r"\bsolution\b", name, re.I))


class _Drug(NamedTuple):
    """What the medication concept alone says about the drug (its classification)."""

    name: str
    rxnorm: frozenset[str]
    is_tacrolimus: bool
    wasting: tuple[str, str] | None
    raising: tuple[str, str] | None
    lowering: tuple[str, str] | None
    local_form: bool
    supplement: bool
    display: str
    short_name: str


def _classify(concept: Any) -> _Drug | None:
    name = concept_text(concept)
    keys = coding_keys(concept)
    if not name and not keys:
        return None
    rxnorm = frozenset(code for system, code in keys if system == codes.RXNORM)
    # Sections 3, 7, 9: a supplement product is matched by its code first (an order placed from
    # this service's own suggestion may carry RxNorm 198741 alone), by its name otherwise.
    product = next((codes.MAGNESIUM_SUPPLEMENT_NAME_BY_CODE[k] for k in sorted(keys)
                    if k in codes.MAGNESIUM_SUPPLEMENT_NAME_BY_CODE), None)
    display = name or product or next((f"RxNorm {code}" for code in sorted(rxnorm)), "unnamed medication")
    return _Drug(
        name=name, rxnorm=rxnorm,
        is_tacrolimus=bool(keys & _TACROLIMUS_CODES) or bool(_TACROLIMUS_PATTERN.search(name)),
        wasting=WASTING_INDEX.match(rxnorm, name), raising=RAISING_INDEX.match(rxnorm, name),
        lowering=LOWERING_INDEX.match(rxnorm, name),
        # A shampoo, vaginal or ear form acts locally like a cream (section 6), for these lists only.
        local_form=bool(_LOCAL_FORM_PATTERN.search(name)),
        supplement=product is not None or is_supplement_name(name), display=display,
        short_name=clip(_short_name(concept, display), 80))


# Classification by medication concept, across calls: the same formulary concepts come back
# for every patient (a record's 25 orders name ~15 drugs), and matching the section 8 lists by
# code and by name (regexes) was ~60 % of reading an order. Keyed by the concept's JSON, so two
# concepts share an entry only when they are the same data; bounded (emptied when full).
_DRUG_CACHE: dict[bytes, _Drug | None] = {}
_DRUG_CACHE_SIZE = 4096


def _drug(concept: Any) -> _Drug | None:
    try:
        key = orjson.dumps(concept)
    except TypeError:  # not JSON data (cannot come from a request): classify without caching
        return _classify(concept)
    if key in _DRUG_CACHE:
        return _DRUG_CACHE[key]
    if len(_DRUG_CACHE) >= _DRUG_CACHE_SIZE:
        _DRUG_CACHE.clear()
    found = _DRUG_CACHE[key] = _classify(concept)
    return found


def read_medication(request: Resource, medications: Mapping[str, Resource]) -> MedicationUse | None:
    """A MedicationRequest/MedicationStatement -> MedicationUse, or None when no drug is named."""
    concept, medication = medication_concept(request, medications)
    drug = _drug(concept)
    if drug is None:
        return None
    name = drug.name
    is_topical = _is_topical(request, name, medication)
    wasting, raising, lowering = drug.wasting, drug.raising, drug.lowering
    local = is_topical or drug.local_form
    status = str(request.get("status") or "unknown")
    intent = request.get("intent") if isinstance(request.get("intent"), str) else None
    authored = parse_datetime(request.get("authoredOn")) or _effective_start(request) or parse_datetime(
        request.get("dateAsserted"))
    return MedicationUse(
        resource_type=str(request.get("resourceType")),
        request_id=request.get("id") if isinstance(request.get("id"), str) else None,
        name=drug.short_name,
        status=clip(status, 20),
        authored_on=authored,
        is_topical=is_topical,
        is_tacrolimus=drug.is_tacrolimus,
        # Topical and ophthalmic forms (e.g. cyclosporine eye drops) do not act systemically.
        wasting_class=None if (wasting is None or local) else wasting[0],
        raises_tacrolimus_class=None if (raising is None or local) else raising[0],
        lowers_tacrolimus_class=None if (lowering is None or local) else lowering[0],
        is_magnesium_supplement=drug.supplement,
        ingredient=(wasting or raising or lowering or (None, None))[1],
        intent=clip(intent, 20) if intent else None,
        ended_on=_ended_on(request),
        route=_route(request, name, medication),
        last_updated=parse_datetime(request["meta"].get("lastUpdated"))
        if isinstance(request.get("meta"), dict) else None,
    )


def read_administration(administration: Resource,
                        medications: Mapping[str, Resource]) -> MagnesiumGiven | None:
    """A completed or in-progress magnesium MedicationAdministration (section 3)."""
    status = administration.get("status")
    if not isinstance(status, str) or status not in GIVEN_ADMINISTRATION_STATUSES:  # a list is no status
        return None
    concept, medication = medication_concept(administration, medications)
    # The same classification as orders (by code, then by name): a code-only magnesium oxide
    # administration is magnesium given (sections 3 and 9).
    drug = _drug(concept)
    if drug is None or not drug.supplement:
        return None
    name = drug.display
    period = administration.get("effectivePeriod")
    when = parse_datetime(administration.get("effectiveDateTime")) or (
        parse_datetime(period.get("start")) if isinstance(period, dict) else None)
    if when is None:
        return None
    dosage = administration.get("dosage")
    dose = ""
    route = ""
    if isinstance(dosage, dict):
        quantity = dosage.get("dose")
        if isinstance(quantity, dict) and isinstance(quantity.get("value"), (int, float)) \
                and not isinstance(quantity.get("value"), bool):
            unit = clip(str(quantity.get("unit") or quantity.get("code") or ""), 10)
            dose = f"{float(quantity['value']):g} {unit}".strip()
        route_text = concept_text(dosage.get("route"))
        route = _route_word(route_text)
    if not route:
        route = _route({}, name, medication)
    return MagnesiumGiven(clip(_short_name(concept, name), 80), when,
                          str(administration.get("status")), dose, route)


def _short_name(concept: Any, fallback: str) -> str:
    """The concept's text, else its first display: what a clinician would read."""
    if isinstance(concept, dict):
        if isinstance(concept.get("text"), str) and concept["text"]:
            return concept["text"]
        for c in codings(concept):
            if isinstance(c.get("display"), str) and c["display"]:
                return c["display"]
    return fallback


def _effective_start(statement: Resource) -> datetime | None:
    period = statement.get("effectivePeriod")
    if isinstance(period, dict):
        return parse_datetime(period.get("start"))
    return parse_datetime(statement.get("effectiveDateTime"))
