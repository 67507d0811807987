"""Throwaway environments on the running stack, for tests and benchmarks that must not share state."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from solar_platform.runtime.kafka_provisioning import drop_topic, ensure_topic
from solar_platform.settings import Settings
from solar_platform.stack.mariadb import drop_database, provision_database


@contextmanager
def scratch_environment(base: Settings, name: str, *, keep: bool = False) -> Iterator[Settings]:
    """A brand-new migrated database and topic called `name` on the running stack (tests, benchmarks).

    Dropped afterwards, with the topic and the stream's checkpoints, unless `keep`.
    """
    from solar_platform.storage.migrations import migrate

    settings = base.model_copy(update={"mysql_database": name, "topic": name})
    provision_database(settings)
    migrate(settings)
    ensure_topic(settings)
    try:
        yield settings
    finally:
        if not keep:
            from solar_platform.storage import db

            db.dispose_engines(name)
            drop_database(settings, name)
            drop_topic(settings, name)
            shutil.rmtree(settings.checkpoint_dir, ignore_errors=True)
