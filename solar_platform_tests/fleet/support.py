"""Settings for fleet tests: the seed's defaults, pinned so a developer's `.env` cannot change them."""

from __future__ import annotations

from solar_platform.settings import Settings, load_settings

SEED_DEFAULTS: dict[str, object] = {
    "panels": 4,
    "offline_probability_pct": 10.0,
    "recovery_probability_pct": 50.0,
    "interval_seconds": 5.0,
    "seed": None,
    "pmax_nominal_w": 400.0,
    "production_start": None,
    "production_hours": 1.0,
    "curve_exponent": 30.0,
    "panel_id_prefix": "panel-",
}


def fleet_settings(base: Settings | None = None, **overrides: object) -> Settings:
    """`base` (default: env) with the seed's fleet values, then `overrides`; None is a real value here."""
    settings = base if base is not None else load_settings()
    return settings.model_copy(update=SEED_DEFAULTS | overrides)
