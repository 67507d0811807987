"""The pure fault rules (storage/health/faults.py) on simulated fleets with injected faults: no services."""

from __future__ import annotations

import numpy as np
import pytest

from solar_platform.storage.health import faults as fault_rules
from solar_platform_tests.orchestration.fault_replay import DAY, at, fleet_settings, one_fault_each, replay_fleet

KINDS = ("offline", "silent", "zero_production", "stuck", "underperforming", "over_range")


def thresholds() -> fault_rules.FaultThresholds:
    return fault_rules.FaultThresholds.from_settings(fleet_settings())


@pytest.fixture(scope="module")
def day_with_every_fault():
    """20 panels, 09:30-13:00, panel i gets kind i at 10:00; the seed's blips on every panel."""
    return replay_fleet(fleet_settings(), panels=20, start=at(9.5), end=at(13.0), faults=one_fault_each("10:00"))


@pytest.mark.parametrize("index,kind", list(enumerate(KINDS)))
def test_each_kind_is_detected_on_its_panel_after_its_delay(day_with_every_fault, index, kind):
    th = thresholds()
    delay = {"offline": th.offline_minutes, "silent": th.silent_seconds / 60, "zero_production": th.zero_minutes,
             "stuck": th.stuck_minutes, "underperforming": th.underperforming_minutes,
             "over_range": th.over_range_minutes}[kind]
    opened = day_with_every_fault.opened()
    panel = f"panel-{index:06d}"
    assert (panel, kind) in opened, sorted(opened)
    minutes = (opened[(panel, kind)] - at(10.0).timestamp()) / 60
    assert delay <= minutes <= delay + 2.5, (kind, minutes)
    # one kind per panel, and nothing on the healthy ones
    assert {k for (p, k) in opened if p == panel} == {kind}


def test_no_alert_on_healthy_panels_and_none_resolves_while_the_fault_holds(day_with_every_fault):
    opened = day_with_every_fault.opened()
    assert {p for p, _ in opened} == {f"panel-{i:06d}" for i in range(len(KINDS))}
    assert day_with_every_fault.resolved() == {}


def test_evidence_says_what_was_seen(day_with_every_fault):
    first = {}
    for e in day_with_every_fault.events:
        first.setdefault((e.decision.panel_id, e.decision.kind), e.decision)
    pmax = day_with_every_fault.pmax
    under = first[("panel-000004", "underperforming")]
    assert under.evidence["pi"] == pytest.approx(0.6, abs=0.03) and under.severity == "minor"
    stuck = first[("panel-000003", "stuck")]
    assert stuck.evidence["spread_w"] == 0.0 and 0 < stuck.evidence["value_w"] < pmax[3]
    silent = first[("panel-000001", "silent")]
    assert silent.evidence["silence_s"] > silent.evidence["limit_s"] and silent.severity == "critical"
    over = first[("panel-000005", "over_range")]
    assert over.evidence["max_w"] > 1.25 * pmax[5]
    assert "performance index 0.6" in fault_rules.describe(under)


def test_the_seeds_random_blips_never_alert_over_a_whole_day():
    replayed = replay_fleet(fleet_settings(), panels=40, start=DAY, end=at(24.0))
    assert replayed.readings.status.min() == 0  # there were blips: ~1/6 of readings offline
    assert replayed.events == []


def test_an_underperforming_alert_stays_open_through_the_night():
    spec = {"seed": 1, "faults": [{"kind": "underperforming", "panels": ["panel-000002"], "start": "14:00"}]}
    replayed = replay_fleet(fleet_settings(), panels=8, start=at(13.5), end=at(24.0), faults=spec)
    assert set(replayed.opened()) == {("panel-000002", "underperforming")}
    assert replayed.resolved() == {}
    # after dusk nothing is judged: the last evaluations neither hold nor recover it
    th = thresholds()
    late = replayed.features.window(len(replayed.features.bucket_start) - th.lookback_buckets,
                                    len(replayed.features.bucket_start))
    night = fault_rules.evaluate(late, th, now=at(24.0).timestamp(), open_alerts={("panel-000002", "underperforming")})
    assert not night.kinds["underperforming"].holds.any() and not night.kinds["underperforming"].recovered.any()


def test_a_fault_that_ends_resolves_after_the_recovery_delay():
    spec = {"seed": 1, "faults": [{"kind": "offline", "panels": ["panel-000001"], "start": "10:00", "minutes": 10},
                                  {"kind": "over_range", "panels": ["panel-000002"], "start": "10:00",
                                   "minutes": 10}]}
    replayed = replay_fleet(fleet_settings(offline_probability_pct=0.0), panels=6, start=at(9.75), end=at(11.0),
                            faults=spec)
    resolved = replayed.resolved()
    assert set(resolved) == {("panel-000001", "offline"), ("panel-000002", "over_range")}
    assert at(10 + 10 / 60).timestamp() < resolved[("panel-000001", "offline")] <= at(10 + 13 / 60).timestamp()
    assert resolved[("panel-000002", "over_range")] <= at(10 + 17 / 60).timestamp()


