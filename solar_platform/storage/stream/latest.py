"""Each panel's newest stored reading, held in the stream's memory: `panel_latest`, as arrays.

It tells an append (newer than the panel's newest stored reading) from a correction without a
look-up in MariaDB, and gives each panel's first append its predecessor (the energy segment that
joins the batch to what is stored). It is exact as long as only the stream writes `panel_latest`:

- the stream updates it after each committed batch, from what that batch wrote;
- anything else that rewrites `panel_latest` (a rebuild) bumps `derived_generation` in its own
  transaction; each batch reads the generation under a shared lock first, and reloads on a change
  (`summaries.generation_and_hold`).
"""

from __future__ import annotations

import math
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import Connection, bindparam, text

from solar_platform.storage.db import DERIVED_GENERATION, FLEET_NOW, PANEL_LATEST

NONE = np.iinfo(np.int64).min  # "no reading": older than any time

_BUMP = text(f"UPDATE {DERIVED_GENERATION} SET generation = generation + 1, changed_at = UTC_TIMESTAMP(3) WHERE id = 1")
_EPOCH_US = "TIMESTAMPDIFF(MICROSECOND, TIMESTAMP'1970-01-01 00:00:00', {})"
_SELECT = (f"SELECT panel_id, {_EPOCH_US.format('first_seen')}, {_EPOCH_US.format('last_seen')}, power_panel, "
           f"current_status FROM {PANEL_LATEST}")
_SELECT_SOME = text(_SELECT + " WHERE panel_id IN :ids").bindparams(bindparam("ids", expanding=True))


_FLEET_NOW = text(
    f"REPLACE INTO {FLEET_NOW} (id, as_of, horizon_seconds, panels_seen, panels_reporting, panels_online, power_w, "
    "newest_reading) VALUES (1, :as_of, :horizon, :seen, :reporting, :online, :power, :newest)")


def bump_generation(conn: Connection) -> None:
    """Tell the stream that `panel_latest` changed behind it (call in the same transaction)."""
    conn.execute(_BUMP)


class LatestReadings:
    """Per panel: first seen, newest time, its power and status (times in epoch µs)."""

    def __init__(self) -> None:
        self.generation: int | None = None
        self._index = pd.Index([], dtype=object)
        self.first_us = np.zeros(0, dtype=np.int64)
        self.last_us = np.zeros(0, dtype=np.int64)
        self.power = np.zeros(0, dtype=np.float64)
        self.status = np.zeros(0, dtype=np.int8)

    def __len__(self) -> int:
        return len(self._index)

    def positions(self, panel_ids: npt.NDArray[np.object_]) -> npt.NDArray[np.int64]:
        """Each id's position in the arrays, -1 for a panel never seen."""
        return np.asarray(self._index.get_indexer(panel_ids), dtype=np.int64)

    @staticmethod
    def at(values: npt.NDArray[np.generic], positions: npt.NDArray[np.int64],
           default: object) -> npt.NDArray[np.generic]:
        """`values[positions]`, with `default` where the position is -1 (a panel never seen)."""
        out = np.full(positions.shape, default, dtype=values.dtype)
        known = positions >= 0
        out[known] = values[positions[known]]
        return out

    def update(self, panel_ids: npt.NDArray[np.object_], first_us: npt.NDArray[np.int64],
               last_us: npt.NDArray[np.int64], power: npt.NDArray[np.float64], status: npt.NDArray[np.int8]) -> None:
        """Set these panels' rows (new panels are added)."""
        where = self.positions(panel_ids)
        known = where >= 0
        at = where[known]
        self.first_us[at], self.last_us[at] = first_us[known], last_us[known]
        self.power[at], self.status[at] = power[known], status[known]
        if not known.all():
            new = ~known
            self._index = self._index.append(pd.Index(panel_ids[new], dtype=object))
            self.first_us = np.concatenate([self.first_us, first_us[new]])
            self.last_us = np.concatenate([self.last_us, last_us[new]])
            self.power = np.concatenate([self.power, power[new]])
            self.status = np.concatenate([self.status, status[new]])

    def load(self, conn: Connection, generation: int) -> None:
        """Replace everything with `panel_latest` as `conn` sees it."""
        self.__init__()  # type: ignore[misc]
        self._update_from(conn.execute(text(_SELECT)).all())
        self.generation = generation

    def refresh(self, conn: Connection, panel_ids: npt.NDArray[np.object_]) -> None:
        """Re-read some panels' rows (those the exact path touched) inside the batch's transaction."""
        if len(panel_ids):
            self._update_from(conn.execute(_SELECT_SOME, {"ids": list(panel_ids)}).all())

    def _update_from(self, rows: list) -> None:  # type: ignore[type-arg]
        if rows:
            ids, first, last, power, status = zip(*rows, strict=True)
            self.update(np.asarray(ids, dtype=object), np.asarray(first, dtype=np.int64),
                        np.asarray(last, dtype=np.int64), np.asarray(power, dtype=np.float64),
                        np.asarray(status, dtype=np.int8))

    def copy(self) -> LatestReadings:
        """A copy to change while a batch runs; swapped in only once the batch commits."""
        other = LatestReadings()
        other.generation = self.generation
        other._index = self._index
        other.first_us, other.last_us = self.first_us.copy(), self.last_us.copy()
        other.power, other.status = self.power.copy(), self.status.copy()
        return other


def fleet_power(powers: npt.NDArray[np.float64]) -> float:
    """The sum of the panels' power, finite whatever the readings: the contract accepts any finite
    power, so hostile ones (±1e308) can overflow a plain sum to inf or nan, which MariaDB refuses.
    A sum past the float range is held at the range's end, with its sign."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(powers.sum())
    if math.isfinite(total):
        return total
    scaled = float((powers / 2.0**64).sum())  # the same sum, far from overflow
    total = scaled * 2.0**64
    return total if math.isfinite(total) else math.copysign(sys.float_info.max, scaled)


def record_fleet_now(conn: Connection, latest: LatestReadings, *, as_of: datetime, reference_us: int | None,
                     horizon_seconds: float) -> None:
    """The fleet's counters from the latest readings, for the API's overview (one row, no scan):
    panels reporting = newest reading within `horizon_seconds` of `reference_us` (the batch's
    frontier), online = of those, status 1; power = their newest readings' sum."""
    reporting = (latest.last_us >= reference_us - round(horizon_seconds * 1_000_000)
                 if reference_us is not None else np.zeros(len(latest), dtype=bool))
    newest = int(latest.last_us.max()) if len(latest) else None
    conn.execute(_FLEET_NOW, {
        "as_of": as_of.astimezone(UTC).replace(tzinfo=None), "horizon": horizon_seconds, "seen": len(latest),
        "reporting": int(reporting.sum()), "online": int((reporting & (latest.status == 1)).sum()),
        "power": fleet_power(latest.power[reporting]),
        "newest": None if newest is None else datetime(1970, 1, 1) + timedelta(microseconds=newest)})
