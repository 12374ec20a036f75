"""Speed a run can read: samples/s, tokens/s, step time, peak memory and MFU, at every logging point.

Nothing here waits for the device. The counts are host integers (``len`` and
``numel`` of a batch are metadata), and the clock is read at logging points, right
after the trainer's one ``.tolist()`` has waited for the device anyway. The clock
counts training only (``LoopState.train_seconds``), not validation.

MFU, model FLOPs utilization, is the fraction of the hardware's peak that the
model's own arithmetic reaches::

    mfu = FLOPs per sample × samples per second / peak FLOP/s

FLOPs per sample are counted once, on the first training batch, with
``torch.utils.flop_counter.FlopCounterMode``: the matrix products, convolutions
and attention of one forward and backward pass of the objective's loss (the
optimizer's few element-wise FLOPs are not counted, as in PaLM's and nanoGPT's
MFU). The peak is ``trainer.peak_flops`` or, for known GPUs, :data:`PEAK_FLOPS`.
Without a peak nothing is counted (the counter costs a pass and imports
``torch._dynamo``) and no ``train/mfu`` is logged.
"""

from __future__ import annotations

import resource
import sys
from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import Tensor

if TYPE_CHECKING:
    from ptlab.objectives.base import Objective

# Dense peak FLOP/s per precision (no sparsity), from the vendors' data sheets. Matched against
# torch.cuda.get_device_name in this order, so "H100 PCIe" is found before "H100".
PEAK_FLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H200", {"bf16": 989e12, "16": 989e12, "32": 67e12}),
    ("H100 PCIe", {"bf16": 756e12, "16": 756e12, "32": 51e12}),
    ("H100", {"bf16": 989e12, "16": 989e12, "32": 67e12}),
    ("A100", {"bf16": 312e12, "16": 312e12, "32": 19.5e12}),
    ("L40S", {"bf16": 362e12, "16": 362e12, "32": 91.6e12}),
    ("L4", {"bf16": 121e12, "16": 121e12, "32": 30.3e12}),
    ("A10", {"bf16": 125e12, "16": 125e12, "32": 31.2e12}),
    ("RTX 4090", {"bf16": 165e12, "16": 165e12, "32": 82.6e12}),
    ("V100", {"16": 125e12, "32": 15.7e12}),
    ("T4", {"16": 65e12, "32": 8.1e12}),
)

# The speed metrics: measured, so they differ between two runs that compute the same numbers.
SPEED_KEYS = ("train/samples_per_s", "train/tokens_per_s", "train/step_ms", "train/peak_mem_gib", "train/mfu")


def peak_flops(device: torch.device, precision: str, configured: float | None = None) -> float | None:
    """The hardware's peak FLOP/s for ``precision`` ("32", "bf16", "16"): ``configured`` (trainer.peak_flops)
    or the table's value for a known GPU; None when unknown (a CPU, an unlisted GPU)."""
    if configured is not None:
        return configured
    return known_peak(torch.cuda.get_device_name(device), precision) if device.type == "cuda" else None


def known_peak(device_name: str, precision: str) -> float | None:
    """:data:`PEAK_FLOPS` for a GPU named ``device_name`` (as torch.cuda.get_device_name says it)."""
    return next((peaks.get(precision) for model, peaks in PEAK_FLOPS if model in device_name), None)


def count_flops(model: torch.nn.Module, objective: Objective, batch: Sequence[Tensor], autocast: Any) -> int:
    """FLOPs of one forward and backward pass of ``objective.loss`` on ``batch``, leaving no trace.

    The pass runs in eval mode (no dropout; BatchNorm statistics untouched) under a forked random
    state, and the gradients it makes are replaced by the ones that were there before.
    """
    from torch.utils.flop_counter import FlopCounterMode

    params = [p for p in model.parameters() if p.requires_grad]
    grads, was_training = [p.grad for p in params], model.training
    for p in params:  # backward would add into them in place
        p.grad = None
    devices = [batch[0].device] if batch[0].device.type == "cuda" else []
    model.eval()
    try:
        with torch.random.fork_rng(devices=devices), FlopCounterMode(display=False) as counter:
            with autocast:
                loss, _, _ = objective.loss(model, batch)
            loss.float().backward()
    finally:
        model.train(was_training)
        for p, grad in zip(params, grads):
            p.grad = grad
    return counter.get_total_flops()


def peak_memory_gib(device: torch.device) -> float:
    """The most memory this process has held: allocated CUDA memory on a GPU, resident memory otherwise."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (2**30 if sys.platform == "darwin" else 2**20)


class Throughput:
    """Counts what the trainer trains on and turns it into ``train/*`` speed metrics."""

    def __init__(self, device: torch.device, peak: float | None, count_tokens: bool) -> None:
        self.device, self.peak, self.count_tokens = device, peak, count_tokens
        self.flops_per_sample: float | None = None
        self.tokens = 0  # since this launch started (samples and steps: the trainer's LoopState)
        self.start: tuple[int, int, int, float] | None = None  # (samples, tokens, step, seconds) at the last log
        self.first: tuple[int, int, int, float] | None = None  # the same, when this launch started training

    def wants_flops(self) -> bool:
        return self.peak is not None and self.flops_per_sample is None

    def set_flops(self, flops: int, batch_size: int) -> None:
        self.flops_per_sample = flops / max(batch_size, 1)

    def add(self, batch: Sequence[Tensor]) -> None:
        """One training batch's tokens (no device sync: sizes only)."""
        if self.count_tokens:
            self.tokens += batch[0].numel()

    def begin(self, samples: int, step: int, seconds: float) -> None:
        """Training (re)starts at ``step``, with ``samples`` seen and ``seconds`` of training behind it."""
        self.start = self.first = (samples, self.tokens, step, seconds)

    def interval(self, samples: int, step: int, seconds: float) -> dict[str, float]:
        """The speed since the previous logging point; the next interval starts here."""
        metrics = self._speed(self.start, samples, step, seconds)
        self.start = (samples, self.tokens, step, seconds)
        return metrics

    def overall(self, samples: int, step: int, seconds: float) -> dict[str, float]:
        """The speed over this launch's training, for metrics.json."""
        return self._speed(self.first, samples, step, seconds)

    def _speed(self, since: tuple[int, int, int, float] | None, samples: int, step: int,
               seconds: float) -> dict[str, float]:
        if since is None:
            return {}
        samples, tokens, steps, elapsed = samples - since[0], self.tokens - since[1], step - since[2], seconds - since[3]
        if steps <= 0 or elapsed <= 0:
            return {}
        metrics = {"train/samples_per_s": samples / elapsed}
        if self.count_tokens:
            metrics["train/tokens_per_s"] = tokens / elapsed
        metrics["train/step_ms"] = 1000 * elapsed / steps
        metrics["train/peak_mem_gib"] = peak_memory_gib(self.device)
        if self.peak is not None and self.flops_per_sample is not None:
            metrics["train/mfu"] = self.flops_per_sample * samples / elapsed / self.peak
        return metrics
