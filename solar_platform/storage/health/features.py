"""Per-minute features of every active panel, from the stream's window summaries (`panelDataAgg`).

Fault detection judges the last `lookback` minutes of each panel one minute at a time. A minute's
features (readings, readings with status 1, their mean, extremes, newest times...) are the sums and
extremes of its two 30-s window summaries, so the evaluation never reads a raw reading.

**Each minute is read once.** The features already read are kept in memory between evaluations
(`FeatureCache`, one per database and rule set, in the process that evaluates: Dagster's code
server for the `panel_health` sensor). An evaluation reads only the minutes that completed since
the previous one: about one row per panel, however long the lookback. A cold cache (a new process,
a gap longer than the lookback) reads the whole lookback once.

**Judged against the pipeline.** The newest minute judged is the last one the stream has committed
readings past (the pipeline's frontier, `pipeline_status.frontier`), never simply the wall clock:
a stream running three minutes behind is judged on the minutes it has written, and no minute is
read before its readings are in.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import Connection, text

from solar_platform.settings import DEFAULT_SITE_ID
from solar_platform.storage.db import PANEL_LATEST, PANELS, WINDOWS
from solar_platform.storage.health import faults as fault_rules
from solar_platform.storage.windows import WINDOW_SECONDS

# One row per (panel, minute slot): the minute's readings, from its window summaries.
_MINUTES = f"""
    SELECT Panel_id, FLOOR((UNIX_TIMESTAMP(window_start) - :origin) / :step) AS slot,
           SUM(reading_count), SUM(readings_on), SUM(power_on_sum) / NULLIF(SUM(readings_on), 0),
           MIN(power_on_min), MAX(power_on_max), MIN(power_min), MAX(power_max),
           UNIX_TIMESTAMP(MAX(last_on_time)), UNIX_TIMESTAMP(MAX(last_off_time)), UNIX_TIMESTAMP(MIN(first_time))
    FROM {WINDOWS} WHERE window_start >= :since AND window_start < :until
    GROUP BY Panel_id, slot"""
_REGISTRY_STAMP = f"SELECT COUNT(*), MAX(updated_at) FROM {PANELS}"
_REGISTRY = f"SELECT panel_id, pmax_w, retired_at IS NOT NULL, site_id FROM {PANELS}"
_LAST_SEEN = f"SELECT panel_id, UNIX_TIMESTAMP(last_seen) FROM {PANEL_LATEST}"
# BucketFeatures' float arrays in the column order of `_MINUTES` after the two counts.
_FLOAT_FIELDS = ("mean_on", "min_on", "max_on", "min_power", "max_power", "last_on", "last_off", "first_time")


# (site ids, times) -> the power model's P/Pmax, (times, sites): `storage.health.expected`.
ExpectedShape = Callable[[list[str], npt.NDArray[np.float64]], npt.NDArray[np.float64]]


def _naive(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC).replace(tzinfo=None)


def judged_until(now: datetime, settle_seconds: float, frontier: datetime | None, step_seconds: float) -> float:
    """End (epoch s, exclusive) of the newest minute to judge: complete by the clock after the
    settle delay, and written by the stream (before the frontier's own minute)."""
    end = now.timestamp() - settle_seconds
    if frontier is not None:
        end = min(end, frontier.replace(tzinfo=UTC).timestamp() if frontier.tzinfo is None else frontier.timestamp())
    return math.floor(end / step_seconds) * step_seconds


@dataclass
class FeatureCache:
    """What one process has read: minute features up to `until_s`, the registry, stored last seen."""

    until_s: float = -math.inf
    feats: fault_rules.BucketFeatures | None = None
    registry_stamp: tuple[object, ...] | None = None
    registry: dict[str, tuple[float | None, bool, str]] | None = None  # panel -> (pmax, retired, site)
    stored_last_seen: dict[str, float] | None = None  # panel_latest at the last full read


_CACHES: dict[tuple[object, ...], FeatureCache] = {}


def cache_for(key: tuple[object, ...]) -> FeatureCache:
    """The process's cache for one database and rule set (created empty)."""
    return _CACHES.setdefault(key, FeatureCache())


def _read_minutes(conn: Connection, origin_s: float, step: float, since_s: float, until_s: float
                  ) -> list[tuple[object, ...]]:
    if until_s <= since_s:
        return []
    return conn.execute(text(_MINUTES), {"origin": origin_s, "step": step, "since": _naive(since_s),
                                         "until": _naive(until_s)}).all()


def load_features(conn: Connection, th: fault_rules.FaultThresholds, *, until_s: float,
                  cache: FeatureCache | None = None, expected: ExpectedShape | None = None
                  ) -> fault_rules.BucketFeatures:
    """Features of the `lookback` minutes ending at `until_s` for every active panel (registered
    and not retired, or seen in the window), reading only what `cache` does not hold yet.

    Each panel's site comes with them (peers are judged per site); `expected(site_ids, times)`,
    when given, is the power model's P/Pmax per site at the buckets' middles (`model_shape`)."""
    step, m = th.step_seconds, th.lookback_buckets
    if step % WINDOW_SECONDS:
        raise ValueError(f"the health step ({step} s) must be a whole number of {WINDOW_SECONDS}-s windows")
    cache = cache or FeatureCache()
    origin_s = until_s - m * step
    warm = cache.feats is not None and cache.until_s <= until_s and until_s - cache.until_s < m * step \
        and len(cache.feats.bucket_start) == m
    read_from = cache.until_s if warm else origin_s

    stamp = tuple(conn.execute(text(_REGISTRY_STAMP)).one())
    if cache.registry is None or stamp != cache.registry_stamp:
        cache.registry = {pid: (None if pmax is None else float(pmax), bool(gone), site)
                          for pid, pmax, gone, site in conn.execute(text(_REGISTRY))}
        cache.registry_stamp = stamp
    if not warm or cache.stored_last_seen is None:
        # Panels silent for longer than the lookback: their newest reading, from what the stream keeps.
        cache.stored_last_seen = {pid: float(seen) for pid, seen in conn.execute(text(_LAST_SEEN)) if seen is not None}
    rows = _read_minutes(conn, origin_s, step, read_from, until_s)

    registry = cache.registry
    kept_ids = list(cache.feats.panel_ids) if warm and cache.feats is not None else []
    ids = sorted(({pid for pid, (_, gone, _s) in registry.items() if not gone} | set(kept_ids)
                  | {row[0] for row in rows}) - {pid for pid, (_, gone, _s) in registry.items() if gone})
    index = pd.Index(ids, dtype=object)
    feats = fault_rules.BucketFeatures.empty(
        ids, np.array([np.nan if registry.get(pid, (None,))[0] is None else registry[pid][0] for pid in ids]),
        origin_s + step * np.arange(m))
    if warm and cache.feats is not None:
        _carry_over(cache.feats, feats, index, shift=int(round((until_s - cache.until_s) / step)))
    _fill(feats, index, rows)
    newest = feats.newest_reading()[-1] if m else np.full(len(ids), -np.inf)
    stored = np.array([cache.stored_last_seen.get(pid, np.nan) for pid in ids]) if ids else np.zeros(0)
    seen = np.fmax(np.where(np.isfinite(newest), newest, np.nan), stored)
    feats.last_seen = seen
    cache.feats, cache.until_s = feats, until_s
    panel_site = [registry[pid][2] if pid in registry else DEFAULT_SITE_ID for pid in ids]
    site_ids = sorted(set(panel_site))
    feats.site_index = np.searchsorted(np.array(site_ids, dtype=object), np.array(panel_site, dtype=object)
                                       ).astype(np.int64) if ids else np.zeros(0, np.int64)
    if expected is not None:  # not cached: the model is cheap, and its sites may be edited
        feats.model_shape = expected(site_ids, feats.bucket_start + step / 2.0)
    return feats


def _carry_over(old: fault_rules.BucketFeatures, new: fault_rules.BucketFeatures, index: pd.Index, shift: int) -> None:
    """Copy the minutes both windows hold (the old window moved `shift` minutes back)."""
    m = len(new.bucket_start)
    if shift >= m:
        return
    columns = index.get_indexer(pd.Index(old.panel_ids, dtype=object))
    keep = columns >= 0
    src_cols, dst_cols = np.flatnonzero(keep), columns[keep]
    rows = np.arange(shift, m)  # old rows still in the window
    for name in ("count", "count_on", *_FLOAT_FIELDS):
        source: npt.NDArray[np.generic] = getattr(old, name)
        target: npt.NDArray[np.generic] = getattr(new, name)
        target[np.ix_(rows - shift, dst_cols)] = source[np.ix_(rows, src_cols)]


def _fill(feats: fault_rules.BucketFeatures, index: pd.Index, rows: list[tuple[object, ...]]) -> None:
    if not rows:
        return
    panel = index.get_indexer(pd.Index([row[0] for row in rows], dtype=object))
    slot = np.array([int(row[1]) for row in rows], dtype=np.int64)
    ok = (panel >= 0) & (slot >= 0) & (slot < len(feats.bucket_start))
    panel, slot = panel[ok], slot[ok]
    values = [row for row, good in zip(rows, ok.tolist(), strict=True) if good]
    feats.count[slot, panel] = np.array([int(row[2]) for row in values], dtype=np.int64)
    feats.count_on[slot, panel] = np.array([int(row[3] or 0) for row in values], dtype=np.int64)
    for k, name in enumerate(_FLOAT_FIELDS):
        getattr(feats, name)[slot, panel] = np.array(
            [np.nan if row[4 + k] is None else float(row[4 + k]) for row in values], dtype=np.float64)
