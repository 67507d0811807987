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

import io
import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import Connection, text

from solar_platform.settings import DEFAULT_SITE_ID
from solar_platform.storage.db import PANEL_LATEST, PANELS, WINDOWS
from solar_platform.storage.health import faults as fault_rules
from solar_platform.storage.windows import WINDOW_SECONDS

# The fields of one 30-s window summary that a minute's features combine, in the order of a line of
# `_WINDOW_LINES`. A minute is its windows' sums (counts, the status-1 power sum) and extremes.
_WINDOW_FIELDS = ("reading_count", "readings_on", "power_on_sum", "power_on_min", "power_on_max", "power_min",
                  "power_max", "UNIX_TIMESTAMP(last_on_time)", "UNIX_TIMESTAMP(last_off_time)",
                  "UNIX_TIMESTAMP(first_time)")
# The window summaries of `[since, until)` as text, one string per window (and per `parts` slice of the
# fleet), a line per (panel, window) led by the panel id: parsed by Arrow's CSV reader, where pymysql would
# build a Python tuple per row (12-25 s for a minute at 200k panels). Each line names its panel, so the
# lines' order does not matter. Panel ids cannot hold a space or a line break (`PANEL_ID_PATTERN`); a
# NULL is written `nan`. No ORDER BY: on the time-first key a window is one contiguous index range.
_WINDOW_LINE = "CONCAT_WS(' ', Panel_id, " + ", ".join(f"IFNULL({f}, 'nan')" for f in _WINDOW_FIELDS) + ")"
_WINDOW_LINES = f"""
    SELECT UNIX_TIMESTAMP(window_start), COUNT(*), GROUP_CONCAT({_WINDOW_LINE} SEPARATOR '\\n')
    FROM {WINDOWS} WHERE window_start >= :since AND window_start < :until
    GROUP BY window_start{{split}}"""
_SPLIT = ", MOD(CRC32(Panel_id), :parts)"
# GROUP_CONCAT's result is cut at max_allowed_packet whatever group_concat_max_len says; a window whose
# text would pass it is read again in more slices. A line is ~60-100 bytes; plan for 128.
_LINE_BYTES = 128
_TEXT_BYTES_LIMIT: int | None = None  # a lower cap than the packet's (tests: to exercise the slicing)
_REGISTRY_STAMP = f"SELECT COUNT(*), MAX(updated_at) FROM {PANELS}"
# The registry and every panel's stored last seen (440k rows at 200k panels: 2.5 s as pymysql's
# tuples) are read as text lines too, in slices of the fleet by the key's hash. The columns of a
# line, and what a row reads when a line would not parse (`_read_rows`).
_REGISTRY_COLUMNS = ("panel_id", "pmax_w", "retired", "site_id")
_REGISTRY = f"SELECT panel_id, pmax_w, retired_at IS NOT NULL AS retired, site_id FROM {PANELS}"
_LAST_SEEN_COLUMNS = ("panel_id", "last_seen")
_LAST_SEEN = f"SELECT panel_id, UNIX_TIMESTAMP(last_seen) AS last_seen FROM {PANEL_LATEST}"
_ROW_LINES = """
    SELECT COUNT(*), GROUP_CONCAT(CONCAT_WS(' ', {lines}) SEPARATOR '\\n')
    FROM ({rows}) AS row_source GROUP BY MOD(CRC32(panel_id), :parts)"""
# BucketFeatures' float arrays, in the order of `_WINDOW_FIELDS` after the two counts and the sum.
_FLOAT_FIELDS = ("mean_on", "min_on", "max_on", "min_power", "max_power", "last_on", "last_off", "first_time")
# How a minute combines each extreme of its windows (NaN, a NULL, loses to any number, as in SQL).
_EXTREMES = (("min_on", np.fmin), ("max_on", np.fmax), ("min_power", np.fmin), ("max_power", np.fmax),
             ("last_on", np.fmax), ("last_off", np.fmax), ("first_time", np.fmin))


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
    active: list[str] = field(default_factory=list)  # the registry's panels not retired, sorted
    stored_last_seen: dict[str, float] | None = None  # panel_latest at the last full read
    # The features' panels as an index, and their stored last seen in that order (the fast path's).
    index: pd.Index | None = None
    stored: npt.NDArray[np.float64] | None = None
    site_ids: list[str] = field(default_factory=list)  # the sites of `feats.site_index`, in order


