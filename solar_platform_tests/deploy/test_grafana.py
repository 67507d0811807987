"""Grafana's provisioning and dashboards: well-formed, on the read-only datasource, and every query
runs against the real schema as the read-only user."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import pytest

from solar_platform.contracts import PANEL_ID_MAX_LENGTH, PANEL_ID_PATTERN, is_valid_panel_id
from solar_platform_tests.deploy.grafana_sql import (
    GRAFANA_DIR,
    PROJECT_DIR,
    QueryContext,
    dashboards,
    expand,
    load_yaml,
    percent_encode,
    queries,
    relative_range,
    variable_names,
    walk_panels,
)
from solar_platform_tests.streaming.cases import HOSTILE_PANEL_IDS

DATASOURCES = GRAFANA_DIR / "provisioning" / "datasources" / "mysql.yaml"
PROVIDERS = GRAFANA_DIR / "provisioning" / "dashboards" / "solar.yaml"
EXPECTED = {"Fleet overview", "Panel detail", "Health & pipeline", "Daily energy"}


def _datasource() -> dict:
    (source,) = load_yaml(DATASOURCES)["datasources"]
    return source


# ---------------------------------------------------------------- unit
def test_datasource_is_mysql_as_the_readonly_user():
    source = _datasource()
    assert source["uid"] == "solar-mysql" and source["type"] == "mysql"
    assert source["user"] == "${SOLAR_MYSQL_READONLY_USER}"
    assert source["secureJsonData"]["password"] == "${SOLAR_MYSQL_READONLY_PASSWORD}"
    assert source["jsonData"]["database"] == "${SOLAR_MYSQL_DATABASE}"
    assert source["jsonData"]["timezone"] == "+00:00"


def test_grafana_container_gets_what_provisioning_reads():
    import re

    compose = load_yaml(PROJECT_DIR / "docker-compose.yml")
    grafana = compose["services"]["grafana"]
    env = grafana["environment"]
    for name in set(re.findall(r"\$\{(\w+)\}", DATASOURCES.read_text())):
        assert name in env, f"grafana's environment lacks {name}"
    assert "WRITER" not in " ".join(env)  # Grafana never gets the writer's credentials
    provider_path = load_yaml(PROVIDERS)["providers"][0]["options"]["path"]
    assert f"./grafana/dashboards:{provider_path}:ro" in grafana["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider_path + "/")
    assert (GRAFANA_DIR / "dashboards" / home.rsplit("/", 1)[1]).exists()


def test_dashboards_are_valid_and_use_the_provisioned_datasource():
    uid = _datasource()["uid"]
    boards = dashboards()
    assert {board["title"] for board in boards.values()} == EXPECTED
    uids = [board["uid"] for board in boards.values()]
    assert len(set(uids)) == len(uids), uids
    for name, board in boards.items():
        assert "id" not in board or board["id"] is None, f"{name}: provisioned dashboards carry no id"
        panels = list(walk_panels(board["panels"]))
        ids = [panel["id"] for panel in panels]
        assert len(set(ids)) == len(ids), f"{name}: duplicate panel ids"
        for panel in panels:
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "mysql", "uid": uid}, f"{name}: {panel['title']}"
            assert panel["targets"], f"{name}: {panel['title']} has no query"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == uid
                assert target["rawQuery"] and target["rawSql"].strip()
                assert target["format"] in ("time_series", "table")
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                assert variable["datasource"]["uid"] == uid


def test_time_series_queries_group_with_grafana_macros():
    for board in dashboards().values():
        for query in queries(board):
            if query.fmt == "time_series":
                assert "$__timeGroupAlias(" in query.sql or " AS time" in query.sql, query.where
            assert "NOW()" not in query.sql.upper(), f"{query.where}: use $__timeTo() or UTC_TIMESTAMP()"


def test_macro_expander_matches_grafana():
    start = datetime(2025, 6, 1, tzinfo=UTC)
    ctx = QueryContext(start, start + timedelta(hours=1), "1m", {"panel": "panel-7"})
    t0, t1 = int(start.timestamp()), int(start.timestamp()) + 3600
    assert expand("WHERE $__timeFilter(a.ts)", ctx) == f"WHERE a.ts BETWEEN FROM_UNIXTIME({t0}) AND FROM_UNIXTIME({t1})"
    assert expand("$__timeGroupAlias(ts, '5m')", ctx) == 'UNIX_TIMESTAMP(ts) DIV 300 * 300 AS "time"'
    assert expand("$__timeGroupAlias(ts, $__interval)", ctx) == 'UNIX_TIMESTAMP(ts) DIV 60 * 60 AS "time"'
    assert expand("$__timeFrom() $__timeTo() $__interval_ms", ctx) == f"FROM_UNIXTIME({t0}) FROM_UNIXTIME({t1}) 60000"
    assert expand("id = '$panel' OR id = '${panel}'", ctx) == "id = 'panel-7' OR id = 'panel-7'"
    with pytest.raises(ValueError, match="unexpanded"):
        expand("id = '$unknown'", ctx)
    with pytest.raises(ValueError, match="unknown or misused"):
        expand("$__timeEpoch(ts)", ctx)
    # Values: quotes doubled, backslashes kept (SqlDatasource.interpolateVariable); never re-expanded.
    hostile = QueryContext(start, start + timedelta(hours=1), "1m", {"panel": "\\' OR 1=1 -- ${panel} $__interval"})
    assert expand("id = '${panel}'", hostile) == "id = '\\'' OR 1=1 -- ${panel} $__interval'"
    assert expand("id = '${panel:percentencode}'", hostile) == (
        "id = '%5C%27%20OR%201%3D1%20--%20%24%7Bpanel%7D%20%24__interval'")
    assert expand("id IN (${panel:sqlstring})", ctx) == "id IN ('panel-7')"
    with pytest.raises(ValueError, match="not modelled"):
        expand("id = ${panel:raw}", ctx)
    with pytest.raises(ValueError, match="refuses"):
        expand("SELECT CURRENT_USER()", ctx)


def test_percent_encoding_with_colons_decoded_is_the_identity_on_valid_ids_only():
    """What `REPLACE('${panel:percentencode}', '%3A', ':')` gives MySQL: a valid id unchanged; a hostile
    one still percent-encoded (it keeps a `%`), so it equals no valid id, or it is inert."""
    for panel_id in ("panel-000001", "site-7:row_2.panel-3", "0", "p" * 64, "a::b"):
        assert percent_encode(panel_id).replace("%3A", ":") == panel_id
    for panel_id in HOSTILE_PANEL_IDS.values():
        decoded = percent_encode(panel_id).replace("%3A", ":")
        assert re.fullmatch(r"[A-Za-z0-9._~%:-]*", decoded), panel_id
        assert "%" in decoded or (decoded == panel_id and not is_valid_panel_id(panel_id)), panel_id


def _panel_variable() -> dict:
    (board,) = [b for b in dashboards().values() if b["title"] == "Panel detail"]
    (variable,) = [v for v in board["templating"]["list"] if v["name"] == "panel"]
    return variable


def test_panel_variable_lists_only_valid_ids_and_reaches_sql_percent_encoded():
    variable = _panel_variable()
    assert variable["multi"] is False and variable["includeAll"] is False  # one value, no All
    assert variable["regex"] == f"/{PANEL_ID_PATTERN}/"  # the contract's pattern, as Grafana applies it
    assert variable["allowCustomValue"] is False
    users = 0
    for board in dashboards().values():
        for query in queries(board):
            for name in ("panel", "search"):
                bare = query.sql.replace(f"REPLACE('${{{name}:percentencode}}', '%3A', ':')", "")
                assert name not in variable_names(bare), f"{query.where}: ${name} outside the percent-encoded form"
            users += "panel" in variable_names(query.sql)
    assert users >= 10


def test_panel_variable_lists_a_bounded_prefix_range_of_the_registry():
    """At 200k panels the list of every id took 763 ms: the list is the ids starting with the search
    box's text, one range of the registry's key, at most 500 of them."""
    (board,) = [b for b in dashboards().values() if b["title"] == "Panel detail"]
    names = [v["name"] for v in board["templating"]["list"]]
    assert names.index("search") < names.index("panel")  # Grafana resolves the box first
    (search,) = [v for v in board["templating"]["list"] if v["name"] == "search"]
    assert search["type"] == "textbox"
    sql = _panel_variable()["query"]
    assert "search" in variable_names(sql) and re.search(r"ORDER BY panel_id LIMIT \d+$", sql)
    # [prefix, prefix~) holds exactly the ids with that prefix: '~' sorts after every character they may hold
    assert all(chr(c) < "~" for c in range(128) if is_valid_panel_id("a" + chr(c)))


# ---------------------------------------------------------------- integration
PANELS = {"panel-1": 410.0, "panel-2": 385.5, "panel-3": 402.25}


def _seed(settings, now: datetime) -> None:
    """A few minutes of a 3-panel fleet, as the stream, the fleet sync and Dagster would write it: the
    readings through the stream's own commit (windows, buckets, latest readings, fleet counters and
    progress rows in step), the registry by its sync, the rest as Dagster writes it."""
    from sqlalchemy import text

    from solar_platform.storage import db
    from solar_platform.storage.health.alerts import PipelineAlarm, apply_pipeline_alarm
    from solar_platform.storage.health.registry import sync_panel_registry
    from solar_platform_tests.stream_writes import write_as_stream

    def ts(delta: timedelta) -> datetime:
        return (now - delta).replace(tzinfo=None)

    sync_panel_registry(db.engine(settings, bulk_load=True), PANELS, now - timedelta(days=2))
    readings = []
    for i, (panel, pmax) in enumerate(PANELS.items()):
        for step in range(60):  # 5 minutes at 5 s, the newest at `now`
            offline = panel == "panel-3" and step < 10
            readings.append((panel, 0.0 if offline else pmax * (0.5 + 0.01 * i), 0 if offline else 1,
                             ts(timedelta(seconds=5 * step))))
    write_as_stream(settings, readings, commit_delay_seconds=0.0)
    today = now.date()
    with db.engine(settings, role="migrator").begin() as conn:
        conn.execute(text(
            "INSERT INTO dead_letters (kafka_topic, kafka_partition, kafka_offset, kafka_key, payload, reason,"
            " kafka_timestamp, recorded_at) VALUES (:topic, 0, :o, 'panel-1', :payload, :reason, :t, :t)"),
            [{"topic": settings.topic, "o": o, "payload": b'{"Panel_id": "panel-1", "power_panel": "x"}',
              "reason": reason, "t": ts(timedelta(minutes=o))}
             for o, reason in enumerate(["invalid_json", "missing_field", "invalid_json"])])
        conn.execute(text(
            "INSERT INTO panel_alerts (panel_id, kind, state, opened_at, resolved_at, last_checked, detail)"
            " VALUES (:p, :k, :s, :o, :r, :c, :d)"),
            [{"p": "panel-3", "k": "offline", "s": "open", "o": ts(timedelta(minutes=4)), "r": None,
              "c": ts(timedelta(0)), "d": "status 0 for 50 s"},
             {"p": "panel-2", "k": "underperforming", "s": "resolved", "o": ts(timedelta(hours=2)),
              "r": ts(timedelta(hours=1)), "c": ts(timedelta(hours=1)), "d": "62% of fleet median"},
             {"p": "panel-1", "k": "silent", "s": "open", "o": ts(timedelta(minutes=20)), "r": None,
              "c": ts(timedelta(0)), "d": None}])
        apply_pipeline_alarm(conn, PipelineAlarm(True, 185.0, "readings committed up to 3 min ago"),
                             now - timedelta(minutes=2))
        for days_ago in (0, 1, 2):
            day = today - timedelta(days=days_ago)
            conn.execute(text(
                "INSERT INTO panel_daily_energy (day, panel_id, energy_wh, covered_seconds, peak_w, pmax_w, "
                "uptime_share, readings_received, readings_expected, computed_at) "
                "VALUES (:d, :p, :e, 84000, :pk, :w, :u, 700, 720, :c)"),
                [{"d": day, "p": p, "e": w * 0.6, "pk": w * 0.98, "w": w, "u": 0.97, "c": ts(timedelta(0))}
                 for p, w in PANELS.items()])
            conn.execute(text(
                "INSERT INTO fleet_daily_energy (day, energy_wh, covered_seconds, peak_panel_w, panels_reporting, "
                "readings_received, readings_expected, mean_uptime_share, computed_at) "
                "VALUES (:d, :e, 252000, :pk, 3, 2100, 2160, 0.97, :c)"),
                {"d": day, "e": sum(PANELS.values()) * 0.6, "pk": 402.0, "c": ts(timedelta(0))})
            conn.execute(text(
                "INSERT INTO site_daily_energy (site_id, day, time_zone, energy_wh, covered_seconds, day_seconds, "
                "panels, panels_reporting, kwp, expected_wh, computed_at) "
                "VALUES ('default', :d, 'UTC', :e, 252000, 86400, 3, 3, :kwp, :x, :c)"),
                {"d": day, "e": sum(PANELS.values()) * 0.6, "kwp": sum(PANELS.values()) / 1000,
                 "x": sum(PANELS.values()) * 0.75, "c": ts(timedelta(0))})
        conn.execute(text("INSERT INTO orchestration_run_failures VALUES ('run-1', 'daily_rollup_job', :t, :m)"),
                     {"t": ts(timedelta(minutes=30)), "m": "Spark JDBC write failed"})


def derive(conn, settings, start: datetime, end: datetime) -> None:
    """Energy buckets and panel_latest from panelData, as `solar-platform rebuild` computes them."""
    from solar_platform.storage import energy
    from solar_platform.storage.periods import to_grid

    energy.recompute_buckets(conn, to_grid(start), to_grid(end, up=True), settings.energy_max_gap_seconds)
    energy.recompute_latest(conn)


@pytest.mark.integration
def test_every_dashboard_query_runs_as_the_readonly_user(fresh_settings):
    from solar_platform.storage import db

    now = datetime.now(UTC).replace(microsecond=0)
    _seed(fresh_settings, now)
    readonly = db.engine(fresh_settings, readonly=True)
    ran, empty = 0, []
    raw = readonly.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT CURRENT_USER()")
        assert cursor.fetchone()[0].startswith(fresh_settings.mysql_readonly_user + "@")
        # Grafana's session is UTC too (jsonData.timezone), so FROM_UNIXTIME matches the stored UTC.
        cursor.execute("SET time_zone = '+00:00'")
        for board, site in ((board, site) for board in dashboards().values() for site in ("(all)", "default")):
            start = relative_range(board["time"]["from"], now)
            for query in queries(board):
                ctx = QueryContext(start, now, query.interval, {"panel": "panel-3", "site": site, "search": "panel-"})
                sql = expand(query.sql, ctx)
                try:
                    cursor.execute(sql)
                except Exception as exc:  # noqa: BLE001 - report which panel, with its SQL
                    pytest.fail(f"{query.dashboard} / {query.where} failed: {exc}\n{sql}")
                rows = cursor.fetchall()
                columns = [d[0] for d in cursor.description]
                if query.fmt == "time_series":
                    assert columns[0] == "time", f"{query.dashboard} / {query.where}: columns {columns}"
                if not rows or all(value is None for value in rows[0]):
                    empty.append(f"{query.dashboard} / {query.where}")
                ran += 1
        with pytest.raises(Exception, match="denied"):
            cursor.execute("DELETE FROM panelData")
    finally:
        raw.close()
    assert ran >= 35
    # Every table the dashboards read was seeded: a query that finds nothing has a logic error.
    assert not empty, f"queries that returned no data: {empty}"


def _row_counts(settings) -> dict[str, int]:
    from sqlalchemy import text

    from solar_platform.storage import db

    with db.engine(settings, role="migrator").connect() as conn:
        tables = conn.execute(text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()")).scalars().all()
        return {table: conn.execute(text(f"SELECT COUNT(*) FROM `{table}`")).scalar_one() for table in tables}


@pytest.mark.integration
def test_hostile_panel_ids_in_the_panel_variable_are_inert(fresh_settings):
    """Every dashboard query that reads `$panel`, expanded with each hostile id the way Grafana would
    if one were forced in (a URL's `var-panel=`), runs as the reader: no SQL error, no data (exactly
    what an unknown panel gets, even with rows stored under that very id), nothing changed.

    The stream cannot store such ids (streaming/cases.py: both parsers dead-letter them); the rows
    here are written directly, as data from before the rule would be.
    """
    from sqlalchemy import text

    from solar_platform.storage import db

    now = datetime.now(UTC).replace(microsecond=0)
    _seed(fresh_settings, now)
    at = (now - timedelta(minutes=1)).replace(tzinfo=None)
    # Rows under every id that percent-encoding changes. The others ("-panel", "..") are made of safe
    # characters only: Grafana's value is that very string, and it can only ever match itself.
    storable = [panel_id for panel_id in HOSTILE_PANEL_IDS.values()
                if len(panel_id) <= PANEL_ID_MAX_LENGTH and percent_encode(panel_id).replace("%3A", ":") != panel_id]
    assert len(storable) >= 30
    with db.engine(fresh_settings, role="migrator").begin() as conn:
        conn.execute(text("INSERT INTO panelData VALUES (:p, 999, 1, :t)"), [{"p": p, "t": at} for p in storable])
        conn.execute(text("INSERT INTO panels (panel_id, pmax_w) VALUES (:p, 400)"), [{"p": p} for p in storable])
    before = _row_counts(fresh_settings)
    panel_queries = [(board, query) for board in dashboards().values() for query in queries(board)
                     if "panel" in variable_names(query.sql)]
    assert len(panel_queries) >= 10

    raw = db.engine(fresh_settings, readonly=True).raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SET time_zone = '+00:00'")

        def run(sql: str) -> list[tuple]:
            cursor.execute(sql)
            return [tuple(row) for row in cursor.fetchall()]

        failures = []
        for board, query in panel_queries:
            start = relative_range(board["time"]["from"], now)
            unknown = run(expand(query.sql, QueryContext(start, now, query.interval, {"panel": "no-such-panel"})))
            for name, panel_id in HOSTILE_PANEL_IDS.items():
                sql = expand(query.sql, QueryContext(start, now, query.interval, {"panel": panel_id}))
                try:
                    rows = run(sql)
                except Exception as exc:  # noqa: BLE001 - collect every failure with its SQL
                    failures.append(f"{query.where} / {name}: {exc}\n{sql}")
                    continue
                if rows != unknown:
                    failures.append(f"{query.where} / {name}: {rows} (an unknown panel gets {unknown})\n{sql}")
        # The search box forced to each hostile text: the list still runs, and only offers ids that start
        # with the text as percent-encoded (a `%` in it matches no valid id).
        (listing,) = [q.sql for board in dashboards().values() for q in queries(board) if q.where == "variable panel"]
        for name, typed in HOSTILE_PANEL_IDS.items():
            sql = expand(listing, QueryContext(now, now, "30s", {"search": typed}))
            try:
                rows = run(sql)
            except Exception as exc:  # noqa: BLE001 - collect every failure with its SQL
                failures.append(f"variable panel / {name}: {exc}\n{sql}")
                continue
            prefix = percent_encode(typed).replace("%3A", ":")
            if any(not row[0].startswith(prefix) for row in rows):
                failures.append(f"variable panel / {name}: {rows}\n{sql}")
        assert not failures, "\n".join(failures)

        # Why the dashboards percent-encode: Grafana's own quoting, on a `'${panel}'` literal, lets a
        # backslash end the literal, and the rest of the value is SQL.
        naive = "SELECT COUNT(*) FROM panelData WHERE Panel_id = '${panel}'"
        ctx = QueryContext(now - timedelta(hours=1), now, "30s", {"panel": HOSTILE_PANEL_IDS["backslash_quote"]})
        assert run(expand(naive, ctx))[0][0] == before["panelData"]

        # And the reader could not have written anyway.
        for statement in ("INSERT INTO panelData VALUES ('x', 1, 1, UTC_TIMESTAMP())",
                          "UPDATE panels SET pmax_w = 1", "DELETE FROM panelData", "DROP TABLE panelData",
                          "CREATE TABLE grafana_was_here (x INT)", "TRUNCATE TABLE panel_alerts"):
            with pytest.raises(Exception, match="denied"):
                cursor.execute(statement)
    finally:
        raw.close()
    assert _row_counts(fresh_settings) == before


def _panel_query(board_title: str, panel_title: str) -> str:
    board = next(b for b in dashboards().values() if b["title"] == board_title)
    (panel,) = [p for p in walk_panels(board["panels"]) if p["title"] == panel_title]
    return panel["targets"][0]["rawSql"]


def _grafana_rows(cursor, board: str, panel: str, ctx: QueryContext, ref: int = 0) -> list[tuple]:
    board_json = next(b for b in dashboards().values() if b["title"] == board)
    (found,) = [p for p in walk_panels(board_json["panels"]) if p["title"] == panel]
    cursor.execute(expand(found["targets"][ref]["rawSql"], ctx))
    return [tuple(row) for row in cursor.fetchall()]


@pytest.mark.integration
def test_api_and_grafana_energy_are_equal(fresh_settings):
    """Same readings, same range: the API's energy and the dashboards' energy panels agree exactly, and
    the rankings of the newest rolled-up day agree with the API's daily energy of each panel."""
    from sqlalchemy import text

    from solar_platform.api.app import create_app
    from solar_platform.storage import db, rollups

    start = datetime(2024, 6, 3, 10, 0)
    rows = []
    for i, panel in enumerate(("panel-a", "panel-b", "panel-c")):
        for step in range(0, 3 * 3600, 5):  # three hours at 5 s; panel-c misses 40 minutes
            if panel == "panel-c" and 3600 <= step < 3600 + 2400:
                continue
            rows.append({"p": panel, "w": 300.0 + 50 * i + 100 * math.sin(step / 1800), "s": 1,
                         "t": start + timedelta(seconds=step)})
    pmax = {"panel-a": 400.0, "panel-b": 380.0, "panel-c": 420.0}
    with db.engine(fresh_settings, role="migrator").begin() as conn:
        conn.execute(text("INSERT INTO panelData VALUES (:p, :w, :s, :t)"), rows)
        conn.execute(text("INSERT INTO panels (panel_id, pmax_w) VALUES (:p, :w)"),
                     [{"p": p, "w": w} for p, w in pmax.items()])
        derive(conn, fresh_settings, start, start + timedelta(hours=3))
    rolled = rollups.roll_up_days(db.engine(fresh_settings), fresh_settings, "grafana-test", [start.date()])
    assert rolled.passed and rolled.served == (3, 1), rolled.checks

    range_from, range_to = start + timedelta(minutes=30), start + timedelta(hours=2, minutes=45)
    ctx = QueryContext(range_from.replace(tzinfo=UTC), range_to.replace(tzinfo=UTC), "15m",
                       {"panel": "panel-c", "site": "(all)"})
    client = create_app(fresh_settings, rate_per_second=None,
                        clock=lambda: (start + timedelta(hours=3)).replace(tzinfo=UTC)).test_client()
    window = {"from": range_from.isoformat() + "Z", "to": range_to.isoformat() + "Z", "unit": "QUARTER_OF_AN_HOUR"}
    day = {"from": "2024-06-03T00:00:00Z", "to": "2024-06-04T00:00:00Z", "unit": "DAY"}

    raw = db.engine(fresh_settings, readonly=True).raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SET time_zone = '+00:00'")
        ((grafana_wh, grafana_coverage),) = _grafana_rows(cursor, "Panel detail", "Energy (time range)", ctx)
        api = client.get("/api/v1/panels/panel-c/energy", query_string=window).get_json()
        assert api["total_wh"] > 0 and float(grafana_wh) == pytest.approx(api["total_wh"], rel=1e-12)
        assert float(grafana_coverage) == pytest.approx(api["coverage"], rel=1e-12)
        assert api["coverage"] == pytest.approx(1 - 2405 / (2.25 * 3600), rel=1e-9)  # 3595 s -> 6000 s: no credit

        # The rankings: the newest rolled-up day up to the end of the range, each panel's figure the API's.
        top = _grafana_rows(cursor, "Fleet overview", "Top 10 panels by energy (newest rolled-up day)", ctx)
        api_day = {panel: client.get(f"/api/v1/panels/{panel}/energy", query_string=day).get_json()["total_wh"]
                   for panel in pmax}
        assert [row[0] for row in top] == sorted(api_day, key=api_day.get, reverse=True)
        for panel, rolled_day, wh, *_ in top:
            assert str(rolled_day) == "2024-06-03" and float(wh) == pytest.approx(api_day[panel], rel=1e-12), panel
        fleet_day = client.get("/api/v1/fleet/energy", query_string=day).get_json()
        assert sum(float(row[2]) for row in top) == pytest.approx(fleet_day["total_wh"], rel=1e-12)
        bottom = _grafana_rows(cursor, "Fleet overview",
                               "Bottom 10 panels by energy per rated watt (newest rolled-up day)", ctx)
        yields = {panel: wh / pmax[panel] for panel, wh in api_day.items()}
        assert [row[0] for row in bottom] == sorted(yields, key=yields.get)
        for panel, _day, _wh, _mean, _peak, rated, per_rated_w, _coverage in bottom:
            assert float(rated) == pmax[panel] and float(per_rated_w) == pytest.approx(yields[panel], rel=1e-12)
        lowest = _grafana_rows(cursor, "Daily energy",
                               "Lowest 50 panels by energy per rated kW (newest day in range)",
                               QueryContext(datetime(2024, 5, 5, tzinfo=UTC), range_to.replace(tzinfo=UTC),
                                            variables={"site": "(all)"}))
        assert [(row[0], float(row[3])) for row in lowest] == [(p, pytest.approx(yields[p], rel=1e-12))
                                                               for p in sorted(yields, key=yields.get)]

        series = dict(_grafana_rows(cursor, "Fleet overview", "Fleet power (15-min means)", ctx))
        fleet = client.get("/api/v1/fleet/energy", query_string=window).get_json()
        by_quarter = {datetime.fromisoformat(v["date"].replace("Z", "+00:00")).timestamp(): v["value"]
                      for v in fleet["values"]}
        assert series
        for moment, watts in series.items():
            if int(moment) in by_quarter:
                assert float(watts) / 4 == pytest.approx(by_quarter[int(moment)], rel=1e-12)
    finally:
        raw.close()


