"""Kafka keys and JSON values for a whole fleet cycle, built with numpy instead of per-message dumps.

A message is `{"Panel_id":"<id>","power_panel":<W>,"current_status":<0|1>,"time_data":"<UTC>"}`
(names from `contracts`). Per panel, the part up to `"power_panel":` never changes, and within a
cycle only two endings exist (status 0 or 1, same time), so a cycle needs only the power digits
written per panel. Messages with the same layout (id length, number of integer digits) are filled in
as rows of one byte matrix; a cycle has a handful of layouts, so the work is a few numpy passes
plus one conversion to `bytes` per message. Power is written with 3 decimals (1 mW) and no
padding, so every value is plain, compact JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from solar_platform.contracts import PANEL_ID, POWER, STATUS, TIME, Reading, format_timestamp
from solar_platform.fleet.simulation import from_epoch_ms

_ZERO, _DOT = ord("0"), ord(".")
# 10, 100, ..., 10**18: `searchsorted` on it gives the number of integer digits minus one.
_POWERS_OF_TEN = 10 ** np.arange(1, 19, dtype=np.int64)


def _json_key(name: str) -> str:
    return json.dumps(name) + ":"


def reference_message(reading: Reading) -> bytes:
    """The message by the book (`json.dumps` of the contract dict); the fast encoder must agree with it."""
    return json.dumps(reading.to_message(), separators=(",", ":")).encode()


class MessageEncoder:
    """Keys and values for one fleet; build once per fleet, then `encode` every cycle."""

    def __init__(self, panel_ids: Sequence[str]) -> None:
        self.keys: list[bytes] = [panel_id.encode() for panel_id in panel_ids]
        head = "{" + _json_key(PANEL_ID)
        power_key = "," + _json_key(POWER)
        prefixes = [f"{head}{json.dumps(panel_id)}{power_key}".encode() for panel_id in panel_ids]
        self._prefix_lengths = np.fromiter((len(p) for p in prefixes), dtype=np.int64, count=len(prefixes))
        # Right-padded with NULs; each layout copies only its own prefix length.
        widest = int(self._prefix_lengths.max(initial=0))
        self._prefixes = np.frombuffer(b"".join(p.ljust(widest, b"\0") for p in prefixes), dtype=np.uint8)
        self._prefixes = self._prefixes.reshape(len(prefixes), widest)
        self._uniform_prefix = bool((self._prefix_lengths == widest).all())

    def __len__(self) -> int:
        return len(self.keys)

    @staticmethod
    def endings(time_ms: int) -> npt.NDArray[np.uint8]:
        """The two possible message endings of a cycle, as a (2, width) byte matrix; row = status."""
        stamp = json.dumps(format_timestamp(from_epoch_ms(time_ms)))
        rows = [f",{_json_key(STATUS)}{status},{_json_key(TIME)}{stamp}}}".encode() for status in (0, 1)]
        return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(2, -1)

    def encode(self, power_w: npt.ArrayLike, status: npt.ArrayLike, time_ms: int) -> list[bytes]:
        """One JSON value per panel, in panel order. `power_w` >= 0 (written to 1 mW), `status` 0 or 1."""
        milliwatts = np.rint(np.asarray(power_w, dtype=np.float64) * 1000.0).astype(np.int64)
        statuses = np.asarray(status, dtype=np.int64)
        if milliwatts.shape != (len(self),) or statuses.shape != (len(self),):
            raise ValueError(f"expected {len(self)} power and status values")
        if len(self) == 0:
            return []
        if milliwatts.min() < 0:
            raise ValueError("power must not be negative")
        if not np.isin(statuses, (0, 1)).all():
            raise ValueError("status must be 0 or 1")

        whole_watts, fraction = np.divmod(milliwatts, 1000)
        digit_counts = np.searchsorted(_POWERS_OF_TEN, whole_watts, side="right") + 1
        endings = self.endings(time_ms)
        layout = digit_counts if self._uniform_prefix else self._prefix_lengths * 32 + digit_counts

        values = np.empty(len(self), dtype=object)
        for layout_key in np.unique(layout).tolist():
            rows = np.flatnonzero(layout == layout_key)
            digits = int(digit_counts[rows[0]])
            prefix_length = int(self._prefix_lengths[rows[0]])
            matrix = self._fill(rows, prefix_length, whole_watts[rows], digits, fraction[rows], endings[statuses[rows]])
            values[rows] = matrix.view(f"S{matrix.shape[1]}").ravel()
        return values.tolist()

    def _fill(
        self,
        rows: npt.NDArray[np.intp],
        prefix_length: int,
        whole_watts: npt.NDArray[np.int64],
        digits: int,
        fraction: npt.NDArray[np.int64],
        endings: npt.NDArray[np.uint8],
    ) -> npt.NDArray[np.uint8]:
        """Rows of identical layout: prefix | integer digits | '.' | 3 decimals | ending."""
        matrix = np.empty((rows.size, prefix_length + digits + 4 + endings.shape[1]), dtype=np.uint8)
        matrix[:, :prefix_length] = self._prefixes[rows, :prefix_length]
        column = prefix_length
        for place in range(digits - 1, -1, -1):
            matrix[:, column] = _ZERO + (whole_watts // 10**place) % 10
            column += 1
        matrix[:, column] = _DOT
        matrix[:, column + 1] = _ZERO + fraction // 100
        matrix[:, column + 2] = _ZERO + (fraction // 10) % 10
        matrix[:, column + 3] = _ZERO + fraction % 10
        matrix[:, column + 4 :] = endings
        return matrix
