"""Batches for the trainer: the in-memory fast path and DataLoader for data on disk.

Both kinds share one contract: ``batches(epoch, start)`` yields the batches of
``epoch`` beginning with batch number ``start``. The order of an epoch is a pure
function of (seed, epoch), so a resumed run only needs (epoch, position) to
continue with exactly the batch it would have seen next.

``carve_splits`` cuts validation and test splits out of a training set with a
fixed ``split_seed``, the same way for every builder.

A ``transform`` (data augmentation, :mod:`ptlab.data.augment`) maps the first
tensor of each batch — the inputs — on the training device; builders give one
to the training split only.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Optional, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor

from ptlab.config import PER_DEVICE
from ptlab.errors import ConfigError

if TYPE_CHECKING:
    from ptlab.engine.distributed import World


class Batches(Protocol):
    """An iterable of batches that can start anywhere inside any epoch."""

    def __len__(self) -> int: ...

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[Sequence[Tensor]]: ...


@dataclass
class Data:
    """What a dataset builder returns; ``info`` feeds the model's injected arguments."""

    train: Batches
    val: Batches
    test: Batches
    info: dict[str, Any] = field(default_factory=dict)
    tokenizer: Optional[str] = None  # text data: its Hugging Face tokenizer as JSON (kept in checkpoints)
    state: dict[str, Any] = field(default_factory=dict)  # what the builder fitted that checkpoints keep (plain data:
    # a recommender's id → index maps and item titles, a CSV's categories), checked against the rebuilt data by eval

    def in_memory(self, split: str) -> Optional[tuple[Tensor, ...]]:
        """All of ``split`` ("train", "val", "test") as the tensors it is held in, in stored order and unaugmented;
        None when it is read from a dataset batch by batch or cut by trainer.limit_*/overfit_batches.
        (Closed-form baselines fit on these.)"""
        part = getattr(self, split)
        return part.tensors if isinstance(part, TensorBatches) else None


def epoch_permutation(n: int, seed: int, epoch: int) -> Tensor:
    """The shuffled order of ``n`` samples in ``epoch``: the same (seed, epoch), the same order."""
    entropy = [seed % 2**64, epoch]  # SeedSequence takes non-negative ints only; seed=-1 is a valid config
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence(entropy).generate_state(1)[0]))
    return torch.randperm(n, generator=generator)


Transform = Callable[[Tensor], Tensor]


def shard_order(num_samples: int, seed: int, epoch: int, shuffle: bool, rank: int = 0, world_size: int = 1) -> Tensor:
    """The samples one rank visits in ``epoch``: every ``world_size``-th of the epoch's order, from ``rank``.

    Batch i of all ranks together is then batch i of the unsharded run with the
    global batch size: the data order does not depend on the number of
    processes. Nothing is repeated: when the last global batch does not split
    evenly, ranks get one sample more or less (see :func:`batch_share`).
    """
    order = epoch_permutation(num_samples, seed, epoch) if shuffle else torch.arange(num_samples)
    return order[rank::world_size] if world_size > 1 else order


def batch_share(num_samples: int, batch_size: int, rank: int, world_size: int, index: int) -> float:
    """What rank ``rank``'s batch ``index`` weighs in the global batch, times ``world_size``: n_rank · W / n_global.

    DDP averages the ranks' gradients of their batch means; scaled by this factor,
    the average is the gradient of the global batch's mean, as in one process.
    It is 1 for every full global batch and 0 for a stand-in (a rank with no
    sample left in the last global batch).
    """
    start = index * batch_size * world_size
    global_size = min(batch_size * world_size, num_samples - start)
    local_size = len(range(start + rank, start + global_size, world_size))
    return local_size * world_size / global_size


