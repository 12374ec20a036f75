"""The training logs between two logging points: kept on the device, read with one host sync.

Every batch adds the values its objective logged (``loss``, ``d_loss``, ...)
with the step they belong to. At a logging point :meth:`StepLogs.sums` gives,
per key, their sum and count as device tensors, and the trainer reads all the
means with one ``.tolist()``. Keeping each batch's values, rather than a
running sum, is what lets a NaN be reported with its exact step and every loss
term of that step (:meth:`StepLogs.first_nonfinite`, a slow path that syncs).

A long stretch without a logging point stays small: past ``PENDING_LIMIT``
batches the kept values are scanned once (noting the first non-finite step, if
any) and folded into the sums.

With ``trainer.skip_nonfinite`` a NaN is expected (its step was skipped): such
values are left out of the sums instead of being reported.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
from torch import Tensor

PENDING_LIMIT = 1024  # batches whose values are kept one by one

Sums = dict[str, tuple[Tensor, Any]]  # key → (sum, count): device tensors (count may be an int)


class StepLogs:
    def __init__(self, skip_nonfinite: bool) -> None:
        self.skip_nonfinite = skip_nonfinite
        self.pending: list[tuple[int, dict[str, Tensor]]] = []  # (step, values) of each batch, oldest first
        self.folded: Sums = {}
        self.folded_nonfinite: Optional[tuple[int, dict[str, float]]] = None

    def add(self, step: int, values: dict[str, Tensor]) -> None:
        """The values one batch logged (no host sync)."""
        self.pending.append((step, {key: value.detach() for key, value in values.items()}))
        if len(self.pending) >= PENDING_LIMIT:
            self._fold()

    def sums(self) -> Sums:
        """Per key, the sum and count of the values since the last :meth:`clear`, on the device."""
        return merge(self.folded, column_sums(self.pending, self.skip_nonfinite))

    def first_nonfinite(self) -> Optional[tuple[int, dict[str, float]]]:
        """(step, every value logged at it) of the first batch with a NaN or infinite value; None if all are finite.

        One host sync when everything is finite; more only on the way to an error.
        """
        if self.skip_nonfinite:
            return None
        return self.folded_nonfinite or scan(self.pending)

    def state_dict(self) -> dict[str, list[float]]:
        """The sums and counts of the open interval, for a checkpoint (one host sync): folded first, so that a run
        that goes on and a run resumed from this checkpoint add the rest to the same partial sums, bit for bit."""
        self._fold()
        return {key: [float(total), float(count)] for key, (total, count) in self.folded.items()}

    def load_state_dict(self, state: dict[str, list[float]]) -> None:
        """Continue the interval a checkpoint's :meth:`state_dict` left open."""
        self.clear()
        self.folded = {key: (torch.tensor(total, dtype=torch.float32), int(count)) for key, (total, count) in state.items()}

    def clear(self) -> None:
        self.pending, self.folded, self.folded_nonfinite = [], {}, None

    def _fold(self) -> None:
        if self.folded_nonfinite is None and not self.skip_nonfinite:
            self.folded_nonfinite = scan(self.pending)
        self.folded = merge(self.folded, column_sums(self.pending, self.skip_nonfinite))
        self.pending = []


def column_sums(pending: list[tuple[int, dict[str, Tensor]]], skip_nonfinite: bool) -> Sums:
    sums: Sums = {}
    for key in dict.fromkeys(key for _, values in pending for key in values):
        column = torch.stack([values[key] for _, values in pending if key in values]).float()
        if skip_nonfinite:  # the skipped steps' values are not part of the mean
            finite = column.isfinite()
            sums[key] = (column.where(finite, 0).sum(), finite.sum())
        else:
            sums[key] = (column.sum(), len(column))
    return sums


def merge(a: Sums, b: Sums) -> Sums:
    merged = dict(a)
    for key, (total, count) in b.items():
        merged[key] = (merged[key][0] + total, merged[key][1] + count) if key in merged else (total, count)
    return merged


def scan(pending: list[tuple[int, dict[str, Tensor]]]) -> Optional[tuple[int, dict[str, float]]]:
    checks = [value.isfinite().all() for _, values in pending for value in values.values()]
    if not checks or bool(torch.stack(checks).all()):
        return None
    for step, values in pending:
        floats = {key: float(value) for key, value in values.items()}
        if not all(map(math.isfinite, floats.values())):
            return step, floats
    return None
