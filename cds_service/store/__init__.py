"""The state store: one database (SQLite by default, PostgreSQL for several instances) for the
JWT replay check, the cards issued and the feedback clinicians gave on them.

SQLAlchemy Core talks to the database; Alembic migrations shipped in this package create and
update the tables, applied once at start-up (before gunicorn forks its workers).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple
from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from .schema import cards_issued, feedback, seen_jti

MIGRATIONS = Path(__file__).with_name("migrations")
# Taken by every instance migrating the same PostgreSQL database: only one runs the migrations.
_PG_MIGRATION_LOCK = zlib.crc32(b"cds-service:alembic")

_migrated: set[str] = set()  # databases already brought to the newest schema by this process
_migrated_lock = threading.Lock()


class StoreConfigurationError(ValueError):
    """CDS_DATABASE_URL (or CDS_STATE_DB) does not name a database the service can use."""


def database_url(database_url: str, state_db: str) -> str:
    """The database: CDS_DATABASE_URL, else the SQLite file CDS_STATE_DB (the former setting)."""
    return database_url or f"sqlite:///{state_db}"


def utc_naive(moment: datetime) -> datetime:
    """The UTC wall time without tzinfo: how both SQLite and PostgreSQL columns hold it here."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreConfigurationError(
            "CDS_DATABASE_URL is not a database URL (e.g. sqlite:///cds-state.sqlite3 or "
            "postgresql+psycopg://user@host/db)") from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreConfigurationError(f"CDS_DATABASE_URL: {backend} is not supported (SQLite or PostgreSQL)")
    try:
        if backend == "sqlite":
            engine = sa.create_engine(parsed, connect_args={"timeout": 15})
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = sa.create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5)
    except (NoSuchModuleError, ImportError) as error:
        raise StoreConfigurationError(f"CDS_DATABASE_URL: driver not installed ({error})") from None
    # A pool inherited across fork would share sockets between processes.
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer (several workers)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """A connection holding the lock that serialises migrations across processes and instances:
    an advisory lock on PostgreSQL, an exclusive file lock on the SQLite file."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
            connection.commit()
            try:
                yield connection
            finally:
                connection.rollback()
                connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_MIGRATION_LOCK})
                connection.commit()
        return
    path = engine.url.database
    if not path or path == ":memory:":
        with engine.connect() as connection:
            yield connection
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:  # creates the file; flock does not touch SQLite's own locks
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            with engine.connect() as connection:
                yield connection
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (safe when several processes start at once)."""
    from alembic import command
    from alembic.config import Config

    key = engine.url.render_as_string(hide_password=False)
    with _migrated_lock:
        if key in _migrated:
            return
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with _migration_lock(engine) as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()
        _migrated.add(key)


class IssuedCard(NamedTuple):
    """A card evaluated for a hook call: what analytics needs, never what the card says. (A named
    tuple: built several times per hook call, ~3x cheaper than a frozen dataclass.)"""

    card_uuid: str
    service: str
    kind: str
    indicator: str
    issued_at: datetime
    silent: bool


@dataclass(frozen=True)
class FeedbackResult:
    received: int
    stored: int  # new items (a repeated item is received but not stored again)
    unknown_cards: int


class Store:
    """The service's state in one database, shared by every worker and instance that names it."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        self._card_insert = _prepared_insert(self.engine, self._insert(cards_issued).on_conflict_do_nothing(),
                                             IssuedCard._fields)

    def migrate(self) -> None:
        try:
            migrate(self.engine)
        except sa.exc.OperationalError as error:
            raise StoreConfigurationError(
                f"cannot open the state database ({type(error.orig).__name__}: "
                f"{str(error.orig).strip().splitlines()[0] if error.orig else ''})") from None

    # -- JWT replay ------------------------------------------------------------------------

    def first_use(self, iss: str, jti: str, exp: float, now: float) -> bool:
        """Record the jti; False when it was already used and has not expired."""
        with self.engine.begin() as db:
            db.execute(seen_jti.delete().where(seen_jti.c.exp < now))
            # RETURNING says whether the row went in (rowcount is not reliable across drivers).
            inserted = db.execute(self._insert(seen_jti).values(iss=iss, jti=jti, exp=exp)
                                  .on_conflict_do_nothing().returning(seen_jti.c.jti)).first()
            return inserted is not None

    # -- cards and feedback ----------------------------------------------------------------

    def add_cards(self, cards: Sequence[IssuedCard]) -> None:
        if not cards:
            return
        sql, to_params = self._card_insert
        rows = [to_params(c._replace(issued_at=utc_naive(c.issued_at))) for c in cards]
        with self.engine.begin() as db:
            # The driver's executemany on SQL compiled once: no statement compile or per-row
            # SQLAlchemy parameter handling per batch (the values go through the same type
            # conversions, taken from SQLAlchemy, so the rows are the same).
            db.exec_driver_sql(sql, rows)

    def add_feedback(self, service: str, items: Sequence[dict], *, store_comments: bool,
                     now: datetime) -> FeedbackResult:
        """Store each feedback item once (card, outcome and outcome time identify it). Items are
        already schema-checked; their times already parsed into `outcome_at`."""
        stored = unknown = 0
        with self.engine.begin() as db:
            known = set(db.execute(sa.select(cards_issued.c.card_uuid).where(
                cards_issued.c.card_uuid.in_({item["card"] for item in items}))).scalars())
            for item in items:
                reason = item.get("overrideReason") or {}
                given_reason = reason.get("reason")
                coding = given_reason if isinstance(given_reason, dict) else {}
                comment = reason.get("userComment")
                comment_given = isinstance(comment, str) and comment.strip() != ""
                card_known = item["card"] in known
                unknown += not card_known
                row = {"card_uuid": item["card"], "service": service, "outcome": item["outcome"],
                       "outcome_at": utc_naive(item["outcome_at"]),
                       "accepted_suggestions": json.dumps(
                           [s["id"] for s in item.get("acceptedSuggestions") or []
                            if isinstance(s.get("id"), str)]),
                       "override_system": _text(coding.get("system"), 512),
                       "override_code": _text(coding.get("code"), 256),
                       "override_display": _text(coding.get("display"), 512),
                       "comment_given": comment_given,
                       # Free text may name the patient: kept only when the hospital opts in.
                       "comment": comment if comment_given and store_comments else None,
                       "card_known": card_known, "received_at": utc_naive(now)}
                result = db.execute(self._insert(feedback).values(**row).on_conflict_do_nothing()
                                    .returning(feedback.c.id)).first()
                stored += result is not None
        return FeedbackResult(len(items), stored, unknown)

    def dispose(self) -> None:
        self.engine.dispose()


def _prepared_insert(engine: Engine, statement: Any, fields: Sequence[str]) -> tuple[str, Any]:
    """The dialect's SQL text for an insert of the columns named `fields`, and a function from a
    tuple of values in that order to the driver's parameters (positional or named), converted by
    each column type's bind processor, as SQLAlchemy itself would."""
    dialect = engine.dialect
    table = statement.table
    order = list(fields)
    compiled = statement.compile(dialect=dialect, column_keys=order)
    processors = [table.c[key].type.dialect_impl(dialect).bind_processor(dialect) for key in order]
    if compiled.positional:
        index = [order.index(key) for key in compiled.positiontup or ()]

        def positional(values: tuple) -> tuple:
            return tuple(values[i] if processors[i] is None else processors[i](values[i])
                         for i in index)
        return str(compiled), positional

    def named(values: tuple) -> dict:
        return {key: value if processor is None else processor(value)
                for key, value, processor in zip(order, values, processors, strict=True)}
    return str(compiled), named


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None
