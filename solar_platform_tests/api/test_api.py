"""Every endpoint's happy and error paths, on the real MariaDB through the read-only user."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from solar_platform.api.app import create_app
from solar_platform.settings import Settings
from solar_platform_tests.api.fleet_data import (
    END,
    INTERVAL_S,
    MALFORMED,
    NEVER_SEEN,
    NOW,
    OFFLINE_PANEL,
    PANELS,
    ROLLED_DAY,
    SILENT_PANEL,
    Fleet,
)
from solar_platform_tests.streaming.cases import HOSTILE_PANEL_IDS

pytestmark = pytest.mark.integration

P1 = "panel-0001"


def error_of(response) -> str:
    body = response.get_json()
    assert set(body) == {"error", "detail"}, body
    assert response.mimetype == "application/json"
    return body["error"]


# ---------------------------------------------------------------- legacy route (the seed project's)
def test_legacy_route_keeps_the_seed_shape(client: FlaskClient, fleet: Fleet) -> None:
    response = client.get(f"/power/{P1}")
    assert response.status_code == 200
    rows = response.get_json()
    assert isinstance(rows, list) and len(rows) == 1000  # the default limit: the most recent 1000 rows
    for row in rows:
        assert list(row) == ["Panel_id", "power_panel", "current_status", "time_data"]
        assert row["Panel_id"] == P1
        assert isinstance(row["power_panel"], float) and row["current_status"] in (0, 1)
        assert isinstance(row["time_data"], str) and row["time_data"].endswith("Z")
    times = [datetime.fromisoformat(r["time_data"]) for r in rows]
    assert times == sorted(times)
    assert rows[-1]["time_data"] == (END - timedelta(seconds=INTERVAL_S)).isoformat() + ".000Z"
    assert rows[-1]["power_panel"] == pytest.approx(float(fleet.power[P1][-1]))


def test_legacy_route_bounds(client: FlaskClient) -> None:
    rows = client.get(f"/power/{P1}?from=2024-05-02T11:00:00Z&to=2024-05-02T11:01:00Z").get_json()
    assert [r["time_data"] for r in rows][:2] == ["2024-05-02T11:00:00.000Z", "2024-05-02T11:00:05.000Z"]
    assert len(rows) == 12
    assert len(client.get(f"/power/{P1}?from=2024-05-01T00:00:00Z&limit=10000").get_json()) == 10000
    assert client.get("/power/nobody").get_json() == []  # the seed answered an unknown panel with []
    for bad in ("limit=0", "limit=10001", "limit=abc", "from=yesterday", "bogus=1"):
        response = client.get(f"/power/{P1}?{bad}")
        assert response.status_code == 400, bad
        assert error_of(response) == "bad_request"


# ---------------------------------------------------------------- panels
def test_panels_list_and_paging(client: FlaskClient, fleet: Fleet) -> None:
    body = client.get("/api/v1/panels").get_json()
    by_id = {p["panel_id"]: p for p in body["items"]}
    assert list(by_id) == [*PANELS, NEVER_SEEN] and body["next_cursor"] is None
    assert by_id[P1]["health"] == "reporting" and by_id[P1]["current_status"] == 1
    assert by_id[SILENT_PANEL]["health"] == "silent"
    assert by_id[OFFLINE_PANEL]["health"] == "offline" and by_id[OFFLINE_PANEL]["current_status"] == 0
    assert by_id[NEVER_SEEN]["health"] == "unknown" and by_id[NEVER_SEEN]["last_seen"] is None
    assert by_id[P1]["pmax_w"] == pytest.approx(fleet.pmax[P1])
    assert by_id[P1]["last_seen"] == "2024-05-03T12:59:55.000Z"

    seen, cursor = [], None
    while True:
        page = client.get("/api/v1/panels", query_string={"limit": 2, **({"cursor": cursor} if cursor else {})})
        seen += [p["panel_id"] for p in page.get_json()["items"]]
        cursor = page.get_json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [*PANELS, NEVER_SEEN]
    assert client.get("/api/v1/panels?limit=101").status_code == 400
    assert error_of(client.get("/api/v1/panels?cursor=***")) == "bad_request"


def test_panel_detail(client: FlaskClient, fleet: Fleet) -> None:
    body = client.get(f"/api/v1/panels/{P1}").get_json()
    assert body["latest_reading"] == {
        "time": "2024-05-03T12:59:55.000Z",
        "power_w": pytest.approx(float(fleet.power[P1][-1])),
        "status": 1,
    }
    # Lifetime = the daily rollups (the pruned day, the rolled day) + the buckets after them.
    expected = fleet.pruned_day_wh[P1] + fleet.energy(P1, datetime(2024, 5, 1), datetime(2024, 5, 4))
    assert body["lifetime_energy_wh"] == pytest.approx(expected, rel=1e-9)
    assert client.get(f"/api/v1/panels/{NEVER_SEEN}").get_json()["latest_reading"] is None
    response = client.get("/api/v1/panels/nobody")
    assert response.status_code == 404 and error_of(response) == "not_found"
    assert client.get("/api/v1/panels/" + "x" * 65).status_code == 400


@pytest.mark.parametrize("name", sorted(HOSTILE_PANEL_IDS))
def test_a_malformed_panel_id_is_a_400_on_every_route(client: FlaskClient, name: str) -> None:
    """The contract's own rule (contracts.PANEL_ID_PATTERN), in paths and in the alerts filter."""
    panel_id = HOSTILE_PANEL_IDS[name]
    encoded = quote(panel_id, safe="")
    routes = [f"/power/{encoded}", *(f"/api/v1/panels/{encoded}{tail}" for tail in ("", "/readings", "/windows",
                                                                                    "/energy"))]
    for route in routes:
        response = client.get(route)
        # An encoded `/` still splits the path for the router: no route (404) rather than a bad id.
        expected = 404 if "/" in panel_id else 400
        assert response.status_code == expected, (route, response.status_code)
        assert error_of(response) == ("not_found" if expected == 404 else "bad_request")
    response = client.get("/api/v1/alerts", query_string={"panel_id": panel_id})
    assert response.status_code == 400 and error_of(response) == "bad_request"


