"""Synthetic FHIR data and a loopback FHIR server, shared by the tests, the fixture generator
(``fhir_fixtures/``) and the benchmark (``bench/``). The service itself never imports them.

- ``factories``: small functions that build FHIR R4 resources and hook requests as EHRs send
  them (no real patient data), with the pinned clock ``NOW``.
- ``fhir_stub``: ``FhirStub``, a tiny FHIR server on a loopback port (reads and searches).
"""
