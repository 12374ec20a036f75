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

from ptlab.config import PER_DEVICE, check_monitor, trainer_settings, validate
from ptlab.engine.distributed import World, world_from_env
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
    world: World = field(default_factory=World)  # this process's place in a torchrun job


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
    trainer_settings(cfg)
    Precision(cfg.trainer.precision, resolve_device(cfg.device))
    check_monitor(cfg.checkpoint.monitor, build_objective(cfg).metrics)


def build_objective(cfg: DictConfig) -> Objective:
    """The objective, told which kind of data ``cfg.data`` yields (a builder's ``kind`` mark; None if unmarked).

    Objectives that do not take ``data_kind`` ignore it; the text objective
    follows it, so language modelling or classification comes from the data.
    """
    from omegaconf import OmegaConf

    from ptlab import catalog

    data_builder, _ = catalog.DATASETS.resolve(OmegaConf.to_container(cfg.data, resolve=True), "data")
    return build_node(catalog.OBJECTIVES, cfg.objective, "objective", data_kind=getattr(data_builder, "kind", None))


def build(cfg: DictConfig, trained_tokenizer: str | None = None) -> Run:
    """Check ``cfg`` and build objective, data, model, optimizer, scheduler and metrics from it.

    ``trained_tokenizer`` (a checkpoint's, as JSON) makes text data reuse it instead of training one.
    """
    import numpy as np
    import torch

    from ptlab import catalog
    from ptlab.engine.device import place_model, resolve_device

    check(cfg)
    world = world_from_env()
    device = resolve_device(cfg.device)
    if world.distributed and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    torch.manual_seed(cfg.seed)

    objective = build_objective(cfg)
    data_cfg = {k: v for k, v in cfg.data.items() if k != PER_DEVICE}
    data = build_node(catalog.DATASETS, data_cfg, "data", target_kind=objective.target_kind, device=device,
                      seed=cfg.seed, trained_tokenizer=trained_tokenizer)
    check_model_fits(cfg, objective, data.info)
    model = place_model(build_node(catalog.MODELS, cfg.model, "model", **data.info), device)
    if world.distributed:
        data = shard_data(data, world, cfg.data)
        torch.manual_seed(cfg.seed + world.rank)  # the same initial weights, a different dropout stream per rank
    t = cfg.trainer
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
    steps_per_epoch = math.ceil(len(data.train) / cfg.trainer.grad_accum)
    total_steps = steps_per_epoch * cfg.trainer.max_epochs
    if cfg.trainer.max_steps is not None:
        total_steps = min(total_steps, cfg.trainer.max_steps)
    optimizers, schedulers = {}, {}
    for name, params in optimizer_parameters(cfg, objective, model).items():
        optimizers[name] = build_node(catalog.OPTIMIZERS, cfg.optimizer, "optimizer", params=params)
        schedulers[name] = build_node(catalog.SCHEDULERS, cfg.scheduler, "scheduler", optimizer=optimizers[name],
                                      total_steps=total_steps, steps_per_epoch=steps_per_epoch)
    metric_fns = {
        name: build_node(catalog.METRICS, {"name": name}, "objective.metrics", num_classes=data.info.get("num_classes", 2),
                         data=data, device=device).to(device)
        for name in objective.metrics
    }
    return Run(cfg, device, objective, data, model, optimizers, schedulers, metric_fns, frozen_modules, world)


