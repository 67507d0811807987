"""Dashboard SQL expanded the way Grafana 12 and its MySQL datasource expand it, for tests.

Two passes, as in Grafana:
1. The browser interpolates template variables (`$var`, `${var}`, `${var:format}`, `[[var]]`), once,
   left to right; a value put in is never read again as a variable. Without a format, an SQL
   datasource writes a single-valued variable with its single quotes doubled and nothing else
   (`SqlDatasource.interpolateVariable`): backslashes stay, and MySQL reads `\'` as an escaped quote,
   so such a value can end a '...' literal. The dashboards therefore only use `${panel:percentencode}`
   (`encodeURIComponentStrict`: only `A-Za-z0-9-_.~` and `%XX` come out).
2. The server's MySQL macro engine (pkg/tsdb/mysql/macros.go) refuses queries that name the current
   user or grants, then expands `$name(args)` (args up to the first `)`): `$__timeFilter(col)` into
   `col BETWEEN FROM_UNIXTIME(<from>) AND FROM_UNIXTIME(<to>)`, `$__timeGroupAlias(col, '30s')` into
   `UNIX_TIMESTAMP(col) DIV 30 * 30 AS "time"`, and so on. With the datasource's session in UTC, as
   provisioned, FROM_UNIXTIME and UNIX_TIMESTAMP agree with the UTC DATETIME(3) columns.

Anything Grafana would expand that this module does not model is an error, so a dashboard cannot use
a variable, format or macro the tests never ran.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

PROJECT_DIR = Path(__file__).resolve().parents[2]
GRAFANA_DIR = PROJECT_DIR / "grafana"
DASHBOARD_DIR = GRAFANA_DIR / "dashboards"

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")


def parse_duration(text: str) -> float:
    """Seconds in a Grafana interval such as '30s', '5m', '1h' (quotes allowed)."""
    match = _DURATION.match(text.strip().strip("'\""))
    if not match:
        raise ValueError(f"not a Grafana interval: {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def relative_range(expr: str, now: datetime) -> datetime:
    """`now`, `now-6h`, `now-30d` (what the dashboards use) to a datetime."""
    if expr == "now":
        return now
    match = re.fullmatch(r"now-(\d+[smhdw])", expr)
    if not match:
        raise ValueError(f"unsupported time expression {expr!r}")
    return now - timedelta(seconds=parse_duration(match.group(1)))


@dataclass(frozen=True)
class QueryContext:
    time_from: datetime
    time_to: datetime
    interval: str = "30s"
    variables: Mapping[str, str] | None = None


# Grafana's template syntax (its VARIABLE_REGEX; `\w` is ASCII in JavaScript):
# $var | [[var]] or [[var:format]] | ${var}, ${var.field} or ${var:format}.
_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}", re.ASCII)
# The MySQL macro engine's macro call (sExpr) and the queries it refuses (restrictedRegExp).
_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
_RESTRICTED = re.compile(
    r"(?im)([\s]*show[\s]+grants|[\s,]session_user\([^\)]*\)|[\s,]current_user(\([^\)]*\))?|"
    r"[\s,]system_user\([^\)]*\)|[\s,]user\([^\)]*\))([\s,;]|$)",
    re.ASCII,
)


def sql_variable_value(value: str) -> str:
    """A single-valued variable (not multi, no All) without a format, as Grafana's SQL datasources
    write it: single quotes doubled, nothing else (SqlDatasource.interpolateVariable)."""
    return value.replace("'", "''")


def percent_encode(value: str) -> str:
    """Grafana's `percentencode` format (encodeURIComponentStrict): UTF-8, every byte but `A-Za-z0-9-_.~`
    as an upper-case `%XX`. Python's `quote` with nothing extra safe is exactly that."""
    return quote(value, safe="")


# The formats the dashboards may use; anything else is refused (not modelled, not tested).
_FORMATS = {
    None: sql_variable_value,
    "percentencode": percent_encode,
    "sqlstring": lambda value: "'" + value.replace("'", "''") + "'",
}


