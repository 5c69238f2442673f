"""Section 3: who the patient is (on dialysis, a child) is said on every severity card, also
when magnesium is already being ordered or was already given (the order of safety in
cards/severity._supplementation); and stale results on the persistent card (section 3 + 7).
Patients built from the guideline text, in both data modes of test_independent_patients."""

from __future__ import annotations

import pytest


from .test_independent_patients import (
    MODES, run,
    created, draft, mg, mgo_order, mgso4, procedure, recipient, rxcode, text, the,
)


MGO = rxcode("198741", "magnesium oxide 400 MG Oral Tablet", "magnesium oxide 400 mg tablet")


@pytest.mark.parametrize("mode", MODES)
def test_a_child_with_a_magnesium_draft_gets_the_weight_based_text(mode, discovery, monkeypatch):
    """§3 Children: "no fixed-dose medication suggestions. The card gives weight-based text ...
    and discuss with paediatric nephrology" — a fixed adult dose being signed for a 9-year-old."""
    d = draft(MGO, id="draft-mgo-child", sig="400 mg by mouth twice daily")
    cards = run(recipient(mg(1.2, "mEq/L", days=1), birth="2017-05-02"), mode, discovery, monkeypatch,
                hook="order-sign", drafts=[d])
    c = the(cards, "mg-severity", "warning")
    t = text(c)
    assert "magnesium already being ordered" in t and "25–50 mg/kg" in t and "paediatric nephrology" in t, t
    assert not mgso4(c) and not [r for r in created(c, "MedicationRequest")]


@pytest.mark.parametrize("mode", MODES)
def test_an_adult_not_on_dialysis_with_a_draft_gets_no_population_text(mode, discovery, monkeypatch):
    d = draft(MGO, id="draft-mgo-adult", sig="400 mg by mouth twice daily")
    cards = run(recipient(mg(1.2, "mEq/L", days=1)), mode, discovery, monkeypatch, hook="order-sign", drafts=[d])
    t = text(the(cards, "mg-severity", "warning"))
    assert "magnesium already being ordered" in t and "dialysate" not in t and "mg/kg" not in t, t


@pytest.mark.parametrize("mode", MODES)
def test_dialysis_old_procedure_is_not_dialysis_even_with_a_draft(mode, discovery, monkeypatch):
    """§3: "a dialysis Procedure in the last 30 days": one 45 days ago does not count."""
    d = draft(MGO, id="draft-mgo-hd-old", sig="400 mg by mouth twice daily")
    cards = run(recipient(mg(1.2, "mEq/L", days=1), procedure("302497006", "Hemodialysis", 45)),
                mode, discovery, monkeypatch, hook="order-sign", drafts=[d])
    assert "dialysate" not in text(the(cards, "mg-severity", "warning"))


@pytest.mark.parametrize("mode", MODES)
def test_a_fresh_persistent_low_is_not_called_old(mode, discovery, monkeypatch):
    """§7 persistent on recent results (outpatient, 6-week interval): no repeat-first wording."""
    cards = run(recipient(mgo_order(days=60), mg(1.2, "mEq/L", days=25), mg(1.1, "mEq/L", days=5)),
                mode, discovery, monkeypatch)
    c = the(cards, "mg-persistent", "warning")
    assert "if confirmed" not in c["summary"] and "days old" not in text(c), c["summary"]
    assert c["summary"].endswith("increase magnesium oxide")
