"""A seeded synthetic fleet with known injected faults, for the panel-health tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from solar_platform.fleet.model import power_curve


@dataclass
class FaultyFleet:
    panel_ids: list[str]
    pmax_w: np.ndarray
    times: list[datetime]  # naive UTC
    power_w: np.ndarray  # (T, N)
    status: np.ndarray  # (T, N)
    present: np.ndarray  # (T, N) bool: reading sent
    truth: dict[str, set[str]]  # kind -> panel ids

    def rows(self) -> list[tuple[str, float, int, datetime]]:
        out = []
        for t, moment in enumerate(self.times):
            for i in np.flatnonzero(self.present[t]):
                out.append((self.panel_ids[i], float(self.power_w[t, i]), int(self.status[t, i]), moment))
        return out


def faulty_fleet(end: datetime, *, panels: int = 1000, minutes: int = 30, interval_s: float = 10.0,
                 faults_per_kind: int = 40, seed: int = 7) -> FaultyFleet:
    """`panels` panels at mid-production for `minutes` ending at `end`, with injected faults:
    offline (latest status 0, power 0), silent (stopped sending 5+ minutes ago), underperforming
    (35-55 % of their rated output the whole time). Every other panel is healthy, with 3 % noise.
    """
    rng = np.random.default_rng(seed)
    ids = [f"hp-{i:05d}" for i in range(panels)]
    pmax = 400.0 * rng.uniform(0.8, 1.2, panels)
    steps = int(minutes * 60 / interval_s)
    times = [end - timedelta(seconds=interval_s * (steps - 1 - k)) for k in range(steps)]
    epoch = np.array([(t - datetime(1970, 1, 1)).total_seconds() for t in times])
    # a 4 h window centred on the middle of the sample: the fleet is well into production
    window = 4 * 3600.0
    start = epoch.mean() - window / 2
    power = power_curve(epoch[:, None], start, window, pmax[None, :]) * rng.normal(1.0, 0.03, (steps, panels))
    status = np.ones((steps, panels), dtype=int)
    present = np.ones((steps, panels), dtype=bool)
    kinds = rng.permutation(panels)[: 3 * faults_per_kind].reshape(3, faults_per_kind)
    offline, silent, under = ([ids[i] for i in k] for k in kinds)
    off_since = rng.integers(steps // 2, steps - 1, faults_per_kind)
    for i, since in zip(kinds[0], off_since, strict=True):
        status[since:, i] = 0
        power[since:, i] = 0.0
    silent_after = rng.integers(steps // 3, steps - int(300 / interval_s) - 1, faults_per_kind)
    for i, since in zip(kinds[1], silent_after, strict=True):
        present[since:, i] = False
    power[:, kinds[2]] *= rng.uniform(0.35, 0.55, faults_per_kind)[None, :]
    # a few healthy panels blip offline earlier and recover: not alerts
    blips = rng.choice(np.setdiff1d(np.arange(panels), kinds.ravel()), 30, replace=False)
    status[steps // 4, blips] = 0
    power[steps // 4, blips] = 0.0
    return FaultyFleet(ids, pmax, times, np.round(power, 3), status, present,
                       {"offline": set(offline), "silent": set(silent), "underperforming": set(under)})


def precision_recall(found: set[str], truth: set[str]) -> tuple[float, float]:
    hits = len(found & truth)
    return (hits / len(found) if found else 1.0), (hits / len(truth) if truth else 1.0)
