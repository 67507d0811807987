"""Fault rules: pure numpy, arrays in, alert decisions out. No clock, no I/O.

The detector looks at the last `lookback` of readings cut into `step`-wide buckets (one minute by
default, the sensor's cadence). Each bucket of each panel is summarised once (`BucketFeatures`:
counts, mean/min/max power over its status-1 readings, min/max over all readings, newest times),
whether it comes from SQL (`storage.health.features`) or from simulated arrays
(`features_from_readings`, used by the scoring bench and the unit tests).

Each production kind judges every bucket as fault / fine / unknown. Unknown buckets (night, no
readings, no Pmax, no peers) are skipped, never counted as recovery, so an alert opened in the
afternoon stays open overnight. A kind *holds* when its last `k` judged buckets all say fault (the
delay), and has *recovered* when its last `k_resolve` judged buckets all say fine (the hysteresis).

Kinds (thresholds in `FaultThresholds`, from `SOLAR_HEALTH_*` settings):

- `offline`: newest reading has status 0 and the panel has not sent status 1 for `offline` minutes.
- `silent`: no reading for more than `silent_after_intervals` x the interval while the rest of the
  fleet's readings moved on: measured against the pipeline's frontier (the time the stream has
  committed the fleet's readings up to), never by the wall clock and never by the newest event time
  (one wrong clock). A slow stream moves the frontier slowly and makes nobody silent; it raises one
  pipeline alarm (`storage.health.alerts`) instead.
- `zero_production`: status 1 but at most `zero_fraction` x Pmax while the expected power is high.
- `stuck`: the value stays within `stuck_tolerance` x Pmax over `stuck` minutes of production while
  the expected power moved by at least `stuck_min_expected_change` x Pmax (at noon the fleet itself
  is flat, and a stuck value cannot be told from a healthy one until the sun moves on).
- `underperforming`: performance index PI = measured / expected below `underperforming_pi` for
  `underperforming` minutes of production. Expected = Pmax x the median normalised production
  (P/Pmax) of the panel's healthy peers in that bucket, the panel itself left out. Peers are the
  panels of the same site (same sun). Where a site has fewer than `min_peers` healthy peers and
  `expected_fallback` is `model`, expected = Pmax x the power model's P/Pmax for the site
  (`BucketFeatures.model_shape`, from `power_model`: the curve the simulator uses).
- `over_range`: any reading above `over_range_factor` x Pmax or below 0, for `over_range` minutes.

The more specific diagnosis wins: a zero or stuck panel is not also underperforming, an
over-range value is not stuck.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

OFFLINE = "offline"
SILENT = "silent"
ZERO_PRODUCTION = "zero_production"
STUCK = "stuck"
UNDERPERFORMING = "underperforming"
OVER_RANGE = "over_range"
ALERT_KINDS = (OFFLINE, SILENT, ZERO_PRODUCTION, STUCK, UNDERPERFORMING, OVER_RANGE)
# Kinds that make a panel a bad peer: its output says nothing about the sun.
PRODUCTION_KINDS = (ZERO_PRODUCTION, STUCK, UNDERPERFORMING, OVER_RANGE)
SEVERITY = {
    OFFLINE: "critical",
    SILENT: "critical",
    ZERO_PRODUCTION: "critical",
    OVER_RANGE: "major",
    STUCK: "major",
    UNDERPERFORMING: "minor",
}

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class FaultThresholds:
    """Every knob of the rules. No defaults here: `from_settings` reads them from the settings
    (`interval_seconds` and the `SOLAR_HEALTH_*` ones), whose defaults are the only ones."""

    interval_seconds: float
    step_seconds: float
    lookback_minutes: float
    offline_minutes: float
    offline_recovery_minutes: float
    silent_after_intervals: float
    zero_fraction: float
    zero_minutes: float
    stuck_tolerance: float
    stuck_minutes: float
    stuck_min_expected_change: float
    underperforming_pi: float
    recovered_pi: float
    underperforming_minutes: float
    over_range_factor: float
    over_range_minutes: float
    recovery_minutes: float
    min_expected_level: float
    min_peers: int
    # `model`: expected power from the power model where a site has too few healthy peers; `off`: not judged.
    expected_fallback: str = "off"

    @classmethod
    def from_settings(cls, settings: object) -> FaultThresholds:
        """Thresholds from a `Settings` (field `health_<name>`), interval from `interval_seconds`."""
        values = {name: getattr(settings, f"health_{name}") for name in cls.__dataclass_fields__
                  if hasattr(settings, f"health_{name}")}
        return cls(interval_seconds=settings.interval_seconds, **values)  # type: ignore[attr-defined]

    def buckets(self, minutes: float) -> int:
        """A duration in minutes as a whole number of buckets (at least one)."""
        return max(1, math.ceil(minutes * 60.0 / self.step_seconds - 1e-9))

    @property
    def lookback_buckets(self) -> int:
        return self.buckets(self.lookback_minutes)

    @property
    def silent_seconds(self) -> float:
        return self.silent_after_intervals * self.interval_seconds


@dataclass
class BucketFeatures:
    """Per-bucket summaries, (m buckets, n panels), oldest bucket first; NaN = nothing there.

    Times are float epoch seconds. `last_seen` is each panel's newest reading at all (from
    `panel_latest` or the registry when it is older than the window); NaN = never seen.
    """

    panel_ids: list[str]
    pmax_w: FloatArray  # (n,)
    bucket_start: FloatArray  # (m,)
    count: npt.NDArray[np.int64]  # readings
    count_on: npt.NDArray[np.int64]  # readings with status 1
    mean_on: FloatArray  # mean power of status-1 readings
    min_on: FloatArray
    max_on: FloatArray
    min_power: FloatArray  # over all readings
    max_power: FloatArray
    last_on: FloatArray  # newest status-1 reading time in the bucket
    last_off: FloatArray  # newest status-0 reading time
    first_time: FloatArray  # oldest reading time
    last_seen: FloatArray = field(default_factory=lambda: np.empty(0))  # (n,)
    # Each panel's site (row of `model_shape`'s columns); None = one site. Peers are the same site's.
    site_index: npt.NDArray[np.int64] | None = None  # (n,)
    # The power model's P/Pmax per bucket and site, (m, sites); None = no model expectation.
    model_shape: FloatArray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.count.shape  # type: ignore[return-value]

    def newest_reading(self) -> FloatArray:
        """(m, n): each panel's newest reading time up to the end of each bucket (running max)."""
        newest = np.fmax(np.nan_to_num(self.last_on, nan=-np.inf), np.nan_to_num(self.last_off, nan=-np.inf))
        return np.maximum.accumulate(newest, axis=0) if newest.size else newest

    def window(self, start: int, stop: int, last_seen: FloatArray | None = None) -> BucketFeatures:
        """Buckets [start, stop) as views; `last_seen` (n,) = newest reading up to the window's end."""
        part = slice(start, stop)
        seen = self.last_seen if last_seen is None else np.where(np.isfinite(last_seen), last_seen, np.nan)
        return BucketFeatures(
            self.panel_ids, self.pmax_w, self.bucket_start[part], self.count[part], self.count_on[part],
            self.mean_on[part], self.min_on[part], self.max_on[part], self.min_power[part], self.max_power[part],
            self.last_on[part], self.last_off[part], self.first_time[part], seen, self.site_index,
            None if self.model_shape is None else self.model_shape[part])

    @classmethod
    def empty(cls, panel_ids: list[str], pmax_w: FloatArray, bucket_start: FloatArray) -> BucketFeatures:
        m, n = len(bucket_start), len(panel_ids)

        def nan() -> FloatArray:
            return np.full((m, n), np.nan)

        return cls(list(panel_ids), np.asarray(pmax_w, dtype=np.float64), np.asarray(bucket_start, dtype=np.float64),
                   np.zeros((m, n), dtype=np.int64), np.zeros((m, n), dtype=np.int64), nan(), nan(), nan(), nan(),
                   nan(), nan(), nan(), nan(), np.full(n, np.nan))


