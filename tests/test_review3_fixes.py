"""Section 3 and 8 details found by the third review of the session, pinned at their edges:
the recheck window matches its words, the halved IV order names no 2 g product, a renal caution
is said once and names the hypermagnesemia risk, fosphenytoin and Tolsura are recognised."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from .test_independent_patients import MODES, run, IV, NOW, created, draft, egfr, mg, mgo_order, recipient, text, the

TODAY = NOW.date()


def serum_mg_window(card: dict) -> tuple[str, str]:
    [order] = [r for r in created(card, "ServiceRequest")
               if {c["code"] for c in r["code"].get("coding", [])} & {"19123-9", "2601-3"}]
    return order["occurrencePeriod"]["start"], order["occurrencePeriod"]["end"]


@pytest.mark.parametrize("mode", MODES)
def test_a_recheck_within_24_hours_opens_today(mode, discovery, monkeypatch):
    c = the(run(recipient(mg(0.8, "mEq/L", days=1)), mode, discovery, monkeypatch), "mg-severity", "critical")
    assert serum_mg_window(c) == (TODAY.isoformat(), (TODAY + timedelta(days=1)).isoformat())


@pytest.mark.parametrize("mode", MODES)
def test_a_recheck_in_1_to_2_weeks_opens_in_one_week(mode, discovery, monkeypatch):
    c = the(run(recipient(mg(1.2, "mEq/L", days=1)), mode, discovery, monkeypatch), "mg-severity", "warning")
    assert "recheck serum mg in 1–2 weeks" in text(c)
    assert serum_mg_window(c) == ((TODAY + timedelta(days=7)).isoformat(), (TODAY + timedelta(days=14)).isoformat())


@pytest.mark.parametrize("mode", MODES)
def test_the_halved_iv_order_says_1_g_everywhere(mode, discovery, monkeypatch):
    cards = run(recipient(mg(0.8, "mEq/L", days=1), renal=False) + [egfr(20)], mode, discovery, monkeypatch)
    [iv] = [r for r in created(the(cards, "mg-severity", "critical"), "MedicationRequest")]
    assert iv["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 1000
    assert "2 g" not in json.dumps(iv), json.dumps(iv)


@pytest.mark.parametrize("mode", MODES)
def test_a_severe_persistent_low_at_egfr_20_says_its_caution_once(mode, discovery, monkeypatch):
    res = recipient(mgo_order(days=60), mg(0.9, "mEq/L", days=30), mg(0.8, "mEq/L", days=2), renal=False) + [egfr(20)]
    c = the(run(res, mode, discovery, monkeypatch), "mg-persistent", "critical")
    assert c["detail"].count("Caution:") == 1, c["detail"]
    assert "three times daily" not in text(c)


@pytest.mark.parametrize("mode", MODES)
def test_a_persistent_low_with_normal_renal_function_may_titrate(mode, discovery, monkeypatch):
    res = recipient(mgo_order(days=60), mg(1.2, "mEq/L", days=30), mg(1.25, "mEq/L", days=2))
    c = the(run(res, mode, discovery, monkeypatch), "mg-persistent", "warning")
    assert "up to three times daily" in text(c) and "hypermagnesemia" not in text(c)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name, ingredient", [
    ("fosphenytoin (CEREBYX) 1,500 mg PE in sodium chloride 0.9 % 100 mL IVPB", "fosphenytoin"),
    ("CEREBYX 500 MG PE/10 ML injection", "fosphenytoin"),
    ("TOLSURA 65 MG capsule", "itraconazole"),
])
def test_brands_and_prodrugs_of_listed_drugs_interact(name, ingredient, mode, discovery, monkeypatch):
    cards = run(recipient(mg(1.8, "mEq/L", days=10)), mode, discovery, monkeypatch, hook="order-select",
                drafts=[draft({"text": name}, id="d-x", route=IV)])
    c = the(cards, "mg-order-interaction")
    assert ingredient in text(c)


@pytest.mark.parametrize("mode", MODES)
def test_a_wasting_drug_below_target_asks_for_the_recheck_in_1_to_2_weeks(mode, discovery, monkeypatch):
    """(At a low Mg the severity card carries the recheck: one order per test.)"""
    ppi = draft({"text": "pantoprazole 40 mg EC tablet"}, id="d-ppi")
    cards = run(recipient(mg(1.45, "mEq/L", days=10)), mode, discovery, monkeypatch, hook="order-select", drafts=[ppi])
    c = the(cards, "mg-order-wasting", "warning")
    assert serum_mg_window(c) == ((TODAY + timedelta(days=7)).isoformat(), (TODAY + timedelta(days=14)).isoformat())
