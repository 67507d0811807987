"""Grafana's MySQL macros, expanded the way Grafana's MySQL datasource expands them, for tests.

Grafana turns `$__timeFilter(col)` into `col BETWEEN FROM_UNIXTIME(<from>) AND FROM_UNIXTIME(<to>)`,
`$__timeGroupAlias(col, '30s')` into `UNIX_TIMESTAMP(col) DIV 30 * 30 AS "time"`, and so on (its
pkg/tsdb/mysql macros). With the datasource's session in UTC, as provisioned, FROM_UNIXTIME and
UNIX_TIMESTAMP agree with the UTC DATETIME(3) columns. Anything Grafana would expand that this
module does not know is an error, so a dashboard cannot use a macro the tests never ran.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

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


def _split_args(text: str) -> list[str]:
    args, depth, current = [], 0, []
    for char in text:
        if char == "," and depth == 0:
            args.append("".join(current).strip())
            current = []
            continue
        depth += char == "("
        depth -= char == ")"
        current.append(char)
    if "".join(current).strip():
        args.append("".join(current).strip())
    return args


def _macro(name: str, args: list[str], ctx: QueryContext) -> str:
    start, end = int(ctx.time_from.timestamp()), int(ctx.time_to.timestamp())
    if name == "timeFilter":
        (column,) = args
        return f"{column} BETWEEN FROM_UNIXTIME({start}) AND FROM_UNIXTIME({end})"
    if name == "timeFrom" and not args:
        return f"FROM_UNIXTIME({start})"
    if name == "timeTo" and not args:
        return f"FROM_UNIXTIME({end})"
    if name == "unixEpochFilter":
        (column,) = args
        return f"{column} >= {start} AND {column} <= {end}"
    if name in ("timeGroup", "timeGroupAlias"):
        if len(args) not in (2, 3):
            raise ValueError(f"${name} needs (column, interval[, fill]), got {args}")
        seconds = parse_duration(args[1])
        expr = f"UNIX_TIMESTAMP({args[0]}) DIV {seconds:.0f} * {seconds:.0f}"
        return expr + ' AS "time"' if name == "timeGroupAlias" else expr
    raise ValueError(f"unknown or misused Grafana macro $__{name}({', '.join(args)})")


def expand(sql: str, ctx: QueryContext) -> str:
    """The SQL Grafana would send for `sql` in `ctx`; raises on an unknown macro or variable."""
    interval_s = parse_duration(ctx.interval)
    # Global variables first ($__interval_ms before its prefix $__interval).
    interval_ms = str(int(interval_s * 1000))
    sql = sql.replace("$__interval_ms", interval_ms).replace("${__interval_ms}", interval_ms)
    sql = sql.replace("$__interval", ctx.interval).replace("${__interval}", ctx.interval)
    out, pos = [], 0
    for match in re.finditer(r"\$__(\w+)\(", sql):
        if match.start() < pos:
            continue
        depth, i = 1, match.end()
        while depth:
            if i >= len(sql):
                raise ValueError(f"unbalanced parentheses after $__{match.group(1)}")
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            i += 1
        out.append(sql[pos : match.start()])
        out.append(_macro(match.group(1), _split_args(sql[match.end() : i - 1]), ctx))
        pos = i
    sql = "".join(out) + sql[pos:]
    for name, value in (ctx.variables or {}).items():
        sql = sql.replace("${" + name + "}", value).replace("[[" + name + "]]", value)
        sql = re.sub(r"\$" + re.escape(name) + r"\b", value, sql)
    leftover = re.search(r"\$\{?\w+|\[\[\w+\]\]", sql)
    if leftover:
        raise ValueError(f"unexpanded Grafana variable or macro {leftover.group(0)!r} in:\n{sql}")
    return sql


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