def features_from_readings(panel_ids: list[str], pmax_w: npt.ArrayLike, times_s: npt.ArrayLike,
                           power_w: npt.ArrayLike, status: npt.ArrayLike, present: npt.ArrayLike | None,
                           *, bucket_start: npt.ArrayLike, step_seconds: float) -> BucketFeatures:
    """Summaries of tick-aligned readings (T ticks x n panels) into the given buckets.

    The same figures as the SQL in `storage.health.features`; the bench and the unit tests
    feed the rules through here.
    """
    times = np.asarray(times_s, dtype=np.float64)
    power = np.asarray(power_w, dtype=np.float64)
    status = np.asarray(status)
    sent = np.ones(power.shape, dtype=bool) if present is None else np.asarray(present, dtype=bool)
    starts = np.asarray(bucket_start, dtype=np.float64)
    feats = BucketFeatures.empty(panel_ids, np.asarray(pmax_w, dtype=np.float64), starts)
    index = np.floor((times - starts[0]) / step_seconds).astype(np.int64) if starts.size else np.zeros(0, np.int64)
    for b in range(starts.size):
        rows = np.flatnonzero(index == b)
        if not rows.size:
            continue
        p, s, ok = power[rows], status[rows], sent[rows]
        on = ok & (s == 1)
        off = ok & (s == 0)
        t = times[rows][:, None]
        feats.count[b] = ok.sum(axis=0)
        feats.count_on[b] = on.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            feats.mean_on[b] = np.where(on, p, 0.0).sum(axis=0) / np.where(on.any(axis=0), on.sum(axis=0), np.nan)
        feats.min_on[b] = _masked(np.min, p, on, np.inf)
        feats.max_on[b] = _masked(np.max, p, on, -np.inf)
        feats.min_power[b] = _masked(np.min, p, ok, np.inf)
        feats.max_power[b] = _masked(np.max, p, ok, -np.inf)
        feats.last_on[b] = _masked(np.max, np.broadcast_to(t, p.shape), on, -np.inf)
        feats.last_off[b] = _masked(np.max, np.broadcast_to(t, p.shape), off, -np.inf)
        feats.first_time[b] = _masked(np.min, np.broadcast_to(t, p.shape), ok, np.inf)
    last = np.where(sent, times[:, None], -np.inf).max(axis=0) if times.size else np.full(len(panel_ids), -np.inf)
    feats.last_seen = np.where(np.isfinite(last), last, np.nan)
    return feats


