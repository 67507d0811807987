"""Energy in the site's time zone across a DST change, and a gap that credits nothing.

Readings go into panelData and the derived tables are built by the platform's own recompute
(`storage.energy`), as `solar-platform rebuild` does after a bulk import. Constant power makes
every expected figure exact: Wh = W x credited hours.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from solar_platform.api.app import create_app
from solar_platform.settings import Settings
from solar_platform.storage import db, energy

pytestmark = pytest.mark.integration

STEP_S = 30
FIRST, LAST = datetime(2024, 10, 26, 20), datetime(2024, 10, 28, 0)  # Madrid leaves DST at 01:00 UTC on the 27th
GAP_FROM, GAP_TO = datetime(2024, 10, 27, 10), datetime(2024, 10, 27, 14)  # panel "gappy" is silent 4 h


def _readings() -> list[dict]:
    rows, moment = [], FIRST
    while moment <= LAST:
        rows.append({"p": "steady", "w": 200.0, "t": moment})
        if not GAP_FROM < moment < GAP_TO:
            rows.append({"p": "gappy", "w": 100.0, "t": moment})
        moment += timedelta(seconds=STEP_S)
    return rows


@pytest.fixture
def madrid(fresh_settings: Settings) -> Settings:
    settings = fresh_settings.model_copy(update={"interval_seconds": STEP_S, "site_timezone": "Europe/Madrid"})
    with db.engine(settings, role="migrator").begin() as conn:
        conn.execute(text("INSERT INTO panelData VALUES (:p, :w, 1, :t)"), _readings())
        conn.execute(text("INSERT INTO panels (panel_id, pmax_w) VALUES ('steady', 250), ('gappy', 250)"))
        energy.recompute_buckets(conn, FIRST, LAST + timedelta(minutes=15), settings.energy_max_gap_seconds)
        energy.recompute_latest(conn)
    return settings


def test_dst_day_gap_and_coverage(madrid: Settings) -> None:
    client = create_app(madrid, rate_per_second=None, clock=lambda: LAST.replace(tzinfo=UTC)).test_client()
    day = {"from": "2024-10-26T22:00:00Z", "to": "2024-10-27T23:00:00Z"}  # 27 Oct in Madrid: 25 hours

    steady = client.get("/api/v1/panels/steady/energy", query_string={**day, "unit": "DAY"}).get_json()
    assert steady["time_zone"] == "Europe/Madrid"  # the site's zone by default
    assert [v["date"] for v in steady["values"]] == ["2024-10-27T00:00:00.000+02:00"]
    assert steady["values"][0]["value"] == pytest.approx(200.0 * 25, rel=1e-12)
    assert steady["values"][0]["coverage"] == pytest.approx(1.0)

    gappy = client.get("/api/v1/panels/gappy/energy", query_string={**day, "unit": "DAY"}).get_json()
    assert gappy["values"][0]["value"] == pytest.approx(100.0 * 21, rel=1e-12)  # the 4 h gap credits nothing
    assert gappy["values"][0]["coverage"] == pytest.approx(21 / 25)

    hours = client.get("/api/v1/panels/gappy/energy", query_string={**day, "unit": "HOUR"}).get_json()["values"]
    assert len(hours) == 25 and [h["date"][11:13] for h in hours[:4]] == ["00", "01", "02", "02"]
    # 11:00-15:00 local (10-14 UTC): no energy, no coverage. The 11:00 hour holds the last reading
    # before the gap, so it has a (zero) value; the hours with no reading at all have none.
    silent = [h for h in hours if not h["coverage"]]
    assert [h["date"] for h in silent] == [f"2024-10-27T{h}:00:00.000+01:00" for h in (11, 12, 13, 14)]
    assert [h["value"] for h in silent] == [0.0, None, None, None]
    quarters = client.get("/api/v1/panels/gappy/energy", query_string={**day, "unit": "QUARTER_OF_AN_HOUR"})
    assert len(quarters.get_json()["values"]) == 100
    assert sum(q["value"] or 0.0 for q in quarters.get_json()["values"]) == pytest.approx(2100.0, rel=1e-9)

    fleet = client.get("/api/v1/fleet/energy", query_string={**day, "unit": "DAY"}).get_json()["values"][0]
    assert fleet["value"] == pytest.approx(5000.0 + 2100.0, rel=1e-12)
    assert fleet["coverage"] == pytest.approx((25 + 21) / 50)

    # The same readings by UTC day: 27 Oct is 24 h there.
    utc = client.get(
        "/api/v1/panels/steady/energy",
        query_string={"from": "2024-10-27", "to": "2024-10-28", "unit": "DAY", "tz": "UTC"},
    ).get_json()
    assert [(v["date"], v["value"]) for v in utc["values"]] == [("2024-10-27T00:00:00.000Z", pytest.approx(4800.0))]
    # Today in Madrid (28 Oct, from 23:00 UTC): one hour so far.
    overview = client.get("/api/v1/fleet/overview").get_json()
    assert overview["time_zone"] == "Europe/Madrid"
    assert overview["today_energy_wh"] == pytest.approx(200.0 + 100.0, rel=1e-12)
