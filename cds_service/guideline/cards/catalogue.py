"""Every card kind in words: its topic, title, guideline section and rule (section 10).

The rule pages (ruledocs.py, /docs/rules) are generated from RULES, so the page and the card cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuleDoc:
    """A card kind: its stable topic code, title, guideline section and the rule in words.

    `text` names thresholds in braces; the documentation page fills in the values in force, so
    the page and the code cannot disagree.
    """

    topic: str
    title: str
    section: str
    text: str


RULES = {doc.topic: doc for doc in (
    RuleDoc("mg-severity", "Severity of low serum magnesium", "3",
            "The latest usable serum magnesium (final, amended or corrected; converted to mEq/L; "
            "a corrected result supersedes the final one of the same time; results dated more than "
            "{future_tolerance_minutes} minutes in the future are never used) is classed: severe "
            "below {severe_below} mEq/L (critical); symptomatic at or below {low_at_or_below} mEq/L "
            "with a major symptom (seizure, tetany, arrhythmia, QT prolongation) whose onset is in "
            "the last {symptom_window_days} days (critical); with only a minor symptom (muscle "
            "cramp, tremor) from {severe_below} to {low_at_or_below} mEq/L (warning: oral "
            "magnesium three times daily, IV offered but not recommended; tremor is also a sign of "
            "tacrolimus toxicity); mild-moderate from {severe_below} to {low_at_or_below} mEq/L "
            "inclusive (warning: oral magnesium oxide 400 mg twice daily, recheck in 1–2 weeks); "
            "just below target between {low_at_or_below} and {target_above} mEq/L (info). Severe "
            "or major symptoms: IV magnesium sulfate 2 g over 1 hour, recheck within 24 hours. "
            "No new dose when magnesium was given or ordered after the result (the card names it "
            "and asks for the post-replacement recheck). Renal impairment (eGFR below "
            "{egfr_caution_below} mL/min/1.73 m², reported within {renal_function_recent_days} "
            "days or estimated by CKD-EPI 2021 from a serum creatinine): IV 1 g, oral magnesium "
            "oxide 400 mg once daily, with a caution; renal function unknown: said on the card, "
            "with a serum creatinine suggested. Dialysis or end-stage kidney disease (an active "
            "condition, or dialysis within {dialysis_recent_days} days): no one-click "
            "supplement, discuss with nephrology. Children under 18: weight-based text only "
            "(IV 25–50 mg/kg, at most 2 g; mg shown with a weight from the last "
            "{body_weight_recent_days} days). No tacrolimus level within "
            "{tacrolimus_level_recent_days} days (first year after transplant or tacrolimus "
            "start) or {tacrolimus_level_recent_days_late} days (later): a trough is suggested, "
            "never for stopped or held tacrolimus. Tacrolimus stopped within "
            "{recently_stopped_days} days keeps the patient in scope."),
    RuleDoc("mg-monitoring", "Serum magnesium monitoring interval", "4",
            "A patient on systemic tacrolimus is due a serum magnesium when no usable result exists "
            "within the interval that applies, the shortest winning: {routine_interval_days} days "
            "routinely; {early_interval_days} days in the first {early_phase_days} days after a "
            "transplant or after tacrolimus was started (the earliest tacrolimus order, stopped "
            "ones included: a renewal is not a start); {inpatient_interval_days} days while "
            "hospitalized. Never measured counts as due."),
    RuleDoc("mg-symptoms", "Symptoms with normal serum magnesium", "5",
            "A symptom of hypomagnesemia (muscle cramp, tremor, seizure, tetany, arrhythmia, QT "
            "prolongation) with onset in the last {symptom_window_days} days (the recorded date "
            "only when no onset is given; an onset given as an age counts when the span it "
            "names, from that age to the next, can reach those days) and a serum magnesium at "
            "target ({target_above} mEq/L or more): serum levels may not reflect body stores; "
            "consider ionized magnesium, FEMg or an empirical trial. Between {low_at_or_below} "
            "and {target_above} mEq/L the below-target card names the symptom instead."),
    RuleDoc("mg-contributing", "Factors worsening magnesium loss", "7",
            "With the latest magnesium at or below {low_at_or_below} mEq/L: active drugs that "
            "waste magnesium (each with a suggestion to stop it, not recommended by default), a "
            "tacrolimus level above {tacrolimus_high_above} ng/mL or the lab's range, drugs that "
            "raise tacrolimus levels (newest first), and eGFR up by {egfr_rise_fraction:.0%} or "
            "more within {egfr_rise_window_days} days. A drug raising tacrolimus levels started "
            "with no tacrolimus level since (a level taken the day it started does not show its "
            "effect) is said first, with a trough suggested unless another card asks for one; "
            "never for stopped or held tacrolimus. A missing tacrolimus level is not a factor: "
            "the severity card suggests a trough instead."),
    RuleDoc("mg-persistent", "Persistent hypomagnesemia despite supplementation", "7",
            "At least {persistent_min_results} results at or below {low_at_or_below} mEq/L "
            "spanning {persistent_min_span_days} days or more, all after an active magnesium "
            "supplement was started. This card replaces the severity card (critical when severe "
            "or with a major symptom, else warning) and carries its acute advice: increase the "
            "current supplement (named), IV magnesium if severe; split or increase the dose, "
            "check adherence and GI losses, FEMg to confirm renal wasting (collected before the "
            "next dose; never on dialysis), review the tacrolimus level and interacting drugs, "
            "consider amiloride and the transplant nephrology team."),
    RuleDoc("mg-high", "High magnesium on a supplement", "3",
            "The latest usable serum magnesium is above {high_above} mEq/L while a magnesium "
            "supplement is active: hold or reduce the supplement and check renal function (with "
            "eGFR below {egfr_caution_below} mL/min/1.73 m², renal impairment is the likely "
            "cause). Suggestions: stop the supplement (not recommended by default: the clinician "
            "decides) and a recheck."),
    RuleDoc("mg-not-used", "Magnesium results that could not be used", "2",
            "A serum magnesium result that cannot be interpreted (unknown unit, no value, a lower "
            "bound below target), is still preliminary, or is dated more than "
            "{future_tolerance_minutes} minutes in the future never drives a severity. Every card "
            "shown names such results; when no other card applies, an info card asks for them to "
            "be checked, so they are never ignored silently."),
    RuleDoc("mg-order-tacrolimus", "Starting tacrolimus: baseline magnesium and monitoring plan", "6",
            "When systemic tacrolimus is ordered for a patient not yet on it (a renewal is not a "
            "start): a baseline serum magnesium and the monitoring plan, every "
            "{early_interval_days} days for the first {early_phase_days} days, then every "
            "{routine_interval_days} days. A warning when magnesium is low (at or below "
            "{low_at_or_below} mEq/L) or not measured in the last {order_recent_mg_days} days, "
            "else info (the suggestion is then the first check of the plan, not a new baseline); "
            "no card when a recent normal result exists and a magnesium order is already in place."),
    RuleDoc("mg-order-wasting", "Ordering a drug that worsens magnesium loss", "6",
            "Ordering a magnesium-wasting drug (loop and thiazide diuretics, proton pump "
            "inhibitors, aminoglycosides, amphotericin B, platinum drugs, foscarnet, pentamidine, "
            "EGFR antibodies, cyclosporine) for a patient on tacrolimus: a card naming the drug and "
            "the latest magnesium, a warning when it is at or below {low_at_or_below} mEq/L, below "
            "target ({target_above} mEq/L) or not measured in the last {routine_interval_days} days "
            "(recheck in 1–2 weeks), info when it is at target. For an oral PPI, famotidine 20 mg "
            "(dosed to renal function) is offered in its place: the famotidine order is created "
            "first, then the PPI draft removed. An IV PPI gets no swap (IV famotidine is "
            "mentioned)."),
    RuleDoc("mg-order-interaction", "Ordering a drug that changes tacrolimus levels", "6",
            "Ordering a drug that raises (azoles including oral clotrimazole, macrolides other than "
            "azithromycin, diltiazem, verapamil, protease inhibitors and boosters, letermovir, "
            "amiodarone, grapefruit) or lowers (rifamycins, enzyme-inducing anticonvulsants, St "
            "John's wort) tacrolimus levels, naming the interacting ingredient (for "
            "nirmatrelvir/ritonavir: ritonavir). Ritonavir or cobicistat: critical, tacrolimus "
            "usually held or sharply reduced with the transplant team before the first dose, trough "
            "on day 2–3. Ketoconazole, itraconazole, voriconazole, posaconazole, clarithromycin: "
            "warning, a dose reduction is usually needed, trough within 2–3 days. Others: warning, "
            "trough and magnesium within about a week. Topical forms (shampoo, cream) do not count."),
    RuleDoc("mg-femg", "Fractional excretion of magnesium (FEMg)", "7",
            "With low magnesium, FEMg (%) = (U_Mg x S_Cr) / (0.7 x S_Mg x U_Cr) x 100 from spot "
            "results within {femg_window_hours} hours of each other. Above "
            "{femg_renal_wasting_above}%: renal wasting (expected on tacrolimus); below: "
            "extrarenal loss. The work-up (urine magnesium, urine and serum creatinine, collected "
            "before the next magnesium dose) is suggested only on the persistent card, or on a "
            "severity card when no supplement is active or suggested; never on dialysis."),
)}