# ---------------------------------------------------------------- readings and windows
def test_readings_keyset_pages_cover_the_range_exactly(client: FlaskClient, fleet: Fleet) -> None:
    params = {"from": "2024-05-02T11:00:00Z", "to": "2024-05-02T12:00:00+00:00", "limit": 300}
    items, cursor, pages = [], None, 0
    while True:
        body = client.get(
            f"/api/v1/panels/{P1}/readings", query_string={**params, **({"cursor": cursor} if cursor else {})}
        ).get_json()
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(items) == 720 == len({i["time"] for i in items})
    assert items[0]["time"] == "2024-05-02T11:00:00.000Z" and items[-1]["time"] == "2024-05-02T11:59:55.000Z"
    t = fleet.epochs[P1]
    mask = (t >= datetime.fromisoformat("2024-05-02T11:00:00+00:00").timestamp()) & (
        t < datetime.fromisoformat("2024-05-02T12:00:00+00:00").timestamp()
    )
    assert [i["power_w"] for i in items] == pytest.approx(fleet.power[P1][mask].tolist())
    assert {i["status"] for i in items} == {1}


def test_readings_defaults_csv_and_errors(client: FlaskClient) -> None:
    body = client.get(f"/api/v1/panels/{P1}/readings?limit=5").get_json()
    assert body["from"] == "2024-05-02T13:00:00.000Z" and body["to"] == "2024-05-03T13:00:00.000Z"
    assert body["items"][0]["time"] == "2024-05-02T13:00:00.000Z" and body["next_cursor"]

    response = client.get(f"/api/v1/panels/{P1}/readings?from=2024-05-02T11:00:00Z&to=2024-05-02T11:00:20Z&format=csv")
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["panel_id", "time", "power_w", "status"] and len(rows) == 5
    assert rows[1][:2] == [P1, "2024-05-02T11:00:00.000Z"]


