"""The state tables (SQLAlchemy Core). They hold card ids, card kinds, outcomes and override
codes: never patient data. A feedback comment is kept only when the hospital asks for it."""

from __future__ import annotations

from sqlalchemy import (Boolean, Column, DateTime, Float, Index, Integer, MetaData, String, Table, Text,
                        UniqueConstraint)

metadata = MetaData()

# JWT ids already used, until their token expires: replay protection shared by every worker and
# every instance that uses the same database.
seen_jti = Table(
    "seen_jti", metadata,
    Column("iss", String(512), primary_key=True),
    Column("jti", String(512), primary_key=True),
    Column("exp", Float, nullable=False, index=True),
)

# One row per card evaluated: returned to the EHR, or held back by silent mode.
cards_issued = Table(
    "cards_issued", metadata,
    Column("card_uuid", String(64), primary_key=True),
    Column("service", String(128), nullable=False),
    Column("kind", String(128), nullable=False),  # source.topic.code
    Column("indicator", String(16), nullable=False),
    Column("issued_at", DateTime, nullable=False),  # UTC
    Column("silent", Boolean, nullable=False),
    Index("ix_cards_issued_issued_at", "issued_at"),
)

# One row per feedback item; the same card, outcome and time is one item however often it is sent.
feedback = Table(
    "feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("card_uuid", String(256), nullable=False),
    Column("service", String(128), nullable=False),
    Column("outcome", String(16), nullable=False),  # accepted | overridden
    Column("outcome_at", DateTime, nullable=False),  # UTC
    Column("accepted_suggestions", Text, nullable=False, default="[]"),  # JSON list of ids
    Column("override_system", String(512)),
    Column("override_code", String(256)),
    Column("override_display", String(512)),
    Column("comment_given", Boolean, nullable=False, default=False),
    Column("comment", Text),  # only with CDS_FEEDBACK_STORE_COMMENTS=true
    Column("card_known", Boolean, nullable=False),  # the card was issued by this service
    Column("received_at", DateTime, nullable=False),
    UniqueConstraint("card_uuid", "outcome", "outcome_at", name="uq_feedback_item"),
    Index("ix_feedback_outcome_at", "outcome_at"),
)
