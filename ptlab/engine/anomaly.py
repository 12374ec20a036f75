"""``trainer.detect_anomaly``: autograd's anomaly mode, its finding turned into one readable line.

In anomaly mode autograd checks the output of every backward function for NaN.
When one is found it raises ``Function 'MulBackward0' returned nan values in its
0th output`` and warns with the traceback of the *forward* call that created
that function. The last frame of that traceback is the line to look at; it goes
into the error message, and the whole traceback into the log.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from typing import Callable, Iterator

import torch

log = logging.getLogger("ptlab")

FORWARD_TRACE = "Traceback of forward call that caused the error"
FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)\n\s*(?P<code>[^\n]*)')


@contextlib.contextmanager
def nan_detection(enabled: bool, error: Callable[[str], Exception]) -> Iterator[None]:
    """With ``enabled``, run the block in anomaly mode: a NaN in a backward pass raises ``error(description)``."""
    if not enabled:
        yield
        return
    log.info("trainer.detect_anomaly: autograd checks every backward pass for NaN (slow; for debugging only)")
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.filterwarnings("ignore", "Anomaly Detection has been enabled")
            with torch.autograd.detect_anomaly(check_nan=True):
                yield
    except RuntimeError as err:
        if "returned nan values" not in str(err):
            raise
        forward = next((str(w.message) for w in caught if FORWARD_TRACE in str(w.message)), "")
        if forward:
            log.warning("%s", forward)
        raise error(f"{err} {forward_line(forward)}") from None
    finally:
        for w in caught:  # every other warning of the run, shown as it would have been
            if FORWARD_TRACE not in str(w.message):
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def forward_line(trace: str) -> str:
    """Where in the forward pass the NaN-producing operation was called (the last frame of ``trace``)."""
    frames = list(FRAME.finditer(trace))
    if not frames:
        return "Autograd gave no forward traceback."
    last = frames[-1]
    return f"It was created in the forward pass at {last['file']}:{last['line']} ({last['function']}): {last['code'].strip()}"
