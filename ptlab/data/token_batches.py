"""Batches of token ids held on the device: windows of one token stream, and padded texts.

:class:`TokenWindows` (language modelling) serves windows of ``block_size + 1``
consecutive tokens (inputs ``w[:-1]``, targets ``w[1:]``). The training split
is cut into windows at a random phase each epoch and the windows are shuffled —
both from (seed, epoch) — so every token is seen once per epoch and a resumed
run continues with exactly the next batch. The RNN uses the same independent
windows (its state starts at zero in each), not carried-over BPTT state.
Validation and test use every window from position 0, in order.

:class:`PaddedTexts` (classification) holds the texts as one padded matrix; a
batch is cut to its longest text and carries the lengths (on the CPU, where
``pack_padded_sequence`` wants them) and the labels. ``bucket_by_length``
sorts each run of 32 batches by length, so a batch pads less.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from ptlab.data.loaders import epoch_permutation


class TokenWindows:
    """Windows of ``block_size + 1`` consecutive tokens of one stream on the device: (inputs, next tokens)."""

    def __init__(self, stream: Tensor, block_size: int, batch_size: int, shuffle: bool, seed: int) -> None:
        self.stream, self.block_size, self.batch_size = stream, block_size, batch_size
        self.shuffle, self.seed = shuffle, seed
        # Shuffled windows start at a phase in [0, block_size), so one fewer fits.
        span = len(stream) - block_size if shuffle else len(stream) - 1
        self.num_windows = max(0, span // block_size)
        self.offsets = torch.arange(block_size + 1, device=stream.device)

    def __len__(self) -> int:
        return -(-self.num_windows // self.batch_size)

    def starts(self, epoch: int) -> Tensor:
        """First position of every window of ``epoch``, in the order they are served."""
        index = torch.arange(self.num_windows)
        phase = 0
        if self.shuffle:
            index = epoch_permutation(self.num_windows, self.seed, epoch)
            phase = epoch_phase(self.block_size, self.seed, epoch)
        return (phase + index * self.block_size).to(self.stream.device)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        starts = self.starts(epoch)
        for i in range(start, len(self)):
            windows = self.stream[starts[i * self.batch_size:(i + 1) * self.batch_size, None] + self.offsets]
            yield windows[:, :-1], windows[:, 1:]

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return self.batches()


def epoch_phase(block_size: int, seed: int, epoch: int) -> int:
    """Where the first window of ``epoch`` starts: the same (seed, epoch), the same phase."""
    entropy = [seed % 2**64, epoch, 1]  # 1: a stream of its own, apart from epoch_permutation's
    return int(np.random.SeedSequence(entropy).generate_state(1)[0]) % block_size


class PaddedTexts:
    """Token sequences of different lengths, padded into one matrix on the device.

    A batch is ``(tokens[B, L], lengths[B], labels[B])`` with L the longest
    text of the batch; ``lengths`` stays on the CPU (``pack_padded_sequence``
    needs it there, and it decides L without a device sync).
    """

    def __init__(self, tokens: Tensor, lengths: Tensor, labels: Tensor, batch_size: int, shuffle: bool, seed: int,
                 bucket_by_length: bool) -> None:
        self.tokens, self.lengths, self.labels = tokens, lengths.cpu(), labels
        self.batch_size, self.shuffle, self.seed, self.bucket = batch_size, shuffle, seed, bucket_by_length
        self.num_samples = len(lengths)

    def __len__(self) -> int:
        return -(-self.num_samples // self.batch_size)

    def order(self, epoch: int) -> Tensor:
        """Sample indices of ``epoch`` in serving order (CPU)."""
        n = self.num_samples
        order = epoch_permutation(n, self.seed, epoch) if self.shuffle else torch.arange(n)
        if self.bucket:  # longest first within each run of 32 batches
            run = 32 * self.batch_size
            order = torch.cat([chunk[torch.argsort(self.lengths[chunk], descending=True, stable=True)]
                               for chunk in order.split(run)])
        return order

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        order = self.order(epoch)
        for i in range(start, len(self)):
            index = order[i * self.batch_size:(i + 1) * self.batch_size]
            lengths = self.lengths[index]
            on_device = index.to(self.tokens.device)
            yield self.tokens[on_device, :int(lengths.max())], lengths, self.labels[on_device]

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        return self.batches()
