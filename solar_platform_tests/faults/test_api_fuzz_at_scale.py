"""Schemathesis at scale: at least 1,000 generated requests against the API over a database with data.

The quick variant (`api/test_openapi_fuzz.py`) runs 25 examples per operation in every test run;
this one keeps generating, seeded round after round, until `MIN_CASES` requests went through. The
database holds the API tests' fleet (`api/fleet_data.py`: four panels, 2.5 days at 5 s, one gone
silent, one offline, one never seen) with every derived table, the daily rollups, alerts and dead
letters; the API is served as deployed (the read-only user), with no rate limit and the clock pinned
to the data's "now". Checks: no 5xx, status codes, content types and bodies the spec allows.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase
from sqlalchemy import text

from solar_platform.api.app import create_app
from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.rebuild import rebuild
from solar_platform_tests.api.fleet_data import (
    END,
    NOW,
    OFFLINE_PANEL,
    PANELS,
    SILENT_PANEL,
    START,
    Fleet,
    build_fleet,
)
from solar_platform_tests.api.test_openapi_fuzz import CHECKS
from solar_platform_tests.conftest import isolated
from solar_platform_tests.faults.harness import Figures

pytestmark = [pytest.mark.fault, pytest.mark.integration]

MIN_CASES = 1_000
EXAMPLES_PER_ROUND = 60  # per operation; operations with few distinct inputs stop earlier
MAX_ROUNDS = 12


def _load(settings: Settings, fleet: Fleet) -> None:
    """The API tests' fleet, written straight to panelData (the real pipeline loads it in `api/`, at
    ~1 min of Spark), then every derived table and the daily rollups rebuilt from it, plus the rows
    Dagster writes (panel Pmax, alerts) and two dead letters."""
    readings = [{"p": pid, "w": float(w), "s": int(s), "t": _naive(t)} for pid in PANELS
                for t, w, s in zip(fleet.epochs[pid], fleet.power[pid], fleet.status[pid], strict=True)]
    with db.engine(settings, role="stream").begin() as conn:
        conn.execute(text(f"INSERT INTO `{db.READINGS}` (Panel_id, power_panel, current_status, time_data) "
                          "VALUES (:p, :w, :s, :t)"), readings)
        conn.execute(text(f"INSERT INTO `{db.DEAD_LETTERS}` (kafka_topic, kafka_partition, kafka_offset, payload, "
                          "reason, kafka_timestamp) VALUES (:topic, 0, :offset, :payload, 'invalid_json', :t)"),
                     [{"topic": settings.topic, "offset": i, "payload": b"not json", "t": END} for i in range(2)])
    rebuild(settings, START, END)
    with db.engine(settings).begin() as conn:
        conn.execute(text("UPDATE panels SET pmax_w = :w WHERE panel_id = :p"),
                     [{"p": pid, "w": w} for pid, w in fleet.pmax.items()])
        conn.execute(text("INSERT INTO panel_alerts (panel_id, kind, state, opened_at, resolved_at, last_checked, "
                          "detail) VALUES (:p, :k, :s, :o, :r, :c, :d)"), [
            {"p": "panel-0002", "k": "underperforming", "s": "resolved", "o": datetime(2024, 5, 1, 11, 30),
             "r": datetime(2024, 5, 1, 12, 10), "c": datetime(2024, 5, 1, 12, 10), "d": "P/Pmax 0.4 of median"},
            {"p": OFFLINE_PANEL, "k": "offline", "s": "open", "o": datetime(2024, 5, 3, 12, 1), "r": None,
             "c": datetime(2024, 5, 3, 12, 59), "d": "latest status 0"},
            {"p": SILENT_PANEL, "k": "silent", "s": "open", "o": datetime(2024, 5, 3, 12, 31), "r": None,
             "c": datetime(2024, 5, 3, 12, 59), "d": "no reading for 30 min"},
        ])


def _naive(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC).replace(tzinfo=None)


@pytest.fixture(scope="module")
def data_client(stack_settings: Settings) -> Iterator[FlaskClient]:
    for settings in isolated(stack_settings, "fuzz"):
        _load(settings, build_fleet())
        app = create_app(settings, rate_per_second=None, clock=lambda: NOW)
        app.testing = True
        yield app.test_client()


@pytest.mark.timeout(300)
def test_a_thousand_generated_requests_conform(data_client: FlaskClient, tmp_path: Path) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", data_client.application)
    operations = [result.ok() for result in schema.get_all_operations()]
    statuses: list[int] = []
    per_operation: Counter[str] = Counter()
    started = time.monotonic()
    rounds = 0
    while len(statuses) < MIN_CASES:
        rounds += 1
        assert rounds <= MAX_ROUNDS, f"only {len(statuses)} cases after {MAX_ROUNDS} rounds"
        for operation in operations:
            if len(statuses) >= MIN_CASES and rounds > 1:  # every operation had its round; enough
                break

            @hypothesis.given(case=operation.as_strategy())
            @hypothesis.settings(
                max_examples=EXAMPLES_PER_ROUND,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @hypothesis.seed(rounds)  # seeded: the same requests on every run
            def check(case: schemathesis.Case) -> None:
                statuses.append(case.call_and_validate(checks=CHECKS).status_code)
                per_operation[case.operation.label] += 1

            check()
    seconds = time.monotonic() - started
    figures = Figures("schemathesis against the API on data")
    figures["cases"] = len(statuses)
    figures["operations"] = len(operations)
    figures["rounds"] = rounds
    figures["seconds"] = seconds
    figures["server_errors"] = sum(1 for s in statuses if s >= 500)
    figures["statuses"] = dict(sorted(Counter(statuses).items()))
    figures["min_cases_per_operation"] = min(per_operation.values())
    figures.record(tmp_path)
    assert len(statuses) >= MIN_CASES
    assert {200, 400} <= set(statuses)
    assert figures.values["server_errors"] == 0
