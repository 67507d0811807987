"""The pure panel-health classifier on a seeded fleet with injected faults."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from solar_platform.storage import health as h
from solar_platform_tests.orchestration.fleet_faults import faulty_fleet, precision_recall


def _snapshot(fleet, bucket_s: float) -> h.FleetSnapshot:
    n = len(fleet.panel_ids)
    epoch = np.array([(t - datetime(1970, 1, 1)).total_seconds() for t in fleet.times])
    last_seen = np.full(n, np.nan)
    last_status = np.full(n, -1)
    for i in range(n):
        rows = np.flatnonzero(fleet.present[:, i])
        last_seen[i] = epoch[rows[-1]]
        last_status[i] = fleet.status[rows[-1], i]
    buckets = np.floor(epoch / bucket_s).astype(int)
    first = buckets.min()
    m = buckets.max() - first + 1
    sums, counts, mins = np.zeros((m, n)), np.zeros((m, n)), np.full((m, n), np.inf)
    for t, b in enumerate(buckets - first):
        ok = fleet.present[t]
        sums[b, ok] += fleet.power_w[t, ok]
        counts[b, ok] += 1
        mins[b, ok] = np.minimum(mins[b, ok], fleet.status[t, ok])
    with np.errstate(invalid="ignore"):
        power = np.where(counts > 0, sums / counts, np.nan)
    status = np.where(counts > 0, mins, np.nan)
    return h.FleetSnapshot(np.array(fleet.panel_ids, dtype=object), fleet.pmax_w, last_seen, last_status,
                           power, status)


def test_classifier_finds_injected_faults():
    fleet = faulty_fleet(datetime(2025, 6, 1, 12, 0), panels=1000)
    result = h.classify_panels(_snapshot(fleet, 60.0), h.HealthThresholds(interval_seconds=10.0))
    for kind, truth in fleet.truth.items():
        found = {str(p) for p, k in zip(result.panel_ids, result.kinds, strict=True) if k == kind}
        precision, recall = precision_recall(found, truth)
        assert precision >= 0.99 and recall >= 0.99, (kind, precision, recall, len(found), len(truth))
    assert result.counts()["reporting"] == 1000 - 120


def test_night_is_not_underperformance_and_nothing_seen_is_not_silence():
    ids = np.array(["a", "b", "c", "d"], dtype=object)
    pmax = np.full(4, 400.0)
    power = np.tile([0.0, 0.0, 0.001, 0.0], (10, 1))
    snap = h.FleetSnapshot(ids, pmax, np.full(4, 1000.0), np.ones(4, dtype=int), power, np.ones((10, 4)))
    assert set(h.classify_panels(snap, h.HealthThresholds(interval_seconds=5)).kinds) == {"reporting"}
    never = h.FleetSnapshot(ids, pmax, np.full(4, np.nan), np.full(4, -1))
    assert set(h.classify_panels(never, h.HealthThresholds(interval_seconds=5)).kinds) == {"reporting"}
