"""Settings for fleet tests: the legacy project's fleet defaults (the product owner's original project,
called "the seed" elsewhere), pinned so a developer's `.env` cannot change them."""

from __future__ import annotations

from solar_platform.settings import Settings, load_settings

# `seed` None: a fresh random seed per fleet (fleet.state.resolve_seed), unlike SOLAR_SEED's fixed default.
LEGACY_PROJECT_DEFAULTS: dict[str, object] = {
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
    """`base` (default: env) with the legacy project's fleet values, then `overrides`; None is a real value here."""
    settings = base if base is not None else load_settings()
    return settings.model_copy(update=LEGACY_PROJECT_DEFAULTS | overrides)