def test_readings_csv_exports_the_whole_range(client: FlaskClient, fleet: Fleet) -> None:
    """A day is 17,280 readings: several internal pages, all of them in the file, in order, once."""
    from solar_platform.api.v1 import CSV_PAGE_ROWS

    response = client.get(
        f"/api/v1/panels/{P1}/readings",
        query_string={"from": "2024-05-02T00:00:00Z", "to": "2024-05-03T00:00:00Z", "format": "csv", "limit": 10},
    )
    assert response.status_code == 200 and response.is_streamed
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))[1:]
    t = fleet.epochs[P1]
    mask = (t >= datetime(2024, 5, 2, tzinfo=UTC).timestamp()) & (t < datetime(2024, 5, 3, tzinfo=UTC).timestamp())
    assert len(rows) == int(mask.sum()) == 17280 > 3 * CSV_PAGE_ROWS
    assert [r[1] for r in rows] == sorted({r[1] for r in rows})
    assert rows[0][1] == "2024-05-02T00:00:00.000Z" and rows[-1][1] == "2024-05-02T23:59:55.000Z"
    assert [float(r[2]) for r in rows] == pytest.approx(fleet.power[P1][mask].tolist())
    # A cursor resumes an export after the last row a client got.
    first = client.get(
        f"/api/v1/panels/{P1}/readings?from=2024-05-02T00:00:00Z&to=2024-05-02T00:01:00Z&limit=4"
    ).get_json()
    rest = client.get(
        f"/api/v1/panels/{P1}/readings?from=2024-05-02T00:00:00Z&to=2024-05-02T00:01:00Z&format=csv"
        f"&cursor={first['next_cursor']}"
    ).get_data(as_text=True)
    assert rest.splitlines()[1].split(",")[1] == "2024-05-02T00:00:20.000Z" and len(rest.splitlines()) == 1 + 8

    too_long = client.get(f"/api/v1/panels/{P1}/readings?from=2024-04-01T00:00:00Z&to=2024-04-09T00:00:00Z")
    assert too_long.status_code == 422 and error_of(too_long) == "range_too_long"
    backwards = client.get(f"/api/v1/panels/{P1}/readings?from=2024-05-02T00:00:00Z&to=2024-05-01T00:00:00Z")
    assert backwards.status_code == 400 and error_of(backwards) == "bad_request"
    for bad in ("from=2024-13-01", "limit=-1", "format=xml", "cursor=%%%", "from=1900-01-01T00:00:00Z"):
        assert client.get(f"/api/v1/panels/{P1}/readings?{bad}").status_code == 400, bad
    missing = client.get("/api/v1/panels/nobody/readings")
    assert missing.status_code == 404 and error_of(missing) == "not_found"


def test_windows(client: FlaskClient, fleet: Fleet) -> None:
    body = client.get(f"/api/v1/panels/{P1}/windows?from=2024-05-02T11:29:00Z&to=2024-05-02T11:31:00Z").get_json()
    assert [w["window_start"] for w in body["items"]] == [
        "2024-05-02T11:29:00.000Z",
        "2024-05-02T11:29:30.000Z",
        "2024-05-02T11:30:00.000Z",
        "2024-05-02T11:30:30.000Z",
    ]
    assert all(w["reading_count"] == 6 for w in body["items"])
    t, p = fleet.epochs[P1], fleet.power[P1]
    start = datetime.fromisoformat("2024-05-02T11:30:00+00:00").timestamp()
    assert body["items"][2]["mean_power_w"] == pytest.approx(float(p[(t >= start) & (t < start + 30)].mean()))
    paged = client.get(f"/api/v1/panels/{P1}/windows?from=2024-05-02T11:29:00Z&to=2024-05-02T11:31:00Z&limit=3")
    assert paged.get_json()["next_cursor"] is not None
    assert (
        client.get(f"/api/v1/panels/{P1}/windows?from=2024-01-01T00:00:00Z&to=2024-03-01T00:00:00Z").status_code == 422
    )
    assert client.get("/api/v1/panels/nobody/windows").status_code == 404


# ---------------------------------------------------------------- energy
def _values(body: dict) -> dict[str, float | None]:
    return {v["date"]: v["value"] for v in body["values"]}


