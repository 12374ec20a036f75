"""Checkpoint files: plain data, written atomically, loaded only with ``weights_only=True``.

Format (``format_version`` 1), a dict of plain Python values and CPU tensors:

    format_version, ptlab_version, torch_version,
    config       the resolved run config as a plain dict
    data_info    what the data told the model (in_channels, image_size, num_classes, ...)
    tokenizer    text data: its Hugging Face tokenizer as a JSON string; None otherwise
    data_state   what the data builder fitted, as plain data (a recommender's ids, a CSV's categories and fill values)
    model        state_dict of the whole task model (no ``module.`` / ``_orig_mod.`` prefixes)
    optimizers   {name: optimizer.state_dict()}
    schedulers   {name: scheduler.state_dict()}
    scaler       GradScaler.state_dict() or None
    rng          {"python", "numpy", "torch", "cuda"} generator states
    loop         {"epoch", "step", "batch_in_epoch", "train_seconds", "samples"}
    logs         {key: [sum, count]} of the logging interval the checkpoint fell in (per rank under torchrun)
    best         {"value", "epoch", "step", "metrics", "validations_since"}
    callbacks    {key: state_dict()} of the callbacks that keep state (ptlab.engine.trainer_state)
    ema          with trainer.ema.decay: {"updates", "weights"} of the weight average (last.pt only)

``best.pt`` carries the same keys with the best model and empty optimizer state (and callback
state); with trainer.ema.decay its ``model`` is the average and ``model_without_ema`` the raw
weights of the same step.
"""

from __future__ import annotations

import pickle
import random
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np
import torch

from ptlab.atomic import write_atomic
from ptlab.errors import PtlabError

if TYPE_CHECKING:
    from ptlab.api import Run
    from ptlab.engine.distributed import World

FORMAT_VERSION = 1

# Numbered migrations: MIGRATIONS[n] turns a format-n payload into format n+1.
MIGRATIONS: dict[int, Callable[[dict], dict]] = {}

REQUIRED_KEYS = ("format_version", "config", "model")


class CheckpointError(PtlabError):
    """A checkpoint that is missing, damaged, unsafe or not ptlab's."""


def to_cpu(value: Any) -> Any:
    """Copy every tensor inside nested dicts/lists/tuples to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_cpu(v) for v in value)
    return value


def clean_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The module's weights on the CPU, unwrapped from DDP (``module.``) and torch.compile (``_orig_mod.``)."""
    while hasattr(module, "module") or hasattr(module, "_orig_mod"):
        module = getattr(module, "module", None) or getattr(module, "_orig_mod")
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def judged_weights(payload: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The weights a run validates with: a last.pt's weight average (trainer.ema.decay) if it has one, else
    ``model`` (a best.pt's ``model`` already is the average). What eval, generate, predict and export load."""
    return (payload.get("ema") or {}).get("weights") or payload["model"]


def rng_state() -> dict[str, Any]:
    """Every random generator that decides the future of a run, as plain data."""
    version, mt_state, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    return {
        "python": [version, list(mt_state), gauss],
        "numpy": [np_name, torch.from_numpy(np_keys.astype(np.int64)), np_pos, np_has_gauss, np_gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def per_rank(state: Any, world: World) -> Any:
    """``state`` of this process, or under torchrun every rank's in rank order (read back by :func:`rank_state`)."""
    from ptlab.engine.distributed import gather

    return gather(state, world) if world.distributed else state


def rank_state(saved: Mapping[str, Any] | list, world: World) -> Mapping[str, Any]:
    """This process's part of a per-rank entry of a checkpoint (``rng``, ``logs``): a torchrun job saved one per
    rank; with another number of processes (or one), every rank continues from rank 0's."""
    if not isinstance(saved, list):
        return saved
    return saved[world.rank] if len(saved) == world.size else saved[0]


def set_rng_state(state: Mapping[str, Any]) -> None:
    version, mt_state, gauss = state["python"]
    random.setstate((version, tuple(mt_state), gauss))
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state((np_name, np_keys.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def payload(run: Run, training: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint of ``run``: the format header, what rebuilds the run (config, data_info, tokenizer) and the
    trainer's ``training`` state (model, optimizers, schedulers, scaler, rng, loop, best)."""
    from omegaconf import OmegaConf

    from ptlab import __version__

    return {
        "format_version": FORMAT_VERSION,
        "ptlab_version": __version__,
        "torch_version": str(torch.__version__),
        "config": OmegaConf.to_container(run.cfg, resolve=True),
        "data_info": {k: v for k, v in run.data.info.items() if isinstance(v, (int, float, str, bool))},
        "tokenizer": run.data.tokenizer,  # text data: Hugging Face JSON, so eval/generate see the same ids
        "data_state": run.data.state,  # what the builder fitted (id maps, categories), so eval reads the data the same
        **training,
    }


def save_atomic(payload: Mapping[str, Any], path: Path) -> None:
    """``torch.save`` through the atomic writer: a crash leaves the old file or the new one, never a mix."""
    write_atomic(path, lambda f: torch.save(dict(payload), f))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a ptlab checkpoint safely (``weights_only=True``) and migrate it to the current format."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise CheckpointError(f"ckpt: {path} is a folder; give a .pt file such as {path / 'checkpoints' / 'best.pt'}")
    if not path.exists():
        raise CheckpointError(f"ckpt: {path} does not exist; give the path of a ptlab checkpoint (.pt)")
    try:
        with warnings.catch_warnings():  # a foreign pickle's protocol warning is noise next to our message
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        lines = [line.strip() for line in str(err).splitlines() if "Unsupported global" in line or "Unsupported operand" in line]
        detail = lines[0].split(" was not")[0].replace("WeightsUnpickler error: ", "") if lines else type(err).__name__
        raise CheckpointError(
            f"ckpt: refusing to load {path}: it holds Python objects, not plain data ({detail}). "
            "ptlab loads checkpoints with weights_only=True and never runs code from a file."
        ) from None
    except Exception as err:  # a damaged or foreign file fails in many ways inside the unpickler
        raise CheckpointError(f"ckpt: {path} is damaged or not a torch file ({type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else ''})") from None
    if not isinstance(payload, dict) or any(k not in payload for k in REQUIRED_KEYS):
        raise CheckpointError(f"ckpt: {path} is not a ptlab checkpoint (it lacks {', '.join(REQUIRED_KEYS)})")
    version = payload["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"ckpt: {path} has format_version {version!r}, newer than this ptlab reads "
                              f"({FORMAT_VERSION}); upgrade ptlab")
    while version < FORMAT_VERSION:
        payload = MIGRATIONS[version](payload)
        version = payload["format_version"] = version + 1
    return payload
