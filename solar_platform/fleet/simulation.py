"""Fleet cycles: the one code path that live mode, fast-forward and the tests share.

A cycle at time t first steps the offline/recovery process, then computes every panel's power at
t. Times are whole milliseconds since the epoch (the contract's resolution), so a message's
`time_data` is exactly the instant its power was computed for. Power is rounded to 1 mW, the
resolution the message carries, so what a consumer parses equals what the simulator produced.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from solar_platform.contracts import Reading
from solar_platform.fleet.faults import FaultPlan
from solar_platform.fleet.state import FleetState
from solar_platform.power_model import FleetPowerModel
from solar_platform.settings import Settings

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is read as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def to_epoch_ms(moment: datetime) -> int:
    """Whole milliseconds since the epoch (exact integer arithmetic, sub-ms truncated)."""
    return (as_utc(moment) - EPOCH) // _ONE_MS


def from_epoch_ms(epoch_ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=int(epoch_ms))


def round_to_milliwatts(power_w: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Power at the 1 mW resolution of the message; `k / 1000` parses back to the same float."""
    return np.rint(np.asarray(power_w, dtype=np.float64) * 1000.0) / 1000.0


def interval_ms(interval_seconds: float) -> int:
    step = round(interval_seconds * 1000)
    if step < 1:
        raise ValueError(f"interval must be at least 1 ms, got {interval_seconds} s")
    return step


def cycle_times_ms(start: datetime, end: datetime, interval_seconds: float) -> npt.NDArray[np.int64]:
    """Cycle instants in the half-open range [start, end), `interval_seconds` apart.

    Half-open, so consecutive ranges (daily backfill partitions) neither overlap nor leave gaps.
    """
    start_ms, end_ms = to_epoch_ms(start), to_epoch_ms(end)
    if end_ms <= start_ms:
        raise ValueError(f"empty time range: {as_utc(start).isoformat()} .. {as_utc(end).isoformat()}")
    return np.arange(start_ms, end_ms, interval_ms(interval_seconds), dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Cycle:
    """Every panel's reading at one instant, index-aligned with the fleet's `panel_ids`."""

    time_ms: int
    power_w: npt.NDArray[np.float64]
    status: npt.NDArray[np.int8]
    present: npt.NDArray[np.bool_] | None = None  # False = not sent (an injected silent fault); None = all

    @property
    def time_utc(self) -> datetime:
        return from_epoch_ms(self.time_ms)


class FleetSimulator:
    """A fleet and its power model; `cycle(t)` advances the fleet by one reading per panel."""

    def __init__(
        self,
        settings: Settings,
        *,
        fleet_start: datetime,
        panels: int | None = None,
        seed: int | None = None,
        history: bool = False,
        faults: str | dict | None = None,
    ) -> None:
        """`history` True: past days, each a full production day (`PowerModel.for_history`);
        False: live, the seed's demo window. Daylight mode (SOLAR_POWER_MODEL) is clear sky in both.
        Each panel follows its own site's curve. `faults`: a fault spec (`fleet.faults`) to inject."""
        self.state = FleetState.create(settings, panels=panels, seed=seed)
        # Truncated to ms like every cycle time, so the seed's demo window opens on a cycle.
        self.fleet_start_ms = to_epoch_ms(fleet_start)
        self.model = FleetPowerModel.for_sites(settings, self.state.sites, self.state.site_index,
                                               self.fleet_start_ms / 1000.0, history=history)
        self.faults: FaultPlan | None = None
        if faults is not None:
            first_day = from_epoch_ms(self.fleet_start_ms)
            self.faults = FaultPlan.from_spec(faults, self.state.panel_ids, first_day=first_day)
            self.faults.freeze(self.model.panel_shape, self.state.pmax_w)

    @property
    def panel_ids(self) -> list[str]:
        return self.state.panel_ids

    @property
    def seed(self) -> int:
        return self.state.seed

    def cycle(self, time_ms: int) -> Cycle:
        self.state.step()
        power = round_to_milliwatts(self.model.power(self.state.pmax_w, time_ms / 1000.0))
        power[~self.state.online] = 0.0  # offline panels send power 0 and status 0, as the seed does
        status = self.state.status
        present = None
        if self.faults is not None:
            present = self.faults.apply(time_ms / 1000.0, power, status, self.state.pmax_w)
        return Cycle(time_ms=int(time_ms), power_w=power, status=status, present=present)


@dataclass(frozen=True, slots=True)
class FleetReadings:
    """All readings of a simulated range: arrays of shape (T,) for times and (T, N) for values."""

    panel_ids: list[str]
    times_ms: npt.NDArray[np.int64]
    power_w: npt.NDArray[np.float64]
    status: npt.NDArray[np.int8]
    seed: int
    present: npt.NDArray[np.bool_] | None = None  # (T, N): False = not sent; None = every reading sent

    @property
    def times(self) -> npt.NDArray[np.datetime64]:
        return self.times_ms.astype("datetime64[ms]")

    @property
    def count(self) -> int:
        return int(self.power_w.size if self.present is None else self.present.sum())

    def readings(self) -> Iterator[Reading]:
        """The contract objects, in publishing order (time-major); meant for small fleets."""
        for row, time_ms in enumerate(self.times_ms.tolist()):
            moment = from_epoch_ms(time_ms)
            for column, panel_id in enumerate(self.panel_ids):
                if self.present is not None and not self.present[row, column]:
                    continue
                yield Reading(
                    panel_id=panel_id,
                    power_w=float(self.power_w[row, column]),
                    status=int(self.status[row, column]),
                    time_utc=moment,
                )


def simulate_readings(
    settings: Settings,
    *,
    start: datetime,
    end: datetime,
    panels: int | None = None,
    seed: int | None = None,
    history: bool = True,
    faults: str | dict | None = None,
) -> FleetReadings:
    """Exactly the readings `fast_forward` publishes for [start, end), computed without Kafka.

    `history` False gives the live model (the seed's demo window opening at `start`) instead.
    """
    times_ms = cycle_times_ms(start, end, settings.interval_seconds)
    simulator = FleetSimulator(settings, fleet_start=start, panels=panels, seed=seed, history=history, faults=faults)
    power = np.empty((times_ms.size, simulator.state.size), dtype=np.float64)
    status = np.empty((times_ms.size, simulator.state.size), dtype=np.int8)
    present = np.ones((times_ms.size, simulator.state.size), dtype=bool) if simulator.faults else None
    for row, time_ms in enumerate(times_ms.tolist()):
        cycle = simulator.cycle(time_ms)
        power[row] = cycle.power_w
        status[row] = cycle.status
        if present is not None and cycle.present is not None:
            present[row] = cycle.present
    return FleetReadings(
        panel_ids=simulator.panel_ids, times_ms=times_ms, power_w=power, status=status, seed=simulator.seed,
        present=present,
    )