def test_panel_energy_by_day_uses_rollups_then_buckets(client: FlaskClient, fleet: Fleet) -> None:
    body = client.get(f"/api/v1/panels/{P1}/energy?from=2024-04-30&to=2024-05-04&unit=DAY").get_json()
    assert body["unit"] == "Wh" and body["time_unit"] == "DAY" and body["time_zone"] == "UTC"
    values = _values(body)
    assert list(values) == [f"2024-0{d}T00:00:00.000Z" for d in ("4-30", "5-01", "5-02", "5-03")]
    assert values["2024-04-30T00:00:00.000Z"] == pytest.approx(fleet.pruned_day_wh[P1])  # only in the rollup
    for day in (ROLLED_DAY, date(2024, 5, 2), date(2024, 5, 3)):  # the rollup, then buckets
        assert values[f"{day.isoformat()}T00:00:00.000Z"] == pytest.approx(fleet.day_energy(P1, day), rel=1e-9)
    assert body["total_wh"] == pytest.approx(sum(values.values()))
    # A day at the seed's model: Pmax x D x integral of 1/cosh(x)^30 over one window, about 0.45 Pmax Wh.
    assert 0.40 * fleet.pmax[P1] < values["2024-05-02T00:00:00.000Z"] < 0.50 * fleet.pmax[P1]
    coverage = {v["date"][:10]: v["coverage"] for v in body["values"]}
    assert coverage["2024-05-02"] == pytest.approx(1.0)
    # Today: readings up to 12:59:55 of the 13 h so far.
    assert coverage["2024-05-03"] == pytest.approx((13 * 3600 - 5) / (13 * 3600))


def test_quarter_hours_and_hours_add_up_to_the_day(client: FlaskClient, fleet: Fleet) -> None:
    day = client.get(f"/api/v1/panels/{P1}/energy?from=2024-05-02&to=2024-05-03&unit=DAY").get_json()
    hours = client.get(f"/api/v1/panels/{P1}/energy?from=2024-05-02&to=2024-05-03&unit=HOUR").get_json()
    quarters = client.get(
        f"/api/v1/panels/{P1}/energy?from=2024-05-02&to=2024-05-03&unit=QUARTER_OF_AN_HOUR"
    ).get_json()
    assert len(hours["values"]) == 24 and hours["values"][11]["date"] == "2024-05-02T11:00:00.000Z"
    assert len(quarters["values"]) == 96 and [v["date"][11:16] for v in quarters["values"][44:48]] == [
        "11:00",
        "11:15",
        "11:30",
        "11:45",
    ]
    total = day["values"][0]["value"]
    assert sum(v["value"] for v in quarters["values"]) == pytest.approx(total, rel=1e-9)
    assert sum(v["value"] for v in hours["values"]) == pytest.approx(total, rel=1e-9)
    assert quarters["values"][45]["value"] == pytest.approx(
        fleet.energy(P1, datetime(2024, 5, 2, 11, 15), datetime(2024, 5, 2, 11, 30)), rel=1e-9
    )
    # The fleet's quarter-hours add up to its day too.
    fleet_day = client.get("/api/v1/fleet/energy?from=2024-05-02&to=2024-05-03&unit=DAY").get_json()
    fleet_quarters = client.get("/api/v1/fleet/energy?from=2024-05-02&to=2024-05-03&unit=QUARTER_OF_AN_HOUR")
    assert sum(v["value"] for v in fleet_quarters.get_json()["values"]) == pytest.approx(
        fleet_day["total_wh"], rel=1e-9
    )


