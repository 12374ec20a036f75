"""Batches of implicit feedback: training pairs with fresh negatives, and the candidate masks evaluation ranks.

Training batches are ``(users[B], items[B], negatives[B, n])``: each pair a user had in
training, with n items drawn uniformly from those the user did *not* have in training. The
negatives of an epoch are drawn for every pair in stored order by a generator seeded from
(seed, epoch) alone, then cut into batches exactly as :class:`TensorBatches` orders and shards
the pairs, so a resumed or sharded run sees the very negatives of an uninterrupted one. (A
split that holds out anything leaves every user some item outside its training pairs: a user
wholly in train has fewer interactions than a held-out user, so the rejection loop ends.)

Evaluation batches are ``(users[U], relevant[U, I], candidates[U, I])`` (boolean masks over the
I items) for the users with a held-out item in the split. Full ranking: the candidates are
every item the user did not have before (val: not in train; test: not in train or val).
Sampled ranking: the relevant items plus ``sampled_negatives`` drawn with ``split_seed`` from
the items the user never had in any split (all of them when there are fewer).
"""

from __future__ import annotations

from typing import Iterator, Literal, Sequence

import numpy as np
import torch
from torch import Tensor

from ptlab.data.loaders import TensorBatches

USERS_PER_CHUNK = 4096  # sampled candidates are drawn for this many users × all items at a time


def stream_seed(seed: int, epoch: int, stream: int) -> int:
    """A generator seed for (seed, epoch), independent of :func:`ptlab.data.loaders.epoch_permutation`'s."""
    return int(np.random.SeedSequence([seed % 2**64, epoch, stream]).generate_state(1)[0])


class InteractionBatches(TensorBatches):
    """``tensors = (users, items)``, the training pairs; each batch adds ``num_negatives`` negatives per pair."""

    def __init__(self, tensors: Sequence[Tensor], batch_size: int, shuffle: bool, seed: int, num_items: int,
                 num_negatives: int, rank: int = 0, world_size: int = 1) -> None:
        super().__init__(tensors, batch_size, shuffle, seed, None, rank, world_size)
        self.num_items, self.num_negatives = num_items, num_negatives
        users, items = (t.cpu() for t in self.tensors)
        self.pair_users = users
        self.pair_keys = torch.sort(users * num_items + items).values  # user·I + item of every training pair

    def shard(self, rank: int, world_size: int, batch_size: int) -> InteractionBatches:
        return InteractionBatches(self.tensors, batch_size, self.shuffle, self.seed, self.num_items,
                                  self.num_negatives, rank, world_size)

    def negatives(self, epoch: int) -> Tensor:
        """[pairs, num_negatives] items, uniform over those each pair's user did not have in training (on the CPU).

        Rejection sampling: draw uniformly, redraw the draws that hit a training pair of
        their user until none does; the same (seed, epoch), the same negatives.
        """
        generator = torch.Generator().manual_seed(stream_seed(self.seed, epoch, 1))
        users = self.pair_users.repeat_interleave(self.num_negatives)
        draws = torch.randint(self.num_items, (len(users),), generator=generator)
        redo = torch.nonzero(self._is_training_pair(users, draws)).squeeze(1)
        while len(redo):
            draws[redo] = torch.randint(self.num_items, (len(redo),), generator=generator)
            redo = redo[self._is_training_pair(users[redo], draws[redo])]
        return draws.view(-1, self.num_negatives)

    def _is_training_pair(self, users: Tensor, items: Tensor) -> Tensor:
        keys = users * self.num_items + items
        found = torch.searchsorted(self.pair_keys, keys).clamp(max=len(self.pair_keys) - 1)
        return self.pair_keys[found] == keys

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[Tensor, ...]]:
        if start >= len(self):
            return iter(())
        negatives = self.negatives(epoch).to(self.tensors[0].device)
        triples = TensorBatches((*self.tensors, negatives), self.batch_size, self.shuffle, self.seed,
                                rank=self.rank, world_size=self.world_size)
        return triples.batches(epoch, start)


def ranking_batches(users: np.ndarray, items: np.ndarray, part: np.ndarray, num_users: int, num_items: int,
                    ranking: Literal["full", "sampled"], sampled_negatives: int, split_seed: int,
                    batch_size: int, num_negatives: int, seed: int,
                    device: torch.device) -> tuple[InteractionBatches, TensorBatches, TensorBatches]:
    """(train, val, test) of the ranking task; ``part`` holds each row's split: 0 train, 1 val, 2 test."""
    had = [np.zeros((num_users, num_items), dtype=bool) for _ in range(3)]
    for code, mask in enumerate(had):
        mask[users[part == code], items[part == code]] = True
    train_mask, val_mask, test_mask = had
    train_users, train_items = (torch.as_tensor(a[part == 0], dtype=torch.long, device=device) for a in (users, items))
    train = InteractionBatches((train_users, train_items), batch_size, True, seed, num_items, num_negatives)
    never = ~(train_mask | val_mask | test_mask)
    before = {1: train_mask, 2: train_mask | val_mask}

    def evaluation(code: int, relevant: np.ndarray) -> TensorBatches:
        rows = np.flatnonzero(relevant.any(1))
        if ranking == "full":
            candidates = ~before[code][rows]
        else:
            rng = np.random.default_rng(np.random.SeedSequence([split_seed % 2**64, code]))
            candidates = relevant[rows] | _sample(never[rows], sampled_negatives, rng)
        tensors = (torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(relevant[rows]),
                   torch.as_tensor(candidates))
        return TensorBatches([t.to(device) for t in tensors], batch_size, shuffle=False, seed=seed)

    return train, evaluation(1, val_mask), evaluation(2, test_mask)


def _sample(allowed: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """A mask of ``k`` items drawn uniformly without replacement from each row's ``allowed`` ones (all, if fewer)."""
    if k >= allowed.shape[1]:
        return allowed.copy()
    chosen = np.zeros_like(allowed)
    for start in range(0, len(allowed), USERS_PER_CHUNK):
        part = allowed[start : start + USERS_PER_CHUNK]
        keys = np.where(part, rng.random(part.shape, dtype=np.float32), 2.0)  # never-allowed items sort last
        smallest = torch.from_numpy(keys).topk(k, dim=1, largest=False).indices.numpy()  # faster than argpartition
        np.put_along_axis(chosen[start : start + USERS_PER_CHUNK], smallest, True, axis=1)
    return chosen & allowed
