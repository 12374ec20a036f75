"""compose / build / train / evaluate: the Python API, and what the CLI calls.

    cfg = ptlab.compose(["task=cnn", "trainer.max_epochs=2"])  # the config the CLI would build
    run = ptlab.build(cfg)      # .model, .optimizers, .data.train/.val/.test
    metrics = ptlab.train(cfg)  # the content of metrics.json
    ptlab.evaluate("outputs/.../checkpoints/best.pt", split="test")

Sampling from trained checkpoints lives in :mod:`ptlab.generation`.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ptlab.config import PER_DEVICE, checkpoint_settings, check_monitor, trainer_settings, validate
from ptlab.engine.distributed import World, rank_device, world_from_env
from ptlab.errors import ConfigError
from ptlab.paths import CONFIG_DIR

if TYPE_CHECKING:
    import torch
    from omegaconf import DictConfig

    from ptlab.data.loaders import Data
    from ptlab.engine.callbacks import Callback
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
    world: World = field(default_factory=World)  # this process's place in a torchrun job


def compose(overrides: Sequence[str] = (), config_name: str = "train") -> DictConfig:
    """The config ``ptlab train OVERRIDES`` would run with (without the ``hydra`` section)."""
    from ptlab.hydra_support import compose_config

    return compose_config(CONFIG_DIR, config_name, list(overrides))


def check(cfg: DictConfig) -> None:
    """Every check that needs no data and no model: types, ranges, names, device, precision, monitor."""
    from ptlab.engine.device import resolve_device
    from ptlab.engine.precision import Precision

    validate(cfg)
    trainer_settings(cfg)
    Precision(cfg.trainer.precision, resolve_device(cfg.device))
    check_monitor(checkpoint_settings(cfg).monitor, build_objective(cfg).metrics)


def build_objective(cfg: DictConfig) -> Objective:
    """The objective, told which kind of data ``cfg.data`` yields (a builder's ``kind`` mark; None if unmarked).

    Objectives that do not take ``data_kind`` ignore it; the text objective
    follows it, so language modelling or classification comes from the data.
    """
    from omegaconf import OmegaConf

    from ptlab import catalog

    data_builder, _ = catalog.DATASETS.resolve(OmegaConf.to_container(cfg.data, resolve=True), "data")
    return catalog.OBJECTIVES.build(cfg.objective, "objective", data_kind=getattr(data_builder, "kind", None))


def build(cfg: DictConfig, trained_tokenizer: str | None = None) -> Run:
    """Check ``cfg`` and build objective, data, model, optimizer, scheduler and metrics from it.

    ``trained_tokenizer`` (a checkpoint's, as JSON) makes text data reuse it instead of training one.
    """
    import numpy as np
    import torch

    from ptlab import catalog
    from ptlab.data.loaders import shard_data
    from ptlab.engine.device import place_model, resolve_device
    from ptlab.engine.finetune import optimizer_parameters
    from ptlab.models import check_model_fits

    check(cfg)
    settings = trainer_settings(cfg)
    world = world_from_env()
    device = rank_device(resolve_device(cfg.device), world)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    torch.manual_seed(cfg.seed)

    objective = build_objective(cfg)
    data_cfg = {k: v for k, v in cfg.data.items() if k != PER_DEVICE}
    data = catalog.DATASETS.build(data_cfg, "data", target_kind=objective.target_kind, device=device, seed=cfg.seed,
                                  trained_tokenizer=trained_tokenizer)
    check_model_fits(cfg, objective, data.info)
    model = place_model(catalog.MODELS.build(cfg.model, "model", **data.info), device)
    if world.distributed:
        data = shard_data(data, world, cfg.data)
        torch.manual_seed(cfg.seed + world.rank)  # the same initial weights, a different dropout stream per rank
    t = settings
    if t.limit_train_batches or t.limit_val_batches or t.limit_test_batches or t.overfit_batches:
        from ptlab.data.loaders import limit_batches

        limits = {"train": t.limit_train_batches, "val": t.limit_val_batches, "test": t.limit_test_batches}
        data = limit_batches(data, limits, t.overfit_batches)
        if t.overfit_batches:
            log.info("trainer.overfit_batches=%d: training and validating on the same %d fixed training batches; "
                     "their loss should fall towards zero", t.overfit_batches, len(data.train))
    frozen_modules: list[torch.nn.Module] = []
    if cfg.finetune["from"]:
        from ptlab.engine.finetune import apply_finetune, log_report

        ft = cfg.finetune
        report = apply_finetune(model, ft["from"], list(ft.freeze), list(ft.reinit))
        log_report(report, ft["from"])
        frozen_modules = report.frozen_modules
    batches = len(data.train)
    optimizers, schedulers = {}, {}
    for name, params in optimizer_parameters(cfg, objective, model).items():
        optimizers[name] = catalog.OPTIMIZERS.build(cfg.optimizer, "optimizer", params=params)
        schedulers[name] = catalog.SCHEDULERS.build(cfg.scheduler, "scheduler", optimizer=optimizers[name],
                                                    total_steps=settings.total_steps(batches),
                                                    steps_per_epoch=settings.steps_per_epoch(batches))
    metric_fns = {
        name: catalog.build_metric(name, num_classes=data.info.get("num_classes", 2), data=data, device=device).to(device)
        for name in objective.metrics
    }
    return Run(cfg, device, objective, data, model, optimizers, schedulers, metric_fns, frozen_modules, world)


def train(cfg: DictConfig, run_dir: str | Path | None = None, callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Train as ``ptlab train`` would; with ``run_dir`` also write checkpoints, TensorBoard and metrics.json.

    ``callbacks``: your own (ptlab.engine.callbacks.Callback), run after those of the config's ``callbacks:``.

    SIGTERM/SIGINT are caught from here to the end (see ptlab.engine.signals). A
    relaunch of a finished run (``resume=auto``) trains no further: it prints the
    run's final metrics, or completes the test pass if it was interrupted.
    """
    from ptlab.engine.run_callbacks import callbacks_for_run
    from ptlab.engine.signals import StopSignals
    from ptlab.engine.trainer import Trainer, TrainingInterrupted

    if cfg.trainer.profile_steps and run_dir is None:
        raise ConfigError("trainer.profile_steps: the trace is written into the run directory; pass run_dir")
    if cfg.resume == "auto" and run_dir is None:
        raise ConfigError("resume: auto looks for checkpoints in the run directory; pass run_dir")
    with StopSignals().caught() as signals:
        run = build(cfg)
        if signals.received:  # nothing trained yet: nothing to save
            raise TrainingInterrupted(signals.received)
        trainer = Trainer(run, callbacks_for_run(run, None if run_dir is None else Path(run_dir), callbacks),
                          signals)
        if cfg.resume is not None:
            from ptlab.engine.resume import resume_payload

            found = resume_payload(cfg, Path(run_dir) if run_dir is not None else None, run.world)
            if found is not None:
                trainer.restore(*found)
        if trainer.finished and run_dir is not None:
            final = _final_metrics(Path(run_dir), run.world)
            if final is not None:
                return final
        return trainer.fit()


def _final_metrics(run_dir: Path, world: World) -> dict[str, Any] | None:
    """A finished run's metrics.json, printed (None if it was never completely written: finish the run)."""
    from ptlab.atomic import read_json
    from ptlab.engine.distributed import broadcast

    final = broadcast(read_json(run_dir / "metrics.json") if world.is_main else None, world)
    if not isinstance(final, dict):
        return None
    if world.is_main:
        from ptlab.logging.console import print_metrics_table

        log.info("%s finished earlier: nothing to train (raise trainer.max_epochs or trainer.max_steps to train "
                 "further); its final metrics:", run_dir)
        print_metrics_table(final)
    return final


def evaluate(ckpt: str | Path, split: str = "test", overrides: Sequence[str] = (), device: str | None = None) -> dict[str, float]:
    """Rebuild a run from a checkpoint's saved config (plus data overrides) and evaluate ``split``."""
    from ptlab.engine.evaluation import evaluate as evaluate_split
    from ptlab.engine.precision import Precision

    if split not in ("val", "test"):
        raise ConfigError(f"split: {split!r} is not a split to evaluate; use split=test or split=val")
    _, run = rebuild(ckpt, overrides, device)
    return evaluate_split(run, run.model, Precision(run.cfg.trainer.precision, run.device), split)


def rebuild(ckpt: str | Path, overrides: Sequence[str] = (), device: str | None = None) -> tuple[dict[str, Any], Run]:
    """(the checkpoint, the run its saved config builds with its weights loaded): what eval and recommend start from.

    ``overrides`` change the saved config (``data.test_path=...``); the data must still be the
    data the weights were trained on (the same ``data_info`` and ``data_state``).
    """
    from omegaconf import OmegaConf

    from ptlab.engine.checkpoint import judged_weights, load_checkpoint

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
    run = build(cfg, trained_tokenizer=payload.get("tokenizer"))
    changed = [f"{key} {saved} → {run.data.info.get(key)}" for key, saved in payload.get("data_info", {}).items()
               if run.data.info.get(key) != saved]
    changed += [f"its fitted {key}" for key, saved in payload.get("data_state", {}).items()
                if run.data.state.get(key) != saved]
    if changed:  # e.g. other training rows: other standardization, so the weights would be read in other units
        raise ConfigError(f"{' '.join(overrides) or 'data'}: the data no longer matches the one the checkpoint was "
                          f"trained on ({', '.join(changed)}); change only the evaluated split (e.g. data.test_path)")
    try:
        run.model.load_state_dict(judged_weights(payload))
    except RuntimeError as err:
        raise ConfigError(f"ckpt: weights do not fit the model the saved config builds ({str(err).splitlines()[0]})") from None
    return payload, run