def check_model_fits(cfg: DictConfig, objective: Objective, info: Mapping[str, Any]) -> None:
    """Refuse, in one line naming model= and data=, a model made for another kind of target (its ``serves`` mark,
    see ptlab/models/__init__.py) or one that needs an input the data does not describe (e.g. an image model's
    ``in_channels`` on a table); name the models that fit."""
    import inspect

    from omegaconf import OmegaConf

    from ptlab import catalog

    def problem(node: Mapping[str, Any]) -> str | None:
        fn, _ = catalog.MODELS.resolve(node, "model")
        kinds = getattr(fn, "target_kinds", None)
        if kinds is not None and objective.target_kind not in kinds:
            made_for = " or ".join(kind.replace("_", " ") for kind in kinds)
            wanted = objective.target_kind.replace("_", " ")
            return f"it is made for {made_for}, not {wanted} (objective={cfg.objective.name})"
        missing = [p.name for p in inspect.signature(fn).parameters.values()
                   if p.name in catalog.MODELS.injected and p.default is p.empty and p.name not in info]
        if missing:
            given = ", ".join(k for k in info if k in catalog.MODELS.injected) or "nothing a model reads"
            return f"it needs {', '.join(missing)} from the data, which gives {given}"
        return None

    why = problem(OmegaConf.to_container(cfg.model, resolve=True))
    if why is not None:
        fits = [name for name in catalog.MODELS.names() if problem({"name": name}) is None]
        model, data = cfg.model.get("name", cfg.model.get("_target_")), cfg.data.get("name", cfg.data.get("_target_"))
        hint = f"use model={' or model='.join(fits)}" if fits else "choose another data= or objective="
        raise ConfigError(f"model={model} does not fit data={data}: {why}; {hint}")


def shard_data(data: Data, world: World, data_cfg: Mapping[str, Any]) -> Data:
    """Each rank's part of every split; the global batch stays data.batch_size unless batch_size_per_device is set."""
    import dataclasses

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
    return dataclasses.replace(data, **splits)


def optimizer_parameters(cfg: DictConfig, objective: Objective, model: torch.nn.Module) -> dict[str, Any]:
    """Parameters per optimizer, as the objective asks; fine-tuning's lr_mult splits them into groups."""
    named = objective.parameters(model)
    if cfg.finetune["from"] and cfg.finetune.lr_mult != 1.0 and list(named) == ["main"]:
        from ptlab.engine.finetune import parameter_groups

        named["main"] = parameter_groups(model, list(cfg.finetune.reinit), cfg.optimizer.get("lr"), cfg.finetune.lr_mult)
    return named


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
    """Train as ``ptlab train`` would; with ``run_dir`` also write checkpoints, TensorBoard and metrics.json.

    SIGTERM/SIGINT are caught from here to the end (see ptlab.engine.signals). A
    relaunch of a finished run (``resume=auto``) trains no further: it prints the
    run's final metrics, or completes the test pass if it was interrupted.
    """
    from ptlab.engine.signals import StopSignals
    from ptlab.engine.trainer import TrainingInterrupted

    if cfg.trainer.profile_steps and run_dir is None:
        raise ConfigError("trainer.profile_steps: the trace is written into the run directory; pass run_dir")
    if cfg.resume == "auto" and run_dir is None:
        raise ConfigError("resume: auto looks for checkpoints in the run directory; pass run_dir")
    with StopSignals().caught() as signals:
        run = build(cfg)
        if signals.received:  # nothing trained yet: nothing to save
            raise TrainingInterrupted(signals.received)
        trainer = _trainer(run, None if run_dir is None else Path(run_dir), signals)
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


