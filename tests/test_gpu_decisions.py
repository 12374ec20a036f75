"""The CUDA decisions that need no GPU to check: autocast dtype, GradScaler, channels_last, pinned memory, fused
optimizers, the device and the process-group backend. scripts/gpu_check.py proves them on a GPU; these keep CI
guarding them (each decision is taken from a ``torch.device("cuda")``, not from a live device)."""

from __future__ import annotations

import warnings

import pytest
import torch

from ptlab import catalog
from ptlab.data.loaders import LoaderBatches, in_memory_splits
from ptlab.engine import device as device_module
from ptlab.engine.device import memory_format, resolve_device
from ptlab.engine.distributed import World, join, rank_device
from ptlab.engine.precision import Precision
from ptlab.errors import ConfigError
from ptlab.optim import _fast_kernels, adam, adamw, sgd

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
DATA_INFO = {"in_channels": 1, "num_classes": 10, "image_size": 8, "vocab_size": 50, "block_size": 16,
             "in_features": 30}


def quietly(make):
    """Build something CUDA-bound on a machine without CUDA (torch warns and disables it; the decision stays)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*CUDA is not available")
        return make()


# --- precision --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("precision, dtype", [("32", None), ("bf16", torch.bfloat16), ("16", torch.float16)])
def test_autocast_dtype_on_cuda(precision: str, dtype: torch.dtype | None) -> None:
    p = quietly(lambda: Precision(precision, CUDA))
    assert p.dtype == dtype and p.device_type == "cuda"
    context = quietly(p.autocast)
    if dtype is None:
        assert not isinstance(context, torch.autocast)  # fp32: no autocast at all
    else:
        assert isinstance(context, torch.autocast) and context.device == "cuda" and context.fast_dtype == dtype


def test_bf16_autocasts_on_the_cpu_too() -> None:
    p = Precision("bf16", CPU)
    with p.autocast():
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    assert p.scaler is None


@pytest.mark.parametrize("precision, device, scaled", [
    ("16", CUDA, True), ("bf16", CUDA, False), ("32", CUDA, False), ("bf16", CPU, False), ("32", CPU, False),
])
def test_the_grad_scaler_only_with_fp16_on_cuda(precision: str, device: torch.device, scaled: bool) -> None:
    scaler = quietly(lambda: Precision(precision, device)).scaler
    assert (scaler is not None) == scaled
    if scaled:
        assert isinstance(scaler, torch.amp.GradScaler) and scaler._device == "cuda"


def test_fp16_is_refused_off_cuda_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"trainer.precision: 16 .* needs CUDA.*bf16 or 32"):
        Precision("16", CPU)


def test_without_a_scaler_backward_and_step_are_the_plain_ones() -> None:
    w = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([w], lr=0.5)
    p = Precision("32", CPU)
    p.backward((w * 2).sum())
    p.unscale(optimizer)  # nothing to unscale
    p.step(optimizer)
    p.update()
    assert torch.equal(w.detach(), torch.zeros(3))


# --- memory layout ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("model, channels_last", [
    ("simple_cnn", True), ("resnet18", True), ("dcgan", True),  # dcgan: its discriminator's Conv2d layers
    ("transformer", False), ("rnn", False), ("logistic_regression", False), ("linear_regression", False),
])
def test_channels_last_for_2d_convolutions_on_cuda_only(model: str, channels_last: bool) -> None:
    node = {"name": model, **({"cell": "lstm", "embedding_dim": 8, "hidden_size": 8} if model == "rnn" else {})}
    if model == "transformer":
        node |= {"n_layer": 1, "n_head": 1, "n_embd": 8}
    net = catalog.MODELS.build(node, "model", **DATA_INFO)
    assert memory_format(net, CUDA) == (torch.channels_last if channels_last else torch.contiguous_format)
    assert memory_format(net, CPU) == torch.contiguous_format


def test_channels_last_for_a_network_of_transposed_convolutions_only() -> None:
    upsampler = torch.nn.Sequential(torch.nn.ConvTranspose2d(4, 2, 4, stride=2), torch.nn.Tanh())
    assert memory_format(upsampler, CUDA) == torch.channels_last


# --- data -------------------------------------------------------------------------------------------------


def test_dataloaders_pin_memory_for_cuda_only() -> None:
    dataset = torch.utils.data.TensorDataset(torch.zeros(8, 2), torch.zeros(8))
    for device, pinned in ((CUDA, True), (CPU, False)):
        loader = LoaderBatches(dataset, 4, shuffle=True, seed=0, device=device, num_workers=0).loader
        assert loader.pin_memory is pinned and loader.persistent_workers is False
    assert LoaderBatches(dataset, 4, True, 0, CUDA, num_workers=2).loader.persistent_workers


def test_in_memory_batches_stay_on_the_training_device() -> None:
    """The fast path moves each split once and indexes it there: with a stand-in device (meta), no batch and
    no index tensor ever comes back to the CPU."""
    meta = torch.device("meta")
    splits = {name: (torch.randn(10, 3), torch.arange(10)) for name in ("train", "val", "test")}
    data = in_memory_splits(splits, batch_size=4, seed=0, device=meta, info={})
    for split in ("train", "val", "test"):
        for batch in getattr(data, split).batches():
            assert all(t.device == meta for t in batch)


# --- optimizers -------------------------------------------------------------------------------------------


class OnCuda:
    """A stand-in for a CUDA parameter: the kernel choice reads only ``is_cuda``."""

    is_cuda = True


def test_fused_kernels_for_parameters_on_cuda() -> None:
    assert _fast_kernels([OnCuda(), OnCuda()]) == {"fused": True}
    assert _fast_kernels([{"params": [OnCuda()], "lr": 0.1}, {"params": [OnCuda()], "weight_decay": 0.0}]) == \
        {"fused": True}
    for params in ([torch.zeros(1)], [OnCuda(), torch.zeros(1)], []):  # CPU, mixed devices, nothing
        assert not _fast_kernels(params).get("fused")


@pytest.mark.parametrize("make", [sgd, adam, adamw])
def test_cpu_parameters_never_ask_for_fused_kernels_and_the_optimizer_steps(make) -> None:
    w = torch.nn.Parameter(torch.ones(2, 2))
    optimizer = make([w], weight_decay=0.0)
    assert not optimizer.defaults.get("fused")  # fused CPU kernels are not what ptlab chose; foreach is free to change
    w.grad = torch.ones(2, 2)
    optimizer.step()
    assert not torch.equal(w.detach(), torch.ones(2, 2))


# --- device and process group -----------------------------------------------------------------------------


@pytest.fixture
def one_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ptlab sees on a one-GPU machine."""
    monkeypatch.setattr(device_module.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(device_module.torch.cuda, "device_count", lambda: 1)


def test_cuda_is_chosen_first_and_must_exist(one_gpu: None) -> None:
    assert resolve_device("auto") == CUDA and resolve_device("cuda") == CUDA
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(ConfigError, match=r"device: cuda:1 does not exist; this machine has 1 CUDA device"):
        resolve_device("cuda:1")


def test_asking_for_cuda_without_one_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device_module.torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"device: cuda was asked for but CUDA is not available"):
        resolve_device("cuda")


def test_torchrun_joins_nccl_on_cuda_after_picking_its_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.distributed as dist

    calls: list[tuple] = []
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend: calls.append(("init", backend)))
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: calls.append(("set_device", index)))
    join(World(rank=1, local_rank=1, size=2), "cuda")
    assert calls == [("set_device", 1), ("init", "nccl")]
    calls.clear()
    join(World(rank=1, local_rank=1, size=2), "cpu")
    assert calls == [("init", "gloo")]
    calls.clear()
    join(World(), "cuda")  # one process (torchrun --nproc_per_node=1 too): no process group, no DDP
    assert calls == []


@pytest.mark.parametrize("world, device, expected", [
    (World(rank=3, local_rank=1, size=4), CUDA, torch.device("cuda", 1)),  # each process its own GPU
    (World(rank=0, local_rank=0, size=1), CUDA, CUDA),  # outside torchrun: the device asked for
    (World(rank=3, local_rank=1, size=4), CPU, CPU),  # gloo on CPUs: every rank on the CPU
])
def test_each_torchrun_rank_trains_on_the_gpu_of_its_local_rank(world: World, device, expected) -> None:
    assert rank_device(device, world) == expected
