"""Raw FHIR R4 resources -> small frozen facts the rules read (docs/clinical-rules.md sections 1, 2, 4, 5).

Readers are lenient: a resource that lacks what a reader needs yields no fact (or a fact marked
not interpretable) instead of an error, so one odd resource never hides the rest of the record.

One module per resource kind, in the order data flows:

- ``values``: FHIR dates, numbers, codings, references and statuses (shared by every reader)
- ``model``: the facts themselves (LabResult, MedicationUse, MagnesiumGiven, Symptom, AgeAtOnset,
  PatientFacts)
- ``labs``: Observations -> lab results (kind, unit, status, time)
- ``medications``: requests, statements and administrations -> medication use and classification
- ``conditions``: conditions, procedures, the patient and the encounter
- ``patient``: ``build_facts``, every resource of the patient -> PatientFacts

The public names of each module are re-exported here: ``from cds_service.guideline.facts import X``.
"""

from __future__ import annotations

from ..codes import LabKind
from .conditions import (
    ACTIVE_CONDITION_STATUSES,
    EXCLUDED_VERIFICATION,
    is_esrd,
    is_hospitalized,
    read_dialysis_date,
    read_patient,
    read_symptom,
    read_transplant_date,
)
from .labs import (
    CREATININE_UMOL_PER_MG_DL,
    TACROLIMUS_NMOL_PER_NG,
    LabCodes,
    creatinine_mg_per_dl,
    is_magnesium_lab_order,
    lab_kind,
    magnesium_meq_per_l,
    observation_time,
    read_lab,
)
from .medications import (
    GIVEN_ADMINISTRATION_STATUSES,
    LOWERING_INDEX,
    RAISING_INDEX,
    WASTING_INDEX,
    is_supplement_name,
    medication_concept,
    read_administration,
    read_medication,
)
from .model import (
    ACTIVE_MEDICATION_STATUSES,
    ACTIVE_STATEMENT_STATUSES,
    ENDED_MEDICATION_STATUSES,
    NEVER_TAKEN_STATUSES,
    SHOWN_OBSERVATION_STATUSES,
    TREATMENT_INTENTS,
    USABLE_OBSERVATION_STATUSES,
    AgeAtOnset,
    LabResult,
    MagnesiumGiven,
    MedicationUse,
    PatientFacts,
    Symptom,
    UsableResult,
    is_usable,
    usable_only,
)
from .patient import (
    build_facts,
)
from .values import (
    PLAUSIBLE_YEARS,
    Resource,
    clip,
    coding_keys,
    codings,
    concept_text,
    first_code,
    number,
    parse_datetime,
    reference_id,
    status_code,
)

__all__ = [
    "LabKind",
    "UsableResult",
    "is_usable",
    "usable_only",
    "ACTIVE_CONDITION_STATUSES",
    "ACTIVE_MEDICATION_STATUSES",
    "ACTIVE_STATEMENT_STATUSES",
    "CREATININE_UMOL_PER_MG_DL",
    "ENDED_MEDICATION_STATUSES",
    "NEVER_TAKEN_STATUSES",
    "AgeAtOnset",
    "EXCLUDED_VERIFICATION",
    "GIVEN_ADMINISTRATION_STATUSES",
    "LOWERING_INDEX",
    "LabCodes",
    "LabResult",
    "MagnesiumGiven",
    "MedicationUse",
    "PLAUSIBLE_YEARS",
    "PatientFacts",
    "RAISING_INDEX",
    "Resource",
    "SHOWN_OBSERVATION_STATUSES",
    "Symptom",
    "TACROLIMUS_NMOL_PER_NG",
    "TREATMENT_INTENTS",
    "USABLE_OBSERVATION_STATUSES",
    "WASTING_INDEX",
    "build_facts",
    "clip",
    "coding_keys",
    "codings",
    "concept_text",
    "creatinine_mg_per_dl",
    "first_code",
    "is_esrd",
    "is_hospitalized",
    "is_magnesium_lab_order",
    "is_supplement_name",
    "lab_kind",
    "magnesium_meq_per_l",
    "medication_concept",
    "number",
    "observation_time",
    "parse_datetime",
    "read_administration",
    "read_dialysis_date",
    "read_lab",
    "read_medication",
    "read_patient",
    "read_symptom",
    "read_transplant_date",
    "reference_id",
    "status_code",
]