def test_energy_coarse_units_and_limits(client: FlaskClient, fleet: Fleet) -> None:
    week = client.get(f"/api/v1/panels/{P1}/energy?from=2024-04-01&to=2024-06-01&unit=WEEK").get_json()
    weeks = _values(week)
    assert list(weeks)[0] == "2024-04-01T00:00:00.000Z" and len(weeks) == 9  # weeks start on Monday
    assert [d for d, v in weeks.items() if v is not None] == ["2024-04-29T00:00:00.000Z"]
    month = client.get(f"/api/v1/panels/{P1}/energy?from=2020-01-01&to=2030-01-01&unit=MONTH").get_json()
    assert len(month["values"]) == 120
    assert [v["date"][:7] for v in month["values"] if v["value"] is not None] == ["2024-04", "2024-05"]
    year = client.get(f"/api/v1/panels/{P1}/energy?from=2000-01-01&to=2099-01-01&unit=YEAR").get_json()
    assert _values(year)["2024-01-01T00:00:00.000Z"] == pytest.approx(month["total_wh"])
    assert _values(year)["2030-01-01T00:00:00.000Z"] is None  # the future: no value, no coverage
    assert year["values"][-1]["coverage"] is None

    response = client.get(f"/api/v1/panels/{P1}/energy?from=2024-04-29&to=2024-05-05&unit=DAY&format=csv")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert response.mimetype == "text/csv" and rows[0] == ["date", "value_wh", "coverage"] and len(rows) == 1 + 6
    assert rows[1] == ["2024-04-29T00:00:00.000Z", "", "0.0"] and rows[-1][1:] == ["", ""]

    for query, status in (
        ("from=2024-01-01&to=2024-03-01&unit=QUARTER_OF_AN_HOUR", 422),
        ("from=2024-01-01&to=2024-02-15&unit=HOUR", 422),
        ("from=2022-01-01&to=2024-01-03&unit=DAY", 422),
        ("from=2024-01-01&to=2024-01-31&unit=HOUR", 200),
        ("unit=FORTNIGHT", 400),
        ("unit=day", 400),
        ("tz=Mars/Olympus", 400),
        ("tz=", 400),
    ):
        response = client.get(f"/api/v1/panels/{P1}/energy?{query}")
        assert response.status_code == status, query
        if status != 200:
            error_of(response)
    bad_zone = client.get("/api/v1/fleet/energy?tz=Europe/Madird").get_json()
    assert bad_zone["error"] == "bad_request" and "unknown time zone 'Europe/Madird'" in str(bad_zone["detail"])
    assert client.get("/api/v1/panels/nobody/energy").status_code == 404


def test_energy_in_a_local_time_zone(client: FlaskClient, fleet: Fleet) -> None:
    """Madrid's days (UTC+2 in May) are the buckets from 22:00 UTC; no rollup is in that zone."""
    body = client.get(f"/api/v1/panels/{P1}/energy?from=2024-05-01&to=2024-05-03&unit=DAY&tz=Europe/Madrid").get_json()
    assert body["time_zone"] == "Europe/Madrid" and body["from"] == "2024-04-30T22:00:00.000Z"
    values = _values(body)
    assert list(values) == [f"2024-05-0{d}T00:00:00.000+02:00" for d in (1, 2, 3)]
    assert values["2024-05-02T00:00:00.000+02:00"] == pytest.approx(
        fleet.energy(P1, datetime(2024, 5, 1, 22), datetime(2024, 5, 2, 22)), rel=1e-9
    )
    # The first Madrid day starts two hours before the readings: its coverage says so.
    assert body["values"][0]["coverage"] == pytest.approx(22 / 24)


def test_fleet_energy_is_the_sum_of_panels(client: FlaskClient, fleet: Fleet) -> None:
    fleet_body = client.get("/api/v1/fleet/energy?from=2024-04-30&to=2024-05-04&unit=DAY").get_json()
    fleet_days = _values(fleet_body)
    panel_days = [
        _values(client.get(f"/api/v1/panels/{pid}/energy?from=2024-04-30&to=2024-05-04").get_json()) for pid in PANELS
    ]
    for day, value in fleet_days.items():
        assert value == pytest.approx(sum(p.get(day) or 0.0 for p in panel_days), rel=1e-9), day
    # Fleet coverage: panel-seconds over the day x 5 registered panels (one never reported).
    day2 = next(v for v in fleet_body["values"] if v["date"].startswith("2024-05-02"))
    assert day2["coverage"] == pytest.approx(4 / 5)
    assert client.get("/api/v1/fleet/energy?from=2024-01-01&to=2025-06-01&unit=DAY").status_code == 422