def batch_count(num_samples: int, batch_size: int, shuffle: bool, rank: int = 0, world_size: int = 1) -> int:
    """Batches per epoch of rank ``rank``: a shuffled split under torchrun has the global batches (the same number
    on every rank, so DDP's all-reduces pair up); otherwise the rank's own samples in batches."""
    if shuffle and world_size > 1:
        return -(-num_samples // (batch_size * world_size))
    return -(-len(range(rank, num_samples, world_size)) // batch_size)


def epoch_order(num_samples: int, batch_size: int, seed: int, epoch: int, shuffle: bool, rank: int = 0,
                world_size: int = 1) -> Tensor:
    """:func:`shard_order`, plus a stand-in sample when this rank has none left for the last global batch
    (weighed 0 by :func:`batch_share`) so that every rank takes every step."""
    order = shard_order(num_samples, seed, epoch, shuffle, rank, world_size)
    if shuffle and len(order) <= (batch_count(num_samples, batch_size, shuffle, rank, world_size) - 1) * batch_size:
        order = torch.cat([order, order[:1]])
    return order


EPOCH_GATHER_BYTES = 256 * 2**20


class TensorBatches:
    """Index slices of tensors that already live on the training device.

    No DataLoader, no per-sample collate: one permutation per epoch, one
    gather per tensor per epoch (per batch for data over 256 MiB), and one call
    of ``transform`` on each batch's inputs.
    Under torchrun, :meth:`shard` gives each rank its part of every epoch.
    """

    def __init__(self, tensors: Sequence[Tensor], batch_size: int, shuffle: bool, seed: int,
                 transform: Optional[Transform] = None, rank: int = 0, world_size: int = 1) -> None:
        self.tensors = tuple(tensors)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.transform = transform
        self.rank, self.world_size = rank, world_size
        self.num_samples = len(self.tensors[0])

    def shard(self, rank: int, world_size: int, batch_size: int) -> TensorBatches:
        return TensorBatches(self.tensors, batch_size, self.shuffle, self.seed, self.transform, rank, world_size)

    def __len__(self) -> int:
        return batch_count(self.num_samples, self.batch_size, self.shuffle, self.rank, self.world_size)

    def share(self, index: int) -> float:
        """Batch ``index``'s weight for the trainer (:func:`batch_share`; 1 outside torchrun)."""
        return batch_share(self.num_samples, self.batch_size, self.rank, self.world_size, index)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[Tensor, ...]]:
        if start >= len(self):
            return iter(())
        skip = start * self.batch_size
        if self.shuffle or self.world_size > 1:
            order = epoch_order(self.num_samples, self.batch_size, self.seed, epoch, self.shuffle, self.rank,
                                self.world_size)
            order = order[skip:].to(self.tensors[0].device)
            if self.gather_per_epoch:  # one gather per tensor per epoch; the batches are views of it
                parts = zip(*(t[order].split(self.batch_size) for t in self.tensors))
            else:
                parts = (tuple(t[index] for t in self.tensors) for index in order.split(self.batch_size))
        else:
            parts = zip(*(t[skip:].split(self.batch_size) for t in self.tensors))
        if self.transform is None:
            return parts
        return ((self.transform(batch[0]), *batch[1:]) for batch in parts)

    @property
    def gather_per_epoch(self) -> bool:
        """Small data is reordered once per epoch; large data batch by batch, so it is never held twice."""
        return sum(t.numel() * t.element_size() for t in self.tensors) <= EPOCH_GATHER_BYTES

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        return self.batches()


class EpochBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Batch sampler for a DataLoader with the same (seed, epoch, rank) → order rule as TensorBatches."""

    def __init__(self, num_samples: int, batch_size: int, shuffle: bool, seed: int, rank: int = 0,
                 world_size: int = 1) -> None:
        self.num_samples, self.batch_size, self.shuffle, self.seed = num_samples, batch_size, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start = 0, 0

    def __len__(self) -> int:
        return batch_count(self.num_samples, self.batch_size, self.shuffle, self.rank, self.world_size)

    def __iter__(self) -> Iterator[list[int]]:
        order = epoch_order(self.num_samples, self.batch_size, self.seed, self.epoch, self.shuffle, self.rank,
                            self.world_size)
        for i in range(self.start, len(self)):
            yield order[i * self.batch_size : (i + 1) * self.batch_size].tolist()


class LoaderBatches:
    """A DataLoader (workers, pinned memory, persistent workers) for samples read from disk."""

    def __init__(self, dataset: torch.utils.data.Dataset, batch_size: int, shuffle: bool, seed: int,
                 device: torch.device, num_workers: int, transform: Optional[Transform] = None,
                 rank: int = 0, world_size: int = 1) -> None:
        self.sampler = EpochBatchSampler(len(dataset), batch_size, shuffle, seed, rank, world_size)
        self.dataset, self.num_workers, self.shuffle, self.seed = dataset, num_workers, shuffle, seed
        self.device = device
        self.transform = transform
        self.loader = torch.utils.data.DataLoader(
            dataset,
            batch_sampler=self.sampler,
            num_workers=num_workers,
            pin_memory=device.type == "cuda",
            persistent_workers=num_workers > 0,
        )

    def shard(self, rank: int, world_size: int, batch_size: int) -> LoaderBatches:
        return LoaderBatches(self.dataset, batch_size, self.shuffle, self.seed, self.device, self.num_workers,
                             self.transform, rank, world_size)

    def __len__(self) -> int:
        return len(self.sampler)

    def share(self, index: int) -> float:
        """Batch ``index``'s weight for the trainer (:func:`batch_share`; 1 outside torchrun)."""
        s = self.sampler
        return batch_share(s.num_samples, s.batch_size, s.rank, s.world_size, index)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[list[Tensor]]:
        self.sampler.epoch, self.sampler.start = epoch, start
        for batch in self.loader:
            batch = [t.to(self.device, non_blocking=True) for t in batch]
            yield batch if self.transform is None else [self.transform(batch[0]), *batch[1:]]

    def __iter__(self) -> Iterator[list[Tensor]]:
        return self.batches()

    def in_stored_order(self) -> Iterator[list[Tensor]]:
        """Every sample of this shard once, in the dataset's own order and without augmentation, on the device."""
        sampler = EpochBatchSampler(len(self.dataset), self.sampler.batch_size, False, self.seed,
                                    self.sampler.rank, self.sampler.world_size)
        loader = torch.utils.data.DataLoader(self.dataset, batch_sampler=sampler, num_workers=self.num_workers,
                                             pin_memory=self.device.type == "cuda")
        for batch in loader:
            yield [t.to(self.device, non_blocking=True) for t in batch]


def stored_rows(batches: Batches) -> tuple[Tensor, ...]:
    """Every sample of ``batches`` once, in stored order and unaugmented, as whole tensors: the tensors themselves
    when they are held in memory (batches cut by trainer.limit_*/overfit_batches give the samples they hold)."""
    if isinstance(batches, TensorBatches):
        return batches.tensors
    source = batches.in_stored_order() if isinstance(batches, LoaderBatches) else batches.batches()
    return tuple(torch.cat(column) for column in zip(*source))


class FirstBatches:
    """At most ``limit`` batches of every epoch of ``batches`` (``trainer.limit_*_batches``)."""

    def __init__(self, batches: Batches, limit: int) -> None:
        self.inner, self.limit = batches, limit

    def __len__(self) -> int:
        return min(self.limit, len(self.inner))

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[Sequence[Tensor]]:
        return itertools.islice(self.inner.batches(epoch, start), max(0, len(self) - start))

    def __iter__(self) -> Iterator[Sequence[Tensor]]:
        return self.batches()


class FixedBatches:
    """The first ``count`` batches of epoch 0, kept and replayed in the same order every epoch.

    ``trainer.overfit_batches``: no reshuffling and no fresh augmentation, so a
    model that can learn at all drives the loss on them towards zero.
    """

    def __init__(self, batches: Batches, count: int) -> None:
        self.kept = list(itertools.islice(batches.batches(0), count))

    def __len__(self) -> int:
        return len(self.kept)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[Sequence[Tensor]]:
        return iter(self.kept[start:])

    def __iter__(self) -> Iterator[Sequence[Tensor]]:
        return self.batches()


def shard_data(data: Data, world: World, data_cfg: Mapping[str, Any]) -> Data:
    """Each rank's part of every split; the global batch stays data.batch_size unless batch_size_per_device is set."""
    per_device = data_cfg.get(PER_DEVICE)
    if per_device is None:
        batch_size = data_cfg.get("batch_size", 1)
        if batch_size % world.size:
            raise ConfigError(f"data.batch_size: {batch_size} does not split across {world.size} processes; use a "
                              f"multiple of {world.size} or set +data.{PER_DEVICE}=N")
        per_device = batch_size // world.size
    splits = {}
    for name in ("train", "val", "test"):
        part = getattr(data, name)
        if not hasattr(part, "shard"):
            raise ConfigError(f"data: {type(part).__name__} cannot be split across torchrun processes yet")
        splits[name] = part.shard(world.rank, world.size, per_device)
    return replace(data, **splits)


def limit_batches(data: Data, limits: dict[str, Optional[int]], overfit: Optional[int]) -> Data:
    """``data`` cut to the batch limits of each split, or to ``overfit`` fixed training batches used as val too."""
    import dataclasses

    splits = {name: FirstBatches(getattr(data, name), limit) for name, limit in limits.items() if limit}
    if overfit:
        splits["train"] = splits["val"] = FixedBatches(data.train, overfit)
    return dataclasses.replace(data, **splits)


def in_memory_splits(
    splits: dict[str, Sequence[Tensor]], batch_size: int, seed: int, device: torch.device, info: dict[str, Any],
    train_transform: Optional[Transform] = None,
) -> Data:
    """Move each split's tensors to ``device`` once and wrap them as batches (only train is shuffled and transformed)."""
    return Data(
        **{
            name: TensorBatches([t.to(device) for t in tensors], batch_size, shuffle=name == "train", seed=seed,
                                transform=train_transform if name == "train" else None)
            for name, tensors in splits.items()
        },
        info=info,
    )


def carve_splits(labels: np.ndarray, fractions: dict[str, float], split_seed: int,
                 stratify: bool) -> dict[str, np.ndarray]:
    """Sample indices of each split named in ``fractions`` (each a fraction of *all* samples) and of "train".

    Splits are carved in the order given, stratified by ``labels`` when asked;
    the same labels, fractions and ``split_seed`` always give the same indices.
    """
    from ptlab.data.shuffle_split import shuffle_split

    total = sum(fractions.values())
    if total >= 1:
        keys = " + ".join(f"data.{name}_fraction" for name in reversed(fractions))
        raise ConfigError(f"{keys}: they add up to {total:g}, which leaves no training samples; "
                          "make the sum less than 1")
    rest, left, parts = np.arange(len(labels)), 1.0, {}
    for name, fraction in fractions.items():
        try:
            rest, parts[name] = shuffle_split(rest, fraction / left, split_seed, labels[rest] if stratify else None)
        except ValueError as err:
            raise ConfigError(
                f"data.{name}_fraction: cannot carve {fraction:g} of {len(labels)} samples into a {name} split "
                f"({err}); change the fraction or give more samples (of every class)"
            ) from None
        left -= fraction
    parts["train"] = rest
    return parts
