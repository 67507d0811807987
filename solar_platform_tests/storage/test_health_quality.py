"""The live checks' delivery figures (`storage.health.quality.delivery`) against a reference computed
here, panel by panel, over every way a panel can be active or not: the buckets are summed per panel
from the window's range and the active panels without a bucket are counted by difference, so each
kind must land on the right side."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.health import quality

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 20, 10, 0)
END = START + timedelta(hours=1)
OLD = START - timedelta(hours=3)
# panel: (registered pmax or None if unregistered, retired, last seen or None, readings per bucket in
# the window, counted as active)
PANELS = {
    "r-full": (400.0, False, START + timedelta(minutes=59), [180] * 4, True),
    "r-half": (400.0, False, START + timedelta(minutes=59), [90] * 4, True),
    "r-silent": (400.0, False, OLD, [], True),  # registered, no bucket in the window: share 0
    "r-never": (400.0, False, None, [], True),
    "r-excess": (400.0, False, START + timedelta(minutes=59), [200] * 4, True),
    "r-one-bucket": (400.0, False, START + timedelta(minutes=14), [180], True),
    "retired-seen": ("retired", True, START + timedelta(minutes=40), [180, 180], True),
    "retired-gone": ("retired", True, OLD, [], False),
    "no-pmax": (None, False, None, [], False),  # a registry row without a Pmax, never seen
    "u-seen": ("unregistered", False, START + timedelta(minutes=59), [180] * 4, True),
    "u-seen-later": ("unregistered", False, END + timedelta(minutes=5), [], True),  # seen, only after
    "u-old": ("unregistered", False, OLD, [], False),
    "ghost": ("unregistered", False, None, [180], False),  # buckets, but neither registered nor seen
}


def _reference(interval_seconds: float, min_share: float) -> dict[str, float]:
    expected = (END - START).total_seconds() / interval_seconds
    counts = [sum(buckets) for (_, _, _, buckets, active) in PANELS.values() if active]
    shares = [min(n / expected, 1.0) for n in counts]
    half = len(shares) / 2
    median = next(((k + 1) / 20 for k in range(20) if sum(s < (k + 1) / 20 for s in shares) >= half), 1.0)
    return {"panels": len(shares), "window_start": START.isoformat(), "window_end": END.isoformat(),
            "expected_per_panel": round(expected, 2), "median_share": median, "min_share": min(shares),
            "panels_below_min_share": sum(s < min_share for s in shares),
            "panels_above_expected": sum(n > expected + 1 for n in counts)}


def test_delivery_counts_every_active_panel_once_and_no_other(fresh_settings: Settings) -> None:
    with db.engine(fresh_settings, role="migrator").begin() as conn:
        for panel, (pmax, retired, seen, buckets, _active) in PANELS.items():
            if pmax != "unregistered":
                conn.execute(text("INSERT INTO panels (panel_id, pmax_w, retired_at) VALUES (:p, :m, :r)"),
                             {"p": panel, "m": 400.0 if pmax == "retired" else pmax, "r": OLD if retired else None})
            if seen is not None:
                conn.execute(text("INSERT INTO panel_latest VALUES (:p, :f, :s, 100, 1)"),
                             {"p": panel, "f": OLD - timedelta(days=1), "s": seen})
            # the window's buckets, and one before and one after it that must not count
            rows = [(START + timedelta(minutes=15 * k), n) for k, n in enumerate(buckets)]
            rows += [(START - timedelta(minutes=15), 180), (END, 180)] if buckets else []
            if rows:
                conn.execute(text("INSERT INTO panel_energy_15min (panel_id, bucket_start, energy_wh, "
                                  "covered_seconds, readings, readings_on) VALUES (:p, :b, 1, 900, :n, :n)"),
                             [{"p": panel, "b": b, "n": n} for b, n in rows])
    with db.engine(fresh_settings).connect() as conn:
        for min_share in (0.95, 0.0):
            got = quality.delivery(conn, start=START, end=END, interval_seconds=5.0, min_share=min_share)
            assert got == _reference(5.0, min_share)
        assert quality.delivery(conn, start=START, end=END, interval_seconds=5.0, min_share=0.95)["panels"] == 9
