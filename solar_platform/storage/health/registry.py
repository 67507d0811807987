"""The panel registry (`panels`): who is in the fleet, with what nameplate Pmax, and who left it.

- `sync_panel_registry`: the fleet config's panels (registered_by 'fleet'), plus every panel the
  stream has seen ('seen', no Pmax); fleet panels that left the config are retired. Only new or
  changed panels are written, and when neither the config nor the registry changed since the last
  sync (`registry_sync`), the config is not compared again.
- `register_panel` / `retire_panel`: an operator's word (CLI `solar-platform panels ...`); an
  operator's Pmax is never overwritten by the sync, and an operator's panel is never retired by it.
- Retiring resolves the panel's open alerts (with the reason) and takes it out of fault detection,
  so a panel that was removed does not alert as silent for good. Its rows and history stay.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection, Engine, bindparam, text

from solar_platform.contracts import PANEL_ID_RULE, is_valid_panel_id
from solar_platform.settings import DEFAULT_SITE_ID, FleetSite
from solar_platform.storage import notifications
from solar_platform.storage.db import PANEL_ALERTS, PANELS, REGISTRY_SYNC, SITES
from solar_platform.storage.queries import registered_panels
from solar_platform.storage.sites import sync_fleet_sites
from solar_platform.storage.stream import bulk

FLEET, OPERATOR, SEEN = "fleet", "operator", "seen"


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)


def has_table(conn: Connection, name: str) -> bool:
    return bool(conn.execute(text(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = :t"),
        {"t": name}).scalar())


_CONFIGURED = """CREATE TEMPORARY TABLE IF NOT EXISTS tmp_configured (
    panel_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, pmax_w DOUBLE NOT NULL,
    site_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    PRIMARY KEY (panel_id)) ENGINE=InnoDB"""


# Totals of the registry and an order-free checksum of every row (64 bits of each row's MD5, XORed):
# one scan of `panels` (0.33 s at 220k panels) that any insert, update or delete, a DBA's included,
# changes.
_REGISTRY_STATE = (
    f"SELECT COUNT(*), COUNT(IF(retired_at IS NULL, pmax_w, NULL)), COUNT(retired_at), "
    "COALESCE(BIT_XOR(CAST(CONV(LEFT(MD5(CONCAT_WS('|', panel_id, site_id, registered_by, IFNULL(pmax_w, '-'), "
    f"IFNULL(retired_at, '-'))), 16), 16, 10) AS UNSIGNED)), 0) FROM {PANELS}")


def config_digest(panel_ids: Sequence[str], pmax_w: Sequence[float], site_ids: Sequence[str]) -> str:
    """sha256 of the configured panels, their Pmax and their sites, in config order."""
    digest = hashlib.sha256()
    digest.update("\n".join(panel_ids).encode())
    digest.update(np.asarray(pmax_w, dtype=np.float64).tobytes())
    digest.update("\n".join(site_ids).encode())
    return digest.hexdigest()


def sync_panel_registry(engine: Engine, configured_pmax: Mapping[str, float], now: datetime | None = None, *,
                        configured_site: Mapping[str, str] | None = None, fleet_sites: Sequence[FleetSite] = ()
                        ) -> dict[str, int]:
    """Bring the registry in step with the fleet config and with what the stream has seen, writing
    only the panels that are new or changed.

    `fleet_sites` are upserted first (`storage.sites.sync_fleet_sites`); `configured_site` gives
    each configured panel's site (default: the default site). Panels only seen go to the default site.

    The config is loaded into a scratch table and compared in one join: new panels and changed
    Pmax are upserted (an operator's word stands), fleet panels no longer configured are retired,
    and panels the stream has seen (`panel_latest`) but the registry lacks are added as 'seen'.
    That comparison is skipped when `registry_sync` shows this very config applied to this very
    registry (its digest, and the checksum of `panels` the last sync left): the steady state of a
    200k fleet then costs a scan of `panels` and the 'seen' anti-join instead of about 2 s.
    READ COMMITTED: reading `panel_latest` takes no lock the stream's batches would wait on.
    Each panel's first and last seen live in `panel_latest`, kept by the stream. `engine` must allow
    `LOAD DATA LOCAL` (`db.engine(..., bulk_load=True)`).
    """
    moment = _now(now)
    ids = list(configured_pmax)
    site_of = configured_site or {}
    pmax = np.asarray([float(configured_pmax[pid]) for pid in ids], dtype=np.float64)
    sites = [site_of.get(pid, DEFAULT_SITE_ID) for pid in ids]
    digest = config_digest(ids, pmax, sites)
    with engine.begin() as conn:
        conn.execute(text("SET TRANSACTION ISOLATION LEVEL READ COMMITTED"))
        sites_changed = sync_fleet_sites(conn, fleet_sites, moment)
        state = conn.execute(text(_REGISTRY_STATE)).one()
        applied = conn.execute(text(f"SELECT config_digest, panels_checksum FROM {REGISTRY_SYNC} WHERE id = 1")).first()
        config_applied = applied is not None and (applied[0], int(applied[1])) == (digest, int(state[3]))
        changed = retired = 0
        if not config_applied:
            changed = _apply_config(conn, ids, pmax, sites, moment)
        seen = conn.execute(text(
            f"INSERT INTO {PANELS} (panel_id, pmax_w, registered_by, first_seen, last_seen, updated_at) "
            f"SELECT l.panel_id, NULL, 'seen', l.first_seen, l.last_seen, :now FROM panel_latest l "
            f"LEFT JOIN {PANELS} p ON p.panel_id = l.panel_id WHERE p.panel_id IS NULL"), {"now": moment}).rowcount
        if not config_applied:
            gone = [pid for (pid,) in conn.execute(text(
                f"SELECT p.panel_id FROM {PANELS} p LEFT JOIN tmp_configured c ON c.panel_id = p.panel_id "
                "WHERE p.registered_by = 'fleet' AND p.retired_at IS NULL AND c.panel_id IS NULL"))]
            retired = _retire(conn, sorted(gone), moment, "left the fleet config")
        if not config_applied or seen:
            if changed or seen or retired:  # else `panels` is as the scan above found it
                state = conn.execute(text(_REGISTRY_STATE)).one()
            conn.execute(text(
                f"INSERT INTO {REGISTRY_SYNC} (id, config_digest, panels_checksum, synced_at) "
                "VALUES (1, :digest, :checksum, :now) ON DUPLICATE KEY UPDATE config_digest = VALUES(config_digest), "
                "panels_checksum = VALUES(panels_checksum), synced_at = VALUES(synced_at)"),
                {"digest": digest, "checksum": int(state[3]), "now": moment})
        total, configured, retired_total = state[:3]
        sites_total = conn.execute(text(f"SELECT COUNT(*) FROM {SITES}")).scalar()
    return {"panels": int(total), "configured": int(configured), "changed_now": int(changed),
            "seen_added_now": int(seen), "retired_now": retired, "retired": int(retired_total),
            "sites": int(sites_total or 0), "sites_changed_now": int(sites_changed),
            "config_compared": int(not config_applied)}


def _apply_config(conn: Connection, ids: list[str], pmax: np.ndarray, sites: list[str], moment: datetime) -> int:
    """Load the config into `tmp_configured` and upsert the panels that are new or changed there;
    returns how many panels it wrote."""
    conn.execute(text(_CONFIGURED))
    conn.execute(text("DELETE FROM tmp_configured"))
    bulk.load(conn, "tmp_configured", [
        bulk.Column("panel_id", pa.array(ids, pa.string())),
        bulk.Column("pmax_w", pmax),
        bulk.Column("site_id", pa.array(sites, pa.string()))])
    before = registered_panels(conn)  # kept by triggers on `panels`, in this transaction
    affected = conn.execute(text(
        f"INSERT INTO {PANELS} (panel_id, pmax_w, site_id, registered_by, updated_at) "
        "SELECT c.panel_id, c.pmax_w, c.site_id, 'fleet', :now FROM tmp_configured c "
        f"LEFT JOIN {PANELS} p ON p.panel_id = c.panel_id "
        "WHERE p.panel_id IS NULL OR (p.registered_by <> 'operator' AND (NOT p.pmax_w <=> c.pmax_w "
        "      OR NOT p.site_id <=> c.site_id OR p.retired_at IS NOT NULL OR p.registered_by <> 'fleet')) "
        f"ON DUPLICATE KEY UPDATE {PANELS}.pmax_w = VALUES(pmax_w), {PANELS}.site_id = VALUES(site_id), "
        f"{PANELS}.registered_by = 'fleet', "
        f"{PANELS}.retired_at = NULL, {PANELS}.updated_at = VALUES(updated_at)"), {"now": moment}).rowcount
    # MariaDB counts an upsert's insert as 1 affected row and its update as 2: panels written = i + u
    inserted = registered_panels(conn) - before
    return inserted + (affected - inserted) // 2


def register_panel(engine: Engine, panel_id: str, pmax_w: float, now: datetime | None = None, *,
                   site_id: str | None = None) -> None:
    """Register (or re-register, un-retiring) a panel with its nameplate Pmax, as an operator, at
    `site_id` (None: where it is, or the default site for a new panel)."""
    if not is_valid_panel_id(panel_id):
        raise ValueError(f"invalid panel id {panel_id!r}: a panel id is {PANEL_ID_RULE}")
    if not pmax_w > 0:
        raise ValueError(f"Pmax must be positive, got {pmax_w}")
    with engine.begin() as conn:
        if site_id is not None and conn.execute(text(f"SELECT 1 FROM {SITES} WHERE site_id = :s"),
                                                {"s": site_id}).first() is None:
            raise ValueError(f"no site {site_id!r}: register it first (`solar-platform sites register`)")
        conn.execute(text(
            f"INSERT INTO {PANELS} (panel_id, pmax_w, site_id, registered_by, updated_at) "
            "VALUES (:p, :w, COALESCE(:s, :default_site), 'operator', :now) "
            "ON DUPLICATE KEY UPDATE pmax_w = VALUES(pmax_w), site_id = IF(:s IS NULL, site_id, VALUES(site_id)), "
            "registered_by = 'operator', retired_at = NULL, updated_at = VALUES(updated_at)"),
            {"p": panel_id, "w": float(pmax_w), "s": site_id, "default_site": DEFAULT_SITE_ID, "now": _now(now)})


def retire_panel(engine: Engine, panel_id: str, now: datetime | None = None, reason: str = "retired by an operator"
                 ) -> bool:
    """Retire a registered panel: out of fault detection, open alerts resolved. False if unknown."""
    with engine.begin() as conn:
        known = conn.execute(text(f"SELECT retired_at IS NULL FROM {PANELS} WHERE panel_id = :p"),
                             {"p": panel_id}).first()
        if known is None:
            return False
        # the operator's word from now on: the fleet sync will not bring it back
        conn.execute(text(f"UPDATE {PANELS} SET registered_by = 'operator' WHERE panel_id = :p"), {"p": panel_id})
        _retire(conn, [panel_id], _now(now), reason)
    return True


def _retire(conn: Connection, panel_ids: list[str], now: datetime, reason: str) -> int:
    retired = 0
    for chunk in _chunks(panel_ids, 1000):
        retired += conn.execute(text(
            f"UPDATE {PANELS} SET retired_at = :now, updated_at = :now WHERE panel_id IN :ids AND retired_at IS NULL"
        ).bindparams(bindparam("ids", expanding=True)), {"now": now, "ids": chunk}).rowcount
        conn.execute(text(
            f"UPDATE {PANEL_ALERTS} SET state = 'resolved', resolved_at = :now, last_checked = :now, "
            "detail = LEFT(CONCAT(COALESCE(detail, ''), ' [panel ', :reason, ']'), 255) "
            "WHERE state = 'open' AND panel_id IN :ids").bindparams(bindparam("ids", expanding=True)),
            {"now": now, "ids": chunk, "reason": reason})
    notifications.record_retired_panels(conn, panel_ids, now)  # the resolved alerts' events, in this transaction
    return retired