_CACHES: dict[tuple[object, ...], FeatureCache] = {}


def cache_for(key: tuple[object, ...]) -> FeatureCache:
    """The process's cache for one database and rule set (created empty)."""
    return _CACHES.setdefault(key, FeatureCache())


@dataclass
class WindowMinutes:
    """Minute features read from the window summaries: `fields[name][slot - first_slot, column]` for the
    slots `first_slot`... and the panels `panel_ids` (those expected or with summaries in the range, in no
    order)."""

    first_slot: int
    panel_ids: pd.Index
    fields: dict[str, npt.NDArray[np.generic]]


class _Minutes:
    """Adds window summaries to the minutes they belong to: counts and the status-1 power sum add up,
    extremes take the extreme (a column per panel, grown as panels appear)."""

    def __init__(self, slots: int, expected_ids: list[str]) -> None:
        # The panels expected (the registry's) get their columns at once: growing (slots x 200k)
        # arrays window by window costs a second and a half of copies on a cold read.
        self.slots = slots
        self.ids = pd.Index(expected_ids, dtype=object)
        n = len(self.ids)
        self.arrays: dict[str, npt.NDArray[np.generic]] = {
            "count": np.zeros((slots, n), np.int64), "count_on": np.zeros((slots, n), np.int64),
            "on_sum": np.zeros((slots, n)), **{name: np.full((slots, n), np.nan) for name, _ in _EXTREMES}}
        self._last: tuple[npt.NDArray[np.object_], npt.NDArray[np.intp]] | None = None

    def _columns(self, ids: npt.NDArray[np.object_]) -> npt.NDArray[np.intp]:
        # Consecutive windows mostly hold the same panels in the same order: skip the hashing then.
        if self._last is not None and len(self._last[0]) == len(ids) and np.array_equal(self._last[0], ids):
            return self._last[1]
        columns = self.ids.get_indexer(ids)
        new = columns < 0
        if new.any():  # a window holds each panel once, so these are distinct
            columns[new] = len(self.ids) + np.arange(int(new.sum()))
            self.ids = self.ids.append(pd.Index(ids[new], dtype=object))
            for name, array in self.arrays.items():
                fill = 0 if name in ("count", "count_on", "on_sum") else np.nan
                self.arrays[name] = np.hstack([array, np.full((self.slots, int(new.sum())), fill, array.dtype)])
        self._last = (ids, columns)
        return columns

    def add(self, slot: int, ids: npt.NDArray[np.object_], values: npt.NDArray[np.float64]) -> None:
        """One window's lines (each panel once): `values` in the order of `_WINDOW_FIELDS`."""
        if not 0 <= slot < self.slots:
            return
        columns, a = self._columns(ids), self.arrays
        a["count"][slot, columns] += values[:, 0].astype(np.int64)
        a["count_on"][slot, columns] += values[:, 1].astype(np.int64)
        a["on_sum"][slot, columns] += values[:, 2]
        for k, (name, pick) in enumerate(_EXTREMES):
            a[name][slot, columns] = pick(a[name][slot, columns], values[:, 3 + k])

    def result(self, first_slot: int) -> WindowMinutes:
        a = self.arrays
        with np.errstate(invalid="ignore", divide="ignore"):  # SUM(power_on_sum) / NULLIF(SUM(readings_on), 0)
            mean_on = np.where(a["count_on"] > 0, a["on_sum"] / a["count_on"], np.nan)
        fields = {"count": a["count"], "count_on": a["count_on"], "mean_on": mean_on,
                  **{name: a[name] for name, _ in _EXTREMES}}
        return WindowMinutes(first_slot, self.ids, fields)


