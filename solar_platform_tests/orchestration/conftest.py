"""Helpers for the orchestration tests: Definitions bound to a fresh database and topic."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import dagster as dg
import pytest
from sqlalchemy import text

from solar_platform.orchestration import definitions as d
from solar_platform.orchestration.resources import OfflineProcessControl, SolarSettingsResource
from solar_platform.settings import Settings
from solar_platform.storage import db


def test_defs(settings: Settings, **resource_overrides: object) -> dg.Definitions:
    """The platform's definitions with every resource pointed at `settings`."""
    resources = d.build_resources(SolarSettingsResource.for_settings(settings), **resource_overrides)
    return dg.Definitions(assets=d.ASSETS, asset_checks=d.live_checks, jobs=d.all_jobs, schedules=d.all_schedules,
                          sensors=d.all_sensors, resources=resources)


test_defs.__test__ = False  # a helper, not a test


def insert_readings(settings: Settings, rows: Iterable[tuple[str, float, int, datetime]]) -> int:
    rows = list(rows)
    with db.engine(settings, role="migrator").begin() as conn:
        for start in range(0, len(rows), 20000):
            conn.execute(text("INSERT INTO panelData (Panel_id, power_panel, current_status, time_data) "
                              "VALUES (:p, :w, :s, :t)"),
                         [{"p": p, "w": w, "s": s, "t": t} for p, w, s, t in rows[start:start + 20000]])
    return len(rows)


def register_panels(settings: Settings, pmax: dict[str, float]) -> None:
    with db.engine(settings, role="migrator").begin() as conn:
        conn.execute(text("INSERT INTO panels (panel_id, pmax_w) VALUES (:p, :m) "
                          "ON DUPLICATE KEY UPDATE pmax_w = VALUES(pmax_w)"),
                     [{"p": p, "m": m} for p, m in pmax.items()])


@pytest.fixture
def offline_processes(request: pytest.FixtureRequest) -> OfflineProcessControl:
    return OfflineProcessControl(namespace=request.node.nodeid)
