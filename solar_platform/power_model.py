"""The panel power models, vectorised with numpy. Pure: no clock, no I/O, no randomness.

Used by the simulator (`fleet/`), by fault detection's expected power and by the yield figures
(performance ratio = measured / expected energy), so all three use one model. Two curves, chosen by
SOLAR_POWER_MODEL: the seed's sech window (`PowerModel`, the default) and clear-sky daylight
(`ClearSky`, pvlib). `FleetPowerModel` gives each panel its site's curve times its Pmax.

The seed's model:

A panel produces during a window that opens at `t_ini` and lasts `D` seconds:

    P(t) = Pmax / cosh(x) ** C,   x = (t - t_ini) / D - 0.5,   C = 30 by default

so the peak, `Pmax`, is at the middle of the window. The formula is kept as-is for every `t`,
also outside the window: there is no cut-off to zero, the curve just decays (at the window's
edges it is `Pmax / cosh(0.5)**30`, 2.7 % of Pmax; half a window further out, 2e-6 of Pmax).
A hard cut-off would add a step the seed never had.

Times are float seconds since the Unix epoch (UTC) throughout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from solar_platform.settings import FleetSite, Settings

DAY_SECONDS = 86_400.0
_LN2 = math.log(2.0)

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]


def epoch_seconds(moment: datetime) -> float:
    """Seconds since the Unix epoch; a naive datetime is read as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def seconds_of_day_utc(moment: time) -> float:
    """A time of day as seconds after UTC midnight (an aware time is shifted by its offset)."""
    seconds = moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6
    offset = moment.utcoffset()
    if offset is not None:
        seconds -= offset.total_seconds()
    return seconds % DAY_SECONDS


def site_timezone(settings: Settings) -> str:
    """The site's IANA zone: the platform's site-zone setting when it has one, else UTC."""
    return str(getattr(settings, "site_timezone", None) or "UTC")


def curve_shape(time_s: ArrayLike, window_start_s: ArrayLike, window_seconds: float, exponent: float) -> FloatArray:
    """`1 / cosh(x) ** C` with `x = (t - t_ini) / D - 0.5`: the curve normalised to a peak of 1.

    Computed as `exp(-C * log(cosh(x)))` with a log-cosh that cannot overflow, so a time far from
    its window gives a clean 0.0 instead of an overflow warning and `inf` in the denominator.
    """
    x = (np.asarray(time_s, dtype=np.float64) - window_start_s) / window_seconds - 0.5
    abs_x = np.abs(x)
    log_cosh = abs_x + np.log1p(np.exp(-2.0 * abs_x)) - _LN2
    return np.exp(-exponent * log_cosh)


def power_curve(
    time_s: ArrayLike,
    window_start_s: ArrayLike,
    window_seconds: float,
    pmax_w: ArrayLike,
    exponent: float = 30.0,
) -> FloatArray:
    """The seed's closed form `Pmax / cosh((t - t_ini)/D - 0.5) ** C`; broadcasts over all arguments."""
    return np.asarray(pmax_w, dtype=np.float64) * curve_shape(time_s, window_start_s, window_seconds, exponent)


def daily_window_start(time_s: ArrayLike, start_of_day_s: float, window_seconds: float) -> FloatArray:
    """Opening time of the daily window each timestamp belongs to.

    The window repeats every UTC day at `start_of_day_s` after midnight. A timestamp belongs to the
    window whose middle is nearest, so before dawn it is on the rising side of today's curve and
    after dusk on the falling side of today's, never at the far tail of a neighbour. The switch
    happens 12 h from both middles, where both windows give the same value: the power is
    continuous (and, for D = 24 h, each window is exactly one day).
    """
    times = np.asarray(time_s, dtype=np.float64)
    first_middle = start_of_day_s + window_seconds / 2.0
    day_index = np.floor((times - first_middle) / DAY_SECONDS + 0.5)
    return day_index * DAY_SECONDS + start_of_day_s


