"""The test suite. Shared helpers live in cds_service.testing (bench/ and fhir_fixtures/ use them
too and must not import from tests/)."""
