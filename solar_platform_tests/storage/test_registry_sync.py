"""The fleet registry sync skips its config comparison only when neither the config nor the
registry changed since the last sync, and otherwise brings the registry to the same rows a full
comparison gives."""

from datetime import datetime

import pytest
from sqlalchemy import text

from solar_platform.storage import db
from solar_platform.storage.health import registry

NOW = datetime(2026, 6, 1, 12, 0)


def _rows(engine) -> set[tuple]:  # noqa: ANN001 - a test helper
    with engine.connect() as conn:
        return {tuple(r) for r in conn.execute(text(
            "SELECT panel_id, pmax_w, site_id, registered_by, retired_at IS NOT NULL FROM panels"))}


def _sync(engine, config: dict[str, float]) -> dict[str, int]:  # noqa: ANN001 - a test helper
    return registry.sync_panel_registry(engine, config, now=NOW)


def test_config_digest_follows_ids_pmax_sites_and_order() -> None:
    base = registry.config_digest(["a", "b"], [400.0, 410.0], ["default", "default"])
    assert base == registry.config_digest(["a", "b"], [400.0, 410.0], ["default", "default"])
    assert len({base,
                registry.config_digest(["a", "c"], [400.0, 410.0], ["default", "default"]),
                registry.config_digest(["a", "b"], [400.0, 410.5], ["default", "default"]),
                registry.config_digest(["a", "b"], [400.0, 410.0], ["default", "north"]),
                registry.config_digest(["b", "a"], [410.0, 400.0], ["default", "default"])}) == 5


@pytest.mark.integration
def test_sync_compares_the_config_only_when_config_or_registry_changed(fresh_settings) -> None:
    engine = db.engine(fresh_settings, bulk_load=True)
    config = {f"panel-{i:06d}": 400.0 + i for i in range(5)}

    first = _sync(engine, config)
    assert (first["config_compared"], first["changed_now"], first["panels"]) == (1, 5, 5)
    steady = _sync(engine, config)
    assert (steady["config_compared"], steady["changed_now"], steady["panels"], steady["configured"]) == (0, 0, 5, 5)

    # a DBA's edit to a fleet panel: the registry's checksum moves, so the config is applied again
    with db.engine(fresh_settings, role="migrator").begin() as conn:
        conn.execute(text("UPDATE panels SET pmax_w = 1 WHERE panel_id = 'panel-000001'"))
    repaired = _sync(engine, config)
    assert (repaired["config_compared"], repaired["changed_now"]) == (1, 1)
    assert ("panel-000001", 401.0, "default", "fleet", 0) in _rows(engine)
    assert _sync(engine, config)["config_compared"] == 0

    # an operator's word: compared again once, and it stands
    registry.register_panel(engine, "panel-000002", 999.0, now=NOW)
    after_operator = _sync(engine, config)
    assert (after_operator["config_compared"], after_operator["changed_now"]) == (1, 0)
    assert ("panel-000002", 999.0, "default", "operator", 0) in _rows(engine)

    # a new config: one Pmax changed, one panel gone
    changed = {pid: w for pid, w in config.items() if pid != "panel-000004"} | {"panel-000003": 350.0}
    moved = _sync(engine, changed)
    assert (moved["config_compared"], moved["changed_now"], moved["retired_now"]) == (1, 1, 1)
    assert _sync(engine, changed)["config_compared"] == 0

    # a panel the stream has seen is added even when the config is not compared; then all is steady
    with db.engine(fresh_settings, role="migrator").begin() as conn:
        conn.execute(text("INSERT INTO panel_latest VALUES ('stray-1', :t, :t, 5.0, 1)"), {"t": NOW})
    seen = _sync(engine, changed)
    assert (seen["config_compared"], seen["seen_added_now"], seen["panels"]) == (0, 1, 6)
    assert _sync(engine, changed)["seen_added_now"] == 0

    # every row the same as a sync that compares everything again (no record of the last sync)
    kept = _rows(engine)
    with db.engine(fresh_settings, role="migrator").begin() as conn:
        conn.execute(text("DELETE FROM registry_sync"))
    full = _sync(engine, changed)
    assert (full["config_compared"], full["changed_now"], full["retired_now"]) == (1, 0, 0)
    assert _rows(engine) == kept

    # the registry emptied behind the sync's back (a restore, a DELETE): compared and rebuilt
    with db.engine(fresh_settings, role="migrator").begin() as conn:
        conn.execute(text("DELETE FROM panels"))
    rebuilt = _sync(engine, changed)
    assert (rebuilt["config_compared"], rebuilt["changed_now"], rebuilt["seen_added_now"]) == (1, 4, 1)
