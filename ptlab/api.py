"""compose / build / train / evaluate: the Python API, and what the CLI calls.

    cfg = ptlab.compose(["task=cnn", "trainer.max_epochs=2"])  # the config the CLI would build
    run = ptlab.build(cfg)      # .model, .optimizers, .data.train/.val/.test
    metrics = ptlab.train(cfg)  # the content of metrics.json
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ptlab.config import check_monitor, validate
from ptlab.errors import ConfigError
from ptlab.paths import CONFIG_DIR

if TYPE_CHECKING:
    import torch
    from omegaconf import DictConfig

    from ptlab.data.loaders import Data
    from ptlab.objectives.base import Objective

log = logging.getLogger("ptlab")


@dataclass
class Run:
    """Everything a config builds, ready for the trainer."""

    cfg: DictConfig
    device: torch.device
    objective: Objective
    data: Data
    model: torch.nn.Module
    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, Any]
    metric_fns: dict[str, Any]
    frozen_modules: list[torch.nn.Module] = field(default_factory=list)  # kept in eval mode (fine-tuning)


def compose(overrides: Sequence[str] = (), config_name: str = "train") -> DictConfig:
    """The config ``ptlab train OVERRIDES`` would run with (without the ``hydra`` section)."""
    from ptlab.hydra_support import compose_config

    return compose_config(CONFIG_DIR, config_name, list(overrides))


def check(cfg: DictConfig) -> None:
    """Every check that needs no data and no model: types, ranges, names, device, precision, monitor."""
    from ptlab import catalog
    from ptlab.engine.device import resolve_device
    from ptlab.engine.precision import Precision

    validate(cfg)
    Precision(cfg.trainer.precision, resolve_device(cfg.device))
    check_monitor(cfg.checkpoint.monitor, build_node(catalog.OBJECTIVES, cfg.objective, "objective").metrics)


def build(cfg: DictConfig) -> Run:
    """Check ``cfg`` and build objective, data, model, optimizer, scheduler and metrics from it."""
    import numpy as np
    import torch

    from ptlab import catalog
    from ptlab.engine.device import resolve_device

    check(cfg)
    device = resolve_device(cfg.device)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    torch.manual_seed(cfg.seed)

    objective = build_node(catalog.OBJECTIVES, cfg.objective, "objective")
    data = build_node(catalog.DATASETS, cfg.data, "data", target_kind=objective.target_kind, device=device,
                      seed=cfg.seed)
    model = build_node(catalog.MODELS, cfg.model, "model", **data.info).to(device)
    if device.type == "cuda" and any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
        model = model.to(memory_format=torch.channels_last)
    frozen_modules: list[torch.nn.Module] = []
    params: list = [p for p in model.parameters() if p.requires_grad]
    if cfg.finetune["from"]:
        from ptlab.engine.finetune import apply_finetune, log_report, parameter_groups

        ft = cfg.finetune
        report = apply_finetune(model, ft["from"], list(ft.freeze), list(ft.reinit))
        log_report(report, ft["from"])
        frozen_modules = report.frozen_modules
        params = parameter_groups(model, list(ft.reinit), cfg.optimizer.get("lr"), ft.lr_mult)
    optimizer = build_node(catalog.OPTIMIZERS, cfg.optimizer, "optimizer", params=params)
    steps_per_epoch = math.ceil(len(data.train) / cfg.trainer.grad_accum)
    total_steps = steps_per_epoch * cfg.trainer.max_epochs
    if cfg.trainer.max_steps is not None:
        total_steps = min(total_steps, cfg.trainer.max_steps)
    scheduler = build_node(catalog.SCHEDULERS, cfg.scheduler, "scheduler", optimizer=optimizer,
                           total_steps=total_steps, steps_per_epoch=steps_per_epoch)
    metric_fns = {
        name: build_node(catalog.METRICS, {"name": name}, "objective.metrics", num_classes=data.info.get("num_classes", 2)).to(device)
        for name in objective.metrics
    }
    return Run(cfg, device, objective, data, model, {"main": optimizer}, {"main": scheduler}, metric_fns,
               frozen_modules)


def build_node(registry, node: Mapping[str, Any], key: str, **injected: Any) -> Any:
    """Call the entry a config node names, with its config keys and the injected arguments it accepts."""
    import inspect

    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
    fn, kwargs = registry.resolve(plain, key)
    params = inspect.signature(fn).parameters
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    kwargs.update({k: v for k, v in injected.items() if k in params or accepts_any})
    return fn(**kwargs)


def train(cfg: DictConfig, run_dir: str | Path | None = None) -> dict[str, Any]:
    """Train as ``ptlab train`` would; with ``run_dir`` also write checkpoints, TensorBoard and metrics.json."""
    from ptlab.engine.callbacks import EarlyStopping
    from ptlab.engine.checkpointer import Checkpointer
    from ptlab.engine.resume import resume_payload
    from ptlab.engine.trainer import Trainer
    from ptlab.logging.console import ConsoleLogger
    from ptlab.logging.metrics_file import MetricsFile

    run = build(cfg)
    callbacks: list = [ConsoleLogger(cfg.trainer.progress, cfg.checkpoint.monitor)]
    if cfg.trainer.early_stopping.patience:
        callbacks.append(EarlyStopping(cfg.trainer.early_stopping.patience))
    if run_dir is not None:
        from ptlab.logging.tensorboard import TensorBoardLogger

        run_dir = Path(run_dir)
        if cfg.checkpoint.save:
            callbacks.append(Checkpointer(run_dir / "checkpoints", cfg.checkpoint.every_n_steps,
                                          cfg.checkpoint.keep_last))
        callbacks += [TensorBoardLogger(run_dir / "tb"), MetricsFile(run_dir / "metrics.json")]
    trainer = Trainer(run, callbacks)
    if cfg.resume is not None:
        if run_dir is None and cfg.resume == "auto":
            raise ConfigError("resume: auto looks for checkpoints in the run directory; pass run_dir")
        found = resume_payload(cfg, run_dir)
        if found is not None:
            trainer.restore(*found)
    return trainer.fit()


def evaluate(ckpt: str | Path, split: str = "test", overrides: Sequence[str] = (), device: str | None = None) -> dict[str, float]:
    """Rebuild a run from a checkpoint's saved config (plus data overrides) and evaluate ``split``."""
    from omegaconf import OmegaConf

    from ptlab.engine.checkpoint import load_checkpoint
    from ptlab.engine.trainer import Trainer

    if split not in ("val", "test"):
        raise ConfigError(f"split: {split!r} is not a split to evaluate; use split=test or split=val")
    payload = load_checkpoint(ckpt)
    cfg = OmegaConf.create(payload["config"])
    OmegaConf.set_struct(cfg, True)
    try:
        cfg.merge_with_dotlist(list(overrides))
    except Exception as err:  # omegaconf raises several types for a bad dotlist
        raise ConfigError(f"{' '.join(overrides)}: cannot apply to the saved config ({str(err).splitlines()[0]})") from None
    if device is not None:
        cfg.device = device
    cfg.finetune["from"] = None  # the checkpoint's own weights replace the ones fine-tuning started from
    run = build(cfg)
    try:
        run.model.load_state_dict(payload["model"])
    except RuntimeError as err:
        raise ConfigError(f"ckpt: weights do not fit the model the saved config builds ({str(err).splitlines()[0]})") from None
    return Trainer(run, []).evaluate(split)
