"""`api serve`: what each gunicorn worker does once it has built the app."""

from __future__ import annotations

import gc

from flask import Flask

from solar_platform.api import commands


def test_a_worker_freezes_its_startup_objects_out_of_the_collector() -> None:
    """The app and its libraries (about 120k objects) live as long as the worker: frozen, a full
    collection no longer walks them in the middle of a request."""
    gc.unfreeze()
    try:
        application = commands._gunicorn_application({"bind": "127.0.0.1:0"}, {}).load()
        assert isinstance(application, Flask)
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
