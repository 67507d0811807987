"""Fault detection's per-minute features, read from the window summaries (`storage.health.features`).

- They equal the reference computed straight from the readings (`faults.features_from_readings`,
  what the scoring bench feeds the rules), late and re-sent readings included.
- Read minute by minute with a kept cache (the sensor's way: each minute read once), they equal a
  cold read of the whole lookback.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Connection, text

from solar_platform.settings import DEFAULT_SITE_ID, Settings
from solar_platform.storage import db
from solar_platform.storage.health import faults as fault_rules
from solar_platform.storage.health import features
from solar_platform.storage.health.features import FeatureCache, load_features
from solar_platform_tests.orchestration.conftest import register_panels
from solar_platform_tests.stream_writes import write_as_stream

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 20, 10, 0)
PANELS = ["h-1", "h-2", "h-3"]
FIELDS = ("count", "count_on", "mean_on", "min_on", "max_on", "min_power", "max_power", "last_on", "last_off",
          "first_time")


def _readings() -> tuple[list[tuple[str, float, int, datetime]], np.ndarray, np.ndarray, np.ndarray]:
    """30 minutes at 5 s, statuses flipping, h-3 silent for 10 minutes; also as (ticks x panels) arrays."""
    rng = np.random.default_rng(3)
    ticks = 360
    power = rng.uniform(0, 400, (ticks, len(PANELS))).round(3)
    status = (rng.random((ticks, len(PANELS))) > 0.2).astype(np.int8)
    present = np.ones((ticks, len(PANELS)), dtype=bool)
    present[120:240, 2] = False
    rows = [(panel, float(power[t, i]), int(status[t, i]), START + timedelta(seconds=5 * t))
            for t in range(ticks) for i, panel in enumerate(PANELS) if present[t, i]]
    return rows, power, status, present


def _thresholds(settings: Settings) -> fault_rules.FaultThresholds:
    return fault_rules.FaultThresholds.from_settings(settings)


def _assert_same(a: fault_rules.BucketFeatures, b: fault_rules.BucketFeatures) -> None:
    order = [b.panel_ids.index(pid) for pid in a.panel_ids]
    assert a.panel_ids == [b.panel_ids[i] for i in order]
    np.testing.assert_array_equal(a.bucket_start, b.bucket_start)
    for name in FIELDS:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name)[:, order], rtol=1e-9, err_msg=name)


def test_features_from_summaries_equal_the_reference_and_read_each_minute_once(fresh_settings: Settings) -> None:
    settings = fresh_settings.model_copy(update={"interval_seconds": 5.0})
    rows, power, status, present = _readings()
    register_panels(settings, dict.fromkeys(PANELS, 400.0))
    # In the order the world sends them: most on time, some a batch late, some sent twice (changed).
    late = rows[500:540]
    again = [(p, w + 1.0, s, t) for p, w, s, t in rows[900:920]]
    arrivals = [t for *_, t in rows] + [t + timedelta(minutes=2) for *_, t in late] + [
        t + timedelta(minutes=1) for *_, t in again]
    write_as_stream(settings, rows + late + again, batch_seconds=5.0, commit_delay_seconds=1.0, arrivals=arrivals)
    for i, (p, _w, s, t) in enumerate(rows):  # the reference sees the re-sent values, as panelData holds them
        if 900 <= i < 920:
            tick, column = int((t - START).total_seconds() // 5), PANELS.index(p)
            power[tick, column] += 1.0
            assert status[tick, column] == s
    th = _thresholds(settings)
    until = (START + timedelta(minutes=30)).replace(tzinfo=UTC).timestamp()

    with db.engine(settings).connect() as conn:
        cold = load_features(conn, th, until_s=until)
        # Minute by minute with one cache, as the sensor evaluates.
        cache = FeatureCache()
        for minute in range(10, 31):
            warm = load_features(conn, th, until_s=(START + timedelta(minutes=minute)).replace(tzinfo=UTC).timestamp(),
                                 cache=cache)
    _assert_same(warm, cold)

    times = (np.array([START.replace(tzinfo=UTC).timestamp() + 5 * t for t in range(power.shape[0])]))
    reference = fault_rules.features_from_readings(
        PANELS, np.full(len(PANELS), 400.0), times, power, status, present,
        bucket_start=cold.bucket_start, step_seconds=th.step_seconds)
    _assert_same(cold, reference)


def test_features_read_as_text_keep_unusual_ids_minutes_without_status_1_and_sliced_windows(
        fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The windows come back as text lines led by the panel id: ids the contract allows that look
    like numbers or NULLs stay ids; a minute with no status-1 reading has no status-1 mean or
    extremes (NULL in SQL, NaN here); a window longer than the packet is read again in slices and
    counted once."""
    settings = fresh_settings.model_copy(update={"interval_seconds": 5.0})
    panels = ["nan", "NULL", "007", "1e3", "a:b.c_d-e", "inf", "Z" * 64]
    rng = np.random.default_rng(7)
    ticks = 120  # 10 minutes
    power = rng.uniform(0, 400, (ticks, len(panels)))  # full doubles: the text must round-trip them
    status = (rng.random((ticks, len(panels))) > 0.3).astype(np.int8)
    status[24:36, 0] = 0  # "nan": minute 2 with status 0 only
    status[:, 1] = 0  # "NULL": never on
    present = np.ones((ticks, len(panels)), dtype=bool)
    present[60:84, 2] = False  # "007": silent for two minutes
    rows = [(panel, float(power[t, i]), int(status[t, i]), START + timedelta(seconds=5 * t))
            for t in range(ticks) for i, panel in enumerate(panels) if present[t, i]]
    register_panels(settings, dict.fromkeys(panels, 400.0))
    write_as_stream(settings, rows, batch_seconds=5.0, commit_delay_seconds=1.0)
    th = _thresholds(settings)
    until = (START + timedelta(minutes=10)).replace(tzinfo=UTC).timestamp()

    with db.engine(settings).connect() as conn:
        length = conn.execute(text("SELECT @@SESSION.group_concat_max_len")).scalar()
        whole = load_features(conn, th, until_s=until)
        monkeypatch.setattr(features, "_TEXT_BYTES_LIMIT", 300)  # ~3 lines: every window is sliced
        sliced = load_features(conn, th, until_s=until)
        assert conn.execute(text("SELECT @@SESSION.group_concat_max_len")).scalar() == length  # put back
    _assert_same(sliced, whole)
    times = np.array([START.replace(tzinfo=UTC).timestamp() + 5 * t for t in range(ticks)])
    reference = fault_rules.features_from_readings(
        panels, np.full(len(panels), 400.0), times, power, status, present,
        bucket_start=whole.bucket_start, step_seconds=th.step_seconds)
    _assert_same(whole, reference)
    assert sorted(whole.panel_ids) == sorted(panels)
    nan_col, null_col = whole.panel_ids.index("nan"), whole.panel_ids.index("NULL")
    slot = int(np.flatnonzero(whole.bucket_start == START.replace(tzinfo=UTC).timestamp() + 120)[0])
    assert whole.count[slot, nan_col] == 12 and whole.count_on[slot, nan_col] == 0
    assert np.isnan(whole.mean_on[slot, nan_col]) and np.isnan(whole.min_on[slot, nan_col])
    assert np.isnan(whole.last_on[:, null_col]).all() and (whole.count[:, null_col] > 0).any()