def _masked(reduce: object, values: FloatArray, mask: BoolArray, fill: float) -> FloatArray:
    out = reduce(np.where(mask, values, fill), axis=0)  # type: ignore[operator]
    return np.where(mask.any(axis=0), out, np.nan)


# ---------------------------------------------------------------- building blocks
def peer_median(values: FloatArray) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Per row, the median of the *other* finite values (leave-one-out), and how many there were.

    Row-wise over (m, n); NaN marks a panel that is no peer. A panel never serves as its own
    reference, which matters in a fleet of 2 (each panel is judged by the other).

    Only a few order statistics around the middle of each row decide every leave-one-out median,
    so they are found by `np.partition` (linear) rather than a sort of the row: with the row's k
    finite values sorted as s, removing a value v leaves s[j] at j when v > s[j] and s[j + 1] when
    v <= s[j] (ties give the same value either way). A peer's median reads the same two positions
    of its row as every other peer's, so those are per-row scalars, broadcast once over the row.
    """
    m, n = values.shape
    ok = np.isfinite(values)
    k = ok.sum(axis=1)  # (m,)
    # s[(k-2)//2 ... k//2 + 1]: what any panel's leave-one-out median (or a non-peer's median) reads
    low = np.maximum((k - 2) // 2, 0)
    middle = np.full((m, 4), np.nan)
    for row in range(m):
        finite = values[row, ok[row]]
        if not finite.size:
            continue
        wanted = np.minimum(low[row] + np.arange(4), finite.size - 1)
        middle[row] = np.partition(finite, np.unique(wanted))[wanted]

    def at(j: npt.NDArray[np.int64]) -> FloatArray:  # s[j] per row as an (m, 1) column, j within low..low+3
        return np.take_along_axis(middle, np.clip(j - low, 0, 3)[:, None], axis=1)

    def without_self(j: npt.NDArray[np.int64]) -> FloatArray:  # a peer's j-th of the row without itself
        s_j = at(j)
        return np.where(values <= s_j, at(j + 1), s_j)

    with np.errstate(invalid="ignore"):
        a, b = (k - 2) // 2, (k - 1) // 2  # a peer has k - 1 peers
        own = (without_self(a) + without_self(b)) / 2.0
        others = (at((k - 1) // 2) + at(k // 2)) / 2.0  # no peer itself: the median of all k
        median = np.where(ok, own, others)
    peers = k[:, None] - ok.astype(np.int64)
    return np.where(peers > 0, median, np.nan), peers


def site_peer_median(values: FloatArray, site_index: npt.NDArray[np.int64] | None
                     ) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """`peer_median` within each site: a panel's peers are the other panels of its site."""
    m, n = values.shape
    if not (m and n):
        return np.full((m, n), np.nan), np.zeros((m, n), np.int64)
    if site_index is None or np.all(site_index == site_index[0]):
        return peer_median(values)
    ref, peers = np.full((m, n), np.nan), np.zeros((m, n), np.int64)
    for site in np.unique(site_index).tolist():
        columns = np.flatnonzero(site_index == site)
        ref[:, columns], peers[:, columns] = peer_median(values[:, columns])
    return ref, peers


