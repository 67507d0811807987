"""Fault injection: a seeded spec that puts fault kinds on chosen panels at chosen times.

The spec is JSON, given inline or as a file path (`fleet run --faults SPEC`, the Dagster history
job's `faults` config, `bench/fault_detection.py`):

    {"seed": 7, "faults": [
      {"kind": "stuck", "panels": ["panel-000003"], "start": "2026-11-20T09:30:00Z", "minutes": 120},
      {"kind": "underperforming", "count": 5, "start": "10:00", "level": 0.6},
      {"kind": "silent", "count": 2, "start": "2026-11-20T11:00:00Z"}
    ]}

- `panels` names panels; `count` draws that many with the spec's `seed` among panels no other
  entry uses (so every faulty panel has exactly one kind).
- `start`: ISO 8601 (UTC if naive) or `HH:MM`, a UTC time of day on the range's first day.
  `minutes` (optional): how long it lasts; without it the fault lasts to the end of the run.
- What each kind does to a panel's readings while active:
  - `offline`: status 0, power 0; `silent`: no message at all;
  - `zero_production`: status 1, power 0;
  - `stuck`: power frozen at `level` x Pmax, or (no level) at the panel's power when it starts;
  - `underperforming`: power x `level` (default 0.6);
  - `over_range`: power + `level` x Pmax (default 1.3), so it reads above 1.25 x Pmax at any hour.
  The seed's random offline blips go on as before: a blip still reads status 0, power 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path

import numpy as np
import numpy.typing as npt

KINDS = ("offline", "silent", "zero_production", "stuck", "underperforming", "over_range")
DEFAULT_LEVEL = {"underperforming": 0.6, "over_range": 1.3}


class FaultSpecError(ValueError):
    """A fault spec that cannot be read; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class InjectedFault:
    kind: str
    panel_index: int
    panel_id: str
    start_s: float
    end_s: float  # inf = to the end of the run
    level: float | None

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "panel_id": self.panel_id, "start_s": self.start_s,
                "end_s": None if math.isinf(self.end_s) else self.end_s, "level": self.level}


def read_spec(spec: str | dict) -> dict:
    """The spec as a dict, from a dict, inline JSON or a path to a JSON file."""
    if isinstance(spec, dict):
        return spec
    text = spec.strip()
    if not text.startswith(("{", "[")):
        path = Path(text)
        if not path.is_file():
            raise FaultSpecError(f"fault spec is neither JSON nor a readable file: {text!r}")
        text = path.read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FaultSpecError(f"fault spec is not valid JSON: {exc}") from exc
    if isinstance(data, list):
        data = {"faults": data}
    if not isinstance(data, dict) or not isinstance(data.get("faults"), list):
        raise FaultSpecError('fault spec must be {"seed": N, "faults": [...]} or a list of faults')
    return data


def _start(value: object, first_day: datetime) -> float:
    if not isinstance(value, str):
        raise FaultSpecError(f"fault start must be a string, got {value!r}")
    try:
        if len(value) <= 5 and ":" in value:
            moment = datetime.combine(first_day.astimezone(UTC).date(), time.fromisoformat(value), UTC)
        else:
            moment = datetime.fromisoformat(value)
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    except ValueError as exc:
        raise FaultSpecError(f"fault start {value!r} is neither ISO 8601 nor HH:MM") from exc
    return moment.timestamp()


