"""Analytics and metrics: who may see them, what they show, the `report` command, and the page
in a real browser (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cds_service import cli, create_app
from cds_service.web import hooks

from cds_service.testing import factories as f
from .analytics_data import populate
from .conftest import PATIENT_VIEW
from .test_store import FEEDBACK, feedback_item, severe_with_ppi

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch):
    monkeypatch.setattr(hooks, "utc_now", lambda: f.NOW)


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'state.sqlite3'}"


def make_app(url: str, **config):
    return create_app({"log_level": "WARNING", "database_url": url, **config})


# --- access --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/analytics", "/analytics.json", "/metrics"])
@pytest.mark.parametrize("headers, status", [
    ({}, 401),
    ({"Authorization": "Bearer wrong"}, 401),
    ({"Authorization": "Bearer s3cret-admin-token-long-enough"}, 200),
    ({"Authorization": "s3cret-admin-token-long-enough"}, 401),
])
def test_admin_token_is_required_when_set(sqlite_url, path, headers, status):
    app = make_app(sqlite_url, admin_token="s3cret-admin-token-long-enough")
    response = app.test_client().get(path, headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("path", ["/analytics", "/analytics.json", "/metrics"])
@pytest.mark.parametrize("remote, headers, status", [
    ("127.0.0.1", {}, 200),
    ("::1", {}, 200),
    ("10.1.2.3", {}, 403),
    ("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"}, 403),  # a proxy on this host forwarding someone
    ("127.0.0.1", {"Forwarded": "for=203.0.113.9"}, 403),
])
def test_without_a_token_only_loopback_callers(sqlite_url, path, remote, headers, status):
    app = make_app(sqlite_url)
    response = app.test_client().get(path, headers=headers, environ_base={"REMOTE_ADDR": remote})
    assert response.status_code == status


def test_the_chart_library_is_served_with_its_licence(sqlite_url):
    client = make_app(sqlite_url).test_client()
    script = client.get("/analytics/static/chartjs/chart.umd.min.js", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert script.status_code == 200 and b"Chart.js v4" in script.data[:200]
    assert "MIT License" in (ROOT / "cds_service/web/static/chartjs/LICENSE.md").read_text()


@pytest.mark.parametrize("query", ["since=yesterday", "until=2026-02-30", "since=2026-11-25&until=2026-11-01"])
def test_a_bad_period_is_a_400(sqlite_url, query):
    response = make_app(sqlite_url).test_client().get(f"/analytics.json?{query}")
    assert response.status_code == 400
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert make_app(sqlite_url).test_client().get(f"/analytics?{query}").status_code == 400


@pytest.mark.parametrize("timestamp", ["last tuesday", "2026-11-25T25:00:00Z", "0001-01-01T00:00:00+05:00", "",
                                       "2026-11-25", "20261125T120500Z"])
def test_feedback_with_a_bad_timestamp_is_a_400(sqlite_url, timestamp):
    item = {"card": "c-1", "outcome": "accepted", "outcomeTimestamp": timestamp,
            "acceptedSuggestions": [{"id": "s-1"}]}
    response = make_app(sqlite_url).test_client().post(FEEDBACK, json={"feedback": [item]})
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["feedback[0].outcomeTimestamp"]


def test_codes_sent_in_feedback_cannot_break_out_of_the_page(sqlite_url):
    app = make_app(sqlite_url)
    item = {"card": "c-1", "outcome": "overridden", "outcomeTimestamp": "2026-11-25T10:00:00Z",
            "overrideReason": {"reason": {"code": "</script><script>alert(1)</script>", "display": "<b>x</b>"}}}
    assert app.test_client().post(FEEDBACK, json={"feedback": [item]}).status_code == 200
    page = app.test_client().get("/analytics")
    html = page.get_data(as_text=True)
    assert "<script>alert(1)" not in html and "<b>x</b>" not in html
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    embedded = html.split('<script type="application/json" id="figures">', 1)[1].split("</script>", 1)[0]
    kinds = {row["kind"]: row for row in json.loads(embedded)["kinds"]}
    assert kinds["unknown"]["overrideReasons"] == {"</script><script>alert(1)</script>": 1}


# --- report ---------------------------------------------------------------------------------------


@pytest.fixture
def stored(sqlite_url, monkeypatch):
    """A hook answered, one card accepted and one overridden, a silent card; the CLI's environment."""
    app = make_app(sqlite_url, silent_kinds="mg-contributing")
    client = app.test_client()
    cards = client.post(PATIENT_VIEW, json=severe_with_ppi()).get_json()["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == ["mg-severity"]
    client.post(FEEDBACK, json={"feedback": [
        feedback_item(cards[0], "overridden", overrideReason={"reason": {"code": "already-addressed"}})]})
    app.extensions["cds"].recorder.flush()
    monkeypatch.setenv("CDS_DATABASE_URL", sqlite_url)
    return app


def test_report_prints_the_figures_of_analytics_json(stored, capsys):
    assert cli.main(["report", "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    served = stored.test_client().get("/analytics.json").get_json()
    assert printed == served
    kinds = {row["kind"]: row for row in printed["kinds"]}
    assert kinds["mg-severity"]["overridden"] == 1 and kinds["mg-contributing"]["silent"] == 1


def test_report_as_csv_and_table(stored, capsys):
    assert cli.main(["report", "--format", "csv", "--since", "2026-11-01"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "kind,issued,silent,accepted,overridden,acceptanceRate,overrideReasons"
    assert "mg-severity,1,0,0,1,0.00,already-addressed=1" in lines
    assert "mg-contributing,0,1,0,0,," in lines
    assert cli.main(["report"]) == 0
    table = capsys.readouterr().out
    assert "mg-severity" in table and "already-addressed=1" in table
    assert cli.main(["report", "--since", "2026-12-01", "--format", "csv"]) == 0
    assert "mg-severity,0,0,0,0,," in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["report", "--since", "25/11/2026"], "not a date as YYYY-MM-DD"),
    (["report", "--format", "xml"], "'xml' is not one of"),
    (["report", "--since", "2026-11-25", "--until", "2026-11-01"], "--since is after --until"),
])
def test_report_refuses_bad_arguments_without_a_traceback(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("url, message", [
    ("mysql://db/cds", "mysql is not supported"),
    ("not a url", "not a database URL"),
    ("postgresql+psycopg://cds@127.0.0.1:1/cds", "cannot open the state database"),
])
def test_report_names_an_unusable_database(monkeypatch, capsys, url, message):
    monkeypatch.setenv("CDS_DATABASE_URL", url)
    assert cli.main(["report"]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# --- metrics --------------------------------------------------------------------------------------


def samples(app) -> dict[tuple[str, tuple], float]:
    text = app.test_client().get("/metrics").get_data(as_text=True)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_hooks_cards_feedback_and_auth_failures(sqlite_url):
    app = make_app(sqlite_url, silent_kinds="mg-contributing")
    before = samples(app)
    client = app.test_client()
    card = client.post(PATIENT_VIEW, json=severe_with_ppi()).get_json()["cards"][0]
    client.post(PATIENT_VIEW, json={"hook": "patient-view"})  # 400
    client.post(FEEDBACK, json={"feedback": [feedback_item(card, "accepted")]})
    client.get("/analytics.json", environ_base={"REMOTE_ADDR": "10.1.2.3"})  # refused
    after = samples(app)

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    service = "tacrolimus-magnesium-patient-view"
    assert grew("cds_hook_calls_total", service=service, status="200") == 1
    assert grew("cds_hook_calls_total", service=service, status="400") == 1
    assert grew("cds_hook_duration_seconds_count", service=service) == 2
    assert grew("cds_cards_total", kind="mg-severity", indicator="critical", silent="false") == 1
    assert grew("cds_cards_total", kind="mg-contributing", indicator="warning", silent="true") == 1
    assert grew("cds_feedback_items_total", outcome="accepted") == 1
    assert grew("cds_auth_failures_total", check="admin: not loopback") == 1


def test_metrics_count_fhir_fetches(sqlite_url):
    from cds_service.testing.fhir_stub import FhirStub

    app = make_app(sqlite_url, fhir_deadline=20.0, fhir_read_timeout=10.0, fhir_connect_timeout=5.0)  # a loaded machine
    before = samples(app)
    with FhirStub([f.patient(), f.tacrolimus(), f.magnesium(2.0, days=3)]) as stub:
        response = app.test_client().post(PATIENT_VIEW, json=f.hook_request(prefetch={}, fhir_server=stub.base_url))
    assert response.status_code == 200
    after = samples(app)
    ok = ("cds_fhir_fetches_total", (("outcome", "ok"),))
    assert after[ok] - before.get(ok, 0) >= 2  # the medication list and the magnesium results at least


# --- the page in a real browser -------------------------------------------------------------------


@pytest.fixture
def served(database_url):
    """The app on a loopback HTTP server, with eight weeks of stored cards and feedback."""
    from werkzeug.serving import make_server

    app = make_app(database_url, silent_kinds="mg-order-wasting")
    populate(app.extensions["cds"].store)
    app.test_client().post(PATIENT_VIEW, json=severe_with_ppi())  # and a hook answered just now
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()
    thread.join(timeout=10)


def test_the_page_renders_the_stored_figures_and_the_chart(chromium, served):
    page = chromium.new_page(viewport={"width": 1100, "height": 1000})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    # Scripts run at the end of the body, before the load event that goto waits for. (No
    # wait_for_function with a string: Playwright evaluates it with eval, which the page's CSP forbids.)
    response = page.goto(f"{served}/analytics", wait_until="load", timeout=60000)
    assert response.status == 200
    assert page.evaluate("() => window.cdsTrendChart !== undefined")

    rows = {row.get_attribute("data-kind"): [c.inner_text() for c in row.query_selector_all("td")]
            for row in page.query_selector_all("#kinds tbody tr")}
    assert int(rows["mg-severity"][0]) > 60  # eight weeks of about nine a week, plus today's
    assert rows["mg-order-wasting"][0] == "0" and int(rows["mg-order-wasting"][1]) > 20  # silent only
    assert "Patient declined" in rows["mg-severity"][5]
    assert "silent now" in page.inner_text('#kinds tr[data-kind="mg-order-wasting"] th')

    chart = page.evaluate("""() => {
        const chart = window.cdsTrendChart, canvas = document.getElementById('trend');
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let painted = 0;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
        return {weeks: chart.data.labels.length, series: chart.data.datasets.map(d => d.label),
                issued: chart.data.datasets[0].data.reduce((a, b) => a + b, 0),
                width: canvas.width, painted};
    }""")
    assert chart["series"] == ["Issued", "Silent", "Accepted", "Overridden"]
    assert chart["weeks"] >= 8 and chart["issued"] > 200 and chart["width"] > 300
    assert chart["painted"] > 2000  # the canvas carries lines, not a blank box

    page.select_option("#trend-kind", "mg-order-wasting")  # the chart follows the kind chosen
    assert page.evaluate("() => window.cdsTrendChart.data.datasets[0].data.every(v => v === 0)")
    assert page.evaluate("() => window.cdsTrendChart.data.datasets[1].data.some(v => v > 0)")

    page.fill('input[name="since"]', "2026-11-23")
    with page.expect_navigation(wait_until="load", timeout=60000):
        page.click('button[type="submit"]')
    assert "since=2026-11-23" in page.url
    assert page.evaluate("() => window.cdsTrendChart.data.labels") == ["2026-11-23"]

    if os.environ.get("CDS_ANALYTICS_SCREENSHOT"):  # how docs/analytics.png is made
        page.goto(f"{served}/analytics", wait_until="load", timeout=60000)
        page.screenshot(path=os.environ["CDS_ANALYTICS_SCREENSHOT"], full_page=False)
    page.close()
    assert problems == []
