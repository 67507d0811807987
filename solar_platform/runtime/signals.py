"""Stopping a long-running command cleanly: SIGTERM and Ctrl-C ask it to stop, they do not kill it."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def stop_on_signals(stop: threading.Event, on_signal: Callable[[str], None] | None = None, *,
                    second_interrupt_raises: bool = False) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT set `stop` (and call `on_signal` with the signal's name);
    the previous handlers come back on exit.

    `second_interrupt_raises`: after the first signal, Ctrl-C is Python's default again, so a user
    who does not want to wait for the clean stop can interrupt. Handlers belong to the main thread;
    elsewhere (Dagster, tests) this does nothing and only `stop` stops the work.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum: int, _frame: object) -> None:
        if on_signal is not None:
            on_signal(signal.Signals(signum).name)
        stop.set()
        if second_interrupt_raises:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {sig: signal.signal(sig, request_stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
