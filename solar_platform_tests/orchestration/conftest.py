"""Helpers for the orchestration tests: the platform's definitions bound to a fresh database and topic."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import dagster as dg
import pytest
from sqlalchemy import text

from solar_platform.orchestration.definitions import build_defs
from solar_platform.orchestration.resources import SolarSettingsResource
from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform_tests.orchestration.fakes import OfflineProcessControl


def defs_for(settings: Settings, **resource_overrides: object) -> dg.Definitions:
    """`build_defs` with every resource pointed at `settings`."""
    return build_defs(SolarSettingsResource.for_settings(settings), **resource_overrides)


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
def offline_processes() -> OfflineProcessControl:
    return OfflineProcessControl()
