"""The state store on SQLite and on PostgreSQL: migrations, replay protection, cards issued,
feedback, silent mode and the analytics figures, through the app as an EHR would call it."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from cds_service import create_app
from cds_service.store import Store, _migrated
from cds_service.web import hooks

from cds_service.testing import factories as f
from .conftest import PATIENT_VIEW
from .test_security import jwks, secure_config, token  # noqa: F401 (jwks: a fixture used by name)

FEEDBACK = PATIENT_VIEW + "/feedback"


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch):
    monkeypatch.setattr(hooks, "utc_now", lambda: f.NOW)


def make_app(url: str, **config):
    return create_app({"log_level": "WARNING", "database_url": url, **config})


def severe_with_ppi() -> dict:
    """On tacrolimus, Mg 0.4 mmol/L yesterday, on omeprazole: a severity and a contributing card."""
    return f.hook_request([f.patient(), f.tacrolimus(), f.medication("omeprazole 20 mg capsule", id="ppi-1"),
                           f.magnesium(0.4, "mmol/L", code="2601-3", days=1)])


def unmonitored() -> dict:
    """On tacrolimus, last Mg (normal) 60 days ago: beyond the 42-day routine interval (section 4)."""
    return f.hook_request([f.patient(), f.tacrolimus(), f.magnesium(2.0, days=60)])


def kinds_of(cards: list[dict]) -> list[str]:
    return [c["source"]["topic"]["code"] for c in cards]


def figures(app, **params) -> dict:
    response = app.test_client().get("/analytics.json", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return {row["kind"]: row for row in response.get_json()["kinds"]}


def feedback_item(card: dict, outcome: str, at: str = "2026-11-25T12:05:00Z", **extra) -> dict:
    """A feedback item as the spec has it: an acceptance names the suggestions accepted."""
    if outcome == "accepted" and "acceptedSuggestions" not in extra:
        extra["acceptedSuggestions"] = [{"id": s["uuid"]} for s in card.get("suggestions", [])[:1]] or [{"id": "s-1"}]
    return {"card": card["uuid"], "outcome": outcome, "outcomeTimestamp": at, **extra}


# --- schema ------------------------------------------------------------------------------------


def test_migrations_create_the_tables_once(database_url):
    store = Store(database_url)
    store.migrate()
    _migrated.discard(store.engine.url.render_as_string(hide_password=False))
    store.migrate()  # a second start finds the newest schema and changes nothing
    tables = set(sa.inspect(store.engine).get_table_names())
    assert {"seen_jti", "cards_issued", "feedback", "alembic_version"} <= tables
    with store.engine.connect() as db:
        assert db.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == ["0001"]
    store.dispose()


def test_instances_starting_together_migrate_once(database_url):
    """Several processes (gunicorn masters of several instances) start on an empty database at once."""
    code = "import sys; from cds_service.store import Store; Store(sys.argv[1]).migrate()"
    processes = [subprocess.Popen([sys.executable, "-c", code, database_url], stderr=subprocess.PIPE)
                 for _ in range(3)]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()[-2000:]
    engine = sa.create_engine(database_url)
    with engine.connect() as db:
        assert db.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()


# --- replay ------------------------------------------------------------------------------------


def test_a_jti_is_used_once_until_it_expires(database_url):
    store = Store(database_url)
    store.migrate()
    now = time.time()
    assert store.first_use("https://ehr", "jti-1", now + 300, now)
    assert not store.first_use("https://ehr", "jti-1", now + 300, now + 1)
    assert store.first_use("https://other-ehr", "jti-1", now + 300, now)  # per issuer
    assert store.first_use("https://ehr", "jti-1", now + 900, now + 301)  # expired, then forgotten
    with store.engine.connect() as db:  # both expired rows are gone; the new use is kept
        assert db.execute(sa.text("SELECT iss, jti FROM seen_jti")).all() == [("https://ehr", "jti-1")]
    store.dispose()


@pytest.mark.usefixtures("jwks")
def test_two_instances_share_replay_protection_and_feedback(database_url, tmp_path):
    """Two app instances on one database (as two hosts behind a load balancer)."""
    config = {**secure_config(tmp_path), "database_url": database_url, "log_level": "WARNING"}
    first, second = create_app(config), create_app(config)
    bearer = token()
    headers = {"Authorization": f"Bearer {bearer}"}
    response = first.test_client().post(PATIENT_VIEW, json=severe_with_ppi(), headers=headers)
    assert response.status_code == 200
    assert second.test_client().post(PATIENT_VIEW, json=severe_with_ppi(), headers=headers).status_code == 401

    card = response.get_json()["cards"][0]
    item = feedback_item(card, "accepted", acceptedSuggestions=[{"id": card["suggestions"][0]["uuid"]}])
    for app in (first, second, first):  # the EHR retries on another instance, then again
        answer = app.test_client().post(FEEDBACK, json={"feedback": [item]},
                                        headers={"Authorization": f"Bearer {token(aud='http://localhost' + FEEDBACK)}"})
        assert answer.status_code == 200, answer.get_data(as_text=True)
    first.extensions["cds"].recorder.flush()
    with first.extensions["cds"].store.engine.connect() as db:
        rows = db.execute(sa.text("SELECT card_uuid, outcome, accepted_suggestions, card_known FROM feedback")).all()
    assert len(rows) == 1
    assert rows[0].card_uuid == card["uuid"] and rows[0].outcome == "accepted" and rows[0].card_known
    assert card["suggestions"][0]["uuid"] in rows[0].accepted_suggestions
    kinds = figures(second)
    assert kinds["mg-severity"]["accepted"] == 1 and kinds["mg-severity"]["issued"] == 1


# --- the loop: hook, silent card, feedback, analytics --------------------------------------------


def test_hook_feedback_and_silent_cards_reach_the_analytics(database_url):
    app = make_app(database_url, silent_kinds="mg-monitoring")
    client = app.test_client()
    cards = client.post(PATIENT_VIEW, json=severe_with_ppi()).get_json()["cards"]
    assert kinds_of(cards) == ["mg-severity", "mg-contributing"]
    severity, contributing = cards
    # The monitoring reminder is evaluated but held back: the EHR gets no card.
    assert client.post(PATIENT_VIEW, json=unmonitored()).get_json()["cards"] == []

    body = {"feedback": [
        feedback_item(severity, "accepted", acceptedSuggestions=[{"id": severity["suggestions"][0]["uuid"]}]),
        feedback_item(contributing, "overridden", overrideReason={
            "reason": {"system": "urn:tacrolimus-magnesium-cds:override-reason", "code": "patient-declined",
                       "display": "Patient declined"}}),
    ]}
    answer = client.post(FEEDBACK, json=body)
    assert answer.status_code == 200
    assert answer.get_json() == {"received": 2, "stored": 2, "unknownCards": 0}
    assert client.post(FEEDBACK, json=body).get_json() == {"received": 2, "stored": 0, "unknownCards": 0}

    kinds = figures(app)
    columns = ("issued", "silent", "accepted", "overridden", "acceptanceRate")
    severity_row = {k: kinds["mg-severity"][k] for k in columns}
    assert severity_row == {"issued": 1, "silent": 0, "accepted": 1, "overridden": 0, "acceptanceRate": 1.0}
    assert kinds["mg-contributing"]["overridden"] == 1 and kinds["mg-contributing"]["acceptanceRate"] == 0.0
    assert kinds["mg-contributing"]["overrideReasons"] == {"patient-declined": 1}
    assert kinds["mg-monitoring"]["silent"] == 1 and kinds["mg-monitoring"]["issued"] == 0
    weekly = app.test_client().get("/analytics.json").get_json()["weekly"]
    assert {(w["week"], w["kind"], w["silent"]) for w in weekly} >= {("2026-11-23", "mg-monitoring", 1)}

    # After a restart (a new app on the same database) the figures are still there.
    app.extensions["cds"].recorder.flush()
    assert figures(make_app(database_url)) == kinds


def test_period_filter(database_url):
    app = make_app(database_url)
    app.test_client().post(PATIENT_VIEW, json=severe_with_ppi())
    assert figures(app, since="2026-11-25", until="2026-11-25")["mg-severity"]["issued"] == 1
    assert figures(app, since="2026-11-26")["mg-severity"]["issued"] == 0
    assert figures(app, until="2026-11-24")["mg-severity"]["issued"] == 0


def test_feedback_on_a_card_never_issued_is_stored_as_unknown(database_url):
    app = make_app(database_url)
    item = {"card": "9368d37b-283f-44a0-93ea-547cebab93ed", "outcome": "overridden",
            "outcomeTimestamp": "2020-12-11T00:00:00Z", "overrideReason": {"reason": {"code": "d7ecf885"}}}
    answer = app.test_client().post(FEEDBACK, json={"feedback": [item]})
    assert answer.status_code == 200 and answer.get_json()["unknownCards"] == 1
    unknown = figures(app)["unknown"]
    assert unknown["overridden"] == 1 and unknown["overrideReasons"] == {"d7ecf885": 1}


@pytest.mark.parametrize("store_comments", [False, True])
def test_comments_are_kept_only_when_the_hospital_asks(database_url, store_comments):
    app = make_app(database_url, feedback_store_comments=store_comments)
    card = app.test_client().post(PATIENT_VIEW, json=severe_with_ppi()).get_json()["cards"][0]
    comment = "Patient J. Doe refused IV magnesium"
    item = feedback_item(card, "overridden", overrideReason={"reason": {"code": "patient-declined"},
                                                             "userComment": comment})
    assert app.test_client().post(FEEDBACK, json={"feedback": [item]}).status_code == 200
    with app.extensions["cds"].store.engine.connect() as db:
        row = db.execute(sa.text("SELECT comment_given, comment FROM feedback")).one()
    assert row.comment_given
    assert row.comment == (comment if store_comments else None)
    assert figures(app)["mg-severity"]["comments"] == 1


def test_records_hold_no_patient_data(database_url):
    app = make_app(database_url)
    app.test_client().post(PATIENT_VIEW, json=severe_with_ppi())
    app.extensions["cds"].recorder.flush()
    with app.extensions["cds"].store.engine.connect() as db:
        dumped = repr(db.execute(sa.text("SELECT * FROM cards_issued")).all())
    assert f.PATIENT_ID not in dumped and "omeprazole" not in dumped and "0.4" not in dumped
    assert "mg-severity" in dumped


def test_recording_can_be_switched_off(database_url):
    app = make_app(database_url, record_cards=False)
    app.test_client().post(PATIENT_VIEW, json=severe_with_ppi())
    assert figures(app)["mg-severity"]["issued"] == 0


def test_a_missing_real_part_fails_in_ci_and_skips_elsewhere(monkeypatch):
    from .realparts import missing

    monkeypatch.setenv("CDS_REQUIRE_REAL_PARTS", "1")
    with pytest.raises(pytest.fail.Exception, match="CDS_REQUIRE_REAL_PARTS=1 requires it"):
        missing("PostgreSQL is not installed")
    monkeypatch.delenv("CDS_REQUIRE_REAL_PARTS")
    with pytest.raises(pytest.skip.Exception):
        missing("PostgreSQL is not installed")


@pytest.mark.usefixtures("jwks")
def test_a_replay_check_that_cannot_reach_the_database_is_a_503(tmp_path, monkeypatch):
    app = create_app({**secure_config(tmp_path), "log_level": "WARNING"})

    def database_down(*args, **kwargs):
        raise sa.exc.OperationalError("INSERT", {}, Exception("connection refused"))

    monkeypatch.setattr(app.extensions["cds"].store, "first_use", database_down)
    response = app.test_client().post(PATIENT_VIEW, json=severe_with_ppi(),
                                      headers={"Authorization": f"Bearer {token()}"})
    assert response.status_code == 503
    assert response.get_json()["issue"][0]["code"] == "transient"


def test_feedback_that_cannot_be_stored_is_a_503(tmp_path, monkeypatch):
    app = make_app(f"sqlite:///{tmp_path / 'state.sqlite3'}")

    def database_down(*args, **kwargs):
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk full"))

    monkeypatch.setattr(app.extensions["cds"].store, "add_feedback", database_down)
    item = {"card": "c-1", "outcome": "accepted", "outcomeTimestamp": "2026-11-25T10:00:00Z",
            "acceptedSuggestions": [{"id": "s-1"}]}
    response = app.test_client().post(FEEDBACK, json={"feedback": [item]})
    assert response.status_code == 503 and response.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("url, message", [
    ("mysql://db/cds", "mysql is not supported"),
    ("postgresql+psycopg://cds@127.0.0.1:1/cds", "cannot open the state database"),
])
def test_an_unusable_database_stops_the_start_with_a_clear_message(url, message):
    with pytest.raises(ValueError, match=message):
        make_app(url)


def test_an_overlong_card_id_is_a_400_not_a_database_error(database_url):
    app = make_app(database_url)
    item = {"card": "x" * 257, "outcome": "accepted", "outcomeTimestamp": "2026-11-25T10:00:00Z"}
    assert app.test_client().post(FEEDBACK, json={"feedback": [item]}).status_code == 400
    long_codes = {"card": "c" * 256, "outcome": "overridden", "outcomeTimestamp": "2026-11-25T10:00:00Z",
                  "overrideReason": {"reason": {"code": "r" * 1000, "display": "d" * 5000, "system": "s" * 5000}}}
    assert app.test_client().post(FEEDBACK, json={"feedback": [long_codes]}).status_code == 200


def test_a_state_file_of_the_previous_version_is_upgraded_in_place(tmp_path):
    """The former replay store created seen_jti in CDS_STATE_DB without any migration table."""
    import sqlite3

    path = tmp_path / "cds-state.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS seen_jti (iss TEXT NOT NULL, jti TEXT NOT NULL, "
                   "exp REAL NOT NULL, PRIMARY KEY (iss, jti))")
        db.execute("INSERT INTO seen_jti VALUES ('https://ehr', 'seen-before', ?)", (time.time() + 300,))
    app = create_app({"log_level": "WARNING", "state_db": str(path)})
    store = app.extensions["cds"].store
    assert not store.first_use("https://ehr", "seen-before", time.time() + 300, time.time())
    assert {"cards_issued", "feedback"} <= set(sa.inspect(store.engine).get_table_names())


def test_the_migrations_build_exactly_the_tables_the_code_declares(database_url):
    """schema.py (what the queries use) and the Alembic migrations (what is deployed) agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from cds_service.store.schema import metadata

    store = Store(database_url)
    store.migrate()
    with store.engine.connect() as db:
        differences = compare_metadata(MigrationContext.configure(db), metadata)
    store.dispose()
    assert differences == []


