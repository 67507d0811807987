"""Helpers for the fault-detection tests: a simulated fleet with injected faults, replayed through the rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from solar_platform.fleet.simulation import FleetReadings, simulate_readings
from solar_platform.fleet.state import FleetState
from solar_platform.settings import Settings, load_settings
from solar_platform.storage.health import faults as fault_rules

DAY = datetime(2026, 11, 20, tzinfo=UTC)  # a backfill day: production 06:00-18:00 UTC, peak at noon


def fleet_settings(base: Settings | None = None, **overrides: object) -> Settings:
    """The seed's fleet (10 % off / 50 % back every 5 s), pinned against a developer's `.env`."""
    values: dict[str, object] = {"interval_seconds": 5.0, "offline_probability_pct": 10.0,
                                 "recovery_probability_pct": 50.0, "production_start": None, "seed": 42,
                                 "site_timezone": "UTC", "pmax_nominal_w": 400.0, "curve_exponent": 30.0}
    return (base or load_settings()).model_copy(update=values | overrides)


@dataclass
class Replayed:
    readings: FleetReadings
    pmax: np.ndarray
    features: fault_rules.BucketFeatures
    events: list[fault_rules.AlertEvent]

    def opened(self) -> dict[tuple[str, str], float]:
        out: dict[tuple[str, str], float] = {}
        for e in self.events:
            if e.decision.action == "open":
                out.setdefault((e.decision.panel_id, e.decision.kind), e.time)
        return out

    def resolved(self) -> dict[tuple[str, str], float]:
        return {(e.decision.panel_id, e.decision.kind): e.time for e in self.events if e.decision.action == "resolve"}


def simulate(settings: Settings, *, panels: int, start: datetime, end: datetime, faults: dict | None = None
             ) -> tuple[FleetReadings, np.ndarray]:
    readings = simulate_readings(settings, start=start, end=end, panels=panels, seed=settings.seed, history=True,
                                 faults=faults)
    return readings, FleetState.create(settings, panels=panels, seed=settings.seed).pmax_w


def replay_fleet(settings: Settings, *, panels: int, start: datetime, end: datetime, faults: dict | None = None,
                 thresholds: fault_rules.FaultThresholds | None = None) -> Replayed:
    readings, pmax = simulate(settings, panels=panels, start=start, end=end, faults=faults)
    th = thresholds or fault_rules.FaultThresholds.from_settings(settings)
    buckets = int((end - start).total_seconds() // th.step_seconds)
    feats = fault_rules.features_from_readings(readings.panel_ids, pmax, readings.times_ms / 1000.0, readings.power_w,
                                     readings.status, readings.present,
                                     bucket_start=start.timestamp() + th.step_seconds * np.arange(buckets),
                                     step_seconds=th.step_seconds)
    return Replayed(readings, pmax, feats, fault_rules.replay(feats, th, settle_seconds=settings.health_settle_seconds))


def at(hours: float) -> datetime:
    return DAY + timedelta(hours=hours)


def one_fault_each(start: str = "10:00") -> dict:
    """One named panel per kind, all starting at `start` (UTC on DAY)."""
    kinds = ("offline", "silent", "zero_production", "stuck", "underperforming", "over_range")
    return {"seed": 1, "faults": [{"kind": kind, "panels": [f"panel-{i:06d}"], "start": start}
                                  for i, kind in enumerate(kinds)]}