# ---------------------------------------------------------------- overview, alerts, health
def test_fleet_overview(client: FlaskClient, fleet: Fleet) -> None:
    body = client.get("/api/v1/fleet/overview").get_json()
    assert body["as_of"] == "2024-05-03T13:00:00.000Z"
    assert body["panels_expected"] == 5
    assert body["panels_reporting"] == 3  # panel-0003 is silent, panel-0005 never reported
    assert body["panels_online"] == 2  # panel-0004's newest reading has status 0
    current = sum(float(fleet.power[pid][-1]) for pid in PANELS if pid != SILENT_PANEL)
    assert body["current_power_w"] == pytest.approx(current)
    today = sum(fleet.day_energy(pid, date(2024, 5, 3)) for pid in PANELS)
    assert body["time_zone"] == "UTC" and body["today_energy_wh"] == pytest.approx(today, rel=1e-9)
    assert 0.7 < body["today_coverage"] < 0.8  # 4 of 5 registered panels, one silent since 12:30
    lifetime = sum(fleet.pruned_day_wh.values()) + sum(
        fleet.energy(pid, datetime(2024, 5, 1), datetime(2024, 5, 4)) for pid in PANELS
    )
    assert body["lifetime_energy_wh"] == pytest.approx(lifetime, rel=1e-9)


def test_alerts(client: FlaskClient) -> None:
    open_alerts = client.get("/api/v1/alerts").get_json()["items"]
    assert {(a["panel_id"], a["kind"]) for a in open_alerts} == {(SILENT_PANEL, "silent"), (OFFLINE_PANEL, "offline")}
    resolved = client.get("/api/v1/alerts?state=resolved").get_json()["items"]
    assert [(a["kind"], a["resolved_at"]) for a in resolved] == [("underperforming", "2024-05-01T12:10:00.000Z")]
    assert len(client.get("/api/v1/alerts?state=all").get_json()["items"]) == 3
    assert len(client.get("/api/v1/alerts?state=all&since=2024-05-02T00:00:00Z").get_json()["items"]) == 2
    assert len(client.get("/api/v1/alerts?state=all&since=2024-05-01T12:00:00Z").get_json()["items"]) == 3
    assert [a["panel_id"] for a in client.get("/api/v1/alerts?kind=offline").get_json()["items"]] == [OFFLINE_PANEL]
    first = client.get("/api/v1/alerts?state=all&limit=2").get_json()
    second = client.get(f"/api/v1/alerts?state=all&limit=2&cursor={first['next_cursor']}").get_json()
    ids = [a["id"] for a in first["items"] + second["items"]]
    assert len(ids) == 3 == len(set(ids)) and ids == sorted(ids, reverse=True) and second["next_cursor"] is None
    for bad in ("state=closed", "limit=101", "since=soon", "kind=broken"):
        assert client.get(f"/api/v1/alerts?{bad}").status_code == 400, bad


def test_health(api_settings: Settings) -> None:
    """The heartbeat is the stream's own last progress row; the malformed messages are its dead letters."""
    from sqlalchemy import text

    from solar_platform.storage.db import engine

    with engine(api_settings).connect() as conn:
        heartbeat = conn.execute(text("SELECT MAX(recorded_at) FROM stream_progress")).scalar().replace(tzinfo=UTC)
    fresh = create_app(api_settings, rate_per_second=None, clock=lambda: heartbeat + timedelta(seconds=2))
    body = fresh.test_client().get("/api/v1/health").get_json()
    assert body["status"] == "ok" and body["database_reachable"] is True
    assert body["stream"]["heartbeat_age_seconds"] == pytest.approx(2.0)
    assert body["stream"]["last_heartbeat"] == heartbeat.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert body["dead_letters_total"] == len(MALFORMED) and body["dead_letters_last_24h"] == len(MALFORMED)
    # Everything the stream committed is summarized (it wrote what waited when it stopped) ...
    assert (body["stream"]["summaries_waiting_batches"], body["stream"]["summaries_behind_seconds"]) == (0, None)
    # ... and a batch waiting for its round says so, with how long it has waited.
    committed = (heartbeat - timedelta(seconds=8)).replace(tzinfo=None)
    with engine(api_settings, role="migrator").begin() as conn:
        conn.execute(text("INSERT INTO stream_unsummarized (query_id, batch_id, earliest_time, readings, recorded_at) "
                          "VALUES ('q', 1, :t, 10, :t)"), {"t": committed})
    try:
        waiting = fresh.test_client().get("/api/v1/health").get_json()["stream"]
    finally:
        with engine(api_settings, role="migrator").begin() as conn:
            conn.execute(text("DELETE FROM stream_unsummarized"))
    assert waiting["summaries_waiting_batches"] == 1 and waiting["summaries_behind_seconds"] == pytest.approx(10.0)

    later = create_app(api_settings, rate_per_second=None, clock=lambda: heartbeat + timedelta(hours=1))
    stale = later.test_client().get("/api/v1/health").get_json()
    assert stale["status"] == "degraded" and stale["stream"]["stale"] is True

    unreachable = api_settings.model_copy(update={"mysql_port": 1})
    down = create_app(unreachable, rate_per_second=None).test_client().get("/api/v1/health")
    assert down.status_code == 503 and down.get_json()["status"] == "down"
    assert create_app(unreachable, rate_per_second=None).test_client().get("/api/v1/panels").status_code == 503


