"""A realistic small fleet written into a migrated database, following the contract and the seed project's model.

Four panels report every 5 s from 2024-05-01 00:00 to NOW (2024-05-03 13:00 UTC), producing
`Pmax / cosh(x)^30` during a daily 1-h window opening at 11:00 UTC (Pmax = 400 W x U(0.8, 1.2)).
- panel-0003 falls silent at 12:30 on the last day; panel-0004 goes offline (power 0, status 0) at 12:00;
- panel-0005 is registered but never reported;
- 2024-04-30 exists only as rollup rows whose buckets were folded into them (its readings and buckets
  are gone), 2024-05-01
  is rolled up by the platform's daily rollup (from the buckets), 2024-05-02 and 2024-05-03 are not
  rolled up yet (the API must sum their buckets);
- two malformed messages on the topic, which the stream turns into dead letters;
- alerts, as the panel-health sensor writes them.

Readings reach MySQL through the real pipeline: every reading is published to Kafka as the contract's
JSON keyed by panel id, and the Spark job (available-now) writes panelData, the 30-s means in
panelDataAgg, the 15-minute energy buckets, panel_latest, the dead letters and its progress rows.
The daily rollup of 2024-05-01 is the platform's own (`storage.rollups.roll_up_days`); the other
tables Dagster owns (panels, alerts) are written with SQL in the shapes Dagster writes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
from sqlalchemy import Engine, text

from solar_platform import kafka_clients
from solar_platform.contracts import Reading
from solar_platform.settings import Settings
from solar_platform.storage.db import engine
from solar_platform.storage.energy import trapezoid_buckets
from solar_platform.storage.rollups import roll_up_days

NOW = datetime(2024, 5, 3, 13, 0, tzinfo=UTC)
START = datetime(2024, 5, 1)
END = datetime(2024, 5, 3, 13, 0)  # exclusive, naive UTC
INTERVAL_S = 5
MAX_GAP_S = 3 * INTERVAL_S  # the default energy max gap
WINDOW_OPENS = 11 * 3600
WINDOW_SECONDS = 3600
PANELS = ("panel-0001", "panel-0002", "panel-0003", "panel-0004")
NEVER_SEEN = "panel-0005"
SILENT_PANEL, SILENT_FROM = "panel-0003", datetime(2024, 5, 3, 12, 30)
OFFLINE_PANEL, OFFLINE_FROM = "panel-0004", datetime(2024, 5, 3, 12, 0)
PRUNED_DAY = date(2024, 4, 30)
ROLLED_DAY = date(2024, 5, 1)


@dataclass
class Fleet:
    pmax: dict[str, float]
    epochs: dict[str, np.ndarray] = field(default_factory=dict)  # seconds since epoch, per panel
    power: dict[str, np.ndarray] = field(default_factory=dict)
    status: dict[str, np.ndarray] = field(default_factory=dict)
    pruned_day_wh: dict[str, float] = field(default_factory=dict)

    def buckets(self, panel_id: str) -> dict[int, tuple[float, float]]:
        """The energy model's own numpy oracle: bucket start (epoch s) -> (Wh, covered s)."""
        return trapezoid_buckets(self.epochs[panel_id], self.power[panel_id], MAX_GAP_S)

    def energy(self, panel_id: str, start: datetime, end: datetime) -> float:
        """Energy (Wh) of the 15-min buckets starting in `[start, end)`."""
        return sum(e for b, (e, _) in self.buckets(panel_id).items() if epoch(start) <= b < epoch(end))

    def covered(self, panel_id: str, start: datetime, end: datetime) -> float:
        return sum(c for b, (_, c) in self.buckets(panel_id).items() if epoch(start) <= b < epoch(end))

    def day_energy(self, panel_id: str, day: date) -> float:
        start = datetime.combine(day, datetime.min.time())
        return self.energy(panel_id, start, start + timedelta(days=1))


def epoch(moment: datetime) -> float:
    return moment.replace(tzinfo=UTC).timestamp() if moment.tzinfo is None else moment.timestamp()


def model_power(t: np.ndarray, pmax: float) -> np.ndarray:
    """The seed project's power model: Pmax / cosh(x)^30 over the daily window."""
    seconds_of_day = np.mod(t, 86400)
    x = (seconds_of_day - WINDOW_OPENS) / WINDOW_SECONDS - 0.5
    return pmax / np.cosh(x) ** 30


def build_fleet(random_seed: int = 7) -> Fleet:
    rng = np.random.default_rng(random_seed)
    fleet = Fleet(pmax={pid: float(400.0 * rng.uniform(0.8, 1.2)) for pid in (*PANELS, NEVER_SEEN)})
    t_all = np.arange(epoch(START), epoch(END), INTERVAL_S, dtype=float)
    for pid in PANELS:
        t = t_all[t_all < epoch(SILENT_FROM)] if pid == SILENT_PANEL else t_all
        p = model_power(t, fleet.pmax[pid]) * rng.uniform(0.97, 1.03, size=t.size)
        s = np.ones(t.size, dtype=int)
        if pid == OFFLINE_PANEL:
            off = t >= epoch(OFFLINE_FROM)
            p[off], s[off] = 0.0, 0
        fleet.epochs[pid], fleet.power[pid], fleet.status[pid] = t, np.round(p, 3), s
        fleet.pruned_day_wh[pid] = round(float(rng.uniform(300, 350)), 3)
    return fleet


