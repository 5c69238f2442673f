"""The trust boundary: who may call the service (JWT) and which FHIR servers it may call."""