def trailing_run(condition: BoolArray, judged: BoolArray) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per panel: how many of the newest judged buckets in a row satisfy `condition`, and the
    index of the first bucket of that run (-1 when the run is empty). Unjudged buckets are skipped."""
    m, n = condition.shape
    run = np.zeros(n, dtype=np.int64)
    start = np.full(n, -1, dtype=np.int64)
    for b in range(m):
        hit = judged[b] & condition[b]
        miss = judged[b] & ~condition[b]
        start = np.where(hit & (run == 0), b, start)
        run = np.where(hit, run + 1, np.where(miss, 0, run))
        start = np.where(miss, -1, start)
    return run, start


def last_judged(judged: BoolArray, k: int) -> BoolArray:
    """Mask of each panel's newest `k` judged buckets."""
    from_end = np.cumsum(judged[::-1], axis=0, dtype=np.int32)[::-1]  # half int64's memory traffic
    return judged & (from_end <= k)


# ---------------------------------------------------------------- the evaluation
@dataclass(frozen=True)
class KindResult:
    """One kind's verdict per panel: `holds` opens (or keeps) an alert, `recovered` resolves one."""

    holds: BoolArray
    recovered: BoolArray
    metric: FloatArray  # the headline figure: PI, stuck value W, silence s, offline s, ...
    since: FloatArray  # epoch seconds the condition started (NaN = unknown)
    evidence: dict[str, FloatArray]  # name -> (n,) figures, read per panel when an alert is written