@pytest.mark.integration
def test_api_and_grafana_fleet_now_are_equal(fresh_settings):
    """The overview's power now and panels (the stream's `fleet_now` row) are the API's, within the
    horizon and past it (a stream that stopped: nobody reports, power 0)."""
    from solar_platform.api.app import create_app
    from solar_platform.storage import db

    now = datetime.now(UTC).replace(microsecond=0)
    _seed(fresh_settings, now)
    horizon = fresh_settings.current_power_horizon_seconds
    raw = db.engine(fresh_settings, readonly=True).raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SET time_zone = '+00:00'")
        for clock, reporting in ((now + timedelta(seconds=10), 3), (now + timedelta(seconds=horizon + 5), 0)):
            ctx = QueryContext(clock - timedelta(hours=6), clock, variables={"site": "(all)"})
            api = create_app(fresh_settings, rate_per_second=None, clock=lambda c=clock: c).test_client().get(
                "/api/v1/fleet/overview").get_json()
            ((power,),) = _grafana_rows(cursor, "Fleet overview", "Fleet power now", ctx)
            ((reporting_now, online),) = _grafana_rows(cursor, "Fleet overview", "Panels", ctx)
            ((registered,),) = _grafana_rows(cursor, "Fleet overview", "Panels", ctx, ref=1)
            assert (int(reporting_now), int(online), int(registered)) == (
                api["panels_reporting"], api["panels_online"], api["panels_expected"]) == (reporting, reporting - 1
                                                                                            if reporting else 0, 3)
            assert float(power) == pytest.approx(api["current_power_w"], rel=1e-12)
            assert (float(power) > 0) == bool(reporting)
    finally:
        raw.close()
