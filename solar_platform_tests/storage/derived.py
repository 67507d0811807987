"""The invariant every derived table lives by: what is kept equals a recompute from panelData.

Shared by the energy tests and the end-to-end stream tests: the kept tables are compared row for
row (floats within 1e-9) with SQL recomputes, and the energy recompute with the numpy reference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection, text

from solar_platform.contracts import PANEL_ID, POWER, STATUS, TIME_MICROS
from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.energy import recompute_buckets_select, trapezoid_buckets
from solar_platform.storage.stream.readings import Readings, from_arrow
from solar_platform.storage.windows import COLUMNS as WINDOW_COLUMNS
from solar_platform.storage.windows import recompute_windows_select

EPOCH = datetime(1970, 1, 1)


def readings_of(rows: Sequence[tuple[str, float, int, datetime]]) -> Readings:
    """(panel, power, status, naive UTC time) rows as a batch's readings, in Kafka order (a later
    row wins over an earlier one with the same panel and time, as a later offset does)."""
    micros = [int((moment - EPOCH) / timedelta(microseconds=1)) for _, _, _, moment in rows]
    return from_arrow(pa.table({
        PANEL_ID: pa.array([row[0] for row in rows], pa.string()),
        POWER: pa.array([float(row[1]) for row in rows], pa.float64()),
        STATUS: pa.array([int(row[2]) for row in rows], pa.int8()),
        TIME_MICROS: pa.array(micros, pa.int64()),
        "partition": pa.array([0] * len(rows), pa.int32()),
        "offset": pa.array(range(len(rows)), pa.int64()),
    }))


def table_rows(conn: Connection, sql: str, params: dict[str, object] | None = None) -> dict[tuple, tuple]:
    return {tuple(row[:2]): tuple(row[2:]) for row in conn.execute(text(sql), params or {})}


def assert_tables_match(a: dict[tuple, tuple], b: dict[tuple, tuple], label: str) -> None:
    only_a, only_b = sorted(set(a) - set(b), key=str)[:4], sorted(set(b) - set(a), key=str)[:4]
    assert a.keys() == b.keys(), f"{label}: only kept {only_a}, only fresh {only_b}"
    for key in a:
        for x, y in zip(a[key], b[key], strict=True):
            if isinstance(x, float) or isinstance(y, float):
                assert x is not None and y is not None and math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9), \
                    f"{label} {key}: {a[key]} != {b[key]}"
            else:
                assert x == y, f"{label} {key}: {a[key]} != {b[key]}"


def assert_derived_equal_recompute_on(conn: Connection, max_gap_s: float) -> None:
    """The kept tables == a recompute from panelData, and the recompute == the numpy reference."""
    conn.commit()  # read what was committed, and leave no transaction open behind
    far = {"a": datetime(2000, 1, 1), "b": datetime(2100, 1, 1)}
    kept = table_rows(conn, "SELECT panel_id, bucket_start, energy_wh, covered_seconds, readings, readings_on, peak_w, "
                        "min_w FROM panel_energy_15min WHERE readings > 0 OR ABS(covered_seconds) > 1e-6")
    fresh = table_rows(conn, recompute_buckets_select(max_gap_s), far)
    assert_tables_match(kept, fresh, "panel buckets")

    raw = conn.execute(text("SELECT Panel_id, TIMESTAMPDIFF(MICROSECOND, '1970-01-01', time_data) / 1e6, "
                            "power_panel FROM panelData ORDER BY Panel_id, time_data")).all()
    by_panel: dict[str, list[tuple[float, float]]] = {}
    for pid, t, w in raw:
        by_panel.setdefault(pid, []).append((float(t), float(w)))
    for pid, points in by_panel.items():
        arr = np.array(points)
        for bucket, (energy, covered) in trapezoid_buckets(arr[:, 0], arr[:, 1], max_gap_s).items():
            key = (pid, EPOCH + timedelta(seconds=bucket))
            assert math.isclose(fresh[key][0], energy, rel_tol=1e-9, abs_tol=1e-9), key
            assert math.isclose(fresh[key][1], covered, rel_tol=1e-9, abs_tol=1e-6), key

    fleet = table_rows(conn, "SELECT bucket_start, 0, energy_wh, covered_seconds, readings, readings_on "
                         "FROM fleet_energy_15min WHERE readings > 0 OR ABS(covered_seconds) > 1e-6")
    summed = table_rows(conn, "SELECT bucket_start, 0, SUM(energy_wh), SUM(covered_seconds), SUM(readings), "
                          "SUM(readings_on) FROM panel_energy_15min GROUP BY bucket_start "
                          "HAVING SUM(readings) > 0 OR ABS(SUM(covered_seconds)) > 1e-6")
    assert_tables_match({k: (float(v[0]), float(v[1]), int(v[2]), int(v[3])) for k, v in fleet.items()},
                        {k: (float(v[0]), float(v[1]), int(v[2]), int(v[3])) for k, v in summed.items()}, "fleet")

    windows = table_rows(
        conn, "SELECT Panel_id, window_start, total_power, window_end, reading_count FROM panelDataAgg")
    # An independent spelling of the seed's window: integer epoch seconds floored to 30.
    window = "FROM_UNIXTIME(0) - INTERVAL 0 SECOND + INTERVAL (UNIX_TIMESTAMP(time_data) DIV 30 * 30) SECOND"
    fresh_windows = table_rows(conn, (
        f"SELECT Panel_id, {window} AS ws, AVG(power_panel), {window} + INTERVAL 30 SECOND, COUNT(*) "
        "FROM panelData GROUP BY Panel_id, ws"))
    assert_tables_match(windows, fresh_windows, "windows")
    # Every summary column, against the recompute the exact path and the rebuild use.
    summary = ", ".join(WINDOW_COLUMNS[5:])
    kept_summary = table_rows(conn, f"SELECT Panel_id, window_start, {summary} FROM panelDataAgg")
    fresh_summary = _by_window(conn)
    assert_tables_match(kept_summary, fresh_summary, "window summaries")

    latest = table_rows(conn, "SELECT panel_id, first_seen, last_seen, power_panel, current_status FROM panel_latest")
    fresh_latest = table_rows(conn, (
        "SELECT e.Panel_id, e.f, e.l, d.power_panel, d.current_status FROM (SELECT Panel_id, MIN(time_data) f, "
        "MAX(time_data) l FROM panelData GROUP BY Panel_id) e JOIN panelData d "
        "ON d.Panel_id = e.Panel_id AND d.time_data = e.l"))
    assert_tables_match(latest, fresh_latest, "latest")
    conn.commit()



def assert_derived_equal_recompute(settings: Settings) -> None:
    """The invariant on a whole database, with the settings' max gap."""
    with db.engine(settings).connect() as conn:
        assert_derived_equal_recompute_on(conn, settings.energy_max_gap_seconds)


def _by_window(conn: Connection) -> dict[tuple, tuple]:
    """The summary recompute keyed by (panel, window start), its summary columns only."""
    rows = conn.execute(text(recompute_windows_select("panelData d", "1 = 1"))).all()
    return {(row[0], row[2]): tuple(row[5:]) for row in rows}
