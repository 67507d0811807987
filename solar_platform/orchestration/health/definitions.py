"""The health domain: panel alerts and the fault-detection sensor that keeps them."""

import dagster as dg

from solar_platform.orchestration.health import assets, sensors

defs = dg.Definitions(assets=[assets.panel_alerts], sensors=[sensors.panel_health])