@dataclass(frozen=True)
class Evaluation:
    panel_ids: list[str]
    kinds: dict[str, KindResult]
    now: float
    silence_suppressed: bool
    reference: FloatArray  # (m,) the fleet's median P/Pmax per bucket (all peers)

    def holding(self) -> set[tuple[str, str]]:
        return {(self.panel_ids[i], kind) for kind, r in self.kinds.items() for i in np.flatnonzero(r.holds)}

    def recovered(self) -> set[tuple[str, str]]:
        return {(self.panel_ids[i], kind) for kind, r in self.kinds.items() for i in np.flatnonzero(r.recovered)}


def evaluate(feats: BucketFeatures, thresholds: FaultThresholds, *, now: float,
             open_alerts: Collection[tuple[str, str]] = (), pipeline_time: float | None = None) -> Evaluation:
    """Judge every panel for every kind (see the module docstring).

    `now` is the platform's clock (epoch s), recorded with the evaluation. `pipeline_time` is the
    pipeline's frontier (epoch s): silence is measured against it, and not judged at all without
    one (no readings committed lately: one pipeline alarm, not one alert per panel).
    `open_alerts` = `{(panel_id, kind)}` currently open: panels with an open production alert are
    no peers, and an open stuck alert keeps a panel from also being called underperforming.
    """
    th = thresholds
    m, n = feats.shape
    pmax = np.where(np.isfinite(feats.pmax_w) & (feats.pmax_w > 0), feats.pmax_w, np.nan)
    open_by_kind = {kind: np.zeros(n, dtype=bool) for kind in ALERT_KINDS}
    if open_alerts:  # O(open alerts) lookups, not one per panel and kind (1.2M at 200k panels)
        alerts = list(open_alerts)
        for (_pid, kind), i in zip(alerts, panel_columns(feats.panel_ids, [pid for pid, _k in alerts]), strict=True):
            if kind in open_by_kind and i >= 0:
                open_by_kind[kind][i] = True
    bad_peer = np.zeros(n, dtype=bool)
    for kind in PRODUCTION_KINDS:
        bad_peer |= open_by_kind[kind]

    with np.errstate(invalid="ignore", divide="ignore"):
        norm = feats.mean_on / pmax[None, :]
    in_range_on = feats.max_on <= th.over_range_factor * pmax[None, :]
    peer_values = np.where(~bad_peer[None, :] & np.isfinite(norm) & in_range_on, norm, np.nan)
    ref, peers = site_peer_median(peer_values, feats.site_index)
    if th.expected_fallback == "model" and feats.model_shape is not None and m and n:
        # too few healthy peers at the panel's site: the sun's own figure from the power model
        site = feats.site_index if feats.site_index is not None else np.zeros(n, dtype=np.int64)
        model = feats.model_shape[:, site]
        few = peers < th.min_peers
        ref = np.where(few, model, ref)
        peers = np.where(few, th.min_peers, peers)
    with warnings.catch_warnings():  # buckets without any peer (night, tiny fleets) are NaN, not news
        warnings.simplefilter("ignore", RuntimeWarning)
        fleet_level = np.nanmedian(peer_values, axis=1) if m and n else np.full(m, np.nan)
    expected_w = ref * pmax[None, :]
    has_on = feats.count_on > 0
    # the sun is up, for this panel's peers, and the panel says it is producing
    production = has_on & np.isfinite(ref) & (ref >= th.min_expected_level) & (peers >= th.min_peers)
    zero_limit = th.zero_fraction * pmax[None, :]
    zero_bucket = production & (feats.max_on <= zero_limit)
    over_bucket = (feats.count > 0) & ((feats.max_power > th.over_range_factor * pmax[None, :])
                                       | (feats.min_power < 0))
    k_resolve = th.buckets(th.recovery_minutes)
    results: dict[str, KindResult] = {}

    # ---- over_range: judged wherever there are readings and a Pmax
    judged = (feats.count > 0) & np.isfinite(pmax)[None, :]
    run, start = trailing_run(over_bucket, judged)
    ok_run, _ = trailing_run(~over_bucket, judged)
    k = th.buckets(th.over_range_minutes)
    peak = _reduce(np.max, feats.max_power, judged, -np.inf)
    results[OVER_RANGE] = KindResult(
        run >= k, ok_run >= k_resolve, peak, _since(feats, start),
        {"max_w": peak, "limit_w": th.over_range_factor * pmax,
         "min_w": _reduce(np.min, feats.min_power, judged, np.inf)})

    # ---- zero_production
    run, start = trailing_run(zero_bucket, production)
    ok_run, _ = trailing_run(~zero_bucket, production)
    k = th.buckets(th.zero_minutes)
    zero_expected = _mean_over(expected_w, last_judged(production, k))
    zero_measured = _mean_over(feats.mean_on, last_judged(production, k))
    results[ZERO_PRODUCTION] = KindResult(
        run >= k, ok_run >= k_resolve, zero_measured, _since(feats, start),
        {"measured_w": zero_measured, "expected_w": zero_expected})

    # ---- stuck: flat value, in range, above zero, while the expected power moved
    judged = production & ~zero_bucket & in_range_on
    k = th.buckets(th.stuck_minutes)

    def flat_over(k: int) -> tuple[BoolArray, FloatArray, FloatArray, FloatArray, BoolArray]:
        window = last_judged(judged, k)
        top = _reduce(np.max, feats.max_on, window, -np.inf)
        bottom = _reduce(np.min, feats.min_on, window, np.inf)
        moved = _reduce(np.max, expected_w, window, -np.inf) - _reduce(np.min, expected_w, window, np.inf)
        flat = (window.sum(axis=0) >= k) & (top - bottom <= th.stuck_tolerance * pmax)
        return flat, moved, top, bottom, window

    flat, moved, top, bottom, window = flat_over(k)
    stuck_holds = flat & (moved >= th.stuck_min_expected_change * pmax)
    # One bucket short of stuck (the first bucket of a fault is half old values): underperforming
    # waits a minute rather than open a second, less specific alert.
    almost, almost_moved, *_ = flat_over(max(k - 1, 1))
    almost_stuck = almost & (almost_moved >= th.stuck_min_expected_change * pmax * max(k - 1, 1) / k)
    recent = last_judged(judged, k_resolve)
    spread_recent = _reduce(np.max, feats.max_on, recent, -np.inf) - _reduce(np.min, feats.min_on, recent, np.inf)
    stuck_recovered = (recent.sum(axis=0) >= k_resolve) & (spread_recent > th.stuck_tolerance * pmax)
    first_bucket = np.where(window.any(axis=0), np.argmax(window, axis=0), -1)
    value = (top + bottom) / 2.0
    results[STUCK] = KindResult(
        stuck_holds, stuck_recovered, value, _since(feats, first_bucket),
        {"value_w": value, "spread_w": top - bottom, "expected_change_w": moved})

    # ---- underperforming: PI against healthy peers, not when a more specific kind explains it
    with np.errstate(invalid="ignore", divide="ignore"):
        pi = feats.mean_on / expected_w
    judged = production & ~zero_bucket & in_range_on
    run, start = trailing_run(pi < th.underperforming_pi, judged)
    ok_run, _ = trailing_run(pi >= th.recovered_pi, judged)
    k = th.buckets(th.underperforming_minutes)
    window = last_judged(judged, k)
    mean_pi, mean_expected = _mean_over(pi, window), _mean_over(expected_w, window)
    explained = stuck_holds | almost_stuck | open_by_kind[STUCK] | open_by_kind[ZERO_PRODUCTION]
    results[UNDERPERFORMING] = KindResult(
        (run >= k) & ~explained, ok_run >= k_resolve, mean_pi, _since(feats, start),
        {"pi": mean_pi, "expected_w": mean_expected})

    # ---- offline: the panel's own timeline (status 0 since its last status 1)
    seen = feats.count > 0
    last_on = _reduce(np.max, feats.last_on, np.isfinite(feats.last_on), -np.inf)
    last_off = _reduce(np.max, feats.last_off, np.isfinite(feats.last_off), -np.inf)
    newest = np.fmax(last_on, last_off)
    first = _reduce(np.min, feats.first_time, seen, np.inf)
    newest_is_off = np.isfinite(newest) & (newest == last_off)
    off_since = np.where(np.isfinite(last_on), last_on, first)  # no status 1 in the window: since its start
    on_since = np.where(np.isfinite(last_off), last_off, first)
    offline_for = newest - off_since
    online_for = newest - on_since
    results[OFFLINE] = KindResult(
        newest_is_off & (offline_for >= th.offline_minutes * 60.0),
        np.isfinite(newest) & ~newest_is_off & (online_for >= th.offline_recovery_minutes * 60.0),
        np.where(newest_is_off, offline_for, 0.0), np.where(newest_is_off, off_since, np.nan),
        {"offline_s": np.where(newest_is_off, offline_for, 0.0)})

    # ---- silent: against the pipeline's frontier
    last_seen = feats.last_seen if feats.last_seen.size == n else np.full(n, np.nan)
    last_seen = np.fmax(last_seen, newest)
    silence = (np.nan if pipeline_time is None else pipeline_time) - last_seen
    limit = th.silent_seconds
    reported_lately = seen[-1] if m else np.zeros(n, dtype=bool)
    silent_holds = np.isfinite(silence) & (silence > limit)
    silent_recovered = np.isfinite(silence) & (silence <= limit) & reported_lately
    if pipeline_time is None:
        silent_holds = np.zeros(n, dtype=bool)
        silent_recovered = np.zeros(n, dtype=bool)
    results[SILENT] = KindResult(
        silent_holds, silent_recovered, silence, last_seen,
        {"silence_s": silence, "limit_s": np.full(n, limit)})

    return Evaluation(list(feats.panel_ids), results, now, pipeline_time is None, fleet_level)