_LINE_COLUMNS = ["panel_id", *(f"field_{k}" for k in range(len(_WINDOW_FIELDS)))]
_LINE_PARSE = pa_csv.ParseOptions(delimiter=" ", quote_char=False)
_LINE_TYPES = pa_csv.ConvertOptions(  # an id that reads "nan", "NULL" or "007" stays an id
    column_types={"panel_id": pa.string(), **dict.fromkeys(_LINE_COLUMNS[1:], pa.float64())},
    null_values=[], strings_can_be_null=False)


def _parse_lines(blob: str) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.float64]]:
    """A window's `_WINDOW_LINE`s -> panel ids and a (lines x fields) float array. Arrow's CSV reader
    (both cores; 1.5x pandas' round-trip parser) rounds each number correctly, so each double is the
    one MariaDB printed (shortest round-trip text), as pymysql would read it; `nan` is NaN."""
    table = pa_csv.read_csv(io.BytesIO(blob.encode()), read_options=pa_csv.ReadOptions(column_names=_LINE_COLUMNS),
                            parse_options=_LINE_PARSE, convert_options=_LINE_TYPES)
    values = np.column_stack([table.column(name).to_numpy() for name in _LINE_COLUMNS[1:]]) if table.num_rows \
        else np.zeros((0, len(_WINDOW_FIELDS)))
    return table.column("panel_id").to_numpy(zero_copy_only=False).astype(object), values


# Windows read at once, each on a connection of its own: MariaDB builds a window's text on one core
# (about 0.6 s at 200k panels), so the two windows of a minute are built side by side.
_READERS = 2


def _read_windows(conn: Connection, lo: float, hi: float, parts: int, cap: int
                  ) -> list[tuple[float, npt.NDArray[np.object_], npt.NDArray[np.float64]]]:
    """Every window starting in `[lo, hi)` as (window start, ids, values), each window's text in
    `parts` slices of the fleet; a window whose text reached `cap` (cut) is read again in more."""
    out = []
    todo = [(lo, hi, parts)]
    while todo:
        a, b, n = todo.pop()
        windows: dict[float, list[tuple[npt.NDArray[np.object_], npt.NDArray[np.float64]]]] = {}
        cut: set[float] = set()
        query = _WINDOW_LINES.format(split=_SPLIT if n > 1 else "")
        for window_s, count, blob in conn.execute(text(query), {"since": _naive(a), "until": _naive(b), "parts": n}):
            window_s = float(window_s)
            if window_s in cut:
                continue
            piece = _parse_lines(blob) if len(blob) < cap else None  # at the cap: cut
            if piece is None or len(piece[0]) != int(count):
                cut.add(window_s)
                windows.pop(window_s, None)
                continue
            windows.setdefault(window_s, []).append(piece)
        out.extend((window_s, ids, values) for window_s, pieces in windows.items() for ids, values in pieces)
        todo.extend((w, w + WINDOW_SECONDS, 2 * n) for w in cut)  # those windows again, in more slices
    return out


@contextmanager
def _text_cap(conn: Connection) -> Iterator[int]:
    """The longest text one GROUP_CONCAT may return on `conn` (the packet's size, or the tests'
    lower cap), its session's `group_concat_max_len` raised to it meanwhile and put back after."""
    packet = int(conn.execute(text("SELECT @@max_allowed_packet")).scalar())
    cap = min(packet, _TEXT_BYTES_LIMIT or packet)  # GROUP_CONCAT returns no more than the packet
    old_len = conn.execute(text("SELECT @@SESSION.group_concat_max_len")).scalar()
    conn.execute(text("SET SESSION group_concat_max_len = :cap"), {"cap": cap})
    try:
        yield cap
    finally:
        conn.execute(text("SET SESSION group_concat_max_len = :old"), {"old": int(old_len)})