class FaultPlan:
    """Resolved faults for one fleet, applied cycle by cycle (vectorised over the faults)."""

    def __init__(self, faults: list[InjectedFault]) -> None:
        self.faults = faults
        self._by_kind = {}
        for kind in KINDS:
            chosen = [f for f in faults if f.kind == kind]
            if chosen:
                self._by_kind[kind] = (
                    np.array([f.panel_index for f in chosen], dtype=np.int64),
                    np.array([f.start_s for f in chosen]),
                    np.array([f.end_s for f in chosen]),
                    np.array([np.nan if f.level is None else f.level for f in chosen]),
                )
        self._frozen: dict[int, float] = {}

    @classmethod
    def from_spec(cls, spec: str | dict, panel_ids: list[str], *, first_day: datetime) -> FaultPlan:
        data = read_spec(spec)
        rng = np.random.default_rng(int(data.get("seed", 0)))
        index = {pid: i for i, pid in enumerate(panel_ids)}
        named = {pid for entry in data["faults"] for pid in entry.get("panels", [])}
        free = [i for i, pid in enumerate(panel_ids) if pid not in named]
        faults: list[InjectedFault] = []
        for entry in data["faults"]:
            kind = entry.get("kind")
            if kind not in KINDS:
                raise FaultSpecError(f"unknown fault kind {kind!r}; one of {', '.join(KINDS)}")
            if ("panels" in entry) == ("count" in entry):
                raise FaultSpecError(f"{kind}: give either 'panels' or 'count'")
            if "panels" in entry:
                unknown = [p for p in entry["panels"] if p not in index]
                if unknown:
                    raise FaultSpecError(f"{kind}: unknown panel(s) {unknown[:5]}")
                chosen = [index[p] for p in entry["panels"]]
            else:
                count = int(entry["count"])
                if count > len(free):
                    raise FaultSpecError(f"{kind}: {count} panels asked, {len(free)} left without a fault")
                picks = rng.choice(len(free), size=count, replace=False)
                chosen = [free[k] for k in picks]
                free = [i for k, i in enumerate(free) if k not in set(picks.tolist())]
            start = _start(entry.get("start"), first_day)
            minutes = entry.get("minutes")
            end = math.inf if minutes is None else start + float(minutes) * 60.0
            level = entry.get("level", DEFAULT_LEVEL.get(kind))
            faults.extend(InjectedFault(kind, i, panel_ids[i], start, end, None if level is None else float(level))
                          for i in chosen)
        return cls(faults)

    def truth(self) -> dict[str, dict[str, tuple[float, float]]]:
        """`{kind: {panel_id: (start_s, end_s)}}`: what a detector should find."""
        out: dict[str, dict[str, tuple[float, float]]] = {kind: {} for kind in KINDS}
        for f in self.faults:
            out[f.kind][f.panel_id] = (f.start_s, f.end_s)
        return out

    def apply(self, time_s: float, power: npt.NDArray[np.float64], status: npt.NDArray[np.int8],
              pmax_w: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_] | None:
        """Change this cycle's `power` and `status` in place; returns the sent mask (None = all sent)."""
        present = None
        for kind, (idx, start, end, level) in self._by_kind.items():
            active = (start <= time_s) & (time_s < end)
            if not active.any():
                continue
            rows = idx[active]
            lv = level[active]
            if kind == "offline":
                status[rows] = 0
                power[rows] = 0.0
            elif kind == "silent":
                present = np.ones(power.shape, dtype=bool) if present is None else present
                present[rows] = False
            elif kind == "zero_production":
                status[rows] = 1
                power[rows] = 0.0
            else:
                on = status[rows] == 1  # a random blip still reads status 0, power 0
                if kind == "underperforming":
                    power[rows] = np.where(on, power[rows] * lv, power[rows])
                elif kind == "over_range":
                    power[rows] = np.where(on, power[rows] + lv * pmax_w[rows], power[rows])
                else:  # stuck
                    values = np.array([self._frozen.get(int(r), 0.0) for r in rows.tolist()])
                    power[rows] = np.where(on, values, power[rows])
        np.round(power, 3, out=power)
        return present

    def freeze(self, shape_at: Callable[[float], npt.NDArray[np.float64]], pmax_w: npt.NDArray[np.float64]
               ) -> None:
        """Fix each stuck panel's value: `level` x Pmax, or its healthy power when the fault starts
        (`shape_at(t)`: every panel's P/Pmax at t)."""
        for f in self.faults:
            if f.kind == "stuck":
                factor = f.level if f.level is not None else float(shape_at(f.start_s)[f.panel_index])
                self._frozen[f.panel_index] = round(float(pmax_w[f.panel_index]) * factor, 3)


def spec_summary(plan: FaultPlan) -> str:
    counts: dict[str, int] = {}
    for f in plan.faults:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    return ", ".join(f"{kind} x{n}" for kind, n in counts.items()) or "none"

