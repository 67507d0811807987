"""How far the stream is behind the topic: Kafka's end offsets minus the offsets of the stream's
last committed batch, read from its Spark checkpoint."""

import json
from pathlib import Path

from solar_platform.orchestration.resources import KafkaResource
from solar_platform.settings import Settings
from solar_platform.storage.stream.progress import READINGS_QUERY


def committed_offsets(checkpoint: Path) -> tuple[int | None, dict[int, int]]:
    """The Kafka offsets the stream's last *committed* batch ended at, from its checkpoint.

    Spark writes `offsets/<batch>` (planned end offsets) before a batch and `commits/<batch>`
    after it; the newest batch with both is what has reached the tables.
    """
    offsets_dir, commits_dir = checkpoint / "offsets", checkpoint / "commits"
    if not offsets_dir.is_dir() or not commits_dir.is_dir():
        return None, {}
    committed = sorted((int(p.name) for p in commits_dir.iterdir() if p.name.isdigit()), reverse=True)
    for batch in committed:
        path = offsets_dir / str(batch)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[2:]:
            try:
                source = json.loads(line)
            except ValueError:
                continue
            if isinstance(source, dict):
                for partitions in source.values():
                    return batch, {int(p): int(o) for p, o in partitions.items()}
    return None, {}


def stream_lag_figures(settings: Settings, kafka: KafkaResource) -> dict[str, object]:
    """Messages on the topic the stream has not committed, also in seconds of fleet output."""
    ends = kafka.end_offsets()
    batch, done = committed_offsets(settings.checkpoint_dir / READINGS_QUERY)
    behind = sum(max(0, end - done.get(p, 0)) for p, end in ends.items())
    per_second = settings.panels / settings.interval_seconds
    return {"end_offsets_total": sum(ends.values()), "committed_batch": batch if batch is not None else -1,
            "messages_behind": behind, "seconds_behind": round(behind / per_second, 3),
            "checkpoint": str(settings.checkpoint_dir / READINGS_QUERY)}