def variable_names(sql: str) -> set[str]:
    """The names of the template variables (and globals) `sql` refers to."""
    return {match.group(1) or match.group(2) or match.group(4) for match in _VARIABLE.finditer(sql)}


def interpolate(sql: str, variables: Mapping[str, str]) -> str:
    """The browser's pass: every variable reference replaced once, left to right."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        if name in variables:
            if match.group(5):
                raise ValueError(f"field paths are not modelled: {match.group(0)!r}")
            if fmt not in _FORMATS:
                raise ValueError(f"Grafana format {fmt!r} is not modelled (in {match.group(0)!r})")
            return _FORMATS[fmt](variables[name])
        if name.startswith("__") and match.group(1) and sql[match.end() : match.end() + 1] == "(":
            return match.group(0)  # a macro call: the server expands it
        raise ValueError(f"unexpanded Grafana variable or macro {match.group(0)!r} in:\n{sql}")

    return _VARIABLE.sub(replace, sql)


def _macro(name: str, args: list[str], ctx: QueryContext) -> str:
    start, end = int(ctx.time_from.timestamp()), int(ctx.time_to.timestamp())
    if name == "__timeFilter" and args[0]:
        return f"{args[0]} BETWEEN FROM_UNIXTIME({start}) AND FROM_UNIXTIME({end})"
    if name == "__timeFrom" and args == [""]:
        return f"FROM_UNIXTIME({start})"
    if name == "__timeTo" and args == [""]:
        return f"FROM_UNIXTIME({end})"
    if name == "__unixEpochFilter" and args[0]:
        return f"{args[0]} >= {start} AND {args[0]} <= {end}"
    if name in ("__timeGroup", "__timeGroupAlias"):
        if len(args) not in (2, 3):
            raise ValueError(f"${name} needs (column, interval[, fill]), got {args}")
        seconds = parse_duration(args[1])
        expr = f"UNIX_TIMESTAMP({args[0]}) DIV {seconds:.0f} * {seconds:.0f}"
        return expr + ' AS "time"' if name == "__timeGroupAlias" else expr
    raise ValueError(f"unknown or misused Grafana macro ${name}({', '.join(args)})")


def expand(sql: str, ctx: QueryContext) -> str:
    """The SQL Grafana would run for `sql` in `ctx`; raises where Grafana would fail, or on anything
    this module does not model (an unknown variable, format or macro)."""
    interval_s = parse_duration(ctx.interval)
    globals_ = {"__interval": ctx.interval, "__interval_ms": str(int(interval_s * 1000))}
    sql = interpolate(sql, {**globals_, **(ctx.variables or {})})
    if _RESTRICTED.search(sql):
        raise ValueError(f"Grafana's MySQL datasource refuses queries naming the user or grants:\n{sql}")
    return _MACRO.sub(lambda m: _macro(m.group(1), [arg.strip(" ") for arg in m.group(2).split(",")], ctx), sql)


# ---------------------------------------------------------------- dashboards
def dashboards() -> dict[str, dict]:
    """Every dashboard JSON file under grafana/dashboards, by file name."""
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARD_DIR.glob("*.json"))}


def walk_panels(panels: list[dict]) -> Iterator[dict]:
    """All panels, including those nested in collapsed rows."""
    for panel in panels:
        yield panel
        yield from walk_panels(panel.get("panels", []))


@dataclass(frozen=True)
class DashboardQuery:
    dashboard: str
    where: str  # panel title / refId, or "variable <name>"
    sql: str
    fmt: str  # "time_series" | "table"
    interval: str


def queries(dashboard: dict) -> Iterator[DashboardQuery]:
    """Every rawSql in a dashboard: panel targets and query variables."""
    title = dashboard["title"]
    for panel in walk_panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            yield DashboardQuery(
                title,
                f"{panel['title']} / {target.get('refId', '?')}",
                target["rawSql"],
                target.get("format", "time_series"),
                panel.get("interval") or "30s",
            )
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            sql = query["rawSql"] if isinstance(query, dict) else query
            yield DashboardQuery(title, f"variable {variable['name']}", sql, "table", "30s")


def load_yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())
