"""Synthetic patients (FHIR R4 Bundles), sample hook requests and the cards a clinician expects.

Regenerate with ``python -m fhir_fixtures.generate`` from the repository root.
"""