def _read_rows(conn: Connection, rows_sql: str, columns: tuple[str, ...], types: dict[str, pa.DataType],
               rows_hint: int) -> dict[str, npt.NDArray[np.generic]]:
    """The rows of `rows_sql` (its first column `panel_id`) as one array per column, read as text
    lines in slices of the fleet (`_ROW_LINES`), more slices when one reached the cap. A line that
    does not split into `columns` (a DBA wrote an id or site with a space or a line break: the
    contract's never do) sends the whole read to pymysql's tuples: slower, never wrong."""
    options = (pa_csv.ReadOptions(column_names=list(columns)),
               _LINE_PARSE,
               pa_csv.ConvertOptions(column_types=types, null_values=[], strings_can_be_null=False))
    query = text(_ROW_LINES.format(lines=", ".join(f"IFNULL({name}, 'nan')" for name in columns), rows=rows_sql))
    with _text_cap(conn) as cap:
        parts = max(1, math.ceil(rows_hint * _LINE_BYTES / cap))
        while True:
            slices = conn.execute(query, {"parts": parts}).all()
            if all(len(blob) < cap for _, blob in slices):
                break
            parts *= 2  # a slice was cut at the cap
    try:
        tables = [pa_csv.read_csv(io.BytesIO(blob.encode()), *options) for _, blob in slices]
    except pa.ArrowInvalid:
        tables = None
    if tables is None or sum(t.num_rows for t in tables) != sum(int(count) for count, _ in slices):
        rows = conn.execute(text(rows_sql)).all()
        return {name: np.array([np.nan if row[k] is None else row[k] for row in rows],
                               dtype=object if types[name] == pa.string() else types[name].to_pandas_dtype())
                for k, name in enumerate(columns)}
    table = pa.concat_tables(tables) if tables else pa.table({name: pa.array([], types[name]) for name in columns})
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in columns}


def _read_minutes(conn: Connection, origin_s: float, step: float, since_s: float, until_s: float,
                  expected_ids: list[str] | None = None) -> WindowMinutes:
    """The minutes `[since_s, until_s)` (slots counted from `origin_s`) of every panel with window
    summaries there and of the `expected_ids` (empty minutes where they have none), each window as
    one string (`_WINDOW_LINES`): the 30-s windows of the range are dealt over `_READERS`
    connections (this one and others of its engine), read side by side."""
    first_slot = round((since_s - origin_s) / step)
    minutes = _Minutes(max(0, round((until_s - since_s) / step)), expected_ids or [])
    if until_s <= since_s:
        return minutes.result(first_slot)
    starts = np.arange(math.floor(since_s / WINDOW_SECONDS) * WINDOW_SECONDS, until_s, WINDOW_SECONDS)
    shares = [starts[k::_READERS] for k in range(min(_READERS, len(starts)))]

    def read(reader: Connection, share: npt.NDArray[np.float64]) -> list[tuple[float, npt.NDArray[np.object_],
                                                                               npt.NDArray[np.float64]]]:
        with _text_cap(reader) as cap:
            parts = max(1, math.ceil(len(minutes.ids) * _LINE_BYTES / cap))
            return [row for w in share.tolist()
                    for row in _read_windows(reader, max(w, since_s), min(w + WINDOW_SECONDS, until_s), parts, cap)]

    def read_apart(share: npt.NDArray[np.float64]) -> list[tuple[float, npt.NDArray[np.object_],
                                                                 npt.NDArray[np.float64]]]:
        with conn.engine.connect() as reader:
            return read(reader, share)

    with ThreadPoolExecutor(max_workers=max(1, len(shares) - 1)) as pool:
        others = [pool.submit(read_apart, share) for share in shares[1:]]
        rows = read(conn, shares[0]) if shares else []
        for other in others:
            rows.extend(other.result())
    for window_s, ids, values in sorted(rows, key=lambda row: row[0]):
        minutes.add(math.floor((window_s - origin_s) / step) - first_slot, ids, values)
    return minutes.result(first_slot)