def _trainer(run: Run, run_dir: Path | None, signals) -> Any:
    """The trainer with the callbacks this run asks for (files only with a run directory, and only on rank 0)."""
    from ptlab.engine.callbacks import EarlyStopping
    from ptlab.engine.checkpointer import Checkpointer
    from ptlab.engine.trainer import Trainer
    from ptlab.logging.console import ConsoleLogger
    from ptlab.logging.metrics_file import MetricsFile

    cfg = run.cfg
    main = run.world.is_main  # under torchrun only rank 0 writes; every rank takes part in checkpointing
    callbacks: list = [ConsoleLogger(cfg.trainer.progress, cfg.checkpoint.monitor)] if main else []
    if cfg.trainer.early_stopping.patience:
        callbacks.append(EarlyStopping(cfg.trainer.early_stopping.patience))
    if run_dir is not None:
        from ptlab.logging.tensorboard import TensorBoardLogger

        if run.data.tokenizer is not None and main:
            from ptlab.atomic import write_text

            write_text(run_dir / "tokenizer.json", run.data.tokenizer)
        if cfg.checkpoint.save:
            callbacks.append(Checkpointer(run_dir / "checkpoints", cfg.checkpoint.every_n_steps,
                                          cfg.checkpoint.keep_last, write=main))
        if main:
            callbacks += [TensorBoardLogger(run_dir / "tb"), MetricsFile(run_dir / "metrics.json")]
            callbacks += run.objective.callbacks(run_dir)
        if main and cfg.trainer.profile_steps:
            from ptlab.engine.profiler import StepProfiler

            callbacks.append(StepProfiler(run_dir / "profile", cfg.trainer.profile_steps))
    return Trainer(run, callbacks, signals)


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
    run = build(cfg, trained_tokenizer=payload.get("tokenizer"))
    changed = [f"{key} {saved} → {run.data.info.get(key)}" for key, saved in payload.get("data_info", {}).items()
               if run.data.info.get(key) != saved]
    if changed:  # e.g. other training rows: other standardization, so the weights would be read in other units
        raise ConfigError(f"{' '.join(overrides) or 'data'}: the data no longer matches the one the checkpoint was "
                          f"trained on ({', '.join(changed)}); change only the evaluated split (e.g. data.test_path)")
    try:
        run.model.load_state_dict(payload["model"])
    except RuntimeError as err:
        raise ConfigError(f"ckpt: weights do not fit the model the saved config builds ({str(err).splitlines()[0]})") from None
    return Trainer(run, []).evaluate(split)


def generate_images(ckpt: str | Path, n: int = 64, seed: int = 0, device: str = "cpu") -> torch.Tensor:
    """``n`` images in [-1, 1] from a GAN checkpoint; the same seed gives the same images."""
    import torch

    from ptlab import catalog
    from ptlab.engine.checkpoint import load_checkpoint
    from ptlab.engine.device import resolve_device

    payload = load_checkpoint(ckpt)
    config = payload["config"]
    model = build_node(catalog.MODELS, config["model"], "model", **payload.get("data_info", {}))
    if not hasattr(model, "sample"):
        raise ConfigError(f"ckpt: {ckpt} is a {config['task']} checkpoint; image generation needs a GAN (task=gan)")
    target = resolve_device(device)
    model.load_state_dict(payload["model"])
    model.to(target).eval()
    return model.sample(n, torch.Generator(target).manual_seed(seed))



def generate_text(ckpt: str | Path, prompt: str = "", max_new_tokens: int = 200, temperature: float = 1.0,
                  top_k: int | None = None, seed: int = 0, device: str = "cpu") -> tuple[str, list[str]]:
    """(``prompt`` and the text a language-model checkpoint writes after it, the parts of the prompt it read as
    ``<unk>``). The prompt begins a document; the same seed gives the same text."""
    import torch

    from ptlab import catalog
    from ptlab.data.text import BOS, UNK, load_tokenizer
    from ptlab.engine.checkpoint import load_checkpoint
    from ptlab.engine.device import resolve_device
    from ptlab.models.sampling import sample

    payload = load_checkpoint(ckpt)
    config, info = payload["config"], payload.get("data_info", {})
    if payload.get("tokenizer") is None or "num_classes" in info:
        raise ConfigError(f"ckpt: {ckpt} is a {config['task']} checkpoint on data={config['data'].get('name')}; text "
                          "generation needs a language model (task=rnn or task=transformer on unlabelled text)")
    tokenizer = load_tokenizer(payload["tokenizer"])
    prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
    unknown = [prompt[a:b] for i, (a, b) in zip(prompt_ids.ids, prompt_ids.offsets) if i == UNK]
    target = resolve_device(device)
    model = build_node(catalog.MODELS, config["model"], "model", **info)
    model.load_state_dict(payload["model"])
    model.to(target).eval()
    context = torch.tensor([BOS, *prompt_ids.ids], device=target)
    ids = sample(model, context, max_new_tokens, temperature, top_k, torch.Generator(target).manual_seed(seed))
    return tokenizer.decode(ids.tolist()), unknown
