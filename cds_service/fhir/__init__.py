"""Patient data for a hook call: prefetch as sent, else fetched from the EHR's FHIR server."""