def test_registry_and_last_seen_read_as_text_equal_the_rows(fresh_settings: Settings,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry and every panel's stored last seen come back as text lines, in slices of the
    fleet: they equal the rows as pymysql reads them, NULL rated power and retired panels included,
    sliced or whole; a panel id a DBA wrote with a space (the contract never sends one) cannot be a
    line, so that read falls back to the rows, and gives the same."""
    settings = fresh_settings.model_copy(update={"interval_seconds": 5.0})
    panels = ["nan", "007", "r-1", "r-2", "seen-only", *(f"p-{k}" for k in range(40))]
    rows = [(panel, 100.0 + k, 1, START + timedelta(seconds=5 * (k % 7), milliseconds=k))
            for k, panel in enumerate(panels)]
    register_panels(settings, {p: 400.0 + k / 3 for k, p in enumerate(panels) if p != "seen-only"})
    write_as_stream(settings, rows, batch_seconds=5.0, commit_delay_seconds=1.0)
    with db.engine(settings, role="migrator").begin() as conn:
        conn.execute(text("INSERT INTO panels (panel_id, pmax_w) VALUES ('seen-only', NULL)"))
        conn.execute(text("UPDATE panels SET retired_at = UTC_TIMESTAMP(3) WHERE panel_id IN ('r-1', 'r-2')"))
    registry_types = {"panel_id": features.pa.string(), "pmax_w": features.pa.float64(),
                      "retired": features.pa.int8(), "site_id": features.pa.string()}
    seen_types = {"panel_id": features.pa.string(), "last_seen": features.pa.float64()}

    def as_rows(columns: dict[str, np.ndarray]) -> list[tuple[object, ...]]:
        return sorted(zip(*(c.tolist() for c in columns.values()), strict=True), key=lambda row: str(row[0]))

    def read_both(conn: Connection) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        return (as_rows(features._read_rows(conn, features._REGISTRY, features._REGISTRY_COLUMNS, registry_types, 45)),
                as_rows(features._read_rows(conn, features._LAST_SEEN, features._LAST_SEEN_COLUMNS, seen_types, 45)))

    with db.engine(settings).connect() as conn:
        expected_registry = sorted(((pid, np.nan if w is None else float(w), int(gone), site)
                                    for pid, w, gone, site in conn.execute(text(features._REGISTRY))),
                                   key=lambda row: row[0])
        expected_seen = sorted(((pid, float(seen)) for pid, seen in conn.execute(text(features._LAST_SEEN))),
                               key=lambda row: row[0])
        assert len(expected_registry) == len(panels) and len(expected_seen) == len(panels)
        whole = read_both(conn)
        monkeypatch.setattr(features, "_TEXT_BYTES_LIMIT", 200)  # a few lines a slice
        sliced = read_both(conn)
    for registry, seen in (whole, sliced):
        np.testing.assert_equal(registry, expected_registry)  # NaN equals NaN here
        assert seen == expected_seen
    assert [row[3] for row in whole[0]] == [DEFAULT_SITE_ID] * len(panels)

    with db.engine(settings, role="migrator").begin() as conn:
        conn.execute(text("INSERT INTO panels (panel_id, pmax_w) VALUES ('dba edit', 250)"))
    with db.engine(settings).connect() as conn:
        fallback, _ = read_both(conn)
        th = _thresholds(settings)
        feats = load_features(conn, th, until_s=(START + timedelta(minutes=1)).replace(tzinfo=UTC).timestamp())
    assert ("dba edit", 250.0, 0, DEFAULT_SITE_ID) in fallback and len(fallback) == len(panels) + 1
    assert "dba edit" in feats.panel_ids and "r-1" not in feats.panel_ids and "r-2" not in feats.panel_ids
    assert np.isnan(feats.pmax_w[feats.panel_ids.index("seen-only")])
    assert feats.pmax_w[feats.panel_ids.index("007")] == 400.0 + 1 / 3
    assert feats.last_seen[feats.panel_ids.index("p-3")] == (START + timedelta(seconds=5 * (8 % 7), milliseconds=8)
                                                            ).replace(tzinfo=UTC).timestamp()
