"""``trainer.profile_steps=N``: a torch.profiler trace of N training steps, written into the run directory.

The first step (allocations, lazy initialization) is skipped and the second
warms the profiler up; the next N steps are recorded. The trace is a Chrome
trace (``RUN_DIR/profile/*.pt.trace.json``): open it at https://ui.perfetto.dev
or chrome://tracing, or with TensorBoard's PyTorch profiler plugin
(``pip install torch-tb-profiler; tensorboard --logdir RUN_DIR/profile``).
A table of the most expensive operators goes to the log.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

from ptlab.engine.callbacks import Callback

if TYPE_CHECKING:
    from ptlab.engine.trainer import Trainer

log = logging.getLogger("ptlab")

SKIPPED, WARMUP = 1, 1  # steps before recording starts


class StepProfiler(Callback):
    def __init__(self, folder: Path, steps: int) -> None:
        self.folder, self.steps = folder, steps
        self.profiler: profile | None = None
        self.seen = 0
        self.cuda = False  # set at the start of fit: CUDA kernels are recorded and ranked too

    def on_fit_start(self, trainer: Trainer) -> None:
        os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # no "ERROR: gpuGetDeviceCount failed" on machines without a GPU
        activities = [ProfilerActivity.CPU]
        self.cuda = trainer.run.device.type == "cuda"
        if self.cuda:
            activities.append(ProfilerActivity.CUDA)
        self.profiler = profile(
            activities=activities,
            schedule=schedule(wait=SKIPPED, warmup=WARMUP, active=self.steps, repeat=1),
            on_trace_ready=self._write,
            record_shapes=True,
        )
        self.profiler.start()

    def on_step_end(self, trainer: Trainer) -> None:
        if self.profiler is None:
            return
        self.profiler.step()
        self.seen += 1
        if self.seen == SKIPPED + WARMUP + self.steps:
            self._stop()

    def on_interrupt(self, trainer: Trainer) -> None:
        self._stop()

    def on_fit_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        if self.profiler is not None:
            log.warning("trainer.profile_steps=%d: the run ended after %d steps, before the profiler recorded all "
                        "of them", self.steps, self.seen)
            self._stop()

    def _stop(self) -> None:
        if self.profiler is not None:
            self.profiler.stop()
            self.profiler = None

    def _write(self, prof: profile) -> None:
        tensorboard_trace_handler(str(self.folder), worker_name="ptlab")(prof)
        sort = "self_cuda_time_total" if self.cuda else "self_cpu_time_total"
        log.info("profile of %d training steps (trace: %s):\n%s", self.steps, self.folder,
                 prof.key_averages().table(sort_by=sort, row_limit=12))
