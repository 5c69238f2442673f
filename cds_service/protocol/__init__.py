"""CDS Hooks 2.0 protocol: request parsing and validation, response types, errors."""