def _reduce(reduce: object, values: FloatArray, mask: BoolArray, fill: float) -> FloatArray:
    if not values.size:
        return np.full(values.shape[1] if values.ndim == 2 else 0, np.nan)
    return _masked(reduce, values, mask & np.isfinite(values), fill)


def _mean_over(values: FloatArray, mask: BoolArray) -> FloatArray:
    use = mask & np.isfinite(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(use, values, 0.0).sum(axis=0) / np.where(use.any(axis=0), use.sum(axis=0), np.nan)


def _since(feats: BucketFeatures, start: npt.NDArray[np.int64]) -> FloatArray:
    starts = feats.bucket_start
    return np.where(start >= 0, starts[np.clip(start, 0, max(len(starts) - 1, 0))] if len(starts) else np.nan,
                    np.nan)


def _f(value: float) -> float:
    """A JSON-safe rounded float (NaN/inf become NaN, dropped by the writer)."""
    value = float(value)
    return round(value, 4) if math.isfinite(value) else float("nan")


# ---------------------------------------------------------------- the lifecycle
@dataclass(frozen=True)
class Decision:
    panel_id: str
    kind: str
    action: str  # open | keep | resolve
    metric: float | None
    since: float | None
    evidence: dict[str, float]

    @property
    def severity(self) -> str:
        return SEVERITY[self.kind]


def decide(evaluation: Evaluation, open_alerts: Collection[tuple[str, str]]) -> list[Decision]:
    """Open what holds and is not open, keep what is open and not recovered, resolve what recovered.

    An open alert whose panel cannot be judged (no readings, night) is kept: nothing resolves
    for lack of evidence. Panels outside the evaluation (retired) are left to the registry.
    """
    decisions = []
    for kind, result in evaluation.kinds.items():
        for i in np.flatnonzero(result.holds):
            pid = evaluation.panel_ids[i]
            action = "keep" if (pid, kind) in open_alerts else "open"
            decisions.append(_decision(pid, kind, action, result, i))
    alerts = list(open_alerts)
    for (pid, kind), i in zip(alerts, panel_columns(evaluation.panel_ids, [p for p, _k in alerts]), strict=True):
        if i < 0 or kind not in evaluation.kinds:
            continue
        result = evaluation.kinds[kind]
        if result.recovered[i] and not result.holds[i]:
            decisions.append(_decision(pid, kind, "resolve", result, i))
    return decisions


def panel_columns(panel_ids: Sequence[str], wanted: Sequence[str]) -> npt.NDArray[np.intp]:
    """Each of `wanted`'s column in `panel_ids` (-1: not there), through a hash index built in C: a
    Python dict of 200k panels cost 0.1 s a call."""
    if not wanted:
        return np.zeros(0, dtype=np.intp)
    return pd.Index(panel_ids, dtype=object).get_indexer(pd.Index(wanted, dtype=object))


def _decision(pid: str, kind: str, action: str, result: KindResult, i: int) -> Decision:
    metric, since = float(result.metric[i]), float(result.since[i])
    evidence = {k: _f(v[i]) for k, v in result.evidence.items() if math.isfinite(float(v[i]))}
    return Decision(pid, kind, action, metric if math.isfinite(metric) else None,
                    since if math.isfinite(since) else None, evidence)


def describe(decision: Decision) -> str:
    """One line an operator reads in the alert's `detail`."""
    e = decision.evidence
    if decision.kind == OFFLINE:
        return f"status 0 for {e.get('offline_s', 0):.0f} s"
    if decision.kind == SILENT:
        return f"no reading for {e.get('silence_s', 0):.0f} s (limit {e.get('limit_s', 0):.0f} s)"
    if decision.kind == ZERO_PRODUCTION:
        return f"status 1 but {e.get('measured_w', 0):.1f} W while {e.get('expected_w', 0):.0f} W expected"
    if decision.kind == STUCK:
        return (f"stuck at {e.get('value_w', 0):.1f} W (spread {e.get('spread_w', 0):.2f} W) while expected "
                f"power moved {e.get('expected_change_w', 0):.0f} W")
    if decision.kind == UNDERPERFORMING:
        return f"performance index {e.get('pi', 0):.2f} (expected {e.get('expected_w', 0):.0f} W)"
    return (f"power {e.get('max_w', 0):.1f} W beyond the limit {e.get('limit_w', 0):.1f} W "
            f"(min {e.get('min_w', 0):.1f} W)")


# ---------------------------------------------------------------- replaying a range
@dataclass(frozen=True)
class AlertEvent:
    time: float  # epoch s of the evaluation
    decision: Decision


def replay(feats: BucketFeatures, thresholds: FaultThresholds, *, settle_seconds: float,
           open_alerts: Collection[tuple[str, str]] = (), stream_alive: bool = True) -> list[AlertEvent]:
    """Evaluate after every bucket of `feats`, as the sensor does every minute, carrying the open
    alerts along; returns the opens and resolves in order (the bench and the tests use it).

    The stream is taken to be caught up (its frontier at the evaluation's clock), or, with
    `stream_alive` False, to have committed nothing lately."""
    step = thresholds.step_seconds
    newest = feats.newest_reading()
    current = set(open_alerts)
    events = []
    for end in range(1, len(feats.bucket_start) + 1):
        now = float(feats.bucket_start[end - 1]) + step + settle_seconds
        window = feats.window(max(0, end - thresholds.lookback_buckets), end, newest[end - 1])
        evaluation = evaluate(window, thresholds, now=now, open_alerts=current,
                              pipeline_time=now if stream_alive else None)
        for d in decide(evaluation, current):
            if d.action == "open":
                current.add((d.panel_id, d.kind))
            elif d.action == "resolve":
                current.discard((d.panel_id, d.kind))
            if d.action != "keep":
                events.append(AlertEvent(now, d))
    return events