def load_features(conn: Connection, th: fault_rules.FaultThresholds, *, until_s: float,
                  cache: FeatureCache | None = None, expected: ExpectedShape | None = None
                  ) -> fault_rules.BucketFeatures:
    """Features of the `lookback` minutes ending at `until_s` for every active panel (registered
    and not retired, or seen in the window), reading only what `cache` does not hold yet.

    Each panel's site comes with them (peers are judged per site); `expected(site_ids, times)`,
    when given, is the power model's P/Pmax per site at the buckets' middles (`model_shape`).
    With a `cache`, the features returned are the cache's own: its next call moves them on in place."""
    step, m = th.step_seconds, th.lookback_buckets
    if step % WINDOW_SECONDS:
        raise ValueError(f"the health step ({step} s) must be a whole number of {WINDOW_SECONDS}-s windows")
    cache = cache or FeatureCache()
    origin_s = until_s - m * step
    warm = cache.feats is not None and cache.until_s <= until_s and until_s - cache.until_s < m * step \
        and len(cache.feats.bucket_start) == m
    read_from = cache.until_s if warm else origin_s

    stamp = tuple(conn.execute(text(_REGISTRY_STAMP)).one())
    registry_kept = cache.registry is not None and stamp == cache.registry_stamp
    if not registry_kept:
        rows = _read_rows(conn, _REGISTRY, _REGISTRY_COLUMNS, {"panel_id": pa.string(), "pmax_w": pa.float64(),
                          "retired": pa.int8(), "site_id": pa.string()}, rows_hint=int(stamp[0]))
        pmax = [None if math.isnan(w) else w for w in rows["pmax_w"].tolist()]
        cache.registry = dict(zip(rows["panel_id"].tolist(), zip(pmax, (rows["retired"] != 0).tolist(),
                                                                 rows["site_id"].tolist(), strict=True), strict=True))
        cache.active = sorted(pid for pid, (_, gone, _s) in cache.registry.items() if not gone)
        cache.registry_stamp = stamp
    if not warm or cache.stored_last_seen is None:
        # Panels silent for longer than the lookback: their newest reading, from what the stream keeps.
        rows = _read_rows(conn, _LAST_SEEN, _LAST_SEEN_COLUMNS, {"panel_id": pa.string(), "last_seen": pa.float64()},
                          rows_hint=int(stamp[0]))
        cache.stored_last_seen = dict(zip(rows["panel_id"].tolist(), rows["last_seen"].tolist(), strict=True))
    registry = cache.registry
    minutes = _read_minutes(conn, origin_s, step, read_from, until_s, expected_ids=cache.active)
    if warm and registry_kept and _advance(cache, minutes, until_s, origin_s, step):
        feats = cache.feats
        assert feats is not None
        _finish(feats, cache.stored, step, expected, cache.site_ids)
        return feats

    kept_ids = list(cache.feats.panel_ids) if warm and cache.feats is not None else []
    ids = sorted((set(cache.active) | set(kept_ids) | set(minutes.panel_ids))
                 - {pid for pid, (_, gone, _s) in registry.items() if gone})
    index = pd.Index(ids, dtype=object)
    pmax_w = np.array([np.nan if registry.get(pid, (None,))[0] is None else registry[pid][0] for pid in ids])
    bucket_start = origin_s + step * np.arange(m)
    if not warm and minutes.first_slot == 0 and minutes.panel_ids.equals(index):
        # A cold read of the whole lookback with no panel beyond the registry's: the minutes read are
        # the features, in order (a second set of (minutes x 200k) arrays costs a second to fill).
        feats = fault_rules.BucketFeatures(ids, pmax_w, bucket_start, **minutes.fields)  # type: ignore[arg-type]
    else:
        feats = fault_rules.BucketFeatures.empty(ids, pmax_w, bucket_start)
        if warm and cache.feats is not None:
            _carry_over(cache.feats, feats, index, shift=int(round((until_s - cache.until_s) / step)))
        _place(feats, index, minutes)
    stored = np.array([cache.stored_last_seen.get(pid, np.nan) for pid in ids]) if ids else np.zeros(0)
    cache.feats, cache.until_s, cache.index, cache.stored = feats, until_s, index, stored
    panel_site = [registry[pid][2] if pid in registry else DEFAULT_SITE_ID for pid in ids]
    cache.site_ids = sorted(set(panel_site))
    feats.site_index = np.searchsorted(np.array(cache.site_ids, dtype=object), np.array(panel_site, dtype=object)
                                       ).astype(np.int64) if ids else np.zeros(0, np.int64)
    _finish(feats, stored, step, expected, cache.site_ids)
    return feats


