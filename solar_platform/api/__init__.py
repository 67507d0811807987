"""The REST API: `create_app(settings)` builds it; `solar-platform api serve` runs it under gunicorn."""

from __future__ import annotations

from typing import Any


def create_app(*args: Any, **kwargs: Any) -> Any:
    """Lazy re-export of `solar_platform.api.app.create_app` (keeps `import solar_platform.api` light)."""
    from solar_platform.api.app import create_app as factory

    return factory(*args, **kwargs)
