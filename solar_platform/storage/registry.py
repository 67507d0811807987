"""The panel registry (`panels`): who is in the fleet, with what nameplate Pmax, and who left it.

- `sync_panel_registry`: the fleet config's panels (registered_by 'fleet'), plus every panel the
  stream has seen ('seen', no Pmax); fleet panels that left the config are retired.
- `register_panel` / `retire_panel`: an operator's word (CLI `solar-platform panels ...`); an
  operator's Pmax is never overwritten by the sync, and an operator's panel is never retired by it.
- Retiring resolves the panel's open alerts (with the reason) and takes it out of fault detection,
  so a panel that was removed does not alert as silent for good. Its rows and history stay.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, bindparam, text

from solar_platform.contracts import PANEL_ID_RULE, is_valid_panel_id
from solar_platform.storage import notifications
from solar_platform.storage.db import PANEL_ALERTS, PANELS

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


def sync_panel_registry(engine: Engine, configured_pmax: Mapping[str, float], now: datetime | None = None
                        ) -> dict[str, int]:
    """Upsert the configured panels' Pmax, record first/last seen, retire fleet panels no longer configured."""
    moment = _now(now)
    with engine.begin() as conn:
        for chunk in _chunks(list(configured_pmax.items()), 5000):
            conn.execute(text(
                f"INSERT INTO {PANELS} (panel_id, pmax_w, registered_by, updated_at) "
                "VALUES (:pid, :pmax, 'fleet', UTC_TIMESTAMP(3)) ON DUPLICATE KEY UPDATE "
                "updated_at = IF(registered_by = 'operator' OR (pmax_w <=> VALUES(pmax_w) AND retired_at IS NULL), "
                "                updated_at, UTC_TIMESTAMP(3)), "
                "retired_at = IF(registered_by = 'operator', retired_at, NULL), "
                "pmax_w = IF(registered_by = 'operator', pmax_w, VALUES(pmax_w)), "
                "registered_by = IF(registered_by = 'operator', 'operator', 'fleet')"),
                [{"pid": pid, "pmax": float(pmax)} for pid, pmax in chunk])
        # what the stream has seen: panel_latest (kept by the stream) when the schema has it
        source = ("SELECT panel_id, first_seen, last_seen FROM panel_latest" if has_table(conn, "panel_latest")
                  else "SELECT Panel_id AS panel_id, MIN(time_data) AS first_seen, MAX(time_data) AS last_seen "
                       "FROM panelData GROUP BY Panel_id")
        seen = conn.execute(text(
            f"INSERT INTO {PANELS} (panel_id, pmax_w, registered_by, first_seen, last_seen, updated_at) "
            f"SELECT x.panel_id, NULL, 'seen', x.first_seen, x.last_seen, UTC_TIMESTAMP(3) FROM ({source}) x "
            "ON DUPLICATE KEY UPDATE "
            # Qualified: the SELECT has columns of the same names (MariaDB calls them ambiguous).
            f"{PANELS}.first_seen = LEAST(COALESCE({PANELS}.first_seen, VALUES(first_seen)), VALUES(first_seen)), "
            f"{PANELS}.last_seen = GREATEST(COALESCE({PANELS}.last_seen, VALUES(last_seen)), VALUES(last_seen))")
        ).rowcount
        fleet_ids = [pid for (pid,) in conn.execute(text(
            f"SELECT panel_id FROM {PANELS} WHERE registered_by = 'fleet' AND retired_at IS NULL"))]
        gone = sorted(set(fleet_ids) - set(configured_pmax))
        retired = _retire(conn, gone, moment, "left the fleet config")
        total, configured, reporting, retired_total = conn.execute(text(
            "SELECT COUNT(*), COUNT(IF(retired_at IS NULL, pmax_w, NULL)), COUNT(last_seen), COUNT(retired_at) "
            f"FROM {PANELS}")).one()
    return {"panels": int(total), "configured": int(configured), "seen": int(reporting),
            "seen_rows_touched": int(seen), "retired_now": retired, "retired": int(retired_total)}


def register_panel(engine: Engine, panel_id: str, pmax_w: float, now: datetime | None = None) -> None:
    """Register (or re-register, un-retiring) a panel with its nameplate Pmax, as an operator."""
    if not is_valid_panel_id(panel_id):
        raise ValueError(f"invalid panel id {panel_id!r}: a panel id is {PANEL_ID_RULE}")
    if not pmax_w > 0:
        raise ValueError(f"Pmax must be positive, got {pmax_w}")
    with engine.begin() as conn:
        conn.execute(text(
            f"INSERT INTO {PANELS} (panel_id, pmax_w, registered_by, updated_at) VALUES (:p, :w, 'operator', :now) "
            "ON DUPLICATE KEY UPDATE pmax_w = VALUES(pmax_w), registered_by = 'operator', retired_at = NULL, "
            "updated_at = VALUES(updated_at)"), {"p": panel_id, "w": float(pmax_w), "now": _now(now)})


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
