"""A micro-batch's valid readings as column arrays: one per (panel, time), sorted by (panel, time).

Built in the stream's driver from the Arrow batch Spark collects (`from_arrow`). Panels are coded
once per batch (`panel_ids[panel]`), so every later step groups and looks up integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from solar_platform.contracts import PANEL_ID, POWER, STATUS, TIME_MICROS

PARTITION = "partition"
OFFSET = "offset"
# What the driver needs of each valid reading: the contract's fields and the Kafka position.
COLUMNS = (PANEL_ID, POWER, STATUS, TIME_MICROS, PARTITION, OFFSET)


@dataclass(frozen=True)
class Readings:
    """Readings sorted by (panel, time), unique per (panel, time)."""

    panel_ids: npt.NDArray[np.object_]  # the batch's distinct panel ids; `panel` indexes it
    panel: npt.NDArray[np.int64]
    time_us: npt.NDArray[np.int64]  # epoch microseconds, UTC
    power: npt.NDArray[np.float64]
    status: npt.NDArray[np.int8]

    def __len__(self) -> int:
        return int(self.panel.size)

    def take(self, rows: npt.NDArray[np.int64] | npt.NDArray[np.bool_]) -> Readings:
        """A subset (still sorted); panel codes keep their meaning."""
        return Readings(self.panel_ids, self.panel[rows], self.time_us[rows], self.power[rows], self.status[rows])

    def first_of_panel(self) -> npt.NDArray[np.bool_]:
        """Each panel's oldest reading in the batch (the readings are sorted by panel, then time)."""
        return np.append(True, self.panel[1:] != self.panel[:-1]) if self.panel.size else np.zeros(0, dtype=bool)

    def last_of_panel(self) -> npt.NDArray[np.bool_]:
        """Each panel's newest reading in the batch."""
        return np.append(self.panel[1:] != self.panel[:-1], True) if self.panel.size else np.zeros(0, dtype=bool)

    def ids(self) -> pa.Array:
        """The panel id of every reading, as an Arrow string array."""
        return pa.array(self.panel_ids, pa.string()).take(pa.array(self.panel))

    def frontier_us(self) -> int | None:
        """The batch's frontier: the median, over the batch's panels, of each one's newest reading.
        Where the fleet has got to as far as this batch knows: one wrong clock cannot move a median,
        and a catch-up batch of hours gives its panels' newest, not its middle."""
        if not self.panel.size:
            return None
        return int(np.median(self.time_us[self.last_of_panel()]))

    @classmethod
    def empty(cls) -> Readings:
        return cls(np.array([], dtype=object), *(np.zeros(0, dtype=t) for t in (np.int64, np.int64, np.float64,
                                                                               np.int8)))


def from_arrow(table: pa.Table) -> Readings:
    """Valid readings (columns `COLUMNS`) -> `Readings`, keeping for each (panel, time) the one with
    the highest (partition, offset): a re-sent reading wins over the one it repeats, as the upsert
    does across batches."""
    if table.num_rows == 0:
        return Readings.empty()
    coded = pc.dictionary_encode(table.column(PANEL_ID)).combine_chunks()
    panel = np.asarray(coded.indices, dtype=np.int64)
    time_us = np.asarray(table.column(TIME_MICROS), dtype=np.int64)
    order = np.lexsort((np.asarray(table.column(OFFSET), dtype=np.int64),
                        np.asarray(table.column(PARTITION), dtype=np.int64), time_us, panel))
    panel, time_us = panel[order], time_us[order]
    last = np.append((panel[1:] != panel[:-1]) | (time_us[1:] != time_us[:-1]), True)
    keep = order[last]
    return Readings(
        panel_ids=np.asarray(coded.dictionary.to_pylist(), dtype=object),
        panel=panel[last], time_us=time_us[last],
        power=np.asarray(table.column(POWER), dtype=np.float64)[keep],
        status=np.asarray(table.column(STATUS), dtype=np.int8)[keep],
    )