def _finish(feats: fault_rules.BucketFeatures, stored: npt.NDArray[np.float64] | None, step: float,
            expected: ExpectedShape | None, site_ids: list[str]) -> None:
    """Each panel's newest reading at all (the window's, or the stored one) and the model's shape."""
    newest = feats.newest_reading()[-1] if len(feats.bucket_start) else np.full(len(feats.panel_ids), -np.inf)
    feats.last_seen = np.fmax(np.where(np.isfinite(newest), newest, np.nan),
                              stored if stored is not None else np.full(len(feats.panel_ids), np.nan))
    if expected is not None:  # not cached: the model is cheap, and its sites may be edited
        feats.model_shape = expected(site_ids, feats.bucket_start + step / 2.0)


def _advance(cache: FeatureCache, minutes: WindowMinutes, until_s: float, origin_s: float, step: float) -> bool:
    """The steady state: the registry has not changed and the minutes read hold no panel the cached
    features lack, so the panels stay the same. The cached arrays move up by the minutes elapsed in
    place (at 200k panels, new (minutes x panels) arrays, the panels' union and sort, and their
    registry lookups cost more than a second a run) and the new minutes go in below. Returns False
    (nothing changed) when the panels would change: the caller builds the features anew."""
    feats, index = cache.feats, cache.index
    if feats is None or index is None or cache.stored is None:
        return False
    columns = index.get_indexer(minutes.panel_ids)
    if (columns < 0).any():
        return False
    m = len(feats.bucket_start)
    shift = int(round((until_s - cache.until_s) / step))
    for name in ("count", "count_on", *_FLOAT_FIELDS):
        array: npt.NDArray[np.generic] = getattr(feats, name)
        if shift < m:
            array[: m - shift] = array[shift:]  # numpy copies overlapping ranges as if through a buffer
        array[max(m - shift, 0):] = 0 if name in ("count", "count_on") else np.nan
    feats.bucket_start = origin_s + step * np.arange(m)
    _place(feats, index, minutes, columns)
    cache.until_s = until_s
    return True


def _carry_over(old: fault_rules.BucketFeatures, new: fault_rules.BucketFeatures, index: pd.Index, shift: int) -> None:
    """Copy the minutes both windows hold (the old window moved `shift` minutes back)."""
    m = len(new.bucket_start)
    if shift >= m:
        return
    columns = index.get_indexer(pd.Index(old.panel_ids, dtype=object))
    keep = columns >= 0
    src_cols, dst_cols = np.flatnonzero(keep), columns[keep]
    same = len(src_cols) == len(dst_cols) == len(old.panel_ids) == len(new.panel_ids)  # then both are 0..n-1
    for name in ("count", "count_on", *_FLOAT_FIELDS):
        source: npt.NDArray[np.generic] = getattr(old, name)
        target: npt.NDArray[np.generic] = getattr(new, name)
        # the old rows still in the window (shift onwards) move `shift` rows up; slices, not np.ix_
        if same:
            target[: m - shift] = source[shift:]
        else:
            target[: m - shift, dst_cols] = source[shift:, src_cols]


def _place(feats: fault_rules.BucketFeatures, index: pd.Index, minutes: WindowMinutes,
           columns: npt.NDArray[np.intp] | None = None) -> None:
    """Put the minutes read into their slots, for the panels kept (not retired); `columns`: the
    minutes' panels in `index`, when the caller has looked them up already."""
    columns = index.get_indexer(minutes.panel_ids) if columns is None else columns
    keep = columns >= 0
    rows = slice(minutes.first_slot, minutes.first_slot + len(next(iter(minutes.fields.values()))))
    for name, values in minutes.fields.items():
        target: npt.NDArray[np.generic] = getattr(feats, name)
        target[rows, columns[keep]] = values[:, keep]
