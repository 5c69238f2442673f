"""Value sets of guideline section 9 (docs/clinical-rules.md), each code with its system and display, in one place.

Matching is by (system, code) first; names are the fallback for records that carry only text or
product-level codes not listed here (guideline section 9, last paragraphs).

Sources: the codes guideline section 9 lists, and codes checked against public
terminology material (HL7 PDDI-CDS value sets, the NLM RxNorm technical bulletins, HL7
implementation guides, laboratory catalogues). A code we could not verify is left out and the
concept is matched by name instead: the guideline calls names "the reliable fallback".

Longer than ~400 lines on purpose: it is data (one value set after another), and the house rule
keeps every value set in this one module so a reviewer checks them in one place.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"


class LabKind(enum.StrEnum):
    """What a laboratory result measures, as the facts layer names it (section 2).

    A str enum: each member equals its value ("mg_serum"), so string comparisons, dict keys and
    CDS_LOCAL_CODES (which names the kinds in JSON) keep working."""

    MG_SERUM = "mg_serum"
    MG_IONIZED = "mg_ionized"
    MG_URINE = "mg_urine"
    MG_URINE_24H = "mg_urine_24h"
    CREATININE_SERUM = "creatinine_serum"
    CREATININE_URINE = "creatinine_urine"
    CREATININE_URINE_24H = "creatinine_urine_24h"
    EGFR = "egfr"
    TACROLIMUS_LEVEL = "tacrolimus_level"
    BODY_WEIGHT = "body_weight"


@dataclass(frozen=True)
class Code:
    system: str
    code: str
    display: str

    def coding(self) -> dict:
        return {"system": self.system, "code": self.code, "display": self.display}


def keys(codes: Iterable[Code]) -> frozenset[tuple[str, str]]:
    """The (system, code) pairs of a value set, for constant-time matching."""
    return frozenset((c.system, c.code) for c in codes)


# Apostrophes as EHR text really carries them: typed (') or typographic (’ ‘ ʼ, pasted from
# documents and patient-entered home-medication lists) or left out: "St John’s wort" and
# "St Johns wort" are St John's wort.
_APOSTROPHES = "['\u2019\u2018\u02bc]?"


def name_key(name: str) -> str:
    """The form a matched name is looked up by: lower case, apostrophes of any form left out."""
    return re.sub(_APOSTROPHES.rstrip("?"), "", name).lower()


def name_pattern(names: Iterable[str]) -> re.Pattern[str]:
    """A case-insensitive whole-word pattern matching any of the names (any apostrophe form)."""
    alternatives = sorted({re.escape(n).replace("'", _APOSTROPHES) for n in names}, key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b", re.IGNORECASE)


# --- Laboratory (LOINC, loinc.org) — guideline sections 2 and 7 -------------------------

MG_SERUM_MASS = Code(LOINC, "19123-9", "Magnesium [Mass/volume] in Serum or Plasma")
MG_SERUM_MOLES = Code(LOINC, "2601-3", "Magnesium [Moles/volume] in Serum or Plasma")
MG_SERUM = (MG_SERUM_MASS, MG_SERUM_MOLES)
# Ionized magnesium is shown, never classified (section 2); also recognised by its name.
MG_IONIZED = (Code(LOINC, "73573-8", "Magnesium.ionized [Moles/volume] adjusted to pH 7.4 in Blood by Ion-selective "
                                     "membrane electrode (ISE)"),)
# Spot urine (mass and moles per volume) feed FEMg; the 24 h urine Mg is recognised but not used
# for FEMg (section 7). Source: docs/clinical-rules.md section 9; LOINC (loinc.org) part pages; ARUP/Mayo
# catalogues for the 24 h test.
MG_URINE = (
    Code(LOINC, "19124-7", "Magnesium [Mass/volume] in Urine"),
    Code(LOINC, "2598-1", "Magnesium [Moles/volume] in Urine"),
)
MG_URINE_24H = (Code(LOINC, "24447-5", "Magnesium [Mass/time] in 24 hour Urine"),)
# Source: docs/clinical-rules.md section 9 (LOINC; Michigan Medicine and Mayo catalogues).
CREATININE_SERUM = (
    Code(LOINC, "2160-0", "Creatinine [Mass/volume] in Serum or Plasma"),
    Code(LOINC, "14682-9", "Creatinine [Moles/volume] in Serum or Plasma"),
)
# Spot urine creatinine feeds FEMg; 24 h urine creatinine is recognised, not used for FEMg.
CREATININE_URINE = (
    Code(LOINC, "2161-8", "Creatinine [Mass/volume] in Urine"),
)
CREATININE_URINE_24H = (Code(LOINC, "2162-6", "Creatinine [Mass/time] in 24 hour Urine"),)
# The VSAC "Estimated Glomerular Filtration Rate" value set as listed in docs/clinical-rules.md section 9
# (VSAC eCQM expansions mirrored in canvas-medical/canvas-plugins; LOINC part pages).
EGFR = (
    Code(LOINC, "98979-8", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or "
                           "Blood by Creatinine-based formula (CKD-EPI 2021)"),
    Code(LOINC, "98980-6", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or "
                           "Blood by Creatinine and Cystatin C-based formula (CKD-EPI 2021)"),
    Code(LOINC, "62238-1", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or "
                           "Blood by Creatinine-based formula (CKD-EPI)"),
    Code(LOINC, "33914-3", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum or Plasma by "
                           "Creatinine-based formula (MDRD)"),
    Code(LOINC, "48642-3", "Glomerular filtration rate/1.73 sq M.predicted among non-blacks [Volume Rate/Area] in "
                           "Serum, Plasma or Blood by Creatinine-based formula (MDRD)"),
    Code(LOINC, "48643-1", "Glomerular filtration rate/1.73 sq M.predicted among blacks [Volume Rate/Area] in Serum, "
                           "Plasma or Blood by Creatinine-based formula (MDRD)"),
    Code(LOINC, "69405-9", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or "
                           "Blood"),
    Code(LOINC, "50044-7", "Glomerular filtration rate/1.73 sq M.predicted among females [Volume Rate/Area] in Serum, "
                           "Plasma or Blood by Creatinine-based formula (MDRD)"),
    Code(LOINC, "50210-4", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or "
                           "Blood by Cystatin C-based formula"),
    Code(LOINC, "77147-7", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or "
                           "Blood by Creatinine-based formula (MDRD)"),
    Code(LOINC, "88293-6", "Glomerular filtration rate/1.73 sq M.predicted among blacks [Volume Rate/Area] in Serum, "
                           "Plasma or Blood by Creatinine-based formula (CKD-EPI)"),
    Code(LOINC, "88294-4", "Glomerular filtration rate/1.73 sq M.predicted among non-blacks [Volume Rate/Area] in "
                           "Serum, Plasma or Blood by Creatinine-based formula (CKD-EPI)"),
    Code(LOINC, "94677-2", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or "
                           "Blood by Creatinine-based formula (Schwartz)"),
)
# Source: docs/clinical-rules.md section 9 (LOINC; ARUP and Mayo tacrolimus test catalogues for 77348-1).
TACROLIMUS_LEVEL = (
    Code(LOINC, "11253-2", "Tacrolimus [Mass/volume] in Blood"),
    Code(LOINC, "74096-9", "Tacrolimus [Mass/volume] in Blood by Immunoassay"),
    Code(LOINC, "74097-7", "Tacrolimus [Mass/volume] in Blood by LC/MS/MS"),
    Code(LOINC, "77348-1", "Tacrolimus [Mass/volume] in Blood --trough"),
)
# Section 3: children's doses in mg/kg. Source: docs/clinical-rules.md section 9 (LOINC; US Core vital signs).
BODY_WEIGHT = (Code(LOINC, "29463-7", "Body weight"),)
# What the suggestions order (section 9, last paragraph).
TACROLIMUS_TROUGH_ORDER = TACROLIMUS_LEVEL[0]
URINE_MG_ORDER = MG_URINE[0]
URINE_CREATININE_ORDER = CREATININE_URINE[0]
SERUM_CREATININE_ORDER = CREATININE_SERUM[0]
# Product keys of the lab orders (CDS_ORDERABLES maps them to a hospital's lab catalogue).
LAB_ORDER_KEYS = {"serum_mg": MG_SERUM_MASS, "tacrolimus_trough": TACROLIMUS_TROUGH_ORDER,
                  "urine_mg": URINE_MG_ORDER, "urine_creatinine": URINE_CREATININE_ORDER,
                  "serum_creatinine": SERUM_CREATININE_ORDER}

# Lab kinds the facts layer recognises, by code.
LAB_KIND_BY_CODE: Mapping[tuple[str, str], LabKind] = {
    **{(c.system, c.code): LabKind.MG_SERUM for c in MG_SERUM},
    **{(c.system, c.code): LabKind.MG_IONIZED for c in MG_IONIZED},
    **{(c.system, c.code): LabKind.MG_URINE for c in MG_URINE},
    **{(c.system, c.code): LabKind.MG_URINE_24H for c in MG_URINE_24H},
    **{(c.system, c.code): LabKind.CREATININE_URINE_24H for c in CREATININE_URINE_24H},
    **{(c.system, c.code): LabKind.BODY_WEIGHT for c in BODY_WEIGHT},
    **{(c.system, c.code): LabKind.CREATININE_SERUM for c in CREATININE_SERUM},
    **{(c.system, c.code): LabKind.CREATININE_URINE for c in CREATININE_URINE},
    **{(c.system, c.code): LabKind.EGFR for c in EGFR},
    **{(c.system, c.code): LabKind.TACROLIMUS_LEVEL for c in TACROLIMUS_LEVEL},
}

# --- Medicines (RxNorm ingredients, RxNav) — guideline sections 1 and 8 -----------------

TACROLIMUS = Code(RXNORM, "42316", "tacrolimus")
TACROLIMUS_NAMES = ("tacrolimus", "Prograf", "Envarsus", "Astagraf", "Advagraf", "Hecoria",
                    "Adoport", "Tacforius", "Modigraf")
# Product codes of docs/clinical-rules.md section 9, verified there against the openFDA NDC directory
# (RxCUI per product), PEDSnet OMOP codesets and the NLM RxNorm technical bulletin (Oct 2023) for
# the BX-rated capsules. Unlisted products still match by name.
TACROLIMUS_PRODUCTS: tuple[Code, ...] = (
    Code(RXNORM, "313190", "tacrolimus 0.5 MG Oral Capsule"),
    Code(RXNORM, "198377", "tacrolimus 1 MG Oral Capsule"),
    Code(RXNORM, "198378", "tacrolimus 5 MG Oral Capsule"),
    Code(RXNORM, "261134", "tacrolimus 0.5 MG Oral Capsule [Prograf]"),
    Code(RXNORM, "108513", "tacrolimus 1 MG Oral Capsule [Prograf]"),
    Code(RXNORM, "108514", "tacrolimus 5 MG Oral Capsule [Prograf]"),
    Code(RXNORM, "1235241", "tacrolimus 0.5 MG Oral Capsule [Hecoria]"),
    Code(RXNORM, "1235243", "tacrolimus 1 MG Oral Capsule [Hecoria]"),
    Code(RXNORM, "1235245", "tacrolimus 5 MG Oral Capsule [Hecoria]"),
    Code(RXNORM, "1431971", "24 HR tacrolimus 0.5 MG Extended Release Oral Capsule"),
    Code(RXNORM, "1431980", "24 HR tacrolimus 1 MG Extended Release Oral Capsule"),
    Code(RXNORM, "1431985", "24 HR tacrolimus 5 MG Extended Release Oral Capsule"),
    Code(RXNORM, "1431977", "24 HR tacrolimus 0.5 MG Extended Release Oral Capsule [Astagraf XL]"),
    Code(RXNORM, "1431982", "24 HR tacrolimus 1 MG Extended Release Oral Capsule [Astagraf XL]"),
    Code(RXNORM, "1431987", "24 HR tacrolimus 5 MG Extended Release Oral Capsule [Astagraf XL]"),
    Code(RXNORM, "1664456", "24 HR tacrolimus 0.75 MG Extended Release Oral Tablet"),
    Code(RXNORM, "1664461", "24 HR tacrolimus 1 MG Extended Release Oral Tablet"),
    Code(RXNORM, "1664434", "24 HR tacrolimus 4 MG Extended Release Oral Tablet"),
    Code(RXNORM, "1664458", "24 HR tacrolimus 0.75 MG Extended Release Oral Tablet [Envarsus XR]"),
    Code(RXNORM, "1664463", "24 HR tacrolimus 1 MG Extended Release Oral Tablet [Envarsus XR]"),
    Code(RXNORM, "1664440", "24 HR tacrolimus 4 MG Extended Release Oral Tablet [Envarsus XR]"),
    Code(RXNORM, "198379", "tacrolimus 5 MG/ML Injectable Solution"),
    Code(RXNORM, "108515", "tacrolimus 5 MG/ML Injectable Solution [Prograf]"),
    Code(RXNORM, "1738338", "tacrolimus 5 MG/ML Injection"),
    Code(RXNORM, "2665162", "tacrolimus 1 MG Oral Capsule (BX rated)"),
)
TOPICAL_ROUTE = Code(SNOMED, "6064005", "Topical route")
# Topical tacrolimus (ointment, Protopic) does not waste magnesium (section 1). These words are
# read only from the route, the dose form and the product name, never from the sig text.
TOPICAL_WORDS = ("ointment", "cream", "topical", "cutaneous", "Protopic", "lotion",
                 "ophthalmic", "eye drops", "eye drop")
TOPICAL_ROUTE_WORDS = ("topical", "cutaneous", "skin", "ophthalmic", "transdermal")


# Section 8 lists. RxNorm ingredient codes are those docs/clinical-rules.md section 9 lists as verified
# (HL7 PDDI-CDS value sets `input/vocabulary/` for loop diuretics, thiazides and PPIs; PEDSnet
# OMOP codesets for platinum drugs, EGFR antibodies, cyclosporine, ritonavir and nirmatrelvir;
# carbamazepine: HL7 DAF substance expansion); "" means "match by name only" until a code is
# verified. Names are the reliable fallback for product-level codes (section 9).
@dataclass(frozen=True)
class DrugClass:
    """A group of section 8, with the ingredients it holds: name -> RxNorm ingredient code."""

    key: str
    label: str
    ingredients: Mapping[str, str]
    brands: Mapping[str, str]  # brand name -> ingredient name


MAGNESIUM_WASTING = (
    DrugClass("loop", "loop diuretic",
              {"furosemide": "4603", "bumetanide": "1808", "torsemide": "38413",
               "ethacrynic acid": "4109", "ethacrynate": "62349"},
              {"Lasix": "furosemide", "Bumex": "bumetanide", "Demadex": "torsemide",
               "Soaanz": "torsemide", "Edecrin": "ethacrynic acid"}),
    DrugClass("thiazide", "thiazide diuretic",
              {"hydrochlorothiazide": "5487", "chlorthalidone": "2409", "indapamide": "",
               "metolazone": ""},
              # HCTZ: not a brand, but how clinicians and home-medication lists write it.
              {"Microzide": "hydrochlorothiazide", "Thalitone": "chlorthalidone",
               "Zaroxolyn": "metolazone", "HCTZ": "hydrochlorothiazide"}),
    DrugClass("ppi", "proton pump inhibitor",
              {"omeprazole": "7646", "esomeprazole": "283742", "lansoprazole": "17128",
               "dexlansoprazole": "816346", "pantoprazole": "40790", "rabeprazole": "114979"},
              {"Prilosec": "omeprazole", "Nexium": "esomeprazole", "Prevacid": "lansoprazole",
               "Dexilant": "dexlansoprazole", "Protonix": "pantoprazole",
               "Aciphex": "rabeprazole"}),
    DrugClass("aminoglycoside", "aminoglycoside",
              {"gentamicin": "", "tobramycin": "", "amikacin": ""}, {}),
    DrugClass("amphotericin", "amphotericin B",
              {"amphotericin B": ""},
              {"AmBisome": "amphotericin B", "Abelcet": "amphotericin B",
               "Fungizone": "amphotericin B"}),
    DrugClass("platinum", "platinum chemotherapy",
              {"cisplatin": "2555", "carboplatin": "40048"},
              {"Platinol": "cisplatin", "Paraplatin": "carboplatin"}),
    DrugClass("foscarnet", "foscarnet", {"foscarnet": ""}, {"Foscavir": "foscarnet"}),
    DrugClass("pentamidine", "pentamidine", {"pentamidine": ""}, {}),
    DrugClass("egfr_antibody", "EGFR antibody",
              {"cetuximab": "318341", "panitumumab": "263034"},
              {"Erbitux": "cetuximab", "Vectibix": "panitumumab"}),
    DrugClass("cyclosporine", "calcineurin inhibitor",
              {"cyclosporine": "3008", "ciclosporin": ""},
              {"Neoral": "cyclosporine", "Sandimmune": "cyclosporine",
               "Gengraf": "cyclosporine"}),
)

RAISES_TACROLIMUS = (
    DrugClass("azole", "azole antifungal",
              {"ketoconazole": "", "itraconazole": "", "voriconazole": "",
               "posaconazole": "", "isavuconazonium": "",
               "isavuconazole": "", "fluconazole": ""},
              {"Sporanox": "itraconazole", "Tolsura": "itraconazole", "Vfend": "voriconazole",
               "Noxafil": "posaconazole",
               "Cresemba": "isavuconazonium", "Diflucan": "fluconazole"}),
    DrugClass("macrolide", "macrolide antibiotic",
              {"clarithromycin": "", "erythromycin": ""},
              {"Biaxin": "clarithromycin"}),
    DrugClass("ccb", "non-dihydropyridine calcium channel blocker",
              {"diltiazem": "", "verapamil": ""},
              {"Cardizem": "diltiazem", "Calan": "verapamil"}),
    # Section 8: HIV/HCV protease inhibitors and boosters (names: the reliable fallback).
    DrugClass("protease_inhibitor", "protease inhibitor / booster",
              {"ritonavir": "85762", "cobicistat": "", "nirmatrelvir": "2587892",
               "darunavir": "", "atazanavir": "", "lopinavir": "", "saquinavir": "",
               "fosamprenavir": "", "tipranavir": "", "indinavir": "", "nelfinavir": "",
               "boceprevir": "", "telaprevir": "", "paritaprevir": "", "grazoprevir": "",
               "glecaprevir": ""},
              # Section 6: a co-formulated booster is the interacting ingredient to name.
              {"Norvir": "ritonavir", "Paxlovid": "ritonavir", "Tybost": "cobicistat",
               "Prezista": "darunavir", "Reyataz": "atazanavir", "Kaletra": "ritonavir",
               "Mavyret": "glecaprevir", "Zepatier": "grazoprevir", "Prezcobix": "cobicistat",
               "Evotaz": "cobicistat", "Genvoya": "cobicistat", "Stribild": "cobicistat",
               "Symtuza": "cobicistat"}),
    # Oral clotrimazole (troche) raises tacrolimus levels; topical forms are excluded upstream.
    DrugClass("clotrimazole", "clotrimazole (oral troche)", {"clotrimazole": ""},
              {"Mycelex": "clotrimazole"}),
    DrugClass("letermovir", "letermovir", {"letermovir": ""}, {"Prevymis": "letermovir"}),
    DrugClass("amiodarone", "amiodarone", {"amiodarone": ""},
              {"Cordarone": "amiodarone", "Pacerone": "amiodarone"}),
    DrugClass("grapefruit", "grapefruit", {"grapefruit": ""}, {}),
)

LOWERS_TACROLIMUS = (
    DrugClass("rifamycin", "rifamycin", {"rifampin": "", "rifampicin": "",
                                         "rifabutin": ""},
              {"Rifadin": "rifampin", "Mycobutin": "rifabutin"}),
    DrugClass("anticonvulsant_inducer", "enzyme-inducing anticonvulsant",
              # Fosphenytoin is phenytoin's IV prodrug (converted within minutes): the same inducer.
              {"phenytoin": "", "fosphenytoin": "", "carbamazepine": "2002", "phenobarbital": ""},
              {"Dilantin": "phenytoin", "Cerebyx": "fosphenytoin", "Tegretol": "carbamazepine"}),
    DrugClass("st_johns_wort", "St John's wort",
              {"St John's wort": "", "St. John's wort": "", "hypericum": ""}, {}),
)

# Section 6: the alternative offered when a PPI is ordered.
PPI_ALTERNATIVE = "famotidine"

# Section 8: in a combination product the interacting ingredient is the CYP3A inhibitor, not
# its partner (nirmatrelvir/ritonavir: ritonavir), so cards name the one that matters.
INTERACTING_INGREDIENT = {"nirmatrelvir": "ritonavir"}
# Section 6: how strongly an ingredient raises tacrolimus levels decides the order card.
BOOSTERS = frozenset({"ritonavir", "cobicistat"})  # critical: hold or sharply reduce tacrolimus
STRONG_CYP3A_INHIBITORS = frozenset({"ketoconazole", "itraconazole", "voriconazole",
                                     "posaconazole", "clarithromycin"})
# Topical forms of interacting or wasting drugs act locally (ketoconazole shampoo, clotrimazole
# cream); an oral troche or lozenge is swallowed and counts (section 6).
LOCAL_FORM_WORDS = ("shampoo", "vaginal", "otic", "ear drops", "foam")

# Magnesium supplements (sections 3 and 7; section 8's list). Hydroxide is left out on purpose
# (an antacid/laxative). Bowel preparations are not supplements (section 8): a name that also
# matches BOWEL_PREP_WORDS is not a supplement.
MAGNESIUM_SUPPLEMENT_NAMES = (
    "magnesium oxide", "magnesium chloride", "magnesium sulfate", "magnesium sulphate",
    "magnesium gluconate", "magnesium lactate", "magnesium aspartate", "magnesium glycinate",
    "magnesium citrate", "magnesium bisglycinate",
    "Mag-Ox", "Slow-Mag", "Mag-Tab", "Mag64", "Magtrate", "Mag-G", "Magonate",
)
# Bowel preparations (sodium/potassium/magnesium sulfate such as Suprep; magnesium citrate
# solution; sodium picosulfate/magnesium oxide/citric acid such as Prepopik, Clenpiq).
BOWEL_PREP_WORDS = ("Suprep", "Sutab", "Prepopik", "Clenpiq", "Pico-Salax", "Picoprep",
                    "picosulfate", "bowel", "prep", "preparation", "colonoscopy",
                    "sodium sulfate", "potassium sulfate", "citric acid", "laxative",
                    "oral solution", "Citroma")

# What the suggestions order (section 9, last paragraph): each product has a stable key (the
# key a hospital uses in CDS_ORDERABLES to point it at its own orderable), the text every
# suggestion carries, and the standard code where section 9 gives a verified one.
@dataclass(frozen=True)
class Product:
    key: str
    text: str  # as a clinician reads it; always sent, so an EHR that cannot map the code shows it
    code: Code | None  # verified standard code; None: text only until verified


# RxNorm 198741 and 310273: docs/clinical-rules.md section 9 (openFDA NDC directory RxCUIs).
MAGNESIUM_OXIDE_400_TABLET = Product(
    "magnesium_oxide_400_tablet", "magnesium oxide 400 mg oral tablet",
    Code(RXNORM, "198741", "magnesium oxide 400 MG Oral Tablet"))
FAMOTIDINE_20_TABLET = Product(
    "famotidine_20_tablet", "famotidine 20 mg oral tablet",
    Code(RXNORM, "310273", "famotidine 20 MG Oral Tablet"))
# Candidates 1658259 / 1658262 are not confirmed (section 9): text only.
MAGNESIUM_SULFATE_IV = Product(
    "magnesium_sulfate_iv", "magnesium sulfate 40 mg/mL injection (2 g in 50 mL premix)", None)
# The halved dose (renal impairment, section 3): the same product, named without the 2 g premix
# so that nothing in a 1 g order reads "2 g".
MAGNESIUM_SULFATE_IV_HALVED = Product(
    "magnesium_sulfate_iv", "magnesium sulfate 40 mg/mL injection", None)
# Magnesium supplements by RxNorm code (sections 3, 7 and 9: "Match codes by system and code"):
# the supplement products section 9 lists with a verified code, i.e. the ones this service itself
# suggests. An order placed from a suggestion often comes back with the code only (no text, no
# display) and must still count as a supplement. Other magnesium products match by name
# (MAGNESIUM_SUPPLEMENT_NAMES) until section 9 lists their codes; the IV magnesium sulfate
# candidates 1658259 / 1658262 are not confirmed and stay out.
_SUPPLEMENT_PRODUCTS = (MAGNESIUM_OXIDE_400_TABLET,)
MAGNESIUM_SUPPLEMENT_CODES: tuple[Code, ...] = tuple(p.code for p in _SUPPLEMENT_PRODUCTS if p.code is not None)
# (system, code) -> the name cards show for a code-only record (as a clinician writes it, section 10).
MAGNESIUM_SUPPLEMENT_NAME_BY_CODE: Mapping[tuple[str, str], str] = {
    (p.code.system, p.code.code): p.text for p in _SUPPLEMENT_PRODUCTS if p.code is not None}
ORAL_ROUTE = Code(SNOMED, "26643006", "Oral route")
INTRAVENOUS_ROUTE = Code(SNOMED, "47625008", "Intravenous route")

# --- Conditions and procedures (SNOMED CT) — guideline sections 4 and 5 -----------------

# Solid-organ transplant procedures: docs/clinical-rules.md section 9's list, including the more specific
# kidney transplant concepts (SNOMED International release files; VSAC "Kidney Transplant"
# value set as mirrored in canvas-medical/canvas-plugins). Other solid organs match by name.
TRANSPLANT_PROCEDURES = (
    Code(SNOMED, "70536003", "Transplantation of kidney"),
    Code(SNOMED, "6471000179103", "Transplantation of kidney and pancreas"),
    Code(SNOMED, "52213001", "Renal homotransplantation excluding donor and recipient nephrectomy"),
    Code(SNOMED, "175899003", "Autotransplantation of kidney"),
    Code(SNOMED, "175901007", "Live donor renal transplant"),
    Code(SNOMED, "175902000", "Cadaveric renal transplant"),
    Code(SNOMED, "236138007", "Xenograft renal transplant"),
    Code(SNOMED, "313030004", "Donor renal transplantation"),
    Code(SNOMED, "711411006", "Allotransplantation of kidney from beating heart cadaver"),
    Code(SNOMED, "711413009", "Allotransplantation of kidney from non-beating heart cadaver"),
    Code(SNOMED, "765478004", "Allotransplantation of kidney from living donor"),
    Code(SNOMED, "765479007", "Allotransplantation of left kidney"),
    Code(SNOMED, "782655004", "Laparoscopic assisted transplantation of kidney"),
    Code(SNOMED, "18027006", "Transplantation of liver"),
    Code(SNOMED, "32413006", "Transplantation of heart"),
    Code(SNOMED, "88039007", "Transplantation of lung"),
    Code(SNOMED, "62438007", "Transplantation of pancreas"),
)
TRANSPLANT_WORDS = ("transplant", "transplantation", "graft")
NOT_A_TRANSPLANT_WORDS = ("biopsy", "evaluation", "assessment", "workup", "work-up", "rejection",
                          "failure", "removal", "explant", "nephrectomy", "ultrasound")
TRANSPLANT_ORGAN_WORDS = ("kidney", "renal", "liver", "hepatic", "heart", "cardiac", "lung",
                          "pancreas", "pancreatic", "intestine", "intestinal")

# Section 3: dialysis or end-stage kidney disease. Source: docs/clinical-rules.md section 9 (SNOMED CT
# International browser); names are the fallback for code-less records. 71192002 (peritoneal
# dialysis) verified in the VSAC eCQM "Dialysis Services" value set
# (2.16.840.1.113883.3.464.1003.109.12.1013, mirrored in canvas-medical/canvas-plugins): listed
# so the Procedure search and prefetch (which filter by code) bring it; a procedure with another
# code whose name says dialysis matches by name (facts/conditions.py).
ESRD_CONDITIONS = (Code(SNOMED, "46177005", "End-stage renal disease"),)
DIALYSIS_PROCEDURES = (Code(SNOMED, "302497006", "Hemodialysis"), Code(SNOMED, "71192002", "Peritoneal dialysis"))
DIALYSIS_WORDS = ("dialysis", "haemodialysis", "hemodialysis", "ESRD", "ESKD",
                  "end-stage renal disease", "end-stage kidney disease", "end stage renal disease",
                  "end stage kidney disease")

# Section 5 symptoms: docs/clinical-rules.md section 9's SNOMED CT codes (SNOMED International browser).
# Tetany and torsades de pointes match by name only (codes not verified there); 4426000 is
# not tetany and is deliberately absent.
SYMPTOMS = (
    Code(SNOMED, "55300003", "Cramp"),
    Code(SNOMED, "26079004", "Tremor"),
    Code(SNOMED, "91175000", "Seizure"),
    Code(SNOMED, "698247007", "Cardiac arrhythmia"),
    Code(SNOMED, "49436004", "Atrial fibrillation"),
    Code(SNOMED, "111975006", "Prolonged QT interval"),
)
# Text fallback (section 5): words a clinician would write for the same findings.
# "Cramp" alone is not used: abdominal cramps (e.g. from oral magnesium itself) are not a sign
# of hypomagnesemia; the coded SNOMED concept is the muscle cramp.
SYMPTOM_WORDS = ("muscle cramp", "muscle cramps", "leg cramp", "leg cramps", "muscle spasm",
                 "muscle spasms", "tremor", "tremors", "seizure", "seizures", "convulsion",
                 "convulsions", "tetany",
                 "arrhythmia", "ventricular tachycardia", "torsades", "torsade de pointes",
                 "torsades de pointes", "atrial fibrillation", "QT prolongation", "prolonged QT",
                 "long QT")
# Section 3: minor symptoms (muscle cramp, tremor) make a warning; every other one is major.
MINOR_SYMPTOMS = frozenset({"55300003", "26079004"})
MINOR_SYMPTOM_WORDS = ("muscle cramp", "muscle cramps", "leg cramp", "leg cramps", "muscle spasm",
                       "muscle spasms", "tremor", "tremors")
URGENT_SYMPTOMS = frozenset({"91175000", "698247007", "49436004"})
URGENT_SYMPTOM_WORDS = ("seizure", "seizures", "convulsion", "convulsions", "arrhythmia", "tachycardia",
                        "torsade", "torsades", "fibrillation")

# Section 5: a Condition's onset may be an age (onsetAge, onsetRange: FHIR Age, UCUM time units).
# UCUM code first, unit text second, case-insensitive (as for lab units, section 2); an age in
# hours or minutes (newborns) is not read, and the recorded date decides instead.
AGE_UNITS = {"a": "a", "mo": "mo", "wk": "wk", "d": "d",
             "y": "a", "yr": "a", "yrs": "a", "year": "a", "years": "a",
             "month": "mo", "months": "mo", "week": "wk", "weeks": "wk", "day": "d", "days": "d"}

HYPOMAGNESEMIA = Code(SNOMED, "190855004", "Hypomagnesemia")

# --- Encounters (HL7 v3 ActCode) — guideline section 4 ---------------------------------

INPATIENT_CLASSES = frozenset({"IMP", "ACUTE", "NONAC", "EMER", "OBSENC"})


# --- Hospital-local lab codes (docs/clinical-rules.md section 2) --------------------------------------

LOCAL_CODE_KINDS = (LabKind.MG_SERUM, LabKind.MG_URINE, LabKind.CREATININE_SERUM, LabKind.CREATININE_URINE,
                    LabKind.EGFR, LabKind.TACROLIMUS_LEVEL)
# A system or code that can stand in a FHIR token search unescaped (no ',', '|', '$', spaces).
_TOKEN_PART = re.compile(r"^[A-Za-z0-9:/._\-#~%+=@]{1,200}$")
LocalCodes = frozenset  # of (kind, system, code): hashable, so templates can be cached per set


def parse_local_codes(text: str) -> frozenset[tuple[str, str, str]]:
    """CDS_LOCAL_CODES: JSON {"mg_serum": ["system|code", ...], ...} -> {(kind, system, code)}.

    Raises ValueError with a message naming what is wrong (checked at start-up)."""
    import json

    if not text or not text.strip():
        return frozenset()
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError("CDS_LOCAL_CODES is not valid JSON") from None
    if not isinstance(value, dict):
        raise ValueError("CDS_LOCAL_CODES must be a JSON object of lab kind -> list of "
                         "\"system|code\"")
    found = set()
    for kind, entries in value.items():
        if kind not in LOCAL_CODE_KINDS:
            raise ValueError(f"CDS_LOCAL_CODES: unknown lab kind {kind!r} "
                             f"(expected one of {', '.join(LOCAL_CODE_KINDS)})")
        if not isinstance(entries, list):
            raise ValueError(f"CDS_LOCAL_CODES: {kind} must be a list of \"system|code\" strings")
        for entry in entries:
            if not isinstance(entry, str) or entry.count("|") != 1:
                raise ValueError(f"CDS_LOCAL_CODES: {kind}: {entry!r} is not \"system|code\"")
            system, code = entry.split("|")
            if not (_TOKEN_PART.match(system) and _TOKEN_PART.match(code)):
                raise ValueError(f"CDS_LOCAL_CODES: {kind}: {entry!r} needs a system and a code "
                                 "without spaces, commas or '|'")
            if (system, code) in LAB_KIND_BY_CODE:
                raise ValueError(f"CDS_LOCAL_CODES: {kind}: {entry!r} is already a known code "
                                 f"({LAB_KIND_BY_CODE[(system, code)]})")
            found.add((kind, system, code))
    kinds_by_code: dict[tuple[str, str], str] = {}
    for kind, system, code in found:
        if kinds_by_code.setdefault((system, code), kind) != kind:
            raise ValueError(f"CDS_LOCAL_CODES: {system}|{code} is listed under two kinds")
    return frozenset(found)


def local_kind_map(local: frozenset[tuple[str, str, str]]) -> dict[tuple[str, str], LabKind]:
    """(system, code) -> lab kind, for the facts layer."""
    return {(system, code): LabKind(kind) for kind, system, code in local}
