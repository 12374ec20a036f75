"""Batches of sentence pairs held on the device, for sequence-to-sequence training (teacher forcing).

Each pair is stored once as two padded rows of token ids:

    source  x₁ … x_S                      (``src``, padded with <pad>)
    target  <bos> y₁ … y_T <eos>          (``tgt``, padded with <pad>)

A batch is ``(src[B, S], src_lengths[B], tgt_in[B, T+1], tgt_out[B, T+1])`` with
``tgt_in = <bos> y₁ … y_T`` and ``tgt_out = y₁ … y_T <eos>``: at position t the
decoder reads y_<t and is scored on y_t. S and T are the longest of the batch;
the lengths stay on the CPU, so cutting a batch to them needs no device sync.
The order of an epoch is :func:`ptlab.data.loaders.epoch_order`'s, as for every
other in-memory set: the same (seed, epoch), the same batches, also under torchrun.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch import Tensor

from ptlab.data.loaders import batch_count, batch_share, epoch_order


class PairBatches:
    """Padded source and target ids on the device, their lengths on the CPU, and the pairs' texts."""

    def __init__(self, src: Tensor, src_lengths: Tensor, tgt: Tensor, tgt_lengths: Tensor, sources: Sequence[str],
                 batch_size: int, shuffle: bool, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.src, self.tgt = src, tgt
        self.src_lengths, self.tgt_lengths = src_lengths.cpu(), tgt_lengths.cpu()  # tgt_lengths count <bos> and <eos>
        self.sources = list(sources)  # the source texts, for baselines and sample logs
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.num_samples = len(self.src_lengths)

    def shard(self, rank: int, world_size: int, batch_size: int) -> PairBatches:
        return PairBatches(self.src, self.src_lengths, self.tgt, self.tgt_lengths, self.sources, batch_size,
                           self.shuffle, self.seed, rank, world_size)

    def __len__(self) -> int:
        return batch_count(self.num_samples, self.batch_size, self.shuffle, self.rank, self.world_size)

    def share(self, index: int) -> float:
        """Batch ``index``'s weight for the trainer (:func:`ptlab.data.loaders.batch_share`; 1 outside torchrun)."""
        return batch_share(self.num_samples, self.batch_size, self.rank, self.world_size, index)

    def order(self, epoch: int = 0) -> Tensor:
        """This rank's pairs of ``epoch`` in serving order (CPU indices)."""
        return epoch_order(self.num_samples, self.batch_size, self.seed, epoch, self.shuffle, self.rank,
                           self.world_size)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[Tensor, Tensor, Tensor, Tensor]]:
        order = self.order(epoch)
        for i in range(start, len(self)):
            index = order[i * self.batch_size:(i + 1) * self.batch_size]
            src_lengths = self.src_lengths[index]
            source_width, target_width = int(src_lengths.max()), int(self.tgt_lengths[index].max())
            on_device = index.to(self.src.device)
            tgt = self.tgt[on_device, :target_width]
            yield self.src[on_device, :source_width], src_lengths, tgt[:, :-1], tgt[:, 1:]

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor, Tensor]]:
        return self.batches()
