"""HL7 CDS Hooks 2.0 service: magnesium monitoring and supplementation for patients on tacrolimus."""

from .app import create_app

__all__ = ["create_app"]