@dataclass(frozen=True, slots=True)
class PowerModel:
    """The curve's parameters plus the rule that places the window; shared by every mode.

    `daily_start` set: the window repeats every day at that UTC time of day (history, backfills,
    rollups). `daily_start` None: the seed's demo, one window opening at `fleet_start_s`.
    """

    window_seconds: float
    exponent: float
    daily_start: time | None
    fleet_start_s: float

    @classmethod
    def from_settings(cls, settings: Settings, fleet_start: datetime | float) -> PowerModel:
        start_s = fleet_start if isinstance(fleet_start, int | float) else epoch_seconds(fleet_start)
        return cls(
            window_seconds=settings.production_hours * 3600.0,
            exponent=settings.curve_exponent,
            daily_start=settings.production_start,
            fleet_start_s=float(start_s),
        )

    @classmethod
    def for_history(cls, settings: Settings, fleet_start: datetime | float, time_zone: str | None = None
                    ) -> PowerModel:
        """The model fast-forward uses over past days: a full production day every day.

        An explicit daily window (`SOLAR_PRODUCTION_START`) wins; otherwise the backfill window,
        `SOLAR_BACKFILL_PRODUCTION_START` (time of day in the site's zone) for
        `SOLAR_BACKFILL_PRODUCTION_HOURS`. The zone's offset is taken at `fleet_start`; the zone is
        `time_zone` (a site's) or the platform's site zone.
        """
        if settings.production_start is not None:
            return cls.from_settings(settings, fleet_start)
        start_s = fleet_start if isinstance(fleet_start, int | float) else epoch_seconds(fleet_start)
        zone = ZoneInfo(time_zone or site_timezone(settings))
        local = datetime.fromtimestamp(float(start_s), zone)
        daily = settings.backfill_production_start.replace(tzinfo=timezone(local.utcoffset() or timedelta(0)))
        return cls(window_seconds=settings.backfill_production_hours * 3600.0, exponent=settings.curve_exponent,
                   daily_start=daily, fleet_start_s=float(start_s))

    def window_start(self, time_s: ArrayLike) -> FloatArray:
        """`t_ini` for each timestamp (vectorised): the one place that decides where windows are."""
        times = np.asarray(time_s, dtype=np.float64)
        if self.daily_start is None:
            return np.full_like(times, self.fleet_start_s)
        return daily_window_start(times, seconds_of_day_utc(self.daily_start), self.window_seconds)

    def shape(self, time_s: ArrayLike) -> FloatArray:
        """The normalised curve (peak 1) at each timestamp; the same factor for every panel."""
        return curve_shape(time_s, self.window_start(time_s), self.window_seconds, self.exponent)

    def power(self, pmax_w: npt.NDArray[np.float64], time_s: float) -> FloatArray:
        """Power of every panel at one instant: shape (N,), one multiply over the fleet."""
        return pmax_w * float(self.shape(time_s))

    def power_grid(self, pmax_w: npt.NDArray[np.float64], time_s: ArrayLike) -> FloatArray:
        """Power of every panel at many instants: shape (T, N), time-major like the publisher."""
        return np.multiply.outer(self.shape(time_s), pmax_w)


# ---------------------------------------------------------------- daylight: clear sky at a site
STC_IRRADIANCE_W_M2 = 1000.0  # a panel gives its Pmax at the standard test conditions' irradiance
CLEAR_SKY_GRID_SECONDS = 60.0  # pvlib runs once per site-day on this grid; the rest is interpolation
# A typical clear day's Linke turbidity, fixed: no per-month lookup table (which needs h5py files).
LINKE_TURBIDITY = 3.0
_CLEAR_SKY_DAYS_KEPT = 400


class Curve(Protocol):
    """A normalised power curve: P/Pmax at each time (epoch seconds)."""

    def shape(self, time_s: ArrayLike) -> FloatArray: ...