# ---------------------------------------------------------------- cross-cutting
def test_token_auth(api_settings: Settings) -> None:
    secured = create_app(
        api_settings.model_copy(update={"api_token": "s3cret"}), rate_per_second=None, clock=lambda: NOW
    ).test_client()
    response = secured.get(f"/power/{P1}?limit=1")
    assert response.status_code == 401 and error_of(response) == "unauthorized"
    assert secured.get("/api/v1/panels", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert secured.get("/api/v1/panels", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert secured.get("/api/v1/panels", headers={"X-API-Key": "s3cret"}).status_code == 200
    assert secured.get("/api/v1/health").status_code == 200  # open for probes
    spec = secured.get("/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    assert "401" in spec["paths"]["/api/v1/panels"]["get"]["responses"]
    assert spec["paths"]["/api/v1/panels"]["get"]["security"] == [{"bearerToken": []}, {"apiKey": []}]
    assert not spec["paths"]["/api/v1/health"]["get"].get("security")


def test_rate_limit(api_settings: Settings) -> None:
    limited = create_app(api_settings, rate_per_second=0.5, burst=2, clock=lambda: NOW).test_client()
    assert [limited.get("/api/v1/alerts").status_code for _ in range(3)] == [200, 200, 429]
    response = limited.get("/api/v1/alerts")
    assert error_of(response) == "rate_limited" and int(response.headers["Retry-After"]) >= 1
    assert limited.get("/api/v1/health").status_code == 200


def test_rate_limit_comes_from_settings(api_settings: Settings) -> None:
    strict = api_settings.model_copy(update={"api_rate_per_second": 0.5, "api_rate_burst": 1})
    limited = create_app(strict, clock=lambda: NOW).test_client()
    assert [limited.get("/api/v1/alerts").status_code for _ in range(2)] == [200, 429]
    unlimited = create_app(api_settings.model_copy(update={"api_rate_per_second": 0}), clock=lambda: NOW)
    assert {unlimited.test_client().get("/api/v1/alerts").status_code for _ in range(150)} == {200}


def test_unknown_route_and_method_use_the_error_shape(client: FlaskClient) -> None:
    assert error_of(client.get("/api/v2/panels")) == "not_found"
    response = client.post("/api/v1/panels")
    assert response.status_code == 405 and error_of(response) == "method_not_allowed"


def test_openapi_and_docs(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert {"/power/{panel_id}", "/api/v1/panels/{panel_id}/readings", "/api/v1/fleet/energy", "/api/v1/health"} <= set(
        spec["paths"]
    )
    readings = spec["paths"]["/api/v1/panels/{panel_id}/readings"]["get"]
    assert {"200", "400", "404", "422", "429"} <= set(readings["responses"])
    assert "text/csv" in readings["responses"]["200"]["content"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/api/v1/fleet/overview" in docs.get_data(as_text=True)
