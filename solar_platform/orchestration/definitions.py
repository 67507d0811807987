"""The one Dagster entry point of the platform: every domain's definitions merged with the shared
resources. `workspace.yaml` loads `defs`; tests call `build_defs` with their own settings.

Nothing under `orchestration/` imports the developer stack (`stack/`): loading these definitions
must work where only the production parts are installed (docs/architecture.md; checked by
solar_platform_tests/orchestration/test_imports.py).
"""

import dagster as dg

from solar_platform.orchestration.health.definitions import defs as health_defs
from solar_platform.orchestration.history.definitions import defs as history_defs
from solar_platform.orchestration.ingestion.definitions import defs as ingestion_defs
from solar_platform.orchestration.live.definitions import defs as live_defs
from solar_platform.orchestration.notifications.definitions import defs as notifications_defs
from solar_platform.orchestration.platform.definitions import defs as platform_defs
from solar_platform.orchestration.resources import KafkaResource, SolarSettingsResource, SolarSparkResource
from solar_platform.orchestration.rollups.definitions import build_defs as build_rollups_defs
from solar_platform.runtime.process_control import ProcessControl, process_control


def build_defs(solar: SolarSettingsResource | None = None, **resource_overrides: object) -> dg.Definitions:
    """The platform's definitions with every resource reading `solar` (default: the environment).

    `resource_overrides` replace resources by name, e.g. `processes=` an in-memory fake in tests.
    """
    solar = solar or SolarSettingsResource()
    settings = solar.get()

    def processes(_context: dg.InitResourceContext) -> ProcessControl:
        return process_control(settings)  # supervisord locally, compose's in containers

    resources: dict[str, object] = {
        "solar": solar,
        # Made when a run or sensor uses it, not when the definitions load: the local stack's
        # supervisord control is imported then, and only where it is chosen.
        "processes": dg.ResourceDefinition(resource_fn=processes,
                                           description="Starts, stops and describes 'fleet' and 'stream' "
                                                       "(SOLAR_PROCESS_MANAGER: supervisord or compose)."),
        "kafka": KafkaResource(solar=solar),
        "spark": SolarSparkResource(solar=solar, spark_config={}),
    }
    return dg.Definitions.merge(
        platform_defs,
        ingestion_defs,
        live_defs,
        health_defs,
        notifications_defs,
        build_rollups_defs(settings.site_timezone),
        history_defs,
        dg.Definitions(resources={**resources, **resource_overrides}),
    )


defs = build_defs()