def _naive(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC).replace(tzinfo=None)


MALFORMED = (b'{"Panel_id": "panel-0001", "power_panel": "abc"}', b"not json")


def publish_fleet(settings: Settings, fleet: Fleet) -> None:
    """Every reading as the contract's JSON, keyed by panel id, plus the malformed messages."""
    producer = kafka_clients.producer(
        settings,
        "fleet",
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        batch_size=256 * 1024,
    )
    for pid in PANELS:
        key = pid.encode()
        for t, w, s in zip(fleet.epochs[pid], fleet.power[pid], fleet.status[pid], strict=True):
            reading = Reading(pid, float(w), int(s), datetime.fromtimestamp(t, UTC))
            producer.send(settings.topic, key=key, value=json.dumps(reading.to_message()).encode())
    for payload in MALFORMED:
        producer.send(settings.topic, value=payload)
    producer.flush(120)
    producer.close()


def load_fleet(settings: Settings, fleet: Fleet) -> None:
    """Fill a migrated database: readings through Kafka and the Spark job, Dagster's tables with SQL."""
    from solar_platform.streaming.job import run_job
    from solar_platform.streaming.session import build_session

    publish_fleet(settings, fleet)
    run_job(settings, "available-now", spark=build_session(settings))
    _load_dagster_tables(engine(settings), fleet)
    run = roll_up_days(engine(settings), settings, "api-tests", [ROLLED_DAY])
    assert run.served, run.failures()


def _load_dagster_tables(engine: Engine, fleet: Fleet) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO panels (panel_id, pmax_w, first_seen, last_seen) VALUES (:p, :w, :f, :l)"),
            [
                {
                    "p": pid,
                    "w": fleet.pmax[pid],
                    "f": _naive(fleet.epochs[pid][0]) if pid in fleet.epochs else None,
                    "l": _naive(fleet.epochs[pid][-1]) if pid in fleet.epochs else None,
                }
                for pid in (*PANELS, NEVER_SEEN)
            ],
        )
        # A day from before this database's readings: only its rollup rows exist, its buckets folded.
        conn.execute(
            text(
                "INSERT INTO panel_daily_energy (day, panel_id, energy_wh, covered_seconds, peak_w, uptime_share, "
                "readings_received, readings_expected, computed_at, buckets_folded_at) "
                "VALUES (:d, :p, :e, 86400, 400, 1.0, 17280, 17280, '2024-05-01 00:10:00', '2024-06-05 00:05:00')"
            ),
            [{"d": PRUNED_DAY, "p": pid, "e": fleet.pruned_day_wh[pid]} for pid in PANELS],
        )
        conn.execute(
            text(
                "INSERT INTO fleet_daily_energy (day, energy_wh, covered_seconds, peak_panel_w, panels_reporting, "
                "readings_received, readings_expected, mean_uptime_share, computed_at, buckets_folded_at) "
                "SELECT day, SUM(energy_wh), SUM(covered_seconds), MAX(peak_w), COUNT(*), SUM(readings_received), "
                "SUM(readings_expected), AVG(uptime_share), '2024-05-01 00:10:00', MAX(buckets_folded_at) "
                "FROM panel_daily_energy GROUP BY day"
            )
        )
        conn.execute(
            text(
                "INSERT INTO panel_alerts (panel_id, kind, state, opened_at, resolved_at, last_checked, detail) "
                "VALUES (:p, :k, :s, :o, :r, :c, :d)"
            ),
            [
                {
                    "p": "panel-0002",
                    "k": "underperforming",
                    "s": "resolved",
                    "o": datetime(2024, 5, 1, 11, 30),
                    "r": datetime(2024, 5, 1, 12, 10),
                    "c": datetime(2024, 5, 1, 12, 10),
                    "d": "P/Pmax 0.4 of median",
                },
                {
                    "p": OFFLINE_PANEL,
                    "k": "offline",
                    "s": "open",
                    "o": datetime(2024, 5, 3, 12, 1),
                    "r": None,
                    "c": datetime(2024, 5, 3, 12, 59),
                    "d": "latest status 0",
                },
                {
                    "p": SILENT_PANEL,
                    "k": "silent",
                    "s": "open",
                    "o": datetime(2024, 5, 3, 12, 31),
                    "r": None,
                    "c": datetime(2024, 5, 3, 12, 59),
                    "d": "no reading for 30 min",
                },
            ],
        )