@dataclass(slots=True)
class ClearSky:
    """Daylight: the clear-sky global horizontal irradiance at a site (pvlib's Ineichen model with
    `LINKE_TURBIDITY`) over `STC_IRRADIANCE_W_M2`, so a panel's power is Pmax x GHI / 1000 W/m2.

    pvlib computes each UTC day once, on a one-minute grid (a few ms); times in between are linear
    interpolation, which differs from pvlib's own value by well under 0.1 % of Pmax.
    """

    latitude: float
    longitude: float
    _days: dict[int, FloatArray] = field(default_factory=dict, repr=False)

    def _day(self, day: int) -> FloatArray:
        grid = self._days.get(day)
        if grid is None:
            import pandas as pd
            from pvlib.location import Location

            offsets = np.arange(0.0, DAY_SECONDS + CLEAR_SKY_GRID_SECONDS, CLEAR_SKY_GRID_SECONDS)
            times = pd.DatetimeIndex(pd.to_datetime(day * DAY_SECONDS + offsets, unit="s", utc=True))
            sky = Location(self.latitude, self.longitude, tz="UTC").get_clearsky(
                times, model="ineichen", linke_turbidity=LINKE_TURBIDITY)
            grid = np.clip(sky["ghi"].to_numpy(dtype=np.float64), 0.0, None) / STC_IRRADIANCE_W_M2
            if len(self._days) >= _CLEAR_SKY_DAYS_KEPT:
                self._days.clear()
            self._days[day] = grid
        return grid

    def shape(self, time_s: ArrayLike) -> FloatArray:
        times = np.asarray(time_s, dtype=np.float64)
        flat = times.ravel()
        out = np.empty_like(flat)
        days = np.floor(flat / DAY_SECONDS).astype(np.int64)
        offsets = np.arange(0.0, DAY_SECONDS + CLEAR_SKY_GRID_SECONDS, CLEAR_SKY_GRID_SECONDS)
        for day in np.unique(days).tolist():
            chosen = days == day
            out[chosen] = np.interp(flat[chosen] - day * DAY_SECONDS, offsets, self._day(day))
        return out.reshape(times.shape)


def site_curve(settings: Settings, site: FleetSite, fleet_start_s: float, *, history: bool = True) -> Curve:
    """The curve of one site: clear sky at its location in daylight mode; otherwise the seed's
    window, repeating daily in the site's zone (`history`) or the seed's demo (one window at start)."""
    if settings.power_model == "daylight":
        return ClearSky(site.latitude, site.longitude)
    if history:
        return PowerModel.for_history(settings, fleet_start_s, site.time_zone)
    return PowerModel.from_settings(settings, fleet_start_s)


def expected_curve(settings: Settings, site: FleetSite, at_s: float) -> Curve:
    """The curve expected power is judged by at a site (fault detection, performance ratio): the
    simulator's model with a daily window; the seed's one-off demo window is not an expectation."""
    return site_curve(settings, site, at_s, history=True)


def expected_hours(curve: Curve, start_s: float, end_s: float) -> float:
    """Expected energy per watt of Pmax over [start, end), in hours (Wh/W = kWh/kWp):
    the trapezoid integral of the curve on a grid of at most `CLEAR_SKY_GRID_SECONDS`."""
    if end_s <= start_s:
        return 0.0
    steps = max(1, math.ceil((end_s - start_s) / CLEAR_SKY_GRID_SECONDS))
    times = np.linspace(start_s, end_s, steps + 1)
    values = curve.shape(times)
    return float(np.sum((values[1:] + values[:-1]) * np.diff(times)) / 2.0 / 3600.0)


@dataclass(frozen=True, slots=True)
class FleetPowerModel:
    """Each panel's power: its site's curve at that instant times its Pmax.

    `site_index[i]` is panel i's row in `curves` (one curve per site); a fleet at one site is the
    seed's model exactly (one curve, every index 0).
    """

    curves: Sequence[Curve]
    site_index: npt.NDArray[np.int64]

    @classmethod
    def for_sites(cls, settings: Settings, sites: Sequence[FleetSite], site_index: npt.NDArray[np.int64],
                  fleet_start_s: float, *, history: bool) -> FleetPowerModel:
        return cls([site_curve(settings, site, fleet_start_s, history=history) for site in sites],
                   np.asarray(site_index, dtype=np.int64))

    def site_shapes(self, time_s: float) -> FloatArray:
        """P/Pmax at each site at one instant: shape (sites,)."""
        return np.array([float(curve.shape(time_s)) for curve in self.curves])

    def panel_shape(self, time_s: float) -> FloatArray:
        """P/Pmax of every panel at one instant: shape (N,)."""
        return self.site_shapes(time_s)[self.site_index]

    def power(self, pmax_w: npt.NDArray[np.float64], time_s: float) -> FloatArray:
        """Power of every panel at one instant: shape (N,)."""
        return pmax_w * self.panel_shape(time_s)