def test_a_misspelt_silent_kind_stops_the_start(tmp_path):
    with pytest.raises(ValueError, match="CDS_SILENT_KINDS names unknown card kinds: mg-severty"):
        make_app(f"sqlite:///{tmp_path / 'state.sqlite3'}", silent_kinds="mg-severty, mg-monitoring")


def _start_many(directory: str, databases: int, barrier, results) -> None:
    failures, first_uses = [], 0
    for n in range(databases):
        barrier.wait()
        try:
            store = Store(f"sqlite:///{directory}/state-{n}.sqlite3")
            store.migrate()
            first_uses += store.first_use("iss", "jti-shared", 2e9, 0)
            store.dispose()
        except Exception as error:
            failures.append(f"{type(error).__name__}: {error}")
    results.put((failures, first_uses))


def test_lock_step_fresh_starts_on_sqlite_all_succeed(tmp_path):
    """Four processes open the same fresh SQLite files at the same instant, again and again (as
    workers or instances starting together): each migrates or waits, none fails, and the shared
    jti is first used exactly once per database."""
    import multiprocessing

    processes_count, databases = 4, 40
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(processes_count), context.Queue()
    processes = [context.Process(target=_start_many, args=(str(tmp_path), databases, barrier, results))
                 for _ in range(processes_count)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    failures = [failure for failed, _ in outcomes for failure in failed]
    assert not failures, failures[:3]
    assert sum(first for _, first in outcomes) == databases
