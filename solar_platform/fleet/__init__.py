"""The simulated panel fleet: the seed's power model (numpy), fleet state, and the Kafka publisher.

Entry points for other parts (streaming tests, Dagster):
- `simulate_readings(settings, start=, end=, panels=, seed=)`: what fast-forward publishes, no Kafka;
- `fast_forward(settings, start=, end=, ...)` and `run_live(settings, ...)`: publish to Kafka (live mode
  spools what Kafka cannot take: `fleet.live`, `fleet.spool`).
"""

from __future__ import annotations

from solar_platform.fleet.live import run_live
from solar_platform.fleet.publisher import FleetError, PublishSummary, expected_messages, fast_forward
from solar_platform.fleet.simulation import FleetReadings, FleetSimulator, simulate_readings
from solar_platform.power_model import PowerModel, power_curve

__all__ = [
    "FleetError",
    "FleetReadings",
    "FleetSimulator",
    "PowerModel",
    "PublishSummary",
    "expected_messages",
    "fast_forward",
    "power_curve",
    "run_live",
    "simulate_readings",
]
