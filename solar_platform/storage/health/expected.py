"""Expected power from the power model, for fault detection's fallback where a site has too few peers.

The same model the simulator runs (`power_model.expected_curve`: clear sky at the site in daylight
mode, the seed's daily window otherwise), evaluated per site, never per panel: a panel's expected
power is its Pmax times its site's figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from solar_platform.power_model import ClearSky, Curve, expected_curve
from solar_platform.settings import DEFAULT_SITE_ID, FleetSite, Settings


@lru_cache(maxsize=1024)
def _clear_sky(latitude: float, longitude: float) -> ClearSky:
    """One clear-sky curve per place and process: it keeps the days pvlib computed (the sensor runs every minute)."""
    return ClearSky(latitude, longitude)


class SiteExpectation:
    """`(site ids, times) -> P/Pmax (times, sites)` for `features.load_features`, one curve per site place."""

    def __init__(self, settings: Settings, places: Mapping[str, FleetSite]) -> None:
        self.settings = settings
        self.places = dict(places)
        self._curves: dict[FleetSite, Curve] = {}

    def place(self, site_id: str) -> FleetSite:
        """A site's place; an unknown site is taken to be at the default site's place."""
        fallback = self.places.get(DEFAULT_SITE_ID) or self.settings.fleet_site_list[0]
        return self.places.get(site_id, fallback._replace(site_id=site_id))

    def __call__(self, site_ids: list[str], times_s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        times = np.asarray(times_s, dtype=np.float64)
        columns = []
        for site_id in site_ids:
            place = self.place(site_id)
            curve = self._curves.get(place)
            if curve is None:
                curve = (_clear_sky(place.latitude, place.longitude) if self.settings.power_model == "daylight"
                         else expected_curve(self.settings, place, float(times[0]) if times.size else 0.0))
                self._curves[place] = curve
            columns.append(curve.shape(times))
        return np.stack(columns, axis=1) if columns else np.zeros((times.size, 0))
