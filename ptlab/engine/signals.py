"""SIGTERM/SIGINT for a whole run: a signal only sets a flag; the run stops at its next safe point.

The handlers are installed for everything a run does after its config is
checked — building the data, training, the final validation, the test pass,
writing metrics.json — so a signal at any of these moments ends the run with
a checkpoint (where there is something to save) and exit code 128 + signal
(143 for SIGTERM, 130 for SIGINT), never with a half-written file. A second
signal of the same kind is not caught: Ctrl-C twice stops at once.
Nothing is saved from inside a handler.
"""

from __future__ import annotations

import contextlib
import signal
from typing import Any, Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Which stop signal arrived first (``received``), while :meth:`caught` is active."""

    def __init__(self) -> None:
        self.received: int | None = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = self.received or signum
        # The next one of this kind takes its default action: Python's KeyboardInterrupt, or termination.
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)

    @contextlib.contextmanager
    def caught(self) -> Iterator[StopSignals]:
        try:
            previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}
        except ValueError:  # not the main thread: leave signals alone
            previous = {}
        try:
            yield self
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
