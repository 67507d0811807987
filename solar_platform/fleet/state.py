"""Fleet state: who the panels are, how strong each one is, and which ones are online.

Randomness comes from one seed split into two independent streams (`numpy.random.SeedSequence`):
one draws Pmax, the other drives the offline/recovery process. So a panel's Pmax depends only on
the seed and its index, never on how many cycles ran or how large the fleet is.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from solar_platform.contracts import PANEL_ID_RULE, is_valid_panel_id
from solar_platform.settings import FleetSite, Settings, SettingsError

PMAX_SPREAD = (0.8, 1.2)  # the seed: Pmax = nominal x U(0.8, 1.2)


def panel_ids(count: int, prefix: str = "panel-") -> list[str]:
    """`panel-000000`, `panel-000001`, ...: index i is row i of every fleet array.

    The prefix (SOLAR_PANEL_ID_PREFIX) must make ids the contract accepts, or every reading would be
    dead-lettered: the first id and the longest (the last) are checked.
    """
    ids = [f"{prefix}{index:06d}" for index in range(count)]
    for panel_id in ids[:1] + ids[-1:]:
        if not is_valid_panel_id(panel_id):
            raise SettingsError(f"SOLAR_PANEL_ID_PREFIX={prefix!r} makes panel ids such as {panel_id!r} that the "
                                f"message contract refuses; a panel id is {PANEL_ID_RULE}")
    return ids


def draw_pmax(rng: np.random.Generator, count: int, nominal_w: float) -> npt.NDArray[np.float64]:
    """Each panel's peak power: nominal x U(0.8, 1.2)."""
    low, high = PMAX_SPREAD
    return nominal_w * rng.uniform(low, high, size=count)


def resolve_seed(seed: int | None) -> int:
    """The seed to use; when none is given, a fresh one that can be printed and passed back later."""
    if seed is not None:
        return seed
    return secrets.randbits(32)


def spread_over_sites(count: int, sites: int) -> npt.NDArray[np.int64]:
    """Panel i's site: i mod the number of sites, so growing the fleet never moves a panel."""
    return np.arange(count, dtype=np.int64) % max(1, sites)


@dataclass(slots=True)
class FleetState:
    """The fleet's arrays, index-aligned: `panel_ids[i]`, `pmax_w[i]`, `online[i]`, `site_index[i]`
    (a row of `sites`, SOLAR_FLEET_SITES or the default site)."""

    panel_ids: list[str]
    pmax_w: npt.NDArray[np.float64]
    online: npt.NDArray[np.bool_]
    offline_probability: float
    recovery_probability: float
    seed: int
    _status_rng: np.random.Generator = field(repr=False)
    sites: tuple[FleetSite, ...] = ()
    site_index: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @classmethod
    def create(cls, settings: Settings, *, panels: int | None = None, seed: int | None = None) -> FleetState:
        """A fresh fleet, every panel online; `panels`/`seed` override the settings."""
        count = settings.panels if panels is None else panels
        if count < 1:
            raise ValueError(f"a fleet needs at least one panel, got {count}")
        used_seed = resolve_seed(settings.seed if seed is None else seed)
        pmax_stream, status_stream = np.random.SeedSequence(used_seed).spawn(2)
        sites = settings.fleet_site_list
        return cls(
            panel_ids=panel_ids(count, settings.panel_id_prefix),
            pmax_w=draw_pmax(np.random.default_rng(pmax_stream), count, settings.pmax_nominal_w),
            online=np.ones(count, dtype=bool),
            offline_probability=settings.offline_probability_pct / 100.0,
            recovery_probability=settings.recovery_probability_pct / 100.0,
            seed=used_seed,
            _status_rng=np.random.default_rng(status_stream),
            sites=sites,
            site_index=spread_over_sites(count, len(sites)),
        )

    @property
    def panel_sites(self) -> list[str]:
        """Each panel's site id, index-aligned with `panel_ids`."""
        return [self.sites[i].site_id for i in self.site_index.tolist()]

    @property
    def size(self) -> int:
        return len(self.panel_ids)

    def step(self) -> None:
        """One cycle of the two-state process: online -> offline with p_off, offline -> online with p_rec.

        One uniform draw per panel per cycle, compared with the probability of the panel's current
        state, so the draw count (and thus every later cycle) does not depend on the states.
        """
        draws = self._status_rng.random(self.size)
        threshold = np.where(self.online, self.offline_probability, self.recovery_probability)
        self.online ^= draws < threshold

    @property
    def status(self) -> npt.NDArray[np.int8]:
        """The contract's `current_status`: 1 online, 0 offline."""
        return self.online.astype(np.int8)
