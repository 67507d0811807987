"""Yield figures: specific yield (kWh/kWp) and performance ratio (measured ÷ expected energy) for a
panel, a site or the fleet, per period (day or month) in a time zone.

- **measured** energy: the energy series (`queries.energy_series`: 15-min buckets, daily rollups);
- **kWp**: the nameplate Pmax of the panels in service (registry), in kW; panels without a Pmax count 0;
- **expected** energy: Pmax × the power model's expected hours over the period
  (`power_model.expected_hours` of `power_model.expected_curve` at the panel's site: clear sky in
  daylight mode, the seed's daily window otherwise), summed over the panels, per site;
- **specific yield** = measured kWh ÷ kWp; **performance ratio** = measured ÷ expected (None when
  nothing was expected, e.g. a polar night, or no kWp).

The model is evaluated once per site and period (never per panel), so a fleet's month costs one
integral per site.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from solar_platform.power_model import expected_curve, expected_hours
from solar_platform.settings import FleetSite, Settings
from solar_platform.storage import queries
from solar_platform.storage.db import PANELS
from solar_platform.storage.periods import Period
from solar_platform.storage.sites import site_places


@dataclass(frozen=True, slots=True)
class YieldFigure:
    period: Period
    energy_wh: float | None
    coverage: float | None
    kwp: float
    expected_wh: float

    @property
    def specific_yield(self) -> float | None:
        """kWh per kWp: measured energy over the nameplate power."""
        if self.energy_wh is None or self.kwp <= 0:
            return None
        return self.energy_wh / 1000.0 / self.kwp

    @property
    def performance_ratio(self) -> float | None:
        """Measured ÷ expected energy."""
        if self.energy_wh is None or self.expected_wh <= 0:
            return None
        return self.energy_wh / self.expected_wh


def kwp_by_site(conn: Connection, *, panel_id: str | None = None, site_id: str | None = None) -> dict[str, float]:
    """The nameplate kW of the panels in service, per site: one panel's, one site's, or every site's."""
    where, params = "retired_at IS NULL", {}
    if panel_id is not None:
        where, params = "panel_id = :p", {"p": panel_id}
    elif site_id is not None:
        where, params = "retired_at IS NULL AND site_id = :s", {"s": site_id}
    rows = conn.execute(text(f"SELECT site_id, COALESCE(SUM(pmax_w), 0) / 1000 FROM {PANELS} WHERE {where} "
                             "GROUP BY site_id"), params)
    return {site: float(kw) for site, kw in rows}


def expected_wh(settings: Settings, places: Mapping[str, FleetSite], kwp: Mapping[str, float], period: Period) -> float:
    """Σ over sites of kWp × 1000 × the model's expected hours at the site over the period (up to its end)."""
    a, b = (moment.replace(tzinfo=UTC).timestamp() for moment in (period.start, period.end))
    total = 0.0
    for site_id, kw in kwp.items():
        if kw <= 0 or site_id not in places:
            continue
        total += kw * 1000.0 * expected_hours(expected_curve(settings, places[site_id], a), a, b)
    return total


def yield_series(conn: Connection, settings: Settings, spans: Sequence[Period], *, now: datetime, tz: ZoneInfo,
                 panel_id: str | None = None, site_id: str | None = None) -> list[YieldFigure]:
    """Specific yield and performance ratio per period, for one panel, one site or the fleet (both None).

    Expected energy counts each period up to `now` only, as the measured energy does.
    """
    figures = queries.energy_series(conn, panel_id, spans, now=now, tz=tz, site_id=site_id)
    kwp = kwp_by_site(conn, panel_id=panel_id, site_id=site_id)
    places = site_places(conn)
    total_kwp = sum(kwp.values())
    naive_now = now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now
    result = []
    for figure in figures:
        upto = replace(figure.period, end=min(figure.period.end, naive_now))
        expected = expected_wh(settings, places, kwp, upto) if upto.end > upto.start else 0.0
        result.append(YieldFigure(figure.period, figure.energy_wh, figure.coverage, total_kwp, expected))
    return result