def test_a_fleet_of_one_panel():
    # no peers: production kinds that need peers are never judged, the others still are
    settings = fleet_settings()
    alone = replay_fleet(settings, panels=1, start=at(9.5), end=at(11.0),
                         faults={"faults": [{"kind": "underperforming", "panels": ["panel-000000"], "start": "10:00"}]})
    assert alone.events == []
    stuck = replay_fleet(settings, panels=1, start=at(9.5), end=at(11.0),
                         faults={"faults": [{"kind": "over_range", "panels": ["panel-000000"], "start": "10:00"}]})
    assert set(stuck.opened()) == {("panel-000000", "over_range")}
    healthy = replay_fleet(settings, panels=1, start=at(9.5), end=at(11.0))
    assert healthy.events == []


def test_a_fleet_of_two_panels_judges_each_by_the_other():
    spec = {"faults": [{"kind": "underperforming", "panels": ["panel-000001"], "start": "10:00", "level": 0.7}]}
    replayed = replay_fleet(fleet_settings(), panels=2, start=at(9.5), end=at(11.0), faults=spec)
    assert set(replayed.opened()) == {("panel-000001", "underperforming")}
    zero = replay_fleet(fleet_settings(), panels=2, start=at(9.5), end=at(11.0),
                        faults={"faults": [{"kind": "zero_production", "panels": ["panel-000000"], "start": "10:00"}]})
    assert set(zero.opened()) == {("panel-000000", "zero_production")}


def test_stuck_at_half_pmax_is_found_and_is_not_also_underperforming():
    spec = {"faults": [{"kind": "stuck", "panels": ["panel-000003"], "start": "09:00", "level": 0.5}]}
    replayed = replay_fleet(fleet_settings(), panels=10, start=at(8.5), end=at(13.0), faults=spec)
    assert set(replayed.opened()) == {("panel-000003", "stuck")}


@pytest.mark.parametrize("seed", range(40))
def test_peer_median_leaves_the_panel_itself_out(seed: int) -> None:
    """Against the median of the others taken one panel at a time, with ties (a stuck or clipped
    fleet repeats values), panels that are no peer (NaN) and rows of one or no peer."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 7)), int(rng.integers(1, 10)))
    values = rng.uniform(0, 1, shape) if seed % 2 else rng.integers(0, 3, shape).astype(float)
    values[rng.uniform(size=values.shape) < 0.3] = np.nan
    median, peers = fault_rules.peer_median(values)
    for r in range(values.shape[0]):
        for c in range(values.shape[1]):
            others = np.delete(values[r], c)
            others = others[np.isfinite(others)]
            assert peers[r, c] == others.size
            if others.size:
                assert median[r, c] == pytest.approx(np.median(others))
            else:
                assert np.isnan(median[r, c])


def _features(last_seen: list[float], now: float) -> fault_rules.BucketFeatures:
    feats = fault_rules.BucketFeatures.empty([f"p{i}" for i in range(len(last_seen))], np.full(len(last_seen), 400.0),
                                   now - 60.0 * np.arange(3, 0, -1))
    feats.last_seen = np.array(last_seen)
    return feats


def test_silence_is_measured_against_the_pipeline_not_the_newest_event():
    now = DAY.timestamp()
    five_years = 5 * 365 * 86400.0
    # p0 reported 10 s ago, p1 has a clock five years ahead, p2 went quiet 10 minutes ago
    feats = _features([now - 10, now + five_years, now - 600], now)
    result = fault_rules.evaluate(feats, thresholds(), now=now, pipeline_time=now)
    assert result.kinds["silent"].holds.tolist() == [False, False, True]


def test_a_stream_three_minutes_behind_makes_only_the_stopped_panel_silent():
    now = DAY.timestamp()
    frontier = now - 180  # the stream has committed the fleet's readings up to three minutes ago
    # p0 and p1 are as fresh as the pipeline; p2 stopped ten minutes before the frontier
    feats = _features([frontier - 5, frontier - 2, frontier - 600], now)
    result = fault_rules.evaluate(feats, thresholds(), now=now, pipeline_time=frontier)
    assert result.kinds["silent"].holds.tolist() == [False, False, True]
    # by the wall clock every panel would have been silent
    assert (now - feats.last_seen > thresholds().silent_seconds).all()


def test_no_pipeline_frontier_suppresses_silence():
    now = DAY.timestamp()
    feats = _features([now - 600, now - 900], now)
    result = fault_rules.evaluate(feats, thresholds(), now=now, pipeline_time=None)
    assert result.silence_suppressed and not result.kinds["silent"].holds.any()
    # and an open silent alert is neither confirmed nor resolved: nothing can be judged
    assert fault_rules.decide(result, {("p0", "silent")}) == []


def test_negative_power_is_over_range():
    now = DAY.timestamp()
    feats = _features([now - 5, now - 5], now)
    feats.count[:] = 12
    feats.count_on[:] = 12
    feats.min_power[:], feats.max_power[:] = np.array([[-3.0, 10.0]]), np.array([[5.0, 20.0]])
    feats.mean_on[:], feats.min_on[:], feats.max_on[:] = 1.0, feats.min_power, feats.max_power
    feats.last_on[:] = feats.bucket_start[:, None] + 55
    result = fault_rules.evaluate(feats, thresholds(), now=now, pipeline_time=now)
    assert result.kinds["over_range"].holds.tolist() == [True, False]
