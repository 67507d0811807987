"""Readings of whole days, their numpy recompute, and the API figures the history tests compare."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta

import numpy as np
from flask.testing import FlaskClient

from solar_platform import kafka_clients
from solar_platform.api.app import create_app
from solar_platform.contracts import Reading
from solar_platform.settings import Settings
from solar_platform.storage.energy import trapezoid_buckets
from solar_platform.storage.periods import local_day_span

PANELS = ("panel-a", "panel-b", "panel-c")


def day_readings(day: date, first_hour: float, last_hour: float, step_s: float,
                 panels: Sequence[str] = PANELS) -> list[Reading]:
    """A sunny day's curve for each panel (peak at 12:00 UTC, panel k at 300 + 20 k W), every `step_s`
    from `first_hour` (inclusive) to `last_hour` (exclusive)."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    readings = []
    for k, panel in enumerate(panels):
        t = first_hour * 3600
        while t < last_hour * 3600:
            power = max(0.0, (300.0 + 20 * k) * math.sin(math.pi * (t / 3600 - 6) / 12))
            readings.append(Reading(panel, round(power, 3), 1 if power > 0 else 0, start + timedelta(seconds=t)))
            t += step_s
    return readings


def publish(settings: Settings, readings: Iterable[Reading]) -> None:
    producer = kafka_clients.producer(settings, "fleet", acks="all")
    try:
        for reading in readings:
            producer.send(settings.topic, key=reading.panel_id.encode(),
                          value=json.dumps(reading.to_message()).encode())
        producer.flush()
    finally:
        producer.close()


def numpy_buckets(readings: Iterable[Reading], max_gap_s: float) -> dict[str, dict[int, float]]:
    """The oracle: each panel's Wh per 15-min bucket (epoch s), the last reading of a (panel, time) winning."""
    points: dict[str, dict[float, float]] = {}
    for r in readings:
        points.setdefault(r.panel_id, {})[r.time_utc.timestamp()] = r.power_w
    result = {}
    for panel, series in points.items():
        times = np.array(list(series))
        result[panel] = {b: wh for b, (wh, _) in trapezoid_buckets(times, np.array(list(series.values())),
                                                                    max_gap_s).items()}
    return result


def day_energy(buckets: dict[int, float], day: date, tz: str = "UTC") -> float:
    a, b = (moment.replace(tzinfo=UTC).timestamp() for moment in local_day_span(day, tz))
    return sum(wh for start, wh in buckets.items() if a <= start < b)


def api_client(settings: Settings, now: datetime) -> FlaskClient:
    """The API as deployed (read-only user), its clock pinned to `now`."""
    app = create_app(settings, rate_per_second=None, clock=lambda: now)
    app.testing = True
    return app.test_client()


def api_day(client: FlaskClient, day: date, panel: str | None = None) -> float:
    """The API's DAY figure of `day` (site zone), for a panel or the fleet."""
    route = "/api/v1/fleet/energy" if panel is None else f"/api/v1/panels/{panel}/energy"
    body = client.get(route, query_string={"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat(),
                                          "unit": "DAY"}).get_json()
    (value,) = body["values"]
    return float(value["value"] or 0.0)


def api_lifetime(client: FlaskClient, panel: str | None = None) -> float:
    if panel is None:
        return float(client.get("/api/v1/fleet/overview").get_json()["lifetime_energy_wh"])
    return float(client.get(f"/api/v1/panels/{panel}").get_json()["lifetime_energy_wh"])
