"""The batch contract the trainer and exact resume rely on: seeded epoch orders, full coverage, resumable tails."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptlab.data.loaders import (
    FirstBatches,
    FixedBatches,
    LoaderBatches,
    TensorBatches,
    carve_splits,
    epoch_permutation,
    in_memory_splits,
)
from ptlab.errors import ConfigError

CPU = torch.device("cpu")


def as_lists(batches) -> list[list[list]]:
    """Each batch as plain nested lists, so whole epochs compare with ``==``."""
    return [[t.tolist() for t in batch] for batch in batches]


def test_epoch_permutation_is_a_function_of_seed_and_epoch() -> None:
    first = epoch_permutation(50, seed=3, epoch=0)
    assert torch.equal(first, epoch_permutation(50, seed=3, epoch=0))
    assert sorted(first.tolist()) == list(range(50))
    assert not torch.equal(first, epoch_permutation(50, seed=3, epoch=1))
    assert not torch.equal(first, epoch_permutation(50, seed=4, epoch=0))
    torch.manual_seed(123)  # the global RNG must not matter
    assert torch.equal(first, epoch_permutation(50, seed=3, epoch=0))


def test_epoch_permutation_accepts_a_negative_seed() -> None:
    order = epoch_permutation(20, seed=-1, epoch=0)
    assert sorted(order.tolist()) == list(range(20))
    assert not torch.equal(order, epoch_permutation(20, seed=1, epoch=0))


@pytest.mark.parametrize("n,batch_size", [(10, 3), (12, 4), (1, 5)])
def test_tensor_batches_yield_every_sample_once(n: int, batch_size: int) -> None:
    x = torch.arange(n, dtype=torch.float32).unsqueeze(1) * 10
    y = torch.arange(n)
    data = TensorBatches([x, y], batch_size, shuffle=True, seed=0)
    batches = list(data.batches(epoch=2))
    assert len(batches) == len(data) == -(-n // batch_size)
    seen = torch.cat([b[1] for b in batches])
    assert sorted(seen.tolist()) == list(range(n))
    for bx, by in batches:
        assert torch.equal(bx[:, 0], by.float() * 10)  # features and targets stay paired


def test_tensor_batches_shuffle_only_when_asked() -> None:
    y = torch.arange(40)
    plain = TensorBatches([y], 8, shuffle=False, seed=0)
    assert torch.cat([b[0] for b in plain.batches(epoch=5)]).tolist() == list(range(40))
    shuffled = TensorBatches([y], 8, shuffle=True, seed=0)
    epoch0 = torch.cat([b[0] for b in shuffled.batches(epoch=0)])
    epoch1 = torch.cat([b[0] for b in shuffled.batches(epoch=1)])
    assert epoch0.tolist() != list(range(40))
    assert epoch0.tolist() != epoch1.tolist()
    assert torch.equal(epoch0, epoch_permutation(40, 0, 0))
    assert as_lists(shuffled.batches(epoch=1)) == as_lists(TensorBatches([y], 8, shuffle=True, seed=0).batches(epoch=1))


@pytest.mark.parametrize("shuffle", [True, False])
def test_tensor_batches_resume_from_any_batch(shuffle: bool) -> None:
    x, y = torch.randn(23, 2), torch.arange(23)
    data = TensorBatches([x, y], 5, shuffle=shuffle, seed=7)
    for epoch in (0, 3):
        full = as_lists(data.batches(epoch))
        for k in range(len(data) + 1):
            assert as_lists(data.batches(epoch, start=k)) == full[k:]


def test_in_memory_splits_shuffle_train_only() -> None:
    y = torch.arange(30)
    data = in_memory_splits({"train": (y,), "val": (y,), "test": (y,)}, 10, seed=1, device=CPU, info={"k": 1})
    assert data.info == {"k": 1}
    assert torch.cat([b[0] for b in data.val.batches(epoch=1)]).tolist() == list(range(30))
    assert torch.cat([b[0] for b in data.test.batches(epoch=1)]).tolist() == list(range(30))
    assert torch.cat([b[0] for b in data.train.batches(epoch=1)]).tolist() != list(range(30))


def loader_batches(n: int, batch_size: int, shuffle: bool, num_workers: int = 0) -> LoaderBatches:
    dataset = torch.utils.data.TensorDataset(torch.arange(n, dtype=torch.float32) * 10, torch.arange(n))
    return LoaderBatches(dataset, batch_size, shuffle, seed=5, device=CPU, num_workers=num_workers)


def test_loader_batches_yield_every_sample_once_and_shuffle_per_epoch() -> None:
    data = loader_batches(17, 4, shuffle=True)
    epochs = [as_lists(data.batches(epoch)) for epoch in (0, 1, 0)]
    assert len(epochs[0]) == len(data) == 5
    for batches in epochs:
        labels = [i for _, y in batches for i in y]
        assert sorted(labels) == list(range(17))
        assert all(x == [10.0 * i for i in y] for x, y in batches)
    assert epochs[0] == epochs[2] and epochs[0] != epochs[1]
    order = [i for _, y in epochs[1] for i in y]
    assert order == epoch_permutation(17, 5, 1).tolist()  # the same rule as TensorBatches
    plain = loader_batches(17, 4, shuffle=False)
    assert [i for _, y in as_lists(plain.batches(3)) for i in y] == list(range(17))


@pytest.mark.parametrize("shuffle", [True, False])
def test_loader_batches_resume_from_any_batch(shuffle: bool) -> None:
    data = loader_batches(14, 3, shuffle)
    for epoch in (0, 2):
        full = as_lists(data.batches(epoch))
        for k in range(len(data) + 1):
            assert as_lists(data.batches(epoch, start=k)) == full[k:]


def test_loader_batches_restart_after_an_abandoned_epoch_with_workers() -> None:
    data = loader_batches(12, 2, shuffle=True, num_workers=2)
    full = as_lists(data.batches(1))
    partial = data.batches(0)
    next(partial)  # the trainer stops mid-epoch (max_steps), then resumes elsewhere
    assert as_lists(data.batches(1, start=2)) == full[2:]


def test_carve_splits_take_fractions_of_all_samples() -> None:
    labels = np.repeat(np.arange(4), 25)
    parts = carve_splits(labels, {"test": 0.2, "val": 0.2}, split_seed=0, stratify=True)
    assert [len(parts[name]) for name in ("train", "val", "test")] == [60, 20, 20]
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(100))
    for name in ("val", "test"):
        assert np.bincount(labels[parts[name]]).tolist() == [5, 5, 5, 5]  # stratified
    again = carve_splits(labels, {"test": 0.2, "val": 0.2}, split_seed=0, stratify=True)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)


def test_carve_splits_reject_impossible_fractions() -> None:
    labels = np.repeat(np.arange(3), 4)
    with pytest.raises(ConfigError, match=r"data\.val_fraction \+ data\.test_fraction"):
        carve_splits(labels, {"test": 0.5, "val": 0.5}, split_seed=0, stratify=False)
    with pytest.raises(ConfigError, match=r"^data\.val_fraction: .*number of classes = 3"):
        carve_splits(labels, {"val": 0.1}, split_seed=0, stratify=True)


def test_loader_batches_pin_memory_only_for_cuda() -> None:
    """Pinned host memory lets ``.to(cuda, non_blocking=True)`` overlap the copy with compute; useless on CPU."""
    dataset = torch.utils.data.TensorDataset(torch.zeros(4, 2), torch.zeros(4))
    for device, pinned in ((torch.device("cuda"), True), (CPU, False)):
        assert LoaderBatches(dataset, 2, False, seed=0, device=device, num_workers=0).loader.pin_memory is pinned


@pytest.mark.parametrize("limit", [1, 3, 9])
def test_first_batches_cut_every_epoch_and_resume_inside_the_cut(limit: int) -> None:
    data = TensorBatches([torch.arange(20)], batch_size=4, shuffle=True, seed=1)
    first = FirstBatches(data, limit)
    assert len(first) == min(limit, 5)
    for epoch in (0, 1):
        full = as_lists(data.batches(epoch))
        assert as_lists(first.batches(epoch)) == full[: len(first)]
        assert as_lists(first.batches(epoch, start=1)) == full[1: len(first)]


def test_fixed_batches_replay_epoch_zero_and_resume_inside_it() -> None:
    data = TensorBatches([torch.arange(20)], batch_size=4, shuffle=True, seed=1)
    fixed = FixedBatches(data, 2)
    kept = as_lists(data.batches(0))[:2]
    assert [as_lists(fixed.batches(epoch)) for epoch in (0, 3)] == [kept, kept]
    assert as_lists(fixed.batches(5, start=1)) == kept[1:]


def test_large_data_is_gathered_batch_by_batch_into_the_same_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    import ptlab.data.loaders as loaders

    data = TensorBatches([torch.randn(23, 2), torch.arange(23)], 5, shuffle=True, seed=7)
    per_epoch = [as_lists(data.batches(epoch, start)) for epoch in (0, 2) for start in (0, 3)]
    monkeypatch.setattr(loaders, "EPOCH_GATHER_BYTES", 0)
    assert not data.gather_per_epoch
    assert [as_lists(data.batches(epoch, start)) for epoch in (0, 2) for start in (0, 3)] == per_epoch


@pytest.mark.parametrize("stratify", [False, True])
@pytest.mark.parametrize("n, fraction, seed", [(569, 0.2, 0), (101, 0.125, 3), (1797, 0.1, 7), (30, 0.5, 1)])
def test_shuffle_split_gives_the_indices_of_scikit_learns_train_test_split(n, fraction, seed, stratify) -> None:
    from sklearn.model_selection import train_test_split

    from ptlab.data.shuffle_split import shuffle_split

    labels = np.random.RandomState(seed).choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    items = np.arange(n) * 2
    ours = shuffle_split(items, fraction, seed, labels if stratify else None)
    theirs = train_test_split(items, test_size=fraction, random_state=seed, stratify=labels if stratify else None)
    assert [a.tolist() for a in ours] == [b.tolist() for b in theirs]


def test_shuffle_split_refuses_a_class_of_one_as_scikit_learn_does() -> None:
    from ptlab.data.shuffle_split import shuffle_split

    with pytest.raises(ValueError, match="least populated classes in y have only 1 member"):
        shuffle_split(np.arange(10), 0.3, 0, np.array([0] * 9 + [1]))
