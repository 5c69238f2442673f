"""The test suite. Shared helpers live in cds_service.testing (bench/ and fhir_fixtures/ use them
too and must not import from tests/)."""

import sys as _sys

from cds_service.testing import factories as _factories, fhir_stub as _fhir_stub

# Transitional: branches written before the helpers moved still say `from . import factories`
# or `from .fhir_stub import FhirStub`. Delete these two lines once they are merged.
_sys.modules.setdefault(f"{__name__}.factories", _factories)
_sys.modules.setdefault(f"{__name__}.fhir_stub", _fhir_stub)
