"""Preemption and time limits under submitit (``hydra/launcher=submitit_slurm``, ``submitit_local``).

SLURM signals a job (USR2, ``signal_delay_s`` before its time limit or when it is
preempted) and submitit's handler requeues it at once, wherever the training loop
is. Here that signal first goes to the trainer as a SIGTERM would: it writes a
checkpoint at the next step boundary and stops; only then does submitit requeue
the job. The requeued job runs the same overrides, so it lands in the same job
folder and continues from that checkpoint (sweep jobs run with ``resume=auto``).
"""

from __future__ import annotations

import signal
import types
from contextlib import contextmanager
from typing import Any, Iterator


def _submitit_handler(launcher: Any) -> tuple[int, Any] | None:
    """(the preemption signal, submitit's handler for it) inside a submitit job, else None."""
    if "submitit" not in str(launcher.get("_target_", "")):
        return None
    from submitit.core.job_environment import JobEnvironment, SignalHandler

    signum = JobEnvironment._usr_sig()
    handler = signal.getsignal(signum)
    if isinstance(handler, types.MethodType) and isinstance(handler.__self__, SignalHandler):
        return signum, handler
    return None


@contextmanager
def requeue_on_preemption(launcher: Any) -> Iterator[None]:
    """Around training in a job: on preemption, checkpoint and stop (TrainingInterrupted), then requeue."""
    from ptlab.engine.trainer import TrainingInterrupted

    found = _submitit_handler(launcher)
    if found is None:
        yield
        return
    signum, requeue = found
    idle = signal.getsignal(signal.SIGTERM)  # submitit's; the trainer replaces it while it trains
    received: list[int] = []

    def on_preemption(sig: int, frame: Any) -> None:
        received.append(sig)
        stop = signal.getsignal(signal.SIGTERM)
        if callable(stop) and stop != idle:
            stop(signal.SIGTERM, frame)  # the trainer's: checkpoint at the next step, then TrainingInterrupted
        else:
            requeue(sig, frame)  # not training: nothing to save

    signal.signal(signum, on_preemption)
    try:
        yield
    except TrainingInterrupted:
        if received:
            requeue(received[0], None)  # submitit requeues the job and exits
        raise
    finally:
        signal.signal(signum, requeue)
